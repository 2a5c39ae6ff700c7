// Imports one of the authors' published TSE attribute banks (their attributes_text/
// *_embedding_bank.pth: torch.save of [centroids [E, A], class_flags [C, A]]) into this project's
// bank file (HDF5 `centroids` [E, A], `class_flags` [C, A]; the --model_bank the tools read),
// unchanged apart from the dtype (float32). Checks: the layout, finite centroids, 0/1 flags, C
// against --data_dataset and, with --model_clip, E against that CLIP's embedding size.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <torch/torch.h>

#include "excel/common/errors.h"
#include "excel/common/logging.h"
#include "excel/common/tool_flags.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/prompts.h"
#include "excel/model/tse.h"

DEFINE_string(bank_pth, "", "the authors' attribute bank (.pth, torch.save zip format)");
EXCEL_FLAG_RULE(bank_pth, "a .pth file (required)", !FLAGS_bank_pth.empty());
DEFINE_string(data_dataset, "voc", "voc or coco: the number of classes the bank must have (20 or 80)");
EXCEL_FLAG_RULE(data_dataset, "voc or coco", FLAGS_data_dataset == "voc" || FLAGS_data_dataset == "coco");
DEFINE_string(model_clip, "", "CLIP checkpoint the bank will be used with (optional: checks its embedding size)");
DEFINE_string(model_bank, "", "output attribute bank .h5 (the --model_bank of the tools that read it)");
EXCEL_FLAG_RULE(model_bank, "an .h5 path (required)", !FLAGS_model_bank.empty());

namespace {

// Runs `f`; an error it throws comes back as "--FLAG=VALUE: ..." (its message starts with the file).
template <class F>
auto for_flag(const char* flag, const std::string& value, F f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    const bool starts = msg.rfind(value + ":", 0) == 0;
    throw std::runtime_error("--" + std::string(flag) + "=" + (starts ? msg : value + ": " + msg));
  }
}

}  // namespace

int main(int argc, char** argv) {
  excel::parse_tool_flags(
      &argc, &argv,
      "Imports one of the authors' published TSE attribute banks (their attributes_text/*_embedding_bank.pth: "
      "torch.save of [centroids [E, A], class_flags [C, A]]) into this project's bank file (HDF5 `centroids` "
      "[E, A], `class_flags` [C, A]; the --model_bank the tools read), unchanged apart from the dtype (float32). "
      "Checks: the layout, finite centroids, 0/1 flags, C against --data_dataset and, with --model_clip, E against "
      "that CLIP's embedding size.");
  excel::init_logging(argv[0]);
  try {
    const excel::model::AttributeBank bank =
        for_flag("bank_pth", FLAGS_bank_pth, [] { return excel::model::load_attribute_bank_pth(FLAGS_bank_pth); });
    const int64_t E = bank.centroids.size(0), A = bank.centroids.size(1), C = bank.class_flags.size(0);
    const auto want_c = static_cast<int64_t>(excel::model::dataset_text(FLAGS_data_dataset).class_names.size());
    if (C != want_c)
      throw excel::InputError("--bank_pth=" + FLAGS_bank_pth + ": a bank of " + std::to_string(C) +
                              " classes, but --data_dataset=" + FLAGS_data_dataset + " has " + std::to_string(want_c));
    if (!FLAGS_model_clip.empty()) {
      const int64_t clip_e = for_flag("model_clip", FLAGS_model_clip, [] {
        return excel::model::load_clip_checkpoint(FLAGS_model_clip).config.embed_dim;
      });
      if (clip_e != E)
        throw excel::InputError("--bank_pth=" + FLAGS_bank_pth + ": embeddings of size " + std::to_string(E) +
                                ", but --model_clip=" + FLAGS_model_clip + " embeds into " + std::to_string(clip_e) +
                                " (a bank only fits the CLIP it was built with)");
    }
    for_flag("model_bank", FLAGS_model_bank, [&] { excel::model::save_attribute_bank(bank, FLAGS_model_bank); });
    LOG(INFO) << "wrote " << FLAGS_model_bank << ": " << C << " classes, " << A << " attributes of size " << E
              << " (from " << FLAGS_bank_pth << ")";
  } catch (const std::exception& e) {
    excel::log_error_and_flush(std::string("import_attribute_bank: error: ") + e.what());
    return 1;
  }
  return 0;
}
