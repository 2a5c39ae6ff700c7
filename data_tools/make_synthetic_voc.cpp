// Generates the synthetic VOC-layout data set (see include/excel/data/synthetic_voc.h).
#include <gflags/gflags.h>
#include <glog/logging.h>

#include "excel/common/logging.h"
#include "excel/common/tool_flags.h"
#include "excel/data/synthetic_voc.h"
#include "excel/model/prompts.h"
#include "excel/model/tse.h"

DEFINE_string(data_root, "demo_out/voc", "output folder (VOC layout): the --data_root of the tools that read it");
EXCEL_FLAG_RULE(data_root, "a folder (not empty)", !FLAGS_data_root.empty());
DEFINE_int32(data_num_images, 40, "number of images");
EXCEL_FLAG_RULE(data_num_images, ">= 2", FLAGS_data_num_images >= 2);
DEFINE_int32(data_min_side, 200, "smallest image side");
EXCEL_FLAG_RULE(data_min_side, ">= 64", FLAGS_data_min_side >= 64);
DEFINE_int32(data_max_side, 400, "largest image side");
EXCEL_FLAG_RULE(data_max_side, ">= --data_min_side", FLAGS_data_max_side >= FLAGS_data_min_side);
DEFINE_double(data_val_fraction, 0.25, "fraction of images listed in val.txt (at least one)");
EXCEL_FLAG_RULE(data_val_fraction, "in [0, 1)", FLAGS_data_val_fraction >= 0 && FLAGS_data_val_fraction < 1);
DEFINE_int32(data_seed, 0, "seed (the data set is a pure function of the flags)");
EXCEL_FLAG_RULE(data_seed, ">= 0", FLAGS_data_seed >= 0);
DEFINE_string(data_style, "small",
              "object layout: small (1-3 objects, radius 1/8-1/4 of the shorter side) or large (VOC-like: 1-2 "
              "objects, radius 0.2-0.35, greyer backgrounds)");
EXCEL_FLAG_RULE(data_style, "small or large", excel::flag_one_of(FLAGS_data_style, {"small", "large"}));

int main(int argc, char** argv) {
  excel::parse_tool_flags(&argc, &argv,
                          "usage: make_synthetic_voc --data_root=DIR\nGenerates the synthetic VOC-layout data set and "
                          "its class descriptions (include/excel/data/synthetic_voc.h).");
  excel::init_logging(argv[0]);
  try {
    auto s = excel::data::make_synthetic_voc({FLAGS_data_root, FLAGS_data_num_images, FLAGS_data_min_side,
                                              FLAGS_data_max_side, FLAGS_data_val_fraction,
                                              static_cast<uint64_t>(FLAGS_data_seed),
                                              excel::data::synthetic_style(FLAGS_data_style)});
    // The world describes itself: the knowledge base of its attribute bank and text vocabulary.
    const auto& names = excel::model::dataset_text("voc").class_names;
    const auto sentences = excel::data::synthetic_class_descriptions(names);
    std::vector<excel::model::ClassDescriptions> classes;
    for (size_t c = 0; c < names.size(); ++c) classes.push_back({names[c], sentences[c]});
    excel::model::write_class_descriptions(FLAGS_data_root + "/descriptions.json", classes);
    LOG(INFO) << "wrote " << FLAGS_data_root << ": " << s.train_ids.size() << " train, " << s.val_ids.size()
              << " val, descriptions.json (" << names.size() << " classes)";
  } catch (const std::exception& e) {
    excel::log_error_and_flush(std::string("make_synthetic_voc: error: ") + e.what());
    return 1;
  }
  return 0;
}
