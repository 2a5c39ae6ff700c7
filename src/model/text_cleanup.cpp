// clean_text and pre_tokenize (docs/algorithm.md §2.1) with the character classes of Python's
// `regex` module for str patterns, taken from ICU.
#include "excel/model/text_cleanup.h"

#include <unicode/uchar.h>

#include <array>

#include "unicode_text.h"

namespace excel::model {
namespace {

// \s of `regex`: the White_Space property.
bool regex_space(char32_t c) {
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE);
}
// str.isspace (what str.strip removes): White_Space and the separators U+001C-U+001F.
bool python_space(char32_t c) {
  return regex_space(c) || (c >= 0x1C && c <= 0x1F);
}

enum class CharClass { kSpace, kLetter, kNumber, kOther, kNone };

CharClass general_class(char32_t c) {
  if (regex_space(c)) return CharClass::kSpace;
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return CharClass::kLetter;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return CharClass::kNumber;
    default:
      return CharClass::kOther;
  }
}

// The class the reference's case-insensitive pattern sees. A non-letter whose case fold is a
// letter (U+0345 folds to iota) is outside [^\s\p{L}\p{N}] under IGNORECASE and in no other
// alternative either: the pattern skips it like a space, but it does not separate.
CharClass char_class(char32_t c) {
  const CharClass own = general_class(c);
  if (own != CharClass::kOther) return own;
  const auto folded = static_cast<char32_t>(u_foldCase(static_cast<UChar32>(c), U_FOLD_CASE_DEFAULT));
  if (folded != c && general_class(folded) != CharClass::kOther) return CharClass::kNone;
  return CharClass::kOther;
}

char32_t fold(char32_t c) {
  return static_cast<char32_t>(u_foldCase(static_cast<UChar32>(c), U_FOLD_CASE_DEFAULT));
}

std::u32string strip_python_space(const std::u32string& s) {
  size_t b = 0, e = s.size();
  while (b < e && python_space(s[b])) ++b;
  while (e > b && python_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

}  // namespace

std::string clean_text(const std::string& text) {
  return clean_fixed_text(ftfy_fix_text(text));
}

std::string clean_fixed_text(const std::string& fixed) {
  std::u32string s = unicode::from_utf8(fixed);
  s = strip_python_space(unicode::html_unescape(unicode::html_unescape(s)));
  std::u32string collapsed;
  for (size_t i = 0; i < s.size();) {
    if (!regex_space(s[i])) {
      collapsed += s[i++];
      continue;
    }
    while (i < s.size() && regex_space(s[i])) ++i;
    collapsed += U' ';
  }
  return unicode::to_utf8(unicode::lower(strip_python_space(collapsed)));
}

std::vector<std::string> pre_tokenize(const std::string& cleaned) {
  static const std::array<std::u32string_view, 9> literals = {
      U"<|startoftext|>", U"<|endoftext|>", U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"};
  const std::u32string s = unicode::from_utf8(cleaned);
  std::vector<std::string> pieces;
  auto literal_at = [&](size_t i, std::u32string_view lit) {
    if (i + lit.size() > s.size()) return false;
    for (size_t k = 0; k < lit.size(); ++k)
      if (fold(s[i + k]) != lit[k]) return false;
    return true;
  };
  for (size_t i = 0; i < s.size();) {
    size_t j = i;
    for (std::u32string_view lit : literals)
      if (literal_at(i, lit)) {
        j = i + lit.size();
        break;
      }
    if (j == i) {
      const CharClass c = char_class(s[i]);
      j = i + 1;
      if (c == CharClass::kSpace || c == CharClass::kNone) {
        i = j;
        continue;
      }
      if (c != CharClass::kNumber)
        while (j < s.size() && char_class(s[j]) == c) ++j;
    }
    pieces.push_back(unicode::to_utf8(std::u32string_view(s).substr(i, j - i)));
    i = j;
  }
  return pieces;
}

}  // namespace excel::model
