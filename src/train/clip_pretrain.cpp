#include "excel/train/clip_pretrain.h"

#include <ATen/Parallel.h>
#include <glog/logging.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"
#include "excel/common/random.h"
#include "excel/data/pixel_norm.h"
#include "excel/data/synthetic_voc.h"
#include "excel/model/clip_text.h"
#include "excel/model/clip_vision.h"
#include "excel/model/prompts.h"
#include "excel/model/random_clip.h"
#include "excel/model/tokenizer.h"
#include "excel/model/tse.h"

namespace excel::train {
namespace {

using model::ClassDescriptions;

struct Batch {
  at::Tensor pixels;                         // [B,3,crop,crop] normalised
  std::vector<std::string> captions;         // one per image
  std::vector<std::vector<int>> class_sets;  // present classes, ascending
};

// A caption from an image's classes only: the prompt template with the class names, or the
// classes' attribute sentences (one per object, objects in random order).
std::string make_caption(std::vector<int> classes, const std::vector<ClassDescriptions>& world, SplitMix64& rng) {
  for (size_t i = classes.size(); i > 1; --i) std::swap(classes[i - 1], classes[rng.below(static_cast<int64_t>(i))]);
  const bool sentences = rng.uniform() < 0.6;
  std::string out;
  if (!sentences) {
    for (size_t i = 0; i < classes.size(); ++i) out += (i ? " and a " : "") + world[classes[i]].name;
    return model::make_prompt(out);  // "a clean origami bird avian and a cat."
  }
  for (size_t i = 0; i < classes.size(); ++i) {
    const auto& s = world[classes[i]].sentences;
    out += (i ? " " : "") + s[rng.below(static_cast<int64_t>(s.size()))];
  }
  return out;
}

// The training images: image 0 .. n-1 of the generator's stream with opt.image_seed, drawn once
// (drawing costs about as much as a training step's worth of images).
std::vector<data::SyntheticImage> draw_pool(const ClipPretrainOptions& opt) {
  std::vector<data::SyntheticImage> pool(static_cast<size_t>(opt.pool));
  at::parallel_for(0, opt.pool, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      pool[static_cast<size_t>(i)] = data::draw_synthetic_image(opt.image_seed, static_cast<int>(i), opt.min_side,
                                                                opt.max_side, static_cast<int>(opt.crop), opt.style);
  });
  for (const auto& im : pool)
    if (im.classes.empty()) throw InputError("synthetic image without objects (generator changed?)");
  return pool;
}

// B images of the pool drawn with replacement for this step, flipped at random, with captions.
Batch draw_batch(const ClipPretrainOptions& opt, const std::vector<data::SyntheticImage>& pool,
                 const std::vector<ClassDescriptions>& world, int64_t step) {
  const int64_t B = opt.batch, side = opt.crop;
  SplitMix64 rng(mix_seed(opt.seed, static_cast<uint64_t>(step)));
  Batch b;
  at::Tensor rgb = torch::empty({B, side, side, 3}, torch::kUInt8);
  for (int64_t j = 0; j < B; ++j) {
    const auto& im = pool[static_cast<size_t>(rng.below(static_cast<int64_t>(pool.size())))];
    at::Tensor one = torch::from_blob(const_cast<uint8_t*>(im.rgb.data()), {side, side, 3}, torch::kUInt8);
    rgb[j].copy_(rng.uniform() < 0.5 ? one.flip({1}) : one);
    b.captions.push_back(make_caption(im.classes, world, rng));
    b.class_sets.push_back(im.classes);
  }
  b.pixels = data::normalize_rgb(rgb);
  return b;
}

// Symmetric InfoNCE; images whose class sets are equal are each other's positives (their captions
// say the same), so a batch with two "cat" images does not push one away from the other's caption.
at::Tensor clip_loss(const at::Tensor& logits, const at::Tensor& targets) {
  const at::Tensor i2t = -(targets * torch::log_softmax(logits, 1)).sum(1).mean();
  const at::Tensor t2i = -(targets * torch::log_softmax(logits.t(), 1)).sum(1).mean();
  return 0.5 * (i2t + t2i);
}

at::Tensor unit_rows(const at::Tensor& x) {
  return x / x.norm(2, {-1}, true).clamp_min(1e-6);
}

// Image-caption similarity from patch tokens [B,P,E] and captions [T,E] (unit rows) -> [B,T]:
// "mean" pools the patches first; "max" takes each caption's best patch, "lse" a soft maximum
// (log-mean-exp at sharpness 10): the caption need only match some patches.
at::Tensor pooled_patch_similarity(const at::Tensor& patches, const at::Tensor& txt, const std::string& pool) {
  if (pool == "mean") return torch::matmul(unit_rows(patches.mean(1)), txt.t());
  const at::Tensor s = torch::matmul(patches, txt.t());  // [B,P,T]
  if (pool == "max") return std::get<0>(s.max(1));
  const double r = 10.0;
  return (torch::logsumexp(r * s, 1) - std::log(static_cast<double>(s.size(1)))) / r;
}

// Multi-label patch term: one caption per class of the world (a single-class caption drawn as
// make_caption does), each image scored against each class by its best patch [B,C]; the target
// spreads over the image's present classes. Image-level labels only, like the caption term.
at::Tensor class_patch_loss(const at::Tensor& patches, const at::Tensor& class_txt, const at::Tensor& scale,
                            const std::vector<std::vector<int>>& class_sets) {
  const int64_t B = patches.size(0), C = class_txt.size(0);
  const at::Tensor logits = scale * std::get<0>(torch::matmul(patches, class_txt.t()).max(1));  // [B,C]
  at::Tensor targets = torch::zeros({B, C});
  for (int64_t i = 0; i < B; ++i)
    for (int c : class_sets[static_cast<size_t>(i)]) targets[i][c] = 1.0 / static_cast<double>(class_sets[i].size());
  return -(targets * torch::log_softmax(logits, 1)).sum(1).mean();
}

double scheduled_lr(const ClipPretrainOptions& opt, int64_t step) {
  if (step < opt.warmup) return opt.lr * static_cast<double>(step + 1) / static_cast<double>(opt.warmup);
  const double t =
      static_cast<double>(step - opt.warmup) / static_cast<double>(std::max<int64_t>(1, opt.steps - opt.warmup));
  return opt.lr * (0.05 + 0.95 * 0.5 * (1 + std::cos(M_PI * std::min(1.0, t))));
}

std::string state_path(const ClipPretrainOptions& opt) {
  return opt.output_dir + "/pretrain_state.pt";
}

void save_state(const ClipPretrainOptions& opt, const std::map<std::string, at::Tensor>& params,
                torch::optim::AdamW& adam, int64_t step) {
  torch::serialize::OutputArchive ar;
  for (const auto& kv : params) ar.write("param/" + kv.first, kv.second.detach());
  ar.write("step", torch::tensor(step));
  ar.write("seed", torch::tensor(static_cast<int64_t>(opt.seed)));
  ar.write("batch", torch::tensor(opt.batch));
  torch::serialize::OutputArchive adam_ar;
  adam.save(adam_ar);
  ar.write("optimizer", adam_ar);
  atomic_replace(state_path(opt), [&](const std::string& tmp) { ar.save_to(tmp); });
}

// Returns the step to continue from (0 without a state file).
int64_t load_state(const ClipPretrainOptions& opt, std::map<std::string, at::Tensor>& params,
                   torch::optim::AdamW& adam) {
  const std::string path = state_path(opt);
  if (!opt.resume || !std::filesystem::exists(path)) return 0;
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(path);
  } catch (const c10::Error& e) {
    throw FormatError(path + ": cannot read the pre-training state (delete it to start over)");
  }
  auto read_int = [&](const std::string& key) {
    at::Tensor t;
    ar.read(key, t);
    return t.item<int64_t>();
  };
  if (read_int("seed") != static_cast<int64_t>(opt.seed) || read_int("batch") != opt.batch)
    throw ConfigError(path + ": written with another seed or batch; delete it or use --ckpt_resume=false");
  torch::NoGradGuard ng;
  for (auto& kv : params) {
    at::Tensor t;
    if (!ar.try_read("param/" + kv.first, t) || t.sizes() != kv.second.sizes())
      throw ConfigError(path + ": tensor '" + kv.first + "' missing or of another shape (model sizes changed?)");
    kv.second.copy_(t);
  }
  torch::serialize::InputArchive adam_ar;
  ar.read("optimizer", adam_ar);
  adam.load(adam_ar);
  return read_int("step");
}

void write_checkpoint(const ClipPretrainOptions& opt, const std::map<std::string, at::Tensor>& params,
                      const model::ClipConfig& cfg) {
  std::map<std::string, at::Tensor> out;
  for (const auto& kv : params) out[kv.first] = kv.second.detach().to(opt.fp32 ? at::kFloat : at::kHalf).contiguous();
  model::infer_and_validate(out, "pre-trained");
  model::save_clip_checkpoint(out, cfg, opt.output_dir + "/clip.jit.pt", model::CheckpointFormat::kTorchScript);
  model::save_clip_checkpoint(out, cfg, opt.output_dir + "/clip.state_dict.pt", model::CheckpointFormat::kStateDict);
}

}  // namespace

ClipPretrainResult pretrain_clip(const ClipPretrainOptions& opt) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<ClassDescriptions> world = model::read_class_descriptions(opt.descriptions_path);
  for (const auto& c : world)
    if (c.sentences.empty()) throw InputError(opt.descriptions_path + ": class '" + c.name + "' has no sentences");
  if (world.size() != 20) throw InputError(opt.descriptions_path + ": expected the synthetic world's 20 classes");
  model::Tokenizer tok(opt.bpe_path);
  model::ClipConfig cfg = opt.config;
  cfg.vocab_size = tok.vocab_size();
  if (opt.dense_captions != "image" && opt.dense_captions != "class")
    throw ConfigError("dense captions '" + opt.dense_captions + "': expected image or class");
  if (opt.crop % cfg.patch) throw ConfigError("crop " + std::to_string(opt.crop) + " is not a multiple of the patch");

  torch::manual_seed(opt.seed);
  model::ClipWeights weights;
  weights.source = "pretrain";
  weights.tensors = model::random_clip_tensors(cfg, opt.seed, at::kFloat);
  weights.config = model::infer_and_validate(weights.tensors, "pretrain");
  std::vector<at::Tensor> decay, no_decay;
  for (auto& kv : weights.tensors) {
    kv.second.requires_grad_(true);
    const bool matrix = kv.second.dim() >= 2 && kv.first.find("embedding") == std::string::npos;
    (matrix ? decay : no_decay).push_back(kv.second);
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(opt.lr).betas({0.9, 0.98}).weight_decay(opt.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(opt.lr).betas({0.9, 0.98}).weight_decay(0.0)));
  torch::optim::AdamW adam(std::move(groups));
  std::filesystem::create_directories(opt.output_dir);
  const int64_t first = load_state(opt, weights.tensors, adam);
  if (first > 0) LOG(INFO) << "resuming pre-training at step " << first << " from " << state_path(opt);

  const model::ClipVision vision(weights);
  const model::ClipText text(weights);
  const at::Tensor& logit_scale = weights.get("logit_scale");
  model::VisionOptions vopt;
  vopt.keep_attn = vopt.keep_feats = false;
  vopt.autograd = true;

  const auto pool_start = std::chrono::steady_clock::now();
  const std::vector<data::SyntheticImage> pool =
      first < opt.steps ? draw_pool(opt) : std::vector<data::SyntheticImage>{};
  LOG(INFO) << "drew " << pool.size() << " training images in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - pool_start).count() << " s";
  ClipPretrainResult res;
  double loss_sum = 0, acc_sum = 0;
  int64_t logged = 0;
  const auto run_start = std::chrono::steady_clock::now();
  for (int64_t step = first; step < opt.steps; ++step) {
    const Batch b = draw_batch(opt, pool, world, step);
    const int64_t B = opt.batch;
    std::vector<float> same_v(static_cast<size_t>(B * B));
    for (int64_t i = 0; i < B; ++i)
      for (int64_t j = 0; j < B; ++j) same_v[static_cast<size_t>(i * B + j)] = b.class_sets[i] == b.class_sets[j];
    const at::Tensor same = torch::from_blob(same_v.data(), {B, B}).clone();
    const at::Tensor targets = same / same.sum(1, true);

    const double lr = scheduled_lr(opt, step);
    for (auto& g : adam.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    adam.zero_grad();
    const at::Tensor surgery = vision.forward(b.pixels, at::Tensor(), vopt).surgery;  // [B,N,W]
    const at::Tensor img_cls = unit_rows(vision.embed_tokens(surgery.select(1, 0)));
    const at::Tensor patches = unit_rows(vision.embed_tokens(surgery.slice(1, 1)));  // [B,P,E]
    const at::Tensor txt = unit_rows(text.encode(tok.tokenize(b.captions, cfg.context_length, /*truncate=*/true)));
    const at::Tensor scale = logit_scale.exp().clamp_max(100.0);
    const at::Tensor logits_cls = scale * torch::matmul(img_cls, txt.t());
    at::Tensor loss = clip_loss(logits_cls, targets);
    if (opt.dense_weight > 0 && opt.dense_captions == "class") {
      SplitMix64 crng(mix_seed(mix_seed(opt.seed, static_cast<uint64_t>(step)), 1));
      std::vector<std::string> per_class;
      for (int c = 0; c < static_cast<int>(world.size()); ++c) per_class.push_back(make_caption({c}, world, crng));
      const at::Tensor class_txt = unit_rows(text.encode(tok.tokenize(per_class, cfg.context_length, true)));
      loss = loss + opt.dense_weight * class_patch_loss(patches, class_txt, scale, b.class_sets);
    } else if (opt.dense_weight > 0) {
      loss =
          loss + opt.dense_weight * clip_loss(scale * pooled_patch_similarity(patches, txt, opt.dense_pool), targets);
    }
    loss.backward();
    adam.step();
    {
      torch::NoGradGuard ng;
      logit_scale.clamp_(0.0, std::log(100.0));
    }
    const at::Tensor pick = logits_cls.detach().argmax(1);
    acc_sum += same.gather(1, pick.unsqueeze(1)).mean().item<double>();
    loss_sum += loss.item<double>();
    ++logged;
    res.final_loss = loss.item<double>();
    ++res.steps_run;
    const bool last = step + 1 == opt.steps;
    if ((step + 1) % opt.log_every == 0 || last) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
      const double eta = secs / static_cast<double>(res.steps_run) * static_cast<double>(opt.steps - step - 1);
      LOG(INFO) << "pretrain step " << step + 1 << "/" << opt.steps << " loss " << loss_sum / logged
                << " caption top-1 " << acc_sum / logged << " temperature 1/" << logit_scale.exp().item<double>()
                << " lr " << lr << " elapsed " << static_cast<int>(secs) << " s ETA " << static_cast<int>(eta) << " s";
      loss_sum = acc_sum = 0;
      logged = 0;
    }
    if ((step + 1) % opt.ckpt_every == 0 || last) save_state(opt, weights.tensors, adam, step + 1);
  }
  write_checkpoint(opt, weights.tensors, cfg);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return res;
}

}  // namespace excel::train
