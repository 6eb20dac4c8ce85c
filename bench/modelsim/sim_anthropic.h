/*
 * sim_anthropic.h - the simulator's Anthropic Messages API
 * (POST /v1/messages): the same answers, latency and injected faults as
 * chat completions, in the Messages API's request, reply and error
 * shapes. Body collection and the size cap belong to sim_http.c.
 */
#ifndef KASCADE_MODELSIM_SIM_ANTHROPIC_H
#define KASCADE_MODELSIM_SIM_ANTHROPIC_H

#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "sim_chat.h"

/* Answers a complete Messages request (body: len bytes, borrowed; NULL
 * when len is 0) that arrived at start_ms (monotonic), drawing its fate
 * from chat's injector and counting it in chat->stats, like
 * sim_chat_reply(). Sleeps in the calling connection thread. Returns
 * MHD_NO to drop the connection (reset, hang, shutdown). */
enum MHD_Result sim_anthropic_reply(struct sim_chat *chat,
                                    struct MHD_Connection *conn,
                                    const char *body,
                                    size_t len,
                                    int64_t start_ms);

#endif
