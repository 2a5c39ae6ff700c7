// A tiny training set-up for tests: synthetic VOC data, a random CLIP and a random bank.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

#include "excel/common/h5.h"
#include "excel/data/synthetic_voc.h"
#include "excel/model/bpe_training.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/prompts.h"
#include "excel/model/random_clip.h"
#include "excel/model/tokenizer.h"
#include "excel/model/tse.h"
#include "excel/train/trainer.h"

namespace excel::test {

// A CLIP small enough for unit tests: ViT-B/16's patch and depth, narrow widths, one head.
inline model::ClipConfig tiny_clip_config(int64_t vision_width = 64, int64_t embed_dim = 16) {
  model::ClipConfig c = model::vit_b16_config();
  c.vision_width = vision_width;
  c.vision_heads = 1;
  c.vision_layers = 12;
  c.text_width = 64;
  c.text_heads = 1;
  c.text_layers = 1;
  c.embed_dim = embed_dim;
  return c;
}

// A BPE vocabulary of the synthetic world (its descriptions and the VOC prompts) at `path`.
inline std::string tiny_vocabulary(const std::string& path) {
  std::vector<std::string> sentences;
  for (const auto& s : data::synthetic_class_descriptions(model::dataset_text("voc").class_names))
    sentences.insert(sentences.end(), s.begin(), s.end());
  model::write_bpe_merges(path, model::learn_dataset_merges(sentences, "voc", 4000));
  return path;
}

// Writes data (only when `write`), its vocabulary, a random CLIP with that vocabulary and a random
// bank under dir; returns a config for 6 iterations crossing the dynamic-CAM switch (3) and the
// prediction-target switch (5). Needs nothing outside the repository.
inline train::TrainConfig tiny_setup(const std::string& dir, bool write = true) {
  const std::string bpe = dir + "/bpe.txt.gz";
  if (write) {
    data::make_synthetic_voc({dir + "/voc", 10, 96, 128, 0.2, 1});
    model::ClipConfig c = tiny_clip_config();
    c.vocab_size = model::Tokenizer(tiny_vocabulary(bpe)).vocab_size();
    model::save_clip_checkpoint(model::random_clip_tensors(c, 2, torch::kHalf), c, dir + "/clip.pt",
                                model::CheckpointFormat::kStateDict);
    torch::manual_seed(3);
    at::Tensor centres = torch::randn({16, 8});
    model::save_attribute_bank({centres / centres.norm(2, {0}, true), torch::ones({20, 8})}, dir + "/bank.h5");
  }
  train::TrainConfig t;
  t.data_root = dir + "/voc";
  t.train_split = "train";
  t.val_split = "val";
  t.clip_checkpoint = dir + "/clip.pt";
  t.bank = dir + "/bank.h5";
  t.bpe_path = bpe;
  t.crop = 64;
  t.adapter_dim = 16;
  t.batch = 2;
  t.max_iters = 6;
  t.warmup_iters = 2;
  t.switch_iter = 3;
  t.pred_target_iter = 5;
  t.base_lr = 1e-3;
  t.eval_every = 1000;
  t.ckpt_every = 1000;
  t.val_limit = 1;
  t.seed = 7;
  return t;
}

inline std::map<std::string, at::Tensor> read_params(const std::string& ckpt) {
  h5::File f = h5::File::open(ckpt);
  std::map<std::string, at::Tensor> out;
  for (const auto& n : f.list("params")) out[n] = f.read("params/" + n);
  return out;
}

}  // namespace excel::test
