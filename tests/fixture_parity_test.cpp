// Cross-cutting (fixture parity of whole stages): stages::dump_stages on the reference fixture's
// inputs, with both checkpoint forms (TorchScript and state dict), matches every dataset of the
// fixture's text, vision, cam, train, infer and metrics groups with the fixture's own rules:
// floats within 1e-4 normalised error (below), label maps within 0.1 % of cells, integers and
// strings exact; on the CPU path and on the device path (--model_kernels=torch). That is the
// whole path stages/ runs (src/stages/train_stages.cpp and the model, eval and train units it calls). Skips without
// ../shared (fails under CI=true). Rerun per OpenBLAS kernel by scripts/test_kernels.sh.
#include <torch/torch.h>

#include <cstring>
#include <filesystem>

#include "excel/common/h5.h"
#include "excel/stages/stage_dump.h"
#include "test_util.h"

using namespace excel;

namespace {

bool is_label_map(const std::string& path) {
  for (const char* s : {"pseudo_labels", "seg_pred", "affinity_labels", "infer/pred"})
    if (path.size() >= std::strlen(s) && path.compare(path.size() - std::strlen(s), std::string::npos, s) == 0)
      return true;
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
      double err = test::normalised_error(w, g);
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

void expect_dump_matches(const std::string& checkpoint, const std::string& label) {
  EXCEL_REQUIRE_SHARED(fx_path, "fixtures/public/fixture.h5");
  EXCEL_REQUIRE_SHARED(ckpt, "fixtures/public/" + checkpoint);
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
    test::report_equivalence("fixture parity (" + label + ") " + g + ", normalised error", worst, 1e-4);
    if (labels > 0)
      test::report_equivalence("fixture parity (" + label + ") " + g + ", share of label pixels", worst_labels, 1e-3);
  }
}

TEST_P(FixtureParityTest, every_stage_matches_reference) {
  expect_dump_matches(GetParam(), GetParam());
}

// The device path (batched torch ops, ATen boxes and resizes: what CUDA runs) forced on the CPU
// meets the same contract.
TEST_P(FixtureParityTest, device_path_on_the_cpu_matches_reference) {
  test::ScopedKernels torch_path(Kernels::kTorch);
  expect_dump_matches(GetParam(), GetParam() + ", device path");
}

INSTANTIATE_TEST_SUITE_P(BothCheckpointForms, FixtureParityTest,
                         ::testing::Values("clip_tiny.jit.pt", "clip_tiny.state_dict.pt"), [](const auto& info) {
                           return info.param == "clip_tiny.jit.pt" ? "torchscript" : "state_dict";
                         });
