/*
 * worker_internal.h - the worker's state, shared by worker.c (the event
 * loop and the Kafka side) and job.c (one task's way through a call).
 */
#ifndef KASCADE_WORKERS_WORKER_INTERNAL_H
#define KASCADE_WORKERS_WORKER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

#include "base/metrics.h"
#include "circuit.h"
#include "config/config.h"
#include "config/pricing.h"
#include "kafka/client.h"
#include "kafka/offsets.h"
#include "kafka/produce.h"
#include "kafka/wake.h"
#include "learn/lr.h"
#include "llm/answer.h"
#include "llm/model.h"
#include "redis/budget.h"
#include "redis/ctx.h"
#include "redis/done.h"
#include "redis/store.h"
#include "wire/codec.h"

/* Redis unreachable: a job (or a settle) tries again after this. */
#define REDIS_RETRY_MS 1000

enum job_state {
    JOB_CHECK_DONE, /* look up kascade:done (retried while Redis is down) */
    JOB_WAIT_SLOT,  /* waiting for a call slot */
    JOB_CALLING,    /* HTTP request in flight */
    JOB_BACKOFF,    /* waiting to retry after a transient failure */
    JOB_ESCALATING, /* answered, handing on: context save retried */
    JOB_STORING,    /* outcome ready, waiting for its done record */
    JOB_PRODUCING,  /* records produced, waiting for acknowledgements */
};

/* The first byte of a done record: what the hop ended with. */
#define DONE_RESULT     'R' /* a Result, for results or reply_to */
#define DONE_ESCALATION 'E' /* an Escalation, for kascade.escalations */

struct job {
    struct worker *w;
    enum job_state state;
    rd_kafka_message_t *rkm; /* owned: the original, for the DLQ */
    struct ks_offset_ticket ticket;
    struct ks_task *task;
    enum ks_format fmt;
    uint32_t hop;
    int provider;          /* index into the tier's providers */
    int attempt;           /* retries of this provider so far */
    int64_t due_ms;        /* JOB_CHECK_DONE / JOB_BACKOFF: when to go on */
    int64_t start_ms;      /* first call started */
    int64_t call_start_ms; /* this call started */
    struct ks_model_call *call;
    struct ks_ctx *ctx; /* earlier attempts (hop > 0) or the hand-on's */
    char *system;       /* the system prompt of this job's calls */
    char *stash;        /* JOB_STORING: tag byte, then the outcome */
    size_t stash_len;   /* with the tag */
    const char *stash_topic;
    bool stash_warned; /* the Redis-down line was logged */
    bool pre_done;     /* batch_lookups answered: pre_value is the record */
    char *pre_value;   /* owned; NULL: no done record */
    size_t pre_len;
    int unacked; /* JOB_PRODUCING: records not yet acknowledged */
    struct ks_budget_reservation res; /* of the call in flight */
    bool has_res;           /* res is open: settle it when the call ends */
    bool unreserved;        /* fail-open call: its spend is replayed later */
    int holds;              /* reservations refused in a row (backoff) */
    const char *refused_by; /* static: "tier", "tenant" or "max_cost_usd" */
    bool abandoned; /* partition lost: free on the last ack, no commit */
    uint64_t circuit_epoch; /* of the call in flight (guard.c) */
    uint64_t circuit_seen;  /* waiting on open circuits: their open count
                               when the wait began; 0 when not waiting */
    struct job *prev, *next;
};

/* How a job ends, computed by finish.c or escalate.c and applied by job.c,
 * the only file that changes a job's state. The caller provides it; it is
 * the job code's afterwards (job.c frees value). */
struct outcome {
    bool hand_on;      /* hand on to a stronger tier: job->ctx has the
                          attempt; the rest is empty */
    bool abandon;      /* could not be encoded: nothing is committed */
    char tag;          /* DONE_*: stored before it is produced; 0: not */
    const char *topic; /* borrowed: outlives the job */
    char *value;       /* owned; NULL: nothing to produce */
    size_t len;
    const char *dlq_code;   /* static; NULL: no DLQ entry */
    const char *dlq_detail; /* borrowed from the caller of finish_* */
};

/* Settles and spend that could not reach Redis yet (spend.c). */
struct spend_debt {
    struct ks_budget_reservation res; /* res.id[0] == 0: no reservation */
    int64_t micro;
};

struct spend_state {
    int64_t gate_until_ms; /* no reservation is tried before this */
    int gate_holds;        /* refusals in a row behind open reservations */
    struct spend_debt *debts;
    size_t n_debts, cap_debts;
    struct spend_debt *pending; /* settles of this turn, not yet sent */
    size_t n_pending, cap_pending;
    int64_t next_tick_ms;
};

/* Circuit breakers and rate limits of the tier's providers (guard.c). */
struct guard_state {
    struct circuit *circuits;  /* one per provider */
    enum circuit_state *shown; /* the state last logged and exported */
    struct ks_metric_family *m_circuit, *m_rate_holds;
};

/* fetch.c: an assigned partition's own queue */
struct fetch_part {
    rd_kafka_queue_t *rkqu;
    char topic[KS_TOPIC_MAX];
    int32_t partition;
};

struct worker {
    const struct ks_config *cfg;
    const struct ks_tier_cfg *tier;
    rd_kafka_t *rk_cons;
    rd_kafka_t *rk_prod;
    rd_kafka_queue_t *rkqu_cons, *rkqu_prod;
    struct ks_kafka_wake wake;
    CURLM *multi;
    struct ks_store *rs;
    struct ks_offsets *offsets;
    struct ks_metrics *metrics;
    struct ks_metric_family *m_requests, *m_duration, *m_results, *m_dlq,
        *m_inflight, *m_spent, *m_remaining, *m_holds;
    struct spend_state spend;
    struct guard_state guard;
    char topic[KS_TOPIC_MAX];
    char results_topic[KS_TOPIC_MAX];
    char dlq_topic[KS_TOPIC_MAX];
    char esc_topic[KS_TOPIC_MAX];
    struct ks_lr_model **classifiers; /* per provider; NULL: not one */
    uint64_t *order_set;              /* order.c: keys claimed in this pass */
    size_t order_cap;
    struct fetch_part *parts; /* fetch.c: the assigned partitions */
    size_t n_parts, next_part;
    struct job *head, *tail; /* every job, oldest first */
    size_t n_jobs;
    size_t max_jobs; /* calls in flight plus the backlog waiting for one */
    size_t n_calls;  /* jobs in JOB_CALLING */
    bool paused;
    bool consuming; /* false while draining or inside a rebalance */
};

/* job.c */

/* Takes ownership of rkm: a job for it joins the worker's list, or the
 * message is dead-lettered when it cannot be decoded. */
void job_accept(struct worker *w, rd_kafka_message_t *rkm);

/* Moves every job whose time has come (slots free, backoff over, Redis
 * back). Returns the ms until the next job is due (or 100). */
int64_t job_advance_all(struct worker *w);

/* A curl transfer finished. */
void job_call_done(struct worker *w, CURL *easy, CURLcode rc);

/* A record produced by the job was acknowledged (ok), or is lost for
 * good (!ok: the offset stays uncommitted). */
void job_delivered(struct worker *w, struct job *job, bool ok);

/* A record produced by the job failed delivery: it is produced again, or,
 * for a reply_to topic that does not exist, the task is dead-lettered. */
void job_delivery_failed(struct worker *w,
                         struct job *job,
                         const rd_kafka_message_t *rkm);

/* Drops a job whose partition is gone (or at the drain deadline): its
 * call is cancelled, nothing is committed for it. */
void job_abandon(struct worker *w, struct job *job);

/* batch.c: Redis round trips for many jobs at once */

#define BATCH_MAX 256 /* jobs in one round trip */

/* Writes the done records (tag byte, then the outcome: job->stash) of
 * jobs[0..n), n <= BATCH_MAX, in one round trip; errs[i] is KS_OK once
 * job i's is stored. */
void batch_store(struct worker *w,
                 size_t n,
                 struct job *const *jobs,
                 enum ks_err *errs);

/* Looks up the done records of jobs[0..n), n <= BATCH_MAX, in one round
 * trip: values[i] (caller owns; NULL: no record) of lens[i] bytes.
 * Returns KS_OK, or KS_ERR_RETRY when Redis is down (every value NULL). */
enum ks_err batch_lookup(struct worker *w,
                         size_t n,
                         struct job *const *jobs,
                         char **values,
                         size_t *lens);

/* finish.c: how a job ends */

/* An answer (ans borrowed): a Result, or a hand-on to a stronger tier
 * when it is not confident enough (the attempt is then in job->ctx).
 * Fills out. */
void finish_answer(struct worker *w,
                   struct job *job,
                   const struct ks_answer *ans,
                   int64_t input_tokens,
                   int64_t output_tokens,
                   struct outcome *out);

/* The call answered: judged, then finish_answer. */
void finish_ok(struct worker *w,
               struct job *job,
               const struct ks_model_reply *reply,
               struct outcome *out);

/* No provider could answer: a hand-on below the top tier; on it a failed
 * Result for whoever waits and the original in the DLQ for replay (detail
 * borrowed into out->dlq_detail). Fills out. */
void finish_failed(struct worker *w,
                   struct job *job,
                   enum ks_err err,
                   const char *detail,
                   struct outcome *out);

/* The budget refused the call under the reject policy. Fills out. */
void finish_budget(struct worker *w,
                   const struct job *job,
                   struct outcome *out);

/* escalate.c: prompts, contexts and hand-ons */

/* Loads the context of an escalated job (hop > 0) and builds the job's
 * system prompt. Returns KS_OK, or KS_ERR_RETRY when Redis is down. */
enum ks_err escalate_prepare(struct worker *w, struct job *job);

/* (Re)builds job->system from the tier, the task and job->ctx. */
void escalate_build_system(struct worker *w, struct job *job);

/* Adds attempt a (copied) to job->ctx, made on the first hand-on.
 * Returns false when the task cannot be copied into a context. */
bool escalate_record(struct worker *w,
                     struct job *job,
                     const struct ks_ctx_attempt *a);

/* Saves job->ctx and fills out with the Escalation of its last attempt,
 * for kascade.escalations (out->abandon when it cannot be encoded).
 * Returns KS_OK, or KS_ERR_RETRY when Redis is down (out empty). */
enum ks_err escalate_hand_on(struct worker *w,
                             const struct job *job,
                             struct outcome *out);

/* classify.c: the in-process "classifier" provider */

/* Loads the triage model of every classifier provider of the tier.
 * Returns 0, or -1 with errstr (file, reason). */
int classify_open(struct worker *w, char *errstr, size_t errstr_size);
void classify_close(struct worker *w);

/* Is provider i of the tier the in-process classifier? */
bool classify_is(const struct worker *w, int provider);

/* Fills ans (caller finishes it with ks_answer_fini) with the
 * classifier's label for the job and its probability. */
void classify_run(struct worker *w,
                  const struct job *job,
                  struct ks_answer *ans);

/* fetch.c: taking tasks from the partitions' own queues */

/* Splits the queues of newly assigned partitions off the consumer queue. */
void fetch_assign(struct worker *w,
                  const rd_kafka_topic_partition_list_t *parts);

/* Drops the queues of revoked partitions (NULL: all). */
void fetch_revoke(struct worker *w,
                  const rd_kafka_topic_partition_list_t *parts);

/* Accepts messages round robin while the backlog has room; returns how
 * many. */
size_t fetch_pull(struct worker *w);

void fetch_fini(struct worker *w);

/* order.c: ordering "key" */

/* Starts a pass over the jobs (a new, empty set of claimed keys). */
void order_begin(struct worker *w);

/* May job go on? False when an older unfinished job has its key; else
 * claims the key for this pass. Always true when the tier is unordered. */
bool order_claim(struct worker *w, const struct job *job);

/* spend.c: the budget around each call (DESIGN.md section 7) */

enum spend_verdict {
    SPEND_GO,      /* reserved (or fail-open): call */
    SPEND_HOLD,    /* try again at job->due_ms: Redis down, or budget spent
                      under the downgrade/defer policy */
    SPEND_REFUSED, /* budget spent under the reject policy, or the call's
                      worst case is over the task's max_cost_usd */
    SPEND_WAIT,    /* the tier's budget is full of open reservations: the
                      job stays in JOB_WAIT_SLOT until the gate opens */
};

/* Milliseconds until the worker's reservation gate opens (0: open). */
int64_t spend_gate_ms(const struct worker *w);

/* Reserves the worst-case cost of the job's next call. */
enum spend_verdict spend_reserve(struct worker *w, struct job *job);

/* Settles the job's open reservation with the actual cost (0 when the
 * call failed); kept and retried when Redis cannot be reached. */
void spend_settle(struct worker *w, struct job *job, int64_t actual_micro);

/* Sends this turn's settles in one round trip (the ones Redis cannot
 * take are kept and retried by spend_tick). */
void spend_flush(struct worker *w);

/* Once a second: retries kept settles and fail-open spend, refreshes the
 * budget gauges. */
void spend_tick(struct worker *w);

void spend_fini(struct worker *w);

/* guard.c: per-provider circuit breakers and fleet-wide rate limits */

enum guard_verdict {
    GUARD_GO,        /* call job->provider (it may have moved on to the
                        next provider whose circuit lets calls through) */
    GUARD_WAIT,      /* hold until job->due_ms: every provider left has
                        its circuit open, or the rate limit is reached */
    GUARD_EXHAUSTED, /* every provider left stayed open past a probe */
};

/* Registers the metrics and closes every circuit. */
void guard_init(struct worker *w);

/* Before a call: picks the job's provider by circuit, then admits the
 * call under the provider's rpm/tpm (Redis down: budget.fail_open
 * decides). */
enum guard_verdict guard_before_call(struct worker *w, struct job *job);

/* The job's call started (after GUARD_GO, with nothing in between). */
void guard_call_begin(struct worker *w, struct job *job);

/* The job's call ended with reply: counts for or against its circuit. */
void guard_call_end(struct worker *w,
                    struct job *job,
                    const struct ks_model_reply *reply);

void guard_fini(struct worker *w);

#endif
