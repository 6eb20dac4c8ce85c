/*
 * digest.h - the digest of a task's content (docs/design.md section 7): the
 * SHA-256 of a canonical form of the fields that affect the answer (type,
 * tenant, input, messages, instructions, output_schema, hints), not of id,
 * reply_to or metadata. Built from the decoded struct, so the JSON and the
 * protobuf encoding of one task have one digest. A done record stores it,
 * so an id reused for a different task is told apart from a redelivery.
 * Ownership: nothing is allocated for the caller. Thread-safe.
 */
#ifndef KASCADE_COMMON_WIRE_DIGEST_H
#define KASCADE_COMMON_WIRE_DIGEST_H

#include "base/err.h"
#include "wire/codec.h"

/* 64 lower-case hex digits and a NUL. */
#define KS_TASK_DIGEST_SIZE 65

/* Writes the digest of task into hex (NUL-ended). Returns KS_OK, or
 * KS_ERR_NOMEM when libcrypto could not set up the hash (hex is "" then). */
enum ks_err ks_task_digest(const struct ks_task *task,
                           char hex[KS_TASK_DIGEST_SIZE]);

#endif
