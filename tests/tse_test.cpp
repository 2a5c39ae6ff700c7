// model/tse (src/model/tse.cpp): text semantic enrichment keeps all but int(0.1 * A) attribute
// logits per class like the reference, and leaves the background row normalised only.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "excel/model/tse.h"

using namespace excel;

TEST(TseTest, keeps_all_but_int_of_tenth_lowest_attributes_like_the_reference) {
  // With A = 112 the reference drops int(0.09999999999999998 * 112) = 11 logits per class.
  const int64_t A = 112;
  model::AttributeBank bank{torch::eye(A), torch::ones({1, A})};
  torch::manual_seed(4);
  at::Tensor t0 = torch::randn({3, A});
  at::Tensor out = model::text_semantic_enrichment(t0, 1, bank, 0.9);
  // With Phi = I the logits are the row itself; keep its 101 largest entries.
  at::Tensor keep = std::get<1>(t0[0].topk(A - 11));
  at::Tensor w = torch::zeros({A});
  w.index_put_({keep}, torch::softmax(t0[0].index({keep}), 0));
  at::Tensor want = (w + t0[0]) / (w + t0[0]).norm();
  EXPECT_LT((out[0] - want).abs().max().item<double>(), 1e-6);
  EXPECT_LT((out[1] - t0[1] / t0[1].norm()).abs().max().item<double>(), 1e-6);  // background: normalised only
  EXPECT_LT((out[2] - t0[2] / t0[2].norm()).abs().max().item<double>(), 1e-6);
}
