/*
 * eval_svg.h - a small SVG writer for eval's plots: one x-y chart with
 * axes, ticks, axis labels with units, a legend and a title; series drawn
 * as lines or as markers. The file is plain SVG 1.1 that a browser opens.
 * Single-threaded. Ownership: everything passed in is borrowed.
 */
#ifndef KASCADE_CLI_EVAL_SVG_H
#define KASCADE_CLI_EVAL_SVG_H

#include <stdbool.h>
#include <stddef.h>

struct ev_svg_series {
    const char *name; /* legend text */
    const double *x, *y;
    size_t n;
    bool markers; /* circles at each point instead of a line */
    bool dashed;
};

struct ev_svg_plot {
    const char *title;
    const char *xlabel, *ylabel; /* with their units, e.g. "cost (USD)" */
    double xmin, xmax, ymin, ymax;
};

/* Writes the chart to path. Returns 0, or -1 with the reason on stderr. */
int ev_svg_write(const char *path,
                 const struct ev_svg_plot *p,
                 const struct ev_svg_series *s,
                 size_t n_series);

#endif
