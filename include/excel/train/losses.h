// Losses of ExCEL (§7).
#pragma once
#include <ATen/core/Tensor.h>

namespace excel::comm {
class Communicator;
}

namespace excel::train {

// With a communicator the pixel and pair counts that normalise the losses are global, and each
// rank returns its share: the batch loss is the sum over ranks (gradients are summed).

// logits [B,K,h,w] upsampled to labels [B,H,W] (255 = ignore): 0.5 (mean CE on background +
// mean CE on foreground), each mean over the whole batch.
at::Tensor segmentation_loss(const at::Tensor& logits, const at::Tensor& labels, comm::Communicator* comm = nullptr);

// targets [B,P,P] in {0,1,255}, prediction P [B,P,P].
at::Tensor diversity_loss(const at::Tensor& affinity, const at::Tensor& targets, comm::Communicator* comm = nullptr);

}  // namespace excel::train
