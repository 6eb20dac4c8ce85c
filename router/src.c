/*
 * src.c - the view of a consumed message the handlers share, its format
 * (content-type header first, the payload's look second), and the
 * routing headers of its copy on a tier topic.
 */
#include "src.h"

#include <stdio.h>

#include "kafka/produce.h"

#include "base/banned.h"

struct src router_src_of(const rd_kafka_message_t *rkm, const char *topic)
{
    rd_kafka_headers_t *hdrs = NULL;
    struct src s = {topic,        rkm->partition, rkm->offset, rkm->key,
                    rkm->key_len, rkm->payload,   rkm->len,    NULL};

    if (rd_kafka_message_headers(rkm, &hdrs) == 0) {
        s.hdrs = hdrs;
    }
    return s;
}

enum ks_err router_src_format(const struct src *s,
                              enum ks_format *fmt,
                              struct ks_codec_error *cerr)
{
    char ctype[64] = "";
    const void *ct = NULL;
    size_t ctlen = 0;

    if (s->hdrs &&
        rd_kafka_header_get_last(s->hdrs, KS_HDR_CONTENT_TYPE, &ct, &ctlen) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        ct) {
        snprintf(ctype, sizeof(ctype), "%.*s", (int)ctlen, (const char *)ct);
    }
    return ks_codec_detect(ct ? ctype : NULL, s->payload, s->len, fmt, cerr);
}

rd_kafka_headers_t *router_routing_headers(const rd_kafka_headers_t *orig,
                                           const char *tier,
                                           uint32_t hop,
                                           const char *reason)
{
    rd_kafka_headers_t *hdrs;
    char hopbuf[16] = "0";

    if (orig && rd_kafka_header_cnt(orig) > 0) {
        hdrs = rd_kafka_headers_copy(orig);
        rd_kafka_header_remove(hdrs, KS_HDR_TIER);
        rd_kafka_header_remove(hdrs, KS_HDR_HOP);
        rd_kafka_header_remove(hdrs, KS_HDR_REASON);
    } else {
        /* the common case: nothing to copy or take out */
        hdrs = rd_kafka_headers_new(3);
    }
    if (hop > 0) {
        snprintf(hopbuf, sizeof(hopbuf), "%u", (unsigned)hop);
    }
    rd_kafka_header_add(hdrs, KS_HDR_TIER, -1, tier, -1);
    rd_kafka_header_add(hdrs, KS_HDR_HOP, -1, hopbuf, -1);
    rd_kafka_header_add(hdrs, KS_HDR_REASON, -1, reason, -1);
    return hdrs;
}
