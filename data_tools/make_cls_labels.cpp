// Builds the image-level labels file (cls_labels.txt: "ID l0 ... l(C-1)" per image, the weak
// supervision ExCEL trains from) from what a data set ships: the masks of a VOC-layout folder
// (SegmentationClassAug/ or SegmentationClass/: class c present when any pixel has value c + 1), or
// COCO's instance annotations (instances_*.json: class present when the image has an instance).
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"
#include "excel/common/logging.h"
#include "excel/common/tool_flags.h"
#include "excel/data/voc_layout_dataset.h"
#include "excel/model/prompts.h"

DEFINE_string(data_root, "", "VOC-layout data folder whose masks give the labels (unless --coco_annotations)");
DEFINE_string(data_split, "train_aug", "comma-separated lists under ImageSets/Segmentation/ (or paths)");
EXCEL_FLAG_RULE(data_split, "one or more list names", !FLAGS_data_split.empty());
DEFINE_string(data_dataset, "voc", "voc or coco: the number and order of the classes");
EXCEL_FLAG_RULE(data_dataset, "voc or coco", FLAGS_data_dataset == "voc" || FLAGS_data_dataset == "coco");
DEFINE_string(coco_annotations, "",
              "comma-separated COCO instances_*.json files (labels from annotations, ids COCO_<set>_<12 digits>)");
DEFINE_string(data_labels, "", "labels file to write (the --data_labels of the tools that read it)");
EXCEL_FLAG_RULE(data_labels, "a file path (required)", !FLAGS_data_labels.empty());
EXCEL_FLAG_RULE(data_root, "a folder, unless --coco_annotations is given",
                !FLAGS_data_root.empty() || !FLAGS_coco_annotations.empty());

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

using Labels = std::map<std::string, std::vector<int>>;

Labels from_masks(int64_t num_classes) {
  Labels out;
  for (const std::string& split : split_commas(FLAGS_data_split)) {
    excel::data::VocLayoutDataset set({FLAGS_data_root, split, "", FLAGS_data_dataset, num_classes});
    for (size_t i = 0; i < set.size(); ++i) {
      const at::Tensor present = set.class_labels(i);
      std::vector<int> v(static_cast<size_t>(num_classes));
      for (int64_t c = 0; c < num_classes; ++c) v[static_cast<size_t>(c)] = present[c].item<float>() > 0.5f ? 1 : 0;
      out[set.id(i)] = v;
    }
  }
  return out;
}

// COCO's 80 categories, ordered by id, are the classes 0..79; images are named
// COCO_<train2014|val2014>_<id, 12 digits>, the set taken from the file's images' file names.
Labels from_coco(int64_t num_classes) {
  Labels out;
  for (const std::string& path : split_commas(FLAGS_coco_annotations)) {
    std::ifstream in(path);
    if (!in) throw excel::InputError(path + ": cannot open the COCO annotations");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      throw excel::FormatError(path + ": invalid JSON: " + e.what());
    }
    try {
      std::set<int64_t> ids;
      for (const auto& c : j.at("categories")) ids.insert(c.at("id").get<int64_t>());
      if (static_cast<int64_t>(ids.size()) != num_classes)
        throw excel::FormatError(path + ": " + std::to_string(ids.size()) + " categories, COCO has " +
                                 std::to_string(num_classes));
      std::map<int64_t, int> index;
      int next = 0;
      for (int64_t id : ids) index[id] = next++;
      std::map<int64_t, std::string> names;
      for (const auto& im : j.at("images")) {
        const std::string file = im.at("file_name").get<std::string>();
        names[im.at("id").get<int64_t>()] = file.substr(0, file.rfind('.'));
        out[names.at(im.at("id").get<int64_t>())] = std::vector<int>(static_cast<size_t>(num_classes), 0);
      }
      for (const auto& a : j.at("annotations")) {
        const auto it = names.find(a.at("image_id").get<int64_t>());
        if (it == names.end()) throw excel::FormatError(path + ": an annotation names an image that is not listed");
        out[it->second][static_cast<size_t>(index.at(a.at("category_id").get<int64_t>()))] = 1;
      }
    } catch (const nlohmann::json::exception& e) {
      throw excel::FormatError(path + ": not COCO instance annotations: " + e.what());
    } catch (const std::out_of_range&) {
      throw excel::FormatError(path + ": an annotation has a category that is not listed");
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  excel::parse_tool_flags(
      &argc, &argv,
      "usage: make_cls_labels --data_root=VOC2012 --data_split=train_aug,val --data_labels=cls_labels.txt\n"
      "       make_cls_labels --data_dataset=coco --coco_annotations=instances_train2014.json,"
      "instances_val2014.json --data_labels=cls_labels.txt\n"
      "Builds the image-level labels file from masks or COCO instance annotations.");
  excel::init_logging(argv[0]);
  try {
    const int64_t C = static_cast<int64_t>(excel::model::dataset_text(FLAGS_data_dataset).class_names.size());
    const Labels labels = FLAGS_coco_annotations.empty() ? from_masks(C) : from_coco(C);
    std::ostringstream text;
    for (const auto& [id, v] : labels) {
      text << id;
      for (int x : v) text << ' ' << x;
      text << '\n';
    }
    excel::atomic_write(FLAGS_data_labels, text.str());
    LOG(INFO) << "wrote " << FLAGS_data_labels << ": " << labels.size() << " images, " << C << " classes";
  } catch (const std::exception& e) {
    excel::log_error_and_flush(std::string("make_cls_labels: error: ") + e.what());
    return 1;
  }
  return 0;
}
