/*
 * budget.c - `kascade budget show|set|set-tenant|reset`: the operator's
 * view of the daily cost budgets in Redis (docs/design.md section 7).
 *
 * show lists every configured tier and tenant, plus the tenants Redis has
 * a budget hash for that day or a runtime limit for (found with SCAN; the
 * :res/:amt/:swept helper keys are skipped). set and set-tenant write the
 * runtime limits that override the config; reset moves today's spend of a tier
 * aside (into reset_micro). Days are UTC, by ks_config_budget_now_ms() so
 * tests can move the clock. Money is micro-dollars here, USD on output.
 * Exit status: 0 done, 1 Redis unreachable or declined, 2 usage error.
 */
#include "redis/budget.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "base/util.h"
#include "cli.h"
#include "redis/store.h"
#include "wire/codec.h"

#include "base/banned.h"

#define DAY_MS              86400000LL
#define MAX_USD             1e9 /* the config's own cap on daily_budget_usd */
#define MAX_TENANT_NAME     128 /* [A-Za-z0-9_.-]{1,128} */
#define MAX_SCANNED_TENANTS 100000 /* show refuses to list more than this */

static const char usage[] =
    "usage: kascade budget show [--json] [--day YYYYMMDD]\n"
    "       kascade budget set TIER USD|none\n"
    "       kascade budget set-tenant NAME USD|none\n"
    "       kascade budget reset TIER [--yes]\n";

/* One line of `budget show`. */
struct budget_row {
    const char *kind; /* "tier" or "tenant" */
    const char *name; /* borrowed from cfg or from the scanned names */
    int64_t config_limit;
    struct ks_budget_state st;
};

/* What every subcommand works with. */
struct budget_cli {
    const struct ks_config *cfg;
    struct ks_store *rs;
    int64_t now_ms; /* the budget clock (ks_config_budget_now_ms) */
    char today[9];  /* its UTC day, YYYYMMDD */
};

/* Tenant names found in Redis; the strings are owned. */
struct name_list {
    char **v;
    size_t n;
};

/* Says what is wrong, then the usage; returns the usage exit status. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt,
                                                             ...)
{
    va_list ap;

    fputs("kascade: budget: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

/* Reports a failed store call; the URL is shown without its password
 * (redis://:pw@host). Returns 1. */
static int store_error(const struct ks_config *cfg, enum ks_err err)
{
    char url[512];

    if (err == KS_ERR_TOO_LARGE) {
        fprintf(stderr, "kascade: budget: more than %d tenants in Redis\n",
                MAX_SCANNED_TENANTS);
    } else if (err != KS_ERR_RETRY && err != KS_ERR_TIMEOUT) {
        fprintf(stderr, "kascade: budget: Redis: %s\n", ks_err_str(err));
    } else {
        ks_store_url_shown(cfg->redis_url, url, sizeof(url));
        fprintf(stderr, "kascade: cannot reach Redis at %s\n", url);
    }
    return 1;
}

static bool valid_tenant(const char *s)
{
    size_t n = strlen(s);

    return n >= 1 && n <= MAX_TENANT_NAME &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789_.-") == n;
}

/* A real date as YYYYMMDD: it must survive the round trip. */
static bool valid_day(const char *s)
{
    struct tm tm = {0};
    int64_t ymd;
    char back[9];

    if (ks_parse_int64(s, 19700101, 99991231, &ymd) != 0) {
        return false;
    }
    tm.tm_year = (int)(ymd / 10000) - 1900;
    tm.tm_mon = (int)(ymd / 100 % 100) - 1;
    tm.tm_mday = (int)(ymd % 100);
    ks_budget_day((int64_t)timegm(&tm) * 1000, back);
    return strcmp(back, s) == 0;
}

/* Parses "none" (KS_BUDGET_NO_LIMIT) or a decimal amount of USD from 0 to
 * MAX_USD into micro-dollars. Returns 0, or -1 after printing why not. */
static int parse_limit(const char *s, int64_t *micro)
{
    double usd;

    if (strcmp(s, "none") == 0) {
        *micro = KS_BUDGET_NO_LIMIT;
        return 0;
    }
    /* strtod alone would also take hex, "inf", "nan" and blanks. */
    if (strspn(s, "0123456789.eE+-") != strlen(s) ||
        ks_parse_double(s, &usd) != 0 || !(usd >= 0 && usd <= MAX_USD)) {
        fprintf(stderr,
                "kascade: budget: '%s' is not an amount of USD (a decimal "
                "from 0 to %.0f, or none)\n",
                s, MAX_USD);
        return -1;
    }
    *micro = ks_usd_to_micro(usd);
    return 0;
}

/* Writes micro as USD with 6 decimals into buf; returns buf. */
static const char *format_usd(char *buf, size_t size, int64_t micro)
{
    snprintf(buf, size, "%.6f", ks_micro_to_usd(micro));
    return buf;
}

/* The same for a limit, or "unlimited" for KS_BUDGET_NO_LIMIT. */
static const char *format_limit(char *buf, size_t size, int64_t micro)
{
    return micro == KS_BUDGET_NO_LIMIT ? "unlimited"
                                       : format_usd(buf, size, micro);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the tenant of one scanned key <base><tenant> (not of the helper
 * keys <base><tenant>:res, :amt, :swept: ':' is no tenant character).
 * Key parts are encoded (ks_store_key_part), and a valid tenant name
 * encodes to itself; a part holding '%' is not a valid tenant's. */
static void scan_take(const redisReply *key,
                      size_t base_len,
                      struct name_list *names)
{
    char name[MAX_TENANT_NAME + 2];

    if (key->type != REDIS_REPLY_STRING || key->len <= base_len) {
        return;
    }
    ks_strlcpy(name, key->str + base_len, sizeof(name));
    if (strlen(name) == key->len - base_len && valid_tenant(name)) {
        names->v = ks_xrealloc(names->v, (names->n + 1) * sizeof(*names->v));
        names->v[names->n++] = ks_xstrdup(name);
    }
}

/* One SCAN step; updates cursor. Returns KS_OK or an error. */
static enum ks_err scan_step(struct ks_store *rs,
                             const char *pattern,
                             size_t base_len,
                             char cursor[32],
                             struct name_list *names)
{
    const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
    redisReply *reply = ks_store_command(rs, 6, argv, NULL);
    enum ks_err err = KS_ERR_UPSTREAM;

    if (!reply) {
        return KS_ERR_RETRY;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_ARRAY) {
        ks_strlcpy(cursor, reply->element[0]->str, 32);
        for (size_t i = 0; i < reply->element[1]->elements; i++) {
            scan_take(reply->element[1]->element[i], base_len, names);
        }
        err = names->n > MAX_SCANNED_TENANTS ? KS_ERR_TOO_LARGE : KS_OK;
    }
    freeReplyObject(reply);
    return err;
}

/* Adds to names the tenant of every key <base><tenant>. */
static enum ks_err scan_tenants(struct ks_store *rs,
                                const char *base,
                                struct name_list *names)
{
    char cursor[32] = "0";
    struct ks_buf pat;
    enum ks_err err;

    ks_buf_init(&pat);
    for (const char *c = base; *c; c++) { /* glob-escape the prefix */
        if (strchr("*?[]\\", *c)) {
            ks_buf_append(&pat, "\\", 1);
        }
        ks_buf_append(&pat, c, 1);
    }
    ks_buf_append(&pat, "*", 1);
    do {
        err = scan_step(rs, pat.data, strlen(base), cursor, names);
    } while (err == KS_OK && strcmp(cursor, "0") != 0);
    ks_buf_fini(&pat);
    return err;
}

/* Fills names, sorted, with the tenants that have a budget hash for day
 * or a runtime limit (repeats included). */
static enum ks_err find_tenants(struct ks_store *rs,
                                const char *day,
                                struct name_list *names)
{
    char base[512];
    enum ks_err err;

    snprintf(base, sizeof(base),
             "%s" KS_BUDGET_TAG ":%s:tenant:", ks_store_prefix(rs), day);
    err = scan_tenants(rs, base, names);
    snprintf(base, sizeof(base),
             "%s" KS_BUDGET_TAG ":limit:tenant:", ks_store_prefix(rs));
    if (err == KS_OK) {
        err = scan_tenants(rs, base, names);
    }
    if (names->n > 0) {
        qsort(names->v, names->n, sizeof(*names->v), cmp_names);
    }
    return err;
}

/* Lists the budgets to show: configured tiers and tenants, then the
 * tenants only Redis knows. rows has room for all. Returns the count. */
static size_t list_rows(const struct ks_config *cfg,
                        const struct name_list *scanned,
                        struct budget_row *rows)
{
    size_t n = 0;

    for (size_t i = 0; i < cfg->n_tiers; i++) {
        rows[n++] = (struct budget_row){"tier", cfg->tiers[i].name,
                                        cfg->tiers[i].daily_budget_micro};
    }
    for (size_t i = 0; i < cfg->n_tenants; i++) {
        rows[n++] = (struct budget_row){"tenant", cfg->tenants[i].name,
                                        cfg->tenants[i].limit_micro};
    }
    for (size_t i = 0; i < scanned->n; i++) {
        /* SCAN may return a key twice, and both scans the same tenant. */
        bool known = i > 0 && strcmp(scanned->v[i - 1], scanned->v[i]) == 0;

        for (size_t j = 0; j < cfg->n_tenants && !known; j++) {
            known = strcmp(cfg->tenants[j].name, scanned->v[i]) == 0;
        }
        if (!known) {
            rows[n++] =
                (struct budget_row){"tenant", scanned->v[i],
                                    ks_config_tenant_limit(cfg, scanned->v[i])};
        }
    }
    return n;
}

static void print_row(const struct budget_row *row, int name_w)
{
    const struct ks_budget_state *st = &row->st;
    char limit[40], spent[32], reserved[32], rest[32] = "-", used[16] = "-";

    snprintf(limit, sizeof(limit), "%s%s",
             format_limit(spent, sizeof(spent), st->limit_micro),
             st->limit_is_runtime ? "*" : "");
    if (st->limit_micro != KS_BUDGET_NO_LIMIT) {
        format_usd(rest, sizeof(rest),
                   st->limit_micro - st->spent_micro - st->reserved_micro);
        /* Used counts what is reserved: it is as good as spent. */
        snprintf(used, sizeof(used), "%.0f%%",
                 st->limit_micro > 0
                     ? 100.0 * (double)(st->spent_micro + st->reserved_micro) /
                           (double)st->limit_micro
                     : 100.0);
    }
    format_usd(spent, sizeof(spent), st->spent_micro);
    format_usd(reserved, sizeof(reserved), st->reserved_micro);
    printf("%-6s  %-*s  %17s  %16s  %16s  %17s  %6s\n", row->kind, name_w,
           row->name, limit, spent, reserved, rest, used);
}

static int print_table(const char *day,
                       double elapsed,
                       const struct budget_row *rows,
                       size_t n)
{
    int name_w = 4;
    bool runtime = false;

    for (size_t i = 0; i < n; i++) {
        int len = (int)strlen(rows[i].name);

        name_w = len > name_w ? len : name_w;
        runtime = runtime || rows[i].st.limit_is_runtime;
    }
    printf("day %s (UTC), %.0f%% elapsed\n", day, elapsed * 100.0);
    printf("%-6s  %-*s  %17s  %16s  %16s  %17s  %6s\n", "kind", name_w, "name",
           "limit USD", "spent", "reserved", "remaining", "used");
    for (size_t i = 0; i < n; i++) {
        print_row(&rows[i], name_w);
    }
    if (runtime) {
        printf("* runtime limit (kascade budget set), overrides the config\n");
    }
    return 0;
}

static void json_usd(cJSON *o, const char *key, bool null, int64_t micro)
{
    cJSON_AddItemToObject(o, key,
                          null ? cJSON_CreateNull()
                               : cJSON_CreateNumber(ks_micro_to_usd(micro)));
}

static int print_json(const char *day,
                      double elapsed,
                      const struct budget_row *rows,
                      size_t n)
{
    cJSON *root = cJSON_CreateObject(), *arr;
    char *text;

    cJSON_AddStringToObject(root, "day", day);
    cJSON_AddNumberToObject(root, "elapsed", round(elapsed * 1e4) / 1e4);
    arr = cJSON_AddArrayToObject(root, "budgets");
    for (size_t i = 0; i < n; i++) {
        const struct ks_budget_state *st = &rows[i].st;
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "kind", rows[i].kind);
        cJSON_AddStringToObject(o, "name", rows[i].name);
        json_usd(o, "limit_usd", st->limit_micro == KS_BUDGET_NO_LIMIT,
                 st->limit_micro);
        cJSON_AddStringToObject(o, "limit_source",
                                st->limit_is_runtime ? "runtime" : "config");
        json_usd(o, "spent_usd", false, st->spent_micro);
        json_usd(o, "reserved_usd", false, st->reserved_micro);
        json_usd(o, "remaining_usd", st->limit_micro == KS_BUDGET_NO_LIMIT,
                 st->limit_micro - st->spent_micro - st->reserved_micro);
        cJSON_AddItemToArray(arr, o);
    }
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "kascade: budget show: out of memory\n");
        return 1;
    }
    printf("%s\n", text);
    cJSON_free(text);
    return 0;
}

/* Share of day elapsed: 0 for a day to come, 1 for a past one. */
static double day_elapsed(const struct budget_cli *bc, const char *day)
{
    int cmp = strcmp(day, bc->today);

    return cmp < 0   ? 1.0
           : cmp > 0 ? 0.0
                     : (double)(bc->now_ms % DAY_MS) / (double)DAY_MS;
}

static int show(const struct budget_cli *bc, const char *day, bool json)
{
    const struct ks_config *cfg = bc->cfg;
    struct name_list scanned = {NULL, 0};
    struct budget_row *rows = NULL;
    enum ks_err err;
    size_t n = 0;
    int status;

    err = find_tenants(bc->rs, day, &scanned);
    if (err == KS_OK) {
        rows = ks_xcalloc(cfg->n_tiers + cfg->n_tenants + scanned.n + 1,
                          sizeof(*rows));
        n = list_rows(cfg, &scanned, rows);
    }
    for (size_t i = 0; err == KS_OK && i < n; i++) {
        err = ks_budget_read(bc->rs, rows[i].kind, rows[i].name, day,
                             rows[i].config_limit, bc->now_ms, &rows[i].st);
    }
    if (err != KS_OK) {
        status = store_error(cfg, err);
    } else {
        status = (json ? print_json : print_table)(day, day_elapsed(bc, day),
                                                   rows, n);
    }
    free(rows);
    for (size_t i = 0; i < scanned.n; i++) {
        free(scanned.v[i]);
    }
    free(scanned.v);
    return status;
}

static int cmd_show(const struct budget_cli *bc, int argc, char **argv)
{
    const char *day = bc->today;
    bool json = false;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--day") == 0 && i + 1 < argc) {
            day = argv[++i];
            if (!valid_day(day)) {
                return usage_error("--day '%s' is not a YYYYMMDD date", day);
            }
        } else {
            return usage_error("show: unexpected argument '%s'", argv[i]);
        }
    }
    return show(bc, day, json);
}

/* Returns the tier's index, or -1 after saying which tiers there are. */
static int find_tier(const struct ks_config *cfg, const char *name)
{
    int t = ks_config_tier_index(cfg, name);

    if (t < 0) {
        fprintf(stderr, "kascade: budget: unknown tier '%s' (tiers:", name);
        for (size_t i = 0; i < cfg->n_tiers; i++) {
            fprintf(stderr, " %s", cfg->tiers[i].name);
        }
        fprintf(stderr, ")\n");
    }
    return t;
}

/* set TIER USD|none, set-tenant NAME USD|none */
static int cmd_set(const struct budget_cli *bc, int argc, char **argv)
{
    bool tenant = strcmp(argv[0], "set-tenant") == 0;
    const char *kind = tenant ? "tenant" : "tier";
    int64_t micro, config_limit;
    enum ks_err err;
    char usd[32];
    int t = -1;

    if (argc != 3) {
        return usage_error("%s takes a name and an amount", argv[0]);
    }
    if (tenant && !valid_tenant(argv[1])) {
        return usage_error("tenant '%s' is not 1 to 128 of [A-Za-z0-9_.-]",
                           argv[1]);
    }
    if ((!tenant && (t = find_tier(bc->cfg, argv[1])) < 0) ||
        parse_limit(argv[2], &micro) != 0) {
        return 2;
    }
    config_limit = tenant ? ks_config_tenant_limit(bc->cfg, argv[1])
                          : bc->cfg->tiers[t].daily_budget_micro;
    err = ks_budget_set_limit(bc->rs, kind, argv[1], micro);
    if (err != KS_OK) {
        return store_error(bc->cfg, err);
    }
    printf("%s %s: daily limit %s (%s)\n", kind, argv[1],
           format_limit(usd, sizeof(usd),
                        micro == KS_BUDGET_NO_LIMIT ? config_limit : micro),
           micro == KS_BUDGET_NO_LIMIT ? "from the config"
                                       : "runtime override");
    return 0;
}

/* Asks on the terminal; true only for y or yes. */
static bool confirm_reset(const char *tier, int64_t spent_micro)
{
    char line[64], usd[32];

    fprintf(stderr, "reset today's spend of tier %s (spent $%s)? [y/N] ", tier,
            format_usd(usd, sizeof(usd), spent_micro));
    if (!fgets(line, sizeof(line), stdin)) {
        return false;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

static int reset(const struct budget_cli *bc, int t, bool yes)
{
    const char *name = bc->cfg->tiers[t].name;
    struct ks_budget_state st;
    enum ks_err err;
    char usd[32];

    err = ks_budget_read(bc->rs, "tier", name, bc->today,
                         bc->cfg->tiers[t].daily_budget_micro, bc->now_ms, &st);
    if (err != KS_OK) {
        return store_error(bc->cfg, err);
    }
    if (!yes && !confirm_reset(name, st.spent_micro)) {
        fprintf(stderr, "kascade: budget reset: not reset\n");
        return 1;
    }
    err = ks_budget_reset(bc->rs, "tier", name, bc->today);
    if (err != KS_OK) {
        return store_error(bc->cfg, err);
    }
    printf("tier %s: spend of %s reset (was %s USD)\n", name, bc->today,
           format_usd(usd, sizeof(usd), st.spent_micro));
    return 0;
}

/* reset TIER [--yes] */
static int cmd_reset(const struct budget_cli *bc, int argc, char **argv)
{
    const char *tier = NULL;
    bool yes = false;
    int t;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--yes") == 0) {
            yes = true;
        } else if (!tier && argv[i][0] != '-') {
            tier = argv[i];
        } else {
            return usage_error("reset: unexpected argument '%s'", argv[i]);
        }
    }
    if (!tier) {
        return usage_error("reset needs a tier");
    }
    if ((t = find_tier(bc->cfg, tier)) < 0) {
        return 2;
    }
    if (!yes && !isatty(STDIN_FILENO)) {
        fprintf(stderr, "kascade: budget reset: pass --yes to reset without "
                        "a terminal\n");
        return 2;
    }
    return reset(bc, t, yes);
}

int cli_budget(const struct ks_config *cfg, int argc, char **argv)
{
    const char *cmd = argv[argc > 1 ? 1 : 0];
    int (*fn)(const struct budget_cli *, int, char **);
    struct budget_cli bc = {cfg, NULL, ks_config_budget_now_ms(cfg), ""};
    char errstr[512];
    int status;

    fn = strcmp(cmd, "show") == 0                                    ? cmd_show
         : strcmp(cmd, "reset") == 0                                 ? cmd_reset
         : strcmp(cmd, "set") == 0 || strcmp(cmd, "set-tenant") == 0 ? cmd_set
                                                                     : NULL;
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (!fn) {
        return usage_error("unknown command '%s'", cmd);
    }
    ks_budget_day(bc.now_ms, bc.today);
    /* Connects lazily: an unreachable Redis shows up in the first call. */
    bc.rs = ks_store_new(cfg, errstr, sizeof(errstr));
    if (!bc.rs) {
        fprintf(stderr, "kascade: redis: %s\n", errstr);
        return 1;
    }
    status = fn(&bc, argc - 1, argv + 1);
    ks_store_destroy(bc.rs);
    return status;
}
