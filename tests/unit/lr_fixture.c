/*
 * lr_fixture.c - the temporary directory, toy sets and toy models of the
 * logistic regression test programs (see lr_fixture.h).
 */
#include "lr_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/banned.h"

char tmpdir[256];

int lr_group_setup(void **state)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_lr.XXXXXX", base);
    return mkdtemp(tmpdir) ? 0 : -1;
}

int lr_group_teardown(void **state)
{
    char cmd[512];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

void tmp_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
}

/* Easy tasks (label 0) talk about orders, hard ones (label 1) about
 * proofs; the words differ, so a linear model separates them. */
const char *easy[] = {
    "where is my order",
    "my order has not arrived",
    "track my parcel",
    "order status please",
    "when will my parcel arrive",
    "change the delivery address of my order",
    "the parcel is late",
    "cancel my order",
    "my order arrived damaged",
    "has my parcel shipped",
};

const char *hard[] = {
    "prove that the integral converges",
    "prove the theorem for every prime",
    "show the series converges uniformly",
    "derive the integral of the series",
    "prove the lemma by induction",
    "show every prime above two is odd",
    "derive the theorem from the lemma",
    "prove uniform convergence of the integral",
    "show the induction step of the theorem",
    "derive a bound on the prime",
};

static const char *triage_text[][2] = {
    {"billing", "I was charged twice on my card"},
    {"billing", "refund the charge on my invoice"},
    {"billing", "my invoice shows a wrong charge"},
    {"billing", "why was my card charged again"},
    {"billing", "please refund my last payment"},
    {"billing", "the invoice amount is wrong"},
    {"shipping", "my parcel has not arrived yet"},
    {"shipping", "track the delivery of my parcel"},
    {"shipping", "the courier lost my parcel"},
    {"shipping", "delivery is late again"},
    {"shipping", "where is the courier with my delivery"},
    {"shipping", "parcel delivered to the wrong address"},
    {"tech", "the app crashes when I log in"},
    {"tech", "password reset link does not work"},
    {"tech", "the app shows an error on login"},
    {"tech", "cannot reset my password in the app"},
    {"tech", "login error after the update"},
    {"tech", "the update made the app crash"},
};

struct ks_lr_trainer *router_trainer(uint64_t seed,
                                     unsigned bits,
                                     double holdout)
{
    struct ks_lr_train_opts o;
    struct ks_lr_trainer *t;
    char err[256];

    ks_lr_train_opts_init(&o);
    o.kind = "router";
    o.seed = seed;
    o.bits = bits;
    o.holdout = holdout;
    t = ks_lr_trainer_new(&o, err, sizeof(err));
    assert_non_null(t);
    /* Each example twice, so the held-out part has both kinds. */
    for (int rep = 0; rep < 2; rep++) {
        for (size_t i = 0; i < N_OF(easy); i++) {
            assert_int_equal(ks_lr_trainer_add(t, easy[i], strlen(easy[i]), "0",
                                               err, sizeof(err)),
                             0);
            assert_int_equal(ks_lr_trainer_add(t, hard[i], strlen(hard[i]), "1",
                                               err, sizeof(err)),
                             0);
        }
    }
    return t;
}

struct ks_lr_model *router_model(uint64_t seed, unsigned bits)
{
    struct ks_lr_trainer *t = router_trainer(seed, bits, 0.2);
    char err[256];
    struct ks_lr_model *m = ks_lr_trainer_fit(t, NULL, err, sizeof(err));

    assert_non_null(m);
    ks_lr_trainer_destroy(t);
    return m;
}

struct ks_lr_model *triage_model(uint64_t seed, unsigned bits)
{
    struct ks_lr_train_opts o;
    struct ks_lr_trainer *t;
    struct ks_lr_model *m;
    char err[256];

    ks_lr_train_opts_init(&o);
    o.kind = "triage";
    o.seed = seed;
    o.bits = bits;
    t = ks_lr_trainer_new(&o, err, sizeof(err));
    assert_non_null(t);
    for (int rep = 0; rep < 2; rep++) {
        for (size_t i = 0; i < N_OF(triage_text); i++) {
            const char *s = triage_text[i][1];

            assert_int_equal(ks_lr_trainer_add(t, s, strlen(s),
                                               triage_text[i][0], err,
                                               sizeof(err)),
                             0);
        }
    }
    m = ks_lr_trainer_fit(t, NULL, err, sizeof(err));
    assert_non_null(m);
    ks_lr_trainer_destroy(t);
    return m;
}

double score(const struct ks_lr_model *m, const char *s)
{
    return ks_lr_score(m, s, strlen(s));
}
