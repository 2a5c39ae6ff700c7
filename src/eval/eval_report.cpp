// The metric table of §10.4: per class IoU, precision, recall (x100) and confusion ratio, and
// their plain means over all K classes (NaN and inf propagate, as the reference prints them),
// plus mIoU over classes with ground truth, pixel and mean accuracy.
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"
#include "excel/eval/evaluator.h"
#include "excel/eval/seg_metrics.h"

namespace excel::eval {
namespace {

std::string num(double v, int precision = 2) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", precision, v);
  return buf;
}

// JSON has no NaN or inf: they are written as strings so that nothing is silently dropped.
nlohmann::json jnum(double v) {
  if (std::isfinite(v)) return v;
  return num(v);
}

struct Row {
  std::string name;
  double iou, precision, recall, confusion;
};

std::vector<Row> rows(const SegScores& s, const std::vector<std::string>& names) {
  std::vector<Row> out;
  const int64_t K = s.iou.size(0);
  for (int64_t k = 0; k < K; ++k)
    out.push_back({names[static_cast<size_t>(k)], 100 * s.iou[k].item<double>(), 100 * s.precision[k].item<double>(),
                   100 * s.recall[k].item<double>(), s.confusion[k].item<double>()});
  out.push_back({"mean", 100 * s.iou.mean().item<double>(), 100 * s.precision.mean().item<double>(),
                 100 * s.recall.mean().item<double>(), s.confusion.mean().item<double>()});
  return out;
}

// table.json as it is stored, one struct per JSON object, (de)serialised by nlohmann's macros.
// A value is a JSON number, or a string for NaN and inf (jnum).
struct RowJson {
  std::string name;
  nlohmann::json iou, precision, recall, confusion_ratio;
};
// Written by hand: the key "class" is a C++ keyword, so it cannot be a member name for the macro.
void to_json(nlohmann::json& j, const RowJson& r) {
  j = {{"class", r.name},
       {"iou", r.iou},
       {"precision", r.precision},
       {"recall", r.recall},
       {"confusion_ratio", r.confusion_ratio}};
}
void from_json(const nlohmann::json& j, RowJson& r) {
  j.at("class").get_to(r.name);
  r.iou = j.at("iou");
  r.precision = j.at("precision");
  r.recall = j.at("recall");
  r.confusion_ratio = j.at("confusion_ratio");
}

struct TableJson {
  RowJson mean;
  std::vector<RowJson> classes;
  nlohmann::json miou, pixel_accuracy, mean_accuracy;
  std::vector<int64_t> confusion_matrix;  // K x K, row-major: ground truth x prediction
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TableJson, mean, classes, miou, pixel_accuracy, mean_accuracy, confusion_matrix)

struct ReportJson {
  std::string mode, dataset, split;
  bool crf = false;
  std::vector<int64_t> scales;
  int64_t images = 0, scored_images = 0;
  int world_size = 1;
  std::map<std::string, TableJson> tables;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ReportJson, mode, dataset, split, crf, scales, images, scored_images, world_size,
                                   tables)

}  // namespace

std::string format_table(const EvalTable& t, const std::vector<std::string>& names) {
  const SegScores s = scores(t.confusion);
  if (static_cast<int64_t>(names.size()) != s.iou.size(0))
    throw ConfigError("metric table: " + std::to_string(names.size()) + " class names for " +
                      std::to_string(s.iou.size(0)) + " classes");
  std::ostringstream o;
  char line[160];
  std::snprintf(line, sizeof(line), "%-14s %8s %10s %8s %15s\n", t.name.c_str(), "IoU", "Precision", "Recall",
                "ConfusionRatio");
  o << line;
  for (const Row& r : rows(s, names)) {
    std::snprintf(line, sizeof(line), "%-14s %8s %10s %8s %15s\n", r.name.c_str(), num(r.iou).c_str(),
                  num(r.precision).c_str(), num(r.recall).c_str(), num(r.confusion, 3).c_str());
    o << line;
  }
  o << "mIoU (classes with ground truth) " << num(100 * s.miou) << ", pixel accuracy " << num(100 * s.pixel_acc)
    << ", mean accuracy " << num(100 * s.mean_acc) << "\n";
  return o.str();
}

void write_tables(const std::string& dir, const EvalConfig& cfg, const EvalReport& r,
                  const std::vector<std::string>& names, int world_size) {
  std::filesystem::create_directories(dir);
  std::ostringstream csv;
  csv << "table,class,iou,precision,recall,confusion_ratio\n";
  ReportJson report{cfg.mode, cfg.dataset, cfg.split, cfg.crf, cfg.scales, r.images, r.scored_images, world_size, {}};
  for (const auto& t : r.tables) {
    const SegScores s = scores(t.confusion);
    TableJson jt;
    for (const Row& row : rows(s, names)) {
      csv << t.name << "," << row.name << "," << num(row.iou, 6) << "," << num(row.precision, 6) << ","
          << num(row.recall, 6) << "," << num(row.confusion, 6) << "\n";
      RowJson jr{row.name, jnum(row.iou), jnum(row.precision), jnum(row.recall), jnum(row.confusion)};
      if (row.name == "mean")
        jt.mean = jr;
      else
        jt.classes.push_back(jr);
    }
    jt.miou = jnum(100 * s.miou);
    jt.pixel_accuracy = jnum(100 * s.pixel_acc);
    jt.mean_accuracy = jnum(100 * s.mean_acc);
    at::Tensor c = t.confusion.to(torch::kLong).contiguous();
    jt.confusion_matrix.assign(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
    report.tables[t.name] = jt;
  }
  const nlohmann::json j = report;
  atomic_write(dir + "/table.csv", csv.str());
  atomic_write(dir + "/table.json", j.dump(2) + "\n");
}

}  // namespace excel::eval
