/*
 * reply.c - may a task's reply_to name this topic? One pure function,
 * shared by the router (at decode, before any model call) and the worker
 * (again before it produces), so the two can never disagree.
 *
 * A reply_to is refused unless it is a legal Kafka topic name (1-249
 * bytes of [A-Za-z0-9._-], not "." or ".."), is not one of kascade's own
 * topics (anything under topics.prefix, and the fixed names themselves
 * when the prefix is empty), and matches topics.reply_to_allow: an exact
 * name, or a prefix written with a trailing '*'. The list is empty by
 * default, so every reply_to is refused until one is configured.
 */
#include <string.h>

#include "config/config.h"

#include "base/banned.h"

#define TOPIC_NAME_MAX 249

bool ks_topic_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > TOPIC_NAME_MAX) {
        return false;
    }
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* kascade's own topics: everything under a non-empty prefix; with an
 * empty prefix, the fixed names (and tier.*, tasks.*) themselves. */
static bool own_topic(const struct ks_config *cfg, const char *topic)
{
    static const char *const own[] = {"tasks", "escalations", "results",
                                      "dlq",   "deferred",    NULL};
    const char *prefix = cfg->topic_prefix ? cfg->topic_prefix : "";

    if (prefix[0] != '\0') {
        return starts_with(topic, prefix);
    }
    if (starts_with(topic, "tier.") || starts_with(topic, "tasks.")) {
        return true;
    }
    for (size_t i = 0; own[i]; i++) {
        if (strcmp(topic, own[i]) == 0) {
            return true;
        }
    }
    return false;
}

static bool allowed(const struct ks_config *cfg, const char *topic)
{
    for (size_t i = 0; i < cfg->n_reply_to_allow; i++) {
        const char *a = cfg->reply_to_allow[i];
        size_t n = strlen(a);

        if (n > 0 && a[n - 1] == '*') {
            if (strncmp(topic, a, n - 1) == 0) {
                return true;
            }
        } else if (strcmp(topic, a) == 0) {
            return true;
        }
    }
    return false;
}

const char *ks_config_reply_to_refusal(const struct ks_config *cfg,
                                       const char *topic)
{
    if (!topic) {
        return NULL;
    }
    if (!ks_topic_name_valid(topic, strlen(topic))) {
        return "not a Kafka topic name (1-249 bytes of [A-Za-z0-9._-], "
               "not \".\" or \"..\")";
    }
    if (own_topic(cfg, topic)) {
        return "names one of kascade's own topics";
    }
    if (!allowed(cfg, topic)) {
        return "not in topics.reply_to_allow";
    }
    return NULL;
}
