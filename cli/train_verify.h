/*
 * train_verify.h - `kascade train --kind verifier`: reading labelled
 * outcome lines (learn/verify.h) into a verifier trainer, with the answer
 * patterns given on the command line. Single-threaded. Ownership: a
 * struct vpatterns owns its compiled patterns (vpatterns_fini).
 */
#ifndef KASCADE_CLI_TRAIN_VERIFY_H
#define KASCADE_CLI_TRAIN_VERIFY_H

#include <stddef.h>

#include "config/rule.h"
#include "learn/lr.h"

#define VPATTERNS_MAX 64

/* Answer patterns per task type; type "*" applies to every type without
 * its own. */
struct vpatterns {
    char *type[VPATTERNS_MAX];
    struct ks_rule_re *re[VPATTERNS_MAX];
    size_t n;
};

/* Adds "TYPE=REGEX". Returns 0, or -1 (reported on stderr). */
int vpatterns_add(struct vpatterns *p, const char *arg);
/* The pattern for type, or NULL. Borrowed from p. */
const struct ks_rule_re *vpatterns_for(const struct vpatterns *p,
                                       const char *type);
void vpatterns_fini(struct vpatterns *p);

/* Adds every line of path that has tier's answer and correctness to t (a
 * verifier trainer). Lines without that tier are skipped and counted in
 * *skipped. Returns 0, or -1 on a bad line (reported with its number). */
int train_verify_read(struct ks_lr_trainer *t,
                      const char *path,
                      const char *tier,
                      const struct vpatterns *pats,
                      size_t *skipped);

/* Scores tier's answers of path with m (kind verifier) and measures how
 * well P(right) ranks them: *auc over the calibrated score (the value a
 * worker compares with escalate_below; ties count half) and *auc_raw over
 * the raw margin; *n lines scored, *n_right of them right. Returns 0 or
 * -1 (reported). */
int train_verify_test(const struct ks_lr_model *m,
                      const char *path,
                      const char *tier,
                      const struct vpatterns *pats,
                      double *auc,
                      double *auc_raw,
                      size_t *n,
                      size_t *n_right);

#endif
