/*
 * sim_conf.c - the per-prompt confidence behind --confidence-dist.
 *
 * Invariant: the value depends only on the prompt's bytes and the range,
 * so the same task gets the same confidence from every simulator and
 * every run; the hash's top bits are used (FNV-1a's low bits mix poorly).
 */
#include "sim_conf.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "sim_text.h"

#include "base/banned.h"

int sim_conf_range_parse(
    const char *text, double *lo, double *hi, char *errstr, size_t errstr_size)
{
    char buf[64];
    char *colon;

    if (ks_strlcpy(buf, text, sizeof(buf)) >= sizeof(buf) ||
        (colon = strchr(buf, ':')) == NULL) {
        goto bad;
    }
    *colon = '\0';
    if (ks_parse_double(buf, lo) != 0 || ks_parse_double(colon + 1, hi) != 0 ||
        !(*lo >= 0.0 && *lo <= *hi && *hi <= 1.0)) {
        goto bad;
    }
    return 0;
bad:
    snprintf(errstr, errstr_size,
             "--confidence-dist '%s' is not LO:HI with 0 <= LO <= HI <= 1",
             text);
    return -1;
}

double sim_conf_of_prompt(double lo, double hi, const char *text, size_t len)
{
    uint64_t h = sim_fnv1a(SIM_FNV_OFFSET, text, len);
    /* One more mixing round: nearby prompts get unrelated values. */
    double u;

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    u = round((lo + (hi - lo) * u) * 1000.0) / 1000.0;
    return u < lo ? lo : u > hi ? hi : u;
}
