/*
 * reader.h - reading topics from the CLI without joining a consumer group's
 * rebalances: every partition is assigned explicitly, and "the end" is the
 * high watermark taken when reading starts. Single-threaded.
 * Ownership: cli_reader_new returns a reader the caller owns
 * (cli_reader_destroy); each message from cli_reader_next is the caller's
 * to destroy (rd_kafka_message_destroy) before the reader is destroyed.
 */
#ifndef KASCADE_CLI_READER_H
#define KASCADE_CLI_READER_H

#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"

struct cli_reader;

/* Assigns every partition of the n topics at start (RD_KAFKA_OFFSET_
 * BEGINNING, _END or _STORED for group's committed offsets; group may be
 * NULL otherwise). Returns a new reader the caller owns, or NULL with a
 * message on stderr. */
struct cli_reader *cli_reader_new(const struct ks_config *cfg,
                                  const char *const *topics,
                                  int n,
                                  int64_t start,
                                  const char *group);

/* Returns the next message (caller destroys it) or NULL after timeout_ms. */
rd_kafka_message_t *cli_reader_next(struct cli_reader *rd, int timeout_ms);

/* True when every partition has been read up to the high watermark taken
 * at cli_reader_new(). Call after handling each message. */
bool cli_reader_at_end(struct cli_reader *rd);

/* Commits rkm's offset + 1 synchronously (for groups). Returns 0 or -1. */
int cli_reader_commit(struct cli_reader *rd, const rd_kafka_message_t *rkm);

/* Accepts NULL. */
void cli_reader_destroy(struct cli_reader *rd);

#endif
