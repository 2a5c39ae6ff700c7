// Static CAMs (training-free ExCEL, §1-§3) for a VOC-layout data set, data-parallel over MPI
// ranks: heat-map overlay PNGs per present class and one HDF5 file of all CAMs.
//   mpirun -np 2 excel_cam_demo --data_root=demo_out/voc --model_clip=... --model_bank=... --output_dir=...
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <mpi.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "app_common.h"
#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"
#include "excel/common/h5.h"
#include "excel/common/timing.h"
#include "excel/data/image_io.h"
#include "excel/data/pixel_norm.h"
#include "excel/data/voc_layout_dataset.h"
#include "excel/eval/image_pipeline.h"
#include "excel/metrics/metrics.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/clip_text.h"
#include "excel/model/clip_vision.h"
#include "excel/model/placement.h"
#include "excel/model/prompts.h"

DEFINE_string(data_split, "train", "list name under ImageSets/Segmentation/");
EXCEL_FLAG_RULE(data_split, "a list name or path (not empty)", !FLAGS_data_split.empty());
DEFINE_int32(model_batch, 4, "images per backbone forward");
EXCEL_FLAG_RULE(model_batch, ">= 1", FLAGS_model_batch >= 1);
DEFINE_string(output_dir, "demo_out/cams", "output folder (overlays/ and cams.h5)");
EXCEL_FLAG_RULE(output_dir, "a folder (not empty)", !FLAGS_output_dir.empty());
EXCEL_FLAG_RULE(model_clip, "a CLIP checkpoint (required)", !FLAGS_model_clip.empty());
EXCEL_FLAG_RULE(model_bank, "an attribute bank .h5 (required)", !FLAGS_model_bank.empty());

namespace fs = std::filesystem;
using namespace excel;

namespace {

void run(int rank, int world) {
  metrics::Metrics mx(apps::metrics_options("cam", rank, world));
  auto& images_total = mx.counter("excel_cam_images_total", "Images whose static CAMs were computed");
  auto& forward_s =
      mx.histogram("excel_cam_forward_seconds", "Backbone + CAM time per batch", metrics::seconds_buckets());
  auto& progress = mx.gauge("excel_cam_progress_ratio", "Fraction of this rank's images done");
  if (mx.bound_port())
    LOG(INFO) << "rank " << rank << ": metrics on http://" << FLAGS_metrics_bind << ":" << mx.bound_port()
              << "/metrics";

  const model::DatasetText& dt = model::dataset_text(FLAGS_data_dataset);
  const int64_t C = static_cast<int64_t>(dt.class_names.size());
  data::VocLayoutDataset set({FLAGS_data_root, FLAGS_data_split, FLAGS_data_labels, FLAGS_data_dataset, C});
  const std::vector<std::string>& ids = set.ids();

  model::ClipWeights weights = model::load_clip_checkpoint(FLAGS_model_clip);
  at::Tensor t_all =
      model::dataset_text_features(weights, FLAGS_data_dataset, FLAGS_model_bank, FLAGS_model_bpe).to(model::device());
  model::place_clip_weights(weights);  // text stays on the CPU (once); the vision tower moves
  model::ClipVision vision(weights);
  const eval::ImagePipeline pipeline(vision, t_all, C, FLAGS_model_crop);
  const int64_t g = pipeline.grid();

  std::vector<std::string> mine;
  std::vector<size_t> mine_idx;
  for (size_t i = static_cast<size_t>(rank); i < ids.size(); i += static_cast<size_t>(world)) {
    mine.push_back(ids[i]);
    mine_idx.push_back(i);
  }
  fs::create_directories(FLAGS_output_dir + "/overlays");
  std::vector<at::Tensor> cams;
  for (size_t s = 0; s < mine.size(); s += static_cast<size_t>(FLAGS_model_batch)) {
    const size_t e = std::min(mine.size(), s + static_cast<size_t>(FLAGS_model_batch));
    std::vector<at::Tensor> rgb, inputs;
    for (size_t i = s; i < e; ++i) {
      at::Tensor img = data::read_rgb(set.image_path(mine_idx[i]));
      inputs.push_back(pipeline.network_input(data::normalize_rgb(img.unsqueeze(0))));
      rgb.push_back(img);
    }
    auto t0 = std::chrono::steady_clock::now();
    at::Tensor cam = pipeline.static_cams(torch::cat(inputs)).cpu();  // overlays, HDF5: host code
    forward_s.Observe(seconds_since(t0));
    for (size_t i = s; i < e; ++i) {
      at::Tensor c = cam[static_cast<int64_t>(i - s)];  // [P, C]
      cams.push_back(c);
      at::Tensor present = set.class_labels(mine_idx[i]);
      for (int64_t k = 0; k < C; ++k) {
        if (present[k].item<float>() < 0.5f) continue;
        at::Tensor over = data::heatmap_overlay(rgb[i - s], c.select(1, k).view({g, g}));
        data::write_rgb(
            FLAGS_output_dir + "/overlays/" + mine[i] + "_" + dt.table_names[static_cast<size_t>(k + 1)] + ".png",
            over);
      }
    }
    images_total.Increment(static_cast<double>(e - s));
    progress.Set(static_cast<double>(e) / static_cast<double>(mine.size()));
    LOG(INFO) << "rank " << rank << ": " << e << "/" << mine.size() << " images";
  }

  // Each rank writes its part; rank 0 merges them in list order into cams.h5.
  const std::string part = FLAGS_output_dir + "/cams.part" + std::to_string(rank) + ".h5";
  {
    h5::File f = h5::File::create(part);
    f.write("cams", cams.empty() ? torch::zeros({0, g * g, C}) : torch::stack(cams));
    f.write_strings("ids", mine.empty() ? std::vector<std::string>{""} : mine);
    f.close();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    std::vector<at::Tensor> parts;
    std::vector<std::vector<std::string>> part_ids;
    for (int r = 0; r < world; ++r) {
      h5::File f =
          h5::File::open(FLAGS_output_dir + "/cams.part" + std::to_string(r) + ".h5", false, h5::Checksum::kRequired);
      parts.push_back(f.read("cams"));
      part_ids.push_back(f.read_strings("ids"));
    }
    std::vector<at::Tensor> ordered;
    for (size_t i = 0; i < ids.size(); ++i)
      ordered.push_back(parts[i % static_cast<size_t>(world)][static_cast<int64_t>(i / static_cast<size_t>(world))]);
    atomic_replace(FLAGS_output_dir + "/cams.h5", [&](const std::string& tmp) {
      {
        h5::File out = h5::File::create(tmp);
        out.write(
            "cams",
            torch::stack(ordered).view({static_cast<int64_t>(ids.size()), g, g, C}).permute({0, 3, 1, 2}).contiguous(),
            true);
        out.write_strings("ids", ids);
        out.write_strings("class_names", dt.class_names);
        out.set_attr("checkpoint", FLAGS_model_clip);
        out.set_attr("crop", static_cast<int64_t>(FLAGS_model_crop));
        out.close();
      }
    });
    for (int r = 0; r < world; ++r) fs::remove(FLAGS_output_dir + "/cams.part" + std::to_string(r) + ".h5");
    LOG(INFO) << "wrote " << FLAGS_output_dir << "/cams.h5 ([" << ids.size() << "," << C << "," << g << "," << g
              << "] static CAMs) and overlays/";
  }
  mx.finish();
}

}  // namespace

int main(int argc, char** argv) {
  return apps::run_mpi_main(
      argc, argv, "excel_cam_demo",
      "usage: mpirun -np N excel_cam_demo --data_root=DIR --model_clip=CKPT --model_bank=BANK.h5 --output_dir=DIR\n"
      "Training-free static CAMs: overlay PNGs per present class and one HDF5 file of all CAMs.",
      [](int rank, int world) { run(rank, world); });
}
