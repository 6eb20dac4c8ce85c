/*
 * sim_schedule.h - --fault-schedule: faults by request number or by time
 * since start, so a test can make a provider fail for a while and then
 * recover ("0-50:500,50-100:429,100-:ok" or "0s-10s:503").
 */
#ifndef KASCADE_MODELSIM_SIM_SCHEDULE_H
#define KASCADE_MODELSIM_SIM_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_fault.h"

/* A schedule longer than this is a typo, not a test. */
#define SIM_SCHEDULE_MAX 64

/* One window [from, to): chat request numbers, or milliseconds since the
 * server started when in_time is set. to < 0: open-ended. */
struct sim_schedule_item {
    int64_t from;
    int64_t to;
    bool in_time;
    enum sim_kind kind; /* SIM_KIND_NONE ("ok"): answer normally */
};

/* A parsed --fault-schedule: plain data, copied freely. */
struct sim_schedule {
    size_t n;
    struct sim_schedule_item items[SIM_SCHEDULE_MAX];
};

/* Parses a comma-separated list of FROM-TO:KIND items into sched
 * (replacing what was there). FROM and TO are request numbers (0 is the
 * first chat request), or seconds since start with an `s` suffix on both
 * (`10s-20s`); TO may be left out (`100-`: from 100 on). KIND is 429 500
 * 503 hang malformed reset or ok. Returns 0, or -1 with a reason in
 * errstr. */
int sim_schedule_parse(struct sim_schedule *sched,
                       const char *text,
                       char *errstr,
                       size_t errstr_size);

/* Finds the first item that covers request number seq or elapsed_ms since
 * start. Returns true with *kind set, false when none does. */
bool sim_schedule_match(const struct sim_schedule *sched,
                        uint64_t seq,
                        int64_t elapsed_ms,
                        enum sim_kind *kind);

#endif
