/*
 * route.c - the tier decisions (see route.h for the order of the steps).
 *
 * A task's allowed tiers are those in [min_tier, max_tier], local when
 * local_only, and whose largest provider context window holds the
 * estimated prompt plus max_output_tokens. Rules, the type table and the
 * score propose a tier; the proposal is then bounded by the allowed set:
 * capped at max_tier, raised to min_tier, moved to the nearest local tier
 * (at or above, else below) for local_only, moved up to the first tier
 * that fits for the context window. The reason names the last step that
 * changed the tier, so a hard limit that overrode a floor shows as the
 * limit. Hint tier names must name configured tiers: a typo is an invalid
 * task, not a silent default.
 */
#include "route.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "config/pricing.h"

#include "base/banned.h"

/* The built-in risk domains' keywords, matched like rule keywords (at the
 * start of a word, ignoring case, so "contract" also finds "contracts").
 * routing.risk_domains turns a domain on by giving it a floor tier. */
static const char *const legal_words[] = {
    "contract", "lawsuit",   "litigation", "attorney",  "lawyer", "liability",
    "indemnif", "subpoena",  "plaintiff",  "defendant", "court",  "legal",
    "statute",  "copyright", "trademark",  NULL};
static const char *const medical_words[] = {
    "diagnos",      "symptom", "dosage",       "medication",
    "prescription", "patient", "clinical",     "disease",
    "surgery",      "medical", "overdose",     "allerg",
    "pregnan",      "vaccin",  "chemotherapy", NULL};
static const char *const finance_words[] = {
    "invest",    "portfolio", "mortgage", "loan",   "securities",
    "dividend",  "tax",       "bankrupt", "credit", "financial",
    "brokerage", "pension",   "401k",     "annuit", NULL};
static const char *const compliance_words[] = {
    "gdpr",      "hipaa",      "sox",   "pci",        "compliance",
    "regulator", "regulation", "audit", "anti-money", "kyc",
    "sanction",  "ccpa",       NULL};
static const char *const *const domain_words[KS_RISK_DOMAINS] = {
    legal_words, medical_words, finance_words, compliance_words};

static int hint_tier(const struct ks_config *cfg,
                     const char *name,
                     const char *field,
                     struct route_decision *d)
{
    int t = ks_config_tier_index(cfg, name);

    if (t < 0) {
        d->error = "invalid";
        snprintf(d->detail, sizeof(d->detail),
                 "field 'hints.%s': no tier named '%s'", field, name);
    }
    return t;
}

static int64_t tier_window(const struct ks_config *cfg, int t)
{
    int64_t w = 0;

    for (size_t i = 0; i < cfg->tiers[t].n_providers; i++) {
        if (cfg->tiers[t].providers[i].context_window > w) {
            w = cfg->tiers[t].providers[i].context_window;
        }
    }
    return w;
}

static bool fits(const struct ks_config *cfg,
                 const struct ks_task *task,
                 int64_t prompt,
                 int t)
{
    return prompt + ks_price_max_output(&cfg->tiers[t], task) <=
           tier_window(cfg, t);
}

int64_t route_worst_case_micro(const struct ks_config *cfg,
                               const struct ks_task *task,
                               int t)
{
    return ks_price_worst_micro(&cfg->tiers[t], &cfg->tiers[t].providers[0],
                                task, NULL);
}

/* ---- rules -------------------------------------------------------------- */

/* Does kw occur in the len bytes of s at the start of a word, ignoring
 * case? The first byte is matched inline (both cases) before the word
 * boundary and the rest are checked: a 32 KiB prompt has few candidate
 * positions, and a strncasecmp call at every byte was half the cost of a
 * decision with keyword rules (bench/decide.sh). */
static bool has_word(const char *s, size_t len, const char *kw)
{
    size_t n = strlen(kw);
    unsigned char lo, up;

    if (!s || n == 0 || n > len) {
        return false;
    }
    lo = (unsigned char)tolower((unsigned char)kw[0]);
    up = (unsigned char)toupper((unsigned char)kw[0]);
    for (size_t i = 0; i + n <= len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c != lo && c != up) {
            continue;
        }
        if ((i == 0 || !isalnum((unsigned char)s[i - 1])) &&
            strncasecmp(s + i + 1, kw + 1, n - 1) == 0) {
            return true;
        }
    }
    return false;
}

/* How much of text the rules look at: routing.rules_max_scan_bytes. */
static size_t scan_len(const struct ks_config *cfg, const char *text)
{
    return strnlen(text, cfg->rules_max_scan_bytes);
}

static bool task_has_word(const struct ks_config *cfg,
                          const struct ks_task *task,
                          const char *kw)
{
    if (task->input && has_word(task->input, scan_len(cfg, task->input), kw)) {
        return true;
    }
    for (size_t i = 0; i < task->n_messages; i++) {
        const char *c = task->messages[i].content;

        if (c && has_word(c, scan_len(cfg, c), kw)) {
            return true;
        }
    }
    return false;
}

/* The pattern on the scanned part of one text: a limit hit is no match,
 * noted in *limit. */
static bool text_matches_re(const struct ks_config *cfg,
                            const struct ks_rule_re *re,
                            const char *text,
                            bool *limit)
{
    if (!text) {
        return false;
    }
    switch (ks_rule_re_match(re, text, scan_len(cfg, text))) {
    case KS_RULE_MATCH:
        return true;
    case KS_RULE_LIMIT:
        *limit = true;
        return false;
    case KS_RULE_NO_MATCH:
        break;
    }
    return false;
}

static bool rule_matches(const struct ks_config *cfg,
                         const struct ks_route_rule *rule,
                         const struct ks_task *task,
                         bool *limit)
{
    if (rule->re) {
        if (text_matches_re(cfg, rule->re, task->input, limit)) {
            return true;
        }
        for (size_t i = 0; i < task->n_messages; i++) {
            if (text_matches_re(cfg, rule->re, task->messages[i].content,
                                limit)) {
                return true;
            }
        }
    }
    for (size_t i = 0; i < rule->n_keywords; i++) {
        if (task_has_word(cfg, task, rule->keywords[i])) {
            return true;
        }
    }
    return false;
}

/* Raises *t to floor when floor is higher, naming why. The first source
 * of the highest floor wins the reason (rules in file order, then
 * risk_high, then the domains). */
static void raise_to(int *t,
                     int floor,
                     struct route_decision *d,
                     const char *kind,
                     const char *name)
{
    if (floor > *t) {
        *t = floor;
        if (name) {
            snprintf(d->reason, sizeof(d->reason), "%s:%s", kind, name);
        } else {
            ks_strlcpy(d->reason, kind, sizeof(d->reason));
        }
    }
}

static void apply_rules(const struct ks_config *cfg,
                        const struct ks_task *task,
                        int *t,
                        struct route_decision *d,
                        uint64_t *limit_hits)
{
    for (size_t i = 0; i < cfg->n_rules; i++) {
        bool limit = false;

        if (rule_matches(cfg, &cfg->rules[i], task, &limit)) {
            raise_to(t, cfg->rules[i].min_tier, d, "rule", cfg->rules[i].name);
        }
        if (limit) {
            *limit_hits |= (uint64_t)1 << i;
        }
    }
    if (task->hints.risk == KS_RISK_HIGH) {
        raise_to(t, cfg->high_risk_tier, d, "risk_high", NULL);
    }
    for (int dom = 0; dom < KS_RISK_DOMAINS; dom++) {
        if (cfg->risk_domain_tier[dom] <= *t) {
            continue; /* off, or would not raise: skip the scan */
        }
        for (const char *const *w = domain_words[dom]; *w; w++) {
            if (task_has_word(cfg, task, *w)) {
                raise_to(t, cfg->risk_domain_tier[dom], d, "risk",
                         ks_risk_domain_names[dom]);
                break;
            }
        }
    }
}

/* ---- hard limits -------------------------------------------------------- */

struct limits {
    int lo, hi;
    bool local_only;
    int64_t prompt;
};

static bool allowed(const struct ks_config *cfg,
                    const struct ks_task *task,
                    const struct limits *lim,
                    int t)
{
    return t >= lim->lo && t <= lim->hi &&
           (!lim->local_only || cfg->tiers[t].local) &&
           fits(cfg, task, lim->prompt, t);
}

static int read_limits(const struct ks_config *cfg,
                       const struct ks_task *task,
                       struct limits *lim,
                       struct route_decision *d)
{
    lim->lo = 0;
    lim->hi = (int)cfg->n_tiers - 1;
    lim->local_only = task->hints.local_only;
    lim->prompt = ks_price_prompt_tokens(task, NULL);
    if (task->hints.min_tier &&
        (lim->lo = hint_tier(cfg, task->hints.min_tier, "min_tier", d)) < 0) {
        return -1;
    }
    if (task->hints.max_tier &&
        (lim->hi = hint_tier(cfg, task->hints.max_tier, "max_tier", d)) < 0) {
        return -1;
    }
    if (lim->lo > lim->hi) {
        d->error = "invalid";
        snprintf(d->detail, sizeof(d->detail),
                 "field 'hints': min_tier '%s' is above max_tier '%s'",
                 cfg->tiers[lim->lo].name, cfg->tiers[lim->hi].name);
        return -1;
    }
    return 0;
}

static int pick_local(const struct ks_config *cfg, int want, int lo, int hi)
{
    for (int t = want; t <= hi; t++) {
        if (cfg->tiers[t].local) {
            return t;
        }
    }
    for (int t = want - 1; t >= lo; t--) {
        if (cfg->tiers[t].local) {
            return t;
        }
    }
    return -1;
}

/* Bounds the proposal *t by the hard limits. Returns 0, or -1 with the
 * error when no tier is allowed. */
static int bound(const struct ks_config *cfg,
                 const struct ks_task *task,
                 const struct limits *lim,
                 int *t,
                 struct route_decision *d)
{
    int64_t largest = 0;

    if (*t > lim->hi) {
        *t = lim->hi;
        ks_strlcpy(d->reason, "max_tier", sizeof(d->reason));
    } else if (*t < lim->lo) {
        *t = lim->lo;
        ks_strlcpy(d->reason, "min_tier", sizeof(d->reason));
    }
    if (lim->local_only && !cfg->tiers[*t].local) {
        *t = pick_local(cfg, *t, lim->lo, lim->hi);
        if (*t < 0) {
            d->error = "invalid";
            snprintf(d->detail, sizeof(d->detail),
                     "field 'hints.local_only': no local tier between '%s' "
                     "and '%s'",
                     cfg->tiers[lim->lo].name, cfg->tiers[lim->hi].name);
            return -1;
        }
        ks_strlcpy(d->reason, "local_only", sizeof(d->reason));
    }
    if (fits(cfg, task, lim->prompt, *t)) {
        return 0;
    }
    for (int u = *t + 1; u <= lim->hi; u++) {
        if (allowed(cfg, task, lim, u)) {
            *t = u;
            ks_strlcpy(d->reason, "context_window", sizeof(d->reason));
            return 0;
        }
    }
    for (int u = lim->lo; u <= lim->hi; u++) {
        if ((!lim->local_only || cfg->tiers[u].local) &&
            tier_window(cfg, u) > largest) {
            largest = tier_window(cfg, u);
        }
    }
    d->error = "invalid";
    snprintf(d->detail, sizeof(d->detail),
             "context_window: about %lld prompt tokens plus %lld output "
             "tokens fit no allowed tier ('%s'..'%s'%s; largest window %lld)",
             (long long)lim->prompt,
             (long long)ks_price_max_output(&cfg->tiers[*t], task),
             cfg->tiers[lim->lo].name, cfg->tiers[lim->hi].name,
             lim->local_only ? ", local only" : "", (long long)largest);
    return -1;
}

/* ---- budget ------------------------------------------------------------- */

static bool spent(const struct route_state *st, int t)
{
    return st && st->tier_spent && st->tier_spent[t];
}

/* Step 5 for a new task on tier t. */
static void apply_budget(const struct ks_config *cfg,
                         const struct ks_task *task,
                         const struct limits *lim,
                         const struct route_state *st,
                         int t,
                         struct route_decision *d)
{
    const struct ks_tier_cfg *tier = &cfg->tiers[t];

    d->tier = t;
    if (!spent(st, t)) {
        return;
    }
    switch (tier->on_budget_exhausted) {
    case KS_BUDGET_DOWNGRADE:
        for (int u = t - 1; u >= lim->lo; u--) {
            if (allowed(cfg, task, lim, u) && !spent(st, u)) {
                d->tier = u;
                ks_strlcpy(d->reason, "budget_downgrade", sizeof(d->reason));
                return;
            }
        }
        /* Nothing cheaper with budget: the task cannot run today. */
        d->action = ROUTE_REJECT;
        d->stop_status = KS_STATUS_BUDGET_EXCEEDED;
        ks_strlcpy(d->reason, "budget_reject", sizeof(d->reason));
        snprintf(d->detail, sizeof(d->detail),
                 "budget of tier '%s' is spent and no cheaper allowed tier "
                 "has budget left",
                 tier->name);
        return;
    case KS_BUDGET_DEFER:
        d->action = ROUTE_DEFER;
        ks_strlcpy(d->reason, "budget_defer", sizeof(d->reason));
        return;
    case KS_BUDGET_REJECT:
        d->action = ROUTE_REJECT;
        d->stop_status = KS_STATUS_BUDGET_EXCEEDED;
        ks_strlcpy(d->reason, "budget_reject", sizeof(d->reason));
        snprintf(d->detail, sizeof(d->detail),
                 "budget of tier '%s' is spent (on_budget_exhausted: reject)",
                 tier->name);
        return;
    }
}

void route_task_rules(const struct ks_config *cfg,
                      const struct ks_task *task,
                      struct route_rules *r)
{
    struct route_decision d;
    bool known = false;

    memset(r, 0, sizeof(*r));
    memset(&d, 0, sizeof(d));
    /* Step 3 first (it is the base the floors raise), then 2. */
    for (size_t i = 0; i < cfg->n_routes; i++) {
        known |= strcmp(cfg->routes[i].type, task->type) == 0;
    }
    r->tier = ks_config_route_type(cfg, task->type);
    ks_strlcpy(d.reason, known ? "task_type" : "default_tier",
               sizeof(d.reason));
    apply_rules(cfg, task, &r->tier, &d, &r->limit_hits);
    memcpy(r->reason, d.reason, sizeof(r->reason));
    r->done = true;
}

int route_task(const struct ks_config *cfg,
               const struct ks_task *task,
               const struct route_rules *rules,
               const struct route_state *st,
               struct route_decision *d)
{
    struct route_rules own;
    struct limits lim;
    int t;

    memset(d, 0, sizeof(*d));
    if (read_limits(cfg, task, &lim, d) != 0) {
        return -1;
    }
    if (!rules || !rules->done) {
        route_task_rules(cfg, task, &own);
        rules = &own;
    }
    t = rules->tier;
    ks_strlcpy(d->reason, rules->reason, sizeof(d->reason));
    if (st && st->score >= 0 && st->score >= cfg->score_threshold &&
        t + 1 < (int)cfg->n_tiers) {
        t++;
        ks_strlcpy(d->reason, "score", sizeof(d->reason));
    }
    if (bound(cfg, task, &lim, &t, d) != 0) {
        return -1;
    }
    apply_budget(cfg, task, &lim, st, t, d);
    return 0;
}

/* The escalation ends: no tier above from_tier is left (first_spent: the
 * first allowed one whose budget is spent, or -1). */
static void stop_no_tier(const struct ks_config *cfg,
                         int from_tier,
                         int first_spent,
                         struct route_decision *d)
{
    if (first_spent >= 0) {
        d->stop_status = KS_STATUS_BUDGET_EXCEEDED;
        ks_strlcpy(d->reason, "budget", sizeof(d->reason));
        snprintf(d->detail, sizeof(d->detail),
                 "escalation from '%s' stopped: the budget of tier '%s' "
                 "and every allowed tier above is spent",
                 cfg->tiers[from_tier].name, cfg->tiers[first_spent].name);
    } else {
        ks_strlcpy(d->reason, "no_tier", sizeof(d->reason));
        snprintf(d->detail, sizeof(d->detail),
                 "escalation from '%s': no allowed tier above it",
                 cfg->tiers[from_tier].name);
    }
}

/* The first tier above from_tier that lim allows and whose budget is not
 * spent (spent ones are skipped upward). Returns it, or -1 with d set: a
 * spent tier under `defer` (ROUTE_DEFER), or none left (stop). */
static int next_tier(const struct ks_config *cfg,
                     const struct ks_task *task,
                     const struct limits *lim,
                     int from_tier,
                     const struct route_state *st,
                     struct route_decision *d)
{
    int first_spent = -1;

    for (int t = from_tier + 1; t <= lim->hi; t++) {
        if (!allowed(cfg, task, lim, t)) {
            continue;
        }
        if (!spent(st, t)) {
            return t;
        }
        if (cfg->tiers[t].on_budget_exhausted == KS_BUDGET_DEFER) {
            d->action = ROUTE_DEFER;
            d->tier = t;
            ks_strlcpy(d->reason, "budget_defer", sizeof(d->reason));
            return -1;
        }
        if (first_spent < 0) {
            first_spent = t;
        }
    }
    stop_no_tier(cfg, from_tier, first_spent, d);
    return -1;
}

/* Does the worst case on tier t push the task past its max_cost_usd?
 * Sets the stop in d when it does. */
static bool over_max_cost(const struct ks_config *cfg,
                          const struct ks_task *task,
                          int t,
                          int64_t cost_so_far_micro,
                          struct route_decision *d)
{
    if (task->hints.max_cost_micro < 0 ||
        cost_so_far_micro + route_worst_case_micro(cfg, task, t) <=
            task->hints.max_cost_micro) {
        return false;
    }
    d->stop_status = KS_STATUS_BUDGET_EXCEEDED;
    ks_strlcpy(d->reason, "max_cost", sizeof(d->reason));
    snprintf(d->detail, sizeof(d->detail),
             "max_cost_usd: %.6f spent so far plus %.6f worst case on "
             "tier '%s' is over %.6f",
             ks_micro_to_usd(cost_so_far_micro),
             ks_micro_to_usd(route_worst_case_micro(cfg, task, t)),
             cfg->tiers[t].name, ks_micro_to_usd(task->hints.max_cost_micro));
    return true;
}

int route_escalation(const struct ks_config *cfg,
                     const struct ks_task *task,
                     int from_tier,
                     uint32_t hop,
                     int64_t cost_so_far_micro,
                     const struct route_state *st,
                     struct route_decision *d)
{
    struct limits lim = {0, (int)cfg->n_tiers - 1, task->hints.local_only,
                         ks_price_prompt_tokens(task, NULL)};
    int t;

    memset(d, 0, sizeof(*d));
    d->action = ROUTE_STOP;
    d->stop_status = KS_STATUS_LOW_CONFIDENCE;
    d->tier = -1;
    if (task->hints.max_tier) {
        int hi = ks_config_tier_index(cfg, task->hints.max_tier);

        lim.hi = hi >= 0 ? hi : lim.hi;
    }
    if ((int64_t)hop + 1 > cfg->max_hops) {
        ks_strlcpy(d->reason, "max_hops", sizeof(d->reason));
        snprintf(d->detail, sizeof(d->detail),
                 "hop %u is routing.max_hops (%d): no further escalation",
                 (unsigned)hop, cfg->max_hops);
        return 0;
    }
    t = next_tier(cfg, task, &lim, from_tier, st, d);
    if (t < 0 || over_max_cost(cfg, task, t, cost_so_far_micro, d)) {
        return 0;
    }
    d->action = ROUTE_PUBLISH;
    d->tier = t;
    ks_strlcpy(d->reason, "escalation", sizeof(d->reason));
    return 0;
}
