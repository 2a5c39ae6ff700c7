// CLIP's byte-level BPE tokenizer (docs/algorithm.md §2.1). Thread-safe after construction
// except for the per-word cache, which is guarded.
#pragma once
#include <ATen/core/Tensor.h>

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "excel/model/text_cleanup.h"  // clean_text, which encode() applies

namespace excel::model {

class Tokenizer {
 public:
  // merges_path: a gzip merge list in CLIP's format (a header line, then one "A B" merge per line):
  // CLIP's bpe_simple_vocab_16e6.txt.gz (its first 48,894 merges are read, §2.1) or a smaller list
  // (data_tools/build_bpe_vocab). The vocabulary is the 256 byte symbols, the same with "</w>",
  // one token per merge, then the start and end tokens: 49,408 tokens for CLIP's list.
  explicit Tokenizer(const std::string& merges_path);

  // Cleans and BPE-encodes one text (no start/end tokens).
  std::vector<int64_t> encode(const std::string& text) const;
  // [n, context] int64: start, tokens, end, zero padding. Longer texts throw InputError unless
  // truncate is set, in which case they are cut and the last token becomes the end token.
  at::Tensor tokenize(const std::vector<std::string>& texts, int64_t context = 77, bool truncate = false) const;
  // Inverse mapping for debugging (byte-decoded, "</w>" -> space).
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t vocab_size() const { return static_cast<int64_t>(decoder_.size()); }
  int64_t start_token() const { return vocab_size() - 2; }  // 49406 for CLIP's list
  int64_t end_token() const { return vocab_size() - 1; }    // the largest id: the text tower finds it by argmax

 private:
  std::vector<std::string> bpe(const std::string& token) const;

  std::vector<std::string> byte_to_unicode_;  // byte -> UTF-8 of its mapped code point
  std::unordered_map<std::string, int64_t> encoder_;
  std::vector<std::string> decoder_;
  std::unordered_map<std::string, int> ranks_;  // "A B" -> merge rank
  mutable std::unordered_map<std::string, std::vector<std::string>> cache_;
  mutable std::mutex cache_mu_;
};

// The words BPE runs on: the text cleaned and split as encode() splits it, each byte mapped to its
// symbol (§2.1). What a merge list is learned from (model/bpe_training.h).
std::vector<std::string> bpe_words(const std::string& text);

// Where CLIP's merge list is looked for when a tool is given none: <source>/data/ and ./data/
// (bpe_simple_vocab_16e6.txt.gz placed there by the user), then the Python packages of the CLIP
// ports that ship it (clip/, open_clip/ under site-packages or dist-packages of /usr/lib,
// /usr/local/lib, $VIRTUAL_ENV, $CONDA_PREFIX and ~/.local). The repository does not ship it.
std::vector<std::string> bpe_search_paths();
// $EXCEL_BPE_PATH, else the first of bpe_search_paths() that exists, else the bare file name
// (which the Tokenizer then reports as not found).
std::string default_bpe_path();

}  // namespace excel::model
