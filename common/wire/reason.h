/*
 * reason.h - the closed set of reasons an Escalation can carry
 * (docs/design.md section 4). The worker writes only these; the router
 * labels its escalation metric with them, and counts any other value (a
 * forged Escalation's free text) as "other". Constant data, any thread.
 */
#ifndef KASCADE_COMMON_WIRE_REASON_H
#define KASCADE_COMMON_WIRE_REASON_H

#include <stdbool.h>

/* low_confidence, escalate_flag, schema, not_json, provider_failure */
#define KS_ESCALATION_REASONS 5
extern const char *const ks_escalation_reasons[KS_ESCALATION_REASONS];

/* True when reason is one of ks_escalation_reasons. */
bool ks_escalation_reason_known(const char *reason);

#endif
