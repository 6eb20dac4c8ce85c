/*
 * eval_plot.c - eval's two SVG plots: quality against cost (each signal's
 * cascade curve, the router score's routing curve, random, the oracle and
 * each tier alone) and the reliability diagram. Costs are plotted per
 * 1,000 tasks and quality in percent, so the tick labels stay short.
 */
#include <math.h>
#include <stdio.h>

#include "eval_report.h"
#include "eval_svg.h"

#include "base/banned.h"

#define MAX_PLOT 201 /* points per curve in a plot */

/* Samples a curve to at most MAX_PLOT points: x in USD per 1000 tasks,
 * y in percent. Returns the count. */
static size_t sample(const struct ev_curve *c,
                     bool cascade,
                     double *x,
                     double *y)
{
    size_t step = c->n / (MAX_PLOT - 1) + 1, m = 0;
    const double *cost = cascade ? c->cost_casc : c->cost_route;

    for (size_t k = 0; k <= c->n; k += step) {
        x[m] = 1000 * cost[k];
        y[m++] = 100 * c->acc[k];
    }
    if ((c->n % step) != 0) {
        x[m] = 1000 * cost[c->n];
        y[m++] = 100 * c->acc[c->n];
    }
    return m;
}

int ev_plot_curves(const char *dir,
                   const struct ev_set *set,
                   const struct ev_signals *s,
                   size_t lo,
                   size_t hi)
{
    struct ev_svg_series ser[EV_SIGNALS_MAX + 1];
    double xs[EV_SIGNALS_MAX + 1][MAX_PLOT + 1];
    double ys[EV_SIGNALS_MAX + 1][MAX_PLOT + 1];
    char names[EV_SIGNALS_MAX + 1][96], path[4096], title[256];
    struct ev_svg_plot p = {.title = title,
                            .xlabel = "cost (USD per 1,000 tasks)",
                            .ylabel = "quality (% of tasks right)",
                            .xmin = 0,
                            .ymin = 100,
                            .ymax = 0};
    size_t m = 0;

    for (size_t j = 0; j < s->n; j++) {
        bool cascade = s->sig[j] != EV_SIG_ROUTER;

        ser[m] =
            (struct ev_svg_series){.name = names[m], .x = xs[m], .y = ys[m]};
        ser[m].n = sample(&s->c[j], cascade, xs[m], ys[m]);
        ser[m].dashed = j >= s->n_real; /* the baselines */
        snprintf(names[m], sizeof(names[m]), "%s (%s)",
                 ev_signal_name(set, s->sig[j]),
                 cascade ? "cascade" : "routing");
        m++;
    }
    ser[m] = (struct ev_svg_series){.name = "all-cheap, all-top",
                                    .x = xs[m],
                                    .y = ys[m],
                                    .n = 2,
                                    .markers = true};
    xs[m][0] = 1000 * s->c[0].cost_route[0];
    ys[m][0] = 100 * s->c[0].acc[0];
    xs[m][1] = 1000 * s->c[0].cost_route[s->c[0].n];
    ys[m][1] = 100 * s->c[0].acc[s->c[0].n];
    m++;
    for (size_t j = 0; j < m; j++) {
        for (size_t i = 0; i < ser[j].n; i++) {
            p.xmax = fmax(p.xmax, ser[j].x[i]);
            p.ymin = fmin(p.ymin, ser[j].y[i]);
            p.ymax = fmax(p.ymax, ser[j].y[i]);
        }
    }
    p.xmax = p.xmax > 0 ? p.xmax * 1.05 : 1;
    p.ymin = fmax(0, floor(p.ymin - 2));
    p.ymax = fmin(100, ceil(p.ymax + 2));
    snprintf(title, sizeof(title), "Quality against cost: %s -> %s",
             set->tiers[lo], set->tiers[hi]);
    snprintf(path, sizeof(path), "%s/quality_cost.svg", dir);
    return ev_svg_write(path, &p, ser, m);
}

int ev_plot_reliability(const char *dir,
                        const struct ev_set *set,
                        const struct ev_task **t,
                        const int *sig,
                        size_t n_sig,
                        size_t lo)
{
    struct ev_svg_series ser[EV_MAX_SOURCES + 2];
    double xs[EV_MAX_SOURCES + 2][EV_BINS], ys[EV_MAX_SOURCES + 2][EV_BINS];
    static const double diag[2] = {0, 1};
    char path[4096], names[EV_MAX_SOURCES + 2][96];
    struct ev_svg_plot p = {.title = "Reliability: predicted against observed",
                            .xlabel = "predicted probability (bin mean)",
                            .ylabel = "observed frequency",
                            .xmin = 0,
                            .xmax = 1,
                            .ymin = 0,
                            .ymax = 1};
    size_t m = 0;

    ser[m++] = (struct ev_svg_series){.name = "perfect calibration",
                                      .x = diag,
                                      .y = diag,
                                      .n = 2,
                                      .dashed = true};
    for (size_t j = 0; j < n_sig; j++) {
        struct ev_rel rel;
        size_t k = 0;

        ev_reliability_of(t, set->n, lo, sig[j], &rel);
        for (int b = 0; b < EV_BINS; b++) {
            if (rel.count[b]) {
                xs[m][k] = rel.mean_p[b];
                ys[m][k++] = rel.observed[b];
            }
        }
        snprintf(names[m], sizeof(names[m]), "%s (ECE %.3f)",
                 ev_signal_name(set, sig[j]), rel.ece);
        ser[m] = (struct ev_svg_series){
            .name = names[m], .x = xs[m], .y = ys[m], .n = k, .markers = true};
        m++;
    }
    snprintf(path, sizeof(path), "%s/reliability.svg", dir);
    return ev_svg_write(path, &p, ser, m);
}
