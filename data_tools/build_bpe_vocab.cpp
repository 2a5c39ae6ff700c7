// Learns a BPE merge list (CLIP's file format) from class descriptions and the data set's prompts:
// the vocabulary of a text tower trained from scratch on a world CLIP's own list was not made for
// (the synthetic demo). Real CLIP checkpoints need CLIP's list (include/excel/model/tokenizer.h).
#include <gflags/gflags.h>
#include <glog/logging.h>

#include "excel/common/errors.h"
#include "excel/common/logging.h"
#include "excel/common/tool_flags.h"
#include "excel/model/bpe_training.h"
#include "excel/model/tokenizer.h"
#include "excel/model/tse.h"

DEFINE_string(bank_descriptions, "", "descriptions JSON (class name -> list of sentences), e.g. make_synthetic_voc's");
EXCEL_FLAG_RULE(bank_descriptions, "a JSON file (required)", !FLAGS_bank_descriptions.empty());
DEFINE_string(data_dataset, "voc", "voc or coco: its class and background prompts join the corpus");
EXCEL_FLAG_RULE(data_dataset, "voc or coco", FLAGS_data_dataset == "voc" || FLAGS_data_dataset == "coco");
DEFINE_int32(model_bpe_merges, 4000, "the most merges to learn (fewer when every word of the corpus is one token)");
EXCEL_FLAG_RULE(model_bpe_merges, "1 to 48894", FLAGS_model_bpe_merges >= 1 && FLAGS_model_bpe_merges <= 48894);
DEFINE_string(model_bpe, "", "merge list to write (.txt.gz; the --model_bpe of the tools that read it)");
EXCEL_FLAG_RULE(model_bpe, "a .txt.gz path (required)", !FLAGS_model_bpe.empty());

int main(int argc, char** argv) {
  excel::parse_tool_flags(&argc, &argv,
                          "usage: build_bpe_vocab --bank_descriptions=DESCRIPTIONS.json --model_bpe=BPE.txt.gz\n"
                          "Learns a byte-level BPE merge list from the descriptions and the data set's prompts.");
  excel::init_logging(argv[0]);
  try {
    std::vector<std::string> sentences;
    for (const auto& cls : excel::model::read_class_descriptions(FLAGS_bank_descriptions))
      sentences.insert(sentences.end(), cls.sentences.begin(), cls.sentences.end());
    const auto merges = excel::model::learn_dataset_merges(sentences, FLAGS_data_dataset, FLAGS_model_bpe_merges);
    excel::model::write_bpe_merges(FLAGS_model_bpe, merges);
    LOG(INFO) << "wrote " << FLAGS_model_bpe << ": " << merges.size() << " merges (vocabulary of "
              << 512 + merges.size() + 2 << " tokens) from " << sentences.size() << " sentences and the "
              << FLAGS_data_dataset << " prompts";
  } catch (const std::exception& e) {
    excel::log_error_and_flush(std::string("build_bpe_vocab: error: ") + e.what());
    return 1;
  }
  return 0;
}
