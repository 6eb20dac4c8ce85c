/*
 * classify.c - the "classifier" provider (docs/design.md section 6): the
 * in-process triage classifier of `kascade train --kind triage`, for
 * classification task types. No network call and no cost: the label is
 * the answer and its calibrated probability the confidence (source
 * "classifier"), so a label the model is unsure of escalates like any
 * other unconfident answer.
 */
#include "classify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "verifier.h"

#include "base/banned.h"

int classify_open(struct worker *w, char *errstr, size_t errstr_size)
{
    char why[256];

    w->classifiers = ks_xcalloc(w->tier->n_providers, sizeof(*w->classifiers));
    for (size_t i = 0; i < w->tier->n_providers; i++) {
        const struct ks_provider_cfg *p = &w->tier->providers[i];
        struct ks_lr_model *m;

        if (strcmp(p->kind, "classifier") != 0) {
            continue;
        }
        m = ks_lr_load(p->model_file, why, sizeof(why));
        if (m && strcmp(ks_lr_kind(m), "triage") != 0) {
            snprintf(why, sizeof(why), "a %s model, not a triage one",
                     ks_lr_kind(m));
            ks_lr_destroy(m);
            m = NULL;
        }
        if (!m) {
            snprintf(errstr, errstr_size,
                     "tier '%s' provider %zu: model_file %s: %s", w->tier->name,
                     i, p->model_file, why);
            return -1;
        }
        w->classifiers[i] = m;
    }
    /* The tier's other learned models: its verifiers. */
    return verifier_open(w, errstr, errstr_size);
}

void classify_close(struct worker *w)
{
    verifier_close(w);
    for (size_t i = 0; w->classifiers && i < w->tier->n_providers; i++) {
        ks_lr_destroy(w->classifiers[i]);
    }
    free(w->classifiers);
    w->classifiers = NULL;
}

bool classify_is(const struct worker *w, int provider)
{
    return w->classifiers && w->classifiers[provider] != NULL;
}

/* The text to classify: the input, else the last user message. */
static const char *text_of(const struct ks_task *t)
{
    if (t->input) {
        return t->input;
    }
    for (size_t i = t->n_messages; i > 0; i--) {
        if (strcmp(t->messages[i - 1].role, "user") == 0) {
            return t->messages[i - 1].content;
        }
    }
    return t->n_messages ? t->messages[t->n_messages - 1].content : "";
}

void classify_run(struct worker *w,
                  const struct job *job,
                  struct ks_answer *ans)
{
    const struct ks_lr_model *m = w->classifiers[job->provider];
    const char *text = text_of(job->task);
    double prob = 0;
    int label;

    *ans = (struct ks_answer){.source = "classifier", .reason = "ok"};
    label = ks_lr_classify(m, text, strlen(text), &prob);
    ans->output = ks_xstrdup(ks_lr_label(m, (size_t)label));
    ans->confidence = prob;
    ks_log_debug("worker", "%s: classified as '%s' (%.3f)", job->task->id,
                 ans->output, prob);
    ks_metrics_add(w->m_requests, 1, w->tier->name,
                   w->tier->providers[job->provider].model, "ok");
}
