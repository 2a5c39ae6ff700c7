// comm/gradient_sync on real ranks (run by ctest under mpirun -np 2, in excel_mpi_tests): after
// finish(), every .grad() is the sum over ranks, for buckets of every size and the flat path.
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <vector>

#include "excel/comm/communicator.h"
#include "excel/comm/gradient_bucketer.h"
#include "excel/comm/gradient_sync.h"

using namespace excel;

namespace {

// Parameters of several sizes; `b` is used twice (its gradient accumulates from two hooks calls
// or one, as autograd decides) and `unused` never gets a gradient.
struct Params {
  at::Tensor a = torch::zeros({3, 4}).requires_grad_(true);
  at::Tensor b = torch::zeros({5}).requires_grad_(true);
  at::Tensor c = torch::zeros({70000}).requires_grad_(true);  // 280 kB: a bucket of its own at 0 MB
  at::Tensor unused = torch::zeros({2}).requires_grad_(true);
  std::vector<at::Tensor> list() const { return {a, b, c, unused}; }
};

// Loss whose gradients are known: d/da = w_a * k, d/db = 2 * w_b * k, d/dc = w_c * k.
void backward(const Params& p, double k) {
  torch::manual_seed(1);
  at::Tensor wa = torch::randn({3, 4}), wb = torch::randn({5}), wc = torch::randn({70000});
  ((p.a * wa).sum() + (p.b * wb).sum() + (p.b * wb).sum() + (p.c * wc).sum()).mul(k).backward();
}

void expect_summed(int64_t bucket_mb) {
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  comm::MpiCommunicator comm(MPI_COMM_WORLD);
  Params p;
  auto sync = comm::make_gradient_sync(p.list(), comm, bucket_mb);
  for (int step = 0; step < 2; ++step) {  // twice: buckets are reused across steps
    for (auto t : p.list()) t.mutable_grad() = at::Tensor();
    sync->begin_step();
    backward(p, rank + 1.0 + step);
    sync->finish();
    // Sum over ranks of (r + 1 + step) = world (world + 1) / 2 + world * step.
    const double k = world * (world + 1) / 2.0 + world * step;
    torch::manual_seed(1);
    at::Tensor wa = torch::randn({3, 4}), wb = torch::randn({5}), wc = torch::randn({70000});
    EXPECT_TRUE(torch::allclose(p.a.grad(), wa * k, 1e-6, 1e-6)) << "bucket_mb " << bucket_mb << " step " << step;
    EXPECT_TRUE(torch::allclose(p.b.grad(), 2 * wb * k, 1e-6, 1e-6)) << "bucket_mb " << bucket_mb << " step " << step;
    EXPECT_TRUE(torch::allclose(p.c.grad(), wc * k, 1e-6, 1e-6)) << "bucket_mb " << bucket_mb << " step " << step;
    ASSERT_TRUE(p.unused.grad().defined());
    EXPECT_EQ(p.unused.grad().abs().sum().item<double>(), 0.0);
  }
}

}  // namespace

TEST(GradientSyncTest, one_bucket_per_parameter_sums_over_ranks) {
  expect_summed(0);
}
TEST(GradientSyncTest, four_megabyte_buckets_sum_over_ranks) {
  expect_summed(4);
}
TEST(GradientSyncTest, flat_buffer_sums_over_ranks) {
  expect_summed(-1);
}

namespace {

// The buffers follow the parameters' options (the device-following path that keeps CUDA
// gradients on the device): with float64 parameters the sum keeps float64 precision. Each rank
// adds 1 + r * 2^-40; a float32 buffer would round every term to 1 (its ulp at 1 is 2^-23), so
// the exact float64 sum world + 2^-40 * world (world - 1) / 2 differs from what float32 gives.
// A float32 parameter beside them gets a bucket of its own, even with 64 MB buckets.
void expect_float64_kept(int64_t bucket_mb) {
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  comm::MpiCommunicator comm(MPI_COMM_WORLD);
  at::Tensor d = torch::zeros({4}, torch::kDouble).requires_grad_(true);
  at::Tensor f = torch::zeros({3}).requires_grad_(true);
  auto sync = comm::make_gradient_sync({d, f}, comm, bucket_mb);
  const double tiny = std::ldexp(1.0, -40);
  sync->begin_step();
  ((d * (1.0 + rank * tiny)).sum() + f.sum().to(torch::kDouble)).backward();
  sync->finish();
  ASSERT_EQ(d.grad().scalar_type(), at::kDouble) << "bucket_mb " << bucket_mb;
  ASSERT_EQ(f.grad().scalar_type(), at::kFloat) << "bucket_mb " << bucket_mb;
  const double want = world + tiny * world * (world - 1) / 2.0;
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(d.grad()[i].item<double>(), want) << "bucket_mb " << bucket_mb;
  EXPECT_TRUE(torch::equal(f.grad(), torch::full({3}, static_cast<float>(world))));
  if (auto* b = dynamic_cast<comm::GradientBucketer*>(sync.get())) {
    EXPECT_EQ(b->num_buckets(), 2u);
  }
}

}  // namespace

TEST(GradientSyncTest, buckets_keep_the_parameters_dtype) {
  expect_float64_kept(64);
  expect_float64_kept(-1);
}
