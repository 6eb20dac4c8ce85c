/*
 * spend.c - the budget around each model call.
 *
 * Before a call the worker reserves its worst case: every byte of the
 * prompt counted as a token (a BPE token is at least one byte) plus the
 * chat template, and the full max_output_tokens, at the provider's
 * prices. The actual cost is settled after the call, so many workers
 * together never push `spent` past a limit, and a reservation is never
 * smaller than what the call can cost.
 *
 * Redis unreachable: by default no call is made (fail closed) and the job
 * waits; with budget.fail_open the call goes ahead unreserved and its
 * spend is added to Redis when it is back. A settle that cannot reach
 * Redis is kept and retried, never dropped: the money was spent.
 *
 * Charged >= billed: a call whose request may have reached the provider
 * is settled at the provider's usage when the answer had it, else at its
 * reserved worst case (a timeout after the request was sent, a reset, a
 * malformed or truncated 200, a job abandoned mid-call); a call that never
 * went out (no connection, nothing sent) or that the provider answered with
 * an error status (4xx/5xx: not billed) settles at 0. The reservations
 * name this worker (w->spend.owner), whose liveness is renewed by the
 * once-a-second read: a worker that dies has them charged at worst case
 * by the next sweep, within KS_BUDGET_LIVE_MS.
 *
 * A tenant's refusal ends the task (budget_exceeded) at once, whatever the
 * tier's policy: a job held for its tenant would hold the tier's backlog
 * for every other tenant. The tier's refusal follows on_budget_exhausted.
 *
 * Redis answering with an error (WRONGTYPE on a budget key, a script
 * error, a garbage runtime limit) is not "unreachable": it would fail the
 * same way again, so the task is refused (SPEND_ERROR, job.c dead-letters
 * it), never called unreserved. A settle or fail-open spend that gets an
 * error reply is logged with its amount and dropped: retrying it for ever
 * would grow the worker's memory, not pay the money.
 */
#include "spend.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agree.h"
#include "base/log.h"
#include "base/util.h"

#include "base/banned.h"

#define HOLD_BUDGET_MS   5000
#define BATCH_RESERVE    256
#define HOLD_RESERVED_MS 100
#define TICK_MS          1000

/* The system prompt the call is made with (tier lane, instructions,
 * schema, earlier attempts) counts in full; a turn of several calls
 * (agree.c) counts each, a call asking for several answers each output. */
static int64_t worst_case_micro(const struct worker *w, const struct job *job)
{
    const struct ks_provider_cfg *prov = &w->tier->providers[job->provider];

    return (int64_t)agree_calls(w, job) *
               ks_price_worst_micro(w->tier, prov, job->task,
                                    job->system ? job->system : "") +
           ks_price_cost_micro(prov, 0, agree_extra_output(w, job));
}

static void debt_push(struct spend_debt **v,
                      size_t *n,
                      size_t *cap,
                      const struct ks_budget_reservation *res,
                      int64_t micro)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = ks_xrealloc(*v, *cap * sizeof(**v));
    }
    (*v)[*n].res = *res;
    (*v)[(*n)++].micro = micro;
}

static void add_debt(struct worker *w,
                     const struct ks_budget_reservation *res,
                     int64_t micro)
{
    debt_push(&w->spend.debts, &w->spend.n_debts, &w->spend.cap_debts, res,
              micro);
}

/* The tier's budget, read at most once per batch of reservations. */
struct tier_seen {
    bool read, ok;
    struct ks_budget_state st;
};

/* After the tier's refusal: is its budget really spent (spent + cost over
 * the limit), or only full of other calls' open reservations? */
static bool only_reserved_blocks(struct worker *w,
                                 int64_t cost,
                                 struct tier_seen *seen)
{
    int64_t now = ks_config_budget_now_ms(w->cfg);
    char day[9];

    if (!seen->read) {
        ks_budget_day(now, day);
        seen->read = true;
        seen->ok = ks_budget_read(w->rs, "tier", w->tier->name, day,
                                  w->tier->daily_budget_micro, now,
                                  &seen->st) == KS_OK;
    }
    return seen->ok && (seen->st.limit_micro == KS_BUDGET_NO_LIMIT ||
                        seen->st.spent_micro + cost <= seen->st.limit_micro);
}

static const struct ks_budget_owner *owner_of(struct worker *w)
{
    if (!w->spend.owner.id[0]) {
        ks_budget_owner_init(&w->spend.owner, KS_BUDGET_LIVE_MS);
    }
    return &w->spend.owner;
}

/* The reservation request of the job's next call (names borrowed from
 * the job and the config). */
static struct ks_budget_request request_of(struct worker *w,
                                           const struct job *job,
                                           int64_t cost)
{
    const char *tenant = job->task->tenant ? job->task->tenant : "";
    struct ks_budget_request q = {
        w->tier->name,
        w->tier->daily_budget_micro,
        tenant,
        *tenant ? ks_config_tenant_limit(w->cfg, tenant) : KS_BUDGET_NO_LIMIT,
        cost,
        w->tier->providers[job->provider].timeout_ms +
            w->cfg->reservation_margin_ms};

    return q;
}

/* Open reservations of calls in flight hold the tier's space: it frees as
 * they settle (or are charged, for a crashed worker's), so wait, backing
 * off to 2 s, rather than apply the policy. */
static enum spend_verdict hold_for_reserved(struct worker *w)
{
    int *holds = &w->spend.gate_holds;
    int64_t delay = HOLD_RESERVED_MS << (*holds < 5 ? *holds : 5);

    (*holds)++;
    ks_metrics_add(w->m_holds, 1, w->tier->name, "reserved");
    /* The tier's budget is shared by every job: close the gate for all of
     * them, so the oldest job gets the next room first. A backoff of each
     * job's own would let new jobs overtake old ones for ever, and an old
     * job holds back its partition's commits. */
    w->spend.gate_until_ms = ks_mono_ms() + delay;
    return SPEND_WAIT;
}

/* The budget is spent for today: a tenant's ends the task; the tier's
 * on_budget_exhausted policy rejects the task or holds it. */
static enum spend_verdict budget_spent(struct worker *w,
                                       struct job *job,
                                       const char *refused_by)
{
    bool by_tenant = refused_by && strcmp(refused_by, "tenant") == 0;

    ks_log_info("worker", "%s: %s budget spent for today", job->task->id,
                refused_by ? refused_by : "?");
    if (by_tenant || w->tier->on_budget_exhausted == KS_BUDGET_REJECT) {
        job->refused_by = refused_by;
        return SPEND_REFUSED;
    }
    ks_metrics_add(w->m_holds, 1, w->tier->name, "spent");
    job->due_ms = ks_mono_ms() + HOLD_BUDGET_MS;
    return SPEND_HOLD;
}

/* Redis unreachable: the call goes unreserved (fail open) or waits. A
 * reservation sent without an answer (Redis stalled past redis.timeout_ms)
 * may still be made when Redis runs it: it is settled at 0 once Redis is
 * back (a debt, pay_debts), so it neither holds room nor is charged at
 * its worst case when it expires; for an id Redis never saw, the settle
 * changes nothing. */
static enum spend_verdict redis_down(struct worker *w, struct job *job)
{
    if (job->res.id[0]) {
        add_debt(w, &job->res, 0);
        memset(&job->res, 0, sizeof(job->res));
    }
    if (w->cfg->budget_fail_open) {
        job->unreserved = true;
        return SPEND_GO;
    }
    ks_metrics_set_health(w->metrics, false,
                          "redis unreachable: model calls held");
    ks_metrics_add(w->m_holds, 1, w->tier->name, "redis");
    job->due_ms = ks_mono_ms() + REDIS_RETRY_MS;
    return SPEND_HOLD;
}

/* What the reservation's answer err means for the job. */
static enum spend_verdict verdict_of(struct worker *w,
                                     struct job *job,
                                     enum ks_err err,
                                     const char *refused_by,
                                     int64_t cost,
                                     struct tier_seen *seen)
{
    bool by_tenant = refused_by && strcmp(refused_by, "tenant") == 0;

    if (err == KS_OK) {
        job->has_res = true;
        job->holds = 0;
        w->spend.gate_holds = 0;
        ks_metrics_set_health(w->metrics, true, NULL);
        return SPEND_GO;
    }
    if (err == KS_ERR_BUDGET && !by_tenant &&
        only_reserved_blocks(w, cost, seen)) {
        return hold_for_reserved(w);
    }
    if (err == KS_ERR_BUDGET) {
        return budget_spent(w, job, refused_by);
    }
    if (err == KS_ERR_UPSTREAM) {
        return SPEND_ERROR;
    }
    if (err == KS_ERR_INVALID) {
        return SPEND_INVALID;
    }
    return redis_down(w, job);
}

/* The checks before any reservation: the gate, the task's own cap. Returns
 * the verdict when they decide it, else -1. */
static int precheck(struct worker *w, struct job *job, int64_t cost)
{
    job->has_res = job->unreserved = false;
    if (ks_mono_ms() < w->spend.gate_until_ms) {
        return SPEND_WAIT;
    }
    if (job->task->hints.max_cost_micro >= 0 &&
        cost > job->task->hints.max_cost_micro) {
        /* The task's own cap: its worst case must fit, like a budget's. */
        job->refused_by = "max_cost_usd";
        return SPEND_REFUSED;
    }
    return -1;
}

/* At most BATCH_RESERVE of them, in one round trip. */
static void reserve_chunk(struct worker *w,
                          size_t n,
                          struct job *const *jobs,
                          enum spend_verdict *verdicts)
{
    struct ks_budget_request q[BATCH_RESERVE];
    struct ks_budget_reservation res[BATCH_RESERVE];
    const char *refused_by[BATCH_RESERVE];
    enum ks_err errs[BATCH_RESERVE];
    int64_t cost[BATCH_RESERVE];
    struct job *sent[BATCH_RESERVE];
    size_t slot[BATCH_RESERVE], m = 0;
    struct tier_seen seen = {0};

    for (size_t i = 0; i < n; i++) {
        int pre;

        cost[i] = worst_case_micro(w, jobs[i]);
        pre = precheck(w, jobs[i], cost[i]);
        verdicts[i] = (enum spend_verdict)pre;
        if (pre < 0) {
            q[m] = request_of(w, jobs[i], cost[i]);
            sent[m] = jobs[i];
            slot[m++] = i;
        }
    }
    if (m == 0) {
        return;
    }
    ks_budget_reserve_many(w->rs, owner_of(w), m, q,
                           ks_config_budget_now_ms(w->cfg), res, refused_by,
                           errs);
    for (size_t j = 0; j < m; j++) {
        size_t i = slot[j];

        sent[j]->res = res[j];
        verdicts[i] =
            verdict_of(w, sent[j], errs[j], refused_by[j], cost[i], &seen);
    }
}

void spend_reserve_many(struct worker *w,
                        size_t n,
                        struct job *const *jobs,
                        enum spend_verdict *verdicts)
{
    /* Every job gets its verdict: a turn may bring more jobs than one
     * chunk (1,024 calls in flight), and a verdict left unset sent jobs
     * to the DLQ as `redis` or `invalid` (bench/worker.sh at 1024). */
    for (size_t i = 0; i < n; i += BATCH_RESERVE) {
        reserve_chunk(w, n - i < BATCH_RESERVE ? n - i : BATCH_RESERVE,
                      jobs + i, verdicts + i);
    }
}

/* Was the call's request sent (may it have reached the provider)? Not
 * when the connection never came up, or no byte of the request went out. */
static bool request_sent(CURL *easy, CURLcode rc)
{
    curl_off_t sent = 0;
    long size = 0;

    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return false;
    default:
        break;
    }
    if (curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &size) == CURLE_OK &&
        size > 0) {
        return true;
    }
    return curl_easy_getinfo(easy, CURLINFO_SIZE_UPLOAD_T, &sent) == CURLE_OK &&
           sent > 0;
}

int64_t spend_call_charge(struct worker *w,
                          const struct job *job,
                          CURL *easy,
                          CURLcode rc,
                          const struct ks_model_reply *reply)
{
    const struct ks_provider_cfg *prov = &w->tier->providers[job->provider];

    if (reply->err == KS_OK) {
        return ks_price_cost_micro(prov, reply->input_tokens,
                                   reply->output_tokens);
    }
    if (!request_sent(easy, rc)) {
        return 0; /* never went out: nothing to bill */
    }
    if (reply->http_status >= 400) {
        /* The provider answered with an error: not billed, unless the
         * answer carried usage. */
        return reply->input_tokens > 0 || reply->output_tokens > 0
                   ? ks_price_cost_micro(prov, reply->input_tokens,
                                         reply->output_tokens)
                   : 0;
    }
    /* Sent, and no usable answer (timeout, reset, malformed or truncated
     * 200): it may have been billed in full. */
    return spend_worst_case(w, job);
}

int64_t spend_worst_case(struct worker *w, const struct job *job)
{
    /* the turn's calls each ask for one answer: equal parts */
    return (job->has_res ? job->res.amount_micro : worst_case_micro(w, job)) /
           agree_calls(w, job);
}

void spend_settle(struct worker *w, struct job *job, int64_t actual_micro)
{
    struct ks_budget_reservation open = {0};
    int64_t now = ks_config_budget_now_ms(w->cfg);

    if (job->unreserved) {
        /* Fail-open call: record the spend for replay. */
        ks_budget_day(now, open.day);
        ks_strlcpy(open.tier, w->tier->name, sizeof(open.tier));
        ks_strlcpy(open.tenant, job->task->tenant ? job->task->tenant : "",
                   sizeof(open.tenant));
        if (actual_micro > 0) {
            add_debt(w, &open, actual_micro);
        }
        job->unreserved = false;
        return;
    }
    if (!job->has_res) {
        return;
    }
    job->has_res = false;
    /* Settled with the others of this turn, in one round trip. */
    debt_push(&w->spend.pending, &w->spend.n_pending, &w->spend.cap_pending,
              &job->res, actual_micro);
}

void spend_collect(struct worker *w)
{
    struct spend_state *s = &w->spend;

    if (s->n_sent == 0) {
        return;
    }
    ks_budget_settle_many_recv(w->rs, s->n_sent, s->sent_res, s->sent_micro,
                               s->sent_now_ms, s->sent_errs);
    for (size_t i = 0; i < s->n_sent; i++) {
        enum ks_err err = s->sent_errs[i];

        if (err == KS_ERR_UPSTREAM || err == KS_ERR_INVALID) {
            ks_log_error("worker",
                         "settle %s of %" PRId64 " micro-USD refused by "
                         "redis (%s): dropped",
                         s->sent_res[i].id, s->sent_micro[i],
                         ks_store_last_error(w->rs));
        } else if (err != KS_OK) {
            ks_log_warn("worker",
                        "settle %s of %" PRId64 " micro-USD kept for retry "
                        "(redis unreachable)",
                        s->sent_res[i].id, s->sent_micro[i]);
            add_debt(w, &s->sent_res[i], s->sent_micro[i]);
        }
    }
    s->n_sent = 0;
    free(s->sent_errs);
    free(s->sent_micro);
    free(s->sent_res);
    s->sent_errs = NULL;
    s->sent_micro = NULL;
    s->sent_res = NULL;
}

void spend_flush(struct worker *w)
{
    struct spend_state *s = &w->spend;
    size_t n = s->n_pending;

    spend_collect(w); /* one deferred pipeline at a time */
    if (n == 0) {
        return;
    }
    s->sent_res = ks_xcalloc(n, sizeof(*s->sent_res));
    s->sent_micro = ks_xcalloc(n, sizeof(*s->sent_micro));
    s->sent_errs = ks_xcalloc(n, sizeof(*s->sent_errs));
    for (size_t i = 0; i < n; i++) {
        s->sent_res[i] = s->pending[i].res;
        s->sent_micro[i] = s->pending[i].micro;
    }
    s->n_sent = n;
    s->n_pending = 0;
    s->sent_now_ms = ks_config_budget_now_ms(w->cfg);
    /* Out now, replies read by the next spend_collect (or by whichever
     * store call comes first): Redis settles while the loop goes on, and
     * every command sent after these (the next reservations) sees them. */
    ks_budget_settle_many_send(w->rs, n, s->sent_res, s->sent_micro,
                               s->sent_now_ms, s->sent_errs);
}

/* Pays what could not reach Redis before; stops at the first failure. */
static void pay_debts(struct worker *w)
{
    struct spend_state *s = &w->spend;
    int64_t now = ks_config_budget_now_ms(w->cfg);
    size_t i = 0;

    for (; i < s->n_debts; i++) {
        struct spend_debt *d = &s->debts[i];
        enum ks_err err;

        if (d->res.id[0]) {
            err = ks_budget_settle(w->rs, &d->res, d->micro, now);
        } else {
            /* Fail-open spend: each part is cleared once it is paid. */
            err = KS_OK;
            if (d->res.tier[0]) {
                err = ks_budget_add_spent(w->rs, d->res.day, "tier",
                                          d->res.tier, d->micro);
                if (err == KS_OK) {
                    d->res.tier[0] = '\0';
                }
            }
            if (err == KS_OK && d->res.tenant[0]) {
                err = ks_budget_add_spent(w->rs, d->res.day, "tenant",
                                          d->res.tenant, d->micro);
            }
        }
        if (err == KS_ERR_UPSTREAM || err == KS_ERR_INVALID) {
            ks_log_error("worker",
                         "spend of %" PRId64 " micro-USD (tier '%s', tenant "
                         "'%s') refused by redis (%s): dropped",
                         d->micro, d->res.tier, d->res.tenant,
                         ks_store_last_error(w->rs));
            continue;
        }
        if (err != KS_OK) {
            break;
        }
    }
    memmove(s->debts, s->debts + i, (s->n_debts - i) * sizeof(*s->debts));
    s->n_debts -= i;
}

/* The once-a-second round trip: renews this worker's liveness (so its
 * reservations stay open), sweeps the fleet's expired and orphaned
 * reservations, and reads the tier's budget for the gauges. */
static void refresh_gauges(struct worker *w)
{
    struct ks_budget_state st;
    char day[9];

    if (!w->spend.m_expired) {
        w->spend.m_expired = ks_metrics_family(
            w->metrics, "kascade_budget_expired_charged_usd",
            "Of today's spent: what reservations that were never settled "
            "(expired, or their worker died) were charged at worst case, "
            "fleet-wide, from the budget hash; resets with the budget day.",
            KS_METRIC_GAUGE, "tier");
    }
    ks_budget_day(ks_config_budget_now_ms(w->cfg), day);
    if (ks_budget_live_read(w->rs, owner_of(w), "tier", w->tier->name, day,
                            w->tier->daily_budget_micro, &st) != KS_OK) {
        return;
    }
    ks_metrics_set(w->m_spent, ks_micro_to_usd(st.spent_micro), w->tier->name);
    ks_metrics_set(w->spend.m_expired, ks_micro_to_usd(st.expired_micro),
                   w->tier->name);
    if (st.limit_micro != KS_BUDGET_NO_LIMIT) {
        int64_t left = st.limit_micro - st.spent_micro - st.reserved_micro;

        ks_metrics_set(w->m_remaining, ks_micro_to_usd(left > 0 ? left : 0),
                       w->tier->name);
    }
}

int64_t spend_gate_ms(const struct worker *w)
{
    int64_t left = w->spend.gate_until_ms - ks_mono_ms();

    return left > 0 ? left : 0;
}

void spend_tick(struct worker *w)
{
    int64_t now = ks_mono_ms();

    if (now < w->spend.next_tick_ms) {
        return;
    }
    w->spend.next_tick_ms = now + TICK_MS;
    if (w->spend.n_debts > 0) {
        pay_debts(w);
    }
    refresh_gauges(w);
}

/* At exit, what Redis still owes: the settles and fail-open spend that
 * could not be written. Reserved ones would be charged at worst case by
 * a sweep anyway, but fail-open spend has no reservation behind it: wait
 * for Redis up to the drain timeout, retrying at the store's backoff. */
static void pay_debts_at_exit(struct worker *w)
{
    int64_t deadline = ks_mono_ms() + w->cfg->drain_timeout_ms;
    bool said = false;

    pay_debts(w);
    while (w->spend.n_debts > 0 && ks_mono_ms() < deadline) {
        if (!said) {
            ks_log_warn("worker",
                        "%zu spend record(s) not written to redis yet: "
                        "waiting for it up to %" PRId64 " ms before exit",
                        w->spend.n_debts, w->cfg->drain_timeout_ms);
            said = true;
        }
        nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL);
        pay_debts(w);
    }
    for (size_t i = 0; i < w->spend.n_debts; i++) {
        const struct spend_debt *d = &w->spend.debts[i];

        ks_log_error("worker",
                     "spend of %" PRId64 " micro-USD (tier '%s', tenant '%s', "
                     "day %s%s) not written to redis before exit",
                     d->micro, d->res.tier, d->res.tenant, d->res.day,
                     d->res.id[0] ? "; its reservation is charged at worst "
                                    "case when it expires"
                                  : "; fail-open spend: lost to the budget");
    }
}

void spend_fini(struct worker *w)
{
    spend_flush(w);
    spend_collect(w);
    free(w->spend.pending);
    if (w->spend.n_debts > 0) {
        pay_debts_at_exit(w);
    }
    free(w->spend.debts);
}
