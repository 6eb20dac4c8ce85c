/*
 * test_fanout.c - a job's turn of calls without Kafka, Redis or a
 * provider: its shape (workers/agree.c agree_plan, agree_calls,
 * agree_ask, agree_extra_output), the answers it keeps (agree_more,
 * agree_wanting) and the calls themselves (workers/fanout.c): how many are
 * in flight, what the ended ones owe, the failure kept for the reply, and
 * what a cancelled turn owes. The calls are prepared on a real curl multi
 * and never performed. The tier is mid of deploy/examples/kascade.json
 * with samples 3 (the binary runs from the repository root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "../../workers/agree.h"
#include "../../workers/fanout.h"
#include "base/util.h"
#include "config/config.h"
#include "config/pricing.h"

#include "base/banned.h"

struct fixture {
    struct ks_config *cfg;
    struct worker w;
    struct ks_task task;
    struct job job;
};

/* A worker of tier mid taking samples k, its first provider with or
 * without supports_n, and one job of it with no answer yet. */
static struct fixture *fixture_new(int k, bool supports_n)
{
    struct fixture *f = ks_xcalloc(1, sizeof(*f));
    char samples[64], n[64], err[512] = "";
    const char *over[] = {samples, n};

    snprintf(samples, sizeof(samples), "tiers.mid.samples=%d", k);
    snprintf(n, sizeof(n), "tiers.mid.providers.0.supports_n=%s",
             supports_n ? "true" : "false");
    f->cfg = ks_config_load("deploy/examples/kascade.json", over, 2, err,
                            sizeof(err));
    if (!f->cfg) {
        print_error("config: %s\n", err);
    }
    assert_non_null(f->cfg);
    f->w.cfg = f->cfg;
    f->w.tier = &f->cfg->tiers[ks_config_tier_index(f->cfg, "mid")];
    f->w.multi = curl_multi_init();
    assert_non_null(f->w.multi);
    f->task.id = "t-1";
    f->task.type = "answer";
    f->task.input = "What is 2 + 2?";
    f->task.hints.max_output_tokens = 100;
    f->job.w = &f->w;
    f->job.task = &f->task;
    f->job.system = "Answer.";
    return f;
}

static void fixture_free(struct fixture *f)
{
    fanout_cancel(&f->w, &f->job, 0);
    agree_free(&f->job);
    curl_multi_cleanup(f->w.multi);
    ks_config_destroy(f->cfg);
    free(f);
}

/* The job's next turn planned with slots free, kept in job->fan as the
 * job module keeps it. */
static void plan(struct fixture *f, size_t slots)
{
    agree_plan(&f->w, &f->job, slots, &f->job.fan.n_calls, &f->job.fan.n_ask);
}

/* A successful reply with content (and more choices). */
static struct ks_model_reply reply_of(char *content, char **more, size_t n)
{
    struct ks_model_reply r = {0};

    r.err = KS_OK;
    r.http_status = 200;
    r.content = content;
    r.input_tokens = 10;
    r.output_tokens = 5;
    r.more = more;
    r.n_more = n;
    return r;
}

static void one_sample_is_one_call_for_one_answer(void **state)
{
    struct fixture *f = fixture_new(1, false);

    (void)state;
    plan(f, 8);
    assert_int_equal(f->job.fan.n_calls, 1);
    assert_int_equal(f->job.fan.n_ask, 1);
    assert_int_equal(agree_extra_output(&f->w, &f->job), 0);
    assert_false(agree_wanting(&f->w, &f->job));
    fixture_free(f);
}

/* supports_n: one call asks for every answer missing; its reservation
 * counts the other answers' output. */
static void supports_n_asks_for_every_missing_answer_in_one_call(void **state)
{
    struct fixture *f = fixture_new(3, true);
    char a[] = "4", b[] = "4";
    struct ks_model_reply r = reply_of(a, NULL, 0);

    (void)state;
    assert_int_equal(agree_calls(&f->w, &f->job), 1);
    assert_int_equal(agree_ask(&f->w, &f->job), 3);
    assert_int_equal(agree_extra_output(&f->w, &f->job),
                     2 * ks_price_max_output(f->w.tier, &f->task));
    plan(f, 1);
    assert_int_equal(f->job.fan.n_calls, 1);
    assert_int_equal(f->job.fan.n_ask, 3);
    /* the provider sent one answer of three: the next turn asks for two */
    agree_more(&f->w, &f->job, &r);
    assert_true(agree_wanting(&f->w, &f->job));
    plan(f, 8);
    assert_int_equal(f->job.fan.n_calls, 1);
    assert_int_equal(f->job.fan.n_ask, 2);
    r = reply_of(b, NULL, 0);
    agree_more(&f->w, &f->job, &r);
    agree_more(&f->w, &f->job, &r);
    assert_false(agree_wanting(&f->w, &f->job));
    fixture_free(f);
}

/* Without supports_n: one call a missing answer, as many as the free
 * slots take, at least one. */
static void without_n_one_call_per_answer_within_the_free_slots(void **state)
{
    struct fixture *f = fixture_new(3, false);
    char a[] = "4";
    struct ks_model_reply r = reply_of(a, NULL, 0);

    (void)state;
    assert_int_equal(agree_calls(&f->w, &f->job), 3);
    assert_int_equal(agree_ask(&f->w, &f->job), 3);
    assert_int_equal(agree_extra_output(&f->w, &f->job), 0);
    plan(f, 8);
    assert_int_equal(f->job.fan.n_calls, 3);
    assert_int_equal(f->job.fan.n_ask, 3);
    plan(f, 2);
    assert_int_equal(f->job.fan.n_calls, 2);
    assert_int_equal(f->job.fan.n_ask, 2);
    plan(f, 0);
    assert_int_equal(f->job.fan.n_calls, 1);
    /* the planned shape is what reservations count */
    assert_int_equal(agree_calls(&f->w, &f->job), 1);
    agree_more(&f->w, &f->job, &r);
    agree_more(&f->w, &f->job, &r);
    plan(f, 8);
    assert_int_equal(f->job.fan.n_calls, 1);
    assert_int_equal(f->job.fan.n_ask, 1);
    fixture_free(f);
}

/* A reply's other choices count as samples, never more than k; the
 * majority answer is the output, its share the confidence, and the usage
 * is the replies' sum. */
static void more_choices_are_samples_up_to_k(void **state)
{
    struct fixture *f = fixture_new(3, true);
    char a[] = "It is 5.", b[] = "It is 4.", c[] = "It is 4.", d[] = "6";
    char *more[] = {b, c, d};
    struct ks_model_reply r = reply_of(a, more, 3);
    struct ks_answer ans;
    int64_t in = 0, out = 0;

    (void)state;
    agree_more(&f->w, &f->job, &r);
    assert_false(agree_wanting(&f->w, &f->job));
    assert_true(agree_judge(&f->w, &f->job, &r, &ans, &in, &out));
    assert_string_equal(ans.output, "It is 4.");
    /* three samples (the fourth choice is dropped): 2 of 3 agree */
    assert_true(ans.confidence > 0.66 && ans.confidence < 0.67);
    assert_string_equal(ans.source, "agreement");
    assert_int_equal(in, 10);
    assert_int_equal(out, 5);
    ks_answer_fini(&ans);
    fixture_free(f);
}

/* A turn of three calls in flight: each ended call leaves the multi and
 * adds what it owes; the first failure is kept for the reply. */
static void turn_counts_calls_and_sums_what_they_owe(void **state)
{
    struct fixture *f = fixture_new(3, false);
    struct ks_model_call *c0, *c1, *c2, *kept;
    struct ks_model_reply ok = reply_of(NULL, NULL, 0), bad = {0}, got;
    char err[256] = "";

    (void)state;
    plan(f, 8);
    assert_true(fanout_start(&f->w, &f->job, err, sizeof(err)));
    assert_int_equal(f->job.fan.n_fly, 3);
    assert_int_equal(f->w.n_calls, 3);
    c0 = f->job.fan.calls[0];
    c1 = f->job.fan.calls[1];
    c2 = f->job.fan.calls[2];
    assert_non_null(c2);

    assert_false(fanout_end(&f->w, &f->job, c0, &ok, 70));
    ks_model_call_destroy(c0);
    bad.err = KS_ERR_UPSTREAM;
    bad.http_status = 500;
    assert_true(fanout_end(&f->w, &f->job, c1, &bad, 0)); /* kept */
    bad.http_status = 503;
    assert_false(fanout_end(&f->w, &f->job, c2, &bad, 30)); /* not kept */
    ks_model_call_destroy(c2);
    assert_int_equal(f->job.fan.n_fly, 0);
    assert_int_equal(f->w.n_calls, 0);

    assert_int_equal(fanout_take_charge(&f->job), 100);
    assert_int_equal(fanout_take_charge(&f->job), 0);
    kept = fanout_take_failure(&f->job, &got);
    assert_ptr_equal(kept, c1);
    assert_int_equal(got.http_status, 500);
    ks_model_call_destroy(kept);
    assert_null(fanout_take_failure(&f->job, &got));
    fixture_free(f);
}

/* A turn cancelled with calls in flight owes the ended calls' charge and
 * the worst case of each call still out, and holds nothing after. */
static void cancelled_turn_owes_worst_case_of_each_call_in_flight(void **state)
{
    struct fixture *f = fixture_new(3, false);
    struct ks_model_reply ok = reply_of(NULL, NULL, 0);
    struct ks_model_call *c0;
    char err[256] = "";

    (void)state;
    plan(f, 8);
    assert_true(fanout_start(&f->w, &f->job, err, sizeof(err)));
    c0 = f->job.fan.calls[0];
    assert_false(fanout_end(&f->w, &f->job, c0, &ok, 7));
    ks_model_call_destroy(c0);
    assert_int_equal(fanout_cancel(&f->w, &f->job, 1000), 7 + 2 * 1000);
    assert_int_equal(f->job.fan.n_fly, 0);
    assert_int_equal(f->w.n_calls, 0);
    for (unsigned i = 0; i < FANOUT_MAX; i++) {
        assert_null(f->job.fan.calls[i]);
    }
    assert_int_equal(fanout_cancel(&f->w, &f->job, 1000), 0);
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_sample_is_one_call_for_one_answer),
        cmocka_unit_test(supports_n_asks_for_every_missing_answer_in_one_call),
        cmocka_unit_test(without_n_one_call_per_answer_within_the_free_slots),
        cmocka_unit_test(more_choices_are_samples_up_to_k),
        cmocka_unit_test(turn_counts_calls_and_sums_what_they_owe),
        cmocka_unit_test(cancelled_turn_owes_worst_case_of_each_call_in_flight),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests_name("fanout", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
