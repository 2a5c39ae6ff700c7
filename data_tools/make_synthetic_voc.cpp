// Generates the synthetic VOC-layout data set (see include/excel/data/synthetic_voc.h).
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <iostream>

#include "excel/common/logging.h"
#include "excel/common/tool_flags.h"
#include "excel/data/synthetic_voc.h"

DEFINE_string(output, "demo_out/voc", "output folder (VOC layout)");
DEFINE_int32(num_images, 40, "number of images");
DEFINE_int32(min_side, 200, "smallest image side");
DEFINE_int32(max_side, 400, "largest image side");
DEFINE_double(val_fraction, 0.25, "fraction of images listed in val.txt");
DEFINE_int32(seed, 0, "seed (the data set is a pure function of the flags)");

int main(int argc, char** argv) {
  excel::parse_tool_flags(&argc, &argv, "Generates the synthetic VOC-layout data set (see include/excel/data/synthetic_voc.h).");
  excel::init_logging(argv[0]);
  try {
    auto s = excel::data::make_synthetic_voc({FLAGS_output, FLAGS_num_images, FLAGS_min_side, FLAGS_max_side,
                                               FLAGS_val_fraction, static_cast<uint64_t>(FLAGS_seed)});
    LOG(INFO) << "wrote " << FLAGS_output << ": " << s.train_ids.size() << " train, " << s.val_ids.size() << " val";
  } catch (const std::exception& e) {
    std::cerr << "make_synthetic_voc: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
