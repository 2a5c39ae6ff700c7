#include "excel/model/bpe_training.h"

#include <zlib.h>

#include <map>

#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"
#include "excel/model/prompts.h"
#include "excel/model/tokenizer.h"

namespace excel::model {
namespace {

// UTF-8 characters of a word of byte symbols, the last one with "</w>".
std::vector<std::string> symbols_of(const std::string& word) {
  std::vector<std::string> out;
  for (size_t i = 0; i < word.size();) {
    const unsigned char c = static_cast<unsigned char>(word[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    len = std::min(len, word.size() - i);
    out.push_back(word.substr(i, len));
    i += len;
  }
  if (!out.empty()) out.back() += "</w>";
  return out;
}

}  // namespace

std::vector<BpeMerge> learn_bpe_merges(const std::vector<std::string>& texts, int max_merges) {
  std::map<std::string, int64_t> counts;
  for (const std::string& t : texts)
    for (const std::string& w : bpe_words(t)) ++counts[w];
  std::vector<std::pair<std::vector<std::string>, int64_t>> words;
  for (const auto& [w, n] : counts) words.emplace_back(symbols_of(w), n);

  std::vector<BpeMerge> merges;
  while (static_cast<int>(merges.size()) < max_merges) {
    std::map<BpeMerge, int64_t> pairs;  // ordered: ties go to the smaller pair
    for (const auto& [sym, n] : words)
      for (size_t i = 0; i + 1 < sym.size(); ++i) pairs[{sym[i], sym[i + 1]}] += n;
    if (pairs.empty()) break;
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it)
      if (it->second > best->second) best = it;
    const BpeMerge m = best->first;
    merges.push_back(m);
    for (auto& [sym, n] : words) {
      std::vector<std::string> merged;
      for (size_t i = 0; i < sym.size();) {
        if (i + 1 < sym.size() && sym[i] == m.first && sym[i + 1] == m.second) {
          merged.push_back(m.first + m.second);
          i += 2;
        } else {
          merged.push_back(sym[i++]);
        }
      }
      sym.swap(merged);
    }
  }
  return merges;
}

std::vector<BpeMerge> learn_dataset_merges(const std::vector<std::string>& sentences, const std::string& dataset,
                                           int max_merges) {
  std::vector<std::string> corpus = sentences;
  for (const std::string& name : all_text_names(dataset_text(dataset))) corpus.push_back(make_prompt(name));
  return learn_bpe_merges(corpus, max_merges);
}

void write_bpe_merges(const std::string& path, const std::vector<BpeMerge>& merges) {
  std::string text = "#version: 0.2 (learned by excel::model::learn_bpe_merges)\n";
  for (const BpeMerge& m : merges) text += m.first + " " + m.second + "\n";
  atomic_replace(path, [&](const std::string& tmp) {
    gzFile gz = gzopen(tmp.c_str(), "wb9");
    if (!gz) throw InputError(tmp + ": cannot create");
    const int written = gzwrite(gz, text.data(), static_cast<unsigned>(text.size()));
    if (gzclose(gz) != Z_OK || written != static_cast<int>(text.size())) throw InputError(tmp + ": write failed");
  });
}

}  // namespace excel::model
