/*
 * outcome.h - what a decision (task.c, escalate.c) asks dispatch.c to do
 * with the message it was made for. The deciding files compute it and
 * return it; dispatch.c applies it (produces, answers, dead-letters or
 * defers to the deferred topic), so deciding never produces by itself.
 */
#ifndef KASCADE_ROUTER_OUTCOME_H
#define KASCADE_ROUTER_OUTCOME_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "wire/codec.h"

enum router_act {
    ROUTER_ACT_RECORD = 0, /* produce the record below */
    ROUTER_ACT_RESULT,     /* answer the task with res */
    ROUTER_ACT_DLQ,        /* dead-letter the message */
    ROUTER_ACT_HOLD,       /* defer: the message goes to the deferred
                              topic, decided again in a later round */
};

/* Fields by act; the outcome owns buf, hdrs and res until applied, the
 * rest is borrowed from the router, the message, or the task or context
 * it was decided for (keep those alive until it is applied). */
struct router_outcome {
    enum router_act act;
    /* ROUTER_ACT_RECORD */
    const char *topic;
    const void *key;
    size_t key_len;
    const void *value; /* the message's payload, or buf */
    size_t len;
    char *buf;                /* owned; NULL when value is the message's */
    rd_kafka_headers_t *hdrs; /* owned */
    /* ROUTER_ACT_RESULT: res (owned) answers task in fmt */
    struct ks_result *res;
    const struct ks_task *task;
    enum ks_format fmt;
    /* ROUTER_ACT_DLQ */
    const char *code; /* static */
    char detail[400];
};

#endif
