// The reference tokenizer's text clean-up and pre-tokenisation (docs/algorithm.md §2.1), with real
// Unicode classes, case mapping and normalisation (ICU). Inputs are UTF-8; ill-formed bytes read
// as U+FFFD.
#pragma once
#include <string>
#include <vector>

namespace excel::model {

// Python's html.unescape: the HTML5 named references (the legacy ones also without ';', longest
// prefix first), decimal and hex references with the HTML5 rules for invalid numbers.
std::string html_unescape(const std::string& text);

// ftfy.fix_text with its default settings, less the mojibake repair (fix_encoding): HTML
// unescaping of ';'-terminated references, C1 controls read as windows-1252, Latin ligatures,
// full/half-width forms, curly quotes, line breaks, terminal escapes, control characters, NFC;
// repeated per line until nothing changes. docs/algorithm.md §2.1 lists what is left out.
std::string ftfy_fix_text(const std::string& text);

// The clean-up after ftfy: html_unescape twice, strip (str.strip's spaces), whitespace runs to one
// space, strip, then full lower-casing as Python's str.lower does.
std::string clean_fixed_text(const std::string& fixed);
// The whole clean-up: clean_fixed_text(ftfy_fix_text(text)).
std::string clean_text(const std::string& text);

// CLIP's pre-tokeniser on cleaned text: the special tokens and the suffixes 's 't 're 've 'm 'll
// 'd (matched case-insensitively), runs of letters (\p{L}), single numbers (\p{N}), runs of other
// non-space characters. Whitespace separates.
std::vector<std::string> pre_tokenize(const std::string& cleaned);

}  // namespace excel::model
