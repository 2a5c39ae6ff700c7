// manifest.json as it is stored: one struct per JSON object, (de)serialised by nlohmann's macros,
// so the writer (precompute.cpp) and the reader (feature_store.cpp) cannot disagree on a field.
// Private to the cache module; Manifest and ShardInfo (feature_cache.h) are what callers see.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace excel::cache {

// Written into manifest.json and every shard; a reader refuses any other.
inline constexpr const char* kCacheFormat = "excel-feature-cache-v1";

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

}  // namespace excel::cache
