#include "unicode_text.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <stdexcept>

namespace excel::model::unicode {
namespace {

icu::UnicodeString to_icu(const std::u32string& text) {
  return icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(text.data()),
                                       static_cast<int32_t>(text.size()));
}

std::u32string from_icu(const icu::UnicodeString& text) {
  std::u32string out;
  for (int32_t i = 0; i < text.length(); i = text.moveIndex32(i, 1)) out += static_cast<char32_t>(text.char32At(i));
  return out;
}

std::u32string normalize(const std::u32string& text, bool compatibility) {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* norm =
      compatibility ? icu::Normalizer2::getNFKCInstance(err) : icu::Normalizer2::getNFCInstance(err);
  if (U_FAILURE(err)) throw std::runtime_error(std::string("ICU normalizer: ") + u_errorName(err));
  icu::UnicodeString out = norm->normalize(to_icu(text), err);
  if (U_FAILURE(err)) throw std::runtime_error(std::string("ICU normalize: ") + u_errorName(err));
  return from_icu(out);
}

}  // namespace

std::u32string from_utf8(std::string_view utf8) {
  std::u32string out;
  const auto* s = reinterpret_cast<const uint8_t*>(utf8.data());
  const auto n = static_cast<int32_t>(utf8.size());
  for (int32_t i = 0; i < n;) {
    UChar32 c;
    U8_NEXT(s, i, n, c);
    out += static_cast<char32_t>(c < 0 ? 0xFFFD : c);
  }
  return out;
}

std::string to_utf8(std::u32string_view text) {
  std::string out;
  for (char32_t c : text) {
    uint8_t buf[U8_MAX_LENGTH];
    int32_t len = 0;
    UBool error = false;
    U8_APPEND(buf, len, U8_MAX_LENGTH, static_cast<UChar32>(c), error);
    if (error) {  // a surrogate or a value past U+10FFFF
      len = 0;
      U8_APPEND_UNSAFE(buf, len, 0xFFFD);
    }
    out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(len));
  }
  return out;
}

std::u32string nfc(const std::u32string& text) {
  return normalize(text, false);
}
std::u32string nfkc(const std::u32string& text) {
  return normalize(text, true);
}

std::u32string lower(const std::u32string& text) {
  return from_icu(to_icu(text).toLower(icu::Locale::getRoot()));
}

}  // namespace excel::model::unicode
