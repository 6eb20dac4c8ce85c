/*
 * sim_latency.c - latency draws for the model simulator.
 *
 * Invariants: the median of every distribution is --latency-ms and its
 * 99th percentile is sim_latency_p99() (uniform: unless the lower end
 * would go below 0, where it is clamped); a draw is a pure function of
 * the bits it is given and never exceeds max_ms.
 *
 * uniform on [m - w/2, m + w/2] has its p99 at m + 0.49 w, so
 * w = (p99 - m) / 0.49. lognormal exp(mu + sigma z) has median exp(mu) and
 * p99 exp(mu + 2.3263 sigma), so mu = ln m, sigma = ln(p99 / m) / 2.3263.
 */
#include "sim_latency.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/banned.h"

/* The 99th percentile of the standard normal distribution. */
#define Z99 2.3263478740408408

static const char *const dist_names[] = {"fixed", "uniform", "lognormal"};

int sim_latency_dist_parse(const char *name, enum sim_latency_dist *dist)
{
    for (size_t i = 0; i < sizeof(dist_names) / sizeof(dist_names[0]); i++) {
        if (strcmp(name, dist_names[i]) == 0) {
            *dist = (enum sim_latency_dist)i;
            return 0;
        }
    }
    return -1;
}

int64_t sim_latency_p99(const struct sim_latency *lat)
{
    if (lat->p99_ms > 0) {
        return lat->p99_ms;
    }
    switch (lat->dist) {
    case SIM_LATENCY_UNIFORM:
        return 2 * lat->median_ms;
    case SIM_LATENCY_LOGNORMAL:
        return 4 * lat->median_ms;
    default:
        return lat->median_ms;
    }
}

int sim_latency_check(const struct sim_latency *lat,
                      char *errstr,
                      size_t errstr_size)
{
    if (lat->p99_ms > 0 && lat->dist == SIM_LATENCY_FIXED) {
        snprintf(errstr, errstr_size,
                 "--latency-p99-ms needs --latency-dist uniform or lognormal");
        return -1;
    }
    if (lat->p99_ms > 0 && lat->p99_ms < lat->median_ms) {
        snprintf(errstr, errstr_size,
                 "--latency-p99-ms %lld is below --latency-ms %lld",
                 (long long)lat->p99_ms, (long long)lat->median_ms);
        return -1;
    }
    return 0;
}

/* splitmix64 step: decorrelates the two uniforms taken from one seed. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Uniform in the open interval (0, 1). */
static double open_unit(uint64_t bits)
{
    return ((double)(bits >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double clamp_ms(double v, int64_t max_ms)
{
    if (!(v > 0.0)) {
        return 0.0;
    }
    return v > (double)max_ms ? (double)max_ms : v;
}

int64_t sim_latency_draw(const struct sim_latency *lat,
                         uint64_t bits,
                         int64_t max_ms)
{
    double m = (double)lat->median_ms;
    double p99 = (double)sim_latency_p99(lat);
    double u1 = open_unit(mix64(bits));
    double u2 = open_unit(mix64(bits ^ 0xbb67ae8584caa73bULL));
    double v;

    switch (lat->dist) {
    case SIM_LATENCY_UNIFORM: {
        double w = (p99 - m) / 0.49;

        v = m - w / 2.0 + w * u1;
        break;
    }
    case SIM_LATENCY_LOGNORMAL: {
        /* Box-Muller: one standard normal from two uniforms. */
        double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
        double sigma = m > 0.0 ? log(p99 / m) / Z99 : 0.0;

        v = m * exp(sigma * z);
        break;
    }
    default:
        v = m;
        break;
    }
    return (int64_t)llround(clamp_ms(v, max_ms));
}
