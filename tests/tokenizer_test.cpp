// model/tokenizer (src/model/tokenizer.cpp): CLIP BPE token ids equal the reference fixture's
// (prompts and extra strings, with truncation), text cleaning, decode, errors naming the file.
// The fixture cases skip without ../shared (fail under CI=true).
#include <torch/torch.h>

#include "excel/common/errors.h"
#include "excel/common/h5.h"
#include "excel/model/prompts.h"
#include "excel/model/tokenizer.h"
#include "test_util.h"

using namespace excel;

TEST(TokenizerTest, prompt_ids_match_reference_exactly) {
  EXCEL_REQUIRE_SHARED(bpe, "data/text/bpe_simple_vocab_16e6.txt.gz");
  EXCEL_REQUIRE_SHARED(fx, "fixtures/public/fixture.h5");
  model::Tokenizer tok(bpe);
  h5::File f = h5::File::open(fx);
  std::vector<std::string> prompts;
  for (const auto& n : model::all_text_names(model::dataset_text("voc"))) prompts.push_back(model::make_prompt(n));
  at::Tensor want = f.read("text/token_ids");
  EXPECT_TRUE(torch::equal(tok.tokenize(prompts, want.size(1)), want));
}

TEST(TokenizerTest, extra_strings_match_reference_exactly_with_truncation) {
  EXCEL_REQUIRE_SHARED(bpe, "data/text/bpe_simple_vocab_16e6.txt.gz");
  EXCEL_REQUIRE_SHARED(fx, "fixtures/public/fixture.h5");
  model::Tokenizer tok(bpe);
  h5::File f = h5::File::open(fx);
  auto strings = f.read_strings("text/extra_strings");
  at::Tensor want = f.read("text/extra_token_ids");
  at::Tensor got = tok.tokenize(strings, want.size(1), /*truncate=*/true);
  for (int64_t i = 0; i < want.size(0); ++i)
    EXPECT_TRUE(torch::equal(got[i], want[i])) << "string " << i << ": '" << strings[static_cast<size_t>(i)] << "'";
}

TEST(TokenizerTest, long_text_without_truncation_is_an_error) {
  EXCEL_REQUIRE_SHARED(bpe, "data/text/bpe_simple_vocab_16e6.txt.gz");
  model::Tokenizer tok(bpe);
  EXPECT_THROW(tok.tokenize({std::string(400, 'x')}, 77, false), InputError);
}

TEST(TokenizerTest, cleaning_unescapes_collapses_and_lowercases) {
  EXPECT_EQ(model::clean_text("  Hello,\t\n  WORLD  "), "hello, world");
  EXPECT_EQ(model::clean_text("&amp;lt;b&amp;gt;"), "<b>");  // unescaped twice
  EXPECT_EQ(model::clean_text("CAF\xC3\x89"), "caf\xC3\xA9");
}

TEST(TokenizerTest, decode_inverts_encode) {
  EXCEL_REQUIRE_SHARED(bpe, "data/text/bpe_simple_vocab_16e6.txt.gz");
  model::Tokenizer tok(bpe);
  EXPECT_EQ(tok.vocab_size(), 49408);
  EXPECT_EQ(tok.decode(tok.encode("a clean origami dog's toy, 42 times!")),
            "a clean origami dog 's toy , 4 2 times ! ");
}

TEST(TokenizerTest, missing_merge_file_names_the_path) {
  try {
    model::Tokenizer tok("/nonexistent/bpe.txt.gz");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/bpe.txt.gz"), std::string::npos);
  }
}
