/*
 * sim_conf.h - per-prompt confidence for the model simulator
 * (--confidence-dist LO:HI, --escalate-below X): each prompt gets a stable
 * confidence in [LO, HI] from a hash of its text, so a run has a realistic
 * mix of confident and unconfident answers. Pure functions; thread-safe.
 */
#ifndef KASCADE_MODELSIM_SIM_CONF_H
#define KASCADE_MODELSIM_SIM_CONF_H

#include <stddef.h>

/* Parses "LO:HI" with 0 <= LO <= HI <= 1. Returns 0, or -1 with a reason
 * in errstr. */
int sim_conf_range_parse(
    const char *text, double *lo, double *hi, char *errstr, size_t errstr_size);

/* Returns the confidence of text (len bytes): an FNV-1a hash of it mapped
 * uniformly into [lo, hi], rounded to 3 decimals. */
double sim_conf_of_prompt(double lo, double hi, const char *text, size_t len);

#endif
