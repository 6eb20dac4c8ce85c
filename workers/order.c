/*
 * order.c - ordering: "key": at most one task per message key in flight,
 * and tasks of one key in the order they arrived.
 *
 * Every pass over the job list (oldest first) starts an empty set of keys;
 * each unfinished job claims its key, and a job whose key an older job has
 * claimed waits. The set holds 64-bit hashes of partition and key: two
 * keys that collide only wait for each other, which delays but never
 * reorders. Jobs without a key are not ordered.
 */
#include "order.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

static uint64_t key_hash(const struct job *job)
{
    const unsigned char *k = job->rkm->key;
    uint64_t h = 1469598103934665603ULL;

    h = (h ^ (uint64_t)(uint32_t)job->rkm->partition) * 1099511628211ULL;
    for (size_t i = 0; i < job->rkm->key_len; i++) {
        h = (h ^ k[i]) * 1099511628211ULL;
    }
    return h | 1; /* 0 marks a free slot */
}

void order_begin(struct worker *w)
{
    size_t want = 16;

    if (!w->tier->order_by_key) {
        return;
    }
    while (want < w->n_jobs * 2) {
        want *= 2;
    }
    if (want != w->order_cap) {
        free(w->order_set);
        w->order_set = ks_xcalloc(want, sizeof(*w->order_set));
        w->order_cap = want;
    } else {
        memset(w->order_set, 0, want * sizeof(*w->order_set));
    }
}

bool order_claim(struct worker *w, const struct job *job)
{
    uint64_t h;
    size_t i;

    if (!w->tier->order_by_key || !job->rkm->key || job->rkm->key_len == 0) {
        return true;
    }
    h = key_hash(job);
    for (i = h & (w->order_cap - 1); w->order_set[i];
         i = (i + 1) & (w->order_cap - 1)) {
        if (w->order_set[i] == h) {
            return false;
        }
    }
    w->order_set[i] = h;
    return true;
}
