/*
 * train_verify.c - the verifier's training input: labelled outcome lines
 * (learn/verify.h) and the answer patterns of the command line. A line
 * that does not parse stops the command with its number (a silently
 * skipped line would change the model); a line without the chosen tier,
 * or without its "correct", is skipped and counted.
 */
#include "train_verify.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "jsonl.h"
#include "learn/verify.h"

#include "base/banned.h"

int vpatterns_add(struct vpatterns *p, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char errstr[256];
    struct ks_rule_re *re;

    if (!eq || eq == arg || !eq[1]) {
        fprintf(stderr, "kascade train: --answer-pattern wants TYPE=REGEX "
                        "(TYPE * for every type)\n");
        return -1;
    }
    if (p->n == VPATTERNS_MAX) {
        fprintf(stderr, "kascade train: at most %d answer patterns\n",
                VPATTERNS_MAX);
        return -1;
    }
    re = ks_rule_re_new(eq + 1, KS_RULE_MATCH_LIMIT_DEFAULT, errstr,
                        sizeof(errstr));
    if (!re) {
        fprintf(stderr, "kascade train: --answer-pattern %s: %s\n", arg,
                errstr);
        return -1;
    }
    p->type[p->n] = ks_xstrndup(arg, (size_t)(eq - arg));
    p->re[p->n++] = re;
    return 0;
}

const struct ks_rule_re *vpatterns_for(const struct vpatterns *p,
                                       const char *type)
{
    const struct ks_rule_re *any = NULL;

    for (size_t i = 0; i < p->n; i++) {
        if (type && strcmp(p->type[i], type) == 0) {
            return p->re[i];
        }
        if (strcmp(p->type[i], "*") == 0) {
            any = p->re[i];
        }
    }
    return any;
}

void vpatterns_fini(struct vpatterns *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->type[i]);
        ks_rule_re_destroy(p->re[i]);
    }
    p->n = 0;
}

/* Called with each labelled answer of the tier: 0, or -1 with errstr. */
typedef int (*outcome_fn)(const struct ks_verify_input *in,
                          bool correct,
                          void *arg,
                          char *errstr,
                          size_t errstr_size);

/* Reads path's outcome lines and calls fn on every answer of tier that
 * has "correct" (the others are counted in *skipped). Returns 0, or -1
 * after reporting the line. */
static int each_outcome(const char *path,
                        const char *tier,
                        const struct vpatterns *pats,
                        outcome_fn fn,
                        void *arg,
                        size_t *skipped)
{
    struct line_reader lr;
    cJSON *root = NULL;
    char errstr[256];
    int r, rc = -1;

    *skipped = 0;
    if (jsonl_open(&lr, path) != 0) {
        return -1;
    }
    while ((r = jsonl_next(&lr, &root)) > 0) {
        struct ks_outcome o;
        const struct ks_outcome_tier *ot;
        struct ks_verify_input in;
        int fr = 0;

        if (ks_outcome_parse(root, &o, errstr, sizeof(errstr)) != 0) {
            jsonl_bad(&lr, errstr);
            goto out;
        }
        ot = ks_outcome_tier(&o, tier);
        if (!ot || !ot->has_correct) {
            (*skipped)++;
        } else {
            ks_verify_input_from_outcome(&o, ot, &in);
            in.answer_pattern = vpatterns_for(pats, o.type);
            fr = fn(&in, ot->correct, arg, errstr, sizeof(errstr));
        }
        ks_outcome_fini(&o);
        if (fr != 0) {
            jsonl_bad(&lr, errstr);
            goto out;
        }
        cJSON_Delete(root);
        root = NULL;
    }
    rc = r < 0 ? -1 : 0;
out:
    cJSON_Delete(root);
    jsonl_close(&lr);
    return rc;
}

static int add_one(const struct ks_verify_input *in,
                   bool correct,
                   void *arg,
                   char *errstr,
                   size_t errstr_size)
{
    return ks_verify_trainer_add(arg, in, correct, errstr, errstr_size);
}

int train_verify_read(struct ks_lr_trainer *t,
                      const char *path,
                      const char *tier,
                      const struct vpatterns *pats,
                      size_t *skipped)
{
    return each_outcome(path, tier, pats, add_one, t, skipped);
}

struct scored {
    double s;
    bool right;
};

static int cmp_scored(const void *a, const void *b)
{
    double x = ((const struct scored *)a)->s, y = ((const struct scored *)b)->s;

    return x < y ? -1 : x > y;
}

/* The probability that a right answer scores above a wrong one (ties
 * half): the Mann-Whitney statistic over tied groups. */
static double auc_of(struct scored *v, size_t n)
{
    double pos = 0, neg = 0, below = 0, sum = 0;

    qsort(v, n, sizeof(*v), cmp_scored);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double gp = 0, gn = 0;

        while (j < n && v[j].s == v[i].s) {
            gp += v[j].right;
            gn += !v[j].right;
            j++;
        }
        sum += gp * (below + gn / 2);
        below += gn;
        pos += gp;
        neg += gn;
        i = j;
    }
    return pos > 0 && neg > 0 ? sum / (pos * neg) : NAN;
}

/* The scores of a test file, calibrated and raw. */
struct test_acc {
    const struct ks_lr_model *m;
    struct scored *cal, *raw;
    size_t n, cap, n_right;
};

static int score_one(const struct ks_verify_input *in,
                     bool correct,
                     void *arg,
                     char *errstr,
                     size_t errstr_size)
{
    struct test_acc *a = arg;

    (void)errstr;
    (void)errstr_size;
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 256;
        a->cal = ks_xrealloc(a->cal, a->cap * sizeof(*a->cal));
        a->raw = ks_xrealloc(a->raw, a->cap * sizeof(*a->raw));
    }
    a->raw[a->n].s = ks_verify_margin(a->m, in);
    a->cal[a->n].s = ks_verify_score(a->m, in);
    a->raw[a->n].right = a->cal[a->n].right = correct;
    a->n_right += correct;
    a->n++;
    return 0;
}

int train_verify_test(const struct ks_lr_model *m,
                      const char *path,
                      const char *tier,
                      const struct vpatterns *pats,
                      double *auc,
                      double *auc_raw,
                      size_t *n,
                      size_t *n_right)
{
    struct test_acc a = {.m = m};
    size_t skipped;
    int rc = each_outcome(path, tier, pats, score_one, &a, &skipped);

    if (rc == 0) {
        *auc = auc_of(a.cal, a.n);
        *auc_raw = auc_of(a.raw, a.n);
    }
    *n = a.n;
    *n_right = a.n_right;
    free(a.cal);
    free(a.raw);
    return rc;
}
