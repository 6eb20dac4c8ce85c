/*
 * sim_schedule.c - parses and applies --fault-schedule.
 *
 * Invariants: items are kept in the order given and the first one that
 * covers a request decides its fate; windows are half-open [from, to); a
 * request's number is its draw number (sim_fault.c), counted from 0 since
 * start and not reset by /stats/reset.
 */
#include "sim_schedule.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

#define SPEC_MAX 1024

/* Largest bound: about 31 years in seconds, far past any request count. */
#define BOUND_MAX 1000000000LL

static int kind_parse(const char *name, enum sim_kind *kind)
{
    if (strcmp(name, "ok") == 0) {
        *kind = SIM_KIND_NONE;
        return 0;
    }
    /* 400 and 413 describe the client's request and cannot be injected. */
    for (int i = SIM_KIND_429; i < SIM_KIND_COUNT; i++) {
        if (strcmp(name, sim_kind_name((enum sim_kind)i)) == 0) {
            *kind = (enum sim_kind)i;
            return 0;
        }
    }
    return -1;
}

/* Parses one bound ("12" or "12s"); sets *secs when it had the suffix. */
static int bound_parse(char *s, int64_t *v, bool *secs)
{
    size_t n = strlen(s);

    *secs = n > 0 && s[n - 1] == 's';
    if (*secs) {
        s[n - 1] = '\0';
    }
    return ks_parse_int64(s, 0, BOUND_MAX, v);
}

static int item_parse(struct sim_schedule_item *it,
                      char *item,
                      char *errstr,
                      size_t errstr_size)
{
    char *colon = strrchr(item, ':');
    char *dash = strchr(item, '-');
    bool from_s, to_s = false;

    if (colon == NULL || dash == NULL || dash > colon) {
        snprintf(errstr, errstr_size,
                 "--fault-schedule item '%s' is not FROM-TO:KIND", item);
        return -1;
    }
    *colon = '\0';
    *dash = '\0';
    if (kind_parse(colon + 1, &it->kind) != 0) {
        snprintf(errstr, errstr_size,
                 "--fault-schedule kind '%s': use 429 500 503 hang malformed "
                 "reset timeout truncated huge rst ok",
                 colon + 1);
        return -1;
    }
    it->to = -1;
    if (bound_parse(item, &it->from, &from_s) != 0 ||
        (dash[1] != '\0' && bound_parse(dash + 1, &it->to, &to_s) != 0)) {
        snprintf(errstr, errstr_size,
                 "--fault-schedule window '%s-%s': bounds are integers in "
                 "[0, %lld], optionally with an s suffix",
                 item, dash + 1, BOUND_MAX);
        return -1;
    }
    if (dash[1] != '\0' && from_s != to_s) {
        snprintf(errstr, errstr_size,
                 "--fault-schedule window '%s-%s': both bounds in requests "
                 "or both in seconds",
                 item, dash + 1);
        return -1;
    }
    if (it->to >= 0 && it->to <= it->from) {
        snprintf(errstr, errstr_size,
                 "--fault-schedule window %lld-%lld is empty",
                 (long long)it->from, (long long)it->to);
        return -1;
    }
    it->in_time = from_s;
    if (it->in_time) {
        it->from *= 1000;
        it->to = it->to >= 0 ? it->to * 1000 : -1;
    }
    return 0;
}

int sim_schedule_parse(struct sim_schedule *sched,
                       const char *text,
                       char *errstr,
                       size_t errstr_size)
{
    char buf[SPEC_MAX];
    char *item, *save = NULL;

    sched->n = 0;
    if (ks_strlcpy(buf, text, sizeof(buf)) >= sizeof(buf)) {
        snprintf(errstr, errstr_size,
                 "--fault-schedule is longer than %d bytes", SPEC_MAX - 1);
        return -1;
    }
    for (item = strtok_r(buf, ",", &save); item != NULL;
         item = strtok_r(NULL, ",", &save)) {
        if (sched->n == SIM_SCHEDULE_MAX) {
            snprintf(errstr, errstr_size,
                     "--fault-schedule has more than %d items",
                     SIM_SCHEDULE_MAX);
            return -1;
        }
        if (item_parse(&sched->items[sched->n], item, errstr, errstr_size) !=
            0) {
            return -1;
        }
        sched->n++;
    }
    if (sched->n == 0) {
        snprintf(errstr, errstr_size, "--fault-schedule is empty");
        return -1;
    }
    return 0;
}

bool sim_schedule_match(const struct sim_schedule *sched,
                        uint64_t seq,
                        int64_t elapsed_ms,
                        enum sim_kind *kind)
{
    for (size_t i = 0; i < sched->n; i++) {
        const struct sim_schedule_item *it = &sched->items[i];
        int64_t at = it->in_time ? elapsed_ms
                                 : (seq > (uint64_t)INT64_MAX ? INT64_MAX
                                                              : (int64_t)seq);

        if (at >= it->from && (it->to < 0 || at < it->to)) {
            *kind = it->kind;
            return true;
        }
    }
    return false;
}
