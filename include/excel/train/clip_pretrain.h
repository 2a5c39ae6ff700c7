// Contrastive (CLIP-style) pre-training of a small CLIP on the synthetic world (docs/tiny_clip.md):
// freshly drawn images, captions built from their image-level classes and the classes' attribute
// sentences, symmetric InfoNCE with a learned temperature, AdamW with warm-up and cosine decay.
// The towers are model::ClipVision / ClipText with autograd; the result is an OpenAI-layout
// checkpoint. Seeded and resumable (a state file beside the output, written atomically).
#pragma once
#include <cstdint>
#include <string>

#include "excel/data/synthetic_voc.h"
#include "excel/model/clip_checkpoint.h"

namespace excel::train {

struct ClipPretrainOptions {
  model::ClipConfig config;       // sizes; vocab_size is taken from the tokenizer
  std::string bpe_path;           // merge list of the text tower
  std::string descriptions_path;  // descriptions JSON of the world (class name -> sentences)
  std::string output_dir;         // clip.jit.pt, clip.state_dict.pt, pretrain_state.pt
  int64_t steps = 300, batch = 32, warmup = 20, log_every = 20, ckpt_every = 100;
  double lr = 2e-3, weight_decay = 0.1;
  double dense_weight = 1.0;           // weight of the pooled-patch InfoNCE term beside the class-token one
  std::string dense_pool = "max";      // how patch tokens meet a caption: mean, max or lse (soft maximum)
  std::string dense_captions = "class";  // patch term against one caption per class (multi-label), or "image": each image's own
  int64_t crop = 128;                  // images are drawn and resized to crop x crop
  int64_t pool = 2048;                 // training images, drawn once; each step samples the batch from them
  int min_side = 128, max_side = 256;  // generator's image sides before the resize
  data::SyntheticStyle style;          // generator's object layout (the world's --data_style)
  uint64_t seed = 0;                   // weights and the order of everything drawn
  uint64_t image_seed = 1000;          // generator seed of the training images (the world's data uses its own)
  bool resume = true;
  bool fp32 = false;  // store fp32 instead of fp16 (OpenAI's release is fp16)
};

struct ClipPretrainResult {
  int64_t steps_run = 0;  // this call (0 when the state file was already at the end)
  double final_loss = 0;
  double seconds = 0;
};

ClipPretrainResult pretrain_clip(const ClipPretrainOptions& opt);

}  // namespace excel::train
