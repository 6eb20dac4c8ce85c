/*
 * circuit.c - the per-provider circuit breaker's state machine (see
 * circuit.h). Pure: no I/O, no clock of its own, so the unit test drives
 * it with made-up times.
 */
#include "circuit.h"

#include "base/banned.h"

/* While a probe is out, others ask again this often. */
#define PROBE_POLL_MS 250

void circuit_init(struct circuit *c,
                  int max_failures,
                  int64_t cooldown_ms,
                  int64_t probe_timeout_ms)
{
    *c = (struct circuit){0};
    c->max_failures = max_failures > 0 ? max_failures : 1;
    c->cooldown_ms = cooldown_ms > 0 ? cooldown_ms : 1;
    c->probe_timeout_ms = probe_timeout_ms > 0 ? probe_timeout_ms : 1;
    c->state = CIRCUIT_CLOSED;
}

static void set_state(struct circuit *c, enum circuit_state state, int64_t now)
{
    c->state = state;
    c->epoch++;
    c->failures = 0;
    c->probing = false;
    if (state == CIRCUIT_OPEN) {
        c->open_until = now + c->cooldown_ms;
        c->opened++;
    }
}

bool circuit_allow(struct circuit *c, int64_t now, int64_t *retry_at)
{
    if (c->state == CIRCUIT_OPEN && now >= c->open_until) {
        set_state(c, CIRCUIT_HALF_OPEN, now);
    }
    switch (c->state) {
    case CIRCUIT_CLOSED:
        return true;
    case CIRCUIT_OPEN:
        *retry_at = c->open_until;
        return false;
    case CIRCUIT_HALF_OPEN:
    default:
        if (!c->probing || now >= c->probe_until) {
            return true;
        }
        *retry_at = now + PROBE_POLL_MS < c->probe_until ? now + PROBE_POLL_MS
                                                         : c->probe_until;
        return false;
    }
}

uint64_t circuit_begin(struct circuit *c, int64_t now)
{
    if (c->state == CIRCUIT_HALF_OPEN) {
        /* A new probe replaces one given up: only the newest counts. */
        c->epoch++;
        c->probing = true;
        c->probe_until = now + c->probe_timeout_ms;
    }
    return c->epoch;
}

bool circuit_record(struct circuit *c, uint64_t epoch, bool ok, int64_t now)
{
    if (epoch != c->epoch) {
        return false; /* begun before the last change: says nothing now */
    }
    switch (c->state) {
    case CIRCUIT_CLOSED:
        if (ok) {
            c->failures = 0;
            return false;
        }
        if (++c->failures < c->max_failures) {
            return false;
        }
        set_state(c, CIRCUIT_OPEN, now);
        return true;
    case CIRCUIT_HALF_OPEN:
        set_state(c, ok ? CIRCUIT_CLOSED : CIRCUIT_OPEN, now);
        return true;
    case CIRCUIT_OPEN:
    default:
        return false;
    }
}

const char *circuit_state_str(enum circuit_state state)
{
    switch (state) {
    case CIRCUIT_CLOSED:
        return "closed";
    case CIRCUIT_OPEN:
        return "open";
    default:
        return "half-open";
    }
}
