// eval/eval_report (src/eval/eval_report.cpp): the §10.4 table's NaN/inf conventions in text,
// CSV and JSON (format_table, write_tables).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "excel/eval/evaluator.h"

namespace excel {
namespace {

TEST(EvalTableTest, ReferenceConventions) {
  // K = 3: class 1 is never predicted (precision 0/0 = nan), class 2 has FP but no TP (inf).
  at::Tensor cm = torch::tensor({{5, 0, 1}, {2, 0, 0}, {0, 0, 0}}, torch::kLong);
  eval::EvalTable t{"pseudo_label", cm};
  const std::vector<std::string> names{"bg", "a", "b"};
  const std::string text = eval::format_table(t, names);
  EXPECT_NE(text.find("nan"), std::string::npos) << text;
  EXPECT_NE(text.find("inf"), std::string::npos) << text;
  EXPECT_NE(text.find("62.50"), std::string::npos) << text;  // bg IoU 5 / (6 + 7 - 5)

  eval::EvalConfig cfg;
  eval::EvalReport r;
  r.images = r.scored_images = 2;
  r.tables.push_back(t);
  const std::string dir = ::testing::TempDir() + "/eval_table";
  eval::write_tables(dir, cfg, r, names, 2);
  std::ifstream in(dir + "/table.json");
  nlohmann::json j = nlohmann::json::parse(in);
  const auto& pl = j["tables"]["pseudo_label"];
  EXPECT_NEAR(pl["classes"][0]["iou"].get<double>(), 62.5, 1e-9);
  EXPECT_EQ(pl["classes"][1]["precision"], "nan");
  EXPECT_EQ(pl["classes"][2]["confusion_ratio"], "inf");
  EXPECT_EQ(pl["mean"]["precision"], "nan");                                 // plain mean propagates NaN
  EXPECT_NEAR(pl["miou"].get<double>(), 100.0 * (0.625 + 0.0) / 2.0, 1e-9);  // classes with GT only
  EXPECT_EQ(pl["confusion_matrix"].size(), 9u);
  std::ifstream csv(dir + "/table.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header, "table,class,iou,precision,recall,confusion_ratio");
}

}  // namespace
}  // namespace excel
