// Reading the feature cache (docs/algorithm.md §11): random access by (sample, view) over the
// shards that cache/precompute.h wrote, a read-ahead thread, and full verification.
#pragma once
#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "excel/cache/manifest.h"

namespace excel::cache {

// Recomputes every shard's checksum and checks its datasets; throws FormatError naming the shard.
void verify_cache(const Manifest& m);

// How read() returns the floating-point fields: converted to float32 (kFloat32), or as the
// shards store them (kStored: float32, float16 or bfloat16), for a caller that converts them
// where they are used (on the GPU, after copying half the bytes: docs/architecture.md, "Devices").
enum class RowPrecision { kFloat32, kStored };

struct CachedSample {
  at::Tensor feats, value_proj, cls_row, attn_mean, attn_sel;  // float32, or the cache's dtype (kStored)
  at::Tensor static_label, crop, labels;                       // uint8
  int64_t sample = 0, view = 0;
};

// Random access by (sample, view) over all shards. Not thread-safe.
class FeatureStore {
 public:
  explicit FeatureStore(const std::string& path);  // the cache folder or its manifest.json
  ~FeatureStore();
  const Manifest& manifest() const { return manifest_; }
  int64_t num_samples() const { return manifest_.num_samples; }
  int64_t views() const { return manifest_.config.views; }
  CachedSample read(int64_t sample, int64_t view, RowPrecision precision = RowPrecision::kFloat32) const;
  // Constants of the backbone needed after the switch.
  at::Tensor text_features, ln_post_weight, ln_post_bias, proj;
  int64_t vision_heads = 0, patch = 16;
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  struct Open;
  Manifest manifest_;
  std::vector<std::unique_ptr<Open>> shards_;
  mutable uint64_t bytes_read_ = 0;
};

// Reads (sample, view) rows ahead on a background thread, holding at most `budget_bytes` of
// decoded samples. While it runs, only its thread touches the store's HDF5 files (Debian's
// serial HDF5 is not thread-safe). next() returns the rows in order.
class CachePrefetcher {
 public:
  CachePrefetcher(const FeatureStore& store, std::vector<std::pair<int64_t, int64_t>> order, uint64_t budget_bytes,
                  RowPrecision precision = RowPrecision::kFloat32);
  ~CachePrefetcher();
  CachedSample next();  // blocks until the next row is ready; rethrows a read error
  double wait_seconds() const { return wait_s_; }

 private:
  void run();
  const FeatureStore& store_;
  std::vector<std::pair<int64_t, int64_t>> order_;
  uint64_t budget_, held_ = 0;
  RowPrecision precision_;
  size_t produced_ = 0, consumed_ = 0;
  std::deque<std::pair<CachedSample, uint64_t>> queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::exception_ptr error_;
  double wait_s_ = 0;
  std::thread thread_;
};

uint64_t sample_bytes(const CachedSample& s);

}  // namespace excel::cache
