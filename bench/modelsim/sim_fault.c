/*
 * sim_fault.c - parses --fail and draws each request's fate.
 *
 * Invariants: the n-th draw is splitmix64(seed, n), so outcomes are a pure
 * function of --seed and the arrival order; the only shared state is two
 * atomic counters, so draws never take a lock. --fail-first is spent before
 * any random draw and is not re-armed by /stats/reset.
 */
#include "sim_fault.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

/* A --fail list longer than this is a typo, not a test. */
#define SIM_FAULT_SPEC_MAX 256

static const char *const kind_names[SIM_KIND_COUNT] = {
    "400",       "413",   "429",     "500",       "503",  "hang",
    "malformed", "reset", "timeout", "truncated", "huge", "rst",
};

const char *sim_kind_name(enum sim_kind kind)
{
    if ((unsigned)kind >= SIM_KIND_COUNT) {
        return "none";
    }
    return kind_names[kind];
}

bool sim_kind_billed(enum sim_kind kind)
{
    switch (kind) {
    case SIM_KIND_NONE:
    case SIM_KIND_MALFORMED:
    case SIM_KIND_RESET:
    case SIM_KIND_TIMEOUT:
    case SIM_KIND_TRUNCATED:
    case SIM_KIND_HUGE:
    case SIM_KIND_RST:
        return true;
    default:
        return false;
    }
}

static int kind_from_name(const char *name, enum sim_kind *kind)
{
    /* 400 and 413 describe the client's request and cannot be injected. */
    for (int i = SIM_KIND_429; i < SIM_KIND_COUNT; i++) {
        if (strcmp(name, kind_names[i]) == 0) {
            *kind = (enum sim_kind)i;
            return 0;
        }
    }
    return -1;
}

static int parse_item(struct sim_fault_spec *spec,
                      char *item,
                      char *errstr,
                      size_t errstr_size)
{
    char *colon = strchr(item, ':');
    enum sim_kind kind;
    double p;

    if (colon == NULL) {
        snprintf(errstr, errstr_size, "--fail item '%s' is not kind:prob",
                 item);
        return -1;
    }
    *colon = '\0';
    if (kind_from_name(item, &kind) != 0) {
        snprintf(errstr, errstr_size,
                 "--fail kind '%s': use 429 500 503 hang malformed reset "
                 "timeout truncated huge rst",
                 item);
        return -1;
    }
    if (ks_parse_double(colon + 1, &p) != 0 || !(p >= 0.0 && p <= 1.0)) {
        snprintf(errstr, errstr_size,
                 "--fail %s: probability '%s' not in [0,1]", item, colon + 1);
        return -1;
    }
    spec->prob[kind] = p;
    return 0;
}

int sim_fault_spec_parse(struct sim_fault_spec *spec,
                         const char *text,
                         char *errstr,
                         size_t errstr_size)
{
    char buf[SIM_FAULT_SPEC_MAX];
    char *item, *save = NULL;
    double sum = 0.0;

    if (ks_strlcpy(buf, text, sizeof(buf)) >= sizeof(buf)) {
        snprintf(errstr, errstr_size, "--fail is longer than %d bytes",
                 SIM_FAULT_SPEC_MAX - 1);
        return -1;
    }
    for (item = strtok_r(buf, ",", &save); item != NULL;
         item = strtok_r(NULL, ",", &save)) {
        if (parse_item(spec, item, errstr, errstr_size) != 0) {
            return -1;
        }
    }
    for (int i = 0; i < SIM_KIND_COUNT; i++) {
        sum += spec->prob[i];
    }
    if (sum > 1.0 + 1e-9) {
        snprintf(errstr, errstr_size, "--fail probabilities sum to %.3f > 1",
                 sum);
        return -1;
    }
    return 0;
}

void sim_fault_init(struct sim_fault *fault, const struct sim_fault_spec *spec)
{
    fault->spec = *spec;
    atomic_init(&fault->seq, 0);
    atomic_init(&fault->fail_first_left, spec->fail_first);
}

/* splitmix64: a good 64-bit mix of (seed, n); cheap and stateless. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static double unit_interval(uint64_t bits)
{
    return (double)(bits >> 11) * (1.0 / 9007199254740992.0); /* 2^53 */
}

static enum sim_kind pick_kind(const struct sim_fault_spec *spec, double u)
{
    double acc = 0.0;

    for (int i = 0; i < SIM_KIND_COUNT; i++) {
        acc += spec->prob[i];
        if (spec->prob[i] > 0.0 && u < acc) {
            return (enum sim_kind)i;
        }
    }
    return SIM_KIND_NONE;
}

struct sim_draw sim_fault_draw(struct sim_fault *fault)
{
    struct sim_draw draw;
    uint64_t base;

    draw.seq = atomic_fetch_add(&fault->seq, 1);
    base = mix64(fault->spec.seed ^ mix64(draw.seq));
    draw.jitter_bits = mix64(base ^ 0x6a09e667f3bcc909ULL);
    if (atomic_load(&fault->fail_first_left) > 0 &&
        atomic_fetch_sub(&fault->fail_first_left, 1) > 0) {
        draw.kind = SIM_KIND_500;
    } else {
        draw.kind = pick_kind(&fault->spec, unit_interval(base));
    }
    return draw;
}
