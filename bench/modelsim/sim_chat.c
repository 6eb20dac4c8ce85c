/*
 * sim_chat.c - latency and injected faults around the simulated model.
 *
 * Invariants:
 * - Each complete request draws exactly one fate and counts exactly once
 *   in ok or errors[kind] (a shutdown mid-wait counts nowhere).
 * - Latency runs from the request's arrival, not from the end of its
 *   body; "hang" replaces the latency with --hang-ms.
 * - Every sleep is sliced into naps of at most NAP_MS and ends early once
 *   stopping is set, so MHD_stop_daemon never waits on a handler for long.
 * - A request is billed (sim_stats_bill) when its answer was computed and
 *   its fate is one sim_kind_billed() names, with the answer's usage.
 */
#include "sim_chat.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "sim_answer.h"
#include "sim_deliver.h"
#include "sim_reply.h"

#include "base/banned.h"

#define TAG "modelsim"

/* Longest nap between checks of the stopping flag. */
#define NAP_MS 50

#define SIM_DELAY_HEADER "X-Modelsim-Delay-Ms"

void sim_chat_init(struct sim_chat *chat, const struct sim_config *cfg)
{
    chat->cfg = cfg;
    sim_fault_init(&chat->fault, &cfg->fault);
    sim_stats_init(&chat->stats);
    atomic_init(&chat->stopping, false);
    chat->start_ms = ks_mono_ms();
}

void sim_chat_stop(struct sim_chat *chat)
{
    atomic_store(&chat->stopping, true);
}

void sim_chat_count_error(struct sim_chat *chat, enum sim_kind kind)
{
    atomic_fetch_add(&chat->stats.errors[kind], 1);
}

void sim_chat_bill(struct sim_chat *chat, const struct sim_answer_info *info)
{
    sim_stats_bill(&chat->stats, info->model, info->prompt_tokens,
                   info->completion_tokens);
}

bool sim_chat_wait_until(struct sim_chat *chat, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - ks_mono_ms();
        struct timespec ts;

        if (atomic_load(&chat->stopping)) {
            return false;
        }
        if (left <= 0) {
            return true;
        }
        left = left < NAP_MS ? left : NAP_MS;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)left * 1000000L;
        nanosleep(&ts, NULL);
    }
}

/* The request's latency: a draw from --latency-dist (the median itself
 * when fixed) plus the --jitter-ms draw, both from the request's bits. */
static int64_t delay_ms(const struct sim_chat *chat,
                        const struct sim_draw *draw)
{
    const struct sim_latency lat = {chat->cfg->latency_dist,
                                    chat->cfg->latency_ms,
                                    chat->cfg->latency_p99_ms};
    int64_t jitter = chat->cfg->jitter_ms;
    int64_t base = sim_latency_draw(&lat, ~draw->jitter_bits, SIM_MAX_DELAY_MS);

    if (jitter <= 0) {
        return base;
    }
    return base + (int64_t)(draw->jitter_bits % (uint64_t)(jitter + 1));
}

/* The normal path: a completion, or a 400 for a bad request. A
 * completion says in X-Modelsim-Delay-Ms how long it was held (the drawn
 * latency, so tests can check the distribution without timing it). */
static enum MHD_Result reply_answer(struct sim_chat *chat,
                                    struct MHD_Connection *conn,
                                    const char *body,
                                    size_t len,
                                    const struct sim_draw *draw,
                                    int64_t delay)
{
    struct sim_answer_info info;
    char delay_text[24];
    char *out;
    enum ks_err rc =
        sim_answer_chat(body, len, &chat->cfg->answer, draw->seq, &out, &info);

    switch (rc) {
    case KS_OK:
        sim_chat_bill(chat, &info);
        atomic_fetch_add(&chat->stats.ok, 1);
        atomic_fetch_add(&chat->stats.replay_hit, info.replay_hit);
        atomic_fetch_add(&chat->stats.replay_miss, info.replay_miss);
        atomic_fetch_add(&chat->stats.escalated, info.escalated);
        snprintf(delay_text, sizeof(delay_text), "%lld", (long long)delay);
        return sim_reply_send(conn, MHD_HTTP_OK, out, SIM_REPLY_JSON,
                              SIM_DELAY_HEADER, delay_text);
    case KS_ERR_INVALID:
        sim_chat_count_error(chat, SIM_KIND_400);
        return sim_reply_send(conn, MHD_HTTP_BAD_REQUEST, out, SIM_REPLY_JSON,
                              NULL, NULL);
    default:
        sim_chat_count_error(chat, SIM_KIND_500);
        return sim_reply_send(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL,
                              NULL, NULL);
    }
}

/* A 200 whose body is a completion cut in half: not valid JSON. */
static enum MHD_Result reply_malformed(struct sim_chat *chat,
                                       struct MHD_Connection *conn,
                                       const char *body,
                                       size_t len,
                                       const struct sim_draw *draw)
{
    static const char fallback[] =
        "{\"id\":\"chatcmpl-sim\",\"object\":\"chat.completion\","
        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\"";
    struct sim_answer_info info;
    char *out = NULL;

    /* An invalid request still gets a 200: the 400 body is cut instead
     * (and is not billed: no answer was computed). */
    if (sim_answer_chat(body, len, &chat->cfg->answer, draw->seq, &out,
                        &info) == KS_OK) {
        sim_chat_bill(chat, &info);
    }
    if (out == NULL) {
        out = ks_xstrdup(fallback);
    }
    out[strlen(out) / 2] = '\0';
    sim_chat_count_error(chat, SIM_KIND_MALFORMED);
    return sim_reply_send(conn, MHD_HTTP_OK, out, SIM_REPLY_JSON, NULL, NULL);
}

/* The provider read and answered the request, billed it, and then the
 * answer fails on its way (sim_deliver.c). A bad request gets its 400. */
static enum MHD_Result reply_processed(struct sim_chat *chat,
                                       struct MHD_Connection *conn,
                                       const char *body,
                                       size_t len,
                                       const struct sim_draw *draw,
                                       int64_t start_ms)
{
    struct sim_answer_info info;
    char *out = NULL;
    enum ks_err rc =
        sim_answer_chat(body, len, &chat->cfg->answer, draw->seq, &out, &info);

    if (rc != KS_OK &&
        (draw->kind == SIM_KIND_RESET || draw->kind == SIM_KIND_RST)) {
        sim_chat_count_error(chat, draw->kind); /* dropped, not billed */
        free(out);
        return MHD_NO;
    }
    if (rc != KS_OK) {
        sim_chat_count_error(chat, rc == KS_ERR_INVALID ? SIM_KIND_400
                                                        : SIM_KIND_500);
        return sim_reply_send(conn,
                              rc == KS_ERR_INVALID
                                  ? MHD_HTTP_BAD_REQUEST
                                  : MHD_HTTP_INTERNAL_SERVER_ERROR,
                              out, SIM_REPLY_JSON, NULL, NULL);
    }
    sim_chat_bill(chat, &info);
    sim_chat_count_error(chat, draw->kind);
    return sim_deliver_fault(chat, conn, draw->kind, out, start_ms);
}

static enum MHD_Result reply_fault(struct sim_chat *chat,
                                   struct MHD_Connection *conn,
                                   enum sim_kind kind)
{
    sim_chat_count_error(chat, kind);
    switch (kind) {
    case SIM_KIND_429:
        /* Clients must honour Retry-After: give them one to honour. */
        return sim_reply_send(conn, MHD_HTTP_TOO_MANY_REQUESTS,
                              sim_answer_error("rate limit reached (simulated)",
                                               "rate_limit_error",
                                               "rate_limit_exceeded"),
                              SIM_REPLY_JSON, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    case SIM_KIND_503:
        return sim_reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                               "the model is overloaded (simulated)",
                               "server_error", NULL);
    default:
        return sim_reply_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                               "internal error (simulated)", "server_error",
                               NULL);
    }
}

enum MHD_Result sim_chat_reply(struct sim_chat *chat,
                               struct MHD_Connection *conn,
                               const char *body,
                               size_t len,
                               int64_t start_ms)
{
    struct sim_draw draw = sim_fault_draw(&chat->fault);
    enum sim_kind kind;
    int64_t delay;

    /* A schedule window decides over --fail-first and --fail. */
    if (sim_schedule_match(&chat->cfg->schedule, draw.seq,
                           ks_mono_ms() - chat->start_ms, &kind)) {
        draw.kind = kind;
    }

    ks_log_debug(TAG, "chat #%llu: %zu bytes, fate %s",
                 (unsigned long long)draw.seq, len, sim_kind_name(draw.kind));
    if (body == NULL) {
        body = "";
    }
    if (draw.kind == SIM_KIND_HANG) {
        /* Hold the connection without a word, then drop it. */
        sim_chat_count_error(chat, SIM_KIND_HANG);
        sim_chat_wait_until(chat, start_ms + chat->cfg->hang_ms);
        return MHD_NO;
    }
    delay = delay_ms(chat, &draw);
    if (!sim_chat_wait_until(chat, start_ms + delay)) {
        return MHD_NO; /* shutting down: drop the connection */
    }
    switch (draw.kind) {
    case SIM_KIND_NONE:
        return reply_answer(chat, conn, body, len, &draw, delay);
    case SIM_KIND_MALFORMED:
        return reply_malformed(chat, conn, body, len, &draw);
    default:
        if (sim_deliver_handles(draw.kind)) {
            return reply_processed(chat, conn, body, len, &draw, start_ms);
        }
        return reply_fault(chat, conn, draw.kind);
    }
}
