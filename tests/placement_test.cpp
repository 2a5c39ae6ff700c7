// model/placement (src/model/placement.cpp): the process-wide device choice, the switch between
// the CPU path and the device path, and the one move of the loaded weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "excel/model/placement.h"
#include "excel/model/random_clip.h"
#include "test_util.h"
#include "tiny_setup.h"

using namespace excel;

TEST(PlacementTest, torch_kernels_follow_the_tensor_and_the_forced_switch) {
  const at::Tensor cpu = torch::zeros({2});
  {
    test::ScopedKernels blas(Kernels::kAuto);
    EXPECT_FALSE(model::torch_kernels(cpu));
  }
  {
    test::ScopedKernels forced(Kernels::kTorch);
    EXPECT_TRUE(model::torch_kernels(cpu));
    EXPECT_NE(model::describe(model::placement()).find("kernels torch (--model_kernels)"), std::string::npos)
        << model::describe(model::placement());
  }
}

TEST(PlacementTest, weights_move_once_vision_tower_only) {
  model::ClipConfig c = test::tiny_clip_config();
  c.vision_layers = 6;
  model::ClipWeights w = model::random_clip_weights(c, 1);
  const at::Tensor before = w.get("visual.proj"), text_before = w.get("text_projection");
  model::place_clip_weights(w);  // cpu, fp32: the same tensors
  EXPECT_TRUE(w.get("visual.proj").is_same(before));
  EXPECT_TRUE(w.get("text_projection").is_same(text_before));
  EXPECT_EQ(model::device(), at::Device(at::kCPU));
  EXPECT_EQ(model::backbone_dtype(), at::kFloat);
}
