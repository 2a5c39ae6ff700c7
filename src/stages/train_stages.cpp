// Training-stage dumps (pseudo-labels, heads, LVC, losses, gradients, optimiser steps): each
// stage reads the fixture's reference values of the stages before it.
#include <torch/torch.h>

#include "excel/common/h5.h"
#include "excel/eval/image_pipeline.h"
#include "excel/eval/seg_metrics.h"
#include "excel/model/cam.h"
#include "excel/model/clip_vision.h"
#include "excel/model/heads.h"
#include "excel/model/placement.h"
#include "excel/model/prompts.h"
#include "excel/model/pseudo_label.h"
#include "excel/train/losses.h"
#include "excel/train/optimizer.h"
#include "stage_internal.h"

namespace excel::stages {
namespace {

std::map<std::string, at::Tensor> read_group(const h5::File& f, const std::string& group) {
  std::map<std::string, at::Tensor> out;
  for (const auto& n : f.list(group)) out[n] = f.read(group + "/" + n);
  return out;
}

model::HeadsConfig heads_config(const h5::File& in, const model::ClipConfig& clip) {
  model::HeadsConfig c;
  c.in_width = clip.vision_width;
  c.num_layers = clip.vision_layers;
  c.dim = in.attr_int("adapter_dim");
  c.decoder_layers = in.attr_int("decoder_layers");
  c.decoder_heads = in.attr_int("decoder_heads");
  c.num_classes = in.attr_int("num_classes");
  return c;
}

}  // namespace

void dump_train_stages(const h5::File& in, h5::File& out, const StageContext& ctx) {
  if (!in.exists("train") || !in.exists("inputs/heads")) return;
  // Every fixture tensor goes to the model's device (model/placement.h) as it is read.
  const at::Device dev = model::device();
  auto rd = [&](const std::string& name) { return in.read(name).to(dev); };
  const at::Tensor normalized = rd("vision/normalized");
  const at::Tensor feats = rd("vision/feats_all"), attn = rd("vision/attn_all");
  const at::Tensor labels = rd("inputs/cls_labels"), tse = rd("text/tse_features");
  const int64_t B = normalized.size(0), S = normalized.size(2), gh = S / ctx.vision->config().patch, gw = gh;
  const bool voc = ctx.dataset->name == "voc";
  const int64_t switch_it = voc ? 14000 : 30000, pred_target_it = voc ? 24000 : INT64_MAX;

  at::Tensor radius = model::radius_mask(gh, gw, 8, dev);
  out.write("train/radius_mask", radius);
  out.write("train/inputs_denorm", model::denormalize_for_par(normalized));
  const at::Tensor par_images = rd("train/inputs_denorm");

  model::Heads heads(heads_config(in, ctx.vision->config()), 0);
  heads.to(dev);
  train::PolyWarmupAdamW opt(heads.parameters(), train::OptimizerConfig());
  std::vector<int64_t> iters =
      in.has_attr("train_iterations") ? in.attr_ints("train_iterations") : std::vector<int64_t>{0};

  for (size_t k = 0; k < iters.size(); ++k) {
    const std::string st = "train/step" + std::to_string(k) + "/";
    if (!in.exists("train/step" + std::to_string(k))) break;
    const int64_t it = iters[k];
    heads.load(read_group(in, k == 0 ? "inputs/heads" : "train/step" + std::to_string(k - 1) + "/params_after"),
               in.path());
    const at::Tensor drop = rd(st + "dropout_scale");
    out.write(st + "dropout_scale", drop);  // the replayed Dropout2d draws (an input of the step)

    // Heads forward (§6) and the dynamic CAM (§5).
    {
      torch::NoGradGuard ng;
      model::HeadsOutput ho = heads.forward(feats, true, drop, gh, gw);
      out.write(st + "adapter_features", ho.features);
      out.write(st + "seg_logits", ho.logits);
      out.write(st + "affinity_pred", ho.affinity);
    }
    const at::Tensor ref_aff = rd(st + "affinity_pred");
    at::Tensor cam;
    if (it >= switch_it) {
      at::Tensor E = model::lvc_extra_attention(rd(st + "adapter_features"));
      model::VisionOptions vopt;
      vopt.keep_attn = vopt.keep_feats = false;
      out.write(st + "dynamic_cam",
                model::surgery_cam(ctx.vision->forward(normalized, E, vopt).features, tse, ctx.num_classes));
      cam = rd(st + "dynamic_cam");
    } else {
      cam = rd("cam/static");
    }

    // Pseudo-labels (§4).
    std::vector<at::Tensor> plabels;
    for (int64_t b = 0; b < B; ++b) {
      const std::string bs = std::to_string(b);
      auto refined = model::refine_cams_with_affinity(cam[b], attn.select(1, b), labels[b],
                                                      it >= switch_it ? ref_aff[b] : at::Tensor(),
                                                      ctx.dataset->train_box_threshold, gh, gw);
      out.write(st + "refined_cams/" + bs, refined.maps);
      refined.maps = rd(st + "refined_cams/" + bs);
      if (k == 0) out.write(st + "cams_with_bkg/" + bs, model::cams_with_background(refined.maps, S, S));
      plabels.push_back(model::pseudo_label(refined, par_images[b].unsqueeze(0), S, S));
    }
    out.write(st + "pseudo_labels", torch::stack(plabels).to(torch::kByte));
    const at::Tensor ref_logits = rd(st + "seg_logits"), ref_pl = rd(st + "pseudo_labels");
    out.write(st + "seg_pred", model::segmentation_prediction(ref_logits, S, S).to(torch::kByte));
    const at::Tensor target_src = it >= pred_target_it ? rd(st + "seg_pred") : ref_pl;
    out.write(st + "affinity_labels", model::affinity_labels(target_src, radius, gh, gw));
    const at::Tensor ref_aff_labels = rd(st + "affinity_labels");

    // Losses (§7) on the reference tensors, and gradients through our own forward.
    at::Tensor seg = train::segmentation_loss(ref_logits, ref_pl);
    at::Tensor div = train::diversity_loss(ref_aff, ref_aff_labels);
    out.write(st + "seg_loss", seg.detach());
    out.write(st + "diver_loss", div.detach());
    out.write(st + "loss", (seg + 0.1 * div).detach());
    opt.zero_grad();
    model::HeadsOutput ho = heads.forward(feats, true, drop, gh, gw);
    at::Tensor loss =
        train::segmentation_loss(ho.logits, ref_pl) + 0.1 * train::diversity_loss(ho.affinity, ref_aff_labels);
    loss.backward();
    for (const auto& n : heads.names()) out.write(st + "grads/" + n, heads.param(n).grad());

    // Optimiser step K (§8.1) with the reference gradients.
    out.write(st + "lr", torch::tensor(opt.group_lrs(opt.steps_taken()), torch::kDouble));
    for (const auto& n : heads.names()) heads.param(n).mutable_grad() = rd(st + "grads/" + n);
    opt.step();
    for (const auto& n : heads.names()) out.write(st + "params_after/" + n, heads.param(n).detach());
  }

  // Multi-scale inference (§10.2) with the last step's weights, and the metrics (§10.4).
  if (in.exists("infer") && in.exists("inputs/val_rgb")) {
    const std::string last = "train/step" + std::to_string(iters.size() - 1) + "/params_after";
    heads.load(read_group(in, last), in.path());
    eval::MultiScaleOptions ms;
    if (in.has_attr("infer_scale_sides")) ms.sides = in.attr_ints("infer_scale_sides");
    ms.flip_average_at_base = !voc;
    at::Tensor logits = eval::multiscale_logits(*ctx.inference_vision, heads, rd("inputs/val_rgb"), ms);
    out.write("infer/msc_logits", logits);
    out.write("infer/pred", logits.argmax(1).to(torch::kByte));
  }
  if (in.exists("metrics") && in.exists("inputs/val_gt")) {
    const int64_t K = in.attr_int("num_classes");
    at::Tensor cm = eval::confusion_matrix(rd("inputs/val_gt"), rd("infer/pred"), K);
    eval::SegScores s = eval::scores(cm);
    out.write("metrics/confusion_matrix", cm);
    out.write("metrics/pAcc", torch::tensor(s.pixel_acc, torch::kDouble));
    out.write("metrics/mAcc", torch::tensor(s.mean_acc, torch::kDouble));
    out.write("metrics/miou", torch::tensor(s.miou, torch::kDouble));
    out.write("metrics/iou", s.iou);
    out.write("metrics/precision", s.precision);
    out.write("metrics/recall", s.recall);
    out.write("metrics/confusion", s.confusion);
  }
}

}  // namespace excel::stages
