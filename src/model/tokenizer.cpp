#include "excel/model/tokenizer.h"

#include <torch/torch.h>
#include <zlib.h>

#include <filesystem>
#include <limits>
#include <sstream>

#include "excel/build_config.h"
#include "excel/common/errors.h"
#include "excel/model/text_cleanup.h"
#include "unicode_text.h"

namespace excel::model {
namespace {

// CLIP reads the first 49152 - 256 - 2 merges of its list (§2.1); a smaller list (the synthetic
// world's, data_tools/build_bpe_vocab) is read whole.
constexpr int kMaxMerges = 49152 - 256 - 2;

// §2.1: printable Latin-1 bytes keep their code point; the other bytes take 256, 257, ... in byte
// order. Returns the bytes in vocabulary order (printable ones first).
std::vector<int> byte_vocabulary_order() {
  std::vector<int> order;
  for (int b = 33; b <= 126; ++b) order.push_back(b);
  for (int b = 161; b <= 172; ++b) order.push_back(b);
  for (int b = 174; b <= 255; ++b) order.push_back(b);
  std::vector<bool> printable(256, false);
  for (int b : order) printable[static_cast<size_t>(b)] = true;
  for (int b = 0; b < 256; ++b)
    if (!printable[static_cast<size_t>(b)]) order.push_back(b);
  return order;
}

// Byte -> the UTF-8 of its symbol.
std::vector<std::string> byte_symbol_table() {
  std::vector<std::string> table(256);
  char32_t extra = 256;
  for (int b : byte_vocabulary_order()) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[static_cast<size_t>(b)] = unicode::to_utf8(std::u32string(1, printable ? static_cast<char32_t>(b) : extra++));
  }
  return table;
}

}  // namespace

Tokenizer::Tokenizer(const std::string& merges_path) {
  if (!std::filesystem::is_regular_file(merges_path))
    throw InputError(merges_path +
                     ": BPE merge list not found (pass --model_bpe; see default_bpe_path in "
                     "include/excel/model/tokenizer.h for where it is looked for)");
  gzFile gz = gzopen(merges_path.c_str(), "rb");
  if (!gz) throw InputError(merges_path + ": cannot open");
  std::string content;
  char buf[1 << 16];
  int n;
  constexpr size_t kMaxBytes = size_t{64} << 20;  // CLIP's list is 1.4 MB: more is not a merge list
  while ((n = gzread(gz, buf, sizeof(buf))) > 0 && content.size() <= kMaxBytes)
    content.append(buf, static_cast<size_t>(n));
  if (content.size() > kMaxBytes) {
    gzclose(gz);
    throw FormatError(merges_path + ": more than 64 MiB of text (not a BPE merge list?)");
  }
  int err = 0;
  gzerror(gz, &err);
  gzclose(gz);
  if (n < 0 || err < 0) throw FormatError(merges_path + ": corrupt gzip stream");
  std::istringstream lines(content);
  std::string line;
  std::getline(lines, line);  // header
  std::vector<std::pair<std::string, std::string>> merges;
  while (static_cast<int>(merges.size()) < kMaxMerges && std::getline(lines, line)) {
    if (line.empty() && lines.peek() == std::char_traits<char>::eof()) break;  // final newline
    size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos)
      throw FormatError(merges_path + ": line " + std::to_string(merges.size() + 2) + ": malformed merge '" + line +
                        "'");
    merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  if (merges.empty()) throw FormatError(merges_path + ": no merges (not a BPE merge list?)");

  byte_to_unicode_ = byte_symbol_table();
  // The base vocabulary: the byte symbols in the order of §2.1, then each with "</w>".
  const std::vector<int> order = byte_vocabulary_order();
  for (int b : order) decoder_.push_back(byte_to_unicode_[static_cast<size_t>(b)]);
  for (int b : order) decoder_.push_back(byte_to_unicode_[static_cast<size_t>(b)] + "</w>");
  for (size_t i = 0; i < merges.size(); ++i) {
    decoder_.push_back(merges[i].first + merges[i].second);
    ranks_[merges[i].first + " " + merges[i].second] = static_cast<int>(i);
  }
  decoder_.push_back("<|startoftext|>");
  decoder_.push_back("<|endoftext|>");
  for (size_t i = 0; i < decoder_.size(); ++i) encoder_[decoder_[i]] = static_cast<int64_t>(i);
}

std::vector<std::string> Tokenizer::bpe(const std::string& token) const {
  {
    std::lock_guard<std::mutex> lk(cache_mu_);
    auto it = cache_.find(token);
    if (it != cache_.end()) return it->second;
  }
  // The reference's cache starts with the special tokens: they are never split.
  if (token == "<|startoftext|>" || token == "<|endoftext|>") return {token};
  std::vector<std::string> word;
  for (char32_t cp : unicode::from_utf8(token)) word.push_back(unicode::to_utf8(std::u32string(1, cp)));
  word.back() += "</w>";
  while (word.size() > 1) {
    int best = std::numeric_limits<int>::max();
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks_.find(word[i] + " " + word[i + 1]);
      if (it != ranks_.end() && it->second < best) {
        best = it->second;
        best_i = i;
      }
    }
    if (best == std::numeric_limits<int>::max()) break;
    const std::string first = word[best_i], second = word[best_i + 1];
    std::vector<std::string> merged;
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(word[i]);
        i += 1;
      }
    }
    word.swap(merged);
  }
  std::lock_guard<std::mutex> lk(cache_mu_);
  cache_.emplace(token, word);
  return word;
}

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const std::string& word : bpe_words(text))
    for (const std::string& sym : bpe(word)) ids.push_back(encoder_.at(sym));
  return ids;
}

std::vector<std::string> bpe_words(const std::string& text) {
  static const std::vector<std::string> symbols = byte_symbol_table();
  std::vector<std::string> words;
  for (const std::string& piece : pre_tokenize(clean_text(text))) {
    std::string mapped;
    for (unsigned char b : piece) mapped += symbols[b];
    words.push_back(mapped);
  }
  return words;
}

at::Tensor Tokenizer::tokenize(const std::vector<std::string>& texts, int64_t context, bool truncate) const {
  at::Tensor out = torch::zeros({static_cast<int64_t>(texts.size()), context}, torch::kLong);
  auto acc = out.accessor<int64_t, 2>();
  for (size_t r = 0; r < texts.size(); ++r) {
    std::vector<int64_t> ids = encode(texts[r]);
    ids.insert(ids.begin(), start_token());
    ids.push_back(end_token());
    if (static_cast<int64_t>(ids.size()) > context) {
      if (!truncate)
        throw InputError("text '" + texts[r].substr(0, 60) + "...' has " + std::to_string(ids.size()) +
                         " tokens, more than the context length " + std::to_string(context));
      ids.resize(static_cast<size_t>(context));
      ids.back() = end_token();
    }
    for (size_t k = 0; k < ids.size(); ++k) acc[static_cast<int64_t>(r)][static_cast<int64_t>(k)] = ids[k];
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string joined;
  for (int64_t id : ids) {
    if (id >= 0 && id < vocab_size()) joined += decoder_[static_cast<size_t>(id)];
  }
  std::unordered_map<std::string, unsigned char> back;
  for (int b = 0; b < 256; ++b) back[byte_to_unicode_[static_cast<size_t>(b)]] = static_cast<unsigned char>(b);
  std::string out;
  const std::u32string cps = unicode::from_utf8(joined);
  for (size_t i = 0; i < cps.size(); ++i) {
    const std::string ch = unicode::to_utf8(cps.substr(i, 1));
    if (cps.compare(i, 4, U"</w>") == 0) {
      out += ' ';
      i += 3;
      continue;
    }
    auto it = back.find(ch);
    if (it != back.end()) out += static_cast<char>(it->second);
  }
  return out;
}

std::vector<std::string> bpe_search_paths() {
  namespace fs = std::filesystem;
  const std::string name = "bpe_simple_vocab_16e6.txt.gz";
  std::vector<std::string> out;
  for (const fs::path& dir : {fs::path(EXCEL_SOURCE_DIR) / "data", fs::current_path() / "data"})
    out.push_back((dir / name).string());
  // The CLIP ports that ship the list inside their Python package (OpenAI's clip, open_clip).
  std::vector<fs::path> prefixes{"/usr/lib", "/usr/local/lib"};
  for (const char* env : {"VIRTUAL_ENV", "CONDA_PREFIX"})
    if (const char* v = std::getenv(env)) prefixes.push_back(fs::path(v) / "lib");
  if (const char* home = std::getenv("HOME")) prefixes.push_back(fs::path(home) / ".local" / "lib");
  std::error_code ec;
  for (const fs::path& prefix : prefixes) {
    if (!fs::is_directory(prefix, ec)) continue;
    for (const auto& py : fs::directory_iterator(prefix, ec)) {
      if (py.path().filename().string().rfind("python3", 0) != 0) continue;
      for (const char* packages : {"site-packages", "dist-packages"})
        for (const char* port : {"clip", "open_clip"}) out.push_back((py.path() / packages / port / name).string());
    }
  }
  return out;
}

std::string default_bpe_path() {
  if (const char* env = std::getenv("EXCEL_BPE_PATH")) return env;
  for (const std::string& p : bpe_search_paths())
    if (std::filesystem::is_regular_file(p)) return std::filesystem::weakly_canonical(p).string();
  return "bpe_simple_vocab_16e6.txt.gz";
}

}  // namespace excel::model
