/*
 * sim_chat.h - the fate of one complete chat request: draw a fault, wait
 * out the simulated latency, then answer, fail, hang or reset. Body
 * collection and the size cap belong to the HTTP layer (sim_http.c).
 */
#ifndef KASCADE_MODELSIM_SIM_CHAT_H
#define KASCADE_MODELSIM_SIM_CHAT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "sim_answer.h"
#include "sim_config.h"
#include "sim_fault.h"
#include "sim_stats.h"

/* State shared by every connection thread; embedded in the server. */
struct sim_chat {
    const struct sim_config *cfg; /* borrowed, outlives the chat */
    struct sim_fault fault;
    struct sim_stats stats;
    atomic_bool stopping; /* once set, sleeping handlers give up */
    int64_t start_ms;     /* monotonic; --fault-schedule's seconds count
                             from here */
};

void sim_chat_init(struct sim_chat *chat, const struct sim_config *cfg);

/* Makes every sleeping and future handler give up within 50 ms. */
void sim_chat_stop(struct sim_chat *chat);

/* Counts one request under the error kind. Thread-safe. */
void sim_chat_count_error(struct sim_chat *chat, enum sim_kind kind);

/* Bills one answered request with its usage (info from sim_answer_chat).
 * Thread-safe. */
void sim_chat_bill(struct sim_chat *chat, const struct sim_answer_info *info);

/* Sleeps until the monotonic deadline in naps of at most 50 ms; returns
 * false when sim_chat_stop cut it short. */
bool sim_chat_wait_until(struct sim_chat *chat, int64_t deadline_ms);

/* Answers a complete chat request (body: len bytes, borrowed; NULL when
 * len is 0) that arrived at start_ms (monotonic). Sleeps in the calling
 * connection thread. Counts the outcome in chat->stats. Returns MHD_NO to
 * drop the connection (reset, hang, shutdown). */
enum MHD_Result sim_chat_reply(struct sim_chat *chat,
                               struct MHD_Connection *conn,
                               const char *body,
                               size_t len,
                               int64_t start_ms);

#endif
