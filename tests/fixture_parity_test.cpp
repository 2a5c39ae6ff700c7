// Stage parity against the reference fixture, with the fixture's own tolerances: floats within
// 1e-4 normalised error (below), label maps within 0.1 % of cells, integers and strings exact.
#include <torch/torch.h>

#include <cstring>
#include <filesystem>

#include "excel/common/h5.h"
#include "excel/model/checkpoint.h"
#include "excel/model/random_clip.h"
#include "excel/model/tse.h"
#include "excel/stages/stage_dump.h"
#include "test_util.h"

using namespace excel;

namespace {

// max |got - want| / max(1, max |want|), as compare.py computes it.
double normalised_error(const at::Tensor& want, const at::Tensor& got) {
  at::Tensor w = want.to(torch::kDouble), g = got.to(torch::kDouble);
  double scale = std::max(1.0, w.abs().max().item<double>());
  return (w - g).abs().max().item<double>() / scale;
}

bool is_label_map(const std::string& path) {
  for (const char* s : {"pseudo_labels", "seg_pred", "affinity_labels", "infer/pred"})
    if (path.size() >= std::strlen(s) && path.compare(path.size() - std::strlen(s), std::string::npos, s) == 0) return true;
  return false;
}

// Recursively compares every dataset under `group` with the rules of compare.py.
void expect_group_matches(const h5::File& fx, const h5::File& dump, const std::string& group, int* compared,
                          double* worst, double* worst_labels, int* labels) {
  for (const std::string& name : fx.list(group)) {
    const std::string path = group + "/" + name;
    if (fx.is_group(path)) {
      expect_group_matches(fx, dump, path, compared, worst, worst_labels, labels);
      continue;
    }
    ASSERT_TRUE(dump.exists(path)) << path << " missing from the dump";
    ++*compared;
    if (name == "prompts" || name == "extra_strings") {
      EXPECT_EQ(fx.read_strings(path), dump.read_strings(path)) << path;
      continue;
    }
    at::Tensor want = fx.read(path), got = dump.read(path);
    ASSERT_EQ(want.sizes(), got.sizes()) << path;
    if (want.numel() == 0) continue;
    if (want.is_floating_point()) {
      at::Tensor nan_w = torch::isnan(want), nan_g = torch::isnan(got.to(want.scalar_type()));
      ASSERT_TRUE(torch::equal(nan_w, nan_g)) << path << ": NaN positions differ";
      at::Tensor w = want.masked_select(~nan_w), g = got.to(want.scalar_type()).masked_select(~nan_w);
      if (w.numel() == 0) continue;
      double err = normalised_error(w, g);
      *worst = std::max(*worst, err);
      EXPECT_LE(err, 1e-4) << path;
    } else if (is_label_map(path)) {
      double frac = (want.to(torch::kLong) != got.to(torch::kLong)).to(torch::kDouble).mean().item<double>();
      *worst_labels = std::max(*worst_labels, frac);
      ++*labels;
      EXPECT_LE(frac, 1e-3) << path;
    } else {
      EXPECT_TRUE(torch::equal(want.to(torch::kLong), got.to(torch::kLong))) << path;
    }
  }
}

}  // namespace

class FixtureParityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureParityTest, every_stage_matches_reference) {
  EXCEL_REQUIRE_SHARED(fx_path, "fixtures/public/fixture.h5");
  EXCEL_REQUIRE_SHARED(ckpt, "fixtures/public/" + GetParam());
  const std::string out = test::temp_dir("parity") + "/dump.h5";
  auto groups = stages::dump_stages({ckpt, fx_path, out, ""});
  h5::File fx = h5::File::open(fx_path), dump = h5::File::open(out);
  for (const char* g : {"text", "vision", "cam", "train", "infer", "metrics"}) {
    int compared = 0;
    double worst = 0, worst_labels = 0;
    int labels = 0;
    expect_group_matches(fx, dump, g, &compared, &worst, &worst_labels, &labels);
    EXPECT_GT(compared, 0) << "fixture group " << g << " is empty";
    std::cout << "[parity] " << g << ": " << compared << " datasets\n";
    test::report_equivalence("fixture parity (" + GetParam() + ") " + g + ", normalised error", worst, 1e-4);
    if (labels > 0)
      test::report_equivalence("fixture parity (" + GetParam() + ") " + g + ", share of label pixels", worst_labels, 1e-3);
  }
}

INSTANTIATE_TEST_SUITE_P(BothCheckpointForms, FixtureParityTest,
                         ::testing::Values("clip_tiny.jit.pt", "clip_tiny.state_dict.pt"),
                         [](const auto& info) { return info.param == "clip_tiny.jit.pt" ? "torchscript" : "state_dict"; });

// A fixture set of other sizes (inputs only: no reference stages) must pass through the dump
// tool with every size taken from the files.
TEST(StageDumpTest, other_sizes_are_read_from_the_files) {
  EXCEL_REQUIRE_SHARED(bpe, "data/text/bpe_simple_vocab_16e6.txt.gz");
  const std::string dir = test::temp_dir("othersize");
  model::ClipConfig cfg = model::vit_b16_config();
  cfg.vision_width = 64;
  cfg.vision_heads = 1;
  cfg.vision_layers = 8;
  cfg.pos_grid = 5;
  cfg.text_width = 64;
  cfg.text_heads = 1;
  cfg.text_layers = 1;
  cfg.embed_dim = 24;
  auto tensors = model::random_clip_tensors(cfg, 11, torch::kHalf);
  model::save_clip_checkpoint(tensors, cfg, dir + "/clip.jit.pt", model::CheckpointFormat::kTorchScript);
  {
    h5::File f = h5::File::create(dir + "/fixture.h5");
    torch::manual_seed(0);
    f.write("inputs/images_rgb", torch::randint(0, 256, {3, 96, 96, 3}).to(torch::kByte));
    f.write("inputs/bank/centroids", torch::randn({24, 9}));
    f.write("inputs/bank/class_flags", torch::ones({20, 9}));
    f.write_strings("text/extra_strings", {"one", "two words"});
    f.set_attr("crop", int64_t{96});
    f.set_attr("dataset", std::string("voc"));
    f.set_attr("checkpoint_jit", std::string("clip.jit.pt"));
    f.set_attr("tse_topk_fraction", 0.9);
  }
  stages::dump_stages({"", dir + "/fixture.h5", dir + "/dump.h5", bpe});
  h5::File d = h5::File::open(dir + "/dump.h5");
  EXPECT_EQ(d.read("vision/attn_all").sizes(), at::IntArrayRef({8, 3, 37, 37}));
  EXPECT_EQ(d.read("vision/feats_all").sizes(), at::IntArrayRef({8, 3, 37, 64}));
  EXPECT_EQ(d.read("vision/features").sizes(), at::IntArrayRef({3, 37, 24}));
  EXPECT_EQ(d.read("text/tse_features").sizes(), at::IntArrayRef({45, 24}));
  at::Tensor cam = d.read("cam/static");
  EXPECT_EQ(cam.sizes(), at::IntArrayRef({3, 36, 20}));
  EXPECT_GE(cam.min().item<float>(), 0.f);
  EXPECT_LE(cam.max().item<float>(), 1.f);
  EXPECT_EQ(d.read("text/extra_token_ids").size(0), 2);
}

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
