// CAMs by feature surgery (§3).
#pragma once
#include <ATen/core/Tensor.h>

namespace excel::model {

// features [B,N,E] (token-normalised), text [n_t,E] (T_all) -> CAM [B,N-1,C] in [0,1].
at::Tensor surgery_cam(const at::Tensor& features, const at::Tensor& text, int64_t num_classes);

}  // namespace excel::model
