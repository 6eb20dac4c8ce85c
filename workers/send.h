/*
 * send.h - a job's records out and their failures (send.c): produced
 * keyed by the task id and counted in job->unacked; a refused produce or
 * failed delivery is produced again after a backoff, dead-lettered, or
 * replaced by a `too_large` Result (policy in send.c). Called by the job
 * module only (job*.c), which owns the job and frees it; nothing here frees a
 * job. Event-loop thread only.
 */
#ifndef KASCADE_WORKERS_SEND_H
#define KASCADE_WORKERS_SEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker_internal.h"

/* Produces value (copied) to topic, keyed by the task id, in the job's
 * format. */
void send_produce(struct worker *w,
                  struct job *job,
                  const char *topic,
                  const char *value,
                  size_t len);

/* Sends the job's original message to the DLQ with code and detail
 * (both copied), counting it in kascade_dlq_total. */
void send_dead_letter(struct worker *w,
                      struct job *job,
                      const char *code,
                      const char *detail);

/* A record of the job failed with err (topic, key, value borrowed; takes
 * ownership of hdrs). Returns true when it is dealt with (its count in
 * job->unacked may go: a replacement, if any, is counted already), false
 * when it stays counted (waiting in job->redo, a kafka/redo.h queue). */
bool send_failed(struct worker *w,
                 struct job *job,
                 const char *topic,
                 const void *key,
                 size_t key_len,
                 const void *value,
                 size_t len,
                 rd_kafka_headers_t *hdrs,
                 rd_kafka_resp_err_t err);

/* Produces the job's records whose backoff is over (an abandoned job's
 * are dropped); lowers *wait to the ms until the next one. */
void send_redo_due(struct worker *w,
                   struct job *job,
                   int64_t now,
                   int64_t *wait);

/* Drops every record of the job waiting to be produced again (each
 * leaves job->unacked). */
void send_redo_drop(struct job *job);

#endif
