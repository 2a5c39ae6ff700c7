// The trainable part of ExCEL (§6): the adapter (SegFormer-style multi-layer fusion head),
// the transformer decoder with its linear prediction, and the affinity prediction P; plus the
// E term of LVC (§5). Parameters carry the reference's state-dict names, so the authors'
// checkpoints map one to one (a "module." prefix is stripped on import).
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace excel::comm {
class Communicator;
}

namespace excel::model {

struct HeadsConfig {
  int64_t in_width = 768;   // CLIP vision width
  int64_t num_layers = 12;  // feature entries fused by the adapter
  int64_t dim = 256;        // adapter / decoder width
  int64_t decoder_layers = 3;
  int64_t decoder_heads = 8;
  int64_t num_classes = 21;  // K (background included)
  double dropout = 0.1;      // Dropout2d on the adapter output (train mode)
};

struct HeadsOutput {
  at::Tensor features;  // F [B,dim,gh,gw] after dropout (E and P are built from it)
  at::Tensor logits;    // [B,K,gh,gw]
  at::Tensor affinity;  // P [B,P,P]
};

class Heads {
 public:
  // Parameters initialised as PyTorch would (§6), from `seed`.
  Heads(const HeadsConfig& cfg, uint64_t seed);

  // feats [L,B,N,W] as returned by the backbone (class token included), or [L,B,P,W] patch rows
  // only when `patch_rows_only` (as a feature cache stores them). dropout_scale [B,dim]
  // multiplies channels (fixture replay); undefined: Bernoulli dropout when `train`, none otherwise.
  HeadsOutput forward(const at::Tensor& feats, bool train, const at::Tensor& dropout_scale = at::Tensor(),
                      int64_t gh = 0, int64_t gw = 0, bool patch_rows_only = false) const;

  // Name -> parameter (requires grad), in the reference's registration order.
  const std::vector<std::string>& names() const { return names_; }
  at::Tensor& param(const std::string& name);
  const at::Tensor& param(const std::string& name) const;
  std::vector<at::Tensor> parameters() const;
  int64_t num_parameters() const;

  // Moves every parameter (drawn on the CPU, so the same values on every device) to `device`;
  // before an optimizer or a gradient sync takes the parameters.
  void to(at::Device device);

  // Copies values in (shapes checked, "module." prefix stripped); throws FormatError naming
  // `source` and the tensor on a missing or mis-shaped entry.
  void load(const std::map<std::string, at::Tensor>& tensors, const std::string& source);
  const HeadsConfig& config() const { return cfg_; }
  // Data-parallel training: batch-global statistics (the mean of P) span every rank's samples.
  void set_communicator(comm::Communicator* c) { comm_ = c; }

 private:
  void add(const std::string& name, at::Tensor t);
  HeadsConfig cfg_;
  std::vector<std::string> names_;
  std::map<std::string, at::Tensor> params_;
  comm::Communicator* comm_ = nullptr;
};

// P = sigmoid(3 (cos - mean cos)) from F [B,C,gh,gw] (§6.3).
at::Tensor affinity_prediction(const at::Tensor& features, comm::Communicator* comm = nullptr);
// E = row-softmax of 3 (cos - mean cos) with negative entries masked (§5), from detached F.
at::Tensor lvc_extra_attention(const at::Tensor& features, comm::Communicator* comm = nullptr);

// Bilinear upsampling of logits [B,K,h,w] to H x W (align_corners = False), as the loss, the
// prediction and multi-scale inference use it.
at::Tensor upsample_logits(const at::Tensor& logits, int64_t H, int64_t W);

// argmax of the logits upsampled to H x W: [B,H,W] int64.
at::Tensor segmentation_prediction(const at::Tensor& logits, int64_t H, int64_t W);

}  // namespace excel::model
