/*
 * config.h - the one JSON configuration file (docs/design.md section 9), with
 * environment and -X key=value overrides, validated once at start-up.
 *
 * Precedence: file < environment (KASCADE_*) < -X overrides. Every error
 * names the file, the key and the reason; nothing in here logs secrets
 * (api keys are read from the environment by name, only when used).
 * A loaded config is immutable and may be read from any thread.
 *
 * Ownership: ks_config_load returns a config the caller owns
 * (ks_config_destroy); every string, array and compiled regex in it
 * belongs to the config, and readers borrow them for its lifetime.
 */
#ifndef KASCADE_COMMON_CONFIG_CONFIG_H
#define KASCADE_COMMON_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/rule.h"
#include "wire/codec.h"

enum ks_budget_policy {
    KS_BUDGET_DOWNGRADE = 0,
    KS_BUDGET_DEFER,
    KS_BUDGET_REJECT,
};

struct ks_provider_cfg {
    char *kind;     /* "openai", "anthropic" or "classifier" */
    char *base_url; /* ".../v1"; the client appends /chat/completions
                       (openai) or /messages (anthropic) */
    char *model;
    char *api_key_env;      /* name of the variable holding the key, or NULL */
    double price_in;        /* USD per million input tokens */
    double price_out;       /* USD per million output tokens */
    int64_t context_window; /* tokens */
    int64_t timeout_ms;     /* per call */
    int max_retries;        /* transient failures retried this many times */
    int64_t rpm;            /* requests per minute, fleet-wide; 0: no limit */
    int64_t tpm;            /* tokens per minute, fleet-wide; 0: no limit */
    int circuit_failures;   /* consecutive failed calls that open the circuit */
    int64_t circuit_cooldown_ms; /* how long an open circuit stays open */
    char *model_file;            /* kind "classifier": a triage model file */
    bool supports_n; /* kind "openai": asks for several answers in one call
                        (the "n" parameter; agreement's samples) */
};

struct ks_type_threshold {
    char *type;
    double value;
};

/* A tier's verifier model for one task type (tiers[].verifier_models). */
struct ks_type_path {
    char *type;
    char *path;
};

/* tiers[].samples, at most: agreement's answers per task. */
#define KS_SAMPLES_MAX 16

/* answer_patterns: the final answer's format for a task type. */
struct ks_answer_pattern {
    char *type;
    char *pattern;
    struct ks_rule_re *re; /* compiled at load */
};

struct ks_tier_cfg {
    char *name;
    bool local; /* runs on our own machines: eligible for local_only */
    struct ks_provider_cfg *providers;
    size_t n_providers;
    int max_inflight;
    double escalate_below; /* answers below this confidence
                              escalate (0: never) */
    bool self_report;      /* an answer's own "confidence" counts (it can only
                              lower what logprobs say); default true */
    struct ks_type_threshold *escalate_below_types; /* per task type */
    size_t n_escalate_below_types;
    bool order_by_key;          /* ordering "key": one task per key at once */
    size_t key_queue_bytes;     /* ordering "key": one key's waiting tasks,
                                   at most (then its partition waits) */
    char *prompt;               /* executor prompt, or NULL: the default */
    char *escalation_prompt;    /* escalation prompt, or NULL: the default */
    int64_t daily_budget_micro; /* -1: no limit */
    enum ks_budget_policy on_budget_exhausted;
    uint32_t default_max_output_tokens;
    /* The verifier confidence source (learn/verify.h): a model file for
     * every type, and per type (either may be NULL / empty). */
    char *verifier_model;
    struct ks_type_path *verifier_models;
    size_t n_verifier_models;
    int samples; /* agreement: answers per task (1: off), at most
                    KS_SAMPLES_MAX */
    /* What this tier's escalated calls read of the earlier attempts
     * (workers/escalate.c): the last one's final answer (default; its
     * excerpt when none can be extracted), an excerpt of the last one,
     * every attempt in full, or nothing but the task. */
    enum ks_escalate_context {
        KS_ESC_CTX_ANSWER = 0,
        KS_ESC_CTX_FULL,
        KS_ESC_CTX_NONE,
        KS_ESC_CTX_FINAL,
    } escalate_context;
};

struct ks_type_route {
    char *type;
    int tier; /* index into tiers */
};

/* A routing rule (routing.rules[]): when its pattern (PCRE2,
 * case-insensitive, compiled once at load, matched with a bounded cost:
 * rule.h) or one of its keywords (case-insensitive, at the start of a
 * word) occurs in the first routing.rules_max_scan_bytes of the task's
 * input or of a message content, the task gets at least min_tier. */
struct ks_route_rule {
    char *name;
    char *pattern;         /* NULL: keywords only */
    struct ks_rule_re *re; /* compiled pattern, set when pattern is */
    char **keywords;
    size_t n_keywords;
    int min_tier; /* index into tiers */
};

/* routing.rules holds at most this many rules. */
#define KS_RULES_MAX 64

/* The built-in risk domains of routing.risk_domains, in this order. */
enum ks_risk_domain {
    KS_RISK_LEGAL = 0,
    KS_RISK_MEDICAL,
    KS_RISK_FINANCE,
    KS_RISK_COMPLIANCE,
    KS_RISK_DOMAINS
};

/* "legal", "medical", ... */
extern const char *const ks_risk_domain_names[KS_RISK_DOMAINS];

struct ks_tenant_budget {
    char *name;
    int64_t limit_micro; /* daily */
};

struct ks_config {
    char *path;
    struct ks_kv *kafka; /* librdkafka properties, passed through */
    size_t n_kafka;
    char *redis_url;
    int64_t redis_timeout_ms;
    int64_t done_ttl_s; /* lifetime of kascade:done:* records */
    char *redis_prefix; /* "kascade:" */
    char *topic_prefix; /* "kascade." */
    /* topics.tenant_topics: tasks come from <prefix>tasks.<tenant>, the
     * tenant is the topic's (Kafka ACLs decide who may write each). */
    bool tenant_topics;
    /* topics.reply_to_allow: the topics a task's reply_to may name, each
     * an exact name or a prefix ending in '*' (default: none) */
    char **reply_to_allow;
    size_t n_reply_to_allow;
    int partitions;
    int replication_factor;
    struct ks_codec_limits limits;
    /* limits.max_open_offsets: per consumed partition, offsets taken and
     * not yet committable (running, or finished behind an unfinished
     * one); a consumer stops taking from a partition at this many */
    int64_t max_open_offsets;
    char *metrics_host;
    int metrics_port; /* 0: no metrics endpoint */
    char *log_level;
    int default_tier; /* index into tiers */
    int max_hops;
    struct ks_type_route *routes;
    size_t n_routes;
    struct ks_route_rule *rules; /* routing.rules, in file order */
    size_t n_rules;              /* at most KS_RULES_MAX */
    size_t rules_max_scan_bytes; /* rules look at this much of each text */
    uint32_t rules_match_limit;  /* PCRE2 steps per pattern and text */
    int high_risk_tier; /* floor of hints.risk "high"; default: top tier */
    int risk_domain_tier[KS_RISK_DOMAINS]; /* floor per domain; -1: off */
    char *score_model;      /* routing.score_model path, or NULL */
    double score_threshold; /* score >= this: one tier up */
    /* router section */
    bool router_max_deferred_set; /* the obsolete router.max_deferred was
                                     given: accepted, unused, warned */
    bool router_transactions;     /* consume-transform-produce in Kafka
                                     transactions */
    char *router_instance;     /* names the transactional.id; NULL: hostname */
    struct ks_tier_cfg *tiers; /* cheapest first */
    size_t n_tiers;
    struct ks_answer_pattern *answer_patterns; /* per task type */
    size_t n_answer_patterns;
    int64_t drain_timeout_ms; /* SIGTERM: how long in-flight work may run */
    /* budget section */
    struct ks_tenant_budget *tenants; /* daily limits per tenant */
    size_t n_tenants;
    int64_t default_tenant_micro;  /* -1: tenants not listed are unlimited */
    bool budget_fail_open;         /* call on when Redis is down */
    int64_t reservation_margin_ms; /* a reservation lives timeout + this */
    int64_t clock_offset_ms;       /* added to the wall clock of budget days
                                      (tests of the day rollover) */
};

/* Loads path, applies the environment and the n_overrides "key=value"
 * strings, validates everything. Returns a new config the caller owns, or
 * NULL with "FILE: key 'K': reason" in errstr. */
struct ks_config *ks_config_load(const char *path,
                                 const char *const *overrides,
                                 size_t n_overrides,
                                 char *errstr,
                                 size_t errstr_size);

/* Accepts NULL. */
void ks_config_destroy(struct ks_config *cfg);

/* Returns the index of the tier named name, or -1. */
int ks_config_tier_index(const struct ks_config *cfg, const char *name);

/* Returns the tier index a task type maps to (the default tier for an
 * unknown type). */
int ks_config_route_type(const struct ks_config *cfg, const char *type);

/* The escalate_below threshold of tier for task type (the tier's own
 * unless the type has one in escalate_below_types). */
double ks_config_escalate_below(const struct ks_tier_cfg *tier,
                                const char *type);

/* tiers[].escalate_context's values, as an error message names them. */
#define KS_ESCALATE_CONTEXT_VALUES "final, answer, full or none"

/* Parses an escalate_context value ("final", "answer", "full", "none").
 * Returns false, *out untouched, for anything else. */
bool ks_escalate_context_parse(const char *s, enum ks_escalate_context *out);

/* The answer_pattern of a task type, or NULL. Borrowed from cfg. */
const struct ks_rule_re *ks_config_answer_pattern(const struct ks_config *cfg,
                                                  const char *type);

/* The verifier model file of tier for a task type (verifier_models, else
 * verifier_model), or NULL when the tier has no verifier. */
const char *ks_config_verifier_model(const struct ks_tier_cfg *tier,
                                     const char *type);

/* Returns the daily limit of tenant in micro-dollars, -1 for none. */
int64_t ks_config_tenant_limit(const struct ks_config *cfg, const char *tenant);

/* Wall-clock milliseconds for budget days: now plus clock_offset_ms. */
int64_t ks_config_budget_now_ms(const struct ks_config *cfg);

/* Room for a topic name (Kafka allows 249 bytes). */
#define KS_TOPIC_MAX 256

/* With topics.tenant_topics, the tenant named by a tasks topic
 * "<prefix>tasks.<tenant>" (a pointer into topic); NULL for any other
 * topic or when the option is off. The name is not checked against the
 * tenant rule (ks_tenant_check). */
const char *ks_config_topic_tenant(const struct ks_config *cfg,
                                   const char *topic);

/* Writes "<prefix><suffix>" (e.g. "kascade.tier.local") into buf. */
void ks_config_topic(const struct ks_config *cfg,
                     const char *suffix,
                     char *buf,
                     size_t size);

/* True when s (len bytes) is a legal Kafka topic name: 1-249 bytes of
 * [A-Za-z0-9._-], not "." or "..". */
bool ks_topic_name_valid(const char *s, size_t len);

/* Whether a task may have its Result sent to reply_to topic (reply.c):
 * returns NULL when it may (or topic is NULL: no reply_to), else the
 * reason it may not (a static string): not a topic name, one of
 * kascade's own topics (under topics.prefix; never allowed, even when
 * listed), or not in topics.reply_to_allow. Pure; any thread. */
const char *ks_config_reply_to_refusal(const struct ks_config *cfg,
                                       const char *topic);

#endif
