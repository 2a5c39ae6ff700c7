// Prints a feature cache's summary, verifies every shard's checksum and datasets, and exports
// one sample's crop, static CAMs (recomputed from the cached surgery tokens) and static
// pseudo-label as PNGs.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <torch/torch.h>

#include <iostream>

#include "excel/cache/feature_store.h"
#include "excel/common/logging.h"
#include "excel/common/tool_flags.h"
#include "excel/data/image_io.h"
#include "excel/model/cam.h"
#include "excel/model/clip_vision.h"
#include "excel/model/prompts.h"

DEFINE_string(cache_dir, "cache", "feature-cache folder of excel_precompute (or its manifest.json)");
EXCEL_FLAG_RULE(cache_dir, "a folder or manifest.json (not empty)", !FLAGS_cache_dir.empty());
DEFINE_bool(verify, true, "recompute and check every shard's checksum");
DEFINE_int64(sample, -1, "export this sample's crop and static pseudo-label (with --view; -1: none)");
EXCEL_FLAG_RULE(sample, ">= -1", FLAGS_sample >= -1);
DEFINE_int64(view, 0, "view of --sample");
EXCEL_FLAG_RULE(view, ">= 0", FLAGS_view >= 0);
DEFINE_string(output_dir, "cache_inspect", "folder for exported PNGs");
EXCEL_FLAG_RULE(output_dir, "a folder (not empty)", !FLAGS_output_dir.empty());

int main(int argc, char** argv) {
  excel::parse_tool_flags(
      &argc, &argv,
      "Prints a feature cache's summary, verifies every shard's checksum and datasets, and exports one sample's crop, "
      "static CAMs (recomputed from the cached surgery tokens) and static pseudo-label as PNGs.");
  excel::init_logging(argv[0]);
  try {
    excel::cache::Manifest m = excel::cache::read_manifest(FLAGS_cache_dir);
    int64_t rows = 0;
    for (const auto& s : m.shards) rows += s.rows;
    std::cout << m.path << ": " << m.num_samples << " samples x " << m.config.views << " views = " << rows
              << " rows in " << m.shards.size() << " shards; dtype " << m.config.dtype << ", crop " << m.config.crop
              << ", seed " << m.config.seed << ", checkpoint crc32 " << m.checkpoint_crc32 << "\n";
    if (FLAGS_verify) {
      excel::cache::verify_cache(m);
      std::cout << "verified: every shard's checksum and datasets match the manifest\n";
    }
    if (FLAGS_sample >= 0) {
      excel::cache::FeatureStore store(FLAGS_cache_dir);
      excel::cache::CachedSample s = store.read(FLAGS_sample, FLAGS_view);
      const std::string stem =
          FLAGS_output_dir + "/sample" + std::to_string(FLAGS_sample) + "_view" + std::to_string(FLAGS_view);
      at::Tensor rgb = s.crop.permute({1, 2, 0}).contiguous();
      excel::data::write_rgb(stem + "_crop.png", rgb);
      // Class-index map scaled for viewing (index * 12), the raw indices are in the shard.
      excel::data::write_gray(stem + "_static_label.png",
                              (s.static_label.to(torch::kInt) * 12).clamp(0, 255).to(torch::kByte));
      const int64_t entry = s.feats.size(0) - excel::model::ClipVision::kSurgeryBlocks - 1;
      at::Tensor surgery = torch::cat({s.cls_row.unsqueeze(0), s.feats[entry]}, 0).unsqueeze(0);
      at::Tensor f = excel::model::project_surgery(surgery, store.ln_post_weight, store.ln_post_bias, store.proj);
      const auto& dt = excel::model::dataset_text(m.config.dataset);
      const int64_t C = static_cast<int64_t>(dt.class_names.size()), g = m.config.crop / store.patch;
      at::Tensor cam = excel::model::surgery_cam(f, store.text_features, C)[0];
      int exported = 0;
      for (int64_t c = 0; c < C; ++c) {
        if (!s.labels[c].item<int>()) continue;
        excel::data::write_rgb(stem + "_cam_" + dt.table_names[static_cast<size_t>(c + 1)] + ".png",
                               excel::data::heatmap_overlay(rgb, cam.select(1, c).view({g, g})));
        ++exported;
      }
      std::cout << "exported " << stem << "_crop.png, _static_label.png and " << exported << " CAM overlays\n";
    }
  } catch (const std::exception& e) {
    excel::log_error_and_flush(std::string("inspect_cache: error: ") + e.what());
    return 1;
  }
  return 0;
}
