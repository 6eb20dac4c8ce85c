/*
 * test_offsets.c - the commit-position tracker: a partition's position
 * only moves past the lowest unfinished offset, however out of order calls
 * finish; tickets from before a revocation or a redelivery never count;
 * partitions and topics do not see each other's offsets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "kafka/offsets.h"

#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int setup(void **state)
{
    *state = ks_offsets_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    ks_offsets_destroy(*state);
    return 0;
}

/* Tracks first..first+n-1 of topic/partition into tickets[0..n-1]. */
static void track_range(struct ks_offsets *ot,
                        const char *topic,
                        int32_t partition,
                        int64_t first,
                        size_t n,
                        struct ks_offset_ticket *tickets)
{
    for (size_t i = 0; i < n; i++) {
        ks_offsets_track(ot, topic, partition, first + (int64_t)i, &tickets[i]);
    }
}

static void offsets_ticket_describes_the_tracked_message(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t;

    ks_offsets_track(ot, "kascade.tasks", 3, 42, &t);
    assert_string_equal(t.topic, "kascade.tasks");
    assert_int_equal(t.partition, 3);
    assert_int_equal(t.offset, 42);
    assert_int_not_equal(t.generation, 0);
    assert_int_equal(ks_offsets_pending(ot, "kascade.tasks", 3), 1);
}

static void offsets_in_order_completion_advances_each_time(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t[3];

    track_range(ot, "t", 0, 0, 3, t);
    assert_int_equal(ks_offsets_done(ot, &t[0]), 1);
    assert_int_equal(ks_offsets_done(ot, &t[1]), 2);
    assert_int_equal(ks_offsets_done(ot, &t[2]), 3);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 0);
}

static void offsets_position_waits_for_the_lowest_unfinished(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t[10];

    track_range(ot, "t", 0, 0, 10, t);
    assert_int_equal(ks_offsets_done(ot, &t[3]), -1);
    assert_int_equal(ks_offsets_done(ot, &t[1]), -1);
    assert_int_equal(ks_offsets_done(ot, &t[2]), -1);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 10);
    /* 0 closes the gap: 0..3 are all finished, 4 is next to consume. */
    assert_int_equal(ks_offsets_done(ot, &t[0]), 4);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 6);
    /* A new gap at 4 holds back 5..9. */
    for (size_t i = 9; i >= 5; i--) {
        assert_int_equal(ks_offsets_done(ot, &t[i]), -1);
    }
    assert_int_equal(ks_offsets_done(ot, &t[4]), 10);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 0);
}

static void offsets_finishing_twice_does_not_move_the_position(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t[3];

    track_range(ot, "t", 0, 0, 3, t);
    assert_int_equal(ks_offsets_done(ot, &t[1]), -1);
    assert_int_equal(ks_offsets_done(ot, &t[1]), -1);
    assert_int_equal(ks_offsets_done(ot, &t[0]), 2);
    /* Already behind the position: nothing left to advance. */
    assert_int_equal(ks_offsets_done(ot, &t[0]), -1);
    assert_int_equal(ks_offsets_done(ot, &t[1]), -1);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 1);
    assert_int_equal(ks_offsets_done(ot, &t[2]), 3);
}

static void offsets_non_contiguous_offsets_commit_after_the_last_seen(
    void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t10, t12, t15;

    /* Compaction and transaction markers leave holes in a partition. */
    ks_offsets_track(ot, "t", 0, 10, &t10);
    ks_offsets_track(ot, "t", 0, 12, &t12);
    ks_offsets_track(ot, "t", 0, 15, &t15);
    assert_int_equal(ks_offsets_done(ot, &t15), -1);
    assert_int_equal(ks_offsets_done(ot, &t10), 11);
    assert_int_equal(ks_offsets_done(ot, &t12), 16);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 0);
}

static void offsets_non_contiguous_hole_is_not_a_gap(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t10, t12;

    /* 11 was never consumed, so 12 finishing after 10 is contiguous. */
    ks_offsets_track(ot, "t", 0, 10, &t10);
    ks_offsets_track(ot, "t", 0, 12, &t12);
    assert_int_equal(ks_offsets_done(ot, &t12), -1);
    assert_int_equal(ks_offsets_done(ot, &t10), 13);
}

static void offsets_ticket_from_before_forget_is_stale(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket old[3], now[3];

    track_range(ot, "t", 0, 0, 3, old);
    ks_offsets_forget(ot, "t", 0);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 0);
    /* Re-assigned and redelivered from 0 before the old calls finish. */
    track_range(ot, "t", 0, 0, 3, now);
    assert_int_not_equal(now[0].generation, old[0].generation);
    assert_int_equal(ks_offsets_done(ot, &old[0]), -1);
    assert_int_equal(ks_offsets_done(ot, &old[1]), -1);
    assert_int_equal(ks_offsets_done(ot, &old[2]), -1);
    /* The old tickets marked nothing: the new 0 still holds the gap. */
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 3);
    assert_int_equal(ks_offsets_done(ot, &now[1]), -1);
    assert_int_equal(ks_offsets_done(ot, &now[2]), -1);
    assert_int_equal(ks_offsets_done(ot, &now[0]), 3);
}

static void offsets_stale_ticket_after_forget_without_retrack(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t;

    ks_offsets_track(ot, "t", 0, 7, &t);
    ks_offsets_forget(ot, "t", 0);
    assert_int_equal(ks_offsets_done(ot, &t), -1);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 0);
}

static void offsets_forget_of_unknown_partition_is_harmless(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t;

    ks_offsets_forget(ot, "never-seen", 9);
    ks_offsets_track(ot, "t", 0, 0, &t);
    ks_offsets_forget(ot, "t", 1);
    assert_int_equal(ks_offsets_done(ot, &t), 1);
}

static void offsets_redelivery_restarts_the_window(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket old[6], now[3];

    track_range(ot, "t", 0, 0, 6, old);
    assert_int_equal(ks_offsets_done(ot, &old[0]), 1);
    assert_int_equal(ks_offsets_done(ot, &old[1]), 2);
    /* A seek back to the committed position redelivers 2.. */
    track_range(ot, "t", 0, 2, 3, now);
    assert_int_not_equal(now[0].generation, old[2].generation);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 3);
    /* ...and the first deliveries of 2..5 no longer count. */
    for (size_t i = 2; i < 6; i++) {
        assert_int_equal(ks_offsets_done(ot, &old[i]), -1);
    }
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 3);
    assert_int_equal(ks_offsets_done(ot, &now[1]), -1);
    assert_int_equal(ks_offsets_done(ot, &now[0]), 4);
    assert_int_equal(ks_offsets_done(ot, &now[2]), 5);
}

static void offsets_redelivery_of_the_last_offset_restarts_too(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket first, again;

    /* "Not above the last tracked one" includes equal. */
    ks_offsets_track(ot, "t", 0, 5, &first);
    ks_offsets_track(ot, "t", 0, 5, &again);
    assert_int_not_equal(first.generation, again.generation);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 1);
    assert_int_equal(ks_offsets_done(ot, &first), -1);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 1);
    assert_int_equal(ks_offsets_done(ot, &again), 6);
}

static void offsets_redelivery_into_an_empty_window_is_a_new_generation(
    void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket first, again;

    ks_offsets_track(ot, "t", 0, 0, &first);
    assert_int_equal(ks_offsets_done(ot, &first), 1);
    /* Everything finished, then offset 0 comes again after a seek. */
    ks_offsets_track(ot, "t", 0, 0, &again);
    assert_int_not_equal(first.generation, again.generation);
    assert_int_equal(ks_offsets_done(ot, &first), -1);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 1);
    assert_int_equal(ks_offsets_done(ot, &again), 1);
}

static void offsets_partitions_and_topics_are_independent(void **state)
{
    static const char *const topics[] = {"kascade.tasks", "kascade.results",
                                         "kascade.escalations"};
    enum {
        N_PART = 12,
        N_OFF = 4
    };
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t[N_OF(topics)][N_PART][N_OFF];

    /* Interleaved like a consumer's poll loop; each partition starts at
     * its own base offset. */
    for (size_t k = 0; k < N_OFF; k++) {
        for (size_t i = 0; i < N_OF(topics); i++) {
            for (int32_t p = 0; p < N_PART; p++) {
                int64_t base = 1000 * (int64_t)i + 100 * p;

                ks_offsets_track(ot, topics[i], p, base + (int64_t)k,
                                 &t[i][p][k]);
            }
        }
    }
    /* Finish offset 0 only in even partitions of the first topic, and
     * 1..3 everywhere. */
    for (size_t i = 0; i < N_OF(topics); i++) {
        for (int32_t p = 0; p < N_PART; p++) {
            for (size_t k = 1; k < N_OFF; k++) {
                assert_int_equal(ks_offsets_done(ot, &t[i][p][k]), -1);
            }
        }
    }
    for (int32_t p = 0; p < N_PART; p += 2) {
        assert_int_equal(ks_offsets_done(ot, &t[0][p][0]), 100 * p + N_OFF);
    }
    for (size_t i = 0; i < N_OF(topics); i++) {
        for (int32_t p = 0; p < N_PART; p++) {
            size_t want = (i == 0 && p % 2 == 0) ? 0 : N_OFF;

            assert_int_equal(ks_offsets_pending(ot, topics[i], p), want);
        }
    }
    /* Forgetting one partition leaves its neighbours alone. */
    ks_offsets_forget(ot, topics[1], 5);
    assert_int_equal(ks_offsets_pending(ot, topics[1], 5), 0);
    assert_int_equal(ks_offsets_pending(ot, topics[1], 4), N_OFF);
    assert_int_equal(ks_offsets_pending(ot, topics[2], 5), N_OFF);
    assert_int_equal(ks_offsets_done(ot, &t[1][5][0]), -1);
    assert_int_equal(ks_offsets_done(ot, &t[2][5][0]), 2000 + 500 + N_OFF);
}

static void offsets_same_partition_number_in_two_topics_is_two_windows(
    void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket a, b;

    ks_offsets_track(ot, "a", 0, 50, &a);
    ks_offsets_track(ot, "b", 0, 7, &b);
    /* 7 is below a's last offset: it must not restart a's window. */
    assert_int_equal(ks_offsets_pending(ot, "a", 0), 1);
    assert_int_equal(ks_offsets_done(ot, &a), 51);
    assert_int_equal(ks_offsets_done(ot, &b), 8);
}

static void offsets_ticket_topic_outlives_the_callers_string(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t;
    char topic[] = "kascade.tasks";

    ks_offsets_track(ot, topic, 0, 0, &t);
    topic[0] = 'X';
    assert_string_equal(t.topic, "kascade.tasks");
    assert_int_equal(ks_offsets_done(ot, &t), 1);
}

static void offsets_large_window_finished_in_reverse_commits_at_the_end(
    void **state)
{
    enum {
        N = 100000
    };
    const int64_t base = 5000000000LL; /* past 32 bits */
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket *t = calloc(N, sizeof(*t));

    assert_non_null(t);
    track_range(ot, "t", 0, base, N, t);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), N);
    for (size_t i = N - 1; i > 0; i--) {
        if (ks_offsets_done(ot, &t[i]) != -1) {
            free(t);
            fail_msg("offset %zu advanced the position early", i);
        }
    }
    assert_int_equal(ks_offsets_pending(ot, "t", 0), N);
    assert_int_equal(ks_offsets_done(ot, &t[0]), base + N);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 0);
    free(t);
}

static void offsets_window_wraps_around_while_sliding(void **state)
{
    enum {
        SLIDE = 300,
        BURST = 500,
        LAG = 37
    };
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t[SLIDE + BURST];
    size_t lo = 0; /* lowest unfinished */

    /* Keep about LAG in flight: the ring's head goes round many times. */
    for (size_t i = 0; i < SLIDE; i++) {
        ks_offsets_track(ot, "t", 0, (int64_t)i, &t[i]);
        if (i + 1 >= lo + LAG + 2) {
            /* Finish a pair out of order: the newer one first. */
            assert_int_equal(ks_offsets_done(ot, &t[lo + 1]), -1);
            assert_int_equal(ks_offsets_done(ot, &t[lo]), (int64_t)lo + 2);
            lo += 2;
        }
    }
    assert_int_equal(ks_offsets_pending(ot, "t", 0), SLIDE - lo);
    /* A backlog forces the ring to grow while its head is not at 0. */
    for (size_t i = SLIDE; i < SLIDE + BURST; i++) {
        ks_offsets_track(ot, "t", 0, (int64_t)i, &t[i]);
    }
    assert_int_equal(ks_offsets_pending(ot, "t", 0), SLIDE + BURST - lo);
    for (size_t j = SLIDE + BURST - 1; j > lo; j--) {
        assert_int_equal(ks_offsets_done(ot, &t[j]), -1);
    }
    assert_int_equal(ks_offsets_done(ot, &t[lo]), SLIDE + BURST);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 0);
}

static void offsets_pending_counts_unfinished_and_out_of_order(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t[5];

    assert_int_equal(ks_offsets_pending(ot, "t", 0), 0);
    track_range(ot, "t", 0, 0, 5, t);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 5);
    /* Finished above a gap still counts: it is not behind the position. */
    ks_offsets_done(ot, &t[4]);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 5);
    ks_offsets_done(ot, &t[0]);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 4);
    ks_offsets_done(ot, &t[1]);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 3);
    assert_int_equal(ks_offsets_pending(ot, "t", 1), 0);
    assert_int_equal(ks_offsets_pending(ot, "other", 0), 0);
}

static void offsets_done_with_unknown_partition_returns_minus_one(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t;
    struct ks_offset_ticket bogus = {"t", 1, 0, 1};

    ks_offsets_track(ot, "t", 0, 0, &t);
    assert_int_equal(ks_offsets_done(ot, &bogus), -1);
    assert_int_equal(ks_offsets_pending(ot, "t", 0), 1);
}

/* limits.max_open_offsets: one unfinished offset (a stuck produce) with
 * everything after it finished fills the window; the consumer must see it
 * full at the bound, not before, and free again once the head finishes. */
static void offsets_window_is_full_at_its_bound_behind_a_stuck_offset(
    void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t[8];

    ks_offsets_set_max(ot, 8);
    track_range(ot, "t", 0, 0, 7, t);
    for (size_t i = 1; i < 7; i++) {
        assert_int_equal(ks_offsets_done(ot, &t[i]), -1);
    }
    assert_false(ks_offsets_full(ot, "t", 0));
    ks_offsets_track(ot, "t", 0, 7, &t[7]);
    assert_int_equal(ks_offsets_done(ot, &t[7]), -1);
    assert_true(ks_offsets_full(ot, "t", 0));
    assert_false(ks_offsets_full(ot, "t", 1)); /* per partition */
    assert_false(ks_offsets_full(ot, "u", 0));
    assert_int_equal(ks_offsets_done(ot, &t[0]), 8);
    assert_false(ks_offsets_full(ot, "t", 0));
}

static void offsets_window_counts_running_offsets_too(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t[4];

    ks_offsets_set_max(ot, 4);
    track_range(ot, "t", 0, 100, 4, t);
    assert_true(ks_offsets_full(ot, "t", 0));
    assert_int_equal(ks_offsets_done(ot, &t[0]), 101);
    assert_false(ks_offsets_full(ot, "t", 0));
}

static void offsets_forget_empties_a_full_window(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t[3];

    ks_offsets_set_max(ot, 3);
    track_range(ot, "t", 2, 0, 3, t);
    assert_true(ks_offsets_full(ot, "t", 2));
    ks_offsets_forget(ot, "t", 2);
    assert_false(ks_offsets_full(ot, "t", 2));
}

static void offsets_without_a_bound_is_never_full(void **state)
{
    struct ks_offsets *ot = *state;
    struct ks_offset_ticket t[200];

    track_range(ot, "t", 0, 0, 200, t);
    assert_false(ks_offsets_full(ot, "t", 0));
    ks_offsets_set_max(ot, 0);
    assert_false(ks_offsets_full(ot, "t", 0));
}

static void offsets_destroy_accepts_null(void **state)
{
    (void)state;
    ks_offsets_destroy(NULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(offsets_ticket_describes_the_tracked_message),
        T(offsets_in_order_completion_advances_each_time),
        T(offsets_position_waits_for_the_lowest_unfinished),
        T(offsets_finishing_twice_does_not_move_the_position),
        T(offsets_non_contiguous_offsets_commit_after_the_last_seen),
        T(offsets_non_contiguous_hole_is_not_a_gap),
        T(offsets_ticket_from_before_forget_is_stale),
        T(offsets_stale_ticket_after_forget_without_retrack),
        T(offsets_forget_of_unknown_partition_is_harmless),
        T(offsets_redelivery_restarts_the_window),
        T(offsets_redelivery_of_the_last_offset_restarts_too),
        T(offsets_redelivery_into_an_empty_window_is_a_new_generation),
        T(offsets_partitions_and_topics_are_independent),
        T(offsets_same_partition_number_in_two_topics_is_two_windows),
        T(offsets_ticket_topic_outlives_the_callers_string),
        T(offsets_large_window_finished_in_reverse_commits_at_the_end),
        T(offsets_window_wraps_around_while_sliding),
        T(offsets_pending_counts_unfinished_and_out_of_order),
        T(offsets_done_with_unknown_partition_returns_minus_one),
        T(offsets_window_is_full_at_its_bound_behind_a_stuck_offset),
        T(offsets_window_counts_running_offsets_too),
        T(offsets_forget_empties_a_full_window),
        T(offsets_without_a_bound_is_never_full),
        cmocka_unit_test(offsets_destroy_accepts_null),
    };

    return cmocka_run_group_tests_name("offsets", tests, NULL, NULL);
}
