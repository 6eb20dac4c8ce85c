/*
 * test_lr_file.c - logistic regression model files: a saved model loads
 * back with identical scores, the same seed saves the same bytes, and a
 * corrupt, truncated, foreign, other-version or oversized file is refused
 * with a reason. The temporary directory and toy models are lr_fixture.h's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "learn/lr.h"
#include "lr_fixture.h"

#include "base/banned.h"

static void lr_save_load_round_trip_gives_identical_scores(void **state)
{
    const char *probe[] = {"where is my parcel", "prove it", "",
                           "I was "
                           "charged twice",
                           "app crash on login"};
    char path[300], err[256];

    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        struct ks_lr_model *m =
            kind ? triage_model(2, 12) : router_model(2, 12);
        struct ks_lr_model *back;

        tmp_path(path, sizeof(path), kind ? "triage.lrm" : "router.lrm");
        assert_int_equal(ks_lr_save(m, path, err, sizeof(err)), 0);
        back = ks_lr_load(path, err, sizeof(err));
        assert_non_null(back);
        assert_string_equal(ks_lr_kind(back), ks_lr_kind(m));
        assert_int_equal(ks_lr_bits(back), 12);
        assert_int_equal(ks_lr_n_labels(back), ks_lr_n_labels(m));
        for (size_t i = 0; i < ks_lr_n_labels(m); i++) {
            assert_string_equal(ks_lr_label(back, i), ks_lr_label(m, i));
        }
        for (size_t i = 0; i < N_OF(probe); i++) {
            double p1, p2;
            size_t len = strlen(probe[i]);

            assert_true(ks_lr_score(m, probe[i], len) ==
                        ks_lr_score(back, probe[i], len));
            assert_true(ks_lr_margin(m, probe[i], len) ==
                        ks_lr_margin(back, probe[i], len));
            assert_int_equal(ks_lr_classify(m, probe[i], len, &p1),
                             ks_lr_classify(back, probe[i], len, &p2));
            assert_true(p1 == p2);
        }
        ks_lr_destroy(back);
        ks_lr_destroy(m);
    }
}

/* Reads a whole file into *len bytes (caller frees). */
static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    unsigned char *data = malloc(1 << 20);

    assert_non_null(fp);
    *len = fread(data, 1, 1 << 20, fp);
    fclose(fp);
    return data;
}

static void write_all(const char *path, const unsigned char *data, size_t len)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

/* Loading must fail, with a reason containing want. */
static void assert_refused(const char *path, const char *want)
{
    char err[256] = "";
    struct ks_lr_model *m = ks_lr_load(path, err, sizeof(err));

    if (m || !strstr(err, want)) {
        print_error("load of %s: want a refusal with '%s', got %s '%s'\n", path,
                    want, m ? "a model" : "refusal", err);
    }
    assert_null(m);
    assert_non_null(strstr(err, want));
}

/* A small saved router model: its path and bytes. */
static unsigned char *small_model(char *path, size_t size, size_t *len)
{
    struct ks_lr_model *m = router_model(1, 8);
    char err[256];

    tmp_path(path, size, "small.lrm");
    assert_int_equal(ks_lr_save(m, path, err, sizeof(err)), 0);
    ks_lr_destroy(m);
    return read_all(path, len);
}

static void lr_load_refuses_a_missing_file_or_a_foreign_one(void **state)
{
    char path[300];

    (void)state;
    tmp_path(path, sizeof(path), "does-not-exist.lrm");
    assert_refused(path, "does-not-exist.lrm");
    /* the OS's reason, not the bytes of an unwritten buffer */
    assert_refused(path, "does-not-exist.lrm: No such file or directory");
    tmp_path(path, sizeof(path), "foreign.lrm");
    write_all(path, (const unsigned char *)"{\"model\": \"json?\"}\n", 19);
    assert_refused(path, "bad magic");
    assert_refused(tmpdir, "not a regular file");
}

/* A model that cannot be written says why, in the OS's words. */
static void lr_save_names_the_os_error(void **state)
{
    struct ks_lr_model *m = router_model(1, 8);
    char path[300], err[256] = "";

    (void)state;
    tmp_path(path, sizeof(path), "no-such-dir/m.lrm");
    assert_int_not_equal(ks_lr_save(m, path, err, sizeof(err)), 0);
    if (!strstr(err, "m.lrm.tmp: No such file or directory")) {
        print_error("save error: '%s'\n", err);
    }
    assert_non_null(strstr(err, "m.lrm.tmp: No such file or directory"));
    ks_lr_destroy(m);
}

static void lr_load_refuses_every_truncation(void **state)
{
    char path[300], cut[300];
    size_t len;
    unsigned char *data = small_model(path, sizeof(path), &len);

    (void)state;
    tmp_path(cut, sizeof(cut), "cut.lrm");
    for (size_t n = 0; n < len; n++) {
        write_all(cut, data, n);
        assert_refused(cut, "truncated");
    }
    /* and the whole file still loads */
    write_all(cut, data, len);
    {
        char err[256];
        struct ks_lr_model *m = ks_lr_load(cut, err, sizeof(err));

        assert_non_null(m);
        ks_lr_destroy(m);
    }
    /* a byte too many */
    data[len] = 0;
    write_all(cut, data, len + 1);
    assert_refused(cut, "unexpected bytes");
    free(data);
}

static void lr_load_refuses_every_single_byte_corruption(void **state)
{
    char path[300], bad[300], err[256];
    size_t len;
    unsigned char *data = small_model(path, sizeof(path), &len);

    (void)state;
    tmp_path(bad, sizeof(bad), "flipped.lrm");
    for (size_t i = 0; i < len; i++) {
        struct ks_lr_model *m;

        data[i] ^= 0x5a;
        write_all(bad, data, len);
        m = ks_lr_load(bad, err, sizeof(err));
        if (m) {
            print_error("a flip at byte %zu of %zu loaded\n", i, len);
        }
        assert_null(m);
        assert_true(err[0] != '\0');
        data[i] ^= 0x5a;
    }
    free(data);
}

/* FNV-1a 64 as the file format specifies, to forge valid checksums. */
static uint64_t fnv1a(const unsigned char *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++) {
        h = (h ^ p[i]) * 0x100000001b3ULL;
    }
    return h;
}

/* Sets the u32 at off and re-signs the file. */
static void forge_u32(unsigned char *data, size_t len, size_t off, uint32_t v)
{
    uint64_t h;

    for (int i = 0; i < 4; i++) {
        data[off + (size_t)i] = (unsigned char)(v >> (8 * i));
    }
    h = fnv1a(data, len - 8);
    for (int i = 0; i < 8; i++) {
        data[len - 8 + (size_t)i] = (unsigned char)(h >> (8 * i));
    }
}

static void lr_load_refuses_other_versions_and_sizes_over_caps(void **state)
{
    char path[300], bad[300];
    size_t len;
    unsigned char *data = small_model(path, sizeof(path), &len);
    unsigned char *copy = malloc(len);
    struct {
        size_t off; /* header: magic 8, version, kind, bits, set, labels */
        uint32_t value;
        const char *want;
    } cases[] = {
        {8, 2, "version 2"},
        {8, 0, "version 0"},
        {12, 4, "unknown model kind"},
        /* kind 3 is a verifier: its features are verify.h's, set 2 */
        {12, 3, "unknown feature set 1"},
        {16, 30, "hash bits"},
        {16, 4, "hash bits"},
        {20, 7, "feature set"},
        {24, 3, "labels"},
        {24, 0xffffffffu, "labels"},
    };

    (void)state;
    tmp_path(bad, sizeof(bad), "forged.lrm");
    for (size_t i = 0; i < N_OF(cases); i++) {
        memcpy(copy, data, len);
        forge_u32(copy, len, cases[i].off, cases[i].value);
        write_all(bad, copy, len);
        assert_refused(bad, cases[i].want);
    }
    /* the first label's length over the cap */
    memcpy(copy, data, len);
    forge_u32(copy, len, 28, 100000);
    write_all(bad, copy, len);
    assert_refused(bad, "label 0");
    free(copy);
    free(data);
}

static void lr_training_is_deterministic_for_a_seed(void **state)
{
    char p1[300], p2[300], p3[300], err[256];
    size_t l1, l2, l3;
    unsigned char *d1, *d2, *d3;
    struct ks_lr_model *m;

    (void)state;
    tmp_path(p1, sizeof(p1), "seed7a.lrm");
    tmp_path(p2, sizeof(p2), "seed7b.lrm");
    tmp_path(p3, sizeof(p3), "seed8.lrm");
    m = router_model(7, 12);
    assert_int_equal(ks_lr_save(m, p1, err, sizeof(err)), 0);
    ks_lr_destroy(m);
    m = router_model(7, 12);
    assert_int_equal(ks_lr_save(m, p2, err, sizeof(err)), 0);
    ks_lr_destroy(m);
    m = router_model(8, 12);
    assert_int_equal(ks_lr_save(m, p3, err, sizeof(err)), 0);
    ks_lr_destroy(m);
    d1 = read_all(p1, &l1);
    d2 = read_all(p2, &l2);
    d3 = read_all(p3, &l3);
    assert_int_equal(l1, l2);
    assert_memory_equal(d1, d2, l1);
    /* the seed is used: another one shuffles differently */
    assert_true(l1 != l3 || memcmp(d1, d3, l1) != 0);
    free(d1);
    free(d2);
    free(d3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lr_save_load_round_trip_gives_identical_scores),
        cmocka_unit_test(lr_load_refuses_a_missing_file_or_a_foreign_one),
        cmocka_unit_test(lr_save_names_the_os_error),
        cmocka_unit_test(lr_load_refuses_every_truncation),
        cmocka_unit_test(lr_load_refuses_every_single_byte_corruption),
        cmocka_unit_test(lr_load_refuses_other_versions_and_sizes_over_caps),
        cmocka_unit_test(lr_training_is_deterministic_for_a_seed),
    };

    return cmocka_run_group_tests_name("lr_file", tests, lr_group_setup,
                                       lr_group_teardown);
}
