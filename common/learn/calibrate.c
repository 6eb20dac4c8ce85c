/*
 * calibrate.c - calibrating a fitted model of lr.h on its held-out margins
 * (train.c calls these).
 *
 * - router and verifier: Platt scaling, p = sigmoid(a z + c), fitted by
 *   Newton's method on Platt's smoothed targets ((N+ + 1) / (N+ + 2) and
 *   1 / (N- + 2)). Platt collapses when the held-out part does not rank
 *   the way the model does: its slope comes out <= 0 (or so small that
 *   the calibrated score is constant over the held-out margins), and a
 *   constant score is one no threshold can split (issue 11: 2 of 5 GSM8K
 *   fits). Then the fit falls back to temperature scaling, p = sigmoid(z /
 *   T) (a = 1/T, c = 0), with 1/T the least held-out log loss on [0.05,
 *   20], which keeps the model's ranking; the report says so. When even
 *   that is constant (every raw margin the same) the fit is refused.
 * - triage: temperature scaling, p = softmax(z / t), with 1/t chosen by
 *   golden-section search on [0.05, 20] for the least held-out log loss
 *   (the loss is convex in 1/t). One parameter cannot over-fit a small
 *   held-out part, and it never changes which label wins.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "learn/lr.h"
#include "learn/lr_internal.h"

#include "base/banned.h"

/* Platt scaling on margins z[] with 0/1 labels y[]; a >= 0. */
static void fit_platt(
    const double *z, const size_t *y, size_t n, double *a_out, double *c_out)
{
    double npos = 0, a = 0, c, tp, tn, prev = INFINITY;

    for (size_t i = 0; i < n; i++) {
        npos += (double)y[i];
    }
    tp = (npos + 1) / (npos + 2);
    tn = 1 / (n - npos + 2);
    c = log((npos + 1) / (n - npos + 1));
    for (int it = 0; it < 100; it++) {
        double ga = 0, gc = 0, haa = 1e-9, hac = 0, hcc = 1e-9, det, da, dc;
        double step = 1, loss = 0;

        for (size_t i = 0; i < n; i++) {
            double p = lr_sigmoid(a * z[i] + c), t = y[i] ? tp : tn;
            double d = p - t, w = p * (1 - p);

            ga += d * z[i];
            gc += d;
            haa += w * z[i] * z[i];
            hac += w * z[i];
            hcc += w;
        }
        det = haa * hcc - hac * hac;
        if (!(fabs(det) > 1e-300)) {
            break;
        }
        da = (hcc * ga - hac * gc) / det;
        dc = (haa * gc - hac * ga) / det;
        /* Backtrack until the loss goes down. */
        for (; step > 1e-10; step /= 2) {
            double na = a - step * da, nc = c - step * dc;

            loss = 0;
            for (size_t i = 0; i < n; i++) {
                double q = na * z[i] + nc, t = y[i] ? tp : tn;

                /* -t log s(q) - (1-t) log(1-s(q)), stably */
                loss += (q > 0 ? q : 0) + log1p(exp(-fabs(q))) - t * q;
            }
            if (loss <= prev) {
                a = na;
                c = nc;
                break;
            }
        }
        if (step <= 1e-10 || prev - loss < 1e-12 * (1 + fabs(loss))) {
            break;
        }
        prev = loss;
    }
    if (!(a >= 0) || !isfinite(a) || !isfinite(c)) {
        a = 0;
        c = log(tp * npos + tn * (n - npos)) -
            log(n - (tp * npos + tn * (n - npos)));
    }
    *a_out = a;
    *c_out = c;
}

/* Held-out softmax log loss at inverse temperature beta. */
static double nll_temp(
    const double *z, const size_t *y, size_t n, size_t K, double beta)
{
    double loss = 0;

    for (size_t i = 0; i < n; i++) {
        const double *zi = z + i * K;
        double max = zi[0], s = 0;

        for (size_t k = 1; k < K; k++) {
            max = zi[k] > max ? zi[k] : max;
        }
        for (size_t k = 0; k < K; k++) {
            s += exp(beta * (zi[k] - max));
        }
        loss += log(s) - beta * (zi[y[i]] - max);
    }
    return loss;
}

double lr_fit_temperature(const double *z, const size_t *y, size_t n, size_t K)
{
    const double g = (sqrt(5.0) - 1) / 2;
    double lo = 0.05, hi = 20, x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo);
    double f1 = nll_temp(z, y, n, K, x1), f2 = nll_temp(z, y, n, K, x2);

    for (int it = 0; it < 80; it++) {
        if (f1 <= f2) {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - g * (hi - lo);
            f1 = nll_temp(z, y, n, K, x1);
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + g * (hi - lo);
            f2 = nll_temp(z, y, n, K, x2);
        }
    }
    return 1 / ((lo + hi) / 2);
}

/* Held-out log loss of p = sigmoid(beta z) (targets 0/1). */
static double nll_binary(const double *z,
                         const size_t *y,
                         size_t n,
                         double beta)
{
    double loss = 0;

    for (size_t i = 0; i < n; i++) {
        double q = beta * z[i];

        loss += (q > 0 ? q : 0) + log1p(exp(-fabs(q))) - (double)y[i] * q;
    }
    return loss;
}

/* The 1/T of binary temperature scaling: golden-section search on
 * [0.05, 20] (the loss is convex in beta). */
static double fit_beta(const double *z, const size_t *y, size_t n)
{
    const double g = (sqrt(5.0) - 1) / 2;
    double lo = 0.05, hi = 20, x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo);
    double f1 = nll_binary(z, y, n, x1), f2 = nll_binary(z, y, n, x2);

    for (int it = 0; it < 80; it++) {
        if (f1 <= f2) {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - g * (hi - lo);
            f1 = nll_binary(z, y, n, x1);
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + g * (hi - lo);
            f2 = nll_binary(z, y, n, x2);
        }
    }
    return (lo + hi) / 2;
}

/* Spread of sigmoid(a z + c) over the margins z[0..n). */
static double prob_spread(const double *z, size_t n, double a, double c)
{
    double lo = 1, hi = 0;

    for (size_t i = 0; i < n; i++) {
        double p = lr_sigmoid(a * z[i] + c);

        lo = p < lo ? p : lo;
        hi = p > hi ? p : hi;
    }
    return n ? hi - lo : 0;
}

/* A calibrated score that tells nothing apart. */
#define LR_MIN_SPREAD 1e-6

/* Calibrates a binary model on the held-out margins zh (Platt, or the
 * temperature fallback), recording what was done in rep. Returns 0, or -1
 * with errstr when the score would be constant whatever the calibration:
 * the raw margins of every example (zall, n_all) are the same. */
int lr_calibrate_binary(struct ks_lr_model *m,
                        const double *zh,
                        const size_t *yh,
                        size_t n_hold,
                        const double *zall,
                        size_t n_all,
                        struct ks_lr_report *rep,
                        char *errstr,
                        size_t errstr_size)
{
    double a, c;

    fit_platt(zh, yh, n_hold, &a, &c);
    rep->platt_fitted_a = a;
    if (a > 0 && prob_spread(zh, n_hold, a, c) > LR_MIN_SPREAD) {
        m->platt_a = a;
        m->platt_c = c;
        rep->calibration = "platt";
        return 0;
    }
    m->platt_a = fit_beta(zh, yh, n_hold);
    m->platt_c = 0;
    rep->calibration = "temperature";
    if (prob_spread(zall, n_all, m->platt_a, 0) > LR_MIN_SPREAD) {
        return 0;
    }
    snprintf(errstr, errstr_size,
             "the calibrated score is constant (every raw margin is the "
             "same, Platt slope %.4g): the model cannot tell the "
             "examples apart; no model written",
             a);
    return -1;
}
