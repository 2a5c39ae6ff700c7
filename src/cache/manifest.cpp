#include "excel/cache/manifest.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"

namespace fs = std::filesystem;

namespace excel::cache {
namespace {

// manifest.json as it is stored: one struct per JSON object, (de)serialised by nlohmann's macros,
// so the writer and the reader below cannot disagree on a field.

struct ShardJson {
  std::string file;
  int64_t first_sample = 0, num_samples = 0, rows = 0;
  std::string crc32;  // 8 lower-case hex digits
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ShardJson, file, first_sample, num_samples, rows, crc32)

struct ManifestJson {
  std::string format, checkpoint, checkpoint_crc32, data_root, split, dataset;
  int64_t crop = 0, views = 0;
  uint64_t seed = 0;
  std::string dtype;
  double tau = 0;
  int64_t num_samples = 0;
  std::vector<ShardJson> shards;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ManifestJson, format, checkpoint, checkpoint_crc32, data_root, split, dataset, crop,
                                   views, seed, dtype, tau, num_samples, shards)

}  // namespace

std::string shard_name(int index, int count) {
  char b[64];
  std::snprintf(b, sizeof(b), "shard-%05d-of-%05d.h5", index, count);
  return b;
}

Manifest read_manifest(const std::string& dir_or_manifest) {
  const std::string path = fs::is_directory(dir_or_manifest) ? dir_or_manifest + "/manifest.json" : dir_or_manifest;
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cache manifest not found (run excel_precompute first)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw FormatError(path + ": invalid manifest JSON: " + e.what());
  }
  Manifest m;
  m.path = path;
  try {
    const auto mj = j.get<ManifestJson>();
    if (mj.format != kCacheFormat)
      throw FormatError(path + ": manifest format '" + mj.format + "', this build reads '" + kCacheFormat + "'");
    auto& c = m.config;
    c.cache_dir = fs::path(path).has_parent_path() ? fs::path(path).parent_path().string() : ".";
    c.clip_checkpoint = mj.checkpoint;
    c.data_root = mj.data_root;
    c.split = mj.split;
    c.dataset = mj.dataset;
    c.crop = mj.crop;
    c.views = mj.views;
    c.seed = mj.seed;
    c.dtype = mj.dtype;
    c.tau = mj.tau;
    if (c.dtype != "fp32" && c.dtype != "fp16" && c.dtype != "bf16")
      throw FormatError(path + ": storage dtype '" + c.dtype + "' is none of fp32, fp16, bf16");
    if (c.crop <= 0 || c.views <= 0 || mj.num_samples < 0)
      throw FormatError(path + ": crop and views must be positive, num_samples not negative");
    m.checkpoint_crc32 = mj.checkpoint_crc32;
    m.num_samples = mj.num_samples;
    for (const ShardJson& s : mj.shards) {
      if (s.file.empty() || s.file.find('/') != std::string::npos || s.file == "." || s.file == "..")
        throw FormatError(path + ": shard name '" + s.file + "' is not a file name beside the manifest");
      size_t parsed = 0;
      const unsigned long crc = std::stoul(s.crc32, &parsed, 16);
      if (parsed != s.crc32.size() || s.crc32.size() != 8)
        throw FormatError(path + ": shard " + s.file + ": crc32 '" + s.crc32 + "' is not 8 hex digits");
      m.shards.push_back({s.file, s.first_sample, s.num_samples, s.rows, static_cast<uint32_t>(crc)});
    }
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": manifest field missing or of the wrong type: " + e.what());
  } catch (const std::logic_error& e) {  // std::stoul on a non-number
    throw FormatError(path + ": manifest crc32 is not hexadecimal: " + e.what());
  }
  m.num_shards = static_cast<int64_t>(m.shards.size());
  return m;
}

void check_compatible(const Manifest& m, const CacheConfig& c) {
  auto differ = [&](const std::string& field, const std::string& have, const std::string& want) {
    if (have != want)
      throw ConfigError(m.path + ": cache built with " + field + " = " + have + ", but this run asks for " + want);
  };
  differ("split", m.config.split, c.split);
  differ("dataset", m.config.dataset, c.dataset);
  differ("crop", std::to_string(m.config.crop), std::to_string(c.crop));
  differ("seed", std::to_string(m.config.seed), std::to_string(c.seed));
  if (!c.clip_checkpoint.empty() && fs::exists(c.clip_checkpoint))
    differ("checkpoint_crc32", m.checkpoint_crc32, crc32_hex(file_crc32(c.clip_checkpoint)));
}

void write_manifest_json(const CacheConfig& cfg, const std::vector<ShardInfo>& shards) {
  ManifestJson m;
  m.format = kCacheFormat;
  m.checkpoint = cfg.clip_checkpoint;
  m.checkpoint_crc32 = crc32_hex(file_crc32(cfg.clip_checkpoint));
  m.data_root = cfg.data_root;
  m.split = cfg.split;
  m.dataset = cfg.dataset;
  m.crop = cfg.crop;
  m.views = cfg.views;
  m.seed = cfg.seed;
  m.dtype = cfg.dtype;
  m.tau = cfg.tau;
  for (const auto& s : shards) {
    m.num_samples += s.num_samples;
    m.shards.push_back({s.file, s.first_sample, s.num_samples, s.rows, crc32_hex(s.crc32)});
  }
  const nlohmann::json j = m;
  atomic_write(cfg.cache_dir + "/manifest.json", j.dump(2) + "\n");
}

}  // namespace excel::cache
