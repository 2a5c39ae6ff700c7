// The metric table of §10.4: per class IoU, precision, recall (x100) and confusion ratio, and
// their plain means over all K classes (NaN and inf propagate, as the reference prints them),
// plus mIoU over classes with ground truth, pixel and mean accuracy.
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "excel/common/errors.h"
#include "excel/common/atomic_file.h"
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
  nlohmann::json j;
  j["mode"] = cfg.mode;
  j["dataset"] = cfg.dataset;
  j["split"] = cfg.split;
  j["crf"] = cfg.crf;
  j["scales"] = cfg.scales;
  j["images"] = r.images;
  j["scored_images"] = r.scored_images;
  j["world_size"] = world_size;
  j["tables"] = nlohmann::json::object();
  for (const auto& t : r.tables) {
    const SegScores s = scores(t.confusion);
    nlohmann::json jt;
    nlohmann::json classes = nlohmann::json::array();
    for (const Row& row : rows(s, names)) {
      csv << t.name << "," << row.name << "," << num(row.iou, 6) << "," << num(row.precision, 6) << ","
          << num(row.recall, 6) << "," << num(row.confusion, 6) << "\n";
      nlohmann::json jr = {{"class", row.name}, {"iou", jnum(row.iou)}, {"precision", jnum(row.precision)},
                           {"recall", jnum(row.recall)}, {"confusion_ratio", jnum(row.confusion)}};
      if (row.name == "mean")
        jt["mean"] = jr;
      else
        classes.push_back(jr);
    }
    jt["classes"] = classes;
    jt["miou"] = jnum(100 * s.miou);
    jt["pixel_accuracy"] = jnum(100 * s.pixel_acc);
    jt["mean_accuracy"] = jnum(100 * s.mean_acc);
    at::Tensor c = t.confusion.to(torch::kLong).contiguous();
    std::vector<int64_t> cm(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
    jt["confusion_matrix"] = cm;
    j["tables"][t.name] = jt;
  }
  atomic_write(dir + "/table.csv", csv.str());
  atomic_write(dir + "/table.json", j.dump(2) + "\n");
}

}  // namespace excel::eval
