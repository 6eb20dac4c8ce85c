/*
 * test_redo.c - the produce-retry queue (kafka/redo.h) the router and the
 * worker share: records come back only once their backoff is over, oldest
 * first, with their own copies of key, value and headers; the wait until
 * the next one is reported; taking everything empties the queue; the
 * opaque is handed back untouched and never freed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kafka/redo.h"

#include "base/banned.h"

static size_t list_len(const struct ks_redo_rec *r)
{
    size_t n = 0;

    for (; r; r = r->next) {
        n++;
    }
    return n;
}

static void list_free(struct ks_redo_rec *r)
{
    while (r) {
        struct ks_redo_rec *next = r->next;

        ks_redo_rec_free(r);
        r = next;
    }
}

static void redo_take_due_returns_only_records_whose_time_has_come(void **st)
{
    struct ks_redo q = {0};
    int64_t wait = 1000;
    struct ks_redo_rec *due;

    (void)st;
    ks_redo_push(&q, "t", "k1", 2, "v1", 2, NULL, NULL, 100);
    ks_redo_push(&q, "t", "k2", 2, "v2", 2, NULL, NULL, 300);
    ks_redo_push(&q, "t", "k3", 2, "v3", 2, NULL, NULL, 200);
    assert_int_equal(ks_redo_count(&q), 3);

    due = ks_redo_take_due(&q, 99, &wait);
    assert_null(due);
    assert_int_equal(wait, 1); /* the first is due at 100 */

    wait = 1000;
    due = ks_redo_take_due(&q, 200, &wait);
    assert_int_equal(list_len(due), 2);
    assert_int_equal(ks_redo_count(&q), 1);
    assert_int_equal(wait, 100); /* the one left is due at 300 */
    list_free(due);

    due = ks_redo_take_due(&q, 300, NULL);
    assert_int_equal(list_len(due), 1);
    assert_memory_equal(due->key, "k2", 2);
    assert_int_equal(ks_redo_count(&q), 0);
    assert_null(q.head);
    list_free(due);
}

static void redo_take_due_hands_records_back_oldest_first(void **st)
{
    struct ks_redo q = {0};
    struct ks_redo_rec *due;

    (void)st;
    ks_redo_push(&q, "t", "a", 1, "1", 1, NULL, NULL, 5);
    ks_redo_push(&q, "t", "b", 1, "2", 1, NULL, NULL, 5);
    ks_redo_push(&q, "t", "c", 1, "3", 1, NULL, NULL, 5);
    due = ks_redo_take_due(&q, 5, NULL);
    assert_int_equal(list_len(due), 3);
    assert_memory_equal(due->key, "a", 1);
    assert_memory_equal(due->next->key, "b", 1);
    assert_memory_equal(due->next->next->key, "c", 1);
    list_free(due);
}

static void redo_push_keeps_its_own_copies(void **st)
{
    struct ks_redo q = {0};
    char topic[] = "tier.mid", key[] = "task-1", value[] = "{\"x\":1}";
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(1);
    const void *hv = NULL;
    size_t hlen = 0;
    int opaque = 42;
    struct ks_redo_rec *due;

    (void)st;
    rd_kafka_header_add(hdrs, "content-type", -1, "application/json", -1);
    ks_redo_push(&q, topic, key, strlen(key), value, strlen(value), hdrs,
                 &opaque, 0);
    memset(topic, 'X', sizeof(topic) - 1);
    memset(key, 'X', sizeof(key) - 1);
    memset(value, 'X', sizeof(value) - 1);

    due = ks_redo_take_due(&q, 0, NULL);
    assert_non_null(due);
    assert_string_equal(due->topic, "tier.mid");
    assert_int_equal(due->key_len, 6);
    assert_memory_equal(due->key, "task-1", 6);
    assert_int_equal(due->len, 7);
    assert_memory_equal(due->value, "{\"x\":1}", 7);
    assert_ptr_equal(due->opaque, &opaque); /* the caller's, untouched */
    assert_ptr_equal(due->hdrs, hdrs);      /* taken over */
    assert_int_equal(
        rd_kafka_header_get_last(due->hdrs, "content-type", &hv, &hlen),
        RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(hlen, strlen("application/json"));
    ks_redo_rec_free(due); /* frees the headers, not the opaque */
}

static void redo_push_without_key_or_value(void **st)
{
    struct ks_redo q = {0};
    struct ks_redo_rec *due;

    (void)st;
    ks_redo_push(&q, "dlq", NULL, 5, NULL, 0, NULL, NULL, 0);
    due = ks_redo_take_due(&q, 0, NULL);
    assert_non_null(due);
    assert_null(due->key);
    assert_int_equal(due->key_len, 0);
    assert_non_null(due->value); /* producible as an empty value */
    assert_int_equal(due->len, 0);
    assert_null(due->hdrs);
    ks_redo_rec_free(due);
}

static void redo_take_all_empties_the_queue_and_push_again_works(void **st)
{
    struct ks_redo q = {0};
    struct ks_redo_rec *all;
    int64_t wait = 77;

    (void)st;
    ks_redo_push(&q, "t", "a", 1, "1", 1, rd_kafka_headers_new(1), NULL,
                 INT64_MAX - 1);
    ks_redo_push(&q, "t", "b", 1, "2", 1, NULL, NULL, 1000000);
    all = ks_redo_take_due(&q, INT64_MAX, &wait);
    assert_int_equal(list_len(all), 2);
    assert_int_equal(wait, 77); /* nothing left: unchanged */
    assert_int_equal(ks_redo_count(&q), 0);
    /* pushing while going through a taken list (what the callers do
     * when producing again fails again) */
    ks_redo_push(&q, all->topic, all->key, all->key_len, all->value, all->len,
                 NULL, NULL, 10);
    list_free(all);
    assert_int_equal(ks_redo_count(&q), 1);
    list_free(ks_redo_take_due(&q, INT64_MAX, NULL));
    ks_redo_rec_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            redo_take_due_returns_only_records_whose_time_has_come),
        cmocka_unit_test(redo_take_due_hands_records_back_oldest_first),
        cmocka_unit_test(redo_push_keeps_its_own_copies),
        cmocka_unit_test(redo_push_without_key_or_value),
        cmocka_unit_test(redo_take_all_empties_the_queue_and_push_again_works),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
