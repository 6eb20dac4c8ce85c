/*
 * sim_answer.h - turns one OpenAI chat request body into the simulator's
 * chat.completion reply (or a 400 error body). The HTTP layer decides
 * status codes, latency and faults; this module only reads and writes JSON.
 */
#ifndef KASCADE_MODELSIM_SIM_ANSWER_H
#define KASCADE_MODELSIM_SIM_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* Hard caps on what a request may make us process. */
#define SIM_ANSWER_MAX_MESSAGES 1024
#define SIM_ANSWER_MAX_PARTS    1024 /* content parts in one message */
#define SIM_ANSWER_MAX_DEPTH    64   /* JSON nesting */

struct sim_replay;

struct sim_answer_opts {
    const char *model;   /* used when the request names none; borrowed */
    bool logprobs;       /* --logprobs: logprobs even when not asked for */
    bool has_confidence; /* --confidence given: always answer in JSON */
    double confidence;
    bool has_conf_range; /* --confidence-dist LO:HI: per-prompt confidence */
    double conf_lo;
    double conf_hi;
    double escalate_below;           /* --escalate-below: 0 is off */
    const struct sim_replay *replay; /* --replay: borrowed; NULL is off */
};

/* Longest model name kept for the billing ledger (longer ones are cut). */
#define SIM_ANSWER_MODEL_MAX 64

/* What happened to one answered request, for the stats and the bill. */
struct sim_answer_info {
    bool replay_hit;         /* answered with a recorded answer */
    bool replay_miss;        /* --replay on, prompt not in the file: fallback */
    bool escalated;          /* answered {"escalate": true} */
    long long prompt_tokens; /* usage.prompt_tokens of the answer */
    long long completion_tokens;      /* usage.completion_tokens */
    char model[SIM_ANSWER_MODEL_MAX]; /* the model answered as */
};

/* Answers the chat request in body (len bytes, need not be NUL-terminated).
 * seq names the completion ("chatcmpl-sim-<seq>"). When info is not NULL
 * it is filled in (all false unless KS_OK).
 * Returns KS_OK with *out the chat.completion JSON; KS_ERR_INVALID with
 * *out an OpenAI error body for a 400 (bad JSON, missing messages, a cap
 * exceeded); KS_ERR_NOMEM with *out NULL. Caller owns *out (free()).
 * Thread-safe. */
enum ks_err sim_answer_chat(const char *body,
                            size_t len,
                            const struct sim_answer_opts *opts,
                            uint64_t seq,
                            char **out,
                            struct sim_answer_info *info);

/* Renders {"error": {"message", "type", "param": null, "code"}}; code may
 * be NULL. Returns a string the caller owns (free()), or NULL on OOM. */
char *sim_answer_error(const char *message, const char *type, const char *code);

#endif
