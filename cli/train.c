/*
 * train.c - `kascade train` and `kascade eval`: fit the learned difficulty
 * score (kind router) or the triage classifier from labelled JSONL, and
 * report what routing by the score would cost and gain.
 *
 * Input is one JSON object per line; blank lines are skipped; fields other
 * than the ones read are ignored. A bad line (not JSON, a missing or
 * mistyped field, a bad label) stops the command with its line number and
 * exit status 1: a silently skipped line would change the model.
 *
 * eval ranks the test set by the calibrated score (ties by the raw margin,
 * then by line) and sends the top k tasks to the strong model, for every
 * k. accuracy(k) = (strong answers right in the top k + weak answers right
 * in the rest) / n. CPT(x), after RouteLLM, is the smallest share of strong
 * calls k/n with accuracy(k) >= weak + x (strong - weak); APGR is the mean
 * over k/n in [0, 1] (trapezoid) of (accuracy(k) - weak) / (strong - weak).
 * eval --kind triage reports accuracy on labelled lines, a reliability
 * table, and the share kept and its accuracy when answers below a
 * confidence threshold escalate. Router labels may also be false/true.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "cli.h"
#include "jsonl.h"
#include "learn/lr.h"
#include "train_verify.h"

#include "base/banned.h"

static const char train_usage[] =
    "usage: kascade train --kind router|triage|verifier -i FILE.jsonl -o "
    "MODEL\n"
    "         [--holdout 0.2] [--epochs 10] [--bits 18] [--seed 1]\n"
    "         [--lr 0.5] [--l2 1e-5 (verifier: 1e-3)]\n"
    "         verifier: --tier NAME [--answer-pattern TYPE=REGEX]... "
    "[--test FILE]\n"
    "  router lines: {\"input\": \"...\", \"label\": 0|1}  (1: the cheaper "
    "tier fails)\n"
    "    with \"type\" (and \"metadata\" values of each --metadata-key K) as "
    "features,\n"
    "    starting from the per-type failure rate\n"
    "  triage lines: {\"input\": \"...\", \"label\": \"billing\"}\n"
    "  verifier lines: labelled outcomes, {\"type\": \"math\", \"prompt\": "
    "\"...\",\n"
    "    \"tiers\": {\"NAME\": {\"answer\": \"...\", \"correct\": true, "
    "\"finish_reason\": \"stop\", ...}}}\n"
    "    (docs/design.md section 6); the model scores P(NAME's answer is "
    "right).\n"
    "    TYPE * in --answer-pattern applies to every type without its own; "
    "use\n"
    "    the config's answer_patterns, so training sees what the worker "
    "sees.\n";

/* Reads the training file into t. Returns 0 or -1 (reported). */
/* A router line's task: its type and metadata (lr.h struct ks_lr_task).
 * Returns 0, 1 when the line has neither, -1 on a bad field (reported).
 * kv is a heap array the caller frees. */
static int line_task(const struct line_reader *lr,
                     const cJSON *root,
                     struct ks_lr_task *task,
                     struct ks_kv **kv)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    const cJSON *it;

    *kv = NULL;
    task->type = NULL;
    task->n_meta = 0;
    if (type && !cJSON_IsString(type)) {
        jsonl_bad(lr, "\"type\" must be a string");
        return -1;
    }
    if (md && !cJSON_IsObject(md)) {
        jsonl_bad(lr, "\"metadata\" must be an object of strings");
        return -1;
    }
    task->type = type ? type->valuestring : NULL;
    *kv = ks_xcalloc((size_t)cJSON_GetArraySize(md) + 1, sizeof(**kv));
    cJSON_ArrayForEach(it, md) {
        if (!cJSON_IsString(it)) {
            jsonl_bad(lr, "metadata values must be strings");
            return -1;
        }
        (*kv)[task->n_meta].key = it->string;
        (*kv)[task->n_meta++].value = it->valuestring;
    }
    task->meta = *kv;
    return type || task->n_meta ? 0 : 1;
}

static int train_read(struct ks_lr_trainer *t, const char *path, bool router)
{
    struct line_reader lr;
    cJSON *root = NULL;
    char errstr[256];
    int r, rc = -1;

    if (jsonl_open(&lr, path) != 0) {
        return -1;
    }
    while ((r = jsonl_next(&lr, &root)) > 0) {
        const cJSON *in = jsonl_input(&lr, root);
        const cJSON *lab = cJSON_GetObjectItemCaseSensitive(root, "label");
        const char *label = NULL;

        if (!in) {
            goto out;
        }
        if (router && cJSON_IsNumber(lab) &&
            (lab->valuedouble == 0 || lab->valuedouble == 1)) {
            label = lab->valuedouble == 1 ? "1" : "0";
        } else if (router && cJSON_IsBool(lab)) {
            label = cJSON_IsTrue(lab) ? "1" : "0";
        } else if (!router && cJSON_IsString(lab)) {
            label = lab->valuestring;
        } else {
            jsonl_bad(&lr, router ? "\"label\" must be 0 or 1"
                                  : "\"label\" must be a string");
            goto out;
        }
        if (router) {
            struct ks_lr_task task;
            struct ks_kv *kv;
            int tr = line_task(&lr, root, &task, &kv), ar;

            task.text = in->valuestring;
            task.len = strlen(in->valuestring);
            ar = tr < 0    ? -1
                 : tr == 0 ? ks_lr_trainer_add_task(t, &task, label, errstr,
                                                    sizeof(errstr))
                           : ks_lr_trainer_add(t, task.text, task.len, label,
                                               errstr, sizeof(errstr));
            free(kv);
            if (ar != 0) {
                if (tr >= 0) {
                    jsonl_bad(&lr, errstr);
                }
                goto out;
            }
        } else if (ks_lr_trainer_add(t, in->valuestring,
                                     strlen(in->valuestring), label, errstr,
                                     sizeof(errstr)) != 0) {
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

/* The verifier on a test file: how well its P(right) ranks answers. */
static int print_test(const struct ks_lr_model *m,
                      const char *test,
                      const char *tier,
                      const struct vpatterns *pats)
{
    double auc, auc_raw;
    size_t n, right;

    if (train_verify_test(m, test, tier, pats, &auc, &auc_raw, &n, &right) !=
        0) {
        return -1;
    }
    printf("test %s: %zu answers of tier %s, %zu right; AUC of P(right) "
           "%.4f (raw margin %.4f)\n",
           test, n, tier, right, auc, auc_raw);
    return 0;
}

int cli_train(int argc, char **argv)
{
    struct ks_lr_train_opts o;
    struct ks_lr_trainer *t = NULL;
    struct ks_lr_model *m = NULL;
    struct ks_lr_report rep;
    bool verifier, l2_set = false;
    const char *keys[KS_LR_MAX_META_KEYS];
    size_t n_keys = 0;
    const char *in = NULL, *out = NULL, *tier = NULL, *test = NULL;
    struct vpatterns pats = {0};
    size_t skipped = 0;
    char errstr[512];
    int64_t v;
    int status = 2;

    ks_lr_train_opts_init(&o);
    o.kind = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(train_usage, stdout);
            return 0;
        }
        if (!val) {
            goto usage;
        }
        i++;
        if (strcmp(a, "--kind") == 0) {
            o.kind = val;
        } else if (strcmp(a, "-i") == 0) {
            in = val;
        } else if (strcmp(a, "-o") == 0) {
            out = val;
        } else if (strcmp(a, "--metadata-key") == 0) {
            if (n_keys == KS_LR_MAX_META_KEYS) {
                fprintf(stderr, "kascade train: at most %d --metadata-key\n",
                        KS_LR_MAX_META_KEYS);
                goto out;
            }
            keys[n_keys++] = val;
        } else if (strcmp(a, "--tier") == 0) {
            tier = val;
        } else if (strcmp(a, "--test") == 0) {
            test = val;
        } else if (strcmp(a, "--answer-pattern") == 0) {
            if (vpatterns_add(&pats, val) != 0) {
                goto out;
            }
        } else if (strcmp(a, "--holdout") == 0) {
            if (cli_parse_dbl(a, val, &o.holdout) != 0) {
                goto out;
            }
        } else if (strcmp(a, "--lr") == 0) {
            if (cli_parse_dbl(a, val, &o.lr) != 0) {
                goto out;
            }
        } else if (strcmp(a, "--l2") == 0) {
            l2_set = true;
            if (cli_parse_dbl(a, val, &o.l2) != 0) {
                goto out;
            }
        } else if (strcmp(a, "--epochs") == 0) {
            if (cli_parse_u64(a, val, 1, 1000, &v) != 0) {
                goto out;
            }
            o.epochs = (unsigned)v;
        } else if (strcmp(a, "--bits") == 0) {
            if (cli_parse_u64(a, val, KS_LR_MIN_BITS, KS_LR_MAX_BITS, &v) !=
                0) {
                goto out;
            }
            o.bits = (unsigned)v;
        } else if (strcmp(a, "--seed") == 0) {
            if (cli_parse_u64(a, val, 0, INT64_MAX, &v) != 0) {
                goto out;
            }
            o.seed = (uint64_t)v;
        } else {
            goto usage;
        }
    }
    verifier = o.kind && strcmp(o.kind, "verifier") == 0;
    if (!o.kind || !in || !out || verifier != (tier != NULL) ||
        (!verifier && (pats.n > 0 || test))) {
        goto usage;
    }
    o.meta_keys = keys;
    o.n_meta_keys = n_keys;
    if (verifier && !l2_set) {
        /* dozens of dense checks beside sparse n-grams: a stronger
         * penalty keeps the n-grams from memorising the training part */
        o.l2 = 1e-3;
    }
    t = ks_lr_trainer_new(&o, errstr, sizeof(errstr));
    if (!t) {
        fprintf(stderr, "kascade train: %s\n", errstr);
        goto out;
    }
    status = 1;
    if (verifier ? train_verify_read(t, in, tier, &pats, &skipped) != 0
                 : train_read(t, in, strcmp(o.kind, "router") == 0) != 0) {
        goto out;
    }
    if (skipped > 0) {
        printf("skipped %zu lines without tier %s's answer and "
               "correctness\n",
               skipped, tier);
    }
    m = ks_lr_trainer_fit(t, &rep, errstr, sizeof(errstr));
    if (!m) {
        fprintf(stderr, "kascade train: %s\n", errstr);
        goto out;
    }
    printf("%s model: %zu examples (%zu trained on, %zu held out), %zu "
           "labels, %u bits, %u epochs, seed %llu\n",
           ks_lr_kind(m), rep.n_train + rep.n_holdout, rep.n_train,
           rep.n_holdout, ks_lr_n_labels(m), o.bits, o.epochs,
           (unsigned long long)o.seed);
    printf("training-part accuracy  %.4f\n", rep.train_accuracy);
    if (rep.n_holdout > 0) {
        printf("held-out accuracy       %.4f (always the majority label: "
               "%.4f)\n",
               rep.holdout_accuracy, rep.holdout_base);
        printf("held-out log loss       %.4f raw, %.4f calibrated\n",
               rep.logloss_raw, rep.logloss_cal);
        if (strcmp(ks_lr_kind(m), "triage") != 0) {
            if (strcmp(rep.calibration, "temperature") == 0) {
                printf("Platt scaling collapsed (slope %.4g on the held-out "
                       "part: a constant score);\n"
                       "fell back to temperature scaling, T %.4f\n",
                       rep.platt_fitted_a, 1 / rep.platt_a);
            } else {
                printf("Platt scaling           a %.4f, c %.4f\n", rep.platt_a,
                       rep.platt_c);
            }
            cli_print_bins(&rep, verifier ? "P(answer right) against the share "
                                            "right"
                                          : "P(cheaper tier fails) against "
                                            "the share that failed");
        } else {
            printf("temperature             %.4f\n", rep.temperature);
            cli_print_bins(&rep, "top label's probability against the share "
                                 "right");
        }
    } else {
        printf("nothing held out: no calibration, no held-out figures\n");
    }
    if (test && print_test(m, test, tier, &pats) != 0) {
        goto out;
    }
    if (ks_lr_save(m, out, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "kascade train: %s\n", errstr);
        goto out;
    }
    printf("wrote %s\n", out);
    status = 0;
out:
    ks_lr_destroy(m);
    ks_lr_trainer_destroy(t);
    vpatterns_fini(&pats);
    return status;

usage:
    fputs(train_usage, stderr);
    vpatterns_fini(&pats);
    return 2;
}
