// Writing the frozen-backbone feature cache: per (sample, view) everything training
// needs before and after the dynamic-CAM switch, in HDF5 shards written one per rank, plus
// constants.h5 and the manifest (cache/manifest.h). Shard layout (first axis = rows, one row per
// chunk; row = sample-major, view-minor):
//   feats [R,L,P,W]  value_proj [R,P,W]  cls_row [R,W]         (storage dtype: f32 / f16 / bf16 bits)
//   attn_mean [R,P,P]  attn_sel [R,P,P]                          (storage dtype)
//   static_label [R,S,S] u8  crop [R,3,S,S] u8  labels [R,C] u8  sample_index [R] i64  view [R] i64
// constants.h5 beside the manifest: text_features, ln_post_weight/bias, proj, vision_heads.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "excel/cache/manifest.h"

namespace excel::cache {

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
}  // namespace excel::cache
