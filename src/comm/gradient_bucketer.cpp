#include "excel/comm/gradient_bucketer.h"

#include <torch/torch.h>

#include "excel/common/errors.h"

namespace excel::comm {

GradientBucketer::GradientBucketer(std::vector<at::Tensor> params, MPI_Comm comm, size_t bucket_bytes)
    : params_(std::move(params)), where_(params_.size()), seen_(params_.size(), false) {
  MPI_Comm_dup(comm, &comm_);
  // Reverse registration order: the last layers' gradients are computed first in backward.
  Bucket cur;
  int64_t size = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    if (!cur.params.empty() && static_cast<size_t>(size + params_[k].numel()) * sizeof(float) > bucket_bytes) {
      cur.buffer = torch::zeros({size});
      buckets_.push_back(std::move(cur));
      cur = Bucket();
      size = 0;
    }
    where_[k] = {buckets_.size(), cur.params.size()};
    cur.params.push_back(k);
    cur.offsets.push_back(size);
    size += params_[k].numel();
  }
  if (!cur.params.empty()) {
    cur.buffer = torch::zeros({size});
    buckets_.push_back(std::move(cur));
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    params_[k].register_hook([this, k](at::Tensor grad) {
      on_grad(k, grad);
      return grad;
    });
  }
}

GradientBucketer::~GradientBucketer() {
  for (auto& b : buckets_)
    if (b.request != MPI_REQUEST_NULL) MPI_Wait(&b.request, MPI_STATUS_IGNORE);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm_);
}

void GradientBucketer::prepare() {
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
  for (auto& b : buckets_) {
    if (b.request == MPI_REQUEST_NULL) continue;
    int done = 0;
    MPI_Test(&b.request, &done, MPI_STATUS_IGNORE);
  }
}

void GradientBucketer::launch(Bucket& b) {
  if (b.launched) return;
  b.launched = true;
  if (MPI_Iallreduce(MPI_IN_PLACE, b.buffer.data_ptr<float>(), static_cast<int>(b.buffer.numel()), MPI_FLOAT,
                     MPI_SUM, comm_, &b.request) != MPI_SUCCESS)
    throw ConfigError("MPI_Iallreduce failed");
}

void GradientBucketer::finish() {
  for (auto& b : buckets_) {  // in bucket order on every rank: unused parameters count as zero
    if (!b.launched)
      for (size_t s = 0; s < b.params.size(); ++s)
        if (!seen_[b.params[s]]) b.buffer.narrow(0, b.offsets[s], params_[b.params[s]].numel()).zero_();
    launch(b);
    MPI_Wait(&b.request, MPI_STATUS_IGNORE);
    // .grad() becomes a view of the summed bucket: no copy. It stays valid until the next
    // backward, before which the optimizer drops the gradients (zero_grad sets them to none).
    for (size_t s = 0; s < b.params.size(); ++s) {
      at::Tensor& p = params_[b.params[s]];
      p.mutable_grad() = b.buffer.narrow(0, b.offsets[s], p.numel()).view_as(p);
    }
  }
}

}  // namespace excel::comm
