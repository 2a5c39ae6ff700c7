// excel_eval's work (docs/algorithm.md §10): pseudo-labels and segmentation predictions for every
// image of a split, scored against the ground truth. Each rank takes images i with
// i % world == rank; the confusion matrices are summed over ranks, so the table does not depend
// on the number of ranks.
//   training_free: static CAMs -> §4 without G (tau 0.79) -> PAR -> pseudo-labels (§10.5);
//   checkpoint:    dynamic CAMs with flip fusion and G = P (§4.8) -> pseudo-labels, and
//                  multi-scale + flip segmentation (§10.2).
// Optional dense CRF (§10.3): then each kind is scored both without it (PAR for pseudo-labels, the
// arg-max for segmentation) and with it, in one pass. Masks are written as VOC-palette PNGs (the
// CRF's when on), CAM overlays and picture strips (picture_strip.h) as PNGs.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "excel/eval/dense_crf.h"

namespace excel::metrics {
class Metrics;
}
namespace excel::comm {
class Communicator;
}

namespace excel::eval {

struct EvalConfig {
  std::string data_root, split = "val", labels_file, dataset = "voc";
  std::string clip_checkpoint, bank, bpe_path;
  std::string mode = "training_free";  // training_free | checkpoint
  std::string checkpoint;              // checkpoint mode: excel_train's checkpoint.h5
  int64_t crop = 320, decoder_heads = 8;
  double tau = 0.79;                                // box threshold of the pseudo-labels (§10.5)
  std::vector<int64_t> scales{320, 224, 384, 480};  // segmentation sides; the first is the base
  bool flip_average_at_base = false;                // COCO: true (§10.2)
  bool crf = false;
  DenseCrfParams crf_params;
  std::string output_dir = "eval";
  int64_t save_masks = -1;    // first N images of each rank's share get mask PNGs (-1: all)
  int64_t save_overlays = 8;  // first N images of each rank's share get CAM overlays (-1: all)
  bool test_layout = false;   // also write results/VOC2012/Segmentation/comp6_test_cls/<id>.png
  int64_t limit = 0;          // first N images of the split only (0: all)
  int64_t strips = 0;         // picture strips of the first N images of the split (with ground truth)
};

struct EvalTable {
  std::string name;      // pseudo_label | segmentation, and pseudo_label_crf | segmentation_crf with the CRF
  at::Tensor confusion;  // [K,K] int64, summed over ranks
};

struct EvalReport {
  int64_t images = 0, scored_images = 0;  // over all ranks
  double seconds = 0;                     // wall time of this rank's loop
  std::vector<EvalTable> tables;          // empty tables are left out
};

// Runs on every rank (comm may be null for one process); rank 0 writes table.csv and
// table.json to output_dir.
EvalReport run_evaluation(const EvalConfig& cfg, metrics::Metrics* mx, comm::Communicator* comm);

// The §10.4 table as text (what is printed), CSV and JSON; class_names has K entries.
std::string format_table(const EvalTable& t, const std::vector<std::string>& class_names);
void write_tables(const std::string& dir, const EvalConfig& cfg, const EvalReport& r,
                  const std::vector<std::string>& class_names, int world_size);

}  // namespace excel::eval
