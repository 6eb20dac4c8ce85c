/*
 * tenant.h - topics.tenant_topics: which topics the router subscribes to
 * for tasks, and the tenant a task takes from its topic (tenant.c). Pure
 * functions of the config; nothing here owns state.
 */
#ifndef KASCADE_ROUTER_TENANT_H
#define KASCADE_ROUTER_TENANT_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "wire/codec.h"

/* Consumer properties for tenant topics (a faster metadata refresh, so a
 * new tenant's topic is found within seconds); NULL-key ended. */
extern const struct ks_kv router_tenant_consumer_defaults[];

/* The tasks subscription into buf: tasks_topic, or with tenant topics a
 * librdkafka regex matching every "<tasks_topic>.<tenant>". */
void router_tenant_subscription(const struct ks_config *cfg,
                                const char *tasks_topic,
                                char *buf,
                                size_t size);

/* The tenant of a task read from topic: with tenant topics, a task that
 * names none takes the topic's (task->tenant set, *changed true); one
 * that names another, or a topic whose tenant breaks the tenant rule,
 * returns -1 with the DLQ detail. Returns 0 otherwise (and for any topic
 * when tenant topics are off). */
int router_tenant_take(const struct ks_config *cfg,
                       const char *topic,
                       struct ks_task *task,
                       bool *changed,
                       char *detail,
                       size_t detail_size);

#endif
