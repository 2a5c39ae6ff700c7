// excel_dump_stages --checkpoint=CKPT --input=FIXTURE.h5 --output=OUT.h5
// The fixture contract's dump tool: its three flags are the contract's names (the fixtures' README
// runs it that way), so --checkpoint here is what --model_clip is in the other tools.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include "excel/common/errors.h"
#include "excel/common/logging.h"
#include "excel/common/process.h"
#include "excel/common/tool_flags.h"
#include "excel/model/placement.h"
#include "excel/stages/stage_dump.h"

DEFINE_string(checkpoint, "", "CLIP checkpoint (.pt TorchScript or state dict); default: the fixture's");
DEFINE_string(input, "", "fixture HDF5 file with inputs/ (and reference stages)");
EXCEL_FLAG_RULE(input, "a fixture .h5 (required)", !FLAGS_input.empty());
DEFINE_string(output, "", "output HDF5 file for the recomputed stages");
EXCEL_FLAG_RULE(output, "an .h5 path (required)", !FLAGS_output.empty());
DEFINE_string(model_bpe, "",
              "BPE merge list (default: model::default_bpe_path, else data/text/ in a folder above --input)");

int main(int argc, char** argv) {
  excel::parse_tool_flags(&argc, &argv,
                          "usage: excel_dump_stages --checkpoint=CKPT --input=FIXTURE.h5 --output=OUT.h5\nRecomputes "
                          "every stage of a fixture from its inputs (tests/fixture_parity_test.cpp).");
  excel::init_logging(argv[0]);
  try {
    excel::model::use_device_flags(excel::launcher_local_rank());
    auto groups = excel::stages::dump_stages({FLAGS_checkpoint, FLAGS_input, FLAGS_output, FLAGS_model_bpe});
    std::string list;
    for (const auto& g : groups) list += (list.empty() ? "" : ",") + g;
    LOG(INFO) << "wrote " << FLAGS_output << " with stages " << list;
  } catch (const std::exception& e) {
    excel::log_error_and_flush(std::string("excel_dump_stages: error: ") + e.what());
    return dynamic_cast<const excel::ConfigError*>(&e) ? 2 : 1;
  }
  return 0;
}
