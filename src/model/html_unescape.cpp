// Python's html.unescape, written from the rules of Python 3.11's html module; the tables are
// generated from that module (src/model/html_entities.inc, scripts/gen_html_entities.py).
#include <algorithm>
#include <cstring>

#include "excel/model/text_cleanup.h"
#include "unicode_text.h"

namespace excel::model {
namespace {

struct NamedReference {
  const char* name;
  const char* utf8;
};
struct RemappedNumber {
  uint32_t number, code_point;
};

#include "html_entities.inc"

template <size_t N>
const char* find_name(const NamedReference (&table)[N], const std::string& name) {
  auto it = std::lower_bound(
      std::begin(table), std::end(table), name,
      [](const NamedReference& e, const std::string& n) { return std::strcmp(e.name, n.c_str()) < 0; });
  return it != std::end(table) && name == it->name ? it->utf8 : nullptr;
}

bool is_digit(char32_t c, bool hex) {
  return (c >= '0' && c <= '9') || (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')));
}

// Numbers that decode to nothing: C0 controls but tab, LF, FF, CR; DEL and the C1 range;
// the noncharacters U+FDD0-U+FDEF and U+xFFFE/U+xFFFF of every plane.
bool dropped_number(uint64_t n) {
  return (n >= 0x1 && n <= 0x8) || n == 0xB || (n >= 0xE && n <= 0x1F) || (n >= 0x7F && n <= 0x9F) ||
         (n >= 0xFDD0 && n <= 0xFDEF) || (n & 0xFFFE) == 0xFFFE;
}

std::u32string decode_number(uint64_t n) {
  for (const RemappedNumber& r : kRemappedNumbers)
    if (r.number == n) return std::u32string(1, static_cast<char32_t>(r.code_point));
  if ((n >= 0xD800 && n <= 0xDFFF) || n > 0x10FFFF) return U"\uFFFD";
  if (dropped_number(n)) return U"";
  return std::u32string(1, static_cast<char32_t>(n));
}

// One reference starting at text[i] == '&'; returns its replacement and sets `end` past it, or
// returns false when nothing there is a reference.
bool replace_reference(std::u32string_view text, size_t i, std::u32string& out, size_t& end) {
  size_t j = i + 1;
  if (j < text.size() && text[j] == '#') {
    const bool hex = j + 1 < text.size() && (text[j + 1] == 'x' || text[j + 1] == 'X');
    size_t k = j + (hex ? 2 : 1), first = k;
    uint64_t n = 0;
    for (; k < text.size() && is_digit(text[k], hex); ++k) {
      const uint32_t d = text[k] <= '9' ? text[k] - '0' : (text[k] | 0x20) - 'a' + 10;
      n = std::min<uint64_t>(n * (hex ? 16 : 10) + d, 0x7FFFFFFF);  // past U+10FFFF it reads U+FFFD anyway
    }
    if (k == first) return false;
    if (k < text.size() && text[k] == ';') ++k;
    out += decode_number(n);
    end = k;
    return true;
  }
  // A name: up to 32 characters other than tab, LF, FF, space, '<', '&', '#', ';', then maybe ';'.
  size_t k = j;
  while (k < text.size() && k - j < 32 &&
         std::u32string_view(U"\t\n\f <&#;").find(text[k]) == std::u32string_view::npos)
    ++k;
  if (k == j) return false;
  if (k < text.size() && text[k] == ';') ++k;
  const std::u32string_view s = text.substr(j, k - j);
  auto ascii = [](std::u32string_view v, std::string& a) {
    a.clear();
    for (char32_t c : v) {
      if (c >= 0x80) return false;
      a += static_cast<char>(c);
    }
    return true;
  };
  std::string name;
  if (ascii(s, name))
    if (const char* v = find_name(kHtml5Names, name)) {
      out += unicode::from_utf8(v);
      end = k;
      return true;
    }
  // The longest prefix of at least two characters that is a name (only the legacy ones, which
  // need no ';', can be).
  for (size_t x = s.size() - 1; x >= 2; --x) {
    if (!ascii(s.substr(0, x), name)) continue;
    if (const char* v = find_name(kHtml5Names, name)) {
      out += unicode::from_utf8(v);
      out += s.substr(x);
      end = k;
      return true;
    }
  }
  out += U'&';
  out += s;
  end = k;
  return true;
}

}  // namespace

namespace unicode {

char32_t windows1252_c1(char32_t c) {
  for (const RemappedNumber& r : kRemappedNumbers)
    if (r.number == c && c >= 0x80) return static_cast<char32_t>(r.code_point);
  return c;
}

std::u32string html_unescape(std::u32string_view text) {
  std::u32string out;
  for (size_t i = 0; i < text.size();) {
    size_t end = i;
    if (text[i] == '&' && replace_reference(text, i, out, end)) {
      i = end;
    } else {
      out += text[i++];
    }
  }
  return out;
}

// ftfy's unescape_html: "&name;" or "&#...;" of at most 24 ASCII letters and digits, decoded
// only when the whole reference, ';' included, is one (also the all-caps names ftfy adds).
std::u32string ftfy_unescape_html(std::u32string_view text) {
  auto alnum = [](char32_t c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); };
  std::u32string out;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '&') {
      size_t j = i + 1 + (i + 1 < text.size() && text[i + 1] == '#' ? 1 : 0);
      size_t k = j;
      while (k < text.size() && alnum(text[k])) ++k;
      if (k > j && k - j <= 24 && k < text.size() && text[k] == ';') {
        const std::u32string_view ref = text.substr(i, k + 1 - i);
        std::string name(ref.begin() + 1, ref.end());  // ASCII by construction
        const char* v = find_name(kHtml5Names, name);
        if (!v) v = find_name(kFtfyUppercaseNames, name);
        if (v) {
          out += from_utf8(v);
          i = k + 1;
          continue;
        }
        if (text[i + 1] == '#') {
          std::u32string decoded = html_unescape(ref);
          out += decoded.find(U';') == std::u32string::npos ? decoded : std::u32string(ref);
          i = k + 1;
          continue;
        }
      }
    }
    out += text[i++];
  }
  return out;
}

}  // namespace unicode

std::string html_unescape(const std::string& text) {
  if (text.find('&') == std::string::npos) return text;
  return unicode::to_utf8(unicode::html_unescape(unicode::from_utf8(text)));
}

}  // namespace excel::model
