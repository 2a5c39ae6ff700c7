#include "excel/model/placement.h"

#include <ATen/Context.h>
#include <glog/logging.h>
#include <torch/torch.h>

#include <cstdlib>
#include <iostream>

#include "excel/common/errors.h"

namespace excel::model {
namespace {
DeviceChoice& current() {
  static DeviceChoice c;
  return c;
}
}  // namespace

std::string describe(const DeviceChoice& c) {
  return "device " + c.name() + " (" + c.why + "), backbone " + precision_name(c.precision) +
         (c.tf32 ? " (TF32 matmuls, --model_tf32)" : "") + ", kernels " + (c.torch_kernels() ? "torch" : "blas") +
         (c.kernels == Kernels::kAuto ? " (auto)" : " (--model_kernels)");
}

const DeviceChoice& use_device_flags(int local_rank) {
  set_placement(device_from_flags(local_rank));
  LOG(INFO) << describe(placement());
  return placement();
}

const DeviceChoice& use_device_flags_or_exit(const char* tool, int local_rank) {
  try {
    return use_device_flags(local_rank);
  } catch (const ConfigError& e) {
    std::cerr << tool << ": error: " << e.what() << std::endl;
    std::exit(2);
  }
}

void set_placement(const DeviceChoice& choice) {
  current() = choice;
  if (choice.cuda && choice.precision == Precision::kFp32) {
    at::globalContext().setAllowTF32CuBLAS(choice.tf32);
    at::globalContext().setAllowTF32CuDNN(choice.tf32);
  }
}

const DeviceChoice& placement() {
  return current();
}

at::Device device() {
  return current().cuda ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(current().index)) : at::Device(at::kCPU);
}

at::ScalarType backbone_dtype() {
  switch (current().precision) {
    case Precision::kFp16:
      return at::kHalf;
    case Precision::kBf16:
      return at::kBFloat16;
    default:
      return at::kFloat;
  }
}

bool torch_kernels(const at::Tensor& t) {
  return !t.device().is_cpu() || current().kernels == Kernels::kTorch;
}

void place_clip_weights(ClipWeights& w) {
  const at::Device dev = device();
  const at::ScalarType dt = backbone_dtype();
  for (auto& kv : w.tensors)
    if (kv.first.rfind("visual.", 0) == 0) kv.second = kv.second.to(dev, dt);
}

}  // namespace excel::model
