#include "excel/common/device.h"

#include <gflags/gflags.h>
#include <torch/cuda.h>

#include <cstdlib>

#include "excel/common/errors.h"
#include "excel/common/tool_flags.h"

DEFINE_string(device, "auto",
              "where the model runs: auto (cuda:<local rank mod visible GPUs> when CUDA is available, else cpu), "
              "cpu, cuda (as auto, but an error without a GPU) or cuda:N");
EXCEL_FLAG_RULE(device, "auto, cpu, cuda or cuda:N",
                excel::flag_one_of(FLAGS_device, {"auto", "cpu", "cuda"}) ||
                    (FLAGS_device.rfind("cuda:", 0) == 0 && FLAGS_device.size() > 5 &&
                     FLAGS_device.find_first_not_of("0123456789", 5) == std::string::npos));
DEFINE_string(model_precision, "fp32",
              "backbone precision: fp32, fp16 or bf16 (CUDA only; the CPU runs fp32). The heads, losses and "
              "optimizer stay fp32. The CUDA default stays fp32, the reference's setting, until the effect of "
              "fp16/bf16 on pseudo-labels is measured on a GPU");
EXCEL_FLAG_RULE(model_precision, "fp32, fp16 or bf16 (fp16 and bf16 on CUDA only)",
                excel::flag_one_of(FLAGS_model_precision, {"fp32", "fp16", "bf16"}));
DEFINE_string(model_kernels, "auto",
              "test/diagnostic: the code the backbone and pseudo-labels run. auto: blas on the CPU (per-sample "
              "GEMMs, OpenCV; batch-invariant bits), torch on CUDA; torch forces the device path (batched torch ops, "
              "ATen boxes and resizes) on the CPU, the same code a GPU runs");
EXCEL_FLAG_RULE(model_kernels, "auto, blas or torch (blas on the CPU only)",
                excel::flag_one_of(FLAGS_model_kernels, {"auto", "blas", "torch"}));
DEFINE_bool(model_tf32, false,
            "CUDA fp32 backbone: let matmuls and convolutions use TF32 tensor cores (faster, 10-bit mantissa "
            "inputs). Off by default: the reference's fp32 numbers");

namespace excel {

std::string DeviceChoice::name() const {
  return cuda ? "cuda:" + std::to_string(index) : "cpu";
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kFp16:
      return "fp16";
    case Precision::kBf16:
      return "bf16";
    default:
      return "fp32";
  }
}

DeviceChoice resolve_device(const std::string& device, const std::string& precision, const std::string& kernels,
                            int local_rank, int cuda_devices) {
  DeviceChoice c;
  const std::string gpus = std::to_string(cuda_devices) + " CUDA device" + (cuda_devices == 1 ? "" : "s") + " visible";
  if (device == "cpu") {
    c.why = "--device=cpu";
  } else if (device == "auto" || device == "cuda") {
    if (cuda_devices > 0) {
      c.cuda = true;
      c.index = local_rank % cuda_devices;
      c.why = "--device=" + device + ": local rank " + std::to_string(local_rank) + " mod " + gpus;
    } else if (device == "cuda") {
      throw ConfigError("--device=cuda: no CUDA device (" + gpus +
                        (cuda_devices == 0 ? "; LibTorch built without CUDA or no GPU)" : ")"));
    } else {
      c.why = "--device=auto: " + gpus;
    }
  } else if (device.rfind("cuda:", 0) == 0 && device.size() > 5 &&
             device.find_first_not_of("0123456789", 5) == std::string::npos) {
    c.cuda = true;
    c.index = std::atoi(device.c_str() + 5);
    if (c.index >= cuda_devices) throw ConfigError("--device=" + device + ": no such CUDA device (" + gpus + ")");
    c.why = "--device=" + device;
  } else {
    throw ConfigError("--device=" + device + ": expected auto, cpu, cuda or cuda:N");
  }
  if (precision == "fp32") {
    c.precision = Precision::kFp32;
  } else if (precision == "fp16" || precision == "bf16") {
    if (!c.cuda)
      throw ConfigError("--model_precision=" + precision + ": the CPU runs the backbone in fp32 only (device " +
                        c.name() + ", " + c.why + ")");
    c.precision = precision == "fp16" ? Precision::kFp16 : Precision::kBf16;
  } else {
    throw ConfigError("--model_precision=" + precision + ": expected fp32, fp16 or bf16");
  }
  if (kernels == "auto") {
    c.kernels = Kernels::kAuto;
  } else if (kernels == "torch") {
    c.kernels = Kernels::kTorch;
  } else if (kernels == "blas") {
    if (c.cuda) throw ConfigError("--model_kernels=blas: the BLAS loops are the CPU path (device " + c.name() + ")");
    c.kernels = Kernels::kBlas;
  } else {
    throw ConfigError("--model_kernels=" + kernels + ": expected auto, blas or torch");
  }
  return c;
}

int cuda_device_count() {
  return static_cast<int>(torch::cuda::device_count());
}

DeviceChoice device_from_flags(int local_rank) {
  DeviceChoice c =
      resolve_device(FLAGS_device, FLAGS_model_precision, FLAGS_model_kernels, local_rank, cuda_device_count());
  if (FLAGS_model_tf32 && !(c.cuda && c.precision == Precision::kFp32))
    throw ConfigError("--model_tf32: applies to a CUDA device in fp32 only (device " + c.name() + ", backbone " +
                      precision_name(c.precision) + ")");
  c.tf32 = FLAGS_model_tf32;
  return c;
}

}  // namespace excel
