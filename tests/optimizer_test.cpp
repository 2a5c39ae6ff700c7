// train/optimizer (src/train/optimizer.cpp): PolyWarmupAdamW's schedule and AdamW steps against
// values written out by hand from the formulas, and against the same formulas in double precision.
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
    p.mutable_grad() = torch::tensor(
        {static_cast<float>(grads[t][0]), static_cast<float>(grads[t][1]), static_cast<float>(grads[t][2])});
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

// The paper's schedule (the OptimizerConfig defaults: base_lr 1e-4, heads at 10 x = 1e-3,
// warm-up 50 iterations from ratio 1e-6, poly power 1 to 30000), written out:
//   gs < 50:     lr = 1e-3 * (1 - (1 - gs/50) * (1 - 1e-6))
//                gs = 0: 1e-3 * 1e-6 = 1e-9; gs = 25: 1e-3 * (1 - 0.5 * 0.999999) = 5.000005e-4;
//                gs = 49: 1e-3 * (1 - 0.02 * 0.999999) = 9.8000002e-4
//   gs < 30000:  lr = 1e-3 * (1 - gs/30000)^power
//                power 1:   gs = 50: 1e-3 * 599/600 = 9.98333...e-4; gs = 15000: 5e-4;
//                           gs = 29999: 1e-3 / 30000 = 3.33333...e-8
//                power 0.9: gs = 50: 1e-3 * (599/600)^0.9 = 9.984998749235441e-4;
//                           gs = 15000: 1e-3 * 0.5^0.9 = 5.358867312681466e-4;
//                           gs = 29999: 1e-3 * (1/30000)^0.9 = 9.345248855829639e-8
//   gs >= 30000: 0.
TEST(OptimizerTest, paper_schedule_values_at_chosen_iterations) {
  OptimizerConfig c;
  ASSERT_EQ(c.base_lr, 1e-4);
  ASSERT_EQ(c.warmup_iters, 50);
  ASSERT_EQ(c.max_iters, 30000);
  ASSERT_EQ(c.warmup_ratio, 1e-6);
  ASSERT_EQ(c.power, 1.0);
  auto near = [](double got, double want) { EXPECT_NEAR(got, want, 1e-9 * want) << "want " << want; };
  {
    PolyWarmupAdamW opt({}, c);
    near(opt.lr(0), 1e-9);
    near(opt.lr(25), 5.000005e-4);
    near(opt.lr(49), 9.8000002e-4);
    near(opt.lr(50), 1e-3 * 599.0 / 600.0);
    near(opt.lr(15000), 5e-4);
    near(opt.lr(29999), 1e-3 / 30000);
    EXPECT_EQ(opt.lr(30000), 0.0);
    EXPECT_EQ(opt.lr(40000), 0.0);
    for (int64_t gs : {0, 25, 50, 15000}) {  // backbone groups at base lr, heads at 10 x
      const auto g = opt.group_lrs(gs);
      ASSERT_EQ(g.size(), 4u);
      EXPECT_EQ(g[0], g[1]);
      EXPECT_EQ(g[2], g[3]);
      near(g[3], 10 * g[0]);
      EXPECT_EQ(g[3], opt.lr(gs));
    }
  }
  c.power = 0.9;
  {
    PolyWarmupAdamW opt({}, c);
    near(opt.lr(25), 5.000005e-4);  // the warm-up does not depend on the power
    near(opt.lr(50), 9.984998749235441e-4);
    near(opt.lr(15000), 5.358867312681466e-4);
    near(opt.lr(29999), 9.345248855829639e-8);
    EXPECT_EQ(opt.lr(30000), 0.0);
  }
  c.warmup_iters = 0;  // no warm-up: the poly decay from the first step
  c.power = 1.0;
  {
    PolyWarmupAdamW opt({}, c);
    near(opt.lr(0), 1e-3);
    near(opt.lr(15000), 5e-4);
  }
}

namespace {
// base_lr 0.01 (heads 0.1), weight decay 0.1, warm-up 2 from ratio 0.5, poly to 4:
//   lr(0) = 0.1 * (1 - 1 * 0.5) = 0.05,  lr(1) = 0.1 * (1 - 0.5 * 0.5) = 0.075,
//   lr(2) = 0.1 * (1 - 2/4) = 0.05,       lr(3) = 0.1 * (1 - 3/4) = 0.025,  lr(4) = 0.
OptimizerConfig hand_schedule() {
  OptimizerConfig c;
  c.base_lr = 0.01;
  c.weight_decay = 0.1;
  c.warmup_iters = 2;
  c.max_iters = 4;
  c.warmup_ratio = 0.5;
  c.power = 1.0;
  return c;  // beta1 0.9, beta2 0.999, eps 1e-8
}
}  // namespace

// Two AdamW steps of p = [1, 2] with gradients [0.5, 0] then [-0.25, 0], written out.
// Every parameter takes the heads' lr (group 3); the decay is decoupled: p *= 1 - lr * wd, then
// p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps), with bc_k = 1 - beta_k^t.
//
// Step t = 1 (lr 0.05, bc1 = 0.1, bc2 = 0.001):
//   decay 1 - 0.05 * 0.1 = 0.995:     p = [0.995, 1.99]
//   m = 0.1 * g = [0.05, 0],  v = 0.001 * g^2 = [0.00025, 0]
//   p[0] -= 0.05 / 0.1 * 0.05 / (sqrt(0.00025 / 0.001) + 1e-8) = 0.05 * 0.5 / (0.5 + 1e-8)
//         = 0.05 - 1e-9                  ->  p[0] = 0.945000001
//   p[1]: m = v = 0, the update is 0 / (0 + eps) = 0 (eps keeps it finite)  ->  p[1] = 1.99
// Step t = 2 (lr 0.075, bc1 = 1 - 0.81 = 0.19, bc2 = 1 - 0.998001 = 0.001999):
//   decay 1 - 0.075 * 0.1 = 0.9925:   p = [0.945000001 * 0.9925, 1.99 * 0.9925]
//                                        = [0.9379125009925, 1.975075]
//   m = 0.9 * 0.05 + 0.1 * (-0.25) = 0.02,  v = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00031225
//   m_hat = 0.02 / 0.19 = 0.10526315789,  v_hat = 0.00031225 / 0.001999 = 0.15620310155,
//   sqrt(v_hat) = 0.39522538070
//   p[0] -= 0.075 * 0.10526315789 / 0.39522538070 = 0.01997527747  ->  p[0] = 0.91793722352
//   p[1] = 1.975075
// Float32 parameters near 1-2 hold these to ~1e-7, hence the 1e-6 bound; a coupled (L2) decay,
// the decay at the backbone's lr (0.005), or the lr of the next step would each miss by > 1e-3.
TEST(OptimizerTest, two_adamw_steps_equal_the_numbers_written_out) {
  at::Tensor p = torch::tensor({1.0f, 2.0f}).requires_grad_(true);
  PolyWarmupAdamW opt({p}, hand_schedule());
  EXPECT_DOUBLE_EQ(opt.lr(0), 0.05);
  EXPECT_DOUBLE_EQ(opt.lr(1), 0.075);
  EXPECT_DOUBLE_EQ(opt.lr(2), 0.05);
  EXPECT_DOUBLE_EQ(opt.lr(3), 0.025);
  EXPECT_EQ(opt.lr(4), 0.0);

  p.mutable_grad() = torch::tensor({0.5f, 0.0f});
  EXPECT_DOUBLE_EQ(opt.step(), 0.05);
  EXPECT_NEAR(p[0].item<double>(), 0.945000001, 1e-6);
  EXPECT_NEAR(p[1].item<double>(), 1.99, 1e-6);

  p.mutable_grad() = torch::tensor({-0.25f, 0.0f});
  EXPECT_DOUBLE_EQ(opt.step(), 0.075);
  EXPECT_NEAR(p[0].item<double>(), 0.91793722352, 1e-6);
  EXPECT_NEAR(p[1].item<double>(), 1.975075, 1e-6);
  EXPECT_EQ(opt.steps_taken(), 2);
  // The moments a checkpoint stores, in float32: ~7 significant digits, hence bounds of 1e-6 relative.
  EXPECT_NEAR(opt.exp_avg()[0][0].item<double>(), 0.02, 2e-8);
  EXPECT_EQ(opt.exp_avg()[0][1].item<double>(), 0.0);
  EXPECT_NEAR(opt.exp_avg_sq()[0][0].item<double>(), 0.00031225, 3e-10);
  EXPECT_EQ(opt.exp_avg_sq()[0][1].item<double>(), 0.0);
}

// A step with no gradients anywhere moves nothing but still advances the schedule; a resumed
// optimiser (moments and step count restored, as from a checkpoint) takes the same next step.
TEST(OptimizerTest, resumed_state_gives_the_same_next_step) {
  at::Tensor p = torch::tensor({1.0f, 2.0f}).requires_grad_(true);
  PolyWarmupAdamW opt({p}, hand_schedule());
  EXPECT_DOUBLE_EQ(opt.step(), 0.05);  // no .grad(): untouched
  EXPECT_EQ(p[0].item<float>(), 1.0f);
  EXPECT_EQ(opt.steps_taken(), 1);
  p.mutable_grad() = torch::tensor({0.5f, -0.125f});
  EXPECT_DOUBLE_EQ(opt.step(), 0.075);

  at::Tensor q = p.detach().clone().requires_grad_(true);
  PolyWarmupAdamW resumed({q}, hand_schedule());
  resumed.exp_avg()[0].copy_(opt.exp_avg()[0]);
  resumed.exp_avg_sq()[0].copy_(opt.exp_avg_sq()[0]);
  resumed.set_steps_taken(opt.steps_taken());
  p.mutable_grad() = torch::tensor({-0.25f, 0.375f});
  q.mutable_grad() = torch::tensor({-0.25f, 0.375f});
  EXPECT_DOUBLE_EQ(opt.step(), 0.05);
  EXPECT_DOUBLE_EQ(resumed.step(), 0.05);
  EXPECT_TRUE(torch::equal(p, q));
  EXPECT_TRUE(torch::equal(opt.exp_avg()[0], resumed.exp_avg()[0]));
  EXPECT_TRUE(torch::equal(opt.exp_avg_sq()[0], resumed.exp_avg_sq()[0]));
  EXPECT_EQ(resumed.steps_taken(), 3);
}
