/*
 * reload.c - SIGHUP: the config file is read again (with the
 * command line's overrides) and swapped in between poll batches. Nothing
 * keeps a pointer into a config across batches (delivery reports keep
 * only tickets), so the old one is freed at
 * once. Kafka, Redis, topic and metrics settings stay those of start-up;
 * a failed load (or a score model that does not load) keeps the old
 * config.
 */
#include "reload.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "config/config.h"
#include "kafka/client.h"
#include "state.h"
#include "world.h"

#include "base/banned.h"

static bool str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* Start-up-only settings of next that differ from boot are logged and put
 * back to boot's values. */
static void keep_connection_settings(const struct ks_config *boot,
                                     size_t n_kafka_user,
                                     struct ks_config *next)
{
    bool kafka = n_kafka_user != next->n_kafka;

    for (size_t i = 0; !kafka && i < n_kafka_user; i++) {
        kafka = str_differs(boot->kafka[i].key, next->kafka[i].key) ||
                str_differs(boot->kafka[i].value, next->kafka[i].value);
    }
    if (kafka) {
        ks_log_warn("router", "reload: kafka settings changed; they need a "
                              "restart and are ignored");
    }
    if (str_differs(boot->redis_url, next->redis_url) ||
        str_differs(boot->redis_prefix, next->redis_prefix) ||
        boot->redis_timeout_ms != next->redis_timeout_ms) {
        ks_log_warn("router", "reload: redis settings changed; they need a "
                              "restart and are ignored");
    }
    if (str_differs(boot->topic_prefix, next->topic_prefix)) {
        ks_log_warn("router", "reload: topics.prefix changed; it needs a "
                              "restart and is ignored");
        free(next->topic_prefix);
        next->topic_prefix = ks_xstrdup(boot->topic_prefix);
    }
    if (boot->router_transactions != next->router_transactions ||
        str_differs(boot->router_instance, next->router_instance)) {
        ks_log_warn("router", "reload: router.transactions / instance "
                              "changed; they need a restart and are ignored");
    }
    if (str_differs(boot->metrics_host, next->metrics_host) ||
        boot->metrics_port != next->metrics_port) {
        ks_log_warn("router", "reload: metrics settings changed; they need "
                              "a restart and are ignored");
    }
}

void router_reload(struct router *rt)
{
    struct ks_config *next;
    void *model = NULL;
    char errstr[512];

    ks_log_info("router", "SIGHUP: reloading %s", rt->cl->config_path);
    next = ks_config_load(rt->cl->config_path, rt->cl->overrides,
                          rt->cl->n_overrides, errstr, sizeof(errstr));
    if (!next) {
        ks_log_error("router", "reload failed, keeping the old config: %s",
                     errstr);
        ks_metrics_add(rt->m_reloads, 1, "error");
        return;
    }
    if (next->score_model && rt->scorer) {
        /* Loaded again even under the same path: a retrained model is
         * usually written over the old file. */
        model = rt->scorer->load(next->score_model, errstr, sizeof(errstr));
        if (!model) {
            ks_log_error("router",
                         "reload failed, keeping the old config: %s: key "
                         "'routing.score_model': %s",
                         next->path, errstr);
            ks_config_destroy(next);
            ks_metrics_add(rt->m_reloads, 1, "error");
            return;
        }
    }
    keep_connection_settings(rt->boot, rt->n_kafka_user, next);
    if (rt->model) {
        rt->scorer->destroy(rt->model);
    }
    rt->model = model;
    rt->no_scorer_logged = false;
    if (rt->cfg != rt->boot) {
        ks_config_destroy(rt->cfg);
    }
    rt->cfg = next;
    router_build_tiers(rt);
    for (size_t i = 0; i < rt->cfg->n_tiers; i++) {
        ks_kafka_warm(rt->rk_prod, (const char *const[]){rt->tier_topics[i]},
                      1);
    }
    ks_metrics_add(rt->m_reloads, 1, "ok");
    ks_log_info("router",
                "reloaded: %zu tier(s), %zu task type(s), %zu "
                "rule(s)",
                rt->cfg->n_tiers, rt->cfg->n_routes, rt->cfg->n_rules);
}
