// train/optimizer: PolyWarmupAdamW against steps computed by hand (in double precision).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "excel/train/optimizer.h"

using namespace excel::train;

namespace {
OptimizerConfig small_schedule() {
  OptimizerConfig c;
  c.base_lr = 1e-3;
  c.weight_decay = 0.01;
  c.warmup_iters = 2;
  c.max_iters = 10;
  c.warmup_ratio = 0.1;
  c.power = 1.0;
  return c;
}
}  // namespace

TEST(OptimizerTest, schedule_warms_up_linearly_then_decays_polynomially) {
  PolyWarmupAdamW opt({}, small_schedule());
  // Warm-up: factor = 1 - (1 - gs/warmup)(1 - ratio); then (1 - gs/max)^power; heads at 10x.
  EXPECT_DOUBLE_EQ(opt.lr(0), 10 * 1e-3 * 0.1);
  EXPECT_DOUBLE_EQ(opt.lr(1), 10 * 1e-3 * 0.55);
  EXPECT_DOUBLE_EQ(opt.lr(2), 10 * 1e-3 * 0.8);
  EXPECT_DOUBLE_EQ(opt.lr(9), 10 * 1e-3 * 0.1);
  EXPECT_DOUBLE_EQ(opt.lr(10), 0.0);
  const auto g = opt.group_lrs(2);
  ASSERT_EQ(g.size(), 4u);
  EXPECT_DOUBLE_EQ(g[0], 1e-3 * 0.8);
  EXPECT_DOUBLE_EQ(g[1], 1e-3 * 0.8);
  EXPECT_DOUBLE_EQ(g[2], 1e-2 * 0.8);
}

TEST(OptimizerTest, two_adamw_steps_match_the_hand_computation) {
  const OptimizerConfig c = small_schedule();
  at::Tensor p = torch::tensor({1.0f, -2.0f, 0.5f}).requires_grad_(true);
  at::Tensor untouched = torch::tensor({3.0f}).requires_grad_(true);  // never gets a gradient
  PolyWarmupAdamW opt({p, untouched}, c);
  const std::vector<std::vector<double>> grads = {{0.5, 0.1, -0.2}, {-0.3, 0.1, 0.4}};
  std::vector<double> want = {1.0, -2.0, 0.5}, m(3, 0.0), v(3, 0.0);
  for (int t = 0; t < 2; ++t) {
    p.mutable_grad() = torch::tensor({static_cast<float>(grads[t][0]), static_cast<float>(grads[t][1]),
                                      static_cast<float>(grads[t][2])});
    const double lr = opt.step();
    EXPECT_DOUBLE_EQ(lr, opt.lr(t));
    const double bc1 = 1 - std::pow(c.beta1, t + 1), bc2 = 1 - std::pow(c.beta2, t + 1);
    for (int i = 0; i < 3; ++i) {
      const double g = static_cast<float>(grads[t][i]);
      want[i] *= 1 - lr * c.weight_decay;
      m[i] = c.beta1 * m[i] + (1 - c.beta1) * g;
      v[i] = c.beta2 * v[i] + (1 - c.beta2) * g * g;
      want[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + c.eps);
    }
    // float32 arithmetic against double: a few roundings of values near 1, each <= 6e-8.
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(p[i].item<double>(), want[i], 1e-6) << "step " << t << " element " << i;
  }
  EXPECT_EQ(opt.steps_taken(), 2);
  EXPECT_EQ(untouched.item<float>(), 3.0f);
  opt.zero_grad();
  EXPECT_FALSE(p.grad().defined());
}
