// Precompiled header: LibTorch costs ~20 s per translation unit otherwise.
#pragma once
#include <torch/torch.h>
