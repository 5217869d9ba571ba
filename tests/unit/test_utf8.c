/* SPDX-License-Identifier: MIT */
/* Unit tests of common/utf8: sequence lengths, code points, tail
 * trimming, and the invisible formatting characters refused in what
 * contacts are shown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

static int seq(const char *s, size_t avail)
{
    return utf8_seq((const unsigned char *)s, avail);
}

static void utf8__seq__accepts_well_formed(void **state)
{
    (void)state;
    assert_int_equal(seq("a", 1), 1);
    assert_int_equal(seq("\xc3\xbc", 2), 2);         /* U+00FC */
    assert_int_equal(seq("\xe6\x97\xa5", 3), 3);     /* U+65E5 */
    assert_int_equal(seq("\xf0\x9f\x8e\xac", 4), 4); /* U+1F3AC */
    assert_int_equal(seq("\xf4\x8f\xbf\xbf", 4), 4); /* U+10FFFF */
    assert_int_equal(seq("\xed\x9f\xbf", 3), 3);     /* U+D7FF */
}

static void utf8__seq__rejects_ill_formed(void **state)
{
    (void)state;
    assert_int_equal(seq("\xc0\xaf", 2), 0);         /* overlong '/' */
    assert_int_equal(seq("\xc1\xbf", 2), 0);         /* overlong */
    assert_int_equal(seq("\xe0\x80\xaf", 3), 0);     /* overlong */
    assert_int_equal(seq("\xf0\x80\x80\xaf", 4), 0); /* overlong */
    assert_int_equal(seq("\xed\xa0\x80", 3), 0);     /* U+D800 surrogate */
    assert_int_equal(seq("\xf4\x90\x80\x80", 4), 0); /* above U+10FFFF */
    assert_int_equal(seq("\xf5\x80\x80\x80", 4), 0);
    assert_int_equal(seq("\x80", 1), 0); /* lone continuation */
    assert_int_equal(seq("\xc3"
                         "a",
                         2),
                     0); /* bad continuation */
}

static void utf8__seq__reports_cut_sequences(void **state)
{
    (void)state;
    assert_int_equal(seq("\xc3\xbc", 1), -1);
    assert_int_equal(seq("\xe6\x97\xa5", 2), -1);
    assert_int_equal(seq("\xf0\x9f\x8e\xac", 3), -1);
}

static void utf8__trim_tail__cuts_incomplete_endings(void **state)
{
    char a[] = "ab\xe6\x97", b[] = "ab\xe6\x97\xa5", c[] = "ab\xc3", d[] = "ab\x80\x80",
         e[] = "\xf0\x9f\x8e", f[] = "plain";
    (void)state;
    utf8_trim_tail(a);
    assert_string_equal(a, "ab");
    utf8_trim_tail(b);
    assert_string_equal(b, "ab\xe6\x97\xa5"); /* complete: kept */
    utf8_trim_tail(c);
    assert_string_equal(c, "ab");
    utf8_trim_tail(d);
    assert_string_equal(d, "ab"); /* stray continuation bytes */
    utf8_trim_tail(e);
    assert_string_equal(e, "");
    utf8_trim_tail(f);
    assert_string_equal(f, "plain");
}

/* `cp` as UTF-8 into `out` (5 bytes). */
static const char *enc(char out[5], uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)), out[3] = 0;
    } else {
        out[0] = (char)(0xF0 | cp >> 18), out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        out[2] = (char)(0x80 | (cp >> 6 & 0x3F)), out[3] = (char)(0x80 | (cp & 0x3F));
        out[4] = 0;
    }
    return out;
}

static void utf8__code_point__decodes_every_length(void **state)
{
    static const uint32_t cps[] = {0x41,   0x7F,    0x80,    0x7FF,   0x800,   0x202E,
                                   0xFFFD, 0x10000, 0x1F3F4, 0xE007F, 0x10FFFF};
    char buf[5];
    size_t i;
    int n;

    (void)state;
    for (i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        enc(buf, cps[i]);
        n = utf8_seq((const unsigned char *)buf, strlen(buf));
        assert_int_equal(n, (int)strlen(buf));
        assert_int_equal(utf8_code_point((const unsigned char *)buf, n), cps[i]);
    }
}

/* Every refused code point has a name; the neighbours and the characters
 * real text needs have none. */
static void utf8__hidden_name__refused_and_allowed(void **state)
{
    static const struct {
        uint32_t lo, hi;
    } refused[] = {{0x200B, 0x200B}, {0x2028, 0x202E}, {0x2060, 0x206F},
                   {0xFEFF, 0xFEFF}, {0xFFF9, 0xFFFB}, {0xE0000, 0xE007F}};
    static const uint32_t allowed[] = {
        0x20,   0xAD,   0x34F,  0x61C,   0x180E,  0x200A,  0x200C,  0x200D,   0x200E,
        0x200F, 0x2027, 0x202F, 0x205F,  0x2070,  0xFE0F,  0xFEFE,  0xFF00,   0xFFF8,
        0xFFFC, 0xFFFD, 0xDFFF, 0x1F3F4, 0xE0080, 0xE0100, 0xE01EF, 0x10FFFF,
    };
    size_t i;
    uint32_t cp;

    (void)state;
    for (i = 0; i < sizeof refused / sizeof refused[0]; i++)
        for (cp = refused[i].lo; cp <= refused[i].hi; cp++)
            if (!utf8_hidden_name(cp))
                fail_msg("U+%04X is not refused", (unsigned)cp);
    for (i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (utf8_hidden_name(allowed[i]))
            fail_msg("U+%04X is refused", (unsigned)allowed[i]);
    assert_string_equal(utf8_hidden_name(0x202E), "RIGHT-TO-LEFT OVERRIDE");
    assert_string_equal(utf8_hidden_name(0x2066), "LEFT-TO-RIGHT ISOLATE");
    assert_string_equal(utf8_hidden_name(0x2069), "POP DIRECTIONAL ISOLATE");
    assert_string_equal(utf8_hidden_name(0x200B), "ZERO WIDTH SPACE");
    assert_string_equal(utf8_hidden_name(0xFEFF), "ZERO WIDTH NO-BREAK SPACE");
    assert_string_equal(utf8_hidden_name(0xE0041), "a TAG character");
}

#define FLAG    "\xf0\x9f\x8f\xb4" /* U+1F3F4 */
#define TAG(c)  "\xf3\xa0\x81" c   /* U+E0040..E007F */
#define TAGD(c) "\xf3\xa0\x80" c   /* U+E0000..E003F */
#define CANCEL  "\xf3\xa0\x81\xbf" /* U+E007F */
#define ENGLAND                                                                                    \
    FLAG TAG("\xa7") TAG("\xa2") TAG("\xa5") TAG("\xae") TAG("\xa7") CANCEL /* g b e n g */

static void utf8__emoji_tag_sequence__only_well_formed_flags(void **state)
{
    (void)state;
    assert_int_equal(utf8_emoji_tag_sequence(ENGLAND), strlen(ENGLAND));
    assert_int_equal(utf8_emoji_tag_sequence(ENGLAND "x"), strlen(ENGLAND));
    /* a digit in the tag spec (subdivision codes have some) */
    assert_int_equal(utf8_emoji_tag_sequence(FLAG TAG("\xb5") TAGD("\xb1") CANCEL), 4 + 4 + 4 + 4);
    assert_int_equal(utf8_emoji_tag_sequence(FLAG), 0);                         /* no tags */
    assert_int_equal(utf8_emoji_tag_sequence(FLAG CANCEL), 0);                  /* empty spec */
    assert_int_equal(utf8_emoji_tag_sequence(FLAG TAG("\xa7") TAG("\xa2")), 0); /* no end */
    assert_int_equal(utf8_emoji_tag_sequence(FLAG TAG("\xa7") "x" CANCEL), 0);
    /* capital tag letters (U+E0041) and tag space are not in flags */
    assert_int_equal(utf8_emoji_tag_sequence(FLAG TAG("\x81") CANCEL), 0);
    assert_int_equal(utf8_emoji_tag_sequence(FLAG TAGD("\xa0") CANCEL), 0);
    /* another base */
    assert_int_equal(utf8_emoji_tag_sequence("\xf0\x9f\x8e\xac" TAG("\xa7") CANCEL), 0);
    /* at most 8 tags: hidden text does not ride on a flag */
    assert_int_equal(utf8_emoji_tag_sequence(FLAG TAG("\xa1") TAG("\xa1") TAG("\xa1") TAG(
                         "\xa1") TAG("\xa1") TAG("\xa1") TAG("\xa1") TAG("\xa1") CANCEL),
                     4 + 8 * 4 + 4);
    assert_int_equal(utf8_emoji_tag_sequence(FLAG TAG("\xa1") TAG("\xa1") TAG("\xa1") TAG("\xa1")
                                                 TAG("\xa1") TAG("\xa1") TAG("\xa1") TAG("\xa1")
                                                     TAG("\xa1") CANCEL),
                     0);
    assert_int_equal(utf8_emoji_tag_sequence(""), 0);
    assert_int_equal(utf8_emoji_tag_sequence("\xf0\x9f\x8f"), 0); /* cut */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8__seq__accepts_well_formed),
        cmocka_unit_test(utf8__seq__rejects_ill_formed),
        cmocka_unit_test(utf8__seq__reports_cut_sequences),
        cmocka_unit_test(utf8__trim_tail__cuts_incomplete_endings),
        cmocka_unit_test(utf8__code_point__decodes_every_length),
        cmocka_unit_test(utf8__hidden_name__refused_and_allowed),
        cmocka_unit_test(utf8__emoji_tag_sequence__only_well_formed_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
