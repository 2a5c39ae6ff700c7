// CLIP's byte-level BPE tokenizer (docs/algorithm.md §2.1). Thread-safe after construction
// except for the per-word cache, which is guarded.
#pragma once
#include <ATen/core/Tensor.h>

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace excel::model {

class Tokenizer {
 public:
  static constexpr int64_t kStartToken = 49406;
  static constexpr int64_t kEndToken = 49407;

  // merges_path: the gzip merge list (bpe_simple_vocab_16e6.txt.gz).
  explicit Tokenizer(const std::string& merges_path);

  // Cleans and BPE-encodes one text (no start/end tokens).
  std::vector<int64_t> encode(const std::string& text) const;
  // [n, context] int64: start, tokens, end, zero padding. Longer texts throw InputError unless
  // truncate is set, in which case they are cut and the last token becomes the end token.
  at::Tensor tokenize(const std::vector<std::string>& texts, int64_t context = 77, bool truncate = false) const;
  // Inverse mapping for debugging (byte-decoded, "</w>" -> space).
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t vocab_size() const { return static_cast<int64_t>(decoder_.size()); }

 private:
  std::vector<std::string> bpe(const std::string& token) const;

  std::vector<std::string> byte_to_unicode_;  // byte -> UTF-8 of its mapped code point
  std::unordered_map<std::string, int64_t> encoder_;
  std::vector<std::string> decoder_;
  std::unordered_map<std::string, int> ranks_;  // "A B" -> merge rank
  mutable std::unordered_map<std::string, std::vector<std::string>> cache_;
  mutable std::mutex cache_mu_;
};

// Text clean-up of the reference: HTML-unescape twice, collapse whitespace, strip, lower-case.
std::string clean_text(const std::string& text);

// The BPE merge list used when a tool is given none: $EXCEL_BPE_PATH, else the first of
// <source>/data/, ./data/ and the reference data folder beside the source tree or the working
// directory that holds bpe_simple_vocab_16e6.txt.gz (the bare file name when none does).
std::string default_bpe_path();

}  // namespace excel::model
