#include <glog/logging.h>
#include <torch/torch.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "excel/cache/precompute.h"
#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"
#include "excel/common/h5.h"
#include "excel/common/timing.h"
#include "excel/data/voc_layout_dataset.h"
#include "excel/model/cam.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/clip_text.h"
#include "excel/model/clip_vision.h"
#include "excel/model/placement.h"
#include "excel/model/prompts.h"
#include "excel/model/pseudo_label.h"
#include "excel/model/tokenizer.h"
#include "excel/model/tse.h"

namespace fs = std::filesystem;

namespace excel::cache {
namespace {

at::ScalarType storage_type(const std::string& dtype) {
  if (dtype == "fp32") return at::kFloat;
  if (dtype == "fp16") return at::kHalf;
  if (dtype == "bf16") return at::kShort;  // raw bfloat16 bits
  throw ConfigError("cache dtype must be fp32, fp16 or bf16, not '" + dtype + "'");
}

at::Tensor to_storage(const at::Tensor& t, const std::string& dtype) {
  if (dtype == "bf16") return t.to(at::kBFloat16).view(at::kShort);
  return t.to(storage_type(dtype));
}

// Configuration fields a shard records; a mismatch names the field.
std::vector<std::pair<std::string, std::string>> identity(const CacheConfig& c, const std::string& ckpt_crc, int world,
                                                          int64_t num_samples) {
  return {{"checkpoint_crc32", ckpt_crc},
          {"split", c.split},
          {"dataset", c.dataset},
          {"crop", std::to_string(c.crop)},
          {"views", std::to_string(c.views)},
          {"seed", std::to_string(c.seed)},
          {"dtype", c.dtype},
          {"tau", std::to_string(c.tau)},
          {"shards", std::to_string(world)},
          {"num_samples", std::to_string(num_samples)}};
}

data::VocLayoutDataset open_dataset(const CacheConfig& c) {
  return data::VocLayoutDataset({c.data_root, c.split, c.labels_file, c.dataset,
                                 static_cast<int64_t>(model::dataset_text(c.dataset).class_names.size())});
}

}  // namespace

ShardInfo precompute_shard(const CacheConfig& cfg, int rank, int world,
                           const std::function<void(const ShardProgress&)>& progress) {
  storage_type(cfg.dtype);
  data::VocLayoutDataset ds = open_dataset(cfg);
  const int64_t n = static_cast<int64_t>(ds.size());
  ShardInfo info;
  info.file = shard_name(rank, world);
  info.first_sample = rank * n / world;
  info.num_samples = (rank + 1) * n / world - info.first_sample;
  info.rows = info.num_samples * cfg.views;
  fs::create_directories(cfg.cache_dir);
  const std::string final_path = cfg.cache_dir + "/" + info.file, tmp = temp_path_for(final_path);
  const std::string ckpt_crc = crc32_hex(file_crc32(cfg.clip_checkpoint));
  const auto ident = identity(cfg, ckpt_crc, world, n);

  if (fs::exists(final_path)) {  // complete shard from an earlier run: keep it if it matches
    h5::File f = h5::File::open(final_path, false, h5::Checksum::kRequired);
    if (!f.has_attr("format") || f.attr_string("format") != kCacheFormat)
      throw FormatError(final_path + ": not a feature-cache shard");
    for (const auto& kv : ident) {
      const std::string have = f.attr_string(kv.first);
      if (have != kv.second)
        throw ConfigError(final_path + ": cache was built with " + kv.first + " = " + have + ", this run has " +
                          kv.second + " (use another --cache_dir or delete the cache)");
    }
    info.crc32 = file_crc32(final_path);
    info.reused = true;
    return info;
  }
  fs::remove(tmp);  // partial shard of a killed run: redo it

  model::ClipWeights weights = model::load_clip_checkpoint(cfg.clip_checkpoint);
  const model::DatasetText& dt = model::dataset_text(cfg.dataset);
  const int64_t C = static_cast<int64_t>(dt.class_names.size());
  // Text features on the CPU (once), then the vision tower moves to the device (model/placement.h).
  at::Tensor text = model::dataset_text_features(weights, cfg.dataset, cfg.bank, cfg.bpe_path).to(model::device());
  model::place_clip_weights(weights);
  const int64_t g = cfg.crop / weights.config.patch, P = g * g, L = weights.config.vision_layers,
                W = weights.config.vision_width, S = cfg.crop;
  model::ClipVision vision(weights, g);
  const at::ScalarType st = storage_type(cfg.dtype);
  atomic_replace(final_path, [&](const std::string& tmp) {
    {
      h5::File f = h5::File::create(tmp);
      f.set_attr("format", std::string(kCacheFormat));
      for (const auto& kv : ident) f.set_attr(kv.first, kv.second);
      f.set_attr("first_sample", info.first_sample);
      f.set_attr("rows", info.rows);
      f.create_rows("feats", st, {info.rows, L, P, W});
      f.create_rows("value_proj", st, {info.rows, P, W});
      f.create_rows("cls_row", st, {info.rows, W});
      f.create_rows("attn_mean", st, {info.rows, P, P});
      f.create_rows("attn_sel", st, {info.rows, P, P});
      f.create_rows("static_label", at::kByte, {info.rows, S, S});
      f.create_rows("crop", at::kByte, {info.rows, 3, S, S});
      f.create_rows("labels", at::kByte, {info.rows, C});
      f.create_rows("sample_index", at::kLong, {info.rows});
      f.create_rows("view", at::kLong, {info.rows});
      data::AugmentOptions aug;
      aug.crop = S;
      aug.gt_guided_crop = cfg.dataset == "voc";
      for (int64_t r0 = 0; r0 < info.rows; r0 += cfg.batch) {
        const auto t_batch = std::chrono::steady_clock::now();
        const int64_t r1 = std::min(info.rows, r0 + cfg.batch), B = r1 - r0;
        std::vector<at::Tensor> xs, ys;
        std::vector<int64_t> samples, views;
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t i = info.first_sample + r / cfg.views, v = r % cfg.views;
          data::TrainSample s = ds.train_sample(static_cast<size_t>(i), cfg.seed, static_cast<uint64_t>(v), aug);
          xs.push_back(s.image);
          ys.push_back(s.cls);
          samples.push_back(i);
          views.push_back(v);
        }
        at::Tensor x = torch::stack(xs).to(model::device()), labels = torch::stack(ys).to(model::device());
        model::VisionOptions opt;
        opt.keep_value_proj = true;
        model::VisionOutputs vo = vision.forward(x, {}, opt);
        at::Tensor cam = model::surgery_cam(vo.features, text, C);
        at::Tensor par = model::denormalize_for_par(x);
        std::vector<at::Tensor> means, sels, pls;
        for (int64_t b = 0; b < B; ++b) {
          model::AttentionAggregates agg = model::attention_aggregates(vo.attn_all.select(1, b));
          means.push_back(agg.mean);
          sels.push_back(agg.selected);
          auto refined = model::refine_cams_with_matrix(cam[b], agg.mean, labels[b], cfg.tau, g, g);
          pls.push_back(model::pseudo_label(refined, par[b].unsqueeze(0), S, S).to(at::kByte));
        }
        uint64_t bytes = 0;
        auto write = [&](const char* name, const at::Tensor& t) {
          f.write_rows(name, r0, t.cpu());  // HDF5 is host code: one copy per field and batch
          bytes += static_cast<uint64_t>(t.numel() * t.element_size());
        };
        write("feats", to_storage(vo.feats_all.slice(2, 1).transpose(0, 1), cfg.dtype));
        write("value_proj", to_storage(vo.value_proj.slice(1, 1), cfg.dtype));
        write("cls_row", to_storage(vo.surgery.select(1, 0), cfg.dtype));
        write("attn_mean", to_storage(torch::stack(means), cfg.dtype));
        write("attn_sel", to_storage(torch::stack(sels), cfg.dtype));
        write("static_label", torch::stack(pls));
        write("crop", (par * 255.0f).round().to(at::kByte));
        write("labels", labels.to(at::kByte));
        write("sample_index", torch::tensor(samples));
        write("view", torch::tensor(views));
        LOG(INFO) << info.file << ": " << r1 << "/" << info.rows << " rows";
        if (progress) progress({r1, info.rows, B, seconds_since(t_batch), bytes});
      }
      f.close();  // writes the checksum block
    }
    info.crc32 = file_crc32(tmp);
  });
  return info;
}

void write_manifest(const CacheConfig& cfg, const std::vector<ShardInfo>& shards) {
  // Backbone constants used after the dynamic-CAM switch.
  model::ClipWeights weights = model::load_clip_checkpoint(cfg.clip_checkpoint);
  at::Tensor text = model::dataset_text_features(weights, cfg.dataset, cfg.bank, cfg.bpe_path);
  {
    atomic_replace(cfg.cache_dir + "/constants.h5", [&](const std::string& tmp) {
      {
        h5::File f = h5::File::create(tmp);
        f.write("text_features", text);
        f.write("ln_post_weight", weights.get("visual.ln_post.weight"));
        f.write("ln_post_bias", weights.get("visual.ln_post.bias"));
        f.write("proj", weights.get("visual.proj"));
        f.set_attr("vision_heads", weights.config.vision_heads);
        f.set_attr("patch", weights.config.patch);
        f.close();
      }
    });
  }
  write_manifest_json(cfg, shards);
}

}  // namespace excel::cache
