/*
 * txn.h - router.transactions: the producer's transaction calls, their
 * Kafka settings, and the rewind of the input after an abort. router.c
 * owns the batch's transaction and says when to begin, commit or
 * rewind; the delivery reports (produce.h) fill its offsets and mark it
 * failed. Router thread only.
 */
#ifndef KASCADE_ROUTER_TXN_H
#define KASCADE_ROUTER_TXN_H

#include <stdbool.h>

#include <librdkafka/rdkafka.h>

#include "base/err.h"
#include "config/config.h"

struct router;

/* Logs e (when set) as the failure of what and destroys it (takes
 * ownership); a fatal error also requests a stop. Returns true when
 * there was an error. */
bool router_txn_error(const char *what, rd_kafka_error_t *e);

/* Begins the batch's transaction unless one is open (no-op when
 * transactions are off). */
void router_txn_begin(struct router *rt);

/* Ends the open transaction: waits for its records, adds the positions
 * they complete, commits. Returns KS_OK (committed, or none open),
 * KS_ERR_RETRY when it was aborted (the caller calls router_txn_rewind), or
 * KS_ERR_FATAL when it failed with a stop requested. */
enum ks_err router_txn_commit(struct router *rt);

/* Seeks every assigned partition back to its committed offset and
 * forgets what was consumed after it. */
void router_txn_rewind(struct router *rt);

/* Adds transactional.id and enable.auto.commit=false to cfg's Kafka
 * settings (the user's own settings win). */
void router_txn_settings(struct ks_config *cfg);

#endif
