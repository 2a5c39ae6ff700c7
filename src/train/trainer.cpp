#include "excel/train/trainer.h"

#include <glog/logging.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <numeric>
#include <sstream>
#include <thread>

#include "excel/cache/feature_store.h"
#include "excel/comm/communicator.h"
#include "excel/comm/gradient_sync.h"
#include "excel/comm/progress_watchdog.h"
#include "excel/common/errors.h"
#include "excel/common/random.h"
#include "excel/common/timing.h"
#include "excel/data/sampler.h"
#include "excel/data/voc_layout_dataset.h"
#include "excel/eval/image_pipeline.h"
#include "excel/eval/seg_metrics.h"
#include "excel/metrics/metrics.h"
#include "excel/model/cam.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/clip_text.h"
#include "excel/model/clip_vision.h"
#include "excel/model/heads.h"
#include "excel/model/placement.h"
#include "excel/model/prompts.h"
#include "excel/model/pseudo_label.h"
#include "excel/model/tokenizer.h"
#include "excel/model/tse.h"
#include "excel/train/checkpoint.h"
#include "excel/train/losses.h"
#include "excel/train/optimizer.h"
#include "fault_injection.h"
#include "nonfinite_agreement.h"
#include "replica_check.h"
#include "step_inputs.h"
#include "train_metrics.h"

namespace fs = std::filesystem;

namespace excel::train {
namespace {

struct Meters {
  double seg = 0, div = 0, data_s = 0, step_s = 0;  // data_s: waiting for inputs
  int64_t n = 0;
  at::Tensor agree;  // confusion of segmentation predictions vs pseudo-labels on training crops
};

class Trainer {
 public:
  Trainer(const TrainConfig& cfg, metrics::Metrics* mx, comm::Communicator* comm)
      : cfg_(cfg),
        comm_(comm && comm->size() > 1 ? comm : nullptr),
        rank_(comm ? comm->rank() : 0),
        world_(comm ? comm->size() : 1),
        text_(model::dataset_text(cfg.dataset)),
        C_(static_cast<int64_t>(text_.class_names.size())),
        store_(cfg.cache_dir.empty() ? nullptr : std::make_unique<cache::FeatureStore>(cfg.cache_dir)),
        weights_(store_ ? nullptr : placed_weights(cfg.clip_checkpoint)),
        vision_(store_ ? nullptr : std::make_unique<model::ClipVision>(*weights_, cfg.crop / weights_->config.patch)),
        heads_(placed_heads(heads_config(), cfg.seed)),
        opt_(heads_.parameters(), optimizer_config()),
        train_set_(store_ ? nullptr
                          : std::make_unique<data::VocLayoutDataset>(data::DatasetOptions{
                                cfg.data_root, cfg.train_split, cfg.labels_file, cfg.dataset, C_})),
        val_set_(store_ ? nullptr
                        : std::make_unique<data::VocLayoutDataset>(
                              data::DatasetOptions{cfg.data_root, cfg.val_split, cfg.labels_file, cfg.dataset, C_})),
        tm_(mx, cfg.max_iters),
        faults_(cfg_, rank_) {
    num_samples_ = store_ ? store_->num_samples() : static_cast<int64_t>(train_set_->size());
    heads_.set_communicator(comm_);
    // Gradients summed over ranks: buckets from the backward hooks, or one flat buffer after it.
    if (comm_) sync_ = comm::make_gradient_sync(heads_.parameters(), *comm_, cfg.comm_bucket_mb);
    if (num_samples_ < cfg.batch * world_)
      throw ConfigError("training split has " + std::to_string(num_samples_) + " images, fewer than the batch");
    views_ = cfg.views;
    if (store_) {  // the backbone is never built: everything comes from the cache
      cache::CacheConfig want;
      want.split = cfg.train_split;
      want.dataset = cfg.dataset;
      want.crop = cfg.crop;
      want.seed = cfg.seed;
      want.clip_checkpoint = cfg.clip_checkpoint;
      cache::check_compatible(store_->manifest(), want);
      if (views_ == 0) views_ = store_->views();
      if (views_ > store_->views())
        throw ConfigError(cfg.cache_dir + ": holds " + std::to_string(store_->views()) + " views, the run asks for " +
                          std::to_string(views_));
      const at::Device dev = model::device();
      text_features_ = store_->text_features.to(dev);
      ln_w_ = store_->ln_post_weight.to(dev);
      ln_b_ = store_->ln_post_bias.to(dev);
      proj_ = store_->proj.to(dev);
      vision_heads_ = store_->vision_heads;
      g_ = cfg.crop / store_->patch;
    } else {
      text_features_ = model::dataset_text_features(*weights_, cfg.dataset, cfg.bank, cfg.bpe_path).to(model::device());
      ln_w_ = vision_->ln_post_weight();
      ln_b_ = vision_->ln_post_bias();
      proj_ = vision_->projection();
      vision_heads_ = weights_->config.vision_heads;
      g_ = cfg.crop / weights_->config.patch;
    }
    radius_ = model::radius_mask(g_, g_, 8, model::device());
    if (store_)
      inputs_ = std::make_unique<CachedInputs>(cfg_, *store_, world_, rank_, tm_);
    else
      inputs_ = std::make_unique<OnlineInputs>(cfg_, *train_set_, *vision_, text_features_, C_, tm_,
                                               [this](int64_t it) { return peek_plan(it); });
  }

  TrainSummary run() {
    fs::create_directories(cfg_.output_dir);
    int64_t start = 0;
    const std::string ckpt = cfg_.output_dir + "/checkpoint.h5";
    std::string resume = cfg_.resume == "auto" ? (fs::exists(ckpt) ? ckpt : "") : cfg_.resume;
    if (!resume.empty()) {
      CheckpointMeta m = load_checkpoint(resume, heads_, opt_);
      // The global batch must match; the number of ranks may change (the schedule counts global steps).
      if (m.seed != cfg_.seed || m.batch != cfg_.batch * world_)
        throw ConfigError(resume + ": written with seed " + std::to_string(m.seed) + " and global batch " +
                          std::to_string(m.batch) + ", this run has seed " + std::to_string(cfg_.seed) +
                          " and global batch " + std::to_string(cfg_.batch * world_) + " (" +
                          std::to_string(cfg_.batch) + " per rank x " + std::to_string(world_) + " ranks)");
      start = m.next_iteration;
      LOG(INFO) << "resumed from " << resume << " at iteration " << start;
    }
    if (comm_) {  // same structure and flags everywhere; every rank starts from rank 0's weights
      broadcast_and_check_replicas(heads_, *comm_, config_fingerprint());
      if (cfg_.comm_timeout_s > 0)
        watchdog_ = std::make_unique<comm::ProgressWatchdog>(MPI_COMM_WORLD, cfg_.comm_timeout_s);
    }
    TrainSummary sum;
    Meters meters;
    auto t_log = Clock::now();
    const auto t_run = t_log;
    int64_t it = start;
    for (; it < cfg_.max_iters; ++it) {
      if (cfg_.stop_after > 0 && it - start >= cfg_.stop_after) break;
      auto t0 = Clock::now();
      auto [seg, div] = step(it);
      const double step_s = seconds_since(t0);
      step_seconds_ += step_s;
      data_seconds_ += times_.data;
      sync_seconds_ += times_.allreduce;
      meters.data_s += times_.data;
      meters.step_s += step_s;
      ++steps_run_;
      const bool skipped = !std::isfinite(seg);
      if (!skipped) {
        if (sum.iterations_done == 0 && it == start) {
          sum.first_seg_loss = seg;
          sum.first_div_loss = div;
        }
        sum.last_seg_loss = seg;
        sum.last_div_loss = div;
        meters.seg += seg;
        meters.div += div;
        ++meters.n;
        meters.agree = meters.agree.defined() ? meters.agree + step_agree_ : step_agree_;
      }
      if (!skipped) {
        tm_.step(step_s, times_, cfg_.batch, it + 1, epoch_of(it), opt_.lr(it));
        tm_.losses(seg, div, seg + 0.1 * div);
      }
      if ((every(cfg_.log_every, it) || it + 1 == cfg_.max_iters) && meters.n > 0) {
        const double dt = seconds_since(t_log), ips = static_cast<double>(meters.n * cfg_.batch) / dt;
        const double eta = static_cast<double>(cfg_.max_iters - it - 1) * dt / static_cast<double>(meters.n);
        const double agree = eval::scores(meters.agree).miou;
        const double wait = meters.step_s > 0 ? meters.data_s / meters.step_s : 0.0;
        if (sum.first_train_agree_miou < 0) sum.first_train_agree_miou = agree;
        sum.last_train_agree_miou = agree;
        LOG(INFO) << "it " << it + 1 << "/" << cfg_.max_iters << " | seg " << meters.seg / meters.n << " div "
                  << meters.div / meters.n << " | seg-vs-pseudo mIoU " << 100 * agree << " | lr " << opt_.lr(it)
                  << " | data wait " << 100 * wait << "% | " << ips << " img/s | ETA " << static_cast<int64_t>(eta) << " s";
        tm_.agreement(agree);
        meters = Meters();
        t_log = Clock::now();
      }
      const bool last = it + 1 == cfg_.max_iters;
      if (cfg_.eval_every > 0 && (every(cfg_.eval_every, it) || last)) {  // 0: never validate
        mark(it, comm::ProgressWatchdog::kValidation);
        auto [pm, sm] = validate(it);
        if (sum.first_seg_miou < 0) sum.first_seg_miou = sm;
        if (first_agree_ < 0) first_agree_ = last_agree_;
        sum.first_agree_miou = first_agree_;
        sum.last_agree_miou = last_agree_;
        sum.last_pseudo_miou = pm;
        sum.last_seg_miou = sm;
      }
      if (every(cfg_.ckpt_every, it) || last) {  // 0: only at the end
        const auto tc = Clock::now();
        mark(it, comm::ProgressWatchdog::kCheckpoint);
        checkpoint(ckpt, it + 1);
        tm_.checkpoint(seconds_since(tc));
      }
    }
    if (it > start && it < cfg_.max_iters) checkpoint(ckpt, it);
    mark(it, comm::ProgressWatchdog::kFinished);
    sum.iterations_done = it;
    sum.mean_step_seconds = steps_run_ ? step_seconds_ / static_cast<double>(steps_run_) : 0.0;
    sum.data_wait_share = step_seconds_ > 0 ? data_seconds_ / step_seconds_ : 0.0;
    sum.grad_sync_share = step_seconds_ > 0 ? sync_seconds_ / step_seconds_ : 0.0;
    sum.skipped_steps = skipped_;
    LOG(INFO) << "stopped at iteration " << it << " after " << seconds_since(t_run) << " s (" << 100 * sum.data_wait_share
              << "% of step time waiting for inputs)";
    return sum;
  }

 private:
  // Weights load on the CPU and move once (model/placement.h).
  static std::unique_ptr<model::ClipWeights> placed_weights(const std::string& path) {
    auto w = std::make_unique<model::ClipWeights>(model::load_clip_checkpoint(path));
    model::place_clip_weights(*w);
    return w;
  }
  // Drawn on the CPU from the seed, then moved: the same initial values on every device.
  static model::Heads placed_heads(const model::HeadsConfig& h, uint64_t seed) {
    model::Heads heads(h, seed);
    heads.to(model::device());
    return heads;
  }

  model::HeadsConfig heads_config() const {
    model::HeadsConfig h;
    if (store_) {
      at::Tensor f = store_->read(0, 0).feats;  // [L,P,W]
      h.in_width = f.size(2);
      h.num_layers = f.size(0);
    } else {
      h.in_width = weights_->config.vision_width;
      h.num_layers = weights_->config.vision_layers;
    }
    h.dim = cfg_.adapter_dim;
    h.decoder_layers = cfg_.decoder_layers;
    h.decoder_heads = cfg_.decoder_heads;
    h.num_classes = C_ + 1;
    return h;
  }
  OptimizerConfig optimizer_config() const {
    OptimizerConfig o;
    o.base_lr = cfg_.base_lr;
    o.weight_decay = cfg_.weight_decay;
    o.warmup_iters = cfg_.warmup_iters;
    o.max_iters = cfg_.max_iters;
    return o;
  }

  static bool every(int64_t n, int64_t it) { return n > 0 && (it + 1) % n == 0; }

  void mark(int64_t it, comm::ProgressWatchdog::Phase phase) {
    if (watchdog_) watchdog_->mark(it, phase);
  }

  // The settings every rank must share.
  uint64_t config_fingerprint() const {
    std::ostringstream o;
    o << cfg_.seed << '|' << cfg_.batch << '|' << cfg_.max_iters << '|' << cfg_.warmup_iters << '|' << cfg_.switch_iter
      << '|' << cfg_.pred_target_iter << '|' << cfg_.base_lr << '|' << cfg_.weight_decay << '|' << cfg_.crop << '|'
      << cfg_.adapter_dim << '|' << cfg_.dataset << '|' << views_ << '|' << num_samples_ << '|' << cfg_.ckpt_every
      << '|' << cfg_.eval_every << '|' << cfg_.comm_bucket_mb << '|' << cfg_.dynamic_full_pass;
    return fingerprint(o.str());
  }

  // Rank 0 writes (with the global batch); every rank waits so that nobody races ahead of a checkpoint.
  void checkpoint(const std::string& path, int64_t next_iteration) {
    if (rank_ == 0) save_checkpoint(path, heads_, opt_, {next_iteration, cfg_.seed, cfg_.batch * world_});
    if (comm_) comm_->barrier();
  }

  int64_t epoch_of(int64_t it) const { return data::batch_position(it, num_samples_, cfg_.batch * world_).epoch; }

  // One iteration of the training step (§8.3), in the algorithm's order; returns the (seg,
  // diversity) losses summed over ranks, NaN when the step was skipped on every rank.
  std::pair<double, double> step(int64_t it) {
    const BatchPlan plan = plan_batch(it);
    mark(it, comm::ProgressWatchdog::kStep);
    times_ = StepTimes();
    const auto t = Clock::now();
    StepInputs in = inputs_->load(plan);  // backbone outputs: an online pass or cached rows
    times_.data = inputs_->data_seconds();
    mark(it, comm::ProgressWatchdog::kForward);
    if (sync_) sync_->begin_step();
    model::HeadsOutput ho = heads_.forward(in.feats, true, dropout_rows(it), g_, g_, in.patch_rows);
    at::Tensor Y = plan.dynamic ? dynamic_pseudo_labels(in, ho) : in.static_labels;
    auto [seg, div] = losses(ho, Y, it);
    at::Tensor loss = faults_.corrupt_loss(it, seg + 0.1 * div);
    times_.forward = seconds_since(t) - times_.data;
    faults_.maybe_hang(it);
    mark(it, comm::ProgressWatchdog::kBackward);
    opt_.zero_grad();
    {
      ScopedTimer timer(&times_.backward);
      loss.backward();
    }
    mark(it, comm::ProgressWatchdog::kGradientSync);
    int bad = 0;
    at::Tensor sums;
    {
      ScopedTimer timer(&times_.allreduce);
      bad = nonfinite_ranks(loss, heads_.parameters(), comm_);  // one decision for every rank
      if (sync_) sync_->finish();                               // .grad() = sum over ranks
      sums = global_losses(seg, div);
    }
    const at::Tensor host = sums.cpu();  // the step's one read of device values (with nonfinite_ranks)
    const double seg_v = host[0].item<double>(), div_v = host[1].item<double>();
    if (bad > 0) return skip_step(it, bad, seg_v, div_v);
    mark(it, comm::ProgressWatchdog::kOptimizer);
    {
      ScopedTimer timer(&times_.optimizer);
      opt_.step();
    }
    if (cfg_.loss_log) cfg_.loss_log->push_back({seg_v, div_v});
    return {seg_v, div_v};
  }

  // This rank's samples, view and phase at global step `it` (same on every world size).
  BatchPlan plan_batch(int64_t it) {
    const data::BatchPosition bp = data::batch_position(it, num_samples_, cfg_.batch * world_);
    if (order_epoch_ != bp.epoch) {
      order_ = data::epoch_permutation(num_samples_, cfg_.seed, bp.epoch);
      order_epoch_ = bp.epoch;
    }
    return make_plan(it, bp, order_);
  }
  // The same for a later step, leaving the epoch's permutation alone (the prefetcher's look-ahead;
  // order is not set).
  BatchPlan peek_plan(int64_t it) const {
    const data::BatchPosition bp = data::batch_position(it, num_samples_, cfg_.batch * world_);
    BatchPlan plan = order_epoch_ == bp.epoch
                         ? make_plan(it, bp, order_)
                         : make_plan(it, bp, data::epoch_permutation(num_samples_, cfg_.seed, bp.epoch));
    plan.order = nullptr;
    return plan;
  }
  BatchPlan make_plan(int64_t it, const data::BatchPosition& bp, const std::vector<int64_t>& order) const {
    BatchPlan plan;
    plan.samples = data::rank_batch(order, bp.index, cfg_.batch, world_, rank_);
    plan.order = &order;
    plan.iteration = it;
    plan.epoch = bp.epoch;
    plan.index = bp.index;
    plan.view = views_ > 0 ? bp.epoch % views_ : bp.epoch;
    plan.dynamic = it >= cfg_.switch_iter;
    return plan;
  }

  // Dropout scales drawn for the whole global batch from (seed, it); this rank takes its rows, so
  // the draws do not depend on the number of ranks.
  at::Tensor dropout_rows(int64_t it) const {
    auto gen = at::detail::createCPUGenerator(mix_seed(cfg_.seed ^ 0xD409, static_cast<uint64_t>(it)));
    return (torch::bernoulli(torch::full({cfg_.batch * world_, cfg_.adapter_dim}, 0.9), gen) / 0.9)
        .slice(0, rank_ * cfg_.batch, (rank_ + 1) * cfg_.batch)
        .to(model::device());  // drawn on the CPU: the same rows on every device
  }

  // LVC (§5): the dynamic CAM from E of this step's adapter output, refined with the G-gated
  // affinity and turned into pseudo-labels.
  at::Tensor dynamic_pseudo_labels(const StepInputs& in, const model::HeadsOutput& ho) {
    at::Tensor E = model::lvc_extra_attention(ho.features, comm_);
    at::Tensor f;
    if (cfg_.dynamic_full_pass && vision_) {  // the reference's second backbone pass
      model::VisionOptions vopt;
      vopt.keep_attn = vopt.keep_feats = false;
      f = vision_->forward(in.x, E, vopt).features;
    } else {  // the exact linear update of the plain pass (§11.2)
      f = model::lvc_dynamic_features(in.surgery, in.u_patch, E, vision_heads_, ln_w_, ln_b_, proj_);
    }
    at::Tensor cam = model::surgery_cam(f, text_features_, C_);
    at::Tensor P = ho.affinity.detach();
    std::vector<at::Tensor> pl;
    for (int64_t b = 0; b < cfg_.batch; ++b) {
      auto refined =
          model::refine_cams_with_matrix(cam[b], in.attn_sel[b] * P[b], in.labels[b], cfg_.train_tau, g_, g_);
      pl.push_back(model::pseudo_label(refined, in.par[b].unsqueeze(0), cfg_.crop, cfg_.crop));
    }
    return torch::stack(pl);
  }

  // Segmentation loss against the pseudo-labels Y and diversity loss against Y's affinity, or the
  // segmentation's own prediction after pred_target_iter (§7); records seg-vs-pseudo agreement.
  std::pair<at::Tensor, at::Tensor> losses(const model::HeadsOutput& ho, const at::Tensor& Y, int64_t it) {
    at::Tensor seg = segmentation_loss(ho.logits, Y, comm_);
    at::Tensor pred = model::segmentation_prediction(ho.logits, cfg_.crop, cfg_.crop);
    step_agree_ = eval::confusion_matrix(Y, pred, C_ + 1);
    at::Tensor target = it >= cfg_.pred_target_iter ? pred : Y;
    at::Tensor div = diversity_loss(ho.affinity, model::affinity_labels(target, radius_, g_, g_), comm_);
    return {seg, div};
  }

  // The step's losses summed over ranks (each rank holds its share of the global loss).
  at::Tensor global_losses(const at::Tensor& seg, const at::Tensor& div) {
    at::Tensor sums = torch::stack({seg.detach(), div.detach()}).to(torch::kDouble).contiguous();
    if (comm_) comm_->all_reduce_sum(sums);
    return sums;
  }

  std::pair<double, double> skip_step(int64_t it, int bad_ranks, double seg, double div) {
    ++skipped_;
    tm_.skipped();
    tm_.losses(seg, div, seg + 0.1 * div);
    LOG(WARNING) << "iteration " << it << ": non-finite loss or gradient on " << bad_ranks
                 << " rank(s); step skipped on every rank";
    opt_.zero_grad();
    return {std::nan(""), std::nan("")};
  }

  // §10.1: static-CAM pseudo-labels (G always, tau 0.75) and single-scale segmentation on val.
  std::pair<double, double> validate(int64_t it) {
    if (rank_ != 0) return {-1, -1};  // rank 0 validates; the others wait at the next checkpoint
    struct LocalOnly {                // validation is per image: no collective inside the heads
      model::Heads& h;
      comm::Communicator* c;
      ~LocalOnly() { h.set_communicator(c); }
    } local_only{heads_, comm_};
    heads_.set_communicator(nullptr);
    if (store_) {
      LOG(INFO) << "validation skipped: training from a feature cache has no backbone (use excel_eval)";
      return {-1, -1};
    }
    torch::NoGradGuard ng;
    const int64_t K = C_ + 1;
    at::Tensor cm_pl = torch::zeros({K, K}, torch::kLong), cm_seg = torch::zeros({K, K}, torch::kLong);
    at::Tensor cm_agree = torch::zeros({K, K}, torch::kLong);  // segmentation vs pseudo-labels
    const size_t n =
        cfg_.val_limit > 0 ? std::min(val_set_->size(), static_cast<size_t>(cfg_.val_limit)) : val_set_->size();
    const eval::ImagePipeline pipeline(*vision_, text_features_, C_, cfg_.crop, &heads_);
    for (size_t i = 0; i < n; ++i) {
      mark(it, comm::ProgressWatchdog::kValidation);  // progress while the other ranks wait
      data::ValSample s = val_set_->val_sample(i);
      const int64_t H = s.gt.size(0), W = s.gt.size(1);
      eval::ImageCams cams = pipeline.cams(s.image, eval::CamKind::kStatic);
      at::Tensor pred = model::segmentation_prediction(cams.logits, H, W)[0].cpu();  // scored on the CPU
      at::Tensor pl = pipeline.pseudo_label(cams, pipeline.refine(cams, s.cls, cfg_.val_tau), s.rgb).cpu();
      cm_seg += eval::confusion_matrix(s.gt, pred, K);
      cm_pl += eval::confusion_matrix(s.gt, pl, K);
      cm_agree += eval::confusion_matrix(pl, pred, K);
    }
    const double pm = eval::scores(cm_pl).miou, sm = eval::scores(cm_seg).miou, am = eval::scores(cm_agree).miou;
    LOG(INFO) << "validation on " << n << " images: pseudo-label mIoU " << 100 * pm << ", segmentation mIoU "
              << 100 * sm << ", segmentation vs pseudo-labels mIoU " << 100 * am;
    last_agree_ = am;
    tm_.validation(pm, sm);
    return {pm, sm};
  }

 public:
  double last_agree_ = -1, first_agree_ = -1;

 private:
  TrainConfig cfg_;
  comm::Communicator* comm_;
  int rank_, world_;
  const model::DatasetText& text_;
  int64_t C_;
  std::unique_ptr<cache::FeatureStore> store_;
  std::unique_ptr<comm::GradientSync> sync_;
  std::unique_ptr<comm::ProgressWatchdog> watchdog_;
  double step_seconds_ = 0, data_seconds_ = 0, sync_seconds_ = 0;
  int64_t skipped_ = 0;
  int64_t steps_run_ = 0;
  std::unique_ptr<model::ClipWeights> weights_;
  std::unique_ptr<model::ClipVision> vision_;
  model::Heads heads_;
  PolyWarmupAdamW opt_;
  std::unique_ptr<data::VocLayoutDataset> train_set_, val_set_;
  at::Tensor ln_w_, ln_b_, proj_;
  int64_t vision_heads_ = 0, num_samples_ = 0, views_ = 0;
  TrainMetrics tm_;
  StepTimes times_;
  std::unique_ptr<InputProvider> inputs_;
  FaultInjection faults_;
  at::Tensor text_features_, radius_;
  int64_t g_ = 0, order_epoch_ = -1;
  std::vector<int64_t> order_;
  at::Tensor step_agree_;
};

}  // namespace

TrainSummary run_training(const TrainConfig& cfg, metrics::Metrics* mx, comm::Communicator* comm) {
  Trainer t(cfg, mx, comm);
  return t.run();
}

}  // namespace excel::train
