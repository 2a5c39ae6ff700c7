// Prints a feature cache's summary, verifies every shard's checksum and datasets, and exports
// one sample's static CAM inputs as PNGs (its crop and its static pseudo-label).
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <torch/torch.h>

#include <iostream>

#include "excel/cache/feature_cache.h"
#include "excel/common/logging.h"
#include "excel/data/image_io.h"

DEFINE_string(manifest, "cache/manifest.json", "cache manifest");
DEFINE_bool(verify, true, "recompute and check every shard's checksum");
DEFINE_int64(sample, -1, "export this sample's crop and static pseudo-label (with --view)");
DEFINE_int64(view, 0, "view of --sample");
DEFINE_string(export_dir, "cache_inspect", "folder for exported PNGs");

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  excel::init_logging(argv[0]);
  try {
    excel::cache::Manifest m = excel::cache::read_manifest(FLAGS_manifest);
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
      excel::cache::FeatureStore store(FLAGS_manifest);
      excel::cache::CachedSample s = store.read(FLAGS_sample, FLAGS_view);
      const std::string stem = FLAGS_export_dir + "/sample" + std::to_string(FLAGS_sample) + "_view" + std::to_string(FLAGS_view);
      excel::data::write_rgb(stem + "_crop.png", s.crop.permute({1, 2, 0}));
      excel::data::write_gray(stem + "_static_label.png", s.static_label);
      std::cout << "exported " << stem << "_crop.png and _static_label.png\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "inspect_cache: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
