// Cross-cutting: the tokenizer's clean-up, pre-tokens and ids (model/text_cleanup, html_unescape,
// ftfy_fixes, tokenizer) against the reference pipeline in Python (tests/clip_tokenizer_reference.py:
// html, the `regex` module, ftfy when installed) on non-ASCII texts, HTML references, random texts
// and every class name, prompt and description the repository uses. Needs python3 with `regex`
// (Debian python3-regex): skipped without it, failed under CI=true. ftfy itself is compared only
// where it is installed (Debian bookworm does not package it).
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>

#include "../src/model/unicode_text.h"
#include "excel/build_config.h"
#include "excel/data/synthetic_voc.h"
#include "excel/model/bpe_training.h"
#include "excel/model/prompts.h"
#include "excel/model/text_cleanup.h"
#include "excel/model/tokenizer.h"
#include "test_util.h"

using namespace excel;

namespace {

const std::string kScript = std::string(EXCEL_SOURCE_DIR) + "/tests/clip_tokenizer_reference.py";

// A python3 that has `regex`, preferring one that also has ftfy; "" when none.
std::string reference_python() {
  std::string found;
  for (const std::string py : {"python3", "/usr/bin/python3"}) {
    if (std::system((py + " -c 'import regex' >/dev/null 2>&1").c_str()) != 0) continue;
    if (std::system((py + " -c 'import ftfy' >/dev/null 2>&1").c_str()) == 0) return py;
    if (found.empty()) found = py;
  }
  return found;
}

#define REQUIRE_REFERENCE_PYTHON(py)                                                              \
  const std::string py = reference_python();                                                      \
  if (py.empty()) {                                                                               \
    if (test::ci_mode()) FAIL() << "CI=true but no python3 has the module regex (python3-regex)"; \
    GTEST_SKIP() << "SKIP: no python3 has the module regex (Debian python3-regex); skipping";     \
  }

std::vector<std::string> hand_written_texts() {
  return {
      // accents, composed and not
      "caf\u00e9",
      "na\u00efve",
      "\u00c5ngstr\u00f6m",
      "e\u0301cole",
      "Cafe\u0301 au lait",
      "\u1e9b\u0323",
      // CJK, Hangul, kana (half-width too)
      "\u6c7d\u8f66",
      "\u732b",
      "a \u732b and a \u72d7",
      "\ud55c\uad6d\uc5b4 \uace0\uc591\uc774",
      "\u3072\u3089\u304c\u306a \u30ab\u30bf\u30ab\u30ca",
      "\uff8a\uff9d\uff76\uff78",
      "2024\u5e74",
      // other scripts with combining marks; Hangul jamo that NFC composes; Cyrillic capitals
      "\u0928\u092e\u0938\u094d\u0924\u0947",
      "\u0e41\u0e21\u0e27",
      "\u0642\u0637\u0629",
      "\u05e9\u05b8\u05dc\u05d5\u05b9\u05dd",
      "\u1112\u1161\u11ab \u1100\u1169",
      "\u041a\u041e\u0428\u041a\u0410",
      // numbers of other scripts
      "\u0663 cats",
      "\u096a\u0968",
      "\u4e94 dogs",
      "\u2460\u2461",
      "\u216b",
      "x\u00b2",
      "\u00bd cup",
      "3.14",
      // emoji: plain, ZWJ family, flag, skin tone, variation selector
      "\U0001F600",
      "cat \U0001F431!",
      "\U0001F468\u200d\U0001F469\u200d\U0001F467",
      "\U0001F1EB\U0001F1F7 flag",
      "\U0001F44D\U0001F3FD thumbs",
      "\u2764\ufe0f",
      "\U0001F3F4\U000E0067\U000E0062\U000E0077\U000E006C\U000E0073\U000E007F",
      // HTML references
      "&amp;amp;",
      "&eacute;cole",
      "&#233;",
      "&#x1F600;",
      "&notin",
      "&notit;",
      "&NotEqualTilde;",
      "&#128;",
      "&#0;",
      "&#xD800;",
      "&#1;x",
      "&#x110000;",
      "&#99999999999999999999;",
      "&amp",
      "&ampx",
      "&EACUTE;",
      "&SZLIG;",
      "P&EACUTE;REZ",
      "&lt;b&gt;",
      "<b>&eacute;</b>",
      "a <b>\n&eacute;",
      "&#12abc;",
      "&#65",
      "&#x41;BC",
      "&unknown;",
      "&#xFFFE;",
      "&#x1FFFF;",
      "&#13;",
      "&#150;",
      "&#x9d;",
      "&#xfdd0;",
      "&#11;",
      "&#9;",
      "&AMP;lt;",
      "&&amp;;",
      "&#;",
      "&#x;",
      "&nbsp&nbsp;x",
      "&copy2024",
      "&frac12;",
      "&FRAC12;",
      "&NTILDE;",
      "&nTILDE;",
      "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;",
      "&\u00e9t\u00e9;",
      "&amp;#233;",
      // full width, ligatures, quotes
      "\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33",
      "\uff43\uff41\uff54\uff11\uff12\uff13",
      "\ufb01sh \ufb02y",
      "\ufb00 \ufb03 \ufb04 \ufb05 \ufb06",
      "\u0132ssel",
      "\u01c5ungla",
      "\u0149",
      "\u201cdog\u2019s toy\u201d",
      "it\u2018s",
      "\u201alow\u201b",
      "don\u02bct",
      // case mapping
      "\u0130stanbul",
      "STRASSE \u00df \u1e9e",
      "\u03a3\u0391\u03a3 \u03a3\u0391\u03a3.",
      "\u038c\u03a3\u039f\u03a3",
      "\u01c4",
      "DOG'S TOY",
      "Kelvin \u212a",
      "it'\u017f",
      "\u212b",
      "\u0049\u0307",
      "\u1f88",
      // whitespace and separators
      "a\u00a0b",
      "a\u3000b",
      "a\tb\n",
      "a\u2028b",
      "a\u2029b",
      "  lead and trail  ",
      "a\u200bb",
      "a\u0085b",
      "a\u001cb",
      "\u001c a \u001f",
      "a\u1680b\u202fc\u205fd",
      "\u2003em\u2002en",
      // controls and terminal escapes
      "a\u0007b",
      "a\u007fb",
      "\ufeffbom",
      "a\u206ab",
      "\u001b[31mred\u001b[0m",
      "\u001b[\u0663;\u0664mx\u001b[",
      "\u001b[1;\u00e9",
      "a\rb",
      "a\r\nb",
      "\u0080",
      "a\u0092s",
      "a\u0081b",
      "\ufffc",
      "a\ufff9b\ufffbc",
      // the combining iota no alternative of the pattern takes
      "\u0345",
      "\u03b1\u0345",
      "a\u0345b",
      "!\u0345!",
      // special tokens, contractions
      "<|startoftext|>a cat<|endoftext|>",
      "<|STARTOFTEXT|>",
      "<|\u017ftartoftext|>",
      "dog's",
      "DOG'LL",
      "x'd",
      "'ll've",
      "!!!'s",
      "it's'",
      "rock'n'roll",
      "",
  };
}

// Random texts from pieces that stress the references, classes and spacing (seeded). No C1
// controls (the hand-written texts have them): after a Latin-1 letter they read as UTF-8
// mojibake, which ftfy repairs and we do not (docs/algorithm.md §2.1).
std::vector<std::string> random_texts() {
  const std::vector<std::string> parts = {
      "&",      "#",       ";",      "x",      "amp",    "lt",     "eacute", "AMP",    "1",      "23",     "9f",
      "a",      "Z",       " ",      "\t",     "\n",     "\u00a0", "\u3000", "'",      "s",      "ll",     "\u2019",
      "\u00e9", "e\u0301", "\u0345", "\u732b", "\u0663", "\u2460", "\u03a3", "\u0130", "\ufb01", "\uff21", "\U0001F600",
      "\u200d", "<",       ">",      "|",      "!",      "\u2014", "\u001b", "\u00df", "-",      "\u01c5", "\u0300"};
  std::mt19937 gen(2025);
  std::uniform_int_distribution<size_t> pick(0, parts.size() - 1);
  std::uniform_int_distribution<int> len(1, 14);
  std::vector<std::string> out;
  for (int i = 0; i < 400; ++i) {
    std::string t;
    for (int k = len(gen); k > 0; --k) t += parts[pick(gen)];
    out.push_back(t);
  }
  return out;
}

// Every text the repository itself tokenizes: class and background names, their prompts, the
// synthetic world's descriptions (of the VOC classes).
std::vector<std::string> repository_texts() {
  std::vector<std::string> out;
  for (const char* dataset : {"voc", "coco"}) {
    const model::DatasetText& d = model::dataset_text(dataset);
    for (const std::string& n : model::all_text_names(d)) {
      out.push_back(n);
      out.push_back(model::make_prompt(n));
    }
  }
  for (const auto& sentences : data::synthetic_class_descriptions(model::dataset_text("voc").class_names))
    out.insert(out.end(), sentences.begin(), sentences.end());
  return out;
}

nlohmann::json run_reference(const std::string& py, const std::vector<std::string>& texts, const std::string& merges) {
  const std::string dir = test::temp_dir("tokenizer_reference");
  nlohmann::json in = nlohmann::json::array();
  for (const std::string& t : texts) in.push_back({{"text", t}, {"fixed", model::ftfy_fix_text(t)}});
  std::ofstream(dir + "/in.json") << in.dump();
  const std::string cmd = py + " " + kScript + " texts " + dir + "/in.json " + dir + "/out.json " + merges;
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream out(dir + "/out.json");
  return out ? nlohmann::json::parse(out) : nlohmann::json();
}

std::string show(const std::string& s) {
  return nlohmann::json(s).dump();
}

// The comparisons of one merge list; counts what was compared.
void compare(const std::string& py, const std::vector<std::string>& texts, const std::string& merges) {
  const model::Tokenizer tok(merges);
  const nlohmann::json ref = run_reference(py, texts, merges);
  ASSERT_TRUE(ref.contains("results")) << "no output from " << kScript;
  ASSERT_EQ(ref["results"].size(), texts.size());
  const bool with_ftfy = ref["ftfy"].get<bool>();
  size_t pieces = 0, ids = 0, ftfy_equal = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const nlohmann::json& r = ref["results"][i];
    const std::string& t = texts[i];
    EXPECT_EQ(model::html_unescape(t), r["unescaped"].get<std::string>()) << "html.unescape of " << show(t);
    const std::string clean = model::clean_text(t);
    EXPECT_EQ(clean, r["clean_fixed"].get<std::string>()) << "clean-up of " << show(t);
    const std::vector<std::string> got_pieces = model::pre_tokenize(clean);
    EXPECT_EQ(got_pieces, r["pieces_fixed"].get<std::vector<std::string>>()) << "pieces of " << show(t);
    EXPECT_EQ(tok.encode(t), r["ids_fixed"].get<std::vector<int64_t>>()) << "ids of " << show(t);
    pieces += got_pieces.size();
    ids += r["ids_fixed"].size();
    if (with_ftfy) {
      const bool same = model::ftfy_fix_text(t) == r["fixed"].get<std::string>();
      ftfy_equal += same;
      EXPECT_TRUE(same) << "ftfy.fix_text of " << show(t) << ": " << show(r["fixed"].get<std::string>());
      EXPECT_EQ(tok.encode(t), r["ids"].get<std::vector<int64_t>>()) << "ids with ftfy of " << show(t);
    }
  }
  std::cout << "[reference] " << merges << ": " << texts.size() << " texts, " << pieces << " pieces, " << ids
            << " ids equal; ftfy.fix_text "
            << (with_ftfy ? "equal on " + std::to_string(ftfy_equal) + " texts"
                          : std::string("not installed: our ftfy step fed to the reference pipeline"))
            << std::endl;
}

}  // namespace

TEST(TokenizerReferenceTest, cleanup_pieces_and_ids_match_python) {
  REQUIRE_REFERENCE_PYTHON(py);
  std::vector<std::string> texts = hand_written_texts();
  for (auto* more : {random_texts, repository_texts}) {
    std::vector<std::string> m = more();
    texts.insert(texts.end(), m.begin(), m.end());
  }
  // A merge list learned from these texts (non-ASCII merges included), and CLIP's own where
  // ../shared has it.
  const std::string dir = test::temp_dir("tokenizer_reference");
  const std::string learned = dir + "/learned_bpe.txt.gz";
  model::write_bpe_merges(learned, model::learn_bpe_merges(texts, 300));
  compare(py, texts, learned);
  const std::string clip = test::shared_path("data/text/bpe_simple_vocab_16e6.txt.gz");
  if (!clip.empty()) compare(py, texts, clip);
  std::filesystem::remove_all(dir);
}

// Every assigned code point alone: whether the pattern puts it in a run of letters, takes it as
// a number, in a run of other characters, or skips it, as the `regex` module does.
TEST(TokenizerReferenceTest, every_code_point_is_classed_as_the_regex_module_does) {
  REQUIRE_REFERENCE_PYTHON(py);
  const std::string out = test::temp_dir("tokenizer_reference") + "/classes.txt";
  ASSERT_EQ(std::system((py + " " + kScript + " classes " + out).c_str()), 0);
  std::ifstream in(out);
  const std::string want((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(want.size(), 0x110000u);
  size_t compared = 0, differ = 0;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (want[cp] == '?') continue;
    ++compared;
    const std::string c = model::unicode::to_utf8(std::u32string(1, cp));
    const std::vector<std::string> twice = model::pre_tokenize(c + c);
    char got = twice.empty() ? '-' : twice.size() == 2 ? 'N' : model::pre_tokenize("a" + c).size() == 1 ? 'L' : 'O';
    if (got != want[cp] && ++differ <= 20)
      ADD_FAILURE() << "U+" << std::hex << static_cast<uint32_t>(cp) << ": " << got
                    << ", the regex module: " << want[cp];
  }
  std::cout << "[reference] " << compared << " assigned code points classed, " << differ << " differ" << std::endl;
  EXPECT_EQ(differ, 0u);
  std::filesystem::remove_all(std::filesystem::path(out).parent_path());
}
