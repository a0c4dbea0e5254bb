/* netreq.h — the daemon's requests to the network (SMTP, HTTPS), carried out by ipcased-send. */
#ifndef IPCASED_NETREQ_H
#define IPCASED_NETREQ_H

#include <stddef.h>
#include <sys/types.h>

#include "frame.h"
#include "util.h"

/*
 * One ipcased-send that takes several requests in turn: the reminders of
 * one round go through one process and, for SMTP, one connection.
 * NETREQ_INIT, then netreq_ask() as often as needed, then netreq_end().
 */
struct netreq {
	pid_t	pid;		/* -1: none running; the next request starts one */
	int	fd;
};
#define NETREQ_INIT	{ -1, -1 }

/*
 * Gives the helper (started now if none runs) the request frame (type,
 * req) and waits for its answer of type want, for at most timeout_sec plus
 * a margin.  The wait gives up at once when SIGTERM or SIGINT is pending
 * (the daemon is stopping; the request is retried after the restart).
 * Returns 0 with *fields malloc'd (free it) and r over them, or -1 with the
 * reason in err: the helper could not start, died, took too long, or the
 * daemon stops; the helper is then killed, and a later request starts a
 * fresh one.
 */
int	netreq_ask(struct netreq *, enum frame_type type, const struct buf *req,
	    enum frame_type want, long timeout_sec, char **fields, struct reader *r,
	    char *err, size_t errlen);
/*
 * Starts the helper now if none runs, ahead of the first netreq_ask(), so
 * that its start-up (linking curl and GnuTLS: about 15 ms) overlaps what the
 * caller does meanwhile.  Returns 0, or -1 when it cannot start (logged by
 * the spawn; netreq_ask() tries again and reports).
 */
int	netreq_start(struct netreq *);
/* Lets the helper finish (it quits when its socket closes) and reaps it. */
void	netreq_end(struct netreq *);

/* One request in a helper of its own: netreq_ask() between NETREQ_INIT and netreq_end(). */
int	netreq_call(enum frame_type type, const struct buf *req, enum frame_type want,
	    long timeout_sec, char **fields, struct reader *r, char *err, size_t errlen);

#endif
