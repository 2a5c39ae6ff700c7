// model/text_cleanup (src/model/text_cleanup.cpp, unicode_text.cpp): the clean-up after ftfy and
// the pre-tokeniser with Unicode classes. tokenizer_reference_test.cpp compares both with Python.
#include "excel/model/text_cleanup.h"
#include "test_util.h"

using namespace excel::model;

using Pieces = std::vector<std::string>;

TEST(TextCleanupTest, strips_collapses_unicode_spaces_and_lowercases_fully) {
  EXPECT_EQ(clean_text("\u3000 A\u00a0\u2003B\t\u2028C \u001c"), "a b c");
  EXPECT_EQ(clean_fixed_text("\u001cA\u001cB\u001c"), "a\u001cb");  // str.strip's space, not regex's \s
  EXPECT_EQ(clean_text("\u0130stanbul"), "i\u0307stanbul");
  EXPECT_EQ(clean_text("\u03a3\u0391\u03a3 \u03a3\u0391\u03a3."), "\u03c3\u03b1\u03c2 \u03c3\u03b1\u03c2.");
  EXPECT_EQ(clean_text("STRASSE \u1e9e"), "strasse \u00df");
  EXPECT_EQ(clean_text("&amp;lt;b&amp;gt;"), "<b>");
}

TEST(TextCleanupTest, pieces_use_unicode_letters_and_numbers) {
  EXPECT_EQ(pre_tokenize("caf\u00e9 \u732b\u72d7 \u0663\u0664"),
            (Pieces{"caf\u00e9", "\u732b\u72d7", "\u0663", "\u0664"}));
  EXPECT_EQ(pre_tokenize("\u2460x\u00bd"), (Pieces{"\u2460", "x", "\u00bd"}));
  EXPECT_EQ(pre_tokenize("\U0001F44D\U0001F3FD!"), (Pieces{"\U0001F44D\U0001F3FD!"}));
  EXPECT_EQ(pre_tokenize("e\u0301"), (Pieces{"e", "\u0301"}));  // a mark is no letter
}

TEST(TextCleanupTest, contractions_and_special_tokens_match_case_insensitively) {
  EXPECT_EQ(pre_tokenize("dog's it'\u017f"), (Pieces{"dog", "'s", "it", "'\u017f"}));
  EXPECT_EQ(pre_tokenize("<|\u017ftartoftext|>a"), (Pieces{"<|\u017ftartoftext|>", "a"}));
  EXPECT_EQ(pre_tokenize("!!'s"), (Pieces{"!!'", "s"}));
  EXPECT_EQ(pre_tokenize("a\u0345b !\u0345!"), (Pieces{"a", "b", "!", "!"}));  // U+0345 is skipped
}
