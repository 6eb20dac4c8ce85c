/*
 * submit_state.h - what `kascade submit --wait` keeps about the tasks it
 * sent: one entry per line, an id index, and the figures of the summary.
 * Single-threaded. Ownership: the state is embedded in the caller
 * (submit_state_init / submit_state_fini) and keeps its own copies of
 * every id and tier name it is given; arguments are borrowed.
 */
#ifndef KASCADE_CLI_SUBMIT_STATE_H
#define KASCADE_CLI_SUBMIT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "wire/codec.h"

/* How many rejected line numbers the summary lists. */
#define SUBMIT_REJECTED_SHOWN 20

struct sent {
    char *id;          /* NULL when the line had no readable id */
    int32_t partition; /* where it landed in the tasks topic */
    int64_t offset;    /* -1 until acknowledged */
    int64_t sent_ms;
    size_t lineno; /* 1-based line of the file */
    bool done;
};

struct submit_state {
    struct sent *sent;
    size_t n, cap;
    size_t *index; /* open addressing over sent[] by id; SIZE_MAX empty */
    size_t index_cap;
    size_t n_done, n_acked, n_failed_produce;
    size_t n_produced; /* lines handed to the producer so far */
    size_t n_rejected; /* lines refused before producing */
    size_t rejected[SUBMIT_REJECTED_SHOWN]; /* their first line numbers */
    /* summary */
    size_t n_results, n_dlq;
    size_t n_escalated, n_hops; /* Results that climbed, and their climbs */
    int64_t cost_micro, frontier_micro;
    int64_t *latency; /* submit to result, ms */
    size_t n_latency;
    char **tiers; /* tier name per result, for the per-tier count */
    char **statuses;
    char **dlq_codes;
};

void submit_state_init(struct submit_state *st);
void submit_state_fini(struct submit_state *st);

/* Adds line lineno (id may be NULL); returns its index. */
size_t submit_state_add(struct submit_state *st, const char *id, size_t lineno);

/* Counts line lineno as rejected (not produced). */
void submit_state_reject(struct submit_state *st, size_t lineno);

/* Builds the id index once every line was added. */
void submit_state_index(struct submit_state *st);

/* Marks the first pending line with this id done and records the result.
 * Returns false when no pending line has the id. */
bool submit_state_result(struct submit_state *st,
                         const struct ks_config *cfg,
                         const struct ks_result *res);

/* Marks the line that landed at partition/offset of the tasks topic done
 * as dead-lettered with code. Returns false when no line matches. */
bool submit_state_dlq(struct submit_state *st,
                      int32_t partition,
                      int64_t offset,
                      const char *code);

/* Marks the first pending line with this id done as dead-lettered with
 * code: for a DLQ entry of a record kascade derived from the task (a tier
 * record, an escalation), which keeps the task id as its key. Returns
 * false when no pending line has the id. */
bool submit_state_dlq_id(struct submit_state *st,
                         const char *id,
                         const char *code);

/* Prints the summary table on stdout: sent, rejected (line numbers up to
 * SUBMIT_REJECTED_SHOWN), results by tier and status, dead-lettered by
 * code, escalations, cost, latency and what is missing. */
void submit_state_print(const struct submit_state *st,
                        const struct ks_config *cfg,
                        double elapsed_s);

#endif
