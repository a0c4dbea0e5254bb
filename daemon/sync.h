/* sync.h — the parent's side of every account: drives its fetcher through the folders, one transaction per batch, IDLE, back-off. */
#ifndef IPCASED_SYNC_H
#define IPCASED_SYNC_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "rules.h"
#include "store.h"

struct sync;

/*
 * Accounts of conf, none started yet.  once: each account syncs every folder
 * a single time (retrying a failed connection a few times), then stops.
 * conf, rules and store are borrowed and must outlive the sync.
 */
struct sync	*sync_new(const struct conf *, const struct rules *, struct store *, bool once);
/* Asks every fetcher to quit, waits briefly, kills the rest; frees.  NULL is a no-op. */
void		 sync_free(struct sync *);

/*
 * Starts or restarts fetchers whose back-off has passed, hands out work and
 * kills hung ones.  Returns the milliseconds until it next needs to run
 * (-1: no timer).
 */
int		 sync_step(struct sync *, int64_t now_ms);

/* The fetchers' sockets for poll(); returns how many were written (at most max). */
int		 sync_pollfds(struct sync *, struct pollfd *, int max);
/* Handles the readable sockets among pfd (those from sync_pollfds). */
void		 sync_handle(struct sync *, const struct pollfd *, int n);

/* --once: every account has finished its pass or given up. */
bool		 sync_finished(const struct sync *);
/* Accounts that gave up (--once) or are failing now. */
int		 sync_failed(const struct sync *);
/*
 * An account holds the store's write transaction (a batch in flight): nobody
 * else may begin one (the schedule waits) until it commits or rolls back.
 */
bool		 sync_busy(const struct sync *);
/* True once since the last call when a batch committed something to the store. */
bool		 sync_take_changes(struct sync *);
/* Wakes fetchers waiting in IDLE so they sync now (SIGUSR2 / tests). */
void		 sync_wake(struct sync *);

/* One line per account for logs and STATUS=: "shop: idle, 1234 messages, last sync 14:02:11". */
void		 sync_status(const struct sync *, char *buf, size_t len);
void		 sync_log_status(const struct sync *);

#endif
