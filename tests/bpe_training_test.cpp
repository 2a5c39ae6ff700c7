// model/bpe_training: a merge list learned from a corpus, read back by the tokenizer.
#include <torch/torch.h>
#include <zlib.h>

#include "excel/common/errors.h"
#include "excel/model/bpe_training.h"
#include "excel/model/tokenizer.h"
#include "test_util.h"

using namespace excel;

namespace {
const std::vector<std::string> kCorpus = {"a clean origami aeroplane. it is shaped like a circle.",
                                          "a clean origami bicycle. its colour is orange.",
                                          "a clean origami bird. it is a dotted orange triangle."};
}

TEST(BpeTrainingTest, every_corpus_word_becomes_one_token_and_unseen_text_still_round_trips) {
  const auto merges = model::learn_bpe_merges(kCorpus, 10000);
  ASSERT_FALSE(merges.empty());
  const std::string path = test::temp_dir("bpe") + "/bpe.txt.gz";
  model::write_bpe_merges(path, merges);
  const model::Tokenizer tok(path);
  EXPECT_EQ(tok.vocab_size(), 512 + static_cast<int64_t>(merges.size()) + 2);
  EXPECT_EQ(tok.end_token(), tok.vocab_size() - 1);
  EXPECT_EQ(tok.start_token(), tok.vocab_size() - 2);
  // Learned to exhaustion: every word (and each punctuation run) of the corpus is a single token.
  EXPECT_EQ(tok.encode("a clean origami aeroplane").size(), 4u);
  EXPECT_EQ(tok.encode("dotted orange triangle.").size(), 4u);
  // A word the corpus never had falls back to smaller pieces, and decodes to itself.
  const std::vector<int64_t> ids = tok.encode("a zebra");
  EXPECT_GT(ids.size(), 2u);
  EXPECT_EQ(tok.decode(ids), "a zebra ");
  const at::Tensor t = tok.tokenize({"a bird."}, 8);
  EXPECT_EQ(t[0][0].item<int64_t>(), tok.start_token());
  EXPECT_EQ(t.argmax(-1)[0].item<int64_t>(),
            4);  // start, a, bird, ".", end: the end token is the largest id (the text tower's EOT)
}

TEST(BpeTrainingTest, the_most_frequent_pair_is_merged_first_and_the_limit_holds) {
  const auto merges = model::learn_bpe_merges({"aa aa aa ab"}, 2);
  ASSERT_EQ(merges.size(), 2u);
  EXPECT_EQ(merges[0], model::BpeMerge("a", "a</w>"));  // 3 occurrences against 1 for (a, b</w>)
  EXPECT_EQ(merges[1], model::BpeMerge("a", "b</w>"));
  EXPECT_TRUE(model::learn_bpe_merges({""}, 5).empty());
}

TEST(BpeTrainingTest, a_list_without_merges_is_refused_with_its_name) {
  const std::string path = test::temp_dir("bpe_empty") + "/empty.txt.gz";
  gzFile gz = gzopen(path.c_str(), "wb");
  gzputs(gz, "#version: 0.2\n");
  gzclose(gz);
  try {
    model::Tokenizer tok(path);
    FAIL() << "an empty merge list was accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}
