/* spawn.h — starting a helper program (ipcased-fetch, ipcased-send) with a socketpair to it. */
#ifndef IPCASED_SPAWN_H
#define IPCASED_SPAWN_H

#include <sys/types.h>

#define HELPER_FD	3	/* the helper's end of the socketpair */

/*
 * Starts (posix_spawn) the helper program name, found in $IPCASED_LIBEXEC,
 * beside the running program (a build tree) or in ../libexec/ipcased from
 * it (installed), with its end of a socketpair as HELPER_FD, signals as a
 * new process has them, and the daemon's pid and logging settings in its
 * arguments (helper_init() makes it die with the daemon).  Returns its pid
 * and the daemon's end in *fd, or -1 (logged with what).
 */
pid_t	helper_spawn(const char *name, const char *what, int *fd);

/*
 * Waits at most timeout_ms for helper pid to exit (its socket closed, it
 * is finishing), kills it when it has not, and reaps it either way; 0
 * kills it at once.
 */
void	helper_reap(pid_t pid, int timeout_ms);

/*
 * In a helper's main(): logs as the daemon asked, dies with the daemon
 * (exits now when it is gone already); returns HELPER_FD, or exits when it
 * is not a socket.
 */
int	helper_init(int argc, char *argv[]);

#endif
