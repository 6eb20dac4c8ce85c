/*
 * tenant.c - topics.tenant_topics (docs/design.md section 3): the router's
 * subscription to every <prefix>tasks.<tenant>, and the tenant a task
 * takes from its topic. Pure functions of the config; router thread.
 */
#include "tenant.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

/* Tenant topics appear as tenants are added: look for new ones every 10 s
 * rather than librdkafka's 5 minutes (the config's kafka section wins). */
const struct ks_kv router_tenant_consumer_defaults[] = {
    {"topic.metadata.refresh.interval.ms", "10000"},
    {NULL, NULL},
};

void router_tenant_subscription(const struct ks_config *cfg,
                                const char *tasks_topic,
                                char *buf,
                                size_t size)
{
    size_t n = 0;

    if (!cfg->tenant_topics) {
        snprintf(buf, size, "%s", tasks_topic);
        return;
    }
    buf[n++] = '^';
    for (const char *c = tasks_topic; *c && n + 4 < size; c++) {
        if (*c == '.') {
            buf[n++] = '\\';
        }
        buf[n++] = *c;
    }
    snprintf(buf + n, size - n, "\\.[A-Za-z0-9._-]+$");
}

int router_tenant_take(const struct ks_config *cfg,
                       const char *topic,
                       struct ks_task *task,
                       bool *changed,
                       char *detail,
                       size_t detail_size)
{
    const char *tenant = ks_config_topic_tenant(cfg, topic);
    struct ks_codec_error cerr = {0};

    if (!tenant) {
        return 0;
    }
    if (ks_tenant_check(tenant, &cerr) != KS_OK) {
        snprintf(detail, detail_size, "topic %s: %s", topic, cerr.detail);
        return -1;
    }
    if (task->tenant && strcmp(task->tenant, tenant) != 0) {
        snprintf(detail, detail_size,
                 "field 'tenant': '%s' on the tasks topic of tenant '%s'",
                 task->tenant, tenant);
        return -1;
    }
    if (!task->tenant) {
        task->tenant = ks_xstrdup(tenant);
        *changed = true;
    }
    return 0;
}
