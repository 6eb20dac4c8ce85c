/*
 * lr_fixture.h - what the logistic regression test programs (test_lr_train,
 * test_lr_file) share: a temporary directory for model files, the toy
 * sets (easy orders against hard proofs for the router, three topics for
 * triage) and models trained on them.
 *
 * lr_group_setup() makes the directory under $TMPDIR (default /tmp) and
 * lr_group_teardown() removes it with what the tests wrote there.
 * Ownership: the trainers and models returned are the caller's (destroy
 * them); tmpdir, easy and hard are static. Single-threaded, except score(),
 * which only reads the model.
 */
#ifndef KASCADE_TESTS_LR_FIXTURE_H
#define KASCADE_TESTS_LR_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "learn/lr.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The number of texts in each of easy and hard. */
#define LR_TOY_N 10

/* Easy tasks (label 0) talk about orders, hard ones (label 1) about
 * proofs; the words differ, so a linear model separates them. */
extern const char *easy[LR_TOY_N];
extern const char *hard[LR_TOY_N];

/* The group's temporary directory ("" before lr_group_setup). */
extern char tmpdir[256];

/* cmocka group setup and teardown: make and remove the directory of
 * tmp_path(). Return 0, or -1 on failure. */
int lr_group_setup(void **state);
int lr_group_teardown(void **state);

/* The path of file name in the group's directory, into out. */
void tmp_path(char *out, size_t size, const char *name);

/* A router trainer holding easy and hard twice each (caller destroys). */
struct ks_lr_trainer *router_trainer(uint64_t seed,
                                     unsigned bits,
                                     double holdout);

/* A router model fit on router_trainer(seed, bits, 0.2) (caller
 * destroys). */
struct ks_lr_model *router_model(uint64_t seed, unsigned bits);

/* A triage model fit on the three-topic toy set (caller destroys). */
struct ks_lr_model *triage_model(uint64_t seed, unsigned bits);

/* The model's score of the text s. */
double score(const struct ks_lr_model *m, const char *s);

#endif
