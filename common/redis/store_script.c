/*
 * store_script.c - the Lua script runner of the store (store.h): the one
 * place that knows EVALSHA, SCRIPT LOAD and the NOSCRIPT fallback to
 * EVAL; budget.c and ratelimit.c only build keys and arguments. Split
 * from store.c; uses only the store's public calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <hiredis/hiredis.h>

#include "base/log.h"
#include "base/util.h"
#include "redis/store.h"

#include "base/banned.h"

#define LOG_TAG "store"
#define NUM_LEN 24

static void script_sha_get(struct ks_store_script *sc, char sha[41])
{
    pthread_mutex_lock(&sc->lock);
    memcpy(sha, sc->sha, 41);
    pthread_mutex_unlock(&sc->lock);
}

/* Loads sc into the server's script cache and remembers its SHA1. */
static enum ks_err script_load(struct ks_store *rs, struct ks_store_script *sc)
{
    const char *argv[3] = {"SCRIPT", "LOAD", sc->text};
    size_t lens[3] = {6, 4, strlen(sc->text)};
    redisReply *r = ks_store_command(rs, 3, argv, lens);
    enum ks_err err = KS_ERR_UPSTREAM;

    if (!r) {
        return KS_ERR_RETRY;
    }
    if (r->type == REDIS_REPLY_STRING && r->len == 40) {
        pthread_mutex_lock(&sc->lock);
        memcpy(sc->sha, r->str, 40);
        sc->sha[40] = '\0';
        pthread_mutex_unlock(&sc->lock);
        err = KS_OK;
    } else {
        ks_log_error(LOG_TAG, "SCRIPT LOAD %s: %s", sc->name,
                     r->type == REDIS_REPLY_ERROR ? r->str
                                                  : "unexpected reply");
    }
    freeReplyObject(r);
    return err;
}

enum ks_err ks_store_script_sha(struct ks_store *rs,
                                struct ks_store_script *sc,
                                char sha[41])
{
    enum ks_err err;

    script_sha_get(sc, sha);
    if (sha[0]) {
        return KS_OK;
    }
    err = script_load(rs, sc);
    if (err != KS_OK) {
        return err;
    }
    script_sha_get(sc, sha);
    return KS_OK;
}

enum ks_err ks_store_script_run(struct ks_store *rs,
                                struct ks_store_script *sc,
                                int nkeys,
                                const char *const *keys,
                                int nargs,
                                const char *const *args,
                                redisReply **replyp)
{
    const char *argv[3 + KS_STORE_SCRIPT_ARGS_MAX];
    size_t lens[3 + KS_STORE_SCRIPT_ARGS_MAX];
    char sha[41], numkeys[NUM_LEN];
    int argc = 0;
    redisReply *r;
    enum ks_err err;

    *replyp = NULL;
    if (nkeys < 0 || nargs < 0 || nkeys + nargs > KS_STORE_SCRIPT_ARGS_MAX) {
        ks_log_error(LOG_TAG, "%s script: %d keys and %d arguments", sc->name,
                     nkeys, nargs);
        return KS_ERR_INVALID;
    }
    err = ks_store_script_sha(rs, sc, sha);
    if (err != KS_OK) {
        return err;
    }
    snprintf(numkeys, sizeof(numkeys), "%d", nkeys);
    argv[argc++] = "EVALSHA";
    argv[argc++] = sha;
    argv[argc++] = numkeys;
    for (int i = 0; i < nkeys; i++) {
        argv[argc++] = keys[i];
    }
    for (int i = 0; i < nargs; i++) {
        argv[argc++] = args[i];
    }
    for (int i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    r = ks_store_command(rs, argc, argv, lens);
    if (r && r->type == REDIS_REPLY_ERROR &&
        strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        argv[0] = "EVAL";
        argv[1] = sc->text;
        lens[0] = 4;
        lens[1] = strlen(sc->text);
        r = ks_store_command(rs, argc, argv, lens);
    }
    if (!r) {
        return KS_ERR_RETRY;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* WRONGTYPE, a script's error(), OOM: Redis answered, so this is
         * not "Redis down"; the caller must not fail open on it. */
        ks_log_error(LOG_TAG, "%s script failed: %s", sc->name, r->str);
        freeReplyObject(r);
        return KS_ERR_UPSTREAM;
    }
    *replyp = r;
    return KS_OK;
}
