/*
 * reload.h - SIGHUP: the config read again and swapped in. Router thread
 * only, between poll batches.
 */
#ifndef KASCADE_ROUTER_RELOAD_H
#define KASCADE_ROUTER_RELOAD_H

struct router;

/* Loads the config again and swaps it in (rt then owns the new one; the
 * old one is freed); keeps the old one (logged, counted as an error)
 * when the new one or its score model fails. Call only between poll
 * batches: nothing may point into the old config. */
void router_reload(struct router *rt);

#endif
