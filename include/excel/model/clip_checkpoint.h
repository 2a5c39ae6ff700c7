// CLIP checkpoints: OpenAI's TorchScript archive (ViT-B-16.pt) or a plain torch.save state dict.
// The model configuration is inferred from tensor shapes; fp16 weights become fp32.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <cstdint>
#include <map>
#include <string>

namespace excel::model {

struct ClipConfig {
  int64_t vision_width = 0, vision_layers = 0, vision_heads = 0, patch = 0;
  int64_t pos_grid = 0;   // side of the stored positional table (14 for ViT-B/16)
  int64_t embed_dim = 0;  // joint space
  int64_t text_width = 0, text_layers = 0, text_heads = 0;
  int64_t context_length = 0, vocab_size = 0;
  int64_t input_resolution() const { return pos_grid * patch; }
  std::string describe() const;
};

struct ClipWeights {
  ClipConfig config;
  std::map<std::string, at::Tensor> tensors;  // OpenAI names, fp32, contiguous
  std::string source;                         // file the weights came from

  // Returns the tensor or throws FormatError naming the source and the key.
  const at::Tensor& get(const std::string& name) const;
};

enum class CheckpointFormat { kTorchScript, kStateDict };

// Loads either file form, infers the configuration and validates every tensor's shape.
ClipWeights load_clip_checkpoint(const std::string& path);

// Infers the configuration from tensor shapes and checks every expected tensor is present with
// the right shape; throws FormatError naming `source` and the offending tensor.
ClipConfig infer_and_validate(const std::map<std::string, at::Tensor>& tensors, const std::string& source);

// Reads any torch.save zip file holding a (possibly nested under "state_dict"/"model") dict of
// tensors; "module." prefixes are stripped, non-tensor entries skipped. Throws FormatError.
std::map<std::string, at::Tensor> read_torch_state_dict(const std::string& path);

// Reads any torch.save zip file (PyTorch >= 1.6) as it was saved: a missing file is InputError; a
// legacy, damaged (every zip entry's CRC is checked) or unreadable one FormatError naming the file.
c10::IValue read_torch_save(const std::string& path);

// Writes `tensors` (kept in their dtype) in either form; used by the demo-checkpoint generator.
void save_clip_checkpoint(const std::map<std::string, at::Tensor>& tensors, const ClipConfig& cfg,
                          const std::string& path, CheckpointFormat format);

}  // namespace excel::model
