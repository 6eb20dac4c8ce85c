/*
 * worker_internal.h - the worker's shared state: struct worker (owned by
 * worker.c, the event loop and the Kafka side), struct job (its state is
 * changed by the job module alone: job.c, job_life.c, job_call.c,
 * job_store.c) and struct outcome (how a job ends, computed by finish.c
 * and escalate.c, owned and applied by the job module). Each module's
 * functions are declared in its own header: job.h, batch.h, finish.h,
 * escalate.h, classify.h, fetch.h, order.h, spend.h, guard.h, fanout.h.
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
#include "kafka/lag.h"
#include "kafka/offsets.h"
#include "kafka/produce.h"
#include "kafka/redo.h"
#include "kafka/wake.h"
#include "learn/lr.h"
#include "llm/answer.h"
#include "llm/model.h"
#include "redis/budget.h"
#include "redis/ctx.h"
#include "redis/done.h"
#include "redis/ratelimit.h"
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

/* A job's turn of calls (fanout.c), in flight together: one call, or for
 * agreement without supports_n one per answer missing (agree_plan). The
 * shape is the job module's (job_call.c plans it before the reservation);
 * the calls, their count and the charge are written by fanout.c only. */
#define FANOUT_MAX KS_SAMPLES_MAX /* one call per sample, at most */

struct fanout {
    unsigned n_calls; /* calls of the turn (its plan; 0: none made yet) */
    unsigned n_ask;   /* answers they ask for in all */
    struct ks_model_call *calls[FANOUT_MAX]; /* owned; NULL once ended */
    unsigned n_fly;                          /* of them still in flight */
    int64_t charge; /* what the turn's ended calls owe (micro-USD) */
    struct ks_model_call *failed;     /* the turn's first failed call */
    struct ks_model_reply fail_reply; /* its reply (strings: failed's) */
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
    int64_t call_start_ms; /* this turn's calls started */
    /* the turn's calls (fanout.c) */
    struct fanout fan;
    struct ks_ctx *ctx; /* earlier attempts (hop > 0) or the hand-on's */
    char *system;       /* the system prompt of this job's calls */
    char *stash;        /* JOB_STORING: tag byte, then the outcome */
    size_t stash_len;   /* with the tag */
    const char *stash_topic;
    bool stash_warned; /* the Redis-down line was logged */
    bool pre_done;     /* batch_lookups answered: pre_value is the record */
    char *pre_value;   /* owned; NULL: no done record */
    size_t pre_len;
    int unacked;          /* JOB_PRODUCING: records not yet acknowledged (each
                             redo below counts as one) */
    struct ks_redo redo;  /* records to produce again after a backoff */
    int produce_failures; /* failed produces and deliveries so far */
    bool too_large_done;  /* the `too_large` Result was produced */
    struct ks_budget_reservation res; /* of the call in flight */
    bool has_res;           /* res is open: settle it when the call ends */
    bool unreserved;        /* fail-open call: its spend is replayed later */
    int holds;              /* reservations refused in a row (backoff) */
    const char *refused_by; /* static: "tier", "tenant" or "max_cost_usd" */
    bool abandoned; /* partition lost: free on the last ack, no commit */
    bool revoked;   /* its partition's revocation began: no call starts */
    bool key_held;  /* ordering "key": holds its key (order.c) until freed */
    uint64_t circuit_epoch; /* of the call in flight (guard.c) */
    uint64_t circuit_seen;  /* waiting on open circuits: their open count
                               when the wait began; 0 when not waiting */
    int pre_spend;     /* reserve_all's verdict + 1 (enum spend_verdict) for
                          this pass; 0: none yet */
    int pre_admit;     /* reserve_all's admission + 1 (enum guard_verdict)
                          when pre_spend is SPEND_GO; 0: none */
    int pre_provider;  /* the provider pre_spend and pre_admit were made for
                          (its prices, its rate window) */
    int rate_provider; /* the provider whose window holds rate_member */
    char rate_member[KS_RATELIMIT_MEMBER_MAX]; /* admitted, call not yet
                                                  started: give it back */
    struct job *prev, *next;

    /* agree.c: the samples so far (tiers[].samples); NULL: none */
    struct agree_state *agree;
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
    /* settles sent by spend_flush, replies not read yet (spend_collect) */
    struct ks_budget_reservation *sent_res;
    int64_t *sent_micro;
    enum ks_err *sent_errs;
    size_t n_sent;
    int64_t sent_now_ms;
    int64_t next_tick_ms;
    struct ks_budget_owner owner; /* this worker: names its reservations */
    struct ks_metric_family *m_expired; /* expired_charged_usd */
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
    bool full; /* its offsets window is full: not taken from (fetch.c) */
};

struct verifier_set; /* verifier.c */
struct agree_state;  /* agree.c */

struct worker {
    const struct ks_config *cfg;
    const struct ks_tier_cfg *tier;
    rd_kafka_t *rk_cons;
    rd_kafka_t *rk_prod;
    rd_kafka_queue_t *rkqu_cons, *rkqu_prod;
    struct ks_kafka_wake wake;
    struct ks_kafka_lag lag; /* kascade_consumer_lag of the tier topic */
    CURLM *multi;
    struct ks_store *rs;
    struct ks_offsets *offsets;
    struct ks_metrics *metrics;
    struct ks_metric_family *m_requests, *m_duration, *m_results, *m_dlq,
        *m_inflight, *m_spent, *m_remaining, *m_holds;
    struct ks_metric_family *m_window_full; /* fetch.c */
    struct spend_state spend;
    struct guard_state guard;
    char topic[KS_TOPIC_MAX];
    char results_topic[KS_TOPIC_MAX];
    char dlq_topic[KS_TOPIC_MAX];
    char esc_topic[KS_TOPIC_MAX];
    struct ks_lr_model **classifiers; /* per provider; NULL: not one */
    struct verifier_set *verifiers;   /* verifier.c; NULL: none */
    uint64_t *order_set;              /* order.c: keys claimed in this pass */
    struct order_state *order;        /* order.c: held keys, their queues */
    size_t order_cap;
    struct fetch_part *parts; /* fetch.c: the assigned partitions */
    size_t n_parts, next_part;
    struct job *head, *tail; /* every job, oldest first */
    size_t n_jobs;
    size_t max_jobs; /* calls in flight plus the backlog waiting for one */
    size_t n_calls;  /* model calls in flight (a job's turn may have
                        several: fanout.c) */
    bool paused;
    bool consuming;   /* false while draining for shutdown */
    bool rebalancing; /* inside the rebalance callback: the consumer queue
                         is not polled; other partitions' queues are */
};

#endif
