/*
 * reason.c - the closed set of Escalation reasons: what the worker's
 * finish.c and llm/answer.c can write, and so all the router's
 * escalation metric may be labelled with.
 */
#include "wire/reason.h"

#include <string.h>

#include "base/banned.h"

const char *const ks_escalation_reasons[KS_ESCALATION_REASONS] = {
    "low_confidence", "escalate_flag", "schema", "not_json",
    "provider_failure"};

bool ks_escalation_reason_known(const char *reason)
{
    for (size_t i = 0; reason && i < KS_ESCALATION_REASONS; i++) {
        if (strcmp(reason, ks_escalation_reasons[i]) == 0) {
            return true;
        }
    }
    return false;
}
