#include "excel/eval/evaluator.h"

#include <glog/logging.h>
#include <torch/torch.h>

#include <chrono>

#include "excel/comm/communicator.h"
#include "excel/common/errors.h"
#include "excel/common/timing.h"
#include "excel/data/image_io.h"
#include "excel/data/palette_png.h"
#include "excel/data/voc_layout_dataset.h"
#include "excel/eval/image_pipeline.h"
#include "excel/eval/picture_strip.h"
#include "excel/eval/seg_metrics.h"
#include "excel/metrics/metrics.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/clip_text.h"
#include "excel/model/clip_vision.h"
#include "excel/model/heads.h"
#include "excel/model/heads_file.h"
#include "excel/model/placement.h"
#include "excel/model/prompts.h"
#include "excel/model/pseudo_label.h"

namespace excel::eval {
namespace {

void write_mask(const std::string& path, const at::Tensor& labels_hw) {
  at::Tensor m = labels_hw.to(torch::kByte).contiguous();
  data::write_palette_png(path, m.data_ptr<uint8_t>(), m.size(0), m.size(1));
}

// Confusion matrices of one label kind, without and (when the CRF is on) with the CRF.
struct KindMatrices {
  at::Tensor plain, crf;
  explicit KindMatrices(int64_t K)
      : plain(torch::zeros({K, K}, torch::kLong)), crf(torch::zeros({K, K}, torch::kLong)) {}
};

}  // namespace

EvalReport run_evaluation(const EvalConfig& cfg, metrics::Metrics* mx, comm::Communicator* comm) {
  if (cfg.mode != "training_free" && cfg.mode != "checkpoint")
    throw ConfigError("--eval_mode must be training_free or checkpoint, not '" + cfg.mode + "'");
  if (cfg.mode == "checkpoint" && cfg.checkpoint.empty())
    throw ConfigError("--eval_mode=checkpoint needs --eval_checkpoint");
  if (cfg.scales.empty()) throw ConfigError("--eval_scales is empty");
  const int rank = comm ? comm->rank() : 0, world = comm ? comm->size() : 1;
  const model::DatasetText& dt = model::dataset_text(cfg.dataset);
  const int64_t C = static_cast<int64_t>(dt.class_names.size()), K = C + 1;
  data::VocLayoutDataset set({cfg.data_root, cfg.split, cfg.labels_file, cfg.dataset, C});
  model::ClipWeights weights = model::load_clip_checkpoint(cfg.clip_checkpoint);
  const int64_t patch = weights.config.patch, g = cfg.crop / patch;
  if (cfg.crop % patch != 0)
    throw ConfigError("--model_crop must be a multiple of the patch size " + std::to_string(patch));
  for (int64_t s : cfg.scales)
    if (s <= 0 || s % patch != 0)
      throw ConfigError("--eval_scales: " + std::to_string(s) + " is not a positive multiple of " +
                        std::to_string(patch));
  // Text features on the CPU (once); the vision tower and the heads on the device (model/placement.h).
  at::Tensor text = model::dataset_text_features(weights, cfg.dataset, cfg.bank, cfg.bpe_path).to(model::device());
  model::place_clip_weights(weights);
  // The reference passes the split name as the model's mode: a "train" split replaces the
  // positional table at construction (§1.3).
  model::ClipVision vision(weights, cfg.split.find("train") != std::string::npos ? g : 0);
  std::unique_ptr<model::Heads> heads;
  if (cfg.mode == "checkpoint") {
    model::HeadsConfig hc;
    hc.in_width = weights.config.vision_width;
    hc.num_layers = weights.config.vision_layers;
    hc.decoder_heads = cfg.decoder_heads;
    hc = model::heads_config_from_checkpoint(cfg.checkpoint, hc);
    if (hc.num_classes != K)
      throw ConfigError(cfg.checkpoint + ": heads predict " + std::to_string(hc.num_classes) + " classes, " +
                        cfg.dataset + " has " + std::to_string(K));
    heads = std::make_unique<model::Heads>(hc, 0);
    model::load_heads(cfg.checkpoint, *heads);
    heads->to(model::device());
  }
  MultiScaleOptions msc;
  msc.sides = cfg.scales;
  msc.flip_average_at_base = cfg.flip_average_at_base;
  const ImagePipeline pipeline(vision, text, C, cfg.crop, heads.get());
  const CamKind cam_kind = cfg.mode == "training_free" ? CamKind::kStatic : CamKind::kDynamic;
  const DenseCrfParams* crf = cfg.crf ? &cfg.crf_params : nullptr;

  const int64_t n =
      cfg.limit > 0 ? std::min<int64_t>(cfg.limit, static_cast<int64_t>(set.size())) : static_cast<int64_t>(set.size());
  std::vector<int64_t> mine;
  for (int64_t i = rank; i < n; i += world) mine.push_back(i);
  metrics::ProgressMetrics progress(mx, "excel_eval", "images", "image");
  progress.planned(static_cast<int64_t>(mine.size()));
  KindMatrices cm_pl(K), cm_seg(K);
  int64_t scored = 0;
  const auto t_start = std::chrono::steady_clock::now();
  torch::NoGradGuard ng;

  for (size_t j = 0; j < mine.size(); ++j) {
    const auto t_img = std::chrono::steady_clock::now();
    LabelledImage s = load_image(set, static_cast<size_t>(mine[j]));
    const bool masks = cfg.save_masks < 0 || static_cast<int64_t>(j) < cfg.save_masks;
    const bool overlays = cfg.save_overlays < 0 || static_cast<int64_t>(j) < cfg.save_overlays;
    const bool strip = mine[j] < cfg.strips && s.gt.defined();
    std::vector<at::Tensor> panels;  // picture strip: image | CAM | pseudo-label | segmentation | ground truth
    if (strip) panels.push_back(s.rgb);
    at::Tensor base_logits;  // heads logits of [x; flip(x)] at the base side, when computed below
    // Pseudo-labels need the image-level labels, which a test split does not have.
    if (s.cls.defined()) {
      ImageCams cams = pipeline.cams(s.image, cam_kind);
      if (cam_kind == CamKind::kDynamic && cfg.scales[0] == cfg.crop) base_logits = cams.logits;
      model::RefinedCams refined = pipeline.refine(cams, s.cls, cfg.tau);
      // Results come back to the CPU once per image (scores, PNGs; a no-op on the CPU).
      at::Tensor pl = pipeline.pseudo_label(cams, refined, s.rgb).cpu();
      at::Tensor pl_crf = crf ? pipeline.pseudo_label(cams, refined, s.rgb, crf).cpu() : at::Tensor();
      if (s.gt.defined()) {
        cm_pl.plain += confusion_matrix(s.gt, pl, K);
        if (crf) cm_pl.crf += confusion_matrix(s.gt, pl_crf, K);
      }
      const at::Tensor& pl_shown = crf ? pl_crf : pl;
      if (masks) write_mask(cfg.output_dir + "/pseudo_labels/" + s.id + ".png", pl_shown);
      at::Tensor maps = cams.cam.t().reshape({C, g, g}).cpu();
      if (overlays) {
        for (int64_t c : refined.classes)
          data::write_rgb(
              cfg.output_dir + "/overlays/" + s.id + "_" + dt.table_names[static_cast<size_t>(c + 1)] + ".png",
              data::heatmap_overlay(s.rgb, maps[c]));
      }
      if (strip) {
        const int64_t c = strip_cam_class(maps, refined.classes);
        panels.push_back(c >= 0 ? data::heatmap_overlay(s.rgb, maps[c]) : s.rgb);
        panels.push_back(data::palette_rgb(pl_shown));
      }
    }
    if (heads) {
      at::Tensor logits = pipeline.segmentation_logits(s.rgb.unsqueeze(0), msc, base_logits)[0];  // [K,H,W]
      at::Tensor pred = logits.argmax(0).cpu();
      at::Tensor pred_crf = crf ? crf_argmax(torch::softmax(logits, 0), s.rgb, *crf) : at::Tensor();
      if (s.gt.defined()) {
        cm_seg.plain += confusion_matrix(s.gt, pred, K);
        if (crf) cm_seg.crf += confusion_matrix(s.gt, pred_crf, K);
      }
      const at::Tensor& pred_shown = crf ? pred_crf : pred;
      if (masks) write_mask(cfg.output_dir + "/segmentation/" + s.id + ".png", pred_shown);
      if (cfg.test_layout)
        write_mask(cfg.output_dir + "/results/VOC2012/Segmentation/comp6_test_cls/" + s.id + ".png", pred_shown);
      if (strip) panels.push_back(data::palette_rgb(pred_shown));
    }
    if (strip) {
      panels.push_back(data::palette_rgb(s.gt));
      data::write_rgb(cfg.output_dir + "/strips/" + s.id + ".png", picture_strip(panels));
    }
    if (s.gt.defined()) ++scored;
    progress.advance(1, seconds_since(t_img), static_cast<int64_t>(j + 1), static_cast<int64_t>(mine.size()),
                     seconds_since(t_start));
    if ((j + 1) % 20 == 0 || j + 1 == mine.size())
      LOG(INFO) << "eval: " << j + 1 << "/" << mine.size() << " images on this rank";
  }

  EvalReport r;
  r.seconds = seconds_since(t_start);
  at::Tensor counts = torch::tensor({static_cast<int64_t>(mine.size()), scored}, torch::kLong);
  if (comm && world > 1) {
    for (at::Tensor* m : {&cm_pl.plain, &cm_pl.crf, &cm_seg.plain, &cm_seg.crf}) comm->all_reduce_sum(*m);
    comm->all_reduce_sum(counts);
  }
  r.images = counts[0].item<int64_t>();
  r.scored_images = counts[1].item<int64_t>();
  const std::vector<EvalTable> all{{"pseudo_label", cm_pl.plain},
                                   {"pseudo_label_crf", cm_pl.crf},
                                   {"segmentation", cm_seg.plain},
                                   {"segmentation_crf", cm_seg.crf}};
  for (const EvalTable& t : all)
    if (t.confusion.sum().item<int64_t>() > 0) r.tables.push_back(t);
  if (rank == 0) {
    for (const auto& t : r.tables)
      if (mx)
        mx->gauge("excel_eval_miou_ratio", "mIoU of the evaluation (rank 0, at the end)", {{"kind", t.name}})
            .Set(scores(t.confusion).miou);
    write_tables(cfg.output_dir, cfg, r, dt.table_names, world);
  }
  return r;
}

}  // namespace excel::eval
