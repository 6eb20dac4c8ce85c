/*
 * circuit.h - a circuit breaker for one provider: a state machine over
 * call outcomes, with the clock passed in (monotonic ms) so that tests
 * can drive it.
 *
 * CLOSED: calls go; `failures` consecutive failed calls open it.
 * OPEN: no call until `cooldown_ms` after it opened, then HALF_OPEN.
 * HALF_OPEN: exactly one probe call; its success closes the circuit, its
 * failure opens it again for another cool-down. A probe that never
 * reports (its job was abandoned) is given up after probe_timeout_ms and
 * another one may go.
 *
 * Outcomes are counted only for calls begun in the circuit's current
 * epoch (the epoch changes with every state change): a call begun before
 * the circuit opened cannot re-open, close or probe it. Embedded, plain
 * data; one owner thread.
 */
#ifndef KASCADE_WORKERS_CIRCUIT_H
#define KASCADE_WORKERS_CIRCUIT_H

#include <stdbool.h>
#include <stdint.h>

enum circuit_state {
    CIRCUIT_CLOSED = 0, /* the values are the kascade_circuit_state gauge */
    CIRCUIT_OPEN = 1,
    CIRCUIT_HALF_OPEN = 2,
};

struct circuit {
    int max_failures;
    int64_t cooldown_ms;
    int64_t probe_timeout_ms;
    enum circuit_state state;
    int failures;        /* consecutive, in the current epoch */
    int64_t open_until;  /* OPEN: when it turns HALF_OPEN */
    bool probing;        /* HALF_OPEN: the probe is out */
    int64_t probe_until; /* HALF_OPEN and probing: when to give it up */
    uint64_t epoch;      /* bumped on every state change */
    uint64_t opened;     /* how many times it opened (a re-open counts) */
};

void circuit_init(struct circuit *c,
                  int max_failures,
                  int64_t cooldown_ms,
                  int64_t probe_timeout_ms);

/* May a call go now? An OPEN circuit past its cool-down turns HALF_OPEN
 * here. Returns false with *retry_at (monotonic ms) set to when to ask
 * again: the end of the cool-down, or shortly for a probe in flight. */
bool circuit_allow(struct circuit *c, int64_t now, int64_t *retry_at);

/* A call starts (after circuit_allow() said yes, with nothing in
 * between): in HALF_OPEN it is the probe. Returns the epoch to pass to
 * circuit_record(). */
uint64_t circuit_begin(struct circuit *c, int64_t now);

/* The call begun in epoch ended: ok or failed. Returns true when the
 * state changed. */
bool circuit_record(struct circuit *c, uint64_t epoch, bool ok, int64_t now);

/* "closed", "open" or "half-open". */
const char *circuit_state_str(enum circuit_state state);

#endif
