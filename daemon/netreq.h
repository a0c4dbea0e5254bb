/* netreq.h — the daemon's requests to the network (SMTP, HTTPS), each carried out by a fresh ipcased-send. */
#ifndef IPCASED_NETREQ_H
#define IPCASED_NETREQ_H

#include <stddef.h>

#include "frame.h"
#include "util.h"

/*
 * Starts ipcased-send, gives it the request frame (type, req), and waits
 * for its answer of type want, for at most timeout_sec plus a margin.  The
 * wait gives up at once when SIGTERM or SIGINT is pending (the daemon is
 * stopping; the request is retried after the restart).  Returns 0 with
 * *fields malloc'd (free it) and r over them, or -1 with the reason in err:
 * the helper could not start, died, took too long, or the daemon stops.
 */
int	netreq_call(enum frame_type type, const struct buf *req, enum frame_type want,
	    long timeout_sec, char **fields, struct reader *r, char *err, size_t errlen);

#endif
