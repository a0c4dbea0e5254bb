/* loop.h — the one place that waits: poll() on the fetchers' sockets and a signalfd, with a timeout. */
#ifndef IPCASED_LOOP_H
#define IPCASED_LOOP_H

#include <poll.h>

#define LOOP_SIG_TERM	0x01	/* SIGTERM or SIGINT: stop */
#define LOOP_SIG_HUP	0x02	/* reload the configuration */
#define LOOP_SIG_USR1	0x04	/* log the state of each account */
#define LOOP_SIG_USR2	0x08	/* sync now (wake IDLE) */

struct loop;

/* Blocks the signals above (so no handler runs at an awkward moment) and opens a signalfd.  NULL on failure (logged). */
struct loop	*loop_new(void);
void		 loop_free(struct loop *);	/* restores the signal mask; NULL is a no-op */

/*
 * Waits until one of fds is ready, a signal arrives or timeout_ms passes
 * (-1: no timeout).  *signals gets the LOOP_SIG_* that arrived.  Returns
 * the number of ready fds, 0 on timeout or signal only, -1 on error.
 */
int		 loop_wait(struct loop *, struct pollfd *fds, int nfds, int timeout_ms,
		    unsigned *signals);

#endif
