// model/tse (src/model/tse.cpp): text semantic enrichment keeps all but int(0.1 * A) attribute
// logits per class like the reference, and leaves the background row normalised only; the authors'
// .pth banks read back exactly, and other contents of such a file are refused by name.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "authors_bank_pth.h"
#include "excel/common/errors.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/tse.h"
#include "test_util.h"

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

// load_attribute_bank_pth: the authors' .pth bank, written here as their code writes it.
namespace {

// 0/1 flags [C, A], every class owning at least one attribute (A >= C).
at::Tensor owner_flags(int64_t C, int64_t A) {
  at::Tensor f = torch::zeros({C, A});
  for (int64_t a = 0; a < A; ++a) f[a % C][a] = 1;
  return f;
}

void expect_refused(const std::string& path, const std::string& words) {
  try {
    model::load_attribute_bank_pth(path);
    ADD_FAILURE() << path << " was read";
  } catch (const FormatError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(words), std::string::npos) << what;
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(words), std::string::npos) << what;
  }
}

}  // namespace

TEST(TseBankPthTest, the_authors_layout_reads_back_exactly_from_lists_and_tuples_of_any_float_dtype) {
  const std::string dir = test::temp_dir("bank_pth");
  torch::manual_seed(5);
  const at::Tensor centroids = torch::randn({16, 24}), flags = owner_flags(20, 24);
  const std::string p = dir + "/bank.pth";
  test::write_authors_bank_pth(p, centroids, flags);
  // Pickled as the authors' file is: protocol 2, Python's bare list (no LibTorch type tag), tensors
  // by _rebuild_tensor_v2, the centroids a transposed view (strides 1, E).
  const std::string pkl = test::pickle_record(p);
  EXPECT_EQ(pkl.substr(0, 3), std::string("\x80\x02]", 3));
  EXPECT_EQ(pkl.substr(pkl.size() - 2), "e.");
  EXPECT_EQ(pkl.find("restore_type_tag"), std::string::npos);
  EXPECT_NE(pkl.find("_rebuild_tensor_v2"), std::string::npos);
  EXPECT_EQ(model::read_torch_save(p).toList().get(0).toTensor().strides(), at::IntArrayRef({1, 16}));
  model::AttributeBank b = model::load_attribute_bank_pth(p);
  EXPECT_TRUE(torch::equal(b.centroids, centroids));
  EXPECT_TRUE(torch::equal(b.class_flags, flags));
  EXPECT_TRUE(b.centroids.is_contiguous());

  // The same list as LibTorch tags it, a tuple, fp16 centroids with bool flags, fp64.
  test::write_torch_save(p, test::authors_bank_layout(centroids, flags));
  EXPECT_TRUE(torch::equal(model::load_attribute_bank_pth(p).centroids, centroids));
  test::write_torch_save(p, c10::ivalue::Tuple::create(std::vector<c10::IValue>{centroids, flags}));
  EXPECT_TRUE(torch::equal(model::load_attribute_bank_pth(p).centroids, centroids));
  test::write_torch_save(p, test::authors_bank_layout(centroids.to(torch::kHalf), flags.to(torch::kBool)));
  b = model::load_attribute_bank_pth(p);
  EXPECT_EQ(b.centroids.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(b.centroids, centroids.to(torch::kHalf).to(torch::kFloat)));
  EXPECT_TRUE(torch::equal(b.class_flags, flags));
  test::write_torch_save(p, test::authors_bank_layout(centroids.to(torch::kDouble), flags.to(torch::kDouble)));
  EXPECT_TRUE(torch::equal(model::load_attribute_bank_pth(p).centroids, centroids));
  std::filesystem::remove_all(dir);
}

TEST(TseBankPthTest, other_contents_and_damaged_files_are_refused_naming_the_file_and_what_it_holds) {
  const std::string dir = test::temp_dir("bank_pth_bad");
  torch::manual_seed(6);
  const at::Tensor c = torch::randn({16, 24}), f = owner_flags(20, 24);
  const std::string p = dir + "/bank.pth";
  auto list = [](std::vector<c10::IValue> items) {
    c10::impl::GenericList l(c10::AnyType::get());
    for (auto& v : items) l.push_back(v);
    return l;
  };
  expect_refused(dir + "/absent.pth", "file not found");
  test::write_authors_bank_pth(p, c, f);
  const auto full = std::filesystem::file_size(p);
  std::filesystem::resize_file(p, full / 2);
  expect_refused(p, "truncated");
  std::ofstream(p, std::ios::binary | std::ios::trunc) << "\x80\x02\x8a\x0alegacy";
  expect_refused(p, "legacy");
  c10::Dict<std::string, at::Tensor> keyed;
  keyed.insert("centroids", c);
  keyed.insert("class_flags", f);
  test::write_torch_save(p, keyed);
  expect_refused(p, "holds a dict with keys 'centroids', 'class_flags'; expected the authors' bank, a list [");
  test::write_torch_save(p, c);
  expect_refused(p, "holds a tensor of shape [16,24]");
  test::write_torch_save(p, list({c, f, f}));
  expect_refused(p, "holds a list of 3 entries");
  test::write_torch_save(p, list({c, c10::IValue("flags")}));
  expect_refused(p, "entry 1 (class_flags) is a String");
  test::write_torch_save(p, list({c.flatten(), f}));
  expect_refused(p, "entry 0 (centroids) is a tensor of shape [384]");
  test::write_torch_save(p, list({c.to(torch::kLong), f}));
  expect_refused(p, "entry 0 (centroids) is a tensor of shape [16,24] of dtype Long");
  test::write_torch_save(p, list({c, f.slice(1, 0, 23)}));
  expect_refused(p, "centroids [16,24] and class_flags [20,23] do not form a bank");
  test::write_torch_save(p, list({c.t(), f}));  // [A, E]: the orientation the authors do not use
  expect_refused(p, "centroids [24,16] and class_flags [20,24] do not form a bank");
  at::Tensor bad = c.clone();
  bad[3][5] = std::numeric_limits<float>::quiet_NaN();
  test::write_torch_save(p, test::authors_bank_layout(bad, f));
  expect_refused(p, "centroids contain NaN or Inf");
  test::write_torch_save(p, test::authors_bank_layout(c.to(torch::kDouble) * 1e300, f));
  expect_refused(p, "centroids contain NaN or Inf");
  bad = f.clone();
  bad[0][0] = 0.5;
  test::write_torch_save(p, test::authors_bank_layout(c, bad));
  expect_refused(p, "class_flags hold values other than 0 and 1");
  bad = f.clone();
  bad[3].zero_();
  test::write_torch_save(p, test::authors_bank_layout(c, bad));
  expect_refused(p, "class 3 has no attribute");
  std::filesystem::remove_all(dir);
}
