/*
 * test_jparse.c - the codec's JSON parser (common/wire/jparse.c) at the
 * edges of its grammar: nesting at and past the caps, NULs, escapes and
 * surrogates, raw bytes, duplicate keys, numbers, whitespace and trailing
 * bytes. Where the expected outcome is cJSON 1.7.15's (the parser's
 * reference), the test says so; fuzz_jparse checks the same against cJSON
 * on random input.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/jparse.h"

#include "base/banned.h"

struct parsed {
    struct jdoc doc;
    enum jparse_status st;
    size_t where;
};

static void parse_n(struct parsed *p, const char *s, size_t len, int depth)
{
    p->st = jparse(&p->doc, s, len, depth, &p->where);
}

static void parse(struct parsed *p, const char *s)
{
    parse_n(p, s, strlen(s), 32);
}

/* Parses s and expects a syntax error at byte where. */
static void assert_syntax_at(const char *s, size_t where)
{
    struct parsed p;

    parse(&p, s);
    assert_int_equal(p.st, JPARSE_SYNTAX);
    assert_int_equal(p.where, where);
    jdoc_fini(&p.doc);
}

static void assert_status(const char *s, int depth, enum jparse_status st)
{
    struct parsed p;

    parse_n(&p, s, strlen(s), depth);
    assert_int_equal(p.st, st);
    jdoc_fini(&p.doc);
}

/* "[[[...1...]]]" nested n deep; caller frees. */
static char *nested(int n)
{
    char *s = malloc(2 * (size_t)n + 2);

    memset(s, '[', (size_t)n);
    s[n] = '1';
    memset(s + n + 1, ']', (size_t)n);
    s[2 * n + 1] = '\0';
    return s;
}

static void nesting_at_the_cap_parses_and_past_it_is_too_deep(void **state)
{
    char *at = nested(6), *past = nested(7);

    (void)state;
    assert_status(at, 6, JPARSE_OK);
    assert_status(past, 6, JPARSE_TOO_DEEP);
    assert_status("{\"a\":{\"b\":{}}}", 3, JPARSE_OK);
    assert_status("{\"a\":{\"b\":{\"c\":[]}}}", 3, JPARSE_TOO_DEEP);
    /* brackets inside strings do not count */
    assert_status("[\"[[[[[[[[[\"]", 1, JPARSE_OK);
    free(at);
    free(past);
}

static void too_deep_wins_over_a_syntax_error_before_or_after(void **state)
{
    (void)state;
    /* The old scan ran before cJSON: nesting past the cap anywhere in the
     * text is too_large, even after or before broken syntax. */
    assert_status("[[[[[[[[", 6, JPARSE_TOO_DEEP);
    assert_status("x [[[[[[[[", 6, JPARSE_TOO_DEEP);
    assert_status("{} [[[[[[[[]]]]]]]]", 6, JPARSE_TOO_DEEP);
    assert_status("[[[,", 6, JPARSE_SYNTAX);
}

static void nesting_past_cjsons_limit_of_1000_is_a_syntax_error(void **state)
{
    char *ok = nested(1000), *deep = nested(1001);

    (void)state;
    assert_status(ok, 5000, JPARSE_OK);
    assert_status(deep, 5000, JPARSE_SYNTAX);
    free(ok);
    free(deep);
}

static void a_nul_in_a_string_is_reported_after_a_clean_parse(void **state)
{
    static const char raw[] = "[\"a\0b\"]";
    static const char between[] = "[1,\0 2]";
    struct parsed p;

    (void)state;
    assert_status("[\"a\\u0000b\"]", 32, JPARSE_HAS_NUL);
    assert_status("{\"k\\u0000\":1}", 32, JPARSE_HAS_NUL);
    parse_n(&p, raw, sizeof(raw) - 1, 32);
    assert_int_equal(p.st, JPARSE_HAS_NUL);
    jdoc_fini(&p.doc);
    /* Between tokens a NUL byte is whitespace to cJSON, and so here. */
    parse_n(&p, between, sizeof(between) - 1, 32);
    assert_int_equal(p.st, JPARSE_OK);
    assert_int_equal(jdoc_root(&p.doc)->u.kids.count, 2);
    jdoc_fini(&p.doc);
    /* A syntax error comes first. */
    assert_status("[\"\\u0000\",]", 32, JPARSE_SYNTAX);
    /* An escaped backslash before u0000 is text, not a NUL. */
    assert_status("[\"\\\\u0000\"]", 32, JPARSE_OK);
}

static void escapes_and_surrogate_pairs_decode_to_utf8(void **state)
{
    struct parsed p;

    (void)state;
    parse(&p, "[\"\\b\\f\\n\\r\\t\\/\\\\\\\"\", \"\\u00e9\\u20AC\", "
              "\"\\uD83D\\uDE00\"]");
    assert_int_equal(p.st, JPARSE_OK);
    {
        const struct jnode *a = jnode_first(&p.doc, jdoc_root(&p.doc));
        const struct jnode *b = jnode_next(&p.doc, a);
        const struct jnode *c = jnode_next(&p.doc, b);

        assert_string_equal(jnode_str(&p.doc, a), "\b\f\n\r\t/\\\"");
        assert_string_equal(jnode_str(&p.doc, b), "\xC3\xA9\xE2\x82\xAC");
        assert_string_equal(jnode_str(&p.doc, c), "\xF0\x9F\x98\x80");
    }
    jdoc_fini(&p.doc);
}

static void lone_or_broken_surrogates_are_syntax_errors(void **state)
{
    (void)state;
    assert_syntax_at("[\"ab\\uDE00\"]", 4);      /* lone low */
    assert_syntax_at("[\"\\uD800x\"]", 2);       /* lone high */
    assert_syntax_at("[\"\\uD800\\u0041\"]", 2); /* high, then not low */
    assert_syntax_at("[\"\\uD800\\uD800\"]", 2); /* high, high */
    assert_syntax_at("[\"\\u12\"]", 2);          /* too short */
    assert_syntax_at("[\"\\x\"]", 2);            /* unknown escape */
}

static void a_u_escape_with_a_non_hex_digit_is_a_syntax_error(void **state)
{
    (void)state;
    /* cJSON read these as U+0000 and silently cut the string. */
    assert_syntax_at("[\"ab\\u00zzcd\"]", 4);
    assert_syntax_at("[\"\\uD83D\\uDEzz\"]", 2);
}

static void raw_bytes_pass_as_they_are_like_cjson(void **state)
{
    struct parsed p;

    (void)state;
    /* No UTF-8 check (cJSON had none) and raw control bytes in strings. */
    parse(&p, "[\"\xFF\xC3\x28\t\x01\"]");
    assert_int_equal(p.st, JPARSE_OK);
    assert_string_equal(
        jnode_str(&p.doc, jnode_first(&p.doc, jdoc_root(&p.doc))),
        "\xFF\xC3\x28\t\x01");
    jdoc_fini(&p.doc);
}

static void duplicate_keys_are_kept_in_order_for_the_codec(void **state)
{
    struct parsed p;
    const struct jnode *a, *b;

    (void)state;
    parse(&p, "{\"k\":1,\"k\":2}");
    assert_int_equal(p.st, JPARSE_OK);
    a = jnode_first(&p.doc, jdoc_root(&p.doc));
    b = jnode_next(&p.doc, a);
    assert_string_equal(jnode_key(&p.doc, a), "k");
    assert_string_equal(jnode_key(&p.doc, b), "k");
    assert_true(jnode_get(&p.doc, jdoc_root(&p.doc), "k") == a);
    assert_null(jnode_get(&p.doc, jdoc_root(&p.doc), "K"));
    jdoc_fini(&p.doc);
}

static double number_of(const char *s)
{
    struct parsed p;
    double v;

    parse(&p, s);
    assert_int_equal(p.st, JPARSE_OK);
    assert_int_equal(jdoc_root(&p.doc)->type, JT_NUMBER);
    v = jdoc_root(&p.doc)->u.num;
    jdoc_fini(&p.doc);
    return v;
}

static void numbers_read_as_cjson_read_them(void **state)
{
    char long_number[101];

    (void)state;
    assert_true(number_of("-0") == 0 && signbit(number_of("-0")));
    assert_true(isinf(number_of("1e400")));
    assert_true(number_of("01") == 1); /* leading zero: strtod reads it */
    assert_true(number_of("1.") == 1); /* so "1." too */
    assert_true(number_of("-.5") == -0.5);
    assert_true(number_of("2E-1") == 0.2);
    assert_syntax_at("-", 0);
    assert_syntax_at("+1", 0);
    assert_syntax_at(".5", 0);
    assert_syntax_at("1e+", 1); /* strtod stops after 1 */
    assert_syntax_at("0x10", 1);
    /* Debian's cJSON reads the whole run (upstream 1.7.15 cut it at 63). */
    memset(long_number, '1', 100);
    long_number[100] = '\0';
    assert_true(number_of(long_number) > 1e99);
    assert_syntax_at("1.5.5", 3); /* strtod stops at the second dot */
}

static void whitespace_and_trailing_bytes(void **state)
{
    struct parsed p;

    (void)state;
    assert_status(" \t\r\n{ \"a\" :\x01[ 1 , 2 ] }\r\n\t ", 32, JPARSE_OK);
    assert_status("\xEF\xBB\xBF{}", 32, JPARSE_OK); /* a BOM is skipped */
    assert_syntax_at("{} x", 3);
    assert_syntax_at("{}\x0b", 2); /* only " \t\r\n" may follow */
    assert_syntax_at("[1,]", 3);
    assert_syntax_at("[1", 1);
    assert_syntax_at("{\"a\" 1}", 5);
    assert_syntax_at("{x:1}", 2); /* where cJSON put it */
    assert_syntax_at("\"abc", 1);
    assert_syntax_at("   ", 3);
    parse_n(&p, "", 0, 32);
    assert_int_equal(p.st, JPARSE_SYNTAX);
    assert_int_equal(p.where, 0);
    jdoc_fini(&p.doc);
}

static void many_nodes_move_from_the_stack_to_the_heap(void **state)
{
    char s[4 * JDOC_LOCAL_NODES + 8];
    size_t n = 0;
    struct parsed p;
    uint32_t count = 0;

    (void)state;
    s[n++] = '[';
    for (int i = 0; i < 2 * JDOC_LOCAL_NODES; i++) {
        s[n++] = i ? ',' : ' ';
        s[n++] = (char)('0' + i % 10);
    }
    s[n++] = ']';
    s[n] = '\0';
    parse(&p, s);
    assert_int_equal(p.st, JPARSE_OK);
    assert_int_equal(jdoc_root(&p.doc)->u.kids.count, 2 * JDOC_LOCAL_NODES);
    JNODE_FOREACH(&p.doc, it, jdoc_root(&p.doc))
    {
        assert_true(it->u.num == count % 10);
        count++;
    }
    assert_int_equal(count, 2 * JDOC_LOCAL_NODES);
    jdoc_fini(&p.doc);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(nesting_at_the_cap_parses_and_past_it_is_too_deep),
        cmocka_unit_test(too_deep_wins_over_a_syntax_error_before_or_after),
        cmocka_unit_test(nesting_past_cjsons_limit_of_1000_is_a_syntax_error),
        cmocka_unit_test(a_nul_in_a_string_is_reported_after_a_clean_parse),
        cmocka_unit_test(escapes_and_surrogate_pairs_decode_to_utf8),
        cmocka_unit_test(lone_or_broken_surrogates_are_syntax_errors),
        cmocka_unit_test(a_u_escape_with_a_non_hex_digit_is_a_syntax_error),
        cmocka_unit_test(raw_bytes_pass_as_they_are_like_cjson),
        cmocka_unit_test(duplicate_keys_are_kept_in_order_for_the_codec),
        cmocka_unit_test(numbers_read_as_cjson_read_them),
        cmocka_unit_test(whitespace_and_trailing_bytes),
        cmocka_unit_test(many_nodes_move_from_the_stack_to_the_heap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
