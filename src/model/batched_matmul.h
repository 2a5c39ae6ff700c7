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

}  // namespace excel::model
