/*
 * fuzz_result.c - the Result decoder (ks_result_decode), JSON or protobuf by
 * the first byte as the daemons pick it; what it accepts must encode and decode
 * again.
 */
#include "fuzz.h"

#include "base/banned.h"

FUZZ_CODEC_TARGET(result, fuzz_detect(data, size))
