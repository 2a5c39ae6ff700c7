// Learning a byte-level BPE merge list from a corpus, written in CLIP's file format. For a world
// whose words CLIP's own list was not made for: the synthetic demo's text tower has its own
// small vocabulary (data_tools/build_bpe_vocab), so the repository needs no outside vocabulary file.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace excel::model {

using BpeMerge = std::pair<std::string, std::string>;

// Greedy BPE (Sennrich et al. 2016) over the words of `texts` as the tokenizer splits them
// (bpe_words): each word a sequence of byte symbols whose last one carries "</w>"; the most
// frequent adjacent pair is merged first (ties: the smaller pair text), until `max_merges` merges
// or no pair is left. Deterministic for its input.
std::vector<BpeMerge> learn_bpe_merges(const std::vector<std::string>& texts, int max_merges);

// learn_bpe_merges over a data set's text: the given sentences (descriptions) and the prompts of
// its class and background names (§2.3), the texts its text tower will be asked to encode.
std::vector<BpeMerge> learn_dataset_merges(const std::vector<std::string>& sentences, const std::string& dataset,
                                           int max_merges);

// Writes a header line and one "A B" line per merge, gzip-compressed, by atomic replace.
void write_bpe_merges(const std::string& path, const std::vector<BpeMerge>& merges);

}  // namespace excel::model
