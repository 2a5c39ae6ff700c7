// The feature cache's manifest (docs/algorithm.md §11): what a cache was built from (data, split,
// crop, views, seed, storage dtype, CLIP checkpoint and its CRC) and its shards with their
// checksums, stored as manifest.json beside the shards. Written by precompute.h, read by
// feature_store.h and by excel_train to refuse a cache of another configuration.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "excel/common/checksum.h"

namespace excel::cache {

// Written into manifest.json and every shard; a reader refuses any other.
inline constexpr const char* kCacheFormat = "excel-feature-cache-v1";

struct CacheConfig {
  std::string data_root, split = "train_aug", labels_file, dataset = "voc";
  std::string clip_checkpoint, bank, bpe_path;
  std::string cache_dir;  // shards, constants.h5 and manifest.json (--cache_dir)
  int64_t crop = 320, views = 1, batch = 4;
  uint64_t seed = 0;
  std::string dtype = "fp16";  // fp32 | fp16 | bf16
  double tau = 0.79;           // box threshold of the static pseudo-labels
};

struct ShardInfo {
  std::string file;
  int64_t first_sample = 0, num_samples = 0, rows = 0;
  uint32_t crc32 = 0;
  bool reused = false;  // complete and matching: skipped by this run
};

struct Manifest {
  CacheConfig config;
  std::string checkpoint_crc32;
  int64_t num_samples = 0, num_shards = 0;
  std::vector<ShardInfo> shards;
  std::string path;  // where it was read from
};

std::string shard_name(int index, int count);  // shard-00003-of-00016.h5

// `path`: the cache folder (--cache_dir) or its manifest.json.
Manifest read_manifest(const std::string& path);
// Refuses a manifest whose configuration differs from cfg, naming the field.
void check_compatible(const Manifest& m, const CacheConfig& cfg);
// manifest.json for `shards` of the cache `cfg` describes (atomically), with `checkpoint_crc32`.
void write_manifest_json(const CacheConfig& cfg, const std::vector<ShardInfo>& shards);
// (file_crc32 and crc32_hex, the form the manifest stores: excel/common/checksum.h.)

}  // namespace excel::cache
