/*
 * spawn.c — the daemon's helper programs.  A fetcher (IMAP, MIME) and the
 * sender (SMTP, HTTPS) run as programs of their own rather than forks of the
 * daemon: each maps only the libraries of its job, so none of them carries
 * the others' code, memory or secrets, and the daemon itself links no TLS,
 * IMAP, SMTP or HTTP code at all.
 */
#include "spawn.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Installed, helpers are in PREFIX/libexec/ipcased, the daemon in PREFIX/sbin. */
#define HELPER_DIR_FROM_BIN	"../libexec/ipcased"
#define HELPER_DIR_FALLBACK	"/usr/libexec/ipcased"

/*
 * Where a helper is: $IPCASED_LIBEXEC when set (tests of the library run
 * from elsewhere), else beside the running program when it is there (the
 * build tree), else PREFIX/libexec/ipcased of the running program's PREFIX,
 * so an installation works wherever `make install PREFIX=` put it.
 */
static char *
helper_path(const char *name)
{
	char		 self[PATH_MAX], *slash, *path;
	const char	*dir;
	ssize_t		 n;

	if ((dir = getenv("IPCASED_LIBEXEC")) != NULL && dir[0] != '\0')
		return xasprintf("%s/%s", dir, name);
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0)
		return xasprintf("%s/%s", HELPER_DIR_FALLBACK, name);
	self[n] = '\0';	/* readlink() does not end the string */
	if ((slash = strrchr(self, '/')) == NULL)
		return xasprintf("%s/%s", HELPER_DIR_FALLBACK, name);
	*slash = '\0';
	path = xasprintf("%s/%s", self, name);
	if (access(path, X_OK) == 0)
		return path;
	free(path);
	return xasprintf("%s/%s/%s", self, HELPER_DIR_FROM_BIN, name);
}

pid_t
helper_spawn(const char *name, const char *what, int *fd)
{
	char		*path, verbose[16], *argv[6];
	const char	*target;
	sigset_t	 none;
	pid_t		 pid;
	int		 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("%s: socketpair", what);
		return -1;
	}
	path = helper_path(name);
	switch (log_get_target()) {
	case LOG_TO_JOURNAL:
		target = "journal";
		break;
	case LOG_TO_SYSLOG:
		target = "syslog";
		break;
	default:
		target = "stderr";
		break;
	}
	snprintf(verbose, sizeof(verbose), "%d", log_get_verbose());
	argv[0] = (char *)(uintptr_t)name;
	argv[1] = (char *)(uintptr_t)"-l";
	argv[2] = (char *)(uintptr_t)target;
	argv[3] = (char *)(uintptr_t)"-v";
	argv[4] = verbose;
	argv[5] = NULL;
	if ((pid = fork()) == -1) {
		log_warn("%s: fork", what);
		close(sv[0]);
		close(sv[1]);
		free(path);
		return -1;
	}
	if (pid == 0) {
		/* The daemon blocks its signals for signalfd; a helper wants them plain. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(0);
		if (dup2(sv[1], HELPER_FD) == -1)	/* dup2 clears close-on-exec */
			_exit(127);
		execv(path, argv);
		/* Not log_warn: this is a copy of the daemon, its log is the daemon's. */
		dprintf(STDERR_FILENO, "%s%s: cannot run %s: %s\n", log_error_prefix()[0] != '\0' ?
		    log_error_prefix() : "ipcased: ", what, path, strerror(errno));
		_exit(127);
	}
	free(path);
	close(sv[1]);
	*fd = sv[0];
	return pid;
}

int
helper_init(int argc, char *argv[])
{
	enum log_target	 target = LOG_TO_STDERR;
	struct stat	 st;
	int		 ch;

	while ((ch = getopt(argc, argv, "l:v:")) != -1) {
		switch (ch) {
		case 'l':
			if (strcmp(optarg, "journal") == 0)
				target = LOG_TO_JOURNAL;
			else if (strcmp(optarg, "syslog") == 0)
				target = LOG_TO_SYSLOG;
			break;
		case 'v':
			log_set_verbose(atoi(optarg));
			break;
		default:
			break;
		}
	}
	/* The daemon's own name: its helpers' lines belong to it. */
	log_init(target, "ipcased");
	if (fstat(HELPER_FD, &st) == -1 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "%s: started by ipcased only (no socket on fd %d)\n",
		    argc > 0 ? argv[0] : "helper", HELPER_FD);
		exit(64);
	}
	signal(SIGPIPE, SIG_IGN);
	return HELPER_FD;
}

/*
 * The wait sleeps on a pidfd, so a helper that exits a millisecond after
 * its socket closed is reaped a millisecond later: looking every 10 ms, as
 * this once did, kept the daemon 10 ms after each round of reminders.
 * Without a pidfd (an old kernel, a system call filter) it looks every
 * millisecond.
 */
void
helper_reap(pid_t pid, int timeout_ms)
{
	struct pollfd	pfd;
	int64_t		until = now_mono_ms() + timeout_ms, left;
	int		status, fd;
	pid_t		r;

	if (timeout_ms > 0 && (fd = pidfd_open(pid, 0)) != -1) {
		pfd = (struct pollfd){ fd, POLLIN, 0 };
		while ((left = until - now_mono_ms()) > 0 && poll(&pfd, 1, (int)left) == -1 &&
		    errno == EINTR)
			;
		close(fd);
	}
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == -1 && errno == EINTR)
			continue;
		if (r != 0 || now_mono_ms() >= until)
			break;
		poll(NULL, 0, 1);
	}
	if (r == 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
	}
}
