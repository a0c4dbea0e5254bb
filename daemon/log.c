/*
 * log.c — one line per event.  Under systemd each line starts with a
 * journald priority (<3>..<7>) and goes to stderr in one write(), so lines
 * of the parent and the fetchers never interleave.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static enum log_target	target = LOG_TO_STDERR;
static const char      *name = "ipcased";
static int		verbose;
static int		capture;
static char		last_warning[2200];

void
log_init(enum log_target t, const char *progname)
{
	target = t;
	name = progname;
	if (t == LOG_TO_SYSLOG)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_capture_warnings(int on)
{
	capture = on;
}

const char *
log_last_warning(void)
{
	return last_warning;
}

const char *
log_error_prefix(void)
{
	return target == LOG_TO_JOURNAL ? "<3>" : "";
}

void
log_set_verbose(int v)
{
	verbose = v;
}

enum log_target
log_get_target(void)
{
	return target;
}

int
log_get_verbose(void)
{
	return verbose;
}

static void vlog(int, const char *, va_list, const char *) __attribute__((format(printf, 2, 0)));

static void
vlog(int priority, const char *fmt, va_list ap, const char *suffix)
{
	char	 msg[2048], line[2200];
	int	 n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (capture && priority == LOG_WARNING) {
		snprintf(last_warning, sizeof(last_warning), "%s%s%s", msg,
		    suffix ? ": " : "", suffix ? suffix : "");
		if (verbose <= 0)
			return;
		priority = LOG_DEBUG;
	}
	switch (target) {
	case LOG_TO_SYSLOG:
		syslog(priority, "%s%s%s", msg, suffix ? ": " : "", suffix ? suffix : "");
		return;
	case LOG_TO_JOURNAL:
		n = snprintf(line, sizeof(line), "<%d>%s%s%s\n", priority, msg,
		    suffix ? ": " : "", suffix ? suffix : "");
		break;
	default:
		n = snprintf(line, sizeof(line), "%s: %s%s%s\n", name, msg,
		    suffix ? ": " : "", suffix ? suffix : "");
		break;
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* One write: a line is never split between processes. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (verbose <= 0)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap, NULL);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
