/*
 * netreq.c — one request, one ipcased-send process.  Reminders and token
 * renewals are rare (a few an hour), so a process per request costs
 * nothing that matters, and it leaves no connection, library state or
 * secret behind in the daemon, which maps no TLS library at all.
 */
#include "netreq.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

/* Reaps the helper: it exits on its own once the socket closes; one that does not is killed. */
static void
reap(pid_t pid)
{
	int64_t	until = now_mono_ms() + NETREQ_EXIT_WAIT_MS;
	int	status;
	pid_t	r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r == -1 && errno != EINTR))
			return;
		if (r == 0 && now_mono_ms() >= until) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
				;
			return;
		}
		poll(NULL, 0, 10);
	}
}

int
netreq_call(enum frame_type type, const struct buf *req, enum frame_type want,
    long timeout_sec, char **fields, struct reader *r, char *err, size_t errlen)
{
	struct pollfd	 pfd;
	enum frame_type	 got;
	int64_t		 deadline;
	pid_t		 pid;
	int		 fd, n, ret = -1;

	*fields = NULL;
	if ((pid = helper_spawn("ipcased-send", "sender", &fd)) == -1) {
		snprintf(err, errlen, "cannot start ipcased-send");
		return -1;
	}
	if (frame_send(fd, type, req) == -1) {
		snprintf(err, errlen, "ipcased-send did not take the request");
		goto out;
	}
	deadline = now_mono_ms() + timeout_sec * 1000 + NETREQ_MARGIN_MS;
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		if (stop_pending()) {
			snprintf(err, errlen, "given up: the daemon is stopping");
			goto out;
		}
		if (now_mono_ms() >= deadline) {
			snprintf(err, errlen, "ipcased-send did not answer in %ld s",
			    timeout_sec + NETREQ_MARGIN_MS / 1000);
			goto out;
		}
		if ((n = poll(&pfd, 1, NETREQ_TICK_MS)) == -1 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			goto out;
		}
		if (n > 0)
			break;
	}
	if (frame_recv(fd, &got, fields, r) == -1 || got != want) {
		free(*fields);
		*fields = NULL;
		snprintf(err, errlen, "ipcased-send ended without an answer");
		goto out;
	}
	ret = 0;
out:
	close(fd);
	if (ret == -1)
		kill(pid, SIGKILL);
	reap(pid);
	return ret;
}
