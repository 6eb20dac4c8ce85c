/*
 * eval_verify.c - the verifier's confidence on every answer of a tier
 * (see eval_verify.h). The lines are parsed a second time with
 * ks_outcome_parse, the verifier's own reader, so eval scores exactly the
 * fields the trainer and the worker see.
 */
#include "eval_verify.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "jsonl.h"
#include "learn/lr.h"
#include "learn/verify.h"

#include "base/banned.h"

static int score_lines(struct ev_set *set,
                       const char *path,
                       const struct ks_lr_model *m,
                       size_t k,
                       size_t src,
                       const struct vpatterns *pats,
                       bool missing)
{
    struct line_reader lr;
    cJSON *root = NULL;
    char errstr[256];
    size_t i = 0;
    int r, rc = -1;

    if (jsonl_open(&lr, path) != 0) {
        return -1;
    }
    while ((r = jsonl_next(&lr, &root)) > 0 && i < set->n) {
        struct ks_outcome o;
        const struct ks_outcome_tier *ot;

        if (ks_outcome_parse(root, &o, errstr, sizeof(errstr)) != 0) {
            jsonl_bad(&lr, errstr);
            goto out;
        }
        ot = ks_outcome_tier(&o, set->tiers[k]);
        if (ot && !(missing && !isnan(set->tasks[i].t[k].conf[src]))) {
            struct ks_verify_input in;

            ks_verify_input_from_outcome(&o, ot, &in);
            in.answer_pattern = vpatterns_for(pats, o.type);
            set->tasks[i].t[k].conf[src] = ks_verify_score(m, &in);
        }
        ks_outcome_fini(&o);
        cJSON_Delete(root);
        root = NULL;
        i++;
    }
    rc = r < 0 ? -1 : 0;
out:
    cJSON_Delete(root);
    jsonl_close(&lr);
    return rc;
}

int ev_verifier_fill(struct ev_set *set,
                     const char *path,
                     const char *model_path,
                     const char *tier,
                     const struct vpatterns *pats,
                     bool missing)
{
    char errstr[512];
    struct ks_lr_model *m;
    int k = ev_tier_index(set, tier), src = ev_src_index(set, "verifier");
    int rc;

    if (k < 0) {
        fprintf(stderr, "kascade: --verifier-tier %s is not a tier of %s\n",
                tier, path);
        return -1;
    }
    if (src < 0) {
        if (set->n_src == EV_MAX_SOURCES) {
            fprintf(stderr, "kascade: too many confidence sources\n");
            return -1;
        }
        src = (int)set->n_src++;
        ks_strlcpy(set->src[src], "verifier", EV_NAME_MAX);
    }
    m = ks_lr_load(model_path, errstr, sizeof(errstr));
    if (!m) {
        fprintf(stderr, "kascade: %s\n", errstr);
        return -1;
    }
    if (strcmp(ks_lr_kind(m), "verifier") != 0) {
        fprintf(stderr, "kascade: %s is a %s model, not a verifier\n",
                model_path, ks_lr_kind(m));
        ks_lr_destroy(m);
        return -1;
    }
    rc = score_lines(set, path, m, (size_t)k, (size_t)src, pats, missing);
    ks_lr_destroy(m);
    return rc;
}
