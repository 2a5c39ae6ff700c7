// model/html_unescape (src/model/html_unescape.cpp): Python's html.unescape rules. The comparison
// with Python itself over many texts is in tokenizer_reference_test.cpp.
#include "excel/model/text_cleanup.h"
#include "test_util.h"

using excel::model::html_unescape;

TEST(HtmlUnescapeTest, named_references_with_and_without_semicolon) {
  EXPECT_EQ(html_unescape("&eacute;cole &amp; caf&eacute;"), "\u00e9cole & caf\u00e9");
  EXPECT_EQ(html_unescape("&NotEqualTilde;"), "\u2242\u0338");  // two code points
  EXPECT_EQ(html_unescape("&amp"), "&");                        // legacy name, no ';'
  EXPECT_EQ(html_unescape("&notin"), "\u00acin");               // longest legacy prefix: &not
  EXPECT_EQ(html_unescape("&notin;"), "\u2209");
  EXPECT_EQ(html_unescape("&unknown;"), "&unknown;");
  EXPECT_EQ(html_unescape("&amp;amp;"), "&amp;");  // once
}

TEST(HtmlUnescapeTest, numeric_references_follow_the_html5_rules) {
  EXPECT_EQ(html_unescape("&#233;&#xE9;&#XE9"), "\u00e9\u00e9\u00e9");
  EXPECT_EQ(html_unescape("&#x1F600;"), "\U0001F600");
  EXPECT_EQ(html_unescape("&#0;"), "\uFFFD");
  EXPECT_EQ(html_unescape("&#xD800;"), "\uFFFD");
  EXPECT_EQ(html_unescape("&#x110000;"), "\uFFFD");
  EXPECT_EQ(html_unescape("&#99999999999999999999999;"), "\uFFFD");
  EXPECT_EQ(html_unescape("&#128;&#150;"), "\u20ac\u2013");      // windows-1252
  EXPECT_EQ(html_unescape("&#x81;"), "\u0081");                  // undefined there: kept
  EXPECT_EQ(html_unescape("a&#1;b&#xFFFE;c&#xfdd0;d"), "abcd");  // dropped
  EXPECT_EQ(html_unescape("&#13;&#9;"), "\r\t");
  EXPECT_EQ(html_unescape("&#;&#x;"), "&#;&#x;");
}
