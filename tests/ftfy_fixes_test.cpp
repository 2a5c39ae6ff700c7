// model/ftfy_fixes (src/model/ftfy_fixes.cpp): the character-level steps of ftfy.fix_text, each
// expectation as ftfy's documented behaviour gives it. Where ftfy is installed,
// tokenizer_reference_test.cpp also compares with ftfy itself.
#include "excel/model/text_cleanup.h"
#include "test_util.h"

using excel::model::ftfy_fix_text;

TEST(FtfyFixesTest, html_references_only_when_terminated_and_not_in_a_line_with_tags) {
  EXPECT_EQ(ftfy_fix_text("P&EACUTE;REZ &amp;amp;"), "P\u00c9REZ &");  // all-caps name; repeated
  EXPECT_EQ(ftfy_fix_text("&SZLIG;"), "SS");
  EXPECT_EQ(ftfy_fix_text("this&not that &amp"), "this&not that &amp");  // no ';': left alone
  EXPECT_EQ(ftfy_fix_text("&#x1F600; &#12abc;"), "\U0001F600 &#12abc;");
  EXPECT_EQ(ftfy_fix_text("<b>&eacute;</b>\n&eacute;"), "<b>&eacute;</b>\n&eacute;");
  EXPECT_EQ(ftfy_fix_text("&eacute;\n<b>&eacute;</b>"), "\u00e9\n<b>&eacute;</b>");
}

TEST(FtfyFixesTest, ligatures_width_quotes_and_c1_controls) {
  EXPECT_EQ(ftfy_fix_text("\ufb01sh \ufb04 \u01c5 \u0133"), "fish ffl D\u017E ij");
  EXPECT_EQ(ftfy_fix_text("\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25"), "LOUD NOISE");
  EXPECT_EQ(ftfy_fix_text("\uff73\uff80\uff70\uff9d"), "\u30a6\u30bf\u30fc\u30f3");
  EXPECT_EQ(ftfy_fix_text("\u201cdog\u2019s\u201d \u02bc"), "\"dog's\" '");
  EXPECT_EQ(ftfy_fix_text("a\u0092s \u0080"), "a's \u20ac");   // windows-1252, then uncurled
  EXPECT_EQ(ftfy_fix_text("\u00e6 \u0153"), "\u00e6 \u0153");  // not taken apart
}

TEST(FtfyFixesTest, line_breaks_controls_escapes_and_nfc) {
  EXPECT_EQ(ftfy_fix_text("a\r\nb\rc\u2028d\u2029e"), "a\nb\nc\nd\ne");
  EXPECT_EQ(ftfy_fix_text("a\u0007\u000bb\u007f\ufeff\u206a\ufffc\t\u000c"), "ab\t\u000c");
  EXPECT_EQ(ftfy_fix_text("\u001b[31;1mred\u001b[0m"), "red");
  EXPECT_EQ(ftfy_fix_text("e\u0301cole"), "\u00e9cole");
  EXPECT_EQ(ftfy_fix_text("\u200d\u200c"), "\u200d\u200c");  // joiners stay
}
