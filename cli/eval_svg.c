/*
 * eval_svg.c - the SVG writer (see eval_svg.h). Data coordinates map to a
 * fixed 640x440 canvas; ticks fall on 1, 2 or 5 times a power of ten;
 * names are XML-escaped; NAN points are left out.
 */
#include "eval_svg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"

#include "base/banned.h"

#define W  700.0
#define H  440.0
#define ML 80.0  /* left margin: y tick labels and the y label */
#define MR 230.0 /* right margin: the legend */
#define MT 40.0
#define MB 60.0

static const char *const colours[] = {"#1f77b4", "#d62728", "#2ca02c",
                                      "#ff7f0e", "#9467bd", "#8c564b",
                                      "#e377c2", "#7f7f7f"};

static void put_escaped(FILE *fp, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", fp);
            break;
        case '>':
            fputs("&gt;", fp);
            break;
        case '&':
            fputs("&amp;", fp);
            break;
        case '"':
            fputs("&quot;", fp);
            break;
        default:
            fputc(*s, fp);
        }
    }
}

static double px(const struct ev_svg_plot *p, double x)
{
    return ML + (x - p->xmin) / (p->xmax - p->xmin) * (W - ML - MR);
}

static double py(const struct ev_svg_plot *p, double y)
{
    return H - MB - (y - p->ymin) / (p->ymax - p->ymin) * (H - MT - MB);
}

/* A tick step of 1, 2 or 5 times a power of ten giving about 5 ticks. */
static double tick_step(double range)
{
    double raw = range / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;

    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void axes(FILE *fp, const struct ev_svg_plot *p)
{
    double sx = tick_step(p->xmax - p->xmin), sy = tick_step(p->ymax - p->ymin);

    fprintf(fp,
            "<g class=\"axes\" stroke=\"#000\" fill=\"none\">\n"
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n"
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n"
            "</g>\n",
            ML, H - MB, W - MR, H - MB, ML, H - MB, ML, MT);
    fputs("<g class=\"ticks\" font-family=\"sans-serif\" font-size=\"11\">\n",
          fp);
    for (double x = ceil(p->xmin / sx) * sx; x <= p->xmax + sx * 1e-6;
         x += sx) {
        fprintf(fp,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#000\"/><text class=\"xtick\" x=\"%.1f\" "
                "y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                px(p, x), H - MB, px(p, x), H - MB + 5, px(p, x), H - MB + 18,
                fabs(x) < sx * 1e-6 ? 0 : x);
    }
    for (double y = ceil(p->ymin / sy) * sy; y <= p->ymax + sy * 1e-6;
         y += sy) {
        fprintf(fp,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#ddd\"/><text class=\"ytick\" x=\"%.1f\" "
                "y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                ML, py(p, y), W - MR, py(p, y), ML - 6, py(p, y) + 4,
                fabs(y) < sy * 1e-6 ? 0 : y);
    }
    fputs("</g>\n", fp);
    fprintf(fp,
            "<text class=\"xlabel\" x=\"%.1f\" y=\"%.1f\" "
            "text-anchor=\"middle\" font-family=\"sans-serif\" "
            "font-size=\"13\">",
            (ML + W - MR) / 2, H - 15);
    put_escaped(fp, p->xlabel);
    fprintf(fp,
            "</text>\n<text class=\"ylabel\" x=\"18\" y=\"%.1f\" "
            "text-anchor=\"middle\" font-family=\"sans-serif\" "
            "font-size=\"13\" transform=\"rotate(-90 18 %.1f)\">",
            (MT + H - MB) / 2, (MT + H - MB) / 2);
    put_escaped(fp, p->ylabel);
    fputs("</text>\n", fp);
}

static void series(FILE *fp,
                   const struct ev_svg_plot *p,
                   const struct ev_svg_series *s,
                   const char *colour)
{
    if (s->markers) {
        fprintf(fp, "<g class=\"series\" fill=\"%s\">\n", colour);
        for (size_t i = 0; i < s->n; i++) {
            if (!isnan(s->x[i]) && !isnan(s->y[i])) {
                fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\"/>\n",
                        px(p, s->x[i]), py(p, s->y[i]));
            }
        }
        fputs("</g>\n", fp);
        return;
    }
    fprintf(fp,
            "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" "
            "stroke-width=\"2\"%s points=\"",
            colour, s->dashed ? " stroke-dasharray=\"6 4\"" : "");
    for (size_t i = 0; i < s->n; i++) {
        if (!isnan(s->x[i]) && !isnan(s->y[i])) {
            fprintf(fp, "%.1f,%.1f ", px(p, s->x[i]), py(p, s->y[i]));
        }
    }
    fputs("\"/>\n", fp);
}

static void legend(FILE *fp, const struct ev_svg_series *s, size_t n)
{
    fputs("<g class=\"legend\" font-family=\"sans-serif\" "
          "font-size=\"12\">\n",
          fp);
    for (size_t i = 0; i < n; i++) {
        const char *c = colours[i % (sizeof(colours) / sizeof(*colours))];
        double y = MT + 10 + 20.0 * (double)i;

        if (s[i].markers) {
            fprintf(fp,
                    "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" "
                    "fill=\"%s\"/>\n",
                    W - MR + 25, y, c);
        } else {
            fprintf(fp,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                    "y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
                    W - MR + 12, y, W - MR + 38, y, c,
                    s[i].dashed ? " stroke-dasharray=\"6 4\"" : "");
        }
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">", W - MR + 44, y + 4);
        put_escaped(fp, s[i].name);
        fputs("</text>\n", fp);
    }
    fputs("</g>\n", fp);
}

int ev_svg_write(const char *path,
                 const struct ev_svg_plot *p,
                 const struct ev_svg_series *s,
                 size_t n_series)
{
    FILE *fp;
    int rc = 0;

    if (!(p->xmax > p->xmin) || !(p->ymax > p->ymin)) {
        fprintf(stderr, "kascade: %s: empty plot range\n", path);
        return -1;
    }
    fp = fopen(path, "w");
    if (!fp) {
        char buf[128];

        fprintf(stderr, "kascade: %s: %s\n", path,
                ks_strerror(errno, buf, sizeof(buf)));
        return -1;
    }
    fprintf(fp,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
            "<title>",
            W, H, W, H);
    put_escaped(fp, p->title);
    fprintf(fp,
            "</title>\n<text class=\"title\" x=\"%.1f\" y=\"24\" "
            "text-anchor=\"middle\" font-family=\"sans-serif\" "
            "font-size=\"15\">",
            W / 2);
    put_escaped(fp, p->title);
    fputs("</text>\n", fp);
    axes(fp, p);
    for (size_t i = 0; i < n_series; i++) {
        series(fp, p, &s[i], colours[i % (sizeof(colours) / sizeof(*colours))]);
    }
    legend(fp, s, n_series);
    fputs("</svg>\n", fp);
    if (ferror(fp)) {
        rc = -1;
    }
    if (fclose(fp) != 0 || rc) {
        fprintf(stderr, "kascade: %s: write failed\n", path);
        return -1;
    }
    return 0;
}
