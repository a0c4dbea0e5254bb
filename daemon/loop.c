/*
 * loop.c — the one place that waits.  Signals arrive through a signalfd and
 * are handled in the main loop like any other event, so a signal never
 * interrupts a half-done transaction and no sleep() delays one.
 */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define LOOP_MAX_FDS	64

struct loop {
	int		sfd;
	sigset_t	old;
};

struct loop *
loop_new(void)
{
	struct loop	*l = xcalloc(1, sizeof(*l));
	sigset_t	 set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set, &l->old) == -1 ||
	    (l->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1) {
		log_warn("signalfd");
		free(l);
		return NULL;
	}
	return l;
}

void
loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	close(l->sfd);
	sigprocmask(SIG_SETMASK, &l->old, NULL);
	free(l);
}

static unsigned
drain_signals(struct loop *l)
{
	struct signalfd_siginfo	si;
	unsigned		got = 0;

	while (read(l->sfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			got |= LOOP_SIG_TERM;
			break;
		case SIGHUP:
			got |= LOOP_SIG_HUP;
			break;
		case SIGUSR1:
			got |= LOOP_SIG_USR1;
			break;
		case SIGUSR2:
			got |= LOOP_SIG_USR2;
			break;
		}
	}
	return got;
}

int
loop_wait(struct loop *l, struct pollfd *fds, int nfds, int timeout_ms, unsigned *signals)
{
	struct pollfd	pfd[LOOP_MAX_FDS + 1];
	int		i, n;

	*signals = 0;
	if (nfds > LOOP_MAX_FDS)
		nfds = LOOP_MAX_FDS;
	pfd[0].fd = l->sfd;
	pfd[0].events = POLLIN;
	pfd[0].revents = 0;
	for (i = 0; i < nfds; i++) {
		pfd[i + 1] = fds[i];
		pfd[i + 1].revents = 0;
	}
	n = poll(pfd, (nfds_t)nfds + 1, timeout_ms);
	if (n == -1) {
		if (errno == EINTR)
			return 0;
		log_warn("poll");
		return -1;
	}
	if (pfd[0].revents)
		*signals = drain_signals(l);
	n = 0;
	for (i = 0; i < nfds; i++) {
		fds[i].revents = pfd[i + 1].revents;
		n += fds[i].revents != 0;
	}
	return n;
}
