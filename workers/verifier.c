/*
 * verifier.c - a tier's verifier confidence (verifier.h). The model sees
 * what kascade train --kind verifier saw: the task's type and text, the
 * answer, its finish reason, the call's output limit and tokens, the
 * type's answer_pattern (config answer_patterns), the output_schema, the
 * logprob mean when the provider gave one and the self-reported
 * confidence when the tier counts it; of these, the model takes only the
 * signals its training outcomes had (learn/verify.h), so a worker scores
 * an answer exactly as `kascade eval --verifier` does from the same
 * outcome (test_verifier_parity). One calibrated model combines them;
 * the parts are reported beside it so a reader can see what it was made
 * of. The escalate flag and a failed schema stay final (confidence 0):
 * the verifier can judge an answer, not overrule the task's own rules.
 */
#include "verifier.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "config/pricing.h"
#include "learn/verify.h"

#include "base/banned.h"

struct verifier_set {
    const char **path; /* borrowed from the config */
    struct ks_lr_model **model;
    size_t n;
};

/* Loads path unless it is loaded already. Returns 0 or -1 (errstr). */
static int load_one(struct verifier_set *vs,
                    const char *tier,
                    const char *path,
                    char *errstr,
                    size_t errstr_size)
{
    struct ks_lr_model *m;
    char why[256];

    for (size_t i = 0; i < vs->n; i++) {
        if (strcmp(vs->path[i], path) == 0) {
            return 0;
        }
    }
    m = ks_lr_load(path, why, sizeof(why));
    if (m && strcmp(ks_lr_kind(m), "verifier") != 0) {
        snprintf(why, sizeof(why), "a %s model, not a verifier", ks_lr_kind(m));
        ks_lr_destroy(m);
        m = NULL;
    }
    if (!m) {
        snprintf(errstr, errstr_size, "tier '%s': verifier model %s: %s", tier,
                 path, why);
        return -1;
    }
    vs->path = ks_xrealloc(vs->path, (vs->n + 1) * sizeof(*vs->path));
    vs->model = ks_xrealloc(vs->model, (vs->n + 1) * sizeof(*vs->model));
    vs->path[vs->n] = path;
    vs->model[vs->n++] = m;
    return 0;
}

int verifier_open(struct worker *w, char *errstr, size_t errstr_size)
{
    const struct ks_tier_cfg *t = w->tier;
    struct verifier_set *vs;

    if (!t->verifier_model && t->n_verifier_models == 0) {
        return 0;
    }
    vs = ks_xcalloc(1, sizeof(*vs));
    w->verifiers = vs;
    if (t->verifier_model &&
        load_one(vs, t->name, t->verifier_model, errstr, errstr_size) != 0) {
        return -1;
    }
    for (size_t i = 0; i < t->n_verifier_models; i++) {
        if (load_one(vs, t->name, t->verifier_models[i].path, errstr,
                     errstr_size) != 0) {
            return -1;
        }
    }
    return 0;
}

void verifier_close(struct worker *w)
{
    struct verifier_set *vs = w->verifiers;

    if (!vs) {
        return;
    }
    for (size_t i = 0; i < vs->n; i++) {
        ks_lr_destroy(vs->model[i]);
    }
    free(vs->model);
    free(vs->path);
    free(vs);
    w->verifiers = NULL;
}

static const struct ks_lr_model *model_for(const struct worker *w,
                                           const char *type)
{
    const char *path = ks_config_verifier_model(w->tier, type);

    for (size_t i = 0; path && w->verifiers && i < w->verifiers->n; i++) {
        if (strcmp(w->verifiers->path[i], path) == 0) {
            return w->verifiers->model[i];
        }
    }
    return NULL;
}

/* The task's text as the verifier reads it: the input, then each message
 * on its own line (the router's score reads the same). Caller frees. */
static char *task_text(const struct ks_task *task)
{
    struct ks_buf text;
    char *s;

    ks_buf_init(&text);
    if (task->input) {
        ks_buf_append(&text, task->input, strlen(task->input));
    }
    for (size_t i = 0; i < task->n_messages; i++) {
        ks_buf_append(&text, "\n", text.len ? 1 : 0);
        ks_buf_append(&text, task->messages[i].content,
                      strlen(task->messages[i].content));
    }
    s = ks_buf_take(&text);
    return s ? s : ks_xstrdup("");
}

static void add_part(struct ks_answer *ans, const char *source, double v)
{
    if (ans->n_parts < KS_ANSWER_PARTS_MAX) {
        ans->parts[ans->n_parts].source = source;
        ans->parts[ans->n_parts++].value = v;
    }
}

bool verifier_judge(const struct worker *w,
                    const struct job *job,
                    const struct ks_model_reply *reply,
                    double agreement,
                    struct ks_answer *ans)
{
    const struct ks_task *task = job->task;
    const struct ks_lr_model *m;
    struct ks_verify_input in = {0};
    char *prompt;
    double alone, v;
    uint32_t used;

    if (ans->decided || !(m = model_for(w, task->type))) {
        return false;
    }
    prompt = task_text(task);
    in.type = task->type;
    in.prompt = prompt;
    in.answer = reply->content ? reply->content : "";
    in.finish_reason = reply->stop_reason;
    in.max_output_tokens = ks_price_max_output(w->tier, task);
    in.output_tokens = reply->output_tokens;
    in.answer_pattern = ks_config_answer_pattern(w->cfg, task->type);
    in.output_schema = task->output_schema;
    alone = ks_verify_score(m, &in);
    in.logprobs.present = reply->has_logprobs;
    in.logprobs.mean = reply->mean_logprob;
    in.logprobs.min = NAN;
    in.logprobs.share_low = NAN;
    in.has_self_report = ans->self_report >= 0;
    in.self_report = ans->self_report;
    in.has_agreement = agreement >= 0;
    in.agreement = agreement;
    v = ks_verify_score(m, &in);
    used = ks_verify_input_signals(&in) & ks_verify_model_signals(m);
    free(prompt);

    /* A part is a signal the model took in: one it was not trained with
     * is left out of the score (learn/verify.h), so not reported. */
    ans->n_parts = 0;
    if (ans->logprob >= 0 && (used & KS_VSIG_LOGPROBS)) {
        add_part(ans, "logprob", ans->logprob);
    }
    if (ans->self_report >= 0 && (used & KS_VSIG_SELF_REPORT)) {
        add_part(ans, "self_report", ans->self_report);
    }
    if (task->output_schema) {
        add_part(ans, "schema", 1); /* it passed, or it would be decided */
    }
    if (agreement >= 0 && (used & KS_VSIG_AGREEMENT)) {
        add_part(ans, "agreement", agreement);
    }
    ans->confidence = v;
    if (ans->n_parts == 0) {
        ans->source = "verifier";
        return true;
    }
    add_part(ans, "verifier", alone);
    ans->source = "combined";
    return true;
}
