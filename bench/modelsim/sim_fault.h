/*
 * sim_fault.h - error injection for the model simulator: the --fail SPEC
 * ("429:0.1,hang:0.01"), --fail-first N and the seeded, thread-safe draw
 * that decides each chat request's fate.
 */
#ifndef KASCADE_MODELSIM_SIM_FAULT_H
#define KASCADE_MODELSIM_SIM_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What happened to a chat request that did not get a normal 200. The first
 * two are the client's fault; the rest can be injected. The last four are
 * the faults of a provider that has read and processed the request (and
 * bills it, see sim_kind_billed) but whose answer never arrives whole. */
enum sim_kind {
    SIM_KIND_400 = 0,
    SIM_KIND_413,
    SIM_KIND_429,
    SIM_KIND_500,
    SIM_KIND_503,
    SIM_KIND_HANG,
    SIM_KIND_MALFORMED,
    SIM_KIND_RESET,
    SIM_KIND_TIMEOUT,   /* answer held for --hang-ms: after the client's
                           timeout */
    SIM_KIND_TRUNCATED, /* 200, Content-Length of the whole completion,
                           the connection closed halfway through it */
    SIM_KIND_HUGE,      /* 200 streaming a --huge-bytes body (chunked) */
    SIM_KIND_RST,       /* a TCP reset (RST) instead of the answer */
    SIM_KIND_COUNT,
};

/* No fault drawn: answer normally. */
#define SIM_KIND_NONE SIM_KIND_COUNT

/* Returns the kind's name as used by --fail and /stats ("429", "hang"). */
const char *sim_kind_name(enum sim_kind kind);

/* Whether a provider bills a request that met this fate: it read and
 * processed the request (answered it, even cut, late, oversized or reset
 * after processing). SIM_KIND_NONE (a normal answer), malformed, reset,
 * timeout, truncated, huge and rst are billed; 400, 413, 429, 500, 503
 * (refused before processing) and hang (stuck before the model ran) are
 * not. */
bool sim_kind_billed(enum sim_kind kind);

/* A parsed --fail / --fail-first / --seed: plain data, copied freely. */
struct sim_fault_spec {
    double prob[SIM_KIND_COUNT]; /* only injectable kinds are non-zero */
    uint64_t seed;
    int64_t fail_first; /* the first N chat requests get a 500 */
};

/* Parses a comma-separated list of kind:probability into spec->prob
 * (other fields untouched). Probabilities are in [0,1] and sum to <= 1.
 * Returns 0, or -1 with a reason in errstr. */
int sim_fault_spec_parse(struct sim_fault_spec *spec,
                         const char *text,
                         char *errstr,
                         size_t errstr_size);

/* The live injector, shared by all connection threads. */
struct sim_fault {
    struct sim_fault_spec spec;
    atomic_ullong seq;            /* draws so far */
    atomic_llong fail_first_left; /* --fail-first budget still to spend */
};

/* One request's fate: seq numbers the draw (and names the completion). */
struct sim_draw {
    uint64_t seq;
    enum sim_kind kind;   /* SIM_KIND_NONE for a normal answer */
    uint64_t jitter_bits; /* uniform bits for the latency jitter */
};

void sim_fault_init(struct sim_fault *fault, const struct sim_fault_spec *spec);

/* Decides the next request's fate. The n-th draw depends only on the seed
 * and n, so a run is reproducible. Thread-safe (one atomic counter). */
struct sim_draw sim_fault_draw(struct sim_fault *fault);

#endif
