/*
 * submit_state.c - bookkeeping and the summary of `kascade submit --wait`.
 *
 * The id index is an open-addressing table (FNV-1a) built once all lines
 * are read; duplicate ids chain through linear probing, and a result takes
 * the first pending line with its id.
 */
#include "submit_state.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

void submit_state_init(struct submit_state *st)
{
    memset(st, 0, sizeof(*st));
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

void submit_state_fini(struct submit_state *st)
{
    for (size_t i = 0; i < st->n; i++) {
        free(st->sent[i].id);
    }
    free(st->sent);
    free(st->index);
    free(st->latency);
    free_strings(st->tiers, st->n_results);
    free_strings(st->statuses, st->n_results);
    free_strings(st->dlq_codes, st->n_dlq);
}

size_t submit_state_add(struct submit_state *st, const char *id, size_t lineno)
{
    struct sent *s;

    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 1024;
        st->sent = ks_xrealloc(st->sent, st->cap * sizeof(*st->sent));
    }
    s = &st->sent[st->n];
    memset(s, 0, sizeof(*s));
    s->id = id ? ks_xstrdup(id) : NULL;
    s->offset = -1;
    s->lineno = lineno;
    return st->n++;
}

void submit_state_reject(struct submit_state *st, size_t lineno)
{
    if (st->n_rejected < SUBMIT_REJECTED_SHOWN) {
        st->rejected[st->n_rejected] = lineno;
    }
    st->n_rejected++;
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h;
}

void submit_state_index(struct submit_state *st)
{
    st->index_cap = 16;
    while (st->index_cap < st->n * 2) {
        st->index_cap *= 2;
    }
    st->index = ks_xmalloc(st->index_cap * sizeof(*st->index));
    memset(st->index, 0xff, st->index_cap * sizeof(*st->index));
    st->latency = ks_xcalloc(st->n + 1, sizeof(*st->latency));
    st->tiers = ks_xcalloc(st->n + 1, sizeof(*st->tiers));
    st->statuses = ks_xcalloc(st->n + 1, sizeof(*st->statuses));
    st->dlq_codes = ks_xcalloc(st->n + 1, sizeof(*st->dlq_codes));
    for (size_t i = 0; i < st->n; i++) {
        size_t h;

        if (!st->sent[i].id) {
            continue;
        }
        h = fnv(st->sent[i].id) & (st->index_cap - 1);
        while (st->index[h] != SIZE_MAX) {
            h = (h + 1) & (st->index_cap - 1);
        }
        st->index[h] = i;
    }
}

static void done(struct submit_state *st, struct sent *s)
{
    s->done = true;
    st->n_done++;
}

/* The first pending line with id, or NULL. */
static struct sent *pending(struct submit_state *st, const char *id)
{
    size_t h = fnv(id) & (st->index_cap - 1);

    for (; st->index[h] != SIZE_MAX; h = (h + 1) & (st->index_cap - 1)) {
        struct sent *s = &st->sent[st->index[h]];

        if (!s->done && strcmp(s->id, id) == 0) {
            return s;
        }
    }
    return NULL;
}

bool submit_state_result(struct submit_state *st,
                         const struct ks_config *cfg,
                         const struct ks_result *res)
{
    const struct ks_provider_cfg *top =
        &cfg->tiers[cfg->n_tiers - 1].providers[0];
    struct sent *s = pending(st, res->id);

    if (!s) {
        return false;
    }
    done(st, s);
    st->latency[st->n_latency++] = ks_mono_ms() - s->sent_ms;
    st->tiers[st->n_results] = ks_xstrdup(res->tier ? res->tier : "-");
    st->statuses[st->n_results] = ks_xstrdup(ks_status_str(res->status));
    st->n_results++;
    if (res->n_path > 1) {
        st->n_escalated++;
        st->n_hops += res->n_path - 1;
    }
    st->cost_micro += res->cost_micro;
    st->frontier_micro += llround((double)res->input_tokens * top->price_in +
                                  (double)res->output_tokens * top->price_out);
    return true;
}

bool submit_state_dlq(struct submit_state *st,
                      int32_t partition,
                      int64_t offset,
                      const char *code)
{
    for (size_t i = 0; i < st->n; i++) {
        struct sent *s = &st->sent[i];

        if (!s->done && s->offset == offset && s->partition == partition) {
            done(st, s);
            st->dlq_codes[st->n_dlq++] = ks_xstrdup(code);
            return true;
        }
    }
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Prints "label: a=3 b=5" from n strings (sorted in place). */
static void print_counts(const char *label, char **v, size_t n)
{
    printf("  %-14s", label);
    if (n == 0) {
        printf(" none\n");
        return;
    }
    qsort(v, n, sizeof(*v), cmp_str);
    for (size_t i = 0, run = 1; i < n; i++, run++) {
        if (i + 1 == n || strcmp(v[i], v[i + 1]) != 0) {
            printf(" %s=%zu", v[i], run);
            run = 0;
        }
    }
    printf("\n");
}

static int64_t pct(const int64_t *v, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);

    return n ? v[i] : 0;
}

void submit_state_print(const struct submit_state *st,
                        const struct ks_config *cfg,
                        double elapsed_s)
{
    printf("\nkascade summary: %zu task(s) in %.1f s\n", st->n, elapsed_s);
    printf("  %-14s %zu task(s)\n", "sent:", st->n_acked);
    printf("  %-14s %zu line(s)", "rejected:", st->n_rejected);
    for (size_t i = 0; i < st->n_rejected && i < SUBMIT_REJECTED_SHOWN; i++) {
        printf("%s%zu", i ? ", " : " (line ", st->rejected[i]);
    }
    if (st->n_rejected > SUBMIT_REJECTED_SHOWN) {
        printf(", ...");
    }
    printf("%s\n", st->n_rejected ? ")" : "");
    print_counts("per tier:", st->tiers, st->n_results);
    print_counts("per status:", st->statuses, st->n_results);
    print_counts("dead-lettered:", st->dlq_codes, st->n_dlq);
    printf("  %-14s %zu task(s), %zu hop(s) up\n",
           "escalated:", st->n_escalated, st->n_hops);
    printf("  %-14s %.6f USD (all on %s: %.6f USD",
           "cost:", ks_micro_to_usd(st->cost_micro),
           cfg->tiers[cfg->n_tiers - 1].name,
           ks_micro_to_usd(st->frontier_micro));
    if (st->frontier_micro > 0) {
        printf(", %.1f%% saved",
               100.0 *
                   (1.0 - (double)st->cost_micro / (double)st->frontier_micro));
    }
    printf(")\n");
    if (st->n_latency > 0) {
        qsort(st->latency, st->n_latency, sizeof(*st->latency), cmp_i64);
        printf("  %-14s p50 %" PRId64 " ms, p95 %" PRId64 " ms, p99 %" PRId64
               " ms (submit to result)\n",
               "latency:", pct(st->latency, st->n_latency, 0.50),
               pct(st->latency, st->n_latency, 0.95),
               pct(st->latency, st->n_latency, 0.99));
    }
    if (st->n_done < st->n) {
        printf("  %-14s %zu task(s) without a result or DLQ entry\n",
               "missing:", st->n - st->n_done);
    }
}

bool submit_state_dlq_id(struct submit_state *st,
                         const char *id,
                         const char *code)
{
    struct sent *s = pending(st, id);

    if (!s) {
        return false;
    }
    done(st, s);
    st->dlq_codes[st->n_dlq++] = ks_xstrdup(code);
    return true;
}
