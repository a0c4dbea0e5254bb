/*
 * netreq.c — the daemon's network requests, carried out by ipcased-send.
 * A token renewal is one request in a process of its own; the reminders a
 * round sends (a few an hour, or hundreds after the first scan of an old
 * mailbox) share one process and one SMTP connection.  Either way no
 * connection, library state or secret stays behind in the daemon, which
 * maps no TLS library at all.
 */
#include "netreq.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "spawn.h"

#define NETREQ_MARGIN_MS	15000	/* beyond the transfer's own timeout: start-up, TLS, QUIT */
#define NETREQ_TICK_MS		100	/* how often a wait looks for a pending stop */
#define NETREQ_EXIT_WAIT_MS	2000

static bool
stop_pending(void)
{
	sigset_t	pending;

	if (sigpending(&pending) == -1)
		return false;
	return sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1;
}

/* Closes the helper's socket and reaps it, killed when it is not gone within wait_ms (0: now). */
static void
netreq_stop(struct netreq *nr, int wait_ms)
{
	if (nr->pid == -1)
		return;
	close(nr->fd);
	helper_reap(nr->pid, wait_ms);
	nr->pid = -1;
	nr->fd = -1;
}

int
netreq_ask(struct netreq *nr, enum frame_type type, const struct buf *req,
    enum frame_type want, long timeout_sec, char **fields, struct reader *r,
    char *err, size_t errlen)
{
	struct pollfd	 pfd;
	enum frame_type	 got;
	int64_t		 deadline;
	int		 n;

	*fields = NULL;
	if (netreq_start(nr) == -1) {
		snprintf(err, errlen, "cannot start ipcased-send");
		return -1;
	}
	if (frame_send(nr->fd, type, req) == -1) {
		snprintf(err, errlen, "ipcased-send did not take the request");
		goto fail;
	}
	deadline = now_mono_ms() + timeout_sec * 1000 + NETREQ_MARGIN_MS;
	pfd.fd = nr->fd;
	pfd.events = POLLIN;
	for (;;) {
		if (stop_pending()) {
			snprintf(err, errlen, "given up: the daemon is stopping");
			goto fail;
		}
		if (now_mono_ms() >= deadline) {
			snprintf(err, errlen, "ipcased-send did not answer in %ld s",
			    timeout_sec + NETREQ_MARGIN_MS / 1000);
			goto fail;
		}
		if ((n = poll(&pfd, 1, NETREQ_TICK_MS)) == -1 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			goto fail;
		}
		if (n > 0)
			break;
	}
	if (frame_recv(nr->fd, &got, fields, r) == -1 || got != want) {
		free(*fields);
		*fields = NULL;
		snprintf(err, errlen, "ipcased-send ended without an answer");
		goto fail;
	}
	return 0;
fail:
	netreq_stop(nr, 0);
	return -1;
}

int
netreq_start(struct netreq *nr)
{
	if (nr->pid == -1 && (nr->pid = helper_spawn("ipcased-send", "sender", &nr->fd)) == -1)
		return -1;
	return 0;
}

void
netreq_end(struct netreq *nr)
{
	/* It exits on its own once the socket closes; one that does not is killed. */
	netreq_stop(nr, NETREQ_EXIT_WAIT_MS);
}

int
netreq_call(enum frame_type type, const struct buf *req, enum frame_type want,
    long timeout_sec, char **fields, struct reader *r, char *err, size_t errlen)
{
	struct netreq	nr = NETREQ_INIT;
	int		ret;

	ret = netreq_ask(&nr, type, req, want, timeout_sec, fields, r, err, errlen);
	netreq_end(&nr);
	return ret;
}
