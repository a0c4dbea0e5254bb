/*
 * spawn.c — the daemon's helper programs.  A fetcher (IMAP, MIME) and the
 * sender (SMTP, HTTPS) run as programs of their own rather than forks of the
 * daemon: each maps only the libraries of its job, so none of them carries
 * the others' code, memory or secrets, and the daemon itself links no TLS,
 * IMAP, SMTP or HTTP code at all.
 *
 * They start with posix_spawn(), which glibc runs as a vfork: the daemon's
 * memory is neither copied nor marked copy-on-write.  After a fork() every
 * page the daemon then wrote faulted once; on the round after a first scan
 * that made the planning of its reminders 2.5 times slower.
 */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
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

/* posix_spawn() with end as HELPER_FD and the signals a new process has; 0 or an errno. */
static int
spawn_process(const char *path, char *const argv[], int end, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t	 attr;
	sigset_t		 none, dfl;
	int			 rc;

	/* The daemon blocks its signals for signalfd; a helper wants them plain. */
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		return rc;
	if ((rc = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return rc;
	}
	if ((rc = posix_spawn_file_actions_adddup2(&fa, end, HELPER_FD)) == 0 &&
	    (rc = posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
	    (rc = posix_spawnattr_setsigdefault(&attr, &dfl)) == 0 &&
	    (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF)) == 0)
		rc = posix_spawn(pid, path, &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

pid_t
helper_spawn(const char *name, const char *what, int *fd)
{
	char		*path, verbose[16], parent[24], *argv[8];
	const char	*target;
	pid_t		 pid;
	int		 sv[2], end, rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("%s: socketpair", what);
		return -1;
	}
	/* A dup2 onto its own number would leave close-on-exec set. */
	if ((end = sv[1]) == HELPER_FD &&
	    (end = fcntl(sv[1], F_DUPFD_CLOEXEC, HELPER_FD + 1)) == -1) {
		log_warn("%s: fcntl", what);
		close(sv[0]);
		close(sv[1]);
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
	snprintf(parent, sizeof(parent), "%ld", (long)getpid());
	argv[0] = (char *)(uintptr_t)name;
	argv[1] = (char *)(uintptr_t)"-l";
	argv[2] = (char *)(uintptr_t)target;
	argv[3] = (char *)(uintptr_t)"-v";
	argv[4] = verbose;
	argv[5] = (char *)(uintptr_t)"-p";
	argv[6] = parent;
	argv[7] = NULL;
	rc = spawn_process(path, argv, end, &pid);
	if (end != sv[1])
		close(end);
	close(sv[1]);
	if (rc != 0) {
		log_warnx("%s: cannot run %s: %s", what, path, strerror(rc));
		close(sv[0]);
		free(path);
		return -1;
	}
	free(path);
	*fd = sv[0];
	return pid;
}

int
helper_init(int argc, char *argv[])
{
	enum log_target	 target = LOG_TO_STDERR;
	struct stat	 st;
	long		 parent = 0;
	int		 ch;

	while ((ch = getopt(argc, argv, "l:v:p:")) != -1) {
		switch (ch) {
		case 'p':
			parent = strtol(optarg, NULL, 10);
			break;
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
	/*
	 * Killed when the daemon dies.  Set here, after the exec (posix_spawn
	 * has no such attribute): a daemon gone before this line has left us
	 * to another parent, and we leave too.
	 */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (parent > 0 && getppid() != (pid_t)parent)
		exit(0);
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
