/*
 * test_store_key.c - key parts: plain names stay readable, every other
 * byte is %XX-encoded, so a tenant, tier or id can never contain the ':'
 * between parts (tenant "acme:res" is not tenant "acme"'s reservation
 * set) nor a hash tag; an encoding that does not fit is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "redis/store.h"

#include "base/banned.h"

static void key_part_keeps_plain_names(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(ks_store_key_part("acme-Co_1.eu", out, sizeof(out)), 12);
    assert_string_equal(out, "acme-Co_1.eu");
}

static void key_part_encodes_separators_and_hash_tags(void **state)
{
    char a[64], b[64];

    (void)state;
    assert_int_equal(ks_store_key_part("acme:res", a, sizeof(a)), 10);
    assert_string_equal(a, "acme%3Ares");
    assert_int_equal(ks_store_key_part("{x}%", b, sizeof(b)), 10);
    assert_string_equal(b, "%7Bx%7D%25");
    /* The escape byte itself is encoded: "%3A" and ":" stay distinct. */
    assert_int_equal(ks_store_key_part("%3A", a, sizeof(a)), 5);
    assert_string_equal(a, "%253A");
    assert_int_equal(ks_store_key_part("\x01\xff", a, sizeof(a)), 6);
    assert_string_equal(a, "%01%FF");
}

static void key_part_refuses_what_does_not_fit(void **state)
{
    char out[4];

    (void)state;
    assert_int_equal(ks_store_key_part("abc", out, sizeof(out)), 3);
    assert_int_equal(ks_store_key_part("abcd", out, sizeof(out)), -1);
    assert_string_equal(out, "");
    assert_int_equal(ks_store_key_part("a:", out, sizeof(out)), -1);
    assert_int_equal(ks_store_key_part("", out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

static void url_shown_drops_the_credentials(void **state)
{
    char out[64];

    (void)state;
    ks_store_url_shown("redis://app:s3cret@db:6379/2", out, sizeof(out));
    assert_string_equal(out, "redis://db:6379/2");
    ks_store_url_shown("redis://:s3cret@db", out, sizeof(out));
    assert_string_equal(out, "redis://db");
    ks_store_url_shown("redis://127.0.0.1:6379", out, sizeof(out));
    assert_string_equal(out, "redis://127.0.0.1:6379");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_part_keeps_plain_names),
        cmocka_unit_test(key_part_encodes_separators_and_hash_tags),
        cmocka_unit_test(key_part_refuses_what_does_not_fit),
        cmocka_unit_test(url_shown_drops_the_credentials),
    };

    return cmocka_run_group_tests_name("store_key", tests, NULL, NULL);
}
