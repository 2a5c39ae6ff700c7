#include "excel/comm/gradient_bucketer.h"

#include <torch/torch.h>

#include "excel/common/errors.h"

namespace excel::comm {

GradientBucketer::GradientBucketer(std::vector<at::Tensor> params, Communicator& comm, size_t bucket_bytes)
    : params_(std::move(params)),
      where_(params_.size()),
      seen_(params_.size(), false),
      own_(comm.duplicate()),
      comm_(own_ ? own_.get() : &comm) {
  // Reverse registration order: the last layers' gradients are computed first in backward. A
  // bucket holds parameters of one device and dtype; its buffer lives there (NCCL sums CUDA
  // buckets in place; MPI goes through the host).
  Bucket cur;
  int64_t size = 0;
  auto close = [&] {
    cur.buffer = torch::zeros({size}, params_[cur.params.front()].options().requires_grad(false));
    buckets_.push_back(std::move(cur));
  };
  auto joins = [&](const at::Tensor& p) {  // fits the open bucket's bytes, device and dtype
    const at::Tensor& first = params_[cur.params.front()];
    return static_cast<size_t>(size + p.numel()) * p.element_size() <= bucket_bytes &&
           p.scalar_type() == first.scalar_type() && p.device() == first.device();
  };
  for (size_t k = params_.size(); k-- > 0;) {
    if (!cur.params.empty() && !joins(params_[k])) {
      close();
      cur = Bucket();
      size = 0;
    }
    where_[k] = {buckets_.size(), cur.params.size()};
    cur.params.push_back(k);
    cur.offsets.push_back(size);
    size += params_[k].numel();
  }
  if (!cur.params.empty()) close();
  for (size_t k = 0; k < params_.size(); ++k) {
    params_[k].register_hook([this, k](at::Tensor grad) {
      on_grad(k, grad);
      return grad;
    });
  }
}

GradientBucketer::~GradientBucketer() {
  for (auto& b : buckets_) b.pending.reset();  // waits for sums still in flight
}

void GradientBucketer::begin_step() {
  std::fill(seen_.begin(), seen_.end(), false);
  for (auto& b : buckets_) {  // no memset: every slot is overwritten by its gradient or zeroed in finish()
    b.ready = 0;
    b.launched = false;
  }
}

void GradientBucketer::on_grad(size_t k, const at::Tensor& grad) {
  auto [bi, slot] = where_[k];
  Bucket& b = buckets_[bi];
  at::Tensor dst = b.buffer.narrow(0, b.offsets[slot], params_[k].numel());
  if (!seen_[k]) {
    dst.copy_(grad.reshape({-1}));
    seen_[k] = true;
    if (++b.ready == b.params.size()) launch(b);
  } else {
    dst.add_(grad.reshape({-1}));  // several gradient calls for one parameter accumulate
  }
  progress();
}

// Open MPI advances non-blocking collectives only inside MPI calls: test the ones in flight
// at every hook so that they move on while backward computes.
void GradientBucketer::progress() {
  for (auto& b : buckets_)
    if (b.pending) b.pending->test();
}

void GradientBucketer::launch(Bucket& b) {
  if (b.launched) return;
  b.launched = true;
  b.pending = comm_->all_reduce_sum_async(b.buffer);
}

void GradientBucketer::finish() {
  for (auto& b : buckets_) {  // in bucket order on every rank: unused parameters count as zero
    if (!b.launched)
      for (size_t s = 0; s < b.params.size(); ++s)
        if (!seen_[b.params[s]]) b.buffer.narrow(0, b.offsets[s], params_[b.params[s]].numel()).zero_();
    launch(b);
    b.pending->wait();
    b.pending.reset();
    // .grad() becomes a view of the summed bucket: no copy. It stays valid until the next
    // backward, before which the optimizer drops the gradients (zero_grad sets them to none).
    for (size_t s = 0; s < b.params.size(); ++s) {
      at::Tensor& p = params_[b.params[s]];
      p.mutable_grad() = b.buffer.narrow(0, b.offsets[s], p.numel()).view_as(p);
    }
  }
}

void FlatGradientSync::finish() {
  torch::NoGradGuard ng;
  // One flat buffer per device and dtype of the parameters (in order of first appearance, the
  // same on every rank): a gradient keeps its dtype and stays on its device.
  std::vector<bool> done(params_.size(), false);
  for (size_t first = 0; first < params_.size(); ++first) {
    if (done[first]) continue;
    std::vector<size_t> group;
    for (size_t k = first; k < params_.size(); ++k)
      if (!done[k] && params_[k].scalar_type() == params_[first].scalar_type() &&
          params_[k].device() == params_[first].device()) {
        group.push_back(k);
        done[k] = true;
      }
    std::vector<at::Tensor> flat;
    for (size_t k : group) {
      const at::Tensor& p = params_[k];
      flat.push_back(p.grad().defined() ? p.grad().reshape({-1}) : torch::zeros({p.numel()}, p.options()));
    }
    at::Tensor buf = torch::cat(flat);
    comm_.all_reduce_sum(buf);
    int64_t off = 0;
    for (size_t k : group) {  // .grad() becomes a view of the summed buffer, as with the buckets
      at::Tensor& p = params_[k];
      p.mutable_grad() = buf.narrow(0, off, p.numel()).view_as(p);
      off += p.numel();
    }
  }
}

std::unique_ptr<GradientSync> make_gradient_sync(std::vector<at::Tensor> params, Communicator& comm,
                                                 int64_t bucket_mb) {
  if (bucket_mb < 0) return std::make_unique<FlatGradientSync>(std::move(params), comm);
  return std::make_unique<GradientBucketer>(std::move(params), comm, static_cast<size_t>(bucket_mb) << 20);
}

}  // namespace excel::comm
