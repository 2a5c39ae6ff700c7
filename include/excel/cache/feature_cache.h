// The frozen-backbone feature cache (docs/algorithm.md §11): per (sample, view) everything training
// needs before and after the dynamic-CAM switch, in HDF5 shards written one per rank, plus a
// JSON manifest. Shard layout (first axis = rows, one row per chunk; row = sample-major, view-minor):
//   feats [R,L,P,W]  value_proj [R,P,W]  cls_row [R,W]         (storage dtype: f32 / f16 / bf16 bits)
//   attn_mean [R,P,P]  attn_sel [R,P,P]                          (storage dtype)
//   static_label [R,S,S] u8  crop [R,3,S,S] u8  labels [R,C] u8  sample_index [R] i64  view [R] i64
// constants.h5 beside the manifest: text_features, ln_post_weight/bias, proj, vision_heads.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <functional>
#include <string>
#include <vector>

namespace excel::cache {

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

// Progress of one shard after each written batch.
struct ShardProgress {
  int64_t rows_done = 0, rows_total = 0, batch_rows = 0;
  double batch_seconds = 0;
  uint64_t bytes_written = 0;  // payload bytes of this batch
};

// Rank `rank` of `world` writes its shard (a contiguous slice of the list) to a temporary name
// and renames it when complete; a complete shard written with the same configuration is kept.
ShardInfo precompute_shard(const CacheConfig& cfg, int rank, int world,
                           const std::function<void(const ShardProgress&)>& progress = {});
// Rank 0, after every shard is complete: constants.h5 and manifest.json (atomically).
void write_manifest(const CacheConfig& cfg, const std::vector<ShardInfo>& shards);
// `path`: the cache folder (--cache_dir) or its manifest.json.
Manifest read_manifest(const std::string& path);
// Refuses a manifest whose configuration differs from cfg, naming the field.
void check_compatible(const Manifest& m, const CacheConfig& cfg);
// Recomputes every shard's checksum and checks its datasets; throws FormatError naming the shard.
void verify_cache(const Manifest& m);
uint32_t file_crc32(const std::string& path);
std::string crc32_hex(uint32_t crc);  // 8 lower-case hex digits, as the manifest stores it

struct CachedSample {
  at::Tensor feats, value_proj, cls_row, attn_mean, attn_sel;  // float32
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
  CachedSample read(int64_t sample, int64_t view) const;
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
  CachePrefetcher(const FeatureStore& store, std::vector<std::pair<int64_t, int64_t>> order, uint64_t budget_bytes);
  ~CachePrefetcher();
  CachedSample next();  // blocks until the next row is ready; rethrows a read error
  double wait_seconds() const { return wait_s_; }

 private:
  void run();
  const FeatureStore& store_;
  std::vector<std::pair<int64_t, int64_t>> order_;
  uint64_t budget_, held_ = 0;
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
