/*
 * store_batch.c - a pipeline put together by several modules before it is
 * sent (store.h, ks_store_batch_*): the worker's loop appends the done
 * record look-ups and the escalation context loads and saves of every job
 * due in a turn, sends them in one round trip (ks_store_pipeline), and
 * each module reads its own replies back by index.
 *
 * Each command is one allocation holding its argv, lengths and a copy of
 * the arguments, so callers may free theirs at once.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "base/util.h"
#include "redis/store.h"

#include "base/banned.h"

/* One command in one allocation: argv and argvlen point into data. */
struct batch_cmd {
    struct ks_store_cmd cmd;
    const char **argv;
    size_t *argvlen;
};

struct ks_store_batch {
    struct batch_cmd **cmds;
    size_t n, cap;
    redisReply **replies; /* after a successful run */
};

struct ks_store_batch *ks_store_batch_new(void)
{
    return ks_xcalloc(1, sizeof(struct ks_store_batch));
}

void ks_store_batch_destroy(struct ks_store_batch *b)
{
    if (!b) {
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (b->replies && b->replies[i]) {
            freeReplyObject(b->replies[i]);
        }
        free(b->cmds[i]);
    }
    free(b->replies);
    free(b->cmds);
    free(b);
}

size_t ks_store_batch_add(struct ks_store_batch *b,
                          int argc,
                          const char *const *argv,
                          const size_t *argvlen)
{
    size_t head = sizeof(struct batch_cmd) +
                  (size_t)argc * (sizeof(char *) + sizeof(size_t));
    size_t total = head;
    struct batch_cmd *c;
    char *data;

    for (int i = 0; i < argc; i++) {
        total += argvlen[i] + 1;
    }
    c = ks_xmalloc(total);
    c->argv = (const char **)(c + 1);
    c->argvlen = (size_t *)(c->argv + argc);
    data = (char *)c + head;
    for (int i = 0; i < argc; i++) {
        memcpy(data, argv[i], argvlen[i]);
        data[argvlen[i]] = '\0';
        c->argv[i] = data;
        c->argvlen[i] = argvlen[i];
        data += argvlen[i] + 1;
    }
    c->cmd = (struct ks_store_cmd){argc, c->argv, c->argvlen};
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->cmds = ks_xrealloc(b->cmds, b->cap * sizeof(*b->cmds));
    }
    b->cmds[b->n] = c;
    return b->n++;
}

size_t ks_store_batch_len(const struct ks_store_batch *b)
{
    return b->n;
}

enum ks_err ks_store_batch_run(struct ks_store *rs, struct ks_store_batch *b)
{
    struct ks_store_cmd *cmds;
    enum ks_err err;

    if (b->replies || b->n == 0) {
        return KS_OK;
    }
    cmds = ks_xcalloc(b->n, sizeof(*cmds));
    for (size_t i = 0; i < b->n; i++) {
        cmds[i] = b->cmds[i]->cmd;
    }
    b->replies = ks_xcalloc(b->n, sizeof(*b->replies));
    err = ks_store_pipeline(rs, b->n, cmds, b->replies);
    free(cmds);
    if (err != KS_OK) {
        free(b->replies);
        b->replies = NULL;
    }
    return err;
}

const redisReply *ks_store_batch_reply(const struct ks_store_batch *b, size_t i)
{
    return b->replies && i < b->n ? b->replies[i] : NULL;
}
