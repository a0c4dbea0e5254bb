/* log.h — one line per event: plain on a terminal, journald priorities under systemd, or syslog. */
#ifndef IPCASED_LOG_H
#define IPCASED_LOG_H

enum log_target {
	LOG_TO_STDERR,		/* plain lines: --foreground, tools, tests */
	LOG_TO_JOURNAL,		/* stderr with <N> priority prefixes (systemd) */
	LOG_TO_SYSLOG
};

void	log_init(enum log_target, const char *progname);
void	log_set_verbose(int);		/* >0 shows log_debug */
/* The settings, for a helper process to log the same way. */
enum log_target log_get_target(void);
int	log_get_verbose(void);

/*
 * A fetcher keeps its warnings instead of writing them (they are written
 * only at debug level): the parent logs the reason once per outage, not once
 * per retry.  log_last_warning() returns the latest, "" when none.
 */
void	log_capture_warnings(int);
const char *log_last_warning(void);

/*
 * For modules that write an error line to stderr themselves (file:line
 * reports of the configuration): "<3>" under journald, "" otherwise.
 */
const char *log_error_prefix(void);

/* log_warn appends ": strerror(errno)"; the x variants do not. */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
