/* SPDX-License-Identifier: MIT */
/* Unit tests of common/utf8: sequence lengths and tail trimming. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8__seq__accepts_well_formed),
        cmocka_unit_test(utf8__seq__rejects_ill_formed),
        cmocka_unit_test(utf8__seq__reports_cut_sequences),
        cmocka_unit_test(utf8__trim_tail__cuts_incomplete_endings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
