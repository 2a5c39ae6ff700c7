// Builds a TSE attribute bank (docs/algorithm.md §2.6) from a descriptions JSON
// ({"class name": ["sentence", ...], ...}): encode every sentence with the CLIP text tower,
// L2-normalise, seeded k-means, class flags. Output: HDF5 `centroids` [E,A], `class_flags` [C,A].
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <torch/torch.h>

#include "excel/common/errors.h"
#include "excel/common/logging.h"
#include "excel/common/tool_flags.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/clip_text.h"
#include "excel/model/tokenizer.h"
#include "excel/model/tse.h"

DEFINE_string(bank_descriptions, "", "descriptions JSON (class name -> list of sentences)");
EXCEL_FLAG_RULE(bank_descriptions, "a JSON file (required)", !FLAGS_bank_descriptions.empty());
DEFINE_string(model_clip, "", "CLIP checkpoint whose text tower encodes the sentences");
EXCEL_FLAG_RULE(model_clip, "a CLIP checkpoint (required)", !FLAGS_model_clip.empty());
DEFINE_string(
    model_bpe, "",
    "BPE merge list the checkpoint was trained with (default: $EXCEL_BPE_PATH, else model::default_bpe_path)");
DEFINE_int32(bank_clusters, 112, "number of attributes A (112 VOC, 224 COCO in the paper)");
EXCEL_FLAG_RULE(bank_clusters, ">= 1 (at most the number of sentences)", FLAGS_bank_clusters >= 1);
DEFINE_int32(bank_seed, 0, "k-means seed");
EXCEL_FLAG_RULE(bank_seed, ">= 0", FLAGS_bank_seed >= 0);
DEFINE_string(model_bank, "", "output attribute bank .h5 (the --model_bank of the tools that read it)");
EXCEL_FLAG_RULE(model_bank, "an .h5 path (required)", !FLAGS_model_bank.empty());

int main(int argc, char** argv) {
  excel::parse_tool_flags(
      &argc, &argv,
      "Builds a TSE attribute bank (docs/algorithm.md §2.6) from a descriptions JSON ({\"class name\": [\"sentence\", "
      "...], ...}): encode every sentence with the CLIP text tower, L2-normalise, seeded k-means, class flags. Output: "
      "HDF5 `centroids` [E,A], `class_flags` [C,A].");
  excel::init_logging(argv[0]);
  try {
    std::vector<std::string> sentences;
    std::vector<int64_t> owner;
    int64_t c = 0;
    for (const auto& cls : excel::model::read_class_descriptions(FLAGS_bank_descriptions)) {
      for (const std::string& s : cls.sentences) {
        sentences.push_back(excel::model::clean_text(s));
        owner.push_back(c);
      }
      ++c;
    }
    auto weights = excel::model::load_clip_checkpoint(FLAGS_model_clip);
    const std::string bpe = FLAGS_model_bpe.empty() ? excel::model::default_bpe_path() : FLAGS_model_bpe;
    excel::model::Tokenizer tok(bpe);
    excel::model::check_vocabulary(tok, weights.config, bpe);
    excel::model::ClipText text(weights);
    at::Tensor ids = tok.tokenize(sentences, weights.config.context_length, /*truncate=*/true);
    std::vector<at::Tensor> parts;
    for (int64_t s = 0; s < ids.size(0); s += 64) parts.push_back(text.encode(ids.slice(0, s, s + 64)));
    at::Tensor emb = torch::cat(parts);
    emb = emb / emb.norm(2, {-1}, true);
    std::vector<int64_t> assign;
    at::Tensor centres =
        excel::model::kmeans(emb, FLAGS_bank_clusters, static_cast<uint64_t>(FLAGS_bank_seed), 300, &assign);
    at::Tensor flags = torch::zeros({c, FLAGS_bank_clusters});
    for (size_t i = 0; i < assign.size(); ++i) flags[owner[i]][assign[i]] = 1;
    excel::model::save_attribute_bank({centres.t().contiguous(), flags}, FLAGS_model_bank);
    LOG(INFO) << "wrote " << FLAGS_model_bank << ": " << sentences.size() << " sentences, " << c << " classes, "
              << FLAGS_bank_clusters << " attributes of size " << centres.size(1);
  } catch (const std::exception& e) {
    excel::log_error_and_flush(std::string("build_attribute_bank: error: ") + e.what());
    return 1;
  }
  return 0;
}
