/* conf.h — the libconfig file, validated into an immutable struct conf; every error as file:line. */
#ifndef IPCASED_CONF_H
#define IPCASED_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <libconfig.h>

enum tls_mode {
	TLS_IMPLICIT,		/* TLS from the first byte (993): the default */
	TLS_STARTTLS,		/* opt-in, weaker: the greeting is parsed in clear */
	TLS_NONE		/* only to a loopback address */
};

enum auth_mech {
	AUTH_LOGIN,
	AUTH_PLAIN,
	AUTH_XOAUTH2
};

struct conf_account {
	char		*name;			/* unique, [A-Za-z0-9_.-]+ */
	char		*host;
	int		 port;			/* default 993, 143 with starttls/none */
	enum tls_mode	 tls;
	char		*user;
	enum auth_mech	 auth;
	char		*password_file;		/* LOGIN/PLAIN: the password, as written (secret_read() with conf->dir) */
	char		*password;		/* LOGIN/PLAIN inline, only from a file of mode 0600; NULL when password_file is used */
	char		*oauth_token_url;	/* XOAUTH2: token endpoint (https) */
	char		*oauth_client_id;
	char		*oauth_client_secret_file;	/* may be NULL */
	char		*oauth_refresh_token_file;	/* rewritten when the provider rotates it */
	char		*oauth_scope;		/* XOAUTH2: sent with the refresh (Microsoft 365 wants it); may be NULL */
	char		*ca_file;		/* NULL: system trust */
	char	       **folders;		/* NULL-terminated; default { "INBOX" } */
	char		*sent_folder;		/* NULL: found by SPECIAL-USE \Sent */
	int		 initial_scan_days;	/* first run looks back this far; 0 = all */
	int		 timeout_sec;		/* per network read/write */
	char	       **authserv_ids;		/* trusted Authentication-Results ids; NULL-terminated, may be empty */
	int		 line;			/* where it is defined */
};

struct conf_smtp {
	char		*url;			/* smtps://host:465 or smtp://host:587 (STARTTLS required) */
	char		*user;			/* NULL: no AUTH */
	char		*password_file;		/* with user; as written (secret_read() with conf->dir) */
	char		*password;		/* inline, only from a file of mode 0600; NULL when password_file is used */
	char		*ca_file;		/* NULL: system trust */
	char		*from;			/* envelope and header From */
	char	       **to;			/* the seller's addresses; NULL-terminated, at least one */
	char		*counsel;		/* gets `legal` reminders too; may be NULL */
	int		 timeout_sec;
};

/* A playbook task's default deadline, relative to the event that creates the task. */
struct conf_deadline {
	char		*task;			/* PLAYBOOK.md id, e.g. "appeal" */
	long		 seconds;		/* calendar time, or 0 when business_days is used */
	int		 business_days;		/* "1bd" in the file; 0 when seconds is used */
};

struct conf_reminders {
	long		*before;		/* seconds before due, descending, e.g. 72h 24h 2h */
	size_t		 nbefore;
	long		 overdue_every;		/* seconds between overdue repeats */
	int		 overdue_max;		/* repeats after the due time, then silence */
	int		 max_per_hour;		/* more than this in one hour becomes a digest */
	int		 quiet_start_min;	/* minutes after midnight, local; -1 = none */
	int		 quiet_end_min;
	int		 digest_hour;		/* local hour of the daily digest; -1 = none */
	char		*timezone;		/* IANA name, e.g. "Europe/Berlin"; default "UTC" */
	char	       **holidays;		/* "YYYY-MM-DD", NULL-terminated */
};

struct conf {
	char			*path;		/* the file read */
	char			*dir;		/* its directory, made absolute: relative paths and @include start here */
	char			*state_path;	/* sqlite database, resolved: relative to $STATE_DIRECTORY when set, else to dir */
	int			 poll_interval;	/* seconds */
	struct conf_account	*accounts;
	size_t			 naccounts;
	struct conf_smtp	 smtp;
	struct conf_deadline	*deadlines;
	size_t			 ndeadlines;
	struct conf_reminders	 reminders;
	char		       **amazon_domains;	/* NULL-terminated, lower case */
	int			 nerrors;	/* errors reported while loading */
	config_t		 cfg;		/* the parsed tree, for rules_load(); read-only after load */
	char			*src_path;	/* the source file last read again for a literal, */
	char			*src_text;	/* ... and its text: one read per file, not per setting */
};

/*
 * Reads and validates path.  Every problem is printed to stderr as
 * "file:line: what is wrong (the fix)" and counted in ->nerrors; the caller
 * refuses to run when it is not 0.  Returns NULL only when the file cannot be
 * read or parsed at all (that error is printed too).  Rules are not compiled
 * here: rules_load() reads the "rules" section through conf_section().
 */
struct conf	*conf_load(const char *path);
void		 conf_free(struct conf *);		/* NULL is a no-op */

/*
 * The built-in defaults, for `ipcase classify` without a config file: no
 * accounts (so the topmost Authentication-Results is trusted), the default
 * amazon_domains, no rules section (see rules_load_default()), no SMTP.
 */
struct conf	*conf_builtin(void);

/* Prints "file:line: " + message to stderr and counts the error. */
void		 conf_error(struct conf *, const config_setting_t *where, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* The top-level setting name, or NULL when absent. */
const config_setting_t *conf_section(const struct conf *, const char *name);

/*
 * Validating getters for modules that read their own section.  Each reports
 * a missing required key, a wrong type or an unknown key as conf_error().
 * Strings are malloc'd copies the caller owns.  Return 0 when found and
 * valid, 1 when absent and optional, -1 on error.  Unless 0 is returned,
 * string outputs are set to NULL and numbers and booleans are left alone
 * (so a default stored there first stays).  conf_get_int refuses 64-bit
 * values (5L) and literals libconfig 1.5 truncated to fit an int.
 */
int	 conf_check_keys(struct conf *, const config_setting_t *group, const char *const known[]);
int	 conf_get_string(struct conf *, const config_setting_t *group, const char *key, bool required, char **out);
int	 conf_get_int(struct conf *, const config_setting_t *group, const char *key, bool required, int min, int max, int *out);
int	 conf_get_bool(struct conf *, const config_setting_t *group, const char *key, bool required, bool *out);
/* A string or a list of strings; *out is NULL-terminated. */
int	 conf_get_strings(struct conf *, const config_setting_t *group, const char *key, bool required, char ***out);

/* Frees the strings of one account (not the struct itself). */
void	 conf_account_clear(struct conf_account *);
/* The deadline of a task, or NULL if the file and the defaults have none. */
const struct conf_deadline *conf_deadline(const struct conf *, const char *task);
/* Resolves a path from the file relative to its directory; malloc'd. */
char	*conf_path(const struct conf *, const char *);

#endif
