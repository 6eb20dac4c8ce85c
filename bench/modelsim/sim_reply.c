/*
 * sim_reply.c - response helpers over libmicrohttpd.
 *
 * Invariant: a body handed to sim_reply_send is freed exactly once, by MHD
 * after sending or here when the response cannot be built.
 */
#include "sim_reply.h"

#include <stdlib.h>
#include <string.h>

#include "sim_answer.h"

#include "base/banned.h"

enum MHD_Result sim_reply_send(struct MHD_Connection *conn,
                               unsigned int status,
                               char *body,
                               const char *ctype,
                               const char *header,
                               const char *value)
{
    static const char oom[] =
        "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}";
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (body == NULL) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        ctype = SIM_REPLY_JSON;
        header = NULL;
        resp = MHD_create_response_from_buffer(strlen(oom), (void *)oom,
                                               MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_buffer(strlen(body), body,
                                               MHD_RESPMEM_MUST_FREE);
        if (resp == NULL) {
            free(body);
        }
    }
    if (resp == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (header != NULL) {
        MHD_add_response_header(resp, header, value);
    }
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result sim_reply_error(struct MHD_Connection *conn,
                                unsigned int status,
                                const char *message,
                                const char *type,
                                const char *code)
{
    char *body = sim_answer_error(message, type, code);

    return sim_reply_send(conn, status, body, SIM_REPLY_JSON, NULL, NULL);
}
