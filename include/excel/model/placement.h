// The device this process's model runs on (common/device.h's DeviceChoice in torch terms), set
// once by the tool, and the one switch between the CPU path and the device path of the backbone
// and pseudo-label ops: torch_kernels(t) is true for a tensor off the CPU, or on the CPU when
// --model_kernels=torch forces the device path (tests, diagnostics).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

#include "excel/common/device.h"
#include "excel/model/clip_checkpoint.h"

namespace excel::model {

// The tool's --device, --model_precision and --model_kernels (common/device.h) for this local
// rank: resolved (ConfigError naming the flag), set process-wide and logged ("device cuda:1
// (--device=auto: local rank 1 mod 2 CUDA devices visible), backbone fp32, kernels torch").
const DeviceChoice& use_device_flags(int local_rank);
// The same for tools without run_mpi_main's error handling: a bad choice prints "TOOL: error:
// MESSAGE" on stderr and exits with status 2.
const DeviceChoice& use_device_flags_or_exit(const char* tool, int local_rank);
// The log line's text for a choice.
std::string describe(const DeviceChoice& choice);

// Process-wide choice (default: cpu, fp32, auto kernels). On CUDA in fp32, TF32 is off (the
// reference's fp32 numbers) unless the choice asks for it (--model_tf32).
void set_placement(const DeviceChoice& choice);
const DeviceChoice& placement();
at::Device device();              // torch device of placement()
at::ScalarType backbone_dtype();  // fp32, fp16 or bf16

// Whether ops on `t` take the device path (batched torch ops, ATen forms of the OpenCV pieces).
bool torch_kernels(const at::Tensor& t);

// Moves loaded (CPU, fp32) weights once to the device: the vision tower's, in the backbone dtype.
// The text tower stays on the CPU in fp32: it encodes the class prompts once per run, and the
// text-semantic enrichment's k-means is CPU code; callers move the resulting text features.
void place_clip_weights(ClipWeights& weights);

}  // namespace excel::model
