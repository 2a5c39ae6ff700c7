// Where a tool's tensors live and in what precision the backbone runs: the --device,
// --model_precision and --model_kernels flags (defined once, in device.cpp, for every tool that
// links this unit) and their resolution. No LibTorch in this header: configurations hold a
// DeviceChoice; model/placement.h turns it into a torch device and dtype.
#pragma once
#include <string>

namespace excel {

enum class Precision { kFp32, kFp16, kBf16 };

// Which code the backbone and the pseudo-label ops run: kBlas, the CPU path (per-sample GEMM
// loops, OpenCV contours and resizes; bit-exact across batches, docs/numerics.md); kTorch, the
// device path (batched torch ops, ATen forms of the OpenCV pieces) that CUDA runs. kAuto: kBlas
// on the CPU, kTorch elsewhere. Forcing kTorch on the CPU is the test and diagnostic switch
// that runs the device path without a GPU.
enum class Kernels { kAuto, kBlas, kTorch };

struct DeviceChoice {
  bool cuda = false;
  int index = -1;  // CUDA ordinal when cuda
  Precision precision = Precision::kFp32;
  Kernels kernels = Kernels::kAuto;
  bool tf32 = false;  // CUDA fp32 only: TF32 tensor-core matmuls (--model_tf32; off: the reference's fp32)
  std::string why;  // how it was chosen, for the start log line

  std::string name() const;  // "cpu" or "cuda:N"
  bool torch_kernels() const { return kernels == Kernels::kTorch || (kernels == Kernels::kAuto && cuda); }
};

const char* precision_name(Precision p);

// Resolves the flag values for a process with local rank `local_rank` on a machine where
// `cuda_devices` CUDA devices are visible (0 without a CUDA LibTorch). device: auto (cuda:
// local_rank % cuda_devices when there is one, else cpu), cpu, cuda (= auto's CUDA pick) or
// cuda:N. precision: fp32, fp16, bf16 (fp32 only on the CPU). kernels: auto, blas, torch (blas
// only on the CPU). Throws ConfigError naming the flag for a bad value or an impossible choice.
DeviceChoice resolve_device(const std::string& device, const std::string& precision, const std::string& kernels,
                            int local_rank, int cuda_devices);

// CUDA devices visible to this process (0 when LibTorch was built without CUDA).
int cuda_device_count();

// The flags of this process resolved with resolve_device, plus --model_tf32 (CUDA fp32 only;
// throws ConfigError naming the flag).
DeviceChoice device_from_flags(int local_rank);

}  // namespace excel
