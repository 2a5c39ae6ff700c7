#include "excel/train/trainer.h"

#include <glog/logging.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <numeric>
#include <sstream>
#include <thread>

#include "excel/cache/feature_cache.h"
#include "excel/comm/communicator.h"
#include "excel/comm/gradient_bucketer.h"
#include "excel/comm/progress_watchdog.h"
#include "excel/common/errors.h"
#include "excel/common/random.h"
#include "excel/common/timing.h"
#include "excel/data/sampler.h"
#include "excel/data/voc_dataset.h"
#include "excel/eval/seg_metrics.h"
#include "excel/metrics/metrics.h"
#include "excel/model/cam.h"
#include "excel/model/checkpoint.h"
#include "excel/model/clip_text.h"
#include "excel/model/clip_vision.h"
#include "excel/model/heads.h"
#include "excel/model/prompts.h"
#include "excel/model/pseudo_label.h"
#include "excel/model/tokenizer.h"
#include "excel/model/tse.h"
#include "excel/train/checkpoint.h"
#include "excel/train/losses.h"
#include "excel/train/optimizer.h"
#include "replica_check.h"
#include "train_metrics.h"

namespace fs = std::filesystem;
namespace F = torch::nn::functional;

namespace excel::train {
namespace {



struct Meters {
  double seg = 0, div = 0;
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
        store_(cfg.cache.empty() ? nullptr : std::make_unique<cache::FeatureStore>(cfg.cache)),
        weights_(store_ ? nullptr : std::make_unique<model::ClipWeights>(model::load_clip_checkpoint(cfg.clip_checkpoint))),
        vision_(store_ ? nullptr : std::make_unique<model::ClipVision>(*weights_, cfg.crop / weights_->config.patch)),
        heads_(heads_config(), cfg.seed),
        opt_(heads_.parameters(), optimizer_config()),
        train_set_(store_ ? nullptr : std::make_unique<data::VocDataset>(data::DatasetOptions{cfg.data_root, cfg.train_split, cfg.labels_file, cfg.dataset, C_})),
        val_set_(store_ ? nullptr : std::make_unique<data::VocDataset>(data::DatasetOptions{cfg.data_root, cfg.val_split, cfg.labels_file, cfg.dataset, C_})),
        tm_(mx, cfg.max_iters) {
    num_samples_ = store_ ? store_->num_samples() : static_cast<int64_t>(train_set_->size());
    heads_.set_communicator(comm_);
    // MPI: gradients are all-reduced in buckets from the backward hooks. Other backends (NCCL),
    // or a negative bucket size, sum one flat gradient buffer after backward.
    auto* mpi = dynamic_cast<comm::MpiCommunicator*>(comm_);
    if (mpi && cfg.comm_bucket_mb >= 0)
      bucketer_ = std::make_unique<comm::GradientBucketer>(heads_.parameters(), mpi->mpi_comm(),
                                                           static_cast<size_t>(cfg.comm_bucket_mb) << 20);
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
        throw ConfigError(cfg.cache + ": holds " + std::to_string(store_->views()) + " views, the run asks for " + std::to_string(views_));
      text_features_ = store_->text_features;
      ln_w_ = store_->ln_post_weight;
      ln_b_ = store_->ln_post_bias;
      proj_ = store_->proj;
      vision_heads_ = store_->vision_heads;
      g_ = cfg.crop / store_->patch;
    } else {
      text_features_ = model::dataset_text_features(*weights_, cfg.dataset, cfg.bank, cfg.bpe_path);
      ln_w_ = vision_->ln_post_weight();
      ln_b_ = vision_->ln_post_bias();
      proj_ = vision_->projection();
      vision_heads_ = weights_->config.vision_heads;
      g_ = cfg.crop / weights_->config.patch;
    }
    radius_ = model::radius_mask(g_, g_, 8);
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
                          " and global batch " + std::to_string(cfg_.batch * world_) + " (" + std::to_string(cfg_.batch) +
                          " per rank x " + std::to_string(world_) + " ranks)");
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
    auto t_log = std::chrono::steady_clock::now();
    const auto t_run = t_log;
    int64_t it = start;
    for (; it < cfg_.max_iters; ++it) {
      if (cfg_.stop_after > 0 && it - start >= cfg_.stop_after) break;
      auto t0 = std::chrono::steady_clock::now();
      auto [seg, div] = step(it);
      const double step_s = seconds_since(t0);
      step_seconds_ += step_s;
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
        if (sum.first_train_agree_miou < 0) sum.first_train_agree_miou = agree;
        sum.last_train_agree_miou = agree;
        LOG(INFO) << "it " << it + 1 << "/" << cfg_.max_iters << " | seg " << meters.seg / meters.n << " div "
                  << meters.div / meters.n << " | seg-vs-pseudo mIoU " << 100 * agree << " | lr " << opt_.lr(it)
                  << " | " << ips << " img/s | ETA " << static_cast<int64_t>(eta) << " s";
        tm_.agreement(agree);
        meters = Meters();
        t_log = std::chrono::steady_clock::now();
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
        const auto tc = std::chrono::steady_clock::now();
        mark(it, comm::ProgressWatchdog::kCheckpoint);
        checkpoint(ckpt, it + 1);
        tm_.checkpoint(seconds_since(tc));
      }
    }
    if (it > start && it < cfg_.max_iters) checkpoint(ckpt, it);
    mark(it, comm::ProgressWatchdog::kFinished);
    sum.iterations_done = it;
    sum.mean_step_seconds = steps_run_ ? step_seconds_ / static_cast<double>(steps_run_) : 0.0;
    sum.skipped_steps = skipped_;
    LOG(INFO) << "stopped at iteration " << it << " after " << seconds_since(t_run) << " s";
    return sum;
  }

 private:
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

  // One flat buffer of every gradient (zeros for parameters without one), summed over ranks.
  void all_reduce_gradients() {
    torch::NoGradGuard ng;
    std::vector<at::Tensor> flat;
    for (auto& p : heads_.parameters())
      flat.push_back(p.grad().defined() ? p.grad().reshape({-1}) : torch::zeros({p.numel()}));
    at::Tensor buf = torch::cat(flat);
    comm_->all_reduce_sum(buf);
    int64_t off = 0;
    for (auto& p : heads_.parameters()) {
      at::Tensor sum = buf.narrow(0, off, p.numel()).view_as(p);
      if (p.grad().defined())
        p.mutable_grad().copy_(sum);
      else
        p.mutable_grad() = sum.clone();
      off += p.numel();
    }
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

  // What one step needs from the backbone, from an online pass or from the cache.
  struct StepInputs {
    at::Tensor feats;          // [L,B,N,W] online, [L,B,P,W] cached (patch rows)
    bool patch_rows = false;
    at::Tensor labels;         // [B,C] float
    at::Tensor static_labels;  // [B,S,S] long (phase A)
    at::Tensor surgery;        // [B,N,W] final surgery tokens (phase B)
    at::Tensor u_patch;        // [B,P,W] value projection U, patch rows (phase B)
    at::Tensor attn_sel;       // [B,P,P] G-independent selected attention (phase B)
    at::Tensor par;            // [B,3,S,S] PAR image in [0,1]
    at::Tensor x;              // online only: the normalised crops
  };

  int64_t epoch_of(int64_t it) const { return data::batch_position(it, num_samples_, cfg_.batch * world_).epoch; }

  // One augmented sample; with --data_skip_bad an unreadable image is counted and replaced by
  // the next readable one in list order (deterministic), otherwise it is an error naming the file.
  data::TrainSample load_train_sample(int64_t i, int64_t view, const data::AugmentOptions& aug) {
    const int64_t n = static_cast<int64_t>(train_set_->size());
    for (int64_t attempt = 0;; ++attempt) {
      const size_t k = static_cast<size_t>((i + attempt) % n);
      try {
        data::TrainSample s = train_set_->train_sample(k, cfg_.seed, static_cast<uint64_t>(view), aug);
        std::error_code ec;
        const auto bytes = fs::file_size(train_set_->image_path(k), ec);
        if (!ec) tm_.bytes_read(static_cast<double>(bytes));
        return s;
      } catch (const InputError& e) {
        if (!cfg_.skip_bad_inputs || attempt + 1 >= std::min<int64_t>(n, 16)) throw;
        tm_.bad_input();
        LOG(WARNING) << "skipped a bad input: " << e.what();
      }
    }
  }

  StepInputs online_inputs(const std::vector<int64_t>& idx, int64_t view, bool dynamic) {
    data::AugmentOptions aug;
    aug.crop = cfg_.crop;
    aug.gt_guided_crop = cfg_.dataset == "voc";
    const auto t_data = std::chrono::steady_clock::now();
    std::vector<at::Tensor> xs, ys;
    for (int64_t i : idx) {
      data::TrainSample s = load_train_sample(i, view, aug);
      xs.push_back(s.image);
      ys.push_back(s.cls);
    }
    times_.data = seconds_since(t_data);
    StepInputs in;
    in.x = torch::stack(xs);
    in.labels = torch::stack(ys);
    model::VisionOptions opt;
    opt.keep_value_proj = dynamic && !cfg_.dynamic_full_pass;
    model::VisionOutputs vo = vision_->forward(in.x, {}, opt);
    in.feats = vo.feats_all;
    in.surgery = vo.surgery;
    if (vo.value_proj.defined()) in.u_patch = vo.value_proj.slice(1, 1);
    in.par = model::denormalize_for_par(in.x);
    at::Tensor cam = dynamic ? at::Tensor() : model::surgery_cam(vo.features, text_features_, C_);
    std::vector<at::Tensor> sel, pl;
    for (int64_t b = 0; b < in.x.size(0); ++b) {
      model::AttentionAggregates agg = model::attention_aggregates(vo.attn_all.select(1, b));
      sel.push_back(agg.selected);
      if (!dynamic) {  // phase A: the static pseudo-label, exactly as excel_precompute stores it
        auto refined = model::refine_cams_with_matrix(cam[b], agg.mean, in.labels[b], cfg_.train_tau, g_, g_);
        pl.push_back(model::pseudo_label(refined, in.par[b].unsqueeze(0), cfg_.crop, cfg_.crop));
      }
    }
    in.attn_sel = torch::stack(sel);
    if (!dynamic) in.static_labels = torch::stack(pl);
    return in;
  }

  StepInputs cached_inputs(const std::vector<int64_t>& idx, int64_t view, int64_t epoch, int64_t batch_index) {
    if (!prefetch_ || prefetch_epoch_ != epoch || prefetch_next_batch_ != batch_index) {
      // Schedule the rest of this epoch's rows on the prefetch thread.
      std::vector<std::pair<int64_t, int64_t>> rows;
      for (int64_t b = batch_index; b < num_samples_ / (cfg_.batch * world_); ++b)
        for (int64_t i : data::rank_batch(order_, b, cfg_.batch, world_, rank_)) rows.emplace_back(i, view);
      prefetch_.reset();
      prefetch_ = std::make_unique<cache::CachePrefetcher>(*store_, std::move(rows), static_cast<uint64_t>(cfg_.cache_budget_mb) << 20);
      prefetch_epoch_ = epoch;
    }
    prefetch_next_batch_ = batch_index + 1;
    std::vector<at::Tensor> feats, labels, statics, surgery, u, sel, par;
    for (size_t k = 0; k < idx.size(); ++k) {
      cache::CachedSample c = prefetch_->next();
      feats.push_back(c.feats);
      labels.push_back(c.labels.to(torch::kFloat));
      statics.push_back(c.static_label.to(torch::kLong));
      const int64_t s_entry = c.feats.size(0) - model::ClipVision::kSurgeryBlocks - 1;  // aliasing, §1.8
      surgery.push_back(torch::cat({c.cls_row.unsqueeze(0), c.feats[s_entry]}, 0));
      u.push_back(c.value_proj);
      sel.push_back(c.attn_sel);
      par.push_back(c.crop.to(torch::kFloat) / 255.0f);
    }
    StepInputs in;
    in.feats = torch::stack(feats, 1);
    in.patch_rows = true;
    in.labels = torch::stack(labels);
    in.static_labels = torch::stack(statics);
    in.surgery = torch::stack(surgery);
    in.u_patch = torch::stack(u);
    in.attn_sel = torch::stack(sel);
    in.par = torch::stack(par);
    return in;
  }

  // One iteration of §8.3; returns (seg loss, diversity loss).
  std::pair<double, double> step(int64_t it) {
    const data::BatchPosition bp = data::batch_position(it, num_samples_, cfg_.batch * world_);
    if (order_epoch_ != bp.epoch) {
      order_ = data::epoch_permutation(num_samples_, cfg_.seed, bp.epoch);
      order_epoch_ = bp.epoch;
    }
    const int64_t view = views_ > 0 ? bp.epoch % views_ : bp.epoch;
    std::vector<int64_t> idx = data::rank_batch(order_, bp.index, cfg_.batch, world_, rank_);
    const bool dynamic = it >= cfg_.switch_iter;
    mark(it, comm::ProgressWatchdog::kStep);
    times_ = StepTimes();
    auto t = std::chrono::steady_clock::now();
    StepInputs in = store_ ? cached_inputs(idx, view, bp.epoch, bp.index) : online_inputs(idx, view, dynamic);
    if (store_) {
      times_.data = seconds_since(t);
      tm_.bytes_read(static_cast<double>(store_->bytes_read() - store_bytes_seen_));
      store_bytes_seen_ = store_->bytes_read();
    } else {
      times_.forward = seconds_since(t) - times_.data;  // online_inputs timed its data part
    }
    t = std::chrono::steady_clock::now();
    mark(it, comm::ProgressWatchdog::kForward);
    if (bucketer_) bucketer_->prepare();
    auto gen = at::detail::createCPUGenerator(mix_seed(cfg_.seed ^ 0xD409, static_cast<uint64_t>(it)));
    // Dropout draws for the whole global batch; this rank takes its rows.
    at::Tensor drop = (torch::bernoulli(torch::full({cfg_.batch * world_, cfg_.adapter_dim}, 0.9), gen) / 0.9)
                          .slice(0, rank_ * cfg_.batch, (rank_ + 1) * cfg_.batch);
    model::HeadsOutput ho = heads_.forward(in.feats, true, drop, g_, g_, in.patch_rows);
    at::Tensor Y = in.static_labels;
    if (dynamic) {  // LVC: dynamic CAM from E of this step's adapter output (§5), G-gated refinement
      at::Tensor E = model::lvc_extra_attention(ho.features, comm_);
      at::Tensor f;
      if (cfg_.dynamic_full_pass && vision_) {
        model::VisionOptions vopt;
        vopt.keep_attn = vopt.keep_feats = false;
        f = vision_->forward(in.x, E, vopt).features;
      } else {
        f = model::lvc_dynamic_features(in.surgery, in.u_patch, E, vision_heads_, ln_w_, ln_b_, proj_);
      }
      at::Tensor cam = model::surgery_cam(f, text_features_, C_);
      at::Tensor P = ho.affinity.detach();
      std::vector<at::Tensor> pl;
      for (int64_t b = 0; b < cfg_.batch; ++b) {
        auto refined = model::refine_cams_with_matrix(cam[b], in.attn_sel[b] * P[b], in.labels[b], cfg_.train_tau, g_, g_);
        pl.push_back(model::pseudo_label(refined, in.par[b].unsqueeze(0), cfg_.crop, cfg_.crop));
      }
      Y = torch::stack(pl);
    }
    at::Tensor seg = segmentation_loss(ho.logits, Y, comm_);
    at::Tensor pred = model::segmentation_prediction(ho.logits, cfg_.crop, cfg_.crop);
    step_agree_ = eval::confusion_matrix(Y, pred, C_ + 1);
    at::Tensor target = it >= cfg_.pred_target_iter ? pred : Y;
    at::Tensor div = diversity_loss(ho.affinity, model::affinity_labels(target, radius_, g_, g_), comm_);
    opt_.zero_grad();
    at::Tensor loss = seg + 0.1 * div;
    if (it == cfg_.inject_nan_step && rank_ == cfg_.inject_nan_rank) loss = loss * std::nan("");
    times_.forward += seconds_since(t);
    if (it == cfg_.inject_hang_step && rank_ == cfg_.inject_hang_rank) {
      LOG(WARNING) << "fault injection: rank " << rank_ << " hangs at iteration " << it;
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    mark(it, comm::ProgressWatchdog::kBackward);
    t = std::chrono::steady_clock::now();
    loss.backward();
    times_.backward = seconds_since(t);
    t = std::chrono::steady_clock::now();
    at::Tensor losses = torch::stack({seg.detach(), div.detach()}).to(torch::kDouble).contiguous();
    // A non-finite loss or gradient on any rank skips the step on every rank (agreed by one
    // all-reduce, so no rank steps alone).
    bool finite = std::isfinite(loss.item<double>());
    for (const auto& p : heads_.parameters())
      finite = finite && (!p.grad().defined() || p.grad().isfinite().all().item<bool>());
    at::Tensor bad = torch::tensor({finite ? 0.0 : 1.0}, torch::kDouble);
    mark(it, comm::ProgressWatchdog::kGradientSync);
    if (comm_) {
      comm_->all_reduce_sum(bad);
      if (bucketer_)
        bucketer_->finish();  // waits for the buckets launched during backward: .grad() = sums
      else
        all_reduce_gradients();
      comm_->all_reduce_sum(losses);
    }
    times_.allreduce = seconds_since(t);
    if (bad.item<double>() > 0) {
      ++skipped_;
      tm_.skipped();
      tm_.losses(losses[0].item<double>(), losses[1].item<double>(), losses[0].item<double>() + 0.1 * losses[1].item<double>());
      LOG(WARNING) << "iteration " << it << ": non-finite loss or gradient on " << bad.item<double>()
                   << " rank(s); step skipped on every rank";
      opt_.zero_grad();
      return {std::nan(""), std::nan("")};
    }
    t = std::chrono::steady_clock::now();
    mark(it, comm::ProgressWatchdog::kOptimizer);
    opt_.step();
    times_.optimizer = seconds_since(t);
    const double seg_v = losses[0].item<double>(), div_v = losses[1].item<double>();
    if (cfg_.loss_log) cfg_.loss_log->push_back({seg_v, div_v});
    return {seg_v, div_v};
  }

  // §10.1: static-CAM pseudo-labels (G always, tau 0.75) and single-scale segmentation on val.
  std::pair<double, double> validate(int64_t it) {
    if (rank_ != 0) return {-1, -1};  // rank 0 validates; the others wait at the next checkpoint
    struct LocalOnly {  // validation is per image: no collective inside the heads
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
    const size_t n = cfg_.val_limit > 0 ? std::min(val_set_->size(), static_cast<size_t>(cfg_.val_limit)) : val_set_->size();
    for (size_t i = 0; i < n; ++i) {
      mark(it, comm::ProgressWatchdog::kValidation);  // progress while the other ranks wait
      data::ValSample s = val_set_->val_sample(i);
      const int64_t H = s.gt.size(0), W = s.gt.size(1);
      at::Tensor x = F::interpolate(s.image.unsqueeze(0), F::InterpolateFuncOptions()
                                                              .size(std::vector<int64_t>{cfg_.crop, cfg_.crop})
                                                              .mode(torch::kBilinear)
                                                              .align_corners(false));
      model::VisionOutputs vo = vision_->forward(x);
      at::Tensor cam = model::surgery_cam(vo.features, text_features_, C_);
      model::HeadsOutput ho = heads_.forward(vo.feats_all, false, {}, g_, g_);
      at::Tensor pred = model::segmentation_prediction(ho.logits, H, W)[0];
      cm_seg += eval::confusion_matrix(s.gt, pred, K);
      auto refined = model::refine_cams_with_affinity(cam[0], vo.attn_all.select(1, 0), s.cls, ho.affinity[0],
                                                      cfg_.val_tau, g_, g_);
      at::Tensor pl = model::pseudo_label(refined, x, H, W);
      cm_pl += eval::confusion_matrix(s.gt, pl, K);
      cm_agree += eval::confusion_matrix(pl, pred, K);
    }
    const double pm = eval::scores(cm_pl).miou, sm = eval::scores(cm_seg).miou, am = eval::scores(cm_agree).miou;
    LOG(INFO) << "validation on " << n << " images: pseudo-label mIoU " << 100 * pm << ", segmentation mIoU " << 100 * sm
              << ", segmentation vs pseudo-labels mIoU " << 100 * am;
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
  std::unique_ptr<cache::CachePrefetcher> prefetch_;
  std::unique_ptr<comm::GradientBucketer> bucketer_;
  std::unique_ptr<comm::ProgressWatchdog> watchdog_;
  double step_seconds_ = 0;
  int64_t skipped_ = 0;
  int64_t steps_run_ = 0;
  int64_t prefetch_epoch_ = -1, prefetch_next_batch_ = -1;
  std::unique_ptr<model::ClipWeights> weights_;
  std::unique_ptr<model::ClipVision> vision_;
  model::Heads heads_;
  PolyWarmupAdamW opt_;
  std::unique_ptr<data::VocDataset> train_set_, val_set_;
  at::Tensor ln_w_, ln_b_, proj_;
  int64_t vision_heads_ = 0, num_samples_ = 0, views_ = 0;
  TrainMetrics tm_;
  StepTimes times_;
  uint64_t store_bytes_seen_ = 0;
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
