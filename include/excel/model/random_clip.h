// Random CLIP weights in OpenAI's layout, for demos, tests and benchmarks (no download needed).
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "excel/model/clip_checkpoint.h"

namespace excel::model {

// ViT-B/16 sizes (the real checkpoint's configuration).
ClipConfig vit_b16_config();

// Seeded random tensors with CLIP-like scales; dtype kHalf mimics OpenAI's release files.
std::map<std::string, at::Tensor> random_clip_tensors(const ClipConfig& cfg, uint64_t seed,
                                                      at::ScalarType dtype = at::kFloat);

// Same, wrapped as loaded fp32 weights.
ClipWeights random_clip_weights(const ClipConfig& cfg, uint64_t seed);

}  // namespace excel::model
