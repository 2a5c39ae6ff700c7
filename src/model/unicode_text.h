// Code-point helpers shared by the text clean-up files (src/model/*.cpp only; ICU stays in the
// .cpp files).
#pragma once
#include <string>
#include <string_view>

namespace excel::model::unicode {

// UTF-8 to code points; an ill-formed sequence becomes U+FFFD.
std::u32string from_utf8(std::string_view utf8);
std::string to_utf8(std::u32string_view text);

std::u32string nfc(const std::u32string& text);
std::u32string nfkc(const std::u32string& text);
// Full lower-casing with the root locale (İ -> i + U+0307, final sigma), as Python's str.lower.
std::u32string lower(const std::u32string& text);

// Python's html.unescape on code points, and ftfy's stricter unescape_html
// (src/model/html_unescape.cpp).
std::u32string html_unescape(std::u32string_view text);
std::u32string ftfy_unescape_html(std::u32string_view text);
// The windows-1252 character of a C1 control U+0080-U+009F (itself where windows-1252 has none).
char32_t windows1252_c1(char32_t c);

}  // namespace excel::model::unicode
