/*
 * kascade-router - reads tasks, decides their tier, republishes them.
 * main() reads top to bottom: args, config, init, loop, drain, destroy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "learn/lr.h"
#include "process/daemon.h"
#include "router.h"

#include "base/banned.h"

static const char usage[] =
    "usage: kascade-router [-c kascade.json] [-X key=value]... "
    "[--log-level LEVEL]\n"
    "  Consumes <prefix>tasks and <prefix>escalations, routes each task to\n"
    "  <prefix>tier.<tier>, dead-letters bad input to <prefix>dlq.\n"
    "  SIGHUP reloads the config; SIGTERM drains and exits.\n";

/* The learned difficulty score (routing.score_model): a `kascade train
 * --kind router` model of common/lr.h. */
static void *scorer_load(const char *path, char *errstr, size_t errstr_size)
{
    struct ks_lr_model *m = ks_lr_load(path, errstr, errstr_size);

    if (m && strcmp(ks_lr_kind(m), "router") != 0) {
        snprintf(errstr, errstr_size,
                 "%s is a %s model; the router needs one from kascade train "
                 "--kind router",
                 path, ks_lr_kind(m));
        ks_lr_destroy(m);
        m = NULL;
    }
    return m;
}

static void scorer_destroy(void *model)
{
    ks_lr_destroy(model);
}

/* The task's type and metadata count when the model was trained with
 * them (kascade train --kind router on lines with "type"). */
static double scorer_score(const void *model,
                           const struct ks_task *task,
                           const char *text,
                           size_t len)
{
    struct ks_lr_task t = {.type = task->type,
                           .meta = task->metadata,
                           .n_meta = task->n_metadata,
                           .text = text,
                           .len = len};

    return ks_lr_score_task(model, &t);
}

static const struct router_scorer lr_scorer = {scorer_load, scorer_destroy,
                                               scorer_score};

int main(int argc, char **argv)
{
    struct ks_cmdline cl;
    struct ks_config *cfg = NULL;
    struct router *rt = NULL;
    char errstr[512];
    int r, status = 1;

    r = ks_cmdline_parse(&cl, argc, argv, usage, 0);
    if (r != 0) {
        free(cl.overrides);
        return r > 0 ? 0 : 2;
    }
    ks_daemon_signals();
    cfg = ks_daemon_config(&cl);
    if (!cfg) {
        goto out;
    }
    rt = router_new(cfg, &cl, errstr, sizeof(errstr));
    cfg = NULL; /* the router owns it now */
    if (!rt) {
        ks_log_error("router", "start-up failed: %s", errstr);
        goto out;
    }
    if (router_set_scorer(rt, &lr_scorer, errstr, sizeof(errstr)) != 0) {
        ks_log_error("router",
                     "start-up failed: %s: key 'routing.score_model': %s",
                     cl.config_path, errstr);
        goto out;
    }
    status = router_run(rt) == 0 ? 0 : 1;

out:
    router_destroy(rt);
    ks_config_destroy(cfg);
    free(cl.overrides);
    return status;
}
