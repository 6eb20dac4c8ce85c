/*
 * agree.c - agreement between k answers of one tier (agree.h). A job's
 * turn asks for every answer it still misses: with a supports_n provider
 * in one call asking for them all (its reservation counts each one's
 * output), else in one call per answer, in flight together (fanout.c),
 * as many as the tier's free call slots take. The turn is reserved once
 * for all its calls (agree_ask, agree_calls, agree_extra_output size the
 * reservation and the rate estimate) and settled once with their summed
 * charge (job_call.c); answers a turn did not bring (a provider that sent
 * fewer, a call that failed, no slot) are asked for in the next. The
 * Result's usage and cost are the sums over every call. The
 * final answers are extracted per type as the verifier does (the type's
 * answer_pattern, the output_schema's JSON field, an answer marker, the last
 * number, else the whole text). With a verifier for the type, the share
 * agreeing is one of the verifier model's inputs (source "combined", part
 * "agreement"); without one, the share is the confidence as is (source
 * "agreement", not calibrated).
 */
#include "agree.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "learn/verify.h"
#include "verifier.h"

#include "base/banned.h"

struct agree_state {
    char **content; /* samples' answers, owned */
    size_t n;
    size_t lp_index; /* the sample the last reply's logprobs describe */
    int64_t in_tokens, out_tokens;
};

/* The answers the job still needs: samples minus those it has (1 when
 * the tier takes one). */
static unsigned missing(const struct worker *w, const struct job *job)
{
    int k = w->tier->samples;
    size_t have = job->agree ? job->agree->n : 0;

    if (k <= 1 || have >= (size_t)k) {
        return 1;
    }
    return (unsigned)((size_t)k - have);
}

void agree_plan(const struct worker *w,
                const struct job *job,
                size_t slots,
                unsigned *calls,
                unsigned *ask)
{
    unsigned want = missing(w, job);

    if (w->tier->samples <= 1 || w->tier->providers[job->provider].supports_n) {
        *calls = 1; /* one call asks for every answer missing ("n") */
        *ask = want;
        return;
    }
    /* One call per answer, as many as the free call slots take (at least
     * one: the caller has one); the rest go in the next turn. */
    *calls = want;
    if (slots < *calls) {
        *calls = slots > 0 ? (unsigned)slots : 1;
    }
    if (*calls > FANOUT_MAX) {
        *calls = FANOUT_MAX;
    }
    *ask = *calls;
}

/* The turn's shape: as planned, else as it would be with every slot. */
static void shape(const struct worker *w,
                  const struct job *job,
                  unsigned *calls,
                  unsigned *ask)
{
    if (job->fan.n_calls > 0) {
        *calls = job->fan.n_calls;
        *ask = job->fan.n_ask;
        return;
    }
    agree_plan(w, job, FANOUT_MAX, calls, ask);
}

unsigned agree_ask(const struct worker *w, const struct job *job)
{
    unsigned calls, ask;

    shape(w, job, &calls, &ask);
    return ask;
}

unsigned agree_calls(const struct worker *w, const struct job *job)
{
    unsigned calls, ask;

    shape(w, job, &calls, &ask);
    return calls;
}

int64_t agree_extra_output(const struct worker *w, const struct job *job)
{
    return ((int64_t)agree_ask(w, job) - (int64_t)agree_calls(w, job)) *
           ks_price_max_output(w->tier, job->task);
}

bool agree_wanting(const struct worker *w, const struct job *job)
{
    return w->tier->samples > 1 &&
           (!job->agree || job->agree->n < (size_t)w->tier->samples);
}

static void add_sample(struct agree_state *as, int k, const char *content)
{
    if (as->n < (size_t)k) {
        as->content[as->n++] = ks_xstrdup(content ? content : "");
    }
}

void agree_more(struct worker *w,
                struct job *job,
                const struct ks_model_reply *reply)
{
    int k = w->tier->samples;
    struct agree_state *as;

    if (k <= 1) {
        return;
    }
    if (!job->agree) {
        job->agree = ks_xcalloc(1, sizeof(*job->agree));
        job->agree->content = ks_xcalloc((size_t)k, sizeof(char *));
    }
    as = job->agree;
    as->lp_index = as->n;
    add_sample(as, k, reply->content);
    for (size_t i = 0; i < reply->n_more; i++) {
        add_sample(as, k, reply->more[i]);
    }
    /* usage covers every choice of the call */
    as->in_tokens += reply->input_tokens;
    as->out_tokens += reply->output_tokens;
}

bool agree_judge(struct worker *w,
                 struct job *job,
                 const struct ks_model_reply *last,
                 struct ks_answer *ans,
                 int64_t *in_tokens,
                 int64_t *out_tokens)
{
    struct agree_state *as = job->agree;
    struct ks_model_reply r;
    size_t maj;
    double share;

    if (!as || as->n < 2) {
        return false;
    }
    share =
        ks_verify_agreement((const char *const *)as->content, as->n,
                            ks_config_answer_pattern(w->cfg, job->task->type),
                            job->task->output_schema, &maj);
    r = *last;
    r.content = as->content[maj];
    /* the last call's logprobs describe its first choice only (the
     * majority's representative is its last member) */
    r.has_logprobs = last->has_logprobs && maj == as->lp_index;
    ks_answer_judge(job->task, &r, w->tier->self_report, ans);
    if (!verifier_judge(w, job, &r, share, ans) && !ans->decided) {
        ans->confidence = share;
        ans->source = "agreement";
        ans->n_parts = 0;
    }
    *in_tokens = as->in_tokens;
    *out_tokens = as->out_tokens;
    return true;
}

void agree_free(struct job *job)
{
    struct agree_state *as = job->agree;

    if (!as) {
        return;
    }
    for (size_t i = 0; i < as->n; i++) {
        free(as->content[i]);
    }
    free(as->content);
    free(as);
    job->agree = NULL;
}
