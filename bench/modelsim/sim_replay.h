/*
 * sim_replay.h - recorded answers for the model simulator (--replay
 * FILE.csv --replay-model COLUMN): a CSV with a `prompt` column and one
 * column of response text per model (and optionally of its recorded
 * confidence), such as
 * bench/data/routellm-gsm8k/gsm8k_responses.csv. Loaded once at start;
 * read-only afterwards, so lookups are thread-safe.
 */
#ifndef KASCADE_MODELSIM_SIM_REPLAY_H
#define KASCADE_MODELSIM_SIM_REPLAY_H

#include <stddef.h>

/* The start of the fallback answer to a prompt the file lacks. */
#define SIM_REPLAY_MISS_PREFIX "[modelsim replay: no recorded answer] "

/* Caps on what a replay file may make us load. */
#define SIM_REPLAY_MAX_BYTES  (64 * 1024 * 1024)
#define SIM_REPLAY_MAX_FIELDS 256
#define SIM_REPLAY_MAX_ROWS   1000000

struct sim_replay;

/* Loads path and indexes the answers of one model by prompt. column names
 * the answers: the column `<column>_response` when there is one, else the
 * column `column` itself. Prompts are matched with leading and trailing
 * whitespace trimmed; of repeated prompts the first row wins. Returns the
 * table (caller owns, sim_replay_destroy()), or NULL with a reason in
 * errstr (unreadable file, over a cap, bad CSV, no such column). */
struct sim_replay *sim_replay_load(const char *path,
                                   const char *column,
                                   char *errstr,
                                   size_t errstr_size);

/* Returns the recorded answer to prompt (len bytes; trimmed before the
 * lookup), borrowed from the table, or NULL when there is none. */
const char *sim_replay_find(const struct sim_replay *rp,
                            const char *prompt,
                            size_t len);

/* The recorded confidence of prompt's answer, in [0,1]: the column
 * `<column>_confidence` when the file has one (an empty field: none).
 * Returns -1 when there is none. The simulator gives it to the answer's
 * token logprobs (each ln(c)), so a worker reads it as the logprob
 * confidence: bench/cascade.sh replays a verifier's score this way. */
double sim_replay_confidence(const struct sim_replay *rp,
                             const char *prompt,
                             size_t len);

/* Number of distinct prompts; the name of the answer column (borrowed). */
size_t sim_replay_size(const struct sim_replay *rp);
const char *sim_replay_column(const struct sim_replay *rp);

/* Accepts NULL. */
void sim_replay_destroy(struct sim_replay *rp);

#endif
