/*
 * fuzz_escalation.c - the Escalation decoder (ks_escalation_decode), JSON or
 * protobuf by the first byte as the daemons pick it; what it accepts must
 * encode and decode again.
 */
#include "fuzz.h"

#include "base/banned.h"

FUZZ_CODEC_TARGET(escalation, fuzz_detect(data, size))
