/*
 * sim_reply.h - queueing libmicrohttpd responses: a body with its status
 * and content type, or an OpenAI-style error. Callable from any connection
 * thread, for its own connection.
 */
#ifndef KASCADE_MODELSIM_SIM_REPLY_H
#define KASCADE_MODELSIM_SIM_REPLY_H

#include <microhttpd.h>

#define SIM_REPLY_JSON "application/json"

/* Queues body with status and ctype, plus header: value when header is
 * not NULL. Takes ownership of body (malloc'd); a NULL body means memory
 * ran out and sends a fixed 500 instead. Returns MHD's verdict. */
enum MHD_Result sim_reply_send(struct MHD_Connection *conn,
                               unsigned int status,
                               char *body,
                               const char *ctype,
                               const char *header,
                               const char *value);

/* Queues {"error": {"message", "type", "param", "code"}} with status;
 * code may be NULL. */
enum MHD_Result sim_reply_error(struct MHD_Connection *conn,
                                unsigned int status,
                                const char *message,
                                const char *type,
                                const char *code);

#endif
