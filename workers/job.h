/*
 * job.h - one task's way through the worker (job.c): accepted from Kafka,
 * answered from its done record or by a model call, published, and its
 * offset released once everything it produced is acknowledged. The job
 * module, job.c with its parts job_life.c (the job list, a job's end),
 * job_call.c (reservations, calls; defines job_call_done) and
 * job_store.c (done records in bulk), is the only code that changes a
 * job's state (job->state, the job list, producing, storing,
 * dead-lettering, freeing); the modules it calls compute and return. Called by
 * worker.c (the event loop, delivery reports, rebalances) and fetch.c. Nothing
 * it returns is owned by the caller. Event-loop thread only.
 */
#ifndef KASCADE_WORKERS_JOB_H
#define KASCADE_WORKERS_JOB_H

#include "worker_internal.h"

/* Takes ownership of rkm: a job for it joins the worker's list, or the
 * message is dead-lettered when it cannot be decoded. */
void job_accept(struct worker *w, rd_kafka_message_t *rkm);

/* Moves every job whose time has come (slots free, backoff over, Redis
 * back). Returns the ms until the next job is due (or 100). */
int64_t job_advance_all(struct worker *w);

/* A curl transfer finished. */
void job_call_done(struct worker *w, CURL *easy, CURLcode rc);

/* A record produced by the job was acknowledged (ok), or is lost for
 * good (!ok: the offset stays uncommitted). */
void job_delivered(struct worker *w, struct job *job, bool ok);

/* A record produced by the job failed delivery: it is produced again, or,
 * for a reply_to topic that does not exist, the task is dead-lettered. */
void job_delivery_failed(struct worker *w,
                         struct job *job,
                         const rd_kafka_message_t *rkm);

/* Revocation of parts began: marks their jobs (no call starts for them
 * again) and drops at once, uncommitted, those whose call has not started
 * (JOB_CHECK_DONE, JOB_WAIT_SLOT, JOB_BACKOFF): the next owner is given
 * their tasks again. parts NULL: drops the marked jobs that went back to
 * waiting since (a failed call to retry or fall back). Returns how many
 * were dropped. */
size_t job_drop_revoked(struct worker *w,
                        const rd_kafka_topic_partition_list_t *parts);

/* Drops a job whose partition is gone (or at the drain deadline): its
 * call is cancelled, nothing is committed for it. */
void job_abandon(struct worker *w, struct job *job);

#endif
