/*
 * sim_deliver.c - answers that go wrong after the provider did its work.
 *
 * Invariants:
 * - out is freed exactly once: here for reset and rst, by MHD through the
 *   response for the others (or here when the response cannot be built).
 * - A truncated body declares the whole answer's Content-Length and stops
 *   at half of it, so the client sees a short transfer, not bad JSON.
 * - A huge body is chunked (no Content-Length to refuse it by), valid JSON
 *   if read to its end, and generated as it is sent: the simulator never
 *   holds more than one block of it.
 * - Every wait and every block sent checks chat->stopping.
 */
#include "sim_deliver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include <cjson/cJSON.h>

#include "sim_reply.h"

#include "base/banned.h"

/* Bytes handed to MHD per callback of a streamed body. */
#define BLOCK_BYTES (64 * 1024)

/* A body streamed by callback: the truncated answer or the huge one. */
struct stream {
    struct sim_chat *chat; /* borrowed */
    char *head;            /* truncated: the answer; huge: the prefix */
    size_t head_len;
    char *tail; /* huge: the suffix; NULL for truncated */
    size_t tail_len;
    uint64_t total; /* bytes to send before the end (or the cut) */
};

bool sim_deliver_handles(enum sim_kind kind)
{
    return kind == SIM_KIND_RESET || kind == SIM_KIND_RST ||
           kind == SIM_KIND_TIMEOUT || kind == SIM_KIND_TRUNCATED ||
           kind == SIM_KIND_HUGE;
}

static void stream_free(void *cls)
{
    struct stream *s = cls;

    free(s->head);
    free(s->tail);
    free(s);
}

/* Byte pos of the huge body: prefix, filler, suffix. */
static char huge_byte(const struct stream *s, uint64_t pos)
{
    if (pos < s->head_len) {
        return s->head[pos];
    }
    if (pos >= s->total - s->tail_len) {
        return s->tail[pos - (s->total - s->tail_len)];
    }
    return 'x';
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    size_t n;

    if (atomic_load(&s->chat->stopping)) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (pos >= s->total) {
        /* truncated: cut here, the client is still owed the rest */
        return s->tail == NULL ? MHD_CONTENT_READER_END_WITH_ERROR
                               : MHD_CONTENT_READER_END_OF_STREAM;
    }
    n = max < BLOCK_BYTES ? max : BLOCK_BYTES;
    if (n > s->total - pos) {
        n = (size_t)(s->total - pos);
    }
    if (s->tail == NULL) {
        memcpy(buf, s->head + pos, n);
        return (ssize_t)n;
    }
    for (size_t i = 0; i < n; i++) {
        buf[i] = huge_byte(s, pos + i);
    }
    return (ssize_t)n;
}

static enum MHD_Result send_stream(struct MHD_Connection *conn,
                                   struct stream *s,
                                   uint64_t declared)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(
        declared, BLOCK_BYTES, stream_read, s, stream_free);
    enum MHD_Result ret;

    if (resp == NULL) {
        stream_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, SIM_REPLY_JSON);
    ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_truncated(struct sim_chat *chat,
                                      struct MHD_Connection *conn,
                                      char *out)
{
    struct stream *s = calloc(1, sizeof(*s));
    size_t len = strlen(out);

    if (s == NULL) {
        free(out);
        return MHD_NO;
    }
    s->chat = chat;
    s->head = out;
    s->head_len = len;
    s->total = len / 2;
    return send_stream(conn, s, len);
}

/* The JSON around the huge content: usage copied from the real answer so
 * a client that did read it all would see the billed tokens. */
static int huge_parts(const char *out, char **prefix, char **suffix)
{
    cJSON *root = cJSON_Parse(out);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    char *usage =
        cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(root, "usage"));
    size_t n;

    *prefix = *suffix = NULL;
    n = 160 + (cJSON_IsString(model) ? strlen(model->valuestring) : 0);
    *prefix = malloc(n);
    *suffix = malloc(64 + (usage ? strlen(usage) : 4));
    if (*prefix != NULL && *suffix != NULL) {
        snprintf(*prefix, n,
                 "{\"id\":\"chatcmpl-sim-huge\",\"object\":\"chat.completion\","
                 "\"model\":\"%s\",\"choices\":[{\"index\":0,\"message\":"
                 "{\"role\":\"assistant\",\"content\":\"",
                 cJSON_IsString(model) ? model->valuestring : "");
        snprintf(*suffix, 64 + (usage ? strlen(usage) : 4),
                 "\"},\"finish_reason\":\"stop\"}],\"usage\":%s}",
                 usage ? usage : "null");
    }
    cJSON_free(usage);
    cJSON_Delete(root);
    return *prefix != NULL && *suffix != NULL ? 0 : -1;
}

static enum MHD_Result send_huge(struct sim_chat *chat,
                                 struct MHD_Connection *conn,
                                 char *out)
{
    struct stream *s = calloc(1, sizeof(*s));
    int rc = s != NULL ? huge_parts(out, &s->head, &s->tail) : -1;

    free(out);
    if (rc != 0) {
        if (s != NULL) {
            stream_free(s);
        }
        return MHD_NO;
    }
    s->chat = chat;
    s->head_len = strlen(s->head);
    s->tail_len = strlen(s->tail);
    s->total = (uint64_t)chat->cfg->huge_bytes;
    if (s->total < s->head_len + s->tail_len) {
        s->total = s->head_len + s->tail_len;
    }
    return send_stream(conn, s, MHD_SIZE_UNKNOWN);
}

/* Resets the connection with a TCP RST before MHD closes it (MHD shuts
 * the socket down first, which would send a FIN): SO_LINGER 0, then
 * connect() to AF_UNSPEC, which on Linux aborts an established TCP
 * connection with a reset and leaves MHD a disconnected socket to close. */
static enum MHD_Result send_rst(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct linger lg = {1, 0};
    struct sockaddr sa;

    if (info != NULL) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_family = AF_UNSPEC;
        setsockopt(info->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        (void)connect(info->connect_fd, &sa, sizeof(sa));
    }
    return MHD_NO;
}

enum MHD_Result sim_deliver_fault(struct sim_chat *chat,
                                  struct MHD_Connection *conn,
                                  enum sim_kind kind,
                                  char *out,
                                  int64_t start_ms)
{
    switch (kind) {
    case SIM_KIND_TIMEOUT:
        /* The answer is ready; the client gave up long before. */
        if (!sim_chat_wait_until(chat, start_ms + chat->cfg->hang_ms)) {
            free(out);
            return MHD_NO;
        }
        return sim_reply_send(conn, MHD_HTTP_OK, out, SIM_REPLY_JSON, NULL,
                              NULL);
    case SIM_KIND_TRUNCATED:
        return send_truncated(chat, conn, out);
    case SIM_KIND_HUGE:
        return send_huge(chat, conn, out);
    case SIM_KIND_RST:
        free(out);
        return send_rst(conn);
    default: /* SIM_KIND_RESET: closed without a response */
        free(out);
        return MHD_NO;
    }
}
