// Learns a BPE merge list (CLIP's file format) from class descriptions and the data set's prompts:
// the vocabulary of a text tower trained from scratch on a world CLIP's own list was not made for
// (the synthetic demo). Real CLIP checkpoints need CLIP's list (include/excel/model/tokenizer.h).
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "excel/common/errors.h"
#include "excel/common/logging.h"
#include "excel/common/tool_flags.h"
#include "excel/model/bpe_training.h"
#include "excel/model/prompts.h"
#include "excel/model/tokenizer.h"

DEFINE_string(descriptions, "", "class descriptions JSON (class name -> sentences), e.g. make_synthetic_voc's");
DEFINE_string(data_dataset, "voc", "voc or coco: its class and background prompts are part of the corpus");
DEFINE_int32(bpe_merges, 4000, "the most merges to learn (fewer when every word of the corpus is one token)");
DEFINE_string(output, "", "merge list to write (.txt.gz)");

int main(int argc, char** argv) {
  excel::parse_tool_flags(&argc, &argv,
                          "usage: build_bpe_vocab --descriptions=DESCRIPTIONS.json --output=BPE.txt.gz\n"
                          "Learns a byte-level BPE merge list from the descriptions and the data set's prompts.");
  excel::init_logging(argv[0]);
  try {
    if (FLAGS_descriptions.empty() || FLAGS_output.empty())
      throw excel::ConfigError("--descriptions and --output are required");
    if (FLAGS_bpe_merges < 1 || FLAGS_bpe_merges > 48894)
      throw excel::ConfigError("--bpe_merges must be in [1, 48894], not " + std::to_string(FLAGS_bpe_merges));
    const excel::model::DatasetText& dt = excel::model::dataset_text(FLAGS_data_dataset);
    std::ifstream in(FLAGS_descriptions);
    if (!in) throw excel::InputError(FLAGS_descriptions + ": cannot open");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      throw excel::FormatError(FLAGS_descriptions + ": invalid JSON: " + e.what());
    }
    if (!j.is_object()) throw excel::FormatError(FLAGS_descriptions + ": expected an object of class -> sentences");
    std::vector<std::string> corpus;
    for (const auto& [name, sentences] : j.items()) {
      if (!sentences.is_array()) throw excel::FormatError(FLAGS_descriptions + ": class '" + name + "' has no sentence list");
      for (const auto& s : sentences) {
        if (!s.is_string()) throw excel::FormatError(FLAGS_descriptions + ": class '" + name + "': a sentence is not a string");
        corpus.push_back(s.get<std::string>());
      }
    }
    for (const std::string& name : excel::model::all_text_names(dt)) corpus.push_back(excel::model::make_prompt(name));
    const auto merges = excel::model::learn_bpe_merges(corpus, FLAGS_bpe_merges);
    excel::model::write_bpe_merges(FLAGS_output, merges);
    LOG(INFO) << "wrote " << FLAGS_output << ": " << merges.size() << " merges (vocabulary of " << 512 + merges.size() + 2
              << " tokens) from " << corpus.size() << " texts";
  } catch (const std::exception& e) {
    std::cerr << "build_bpe_vocab: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
