/*
 * dispatch.h - messages in: decide each consumed message and apply the
 * outcome (dispatch.c). router.c's loop calls these; they call out to
 * task.c, escalate.c, defer.c and produce.c and never back into
 * router.c. Router thread only; the router is borrowed for the call.
 */
#ifndef KASCADE_ROUTER_DISPATCH_H
#define KASCADE_ROUTER_DISPATCH_H

#include <librdkafka/rdkafka.h>

struct router;

/* Handles one consumed message (borrowed; the caller destroys it after
 * the call: everything produced copies what it needs). A consumer error
 * is logged and skipped; anything else gets an offset ticket and ends as
 * exactly one record: its tier copy, a Result, a DLQ entry or its copy
 * on the deferred topic. */
void router_handle(struct router *rt, const rd_kafka_message_t *rkm);

/* Resumes the partitions paused for a full offsets window that have
 * drained below limits.max_open_offsets. */
void router_resume_drained(struct router *rt);

#endif
