// The character-level steps of ftfy.fix_text (default settings), written from ftfy's documented
// behaviour; the mojibake repair is not reproduced (docs/algorithm.md §2.1).
#include <unicode/uchar.h>

#include <string_view>

#include "excel/model/text_cleanup.h"
#include "unicode_text.h"

namespace excel::model {
namespace {

// Ligatures and digraphs of Latin letters that ftfy takes apart (not æ, œ and the like).
std::u32string_view latin_ligature(char32_t c) {
  switch (c) {
    case 0x0132:
      return U"IJ";
    case 0x0133:
      return U"ij";
    case 0x0149:
      return U"\u02BCn";
    case 0x01F1:
      return U"DZ";
    case 0x01F2:
      return U"Dz";
    case 0x01F3:
      return U"dz";
    case 0x01C4:
      return U"D\u017D";
    case 0x01C5:
      return U"D\u017E";
    case 0x01C6:
      return U"d\u017E";
    case 0x01C7:
      return U"LJ";
    case 0x01C8:
      return U"Lj";
    case 0x01C9:
      return U"lj";
    case 0x01CA:
      return U"NJ";
    case 0x01CB:
      return U"Nj";
    case 0x01CC:
      return U"nj";
    case 0xFB00:
      return U"ff";
    case 0xFB01:
      return U"fi";
    case 0xFB02:
      return U"fl";
    case 0xFB03:
      return U"ffi";
    case 0xFB04:
      return U"ffl";
    case 0xFB05:
      return U"\u017Ft";
    case 0xFB06:
      return U"st";
    default:
      return {};
  }
}

// Controls ftfy removes: C0 but tab, LF, FF, CR; DEL; the deprecated Arabic format controls;
// the interlinear annotation marks and U+FFFC; the byte-order mark.
bool removed_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

// One pass of the fixes over one line, in ftfy's order.
std::u32string fix_once(const std::u32string& line, bool unescape) {
  std::u32string s = unescape ? unicode::ftfy_unescape_html(line) : line;
  std::u32string t;
  for (char32_t c : s) {
    if (c >= 0x80 && c <= 0x9F) c = unicode::windows1252_c1(c);  // fix_c1_controls
    if (std::u32string_view lig = latin_ligature(c); !lig.empty()) {
      t += lig;
    } else if (c == 0x3000) {  // fix_character_width: the ideographic space too
      t += U' ';
    } else if (c >= 0xFF01 && c <= 0xFFEF) {
      t += unicode::nfkc(std::u32string(1, c));
    } else {
      t += c;
    }
  }
  s.clear();
  for (size_t i = 0; i < t.size(); ++i) {
    char32_t c = t[i];
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = U'\'';  // uncurl_quotes
    if (c >= 0x201C && c <= 0x201F) c = U'"';
    if (c == U'\r' && i + 1 < t.size() && t[i + 1] == U'\n') continue;  // fix_line_breaks
    if (c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x85) c = U'\n';
    s += c;
  }
  t.clear();
  for (size_t i = 0; i < s.size(); ++i) {  // remove_terminal_escapes: ESC [ (digits|';')* letter
    if (s[i] == 0x1B && i + 1 < s.size() && s[i + 1] == U'[') {
      size_t k = i + 2;  // \d of a str pattern: any decimal digit (Nd)
      while (k < s.size() && (s[k] == U';' || u_charType(static_cast<UChar32>(s[k])) == U_DECIMAL_DIGIT_NUMBER)) ++k;
      if (k < s.size() && ((s[k] | 0x20) >= U'a' && (s[k] | 0x20) <= U'z')) {
        i = k;
        continue;
      }
    }
    if (!removed_control(s[i])) t += s[i];  // remove_control_chars
  }
  return unicode::nfc(t);
}

}  // namespace

std::string ftfy_fix_text(const std::string& text) {
  const std::u32string all = unicode::from_utf8(text);
  std::u32string out;
  bool unescape = true;  // "auto": off from the first line holding a '<' on
  for (size_t pos = 0; pos < all.size();) {
    size_t brk = all.find(U'\n', pos);
    brk = brk == std::u32string::npos ? all.size() : brk + 1;
    std::u32string line = all.substr(pos, brk - pos);
    if (line.find(U'<') != std::u32string::npos) unescape = false;
    for (std::u32string fixed = fix_once(line, unescape); fixed != line; fixed = fix_once(line, unescape)) line = fixed;
    out += line;
    pos = brk;
  }
  return unicode::to_utf8(out);
}

}  // namespace excel::model
