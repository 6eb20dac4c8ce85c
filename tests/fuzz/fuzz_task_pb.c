/*
 * fuzz_task_pb.c - the protobuf Task decoder (ks_task_decode); what it accepts
 * must encode and decode again.
 */
#include "fuzz.h"

#include "base/banned.h"

FUZZ_CODEC_TARGET(task, KS_FORMAT_PROTOBUF)
