/*
 * guard.c - what stands between a job and its provider: the provider's
 * circuit breaker (circuit.c) and its fleet-wide rate limit
 * (common/ratelimit.c).
 *
 * Circuits: a call that fails the provider (timeout, connection failure,
 * 429, 5xx, a 200 with a malformed body) counts against it; any other
 * answer, a 4xx included, shows the provider is up. While a provider's
 * circuit is open its jobs go to the next provider of the tier at once,
 * without waiting on it. When every provider left to a job is open, the
 * job waits (JOB_BACKOFF) for the earliest end of a cool-down; if by then
 * they have all opened again (the probe failed), the job ends like one
 * whose providers are exhausted.
 *
 * Rate limits: a call of a provider with rpm or tpm is admitted by one
 * Redis script for the whole pool, counting one request and the call's
 * estimated tokens (prompt bytes / 4 plus max_output_tokens, the way
 * providers count a request against their own tpm); a job's turn of
 * several calls (agree.c) is admitted once with the tokens of them all,
 * counted as one request. Admission comes
 * last, after the circuit choice and the budget reservation (job.c), so
 * a job that waits for its budget takes no slot; and an admitted call
 * that does not start gives its slot back (guard_release). A refused job
 * waits exactly as long as the script says. With Redis unreachable the
 * budget's choice applies: fail closed holds the job, budget.fail_open
 * lets the call go.
 */
#include "guard.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agree.h"
#include "base/log.h"
#include "base/util.h"
#include "redis/ratelimit.h"

#include "base/banned.h"

#define BACKOFF_BASE_MS 200
#define BACKOFF_MAX_MS  10000

#define PROBE_MARGIN_MS 5000 /* a probe is given up after its timeout + */

void guard_init(struct worker *w)
{
    struct guard_state *g = &w->guard;
    size_t n = w->tier->n_providers;

    g->m_circuit = ks_metrics_family(
        w->metrics, "kascade_circuit_state",
        "Circuit breaker of each provider: 0 closed, 1 open, 2 half-open.",
        KS_METRIC_GAUGE, "tier,provider");
    g->m_rate_holds = ks_metrics_family(
        w->metrics, "kascade_ratelimit_holds_total",
        "Calls held back by the provider's fleet-wide rpm/tpm limit (or "
        "by Redis being unreachable while it is checked, fail closed).",
        KS_METRIC_COUNTER, "tier,provider");
    g->circuits = ks_xcalloc(n, sizeof(*g->circuits));
    g->shown = ks_xcalloc(n, sizeof(*g->shown));
    for (size_t i = 0; i < n; i++) {
        const struct ks_provider_cfg *prov = &w->tier->providers[i];

        circuit_init(&g->circuits[i], prov->circuit_failures,
                     prov->circuit_cooldown_ms,
                     prov->timeout_ms + PROBE_MARGIN_MS);
        ks_metrics_set(g->m_circuit, 0, w->tier->name, prov->model);
    }
}

void guard_fini(struct worker *w)
{
    free(w->guard.circuits);
    free(w->guard.shown);
}

/* Logs and exports provider i's state when it changed. */
static void show_state(struct worker *w, size_t i)
{
    struct guard_state *g = &w->guard;
    const struct circuit *c = &g->circuits[i];
    const struct ks_provider_cfg *prov = &w->tier->providers[i];

    if (c->state == g->shown[i]) {
        return;
    }
    switch (c->state) {
    case CIRCUIT_OPEN:
        ks_log_warn("worker",
                    "circuit of tier %s provider %zu (%s): %s -> open "
                    "for %" PRId64 " ms",
                    w->tier->name, i, prov->model,
                    circuit_state_str(g->shown[i]), c->cooldown_ms);
        break;
    default:
        ks_log_info("worker", "circuit of tier %s provider %zu (%s): %s -> %s",
                    w->tier->name, i, prov->model,
                    circuit_state_str(g->shown[i]),
                    circuit_state_str(c->state));
        break;
    }
    g->shown[i] = c->state;
    ks_metrics_set(g->m_circuit, (double)c->state, w->tier->name, prov->model);
}

/* The first provider from job->provider on whose circuit lets a call
 * through becomes the job's. */
static enum guard_verdict pick(struct worker *w, struct job *job)
{
    struct guard_state *g = &w->guard;
    int64_t now = ks_mono_ms(), earliest = INT64_MAX, at;
    uint64_t opened = 0;

    for (size_t i = (size_t)job->provider; i < w->tier->n_providers; i++) {
        bool ok = circuit_allow(&g->circuits[i], now, &at);

        show_state(w, i);
        if (ok) {
            if (i != (size_t)job->provider) {
                ks_log_debug("worker", "%s: circuit of %s is open: going to %s",
                             job->task->id,
                             w->tier->providers[job->provider].model,
                             w->tier->providers[i].model);
                job->provider = (int)i;
                job->attempt = 0;
            }
            job->circuit_seen = 0;
            return GUARD_GO;
        }
        opened += g->circuits[i].opened;
        earliest = at < earliest ? at : earliest;
    }
    if (job->circuit_seen && opened > job->circuit_seen) {
        return GUARD_EXHAUSTED;
    }
    if (!job->circuit_seen) {
        job->circuit_seen = opened;
    }
    job->due_ms = earliest;
    return GUARD_WAIT;
}

static bool rate_limited(const struct worker *w, const struct job *job)
{
    const struct ks_provider_cfg *prov = &w->tier->providers[job->provider];

    return prov->rpm > 0 || prov->tpm > 0;
}

/* A turn's calls are admitted together (ratelimit.h). */
_Static_assert(FANOUT_MAX <= KS_RATELIMIT_CALLS_MAX,
               "a turn of calls must fit one rate-limit admission");

static struct ks_ratelimit_request rate_request(const struct worker *w,
                                                const struct job *job)
{
    const struct ks_provider_cfg *prov = &w->tier->providers[job->provider];
    struct ks_ratelimit_request q = {
        w->tier->name,
        job->provider,
        prov->rpm,
        prov->tpm,
        (int64_t)agree_calls(w, job) *
                ks_price_call_tokens(w->tier, job->task, job->system) +
            agree_extra_output(w, job),
        (int)agree_calls(w, job)}; /* each call of the turn counts */

    return q;
}

/* What the admission's answer a means for the job. */
static enum guard_verdict admit_verdict(struct worker *w,
                                        struct job *job,
                                        const struct ks_ratelimit_answer *a)
{
    const struct ks_provider_cfg *prov = &w->tier->providers[job->provider];
    int64_t wait = a->wait_ms;

    if (a->err == KS_OK && a->admitted) {
        ks_strlcpy(job->rate_member, a->member, sizeof(job->rate_member));
        job->rate_provider = job->provider;
        return GUARD_GO;
    }
    if (a->err == KS_ERR_UPSTREAM || a->err == KS_ERR_INVALID) {
        return GUARD_ERROR; /* Redis answered: not a reason to fail open */
    }
    if (a->err != KS_OK && w->cfg->budget_fail_open) {
        return GUARD_GO; /* availability over the limit, as for budgets */
    }
    if (a->err != KS_OK) {
        ks_metrics_set_health(w->metrics, false,
                              "redis unreachable: model calls held");
        wait = REDIS_RETRY_MS;
    } else {
        ks_log_debug("worker", "%s: %s rate limit reached, wait %" PRId64 " ms",
                     job->task->id, prov->model, wait);
    }
    ks_metrics_add(w->guard.m_rate_holds, 1, w->tier->name, prov->model);
    job->due_ms = ks_mono_ms() + wait;
    return GUARD_WAIT;
}

enum guard_verdict guard_admit(struct worker *w, struct job *job)
{
    enum guard_verdict v = GUARD_GO;

    guard_admit_many(w, 1, &job, &v);
    return v;
}

void guard_admit_many(struct worker *w,
                      size_t n,
                      struct job *const *jobs,
                      enum guard_verdict *verdicts)
{
    struct ks_ratelimit_request *q = ks_xcalloc(n ? n : 1, sizeof(*q));
    struct ks_ratelimit_answer *a = ks_xcalloc(n ? n : 1, sizeof(*a));
    size_t *slot = ks_xcalloc(n ? n : 1, sizeof(*slot)), m = 0;

    for (size_t i = 0; i < n; i++) {
        verdicts[i] = GUARD_GO;
        if (rate_limited(w, jobs[i])) {
            q[m] = rate_request(w, jobs[i]);
            slot[m++] = i;
        }
    }
    if (m > 0) {
        ks_ratelimit_admit_many(w->rs, m, q, a);
    }
    for (size_t j = 0; j < m; j++) {
        verdicts[slot[j]] = admit_verdict(w, jobs[slot[j]], &a[j]);
    }
    free(slot);
    free(a);
    free(q);
}

enum guard_verdict guard_pick(struct worker *w, struct job *job)
{
    return pick(w, job);
}

void guard_release(struct worker *w, struct job *job)
{
    enum ks_err err;

    if (!job->rate_member[0]) {
        return;
    }
    err = ks_ratelimit_release(w->rs, w->tier->name, job->rate_provider,
                               job->rate_member);
    if (err != KS_OK) {
        /* It leaves the window within a minute anyway. */
        ks_log_warn("worker", "%s: rate-limit slot not given back (%s)",
                    job->task->id, ks_err_str(err));
    }
    job->rate_member[0] = '\0';
}

void guard_call_begin(struct worker *w, struct job *job)
{
    size_t i = (size_t)job->provider;

    job->rate_member[0] = '\0'; /* the slot is the call's now */
    job->circuit_epoch = circuit_begin(&w->guard.circuits[i], ks_mono_ms());
    show_state(w, i);
}

void guard_call_end(struct worker *w,
                    struct job *job,
                    const struct ks_model_reply *reply)
{
    size_t i = (size_t)job->provider;
    bool failed = ks_err_is_retriable(reply->err) ||
                  (reply->err == KS_ERR_UPSTREAM &&
                   (reply->http_status == 200 || reply->http_status == 0));

    if (circuit_record(&w->guard.circuits[i], job->circuit_epoch, !failed,
                       ks_mono_ms())) {
        show_state(w, i);
    }
}

/* Exponential backoff with full jitter, never below Retry-After. */
static int64_t backoff_ms(int attempt, int64_t retry_after_ms)
{
    int64_t cap = BACKOFF_BASE_MS << (attempt < 6 ? attempt : 6);
    int64_t d;

    if (cap > BACKOFF_MAX_MS) {
        cap = BACKOFF_MAX_MS;
    }
    d = cap / 2 + (int64_t)(random() % (cap / 2 + 1));
    return retry_after_ms > d ? retry_after_ms : d;
}

enum guard_retry guard_after_failure(struct worker *w,
                                     struct job *job,
                                     const struct ks_model_reply *reply)
{
    const struct ks_provider_cfg *prov = &w->tier->providers[job->provider];

    if (ks_err_is_retriable(reply->err) && job->attempt < prov->max_retries) {
        job->attempt++;
        job->due_ms =
            ks_mono_ms() + backoff_ms(job->attempt, reply->retry_after_ms);
        ks_log_info("worker", "%s: %s (%s), retry %d in %" PRId64 " ms",
                    job->task->id, prov->model, reply->detail, job->attempt,
                    job->due_ms - ks_mono_ms());
        return GUARD_RETRY;
    }
    if ((size_t)job->provider + 1 < w->tier->n_providers) {
        ks_log_warn("worker", "%s: %s failed (%s): falling back to %s",
                    job->task->id, prov->model, reply->detail,
                    w->tier->providers[job->provider + 1].model);
        job->provider++;
        job->attempt = 0;
        return GUARD_FALLBACK;
    }
    return GUARD_GIVE_UP;
}
