/*
 * order.c - ordering: "key": at most one task per message key in flight,
 * tasks of one key in the order they arrived, and waiting tasks kept out
 * of the backlog.
 *
 * Keys are told apart by a 64-bit hash of partition and key: two keys
 * that collide only wait for each other, which delays but never reorders.
 * Each held key has an entry in a chained hash table with the FIFO of the
 * jobs waiting behind its holder. Without it a hot key's waiting tasks
 * filled the bounded backlog and the worker ran one call at a time
 * (issue 10). A key queue is bounded in bytes: past key_queue_bytes its
 * partition is not taken from (the bound can be passed by one pull batch,
 * already taken when the queue filled). Memory is bounded too: every
 * queue has a holder in the job list, so there are at most w->max_jobs
 * queues.
 *
 * The per-pass set (order_begin, order_claim) stays as a second guard: in
 * every pass over the job list (oldest first) each unfinished job claims
 * its key, and a job whose key an older one has claimed waits.
 */
#include "order.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

#include "base/banned.h"

struct order_wait {
    struct job *job;
    struct order_wait *next;
};

struct order_key {
    uint64_t h;
    int32_t partition;
    const char *topic; /* the tracker's, valid while a job of it lives */
    struct order_wait *head, *tail;
    size_t n, bytes;
    bool over; /* bytes > key_queue_bytes: counted in its partition */
    struct order_key *next;
};

struct order_part {
    char topic[KS_TOPIC_MAX];
    int32_t partition;
    size_t over; /* its keys over the bound */
};

struct order_state {
    struct order_key **buckets;
    size_t n_buckets, n_keys;
    struct order_part *parts;
    size_t n_parts;
    size_t n_waiting, bytes_waiting;
};

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

static bool keyed(const struct worker *w, const struct job *job)
{
    return w->tier->order_by_key && job->rkm->key && job->rkm->key_len > 0;
}

/* ---- the key table ------------------------------------------------------ */

static struct order_state *state_of(struct worker *w)
{
    if (!w->order) {
        w->order = ks_xcalloc(1, sizeof(*w->order));
        w->order->n_buckets = 256;
        w->order->buckets =
            ks_xcalloc(w->order->n_buckets, sizeof(*w->order->buckets));
    }
    return w->order;
}

static struct order_key **slot_of(struct order_state *os, uint64_t h)
{
    struct order_key **at = &os->buckets[h & (os->n_buckets - 1)];

    while (*at && (*at)->h != h) {
        at = &(*at)->next;
    }
    return at;
}

/* Doubles the buckets when the chains grow long. */
static void grow(struct order_state *os)
{
    size_t nb = os->n_buckets * 2;
    struct order_key **b = ks_xcalloc(nb, sizeof(*b));

    for (size_t i = 0; i < os->n_buckets; i++) {
        for (struct order_key *k = os->buckets[i], *next; k; k = next) {
            next = k->next;
            k->next = b[k->h & (nb - 1)];
            b[k->h & (nb - 1)] = k;
        }
    }
    free(os->buckets);
    os->buckets = b;
    os->n_buckets = nb;
}

/* ---- partitions over the bound ------------------------------------------ */

static struct order_part *part_of(struct order_state *os,
                                  const char *topic,
                                  int32_t partition,
                                  bool add)
{
    for (size_t i = 0; i < os->n_parts; i++) {
        if (os->parts[i].partition == partition &&
            strcmp(os->parts[i].topic, topic) == 0) {
            return &os->parts[i];
        }
    }
    if (!add) {
        return NULL;
    }
    os->parts = ks_xrealloc(os->parts, (os->n_parts + 1) * sizeof(*os->parts));
    memset(&os->parts[os->n_parts], 0, sizeof(*os->parts));
    ks_strlcpy(os->parts[os->n_parts].topic, topic,
               sizeof(os->parts[os->n_parts].topic));
    os->parts[os->n_parts].partition = partition;
    return &os->parts[os->n_parts++];
}

/* Keeps k->over and its partition's count in step with k->bytes. */
static void update_over(const struct worker *w,
                        struct order_state *os,
                        struct order_key *k)
{
    bool over = k->bytes > w->tier->key_queue_bytes;
    struct order_part *p;

    if (over == k->over) {
        return;
    }
    k->over = over;
    p = part_of(os, k->topic, k->partition, true);
    if (over) {
        p->over++;
    } else {
        p->over--;
    }
    ks_log_debug("worker",
                 "%s[%d]: a key queue %s key_queue_bytes (%zu bytes "
                 "waiting): partition %s",
                 k->topic, (int)k->partition, over ? "passed" : "is back under",
                 k->bytes, p->over > 0 ? "held" : "taken from again");
}

/* ---- the job's side ----------------------------------------------------- */

enum order_verdict order_enter(struct worker *w, const struct job *job)
{
    struct order_state *os;
    struct order_key **at, *k;
    uint64_t h;

    if (!keyed(w, job)) {
        return ORDER_FREE;
    }
    os = state_of(w);
    h = key_hash(job);
    at = slot_of(os, h);
    if (*at) {
        return ORDER_WAIT;
    }
    k = ks_xcalloc(1, sizeof(*k));
    k->h = h;
    k->partition = job->ticket.partition;
    k->topic = job->ticket.topic;
    *at = k;
    if (++os->n_keys > 2 * os->n_buckets) {
        grow(os);
    }
    return ORDER_HOLD;
}

void order_park(struct worker *w, struct job *job)
{
    struct order_state *os = state_of(w);
    struct order_key *k = *slot_of(os, key_hash(job));
    struct order_wait *wt = ks_xcalloc(1, sizeof(*wt));

    assert(k); /* order_enter said ORDER_WAIT */
    wt->job = job;
    if (k->tail) {
        k->tail->next = wt;
    } else {
        k->head = wt;
    }
    k->tail = wt;
    k->n++;
    k->bytes += job->rkm->len;
    os->n_waiting++;
    os->bytes_waiting += job->rkm->len;
    update_over(w, os, k);
}

struct job *order_leave(struct worker *w, const struct job *job)
{
    struct order_state *os = w->order;
    struct order_key **at, *k;
    struct order_wait *wt;
    struct job *next;

    if (!os || !keyed(w, job)) {
        return NULL;
    }
    at = slot_of(os, key_hash(job));
    k = *at;
    if (!k) {
        return NULL;
    }
    if (!k->head) {
        *at = k->next;
        os->n_keys--;
        free(k);
        return NULL;
    }
    wt = k->head;
    next = wt->job;
    k->head = wt->next;
    if (!k->head) {
        k->tail = NULL;
    }
    free(wt);
    k->n--;
    k->bytes -= next->rkm->len;
    os->n_waiting--;
    os->bytes_waiting -= next->rkm->len;
    k->topic = next->ticket.topic;
    update_over(w, os, k);
    return next;
}

bool order_partition_full(const struct worker *w,
                          const char *topic,
                          int32_t partition)
{
    const struct order_part *p;

    if (!w->order) {
        return false;
    }
    p = part_of(w->order, topic, partition, false);
    return p && p->over > 0;
}

size_t order_waiting(const struct worker *w, size_t *bytes)
{
    *bytes = w->order ? w->order->bytes_waiting : 0;
    return w->order ? w->order->n_waiting : 0;
}

void order_fini(struct worker *w)
{
    struct order_state *os = w->order;

    if (!os) {
        return;
    }
    for (size_t i = 0; i < os->n_buckets; i++) {
        for (struct order_key *k = os->buckets[i], *next; k; k = next) {
            next = k->next;
            for (struct order_wait *wt = k->head, *wn; wt; wt = wn) {
                wn = wt->next;
                free(wt);
            }
            free(k);
        }
    }
    free(os->buckets);
    free(os->parts);
    free(os);
    w->order = NULL;
}

/* ---- the per-pass guard ------------------------------------------------- */

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

    if (!keyed(w, job)) {
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
