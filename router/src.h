/*
 * src.h - a consumed message as the router's parts see it: a view of the
 * rkm (borrowed, valid while the rkm lives) or of a deferred record's
 * original, its wire format, and the headers its routed copy carries.
 * One thread: the router's.
 */
#ifndef KASCADE_ROUTER_SRC_H
#define KASCADE_ROUTER_SRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "base/err.h"
#include "wire/codec.h"

struct src {
    const char *topic; /* borrowed from the offsets tracker */
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *payload;
    size_t len;
    const rd_kafka_headers_t *hdrs; /* NULL when none */
    bool reencode; /* the decoded task was changed (its tenant taken from
                      the topic): the tier record carries it encoded
                      again, not the payload */
};

/* A view of rkm under topic (both borrowed: the view is valid while they
 * are). */
struct src router_src_of(const rd_kafka_message_t *rkm, const char *topic);

/* The format of s: its content-type header when it has one, else
 * sniffed from the payload (ks_codec_detect). Returns KS_OK with *fmt, or
 * an error with *cerr filled in for the DLQ. */
enum ks_err router_src_format(const struct src *s,
                              enum ks_format *fmt,
                              struct ks_codec_error *cerr);

/* The original headers (borrowed, may be NULL) without kascade's routing
 * ones, plus new ones for tier, hop and reason. Caller owns the result. */
rd_kafka_headers_t *router_routing_headers(const rd_kafka_headers_t *orig,
                                           const char *tier,
                                           uint32_t hop,
                                           const char *reason);

#endif
