#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "excel/cache/feature_store.h"
#include "excel/common/errors.h"
#include "excel/common/h5.h"
#include "excel/common/timing.h"

namespace fs = std::filesystem;

namespace excel::cache {
namespace {

// bf16 rows are stored as 16-bit integers (HDF5 has no bfloat16 type).
at::Tensor from_storage(const at::Tensor& t, const std::string& dtype, RowPrecision precision) {
  at::Tensor stored = dtype == "bf16" ? t.view(at::kBFloat16) : t;
  return precision == RowPrecision::kStored ? stored : stored.to(at::kFloat);
}

}  // namespace

void verify_cache(const Manifest& m) {
  const std::string dir = m.config.cache_dir;
  int64_t expect_first = 0;
  for (const auto& s : m.shards) {
    const std::string p = dir + "/" + s.file;
    if (!fs::exists(p)) throw FormatError(p + ": shard listed in " + m.path + " is missing");
    const uint32_t crc = file_crc32(p);
    if (crc != s.crc32)
      throw FormatError(p + ": checksum " + crc32_hex(crc) + " differs from the manifest's " + crc32_hex(s.crc32) +
                        " (truncated or altered shard)");
    h5::File f = h5::File::open(p, false, h5::Checksum::kRequired);
    for (const char* ds : {"feats", "value_proj", "cls_row", "attn_mean", "attn_sel", "static_label", "crop", "labels",
                           "sample_index", "view"}) {
      if (!f.exists(ds)) throw FormatError(p + ": dataset '" + std::string(ds) + "' missing");
      if (f.shape(ds)[0] != s.rows)
        throw FormatError(p + ": dataset '" + std::string(ds) + "' has " + std::to_string(f.shape(ds)[0]) +
                          " rows, manifest says " + std::to_string(s.rows));
    }
    if (s.first_sample != expect_first) throw FormatError(m.path + ": shards do not cover the samples contiguously");
    expect_first += s.num_samples;
  }
  if (expect_first != m.num_samples)
    throw FormatError(m.path + ": shards hold " + std::to_string(expect_first) + " samples, manifest says " +
                      std::to_string(m.num_samples));
}

struct FeatureStore::Open {
  h5::File file;
  ShardInfo info;
};

FeatureStore::FeatureStore(const std::string& path) : manifest_(read_manifest(path)) {
  const std::string dir = manifest_.config.cache_dir;
  // The manifest's own numbers first: shards covering the samples in order, views rows each.
  int64_t next = 0;
  for (const auto& s : manifest_.shards) {
    if (s.first_sample != next || s.num_samples < 0 || s.num_samples > (int64_t{1} << 40) ||
        manifest_.config.views < 1 || manifest_.config.views > 1024 || s.rows != s.num_samples * manifest_.config.views)
      throw FormatError(manifest_.path + ": shard " + s.file + " does not continue the samples (first " +
                        std::to_string(s.first_sample) + ", " + std::to_string(s.num_samples) + " samples, " +
                        std::to_string(s.rows) + " rows)");
    next += s.num_samples;
  }
  if (next != manifest_.num_samples)
    throw FormatError(manifest_.path + ": shards hold " + std::to_string(next) + " samples, manifest says " +
                      std::to_string(manifest_.num_samples));
  for (const auto& s : manifest_.shards) {
    if (!fs::is_regular_file(dir + "/" + s.file))
      throw InputError(dir + "/" + s.file + ": shard listed in " + manifest_.path + " is missing");
    // The whole shard's CRC32 once, here, per process (docs/robustness.md).
    auto o = std::make_unique<Open>(Open{h5::File::open(dir + "/" + s.file, false, h5::Checksum::kRequired), s});
    if (o->file.shape("feats")[0] != s.rows)
      throw FormatError(dir + "/" + s.file + ": " + std::to_string(o->file.shape("feats")[0]) +
                        " rows, manifest says " + std::to_string(s.rows) + " (truncated shard?)");
    shards_.push_back(std::move(o));
  }
  h5::File c = h5::File::open(dir + "/constants.h5", false, h5::Checksum::kRequired);
  text_features = c.read("text_features");
  ln_post_weight = c.read("ln_post_weight");
  ln_post_bias = c.read("ln_post_bias");
  proj = c.read("proj");
  vision_heads = c.attr_int("vision_heads");
  patch = c.attr_int("patch");
}

FeatureStore::~FeatureStore() = default;

CachedSample FeatureStore::read(int64_t sample, int64_t view, RowPrecision precision) const {
  if (sample < 0 || sample >= manifest_.num_samples || view < 0 || view >= manifest_.config.views)
    throw InputError(manifest_.path + ": no cached row for sample " + std::to_string(sample) + " view " +
                     std::to_string(view));
  const Open* o = nullptr;
  for (const auto& s : shards_) {
    if (sample >= s->info.first_sample && sample < s->info.first_sample + s->info.num_samples) {
      o = s.get();
      break;
    }
  }
  if (!o) throw FormatError(manifest_.path + ": no shard holds sample " + std::to_string(sample));
  const std::string shard = manifest_.config.cache_dir + "/" + o->info.file;
  const int64_t row = (sample - o->info.first_sample) * manifest_.config.views + view;
  const std::string& dt = manifest_.config.dtype;
  CachedSample c;
  auto rd = [&](const char* name) {
    at::Tensor t = o->file.read_rows(name, row, 1)[0];
    bytes_read_ += static_cast<uint64_t>(t.numel() * t.element_size());
    return t;
  };
  c.feats = from_storage(rd("feats"), dt, precision);
  c.value_proj = from_storage(rd("value_proj"), dt, precision);
  c.cls_row = from_storage(rd("cls_row"), dt, precision);
  c.attn_mean = from_storage(rd("attn_mean"), dt, precision);
  c.attn_sel = from_storage(rd("attn_sel"), dt, precision);
  c.static_label = rd("static_label");
  c.crop = rd("crop");
  c.labels = rd("labels");
  c.sample = rd("sample_index").item<int64_t>();
  c.view = rd("view").item<int64_t>();
  if (c.sample != sample || c.view != view)
    throw FormatError(shard + ": row for sample " + std::to_string(sample) + " holds sample " +
                      std::to_string(c.sample) + " (shard and " + manifest_.path + " disagree)");
  return c;
}

uint64_t sample_bytes(const CachedSample& s) {
  uint64_t n = 0;
  for (const at::Tensor* t :
       {&s.feats, &s.value_proj, &s.cls_row, &s.attn_mean, &s.attn_sel, &s.static_label, &s.crop, &s.labels})
    n += static_cast<uint64_t>(t->numel() * t->element_size());
  return n;
}

CachePrefetcher::CachePrefetcher(const FeatureStore& store, std::vector<std::pair<int64_t, int64_t>> order,
                                 uint64_t budget_bytes, RowPrecision precision)
    : store_(store),
      order_(std::move(order)),
      budget_(budget_bytes),
      precision_(precision),
      thread_([this] { run(); }) {}

CachePrefetcher::~CachePrefetcher() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void CachePrefetcher::run() {
  try {
    for (const auto& [sample, view] : order_) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || queue_.empty() || held_ < budget_; });
        if (stop_) return;
      }
      CachedSample s = store_.read(sample, view, precision_);
      const uint64_t bytes = sample_bytes(s);
      {
        std::lock_guard<std::mutex> lk(mu_);
        queue_.emplace_back(std::move(s), bytes);
        held_ += bytes;
        ++produced_;
      }
      cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lk(mu_);
    error_ = std::current_exception();
    cv_.notify_all();
  }
}

CachedSample CachePrefetcher::next() {
  auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lk(mu_);
  if (consumed_ >= order_.size()) throw InputError("cache prefetcher: read past the scheduled rows");
  cv_.wait(lk, [&] { return !queue_.empty() || error_; });
  if (queue_.empty() && error_) std::rethrow_exception(error_);
  auto item = std::move(queue_.front());
  queue_.pop_front();
  held_ -= item.second;
  ++consumed_;
  lk.unlock();
  cv_.notify_all();
  wait_s_ += seconds_since(t0);
  return std::move(item.first);
}

}  // namespace excel::cache
