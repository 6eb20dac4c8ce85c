/*
 * classify.h - the in-process "classifier" provider (classify.c): the
 * triage models of the tier's classifier providers (owned by the worker,
 * loaded at start) and their answers, returned to job.c in a struct
 * ks_answer the caller owns. Event-loop thread only.
 */
#ifndef KASCADE_WORKERS_CLASSIFY_H
#define KASCADE_WORKERS_CLASSIFY_H

#include "worker_internal.h"

/* Loads the triage model of every classifier provider of the tier.
 * Returns 0, or -1 with errstr (file, reason). */
int classify_open(struct worker *w, char *errstr, size_t errstr_size);
void classify_close(struct worker *w);

/* Is provider i of the tier the in-process classifier? */
bool classify_is(const struct worker *w, int provider);

/* Fills ans (caller finishes it with ks_answer_fini) with the
 * classifier's label for the job and its probability. */
void classify_run(struct worker *w,
                  const struct job *job,
                  struct ks_answer *ans);

#endif
