// Batched matrix product as a loop of BLAS GEMMs. On Debian's LibTorch (OpenBLAS, no MKL)
// at::bmm/matmul with many small matrices runs about 2x slower than one mm per matrix.
#pragma once
#include <torch/torch.h>

namespace excel::model {

// a [..., n, k] x b [..., k, m] -> [..., n, m]; leading dims must match exactly. `out`, when
// given, is a contiguous buffer of at least the result's size that receives it (no allocation).
inline at::Tensor batched_mm(const at::Tensor& a, const at::Tensor& b, at::Tensor* out_buffer = nullptr) {
  const int64_t n = a.size(-2), k = a.size(-1), m = b.size(-1);
  std::vector<int64_t> shape(a.sizes().begin(), a.sizes().end() - 2);
  at::Tensor a3 = a.reshape({-1, n, k}), b3 = b.reshape({-1, k, m});
  at::Tensor out = out_buffer ? out_buffer->flatten().narrow(0, 0, a3.size(0) * n * m).view({a3.size(0), n, m})
                              : torch::empty({a3.size(0), n, m}, a.options());
  for (int64_t i = 0; i < a3.size(0); ++i) {
    at::Tensor o = out[i];
    at::mm_out(o, a3[i], b3[i]);
  }
  shape.push_back(n);
  shape.push_back(m);
  return out.view(shape);
}

// x [B,n,k] -> x · wᵀ + b [B,n,o], each sample's rows in a GEMM of their own on the CPU. OpenBLAS's
// AVX2 and AVX-512 kernels round a row differently with the number of rows in the call, so a batched
// call would make a sample's values depend on its batch (docs/numerics.md); one call per sample
// keeps them the same bits in any batch at a measured 20-35 % of a batch-4 ViT-B/16 forward on 2 cores.
// Elsewhere (CUDA, 2-D input) it is torch::linear. No autograd (frozen backbone only).
inline at::Tensor per_sample_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = at::Tensor()) {
  if (!x.device().is_cpu() || x.dim() != 3) return torch::linear(x, w, b);
  const at::Tensor xc = x.contiguous(), wt = w.t();
  at::Tensor out = torch::empty({x.size(0), x.size(1), w.size(0)}, x.options());
  for (int64_t i = 0; i < x.size(0); ++i) {
    at::Tensor o = out[i];
    if (b.defined())
      at::addmm_out(o, b, xc[i], wt);
    else
      at::mm_out(o, xc[i], wt);
  }
  return out;
}

}  // namespace excel::model
