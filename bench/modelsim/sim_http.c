/*
 * sim_http.c - the simulator's HTTP front: the daemon, routing, body
 * collection under --max-body, and the /stats and /healthz endpoints. What
 * happens to a complete chat request is sim_chat.c's business.
 *
 * Invariants:
 * - libmicrohttpd runs one thread per connection (poll, so descriptors
 *   above FD_SETSIZE work), so a chat handler may sleep for the simulated
 *   latency without holding up anyone else.
 * - A routed request owns one struct sim_request (MHD's con_cls) from its
 *   first callback until on_completed frees it, whatever happened; that is
 *   also where a chat request's inflight goes back down.
 * - A body never grows past --max-body: a bigger Content-Length is refused
 *   before reading, a chunked body is dropped as soon as it crosses it.
 * - Unknown paths and methods are answered on the first callback (MHD then
 *   closes the connection); known routes answer once the request is
 *   complete, so their connections stay alive.
 */
#include "sim_http.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "base/log.h"
#include "base/util.h"
#include "sim_anthropic.h"
#include "sim_chat.h"
#include "sim_reply.h"

#include "base/banned.h"

#define TAG "modelsim"

/* Idle keep-alive connections are dropped after this many seconds. */
#define IDLE_TIMEOUT_S 120

/* Ample for cJSON's recursion (depth capped at SIM_ANSWER_MAX_DEPTH). */
#define THREAD_STACK_BYTES (1024 * 1024)

struct sim_server {
    struct sim_config cfg;
    struct sim_chat chat; /* points at cfg */
    struct MHD_Daemon *daemon;
    uint16_t port;
};

enum route_id {
    ROUTE_CHAT,
    ROUTE_MESSAGES, /* the Anthropic Messages API (sim_anthropic.c) */
    ROUTE_STATS,
    ROUTE_STATS_RESET,
    ROUTE_HEALTHZ,
};

static const struct route {
    const char *path;
    const char *method; /* the one method allowed (GET also takes HEAD) */
    enum route_id id;
} routes[] = {
    {"/v1/chat/completions", "POST", ROUTE_CHAT},
    {"/v1/messages", "POST", ROUTE_MESSAGES},
    {"/stats", "GET", ROUTE_STATS},
    {"/stats/reset", "POST", ROUTE_STATS_RESET},
    {"/healthz", "GET", ROUTE_HEALTHZ},
};

/* One routed request in progress: MHD's con_cls. Only chat requests
 * collect a body and count in the stats. */
struct sim_request {
    enum route_id route;
    int64_t start_ms; /* latency counts from the request's arrival */
    char *body;       /* not NUL-terminated */
    size_t len;
    size_t cap;
    bool too_large;
    bool nomem;
};

/* Model routes collect a body and count in the stats. */
static bool is_model(enum route_id id)
{
    return id == ROUTE_CHAT || id == ROUTE_MESSAGES;
}

static const struct route *route_find(const char *url)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(url, routes[i].path) == 0) {
            return &routes[i];
        }
    }
    return NULL;
}

static bool method_allowed(const struct route *r, const char *method)
{
    if (strcmp(method, r->method) == 0) {
        return true;
    }
    return strcmp(r->method, "GET") == 0 && strcmp(method, "HEAD") == 0;
}

/* Adds n bytes of body, or marks the request too large or out of memory. */
static void body_append(struct sim_server *srv,
                        struct sim_request *req,
                        const char *data,
                        size_t n)
{
    size_t max = (size_t)srv->cfg.max_body;

    if (req->too_large || req->nomem) {
        return;
    }
    if (n > max - req->len) {
        req->too_large = true;
        free(req->body);
        req->body = NULL;
        req->len = req->cap = 0;
        return;
    }
    if (req->len + n > req->cap) {
        size_t cap = req->cap ? req->cap * 2 : 4096;
        char *body;

        cap = cap < req->len + n ? req->len + n : cap;
        cap = cap > max ? max : cap;
        body = realloc(req->body, cap); /* bounded by --max-body */
        if (body == NULL) {
            req->nomem = true;
            return;
        }
        req->body = body;
        req->cap = cap;
    }
    memcpy(req->body + req->len, data, n);
    req->len += n;
}

/* The whole chat request is in (or its size is known to be too big). */
static enum MHD_Result chat_finish(struct sim_server *srv,
                                   struct MHD_Connection *conn,
                                   const struct sim_request *req)
{
    struct sim_stats *st = &srv->chat.stats;

    if (req->too_large) {
        atomic_fetch_add(&st->errors[SIM_KIND_413], 1);
        return sim_reply_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                               "request body is larger than --max-body",
                               "invalid_request_error", "request_too_large");
    }
    if (req->nomem) {
        atomic_fetch_add(&st->errors[SIM_KIND_500], 1);
        return sim_reply_send(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL,
                              NULL, NULL);
    }
    if (req->route == ROUTE_MESSAGES) {
        return sim_anthropic_reply(&srv->chat, conn, req->body, req->len,
                                   req->start_ms);
    }
    return sim_chat_reply(&srv->chat, conn, req->body, req->len, req->start_ms);
}

/* First callback of a chat request: count it and refuse a declared body
 * over the cap before reading a byte of it. */
static enum MHD_Result chat_begin(struct sim_server *srv,
                                  struct MHD_Connection *conn,
                                  struct sim_request *req)
{
    const char *cl;
    int64_t declared;

    atomic_fetch_add(&srv->chat.stats.requests, 1);
    sim_stats_inflight_up(&srv->chat.stats);
    cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl == NULL || ks_parse_int64(cl, 0, INT64_MAX, &declared) != 0) {
        return MHD_YES; /* chunked: body_append enforces the cap */
    }
    if (declared > srv->cfg.max_body) {
        req->too_large = true;
        return chat_finish(srv, conn, req);
    }
    if (declared > 0) {
        req->body = malloc((size_t)declared); /* bounded by --max-body */
        req->cap = req->body ? (size_t)declared : 0;
    }
    return MHD_YES;
}

static enum MHD_Result send_stats(struct sim_server *srv,
                                  struct MHD_Connection *conn)
{
    return sim_reply_send(conn, MHD_HTTP_OK, sim_stats_json(&srv->chat.stats),
                          SIM_REPLY_JSON, NULL, NULL);
}

static enum MHD_Result on_first_call(struct sim_server *srv,
                                     struct MHD_Connection *conn,
                                     const char *url,
                                     const char *method,
                                     void **con_cls)
{
    const struct route *r = route_find(url);
    struct sim_request *req;

    if (r == NULL) {
        return sim_reply_error(conn, MHD_HTTP_NOT_FOUND, "unknown path",
                               "invalid_request_error", "not_found");
    }
    if (!method_allowed(r, method)) {
        return sim_reply_send(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                              sim_answer_error("method not allowed",
                                               "invalid_request_error", NULL),
                              SIM_REPLY_JSON, MHD_HTTP_HEADER_ALLOW, r->method);
    }
    req = ks_xcalloc(1, sizeof(*req));
    req->route = r->id;
    req->start_ms = ks_mono_ms();
    *con_cls = req;
    return is_model(r->id) ? chat_begin(srv, conn, req) : MHD_YES;
}

static enum MHD_Result on_last_call(struct sim_server *srv,
                                    struct MHD_Connection *conn,
                                    struct sim_request *req)
{
    switch (req->route) {
    case ROUTE_CHAT:
    case ROUTE_MESSAGES:
        return chat_finish(srv, conn, req);
    case ROUTE_STATS_RESET:
        sim_stats_reset(&srv->chat.stats);
        ks_log_info(TAG, "stats reset");
        return send_stats(srv, conn);
    case ROUTE_STATS:
        return send_stats(srv, conn);
    case ROUTE_HEALTHZ:
    default:
        return sim_reply_send(conn, MHD_HTTP_OK, ks_xstrdup("ok"), "text/plain",
                              NULL, NULL);
    }
}

static enum MHD_Result on_request(void *cls,
                                  struct MHD_Connection *conn,
                                  const char *url,
                                  const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size,
                                  void **con_cls)
{
    struct sim_server *srv = cls;
    struct sim_request *req = *con_cls;

    (void)version;
    if (req == NULL) {
        return on_first_call(srv, conn, url, method, con_cls);
    }
    if (*upload_data_size > 0) {
        if (is_model(req->route)) {
            body_append(srv, req, upload_data, *upload_data_size);
        }
        *upload_data_size = 0; /* other routes ignore their body */
        return MHD_YES;
    }
    return on_last_call(srv, conn, req);
}

static void on_completed(void *cls,
                         struct MHD_Connection *conn,
                         void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct sim_server *srv = cls;
    struct sim_request *req = *con_cls;

    (void)conn;
    (void)toe;
    if (req == NULL) {
        return;
    }
    if (is_model(req->route)) {
        atomic_fetch_sub(&srv->chat.stats.inflight, 1);
    }
    free(req->body);
    free(req);
    *con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls,
                                                             const char *fmt,
                                                             va_list ap)
{
    char line[512];
    size_t n;

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        line[--n] = '\0';
    }
    /* That one is our own MHD_NO: an injected reset or a shutdown. */
    if (strstr(line, "Application reported internal error") != NULL) {
        ks_log_debug(TAG, "microhttpd: %s", line);
    } else {
        ks_log_warn(TAG, "microhttpd: %s", line);
    }
}

/* Fills ss from a numeric host; returns 0, or -1 when it is not one. */
static int make_addr(const char *host,
                     uint16_t port,
                     struct sockaddr_storage *ss)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        return 0;
    }
    return -1;
}

static struct MHD_Daemon *start_daemon(struct sim_server *srv,
                                       struct sockaddr_storage *ss)
{
    unsigned int flags = MHD_USE_THREAD_PER_CONNECTION |
                         MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC |
                         MHD_USE_ERROR_LOG;
    unsigned int conns = srv->cfg.max_connections;

    if (ss->ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    /* The logger goes first so that no message reaches MHD's own. */
    /* clang-format off */
    return MHD_start_daemon(flags, srv->cfg.port, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)ss,
        MHD_OPTION_CONNECTION_LIMIT, conns,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, conns,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)IDLE_TIMEOUT_S,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK_BYTES,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_END);
    /* clang-format on */
}

struct sim_server *sim_server_new(const struct sim_config *cfg,
                                  char *errstr,
                                  size_t errstr_size)
{
    struct sim_server *srv = ks_xcalloc(1, sizeof(*srv));
    const union MHD_DaemonInfo *info;
    struct sockaddr_storage ss;

    srv->cfg = *cfg;
    sim_chat_init(&srv->chat, &srv->cfg);
    if (make_addr(cfg->host, cfg->port, &ss) != 0) {
        snprintf(errstr, errstr_size,
                 "--host '%s' is not a numeric IPv4 or IPv6 address",
                 cfg->host);
        goto out_free;
    }
    srv->daemon = start_daemon(srv, &ss);
    if (srv->daemon == NULL) {
        snprintf(errstr, errstr_size,
                 "cannot listen on %s port %u (in use, or not local)",
                 cfg->host, (unsigned)cfg->port);
        goto out_free;
    }
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info != NULL && info->port != 0 ? info->port : cfg->port;
    return srv;
out_free:
    free(srv);
    return NULL;
}

uint16_t sim_server_port(const struct sim_server *srv)
{
    return srv->port;
}

void sim_server_destroy(struct sim_server *srv)
{
    if (srv == NULL) {
        return;
    }
    sim_chat_stop(&srv->chat);
    MHD_stop_daemon(srv->daemon);
    free(srv);
}
