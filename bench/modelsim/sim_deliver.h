/*
 * sim_deliver.h - the faults of a provider that read and processed a
 * request, billed it, and then failed to deliver the answer whole: the
 * answer late (timeout), cut mid-body (truncated), buried in a huge body
 * (huge), or the connection closed (reset) or reset with a TCP RST (rst).
 * Shared by the chat and Messages routes. Callable from any connection
 * thread, for its own connection.
 */
#ifndef KASCADE_MODELSIM_SIM_DELIVER_H
#define KASCADE_MODELSIM_SIM_DELIVER_H

#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "sim_chat.h"

/* Whether kind is one of the faults sim_deliver_fault handles. */
bool sim_deliver_handles(enum sim_kind kind);

/* Delivers out (the rendered answer; takes ownership) with the fault
 * kind, for a request that arrived at start_ms (monotonic). Sleeps in the
 * calling thread for a timeout. Counts nothing: the caller has counted
 * and billed the request. Returns MHD's verdict (MHD_NO drops the
 * connection). */
enum MHD_Result sim_deliver_fault(struct sim_chat *chat,
                                  struct MHD_Connection *conn,
                                  enum sim_kind kind,
                                  char *out,
                                  int64_t start_ms);

#endif
