/*
 * fanout.c - a job's turn of model calls, in flight together (fanout.h).
 *
 * Money: the turn has one reservation, the worst case of all its calls
 * (spend.c); each call that ends adds what it owes, by the same rule as a
 * lone call (spend_call_charge: its usage, 0 when nothing was sent or the
 * provider answered with an error, else its own worst case), and the sum
 * is settled once when the last ends. A call that fails after others
 * succeeded leaves their charge in the sum: they were paid for. A turn
 * cancelled mid-way (the job abandoned) owes its ended calls' charge plus
 * the worst case of each call still in flight.
 *
 * Counting: w->n_calls counts calls, so a turn of k calls takes k of the
 * tier's max_inflight slots (agree_plan asks for no more than are free).
 */
#include "fanout.h"

#include <string.h>

#include "base/log.h"

#include "base/banned.h"

/* Frees the turn's calls [0, made) after a failed preparation. */
static void drop_made(struct job *job, unsigned made)
{
    for (unsigned i = 0; i < made; i++) {
        ks_model_call_destroy(job->fan.calls[i]);
        job->fan.calls[i] = NULL;
    }
}

bool fanout_start(struct worker *w,
                  struct job *job,
                  char *errstr,
                  size_t errstr_size)
{
    const struct ks_provider_cfg *prov = &w->tier->providers[job->provider];
    struct ks_task task = *job->task; /* borrows; system prompt swapped */
    struct fanout *fan = &job->fan;
    unsigned n = fan->n_calls ? fan->n_calls : 1;
    unsigned each = fan->n_ask / n ? fan->n_ask / n : 1;

    task.instructions = job->system;
    for (unsigned i = 0; i < n; i++) {
        fan->calls[i] = ks_model_call_new(
            prov, &task, NULL,
            (uint32_t)ks_price_max_output(w->tier, job->task), each,
            w->cfg->limits.max_text_bytes * 2, job, errstr, errstr_size);
        if (!fan->calls[i]) {
            drop_made(job, i);
            return false;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        curl_multi_add_handle(w->multi, ks_model_call_easy(fan->calls[i]));
    }
    fan->n_fly = n;
    fan->charge = 0;
    w->n_calls += n;
    return true;
}

/* Takes call out of the turn's set and out of w->multi. */
static void leave(struct worker *w, struct job *job, struct ks_model_call *call)
{
    for (unsigned i = 0; i < FANOUT_MAX; i++) {
        if (job->fan.calls[i] == call) {
            job->fan.calls[i] = NULL;
            curl_multi_remove_handle(w->multi, ks_model_call_easy(call));
            job->fan.n_fly--;
            w->n_calls--;
            return;
        }
    }
    ks_log_error("worker", "%s: a call ended that its job does not hold",
                 job->task->id);
}

bool fanout_end(struct worker *w,
                struct job *job,
                struct ks_model_call *call,
                const struct ks_model_reply *reply,
                int64_t charge)
{
    leave(w, job, call);
    job->fan.charge += charge;
    if (reply->err == KS_OK || job->fan.failed) {
        return false;
    }
    job->fan.failed = call;
    job->fan.fail_reply = *reply;
    return true;
}

int64_t fanout_take_charge(struct job *job)
{
    int64_t charge = job->fan.charge;

    job->fan.charge = 0;
    return charge;
}

struct ks_model_call *fanout_take_failure(struct job *job,
                                          struct ks_model_reply *reply)
{
    struct ks_model_call *call = job->fan.failed;

    if (call) {
        *reply = job->fan.fail_reply;
    }
    job->fan.failed = NULL;
    memset(&job->fan.fail_reply, 0, sizeof(job->fan.fail_reply));
    return call;
}

int64_t fanout_cancel(struct worker *w, struct job *job, int64_t worst_each)
{
    int64_t owed = fanout_take_charge(job);
    struct ks_model_reply unused;

    for (unsigned i = 0; i < FANOUT_MAX; i++) {
        struct ks_model_call *call = job->fan.calls[i];

        if (call) {
            leave(w, job, call);
            ks_model_call_destroy(call);
            owed += worst_each;
        }
    }
    ks_model_call_destroy(fanout_take_failure(job, &unused));
    return owed;
}
