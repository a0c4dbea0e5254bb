/* conf.c — reads the libconfig file, checks every setting, reports every error as file:line. */
#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "log.h"
#include "util.h"

#define DEFAULT_STATE		"/var/lib/ipcased/state.db"
#define DEFAULT_POLL		300
#define DEFAULT_TIMEOUT		30
#define DEADLINE_MAX_SEC	(3650L * 86400)	/* ten years: keeps time arithmetic far from overflow */
#define BUSINESS_DAYS_MAX	365
#define REMINDER_MAX_SEC	(365L * 86400)
#define SOURCE_MAX		(16 * 1024 * 1024)

/* rules and rule_settings belong to rules.c, which validates them itself. */
static const char *const top_keys[] = {
	"state", "poll_interval", "accounts", "smtp", "tasks", "reminders",
	"amazon_domains", "rules", "rule_settings", NULL
};

static const char *const account_keys[] = {
	"name", "host", "port", "tls", "user", "auth", "password", "password_file",
	"oauth_token_url", "oauth_client_id", "oauth_client_secret_file",
	"oauth_refresh_token_file", "oauth_scope", "ca_file", "folders", "sent_folder",
	"initial_scan_days", "timeout", "authserv_ids", NULL
};

/* Settings that only make sense with one family of mechanisms. */
static const char *const password_keys[] = { "password", "password_file", NULL };
static const char *const oauth_keys[] = {
	"oauth_token_url", "oauth_client_id", "oauth_client_secret_file",
	"oauth_refresh_token_file", "oauth_scope", NULL
};

static const char *const smtp_keys[] = {
	"url", "user", "password", "password_file", "ca_file", "from", "to",
	"counsel", "timeout", NULL
};

static const char *const reminder_keys[] = {
	"before", "overdue_every", "overdue_max", "max_per_hour", "quiet_hours",
	"digest_hour", "timezone", "holidays", NULL
};

/* PLAYBOOK.md task ids and their default deadlines; comply has none (the seller enters it). */
static const struct {
	const char	*task;
	const char	*deadline;
} task_defaults[] = {
	{ "review", "24h" },
	{ "stop_selling", "24h" },
	{ "evidence", "3d" },
	{ "contact_owner", "3d" },
	{ "follow_up", "5d" },
	{ "follow_up_answer", "1bd" },
	{ "appeal", "7d" },
	{ "legal", "3d" },
	{ "comply", NULL },
	{ "resume", "2d" },
	{ "prevent", "14d" },
	{ "await_decision", "14d" },
	{ "recheck_listing", "3d" },
};

static const char *const task_keys[] = {
	"review", "stop_selling", "evidence", "contact_owner", "follow_up",
	"follow_up_answer", "appeal", "legal", "comply", "resume", "prevent",
	"await_decision", "recheck_listing", NULL
};

static const char *const default_before[] = { "72h", "24h", "2h", NULL };

static const char *const default_amazon_domains[] = {
	"amazon.com", "amazon.ca", "amazon.com.mx", "amazon.com.br", "amazon.co.uk",
	"amazon.de", "amazon.fr", "amazon.it", "amazon.es", "amazon.nl", "amazon.se",
	"amazon.pl", "amazon.com.be", "amazon.com.tr", "amazon.co.jp", "amazon.in",
	"amazon.com.au", "amazon.sg", "amazon.ae", "amazon.sa", "amazon.eg",
	"amazonsellerservices.com", "sell.amazon.com", "amazon.lu", NULL
};

static const char *const default_folders[] = { "INBOX", NULL };
static const char *const empty_strv[] = { NULL };

/*
 * libconfig names an @include'd file as the directive wrote it, relative to
 * the include directory; show it the way the main file was named, so that
 * "tests/conf/x.conf" includes "tests/conf/rules.conf", not "rules.conf".
 */
static char *
display_name(const struct conf *conf, const char *file)
{
	const char	*slash = strrchr(conf->path, '/');

	if (file == NULL)
		return xstrdup(conf->path);
	if (strcmp(file, conf->path) == 0 || file[0] == '/' || slash == NULL)
		return xstrdup(file);
	return xasprintf("%.*s%s", (int)(slash - conf->path + 1), conf->path, file);
}

static void
report(struct conf *conf, const char *file, unsigned line, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void
report(struct conf *conf, const char *file, unsigned line, const char *fmt, va_list ap)
{
	char	*msg, *out, *name;
	ssize_t	 n;

	if (vasprintf(&msg, fmt, ap) < 0)
		fatal("vasprintf");
	name = display_name(conf, file);
	if (line > 0)
		out = xasprintf("%s%s:%u: %s\n", log_error_prefix(), name, line, msg);
	else
		out = xasprintf("%s%s: %s\n", log_error_prefix(), name, msg);
	free(name);
	/* One write, so that lines from several processes never interleave. */
	n = write(STDERR_FILENO, out, strlen(out));
	(void)n;
	conf->nerrors++;
	free(out);
	free(msg);
}

static void
report_at(struct conf *conf, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
report_at(struct conf *conf, const char *file, unsigned line, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	report(conf, file, line, fmt, ap);
	va_end(ap);
}

void
conf_error(struct conf *conf, const config_setting_t *where, const char *fmt, ...)
{
	const char	*file = NULL;
	unsigned	 line = 0;
	va_list		 ap;

	if (where != NULL) {
		file = config_setting_source_file(where);
		line = config_setting_source_line(where);
	}
	va_start(ap, fmt);
	report(conf, file, line, fmt, ap);
	va_end(ap);
}

static char **
strv_copy(const char *const *src)
{
	char	**v;
	size_t	  n = 0, i;

	while (src[n] != NULL)
		n++;
	v = xcalloc(n + 1, sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = xstrdup(src[i]);
	return v;
}

static void
secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* "accounts[0].folders[1]": where a setting sits, for messages. */
static void
path_append(struct buf *b, const config_setting_t *s)
{
	const config_setting_t	*parent = config_setting_parent(s);
	const char		*name = config_setting_name(s);

	if (parent == NULL)
		return;
	path_append(b, parent);
	if (name != NULL) {
		if (b->len > 0)
			buf_puts(b, ".");
		buf_puts(b, name);
	} else
		buf_printf(b, "[%d]", config_setting_index(s));
}

static char *
setting_path(const config_setting_t *s)
{
	struct buf	b = { 0 };

	path_append(&b, s);
	return buf_steal(&b);
}

static const char *
type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group { }";
	case CONFIG_TYPE_INT:
		return "an integer";
	case CONFIG_TYPE_INT64:
		return "a 64-bit integer";
	case CONFIG_TYPE_FLOAT:
		return "a decimal number";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array [ ]";
	case CONFIG_TYPE_LIST:
		return "a list ( )";
	default:
		return "nothing";
	}
}

static const config_setting_t *
member(const config_setting_t *group, const char *key)
{
	if (group == NULL || !config_setting_is_group(group))
		return NULL;
	return config_setting_get_member(group, key);
}

/*
 * The member key of group, or NULL.  A missing required one is reported at
 * the group's line; *ret is set to what the getter returns when NULL.
 */
static const config_setting_t *
lookup(struct conf *conf, const config_setting_t *group, const char *key,
    bool required, int *ret)
{
	const config_setting_t	*s = member(group, key);
	char			*where;

	if (s != NULL)
		return s;
	if (required) {
		where = group != NULL ? setting_path(group) : xstrdup("");
		conf_error(conf, group, "%s%smissing setting \"%s\" (add %s = ...;)",
		    where, where[0] ? ": " : "", key, key);
		free(where);
		*ret = -1;
	} else
		*ret = 1;
	return NULL;
}

static void
wrong_type(struct conf *conf, const config_setting_t *s, const char *want)
{
	char	*where = setting_path(s);

	conf_error(conf, s, "%s: must be %s, not %s", where, want,
	    type_name(config_setting_type(s)));
	free(where);
}

int
conf_check_keys(struct conf *conf, const config_setting_t *group, const char *const known[])
{
	const config_setting_t	*m;
	struct buf		 list = { 0 };
	char			*where;
	int			 i, n, ret = 0;
	size_t			 k;

	if (group == NULL)
		return 0;
	if (!config_setting_is_group(group)) {
		wrong_type(conf, group, "a group { ... }");
		return -1;
	}
	for (k = 0; known[k] != NULL; k++)
		buf_printf(&list, "%s%s", k ? ", " : "", known[k]);
	n = config_setting_length(group);
	for (i = 0; i < n; i++) {
		m = config_setting_get_elem(group, (unsigned)i);
		for (k = 0; known[k] != NULL; k++)
			if (strcmp(known[k], config_setting_name(m)) == 0)
				break;
		if (known[k] != NULL)
			continue;
		where = setting_path(group);
		conf_error(conf, m, "%s%sunknown setting \"%s\" (known: %s)", where,
		    where[0] ? ": " : "", config_setting_name(m), list.data ? list.data : "");
		free(where);
		ret = -1;
	}
	buf_free(&list);
	return ret;
}

int
conf_get_string(struct conf *conf, const config_setting_t *group, const char *key,
    bool required, char **out)
{
	const config_setting_t	*s;
	int			 ret;

	*out = NULL;
	if ((s = lookup(conf, group, key, required, &ret)) == NULL)
		return ret;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		wrong_type(conf, s, "a string in double quotes");
		return -1;
	}
	*out = xstrdup(config_setting_get_string(s));
	return 0;
}

/* The file a setting came from, as a path to open: @include names are relative to conf->dir. */
static char *
source_path(const struct conf *conf, const char *file)
{
	if (file == NULL || strcmp(file, conf->path) == 0)
		return xstrdup(conf->path);
	return conf_path(conf, file);
}

/*
 * libconfig 1.5 silently truncates an integer literal that does not fit an
 * int (5000000000 becomes 705032704), so the literal is read again from its
 * source line.  Returns true and the written value when they differ.
 */
static bool
int_literal_differs(struct conf *conf, const config_setting_t *s, int value,
    long long *written)
{
	const char	*name = config_setting_name(s), *p, *q, *r;
	unsigned	 line = config_setting_source_line(s), n;
	char		*full, *text, *end;
	long long	 v;
	size_t		 len;
	bool		 differs = false;
	int		 base;

	if (name == NULL || line == 0)
		return false;
	full = source_path(conf, config_setting_source_file(s));
	if (conf->src_path == NULL || strcmp(conf->src_path, full) != 0) {
		free(conf->src_path);
		free(conf->src_text);
		conf->src_path = full;
		conf->src_text = file_read(full, SOURCE_MAX, NULL);
	} else
		free(full);
	if (conf->src_text == NULL)
		return false;
	for (p = conf->src_text, n = 1; p != NULL && n < line; n++)
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	if (p == NULL)
		return false;
	q = strchr(p, '\n');
	text = xstrndup(p, q != NULL ? (size_t)(q - p) : strlen(p));
	len = strlen(name);
	for (q = text; (q = strstr(q, name)) != NULL; q += len) {
		if (q > text && (isalnum((unsigned char)q[-1]) || q[-1] == '_' ||
		    q[-1] == '-' || q[-1] == '*'))
			continue;
		r = q + len;
		while (*r == ' ' || *r == '\t')
			r++;
		if (*r != '=' && *r != ':')
			continue;
		r++;
		while (*r == ' ' || *r == '\t')
			r++;
		base = r[0] == '0' && (r[1] == 'x' || r[1] == 'X') ? 16 : 10;
		errno = 0;
		v = strtoll(r, &end, base);
		if (end == r)
			break;
		if (errno == ERANGE || v != value) {
			*written = v;
			differs = true;
		}
		break;
	}
	free(text);
	return differs;
}

int
conf_get_int(struct conf *conf, const config_setting_t *group, const char *key,
    bool required, int min, int max, int *out)
{
	const config_setting_t	*s;
	long long		 v;
	char			*where;
	int			 ret;

	if ((s = lookup(conf, group, key, required, &ret)) == NULL)
		return ret;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		v = config_setting_get_int(s);
		int_literal_differs(conf, s, (int)v, &v);
		break;
	case CONFIG_TYPE_INT64:
		/* An int lookup of an int64 setting returns 0: never read it as one. */
		v = config_setting_get_int64(s);
		if (v >= min && v <= max) {
			where = setting_path(s);
			conf_error(conf, s, "%s: must be a plain integer (write %lld "
			    "without the L)", where, v);
			free(where);
			return -1;
		}
		break;
	default:
		wrong_type(conf, s, "an integer");
		return -1;
	}
	if (v < min || v > max) {
		where = setting_path(s);
		conf_error(conf, s, "%s: %lld is out of range (use %d to %d)", where, v,
		    min, max);
		free(where);
		return -1;
	}
	*out = (int)v;
	return 0;
}

int
conf_get_bool(struct conf *conf, const config_setting_t *group, const char *key,
    bool required, bool *out)
{
	const config_setting_t	*s;
	int			 ret;

	if ((s = lookup(conf, group, key, required, &ret)) == NULL)
		return ret;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		wrong_type(conf, s, "true or false");
		return -1;
	}
	*out = config_setting_get_bool(s) != 0;
	return 0;
}

int
conf_get_strings(struct conf *conf, const config_setting_t *group, const char *key,
    bool required, char ***out)
{
	const config_setting_t	*s, *e;
	char			**v;
	int			 i, n, ret;

	*out = NULL;
	if ((s = lookup(conf, group, key, required, &ret)) == NULL)
		return ret;
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		v = xcalloc(2, sizeof(*v));
		v[0] = xstrdup(config_setting_get_string(s));
		*out = v;
		return 0;
	}
	if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
		wrong_type(conf, s, "a string or a list of strings [ \"...\", ... ]");
		return -1;
	}
	n = config_setting_length(s);
	ret = 0;
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			wrong_type(conf, e, "a string in double quotes");
			ret = -1;
		}
	}
	if (ret != 0)
		return ret;
	v = xcalloc((size_t)n + 1, sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = xstrdup(config_setting_get_string_elem(s, i));
	*out = v;
	return 0;
}

const config_setting_t *
conf_section(const struct conf *conf, const char *name)
{
	return member(config_root_setting(&conf->cfg), name);
}

const struct conf_deadline *
conf_deadline(const struct conf *conf, const char *task)
{
	size_t	i;

	for (i = 0; i < conf->ndeadlines; i++)
		if (strcmp(conf->deadlines[i].task, task) == 0)
			return &conf->deadlines[i];
	return NULL;
}

char *
conf_path(const struct conf *conf, const char *path)
{
	size_t	n;

	if (path == NULL)
		return NULL;
	if (path[0] == '/')
		return xstrdup(path);
	n = strlen(conf->dir);
	if (n > 0 && conf->dir[n - 1] == '/')
		return xasprintf("%s%s", conf->dir, path);
	return xasprintf("%s/%s", conf->dir, path);
}

/* A CA file is public and read where it is: relative to the config's directory. */
static void
resolve_path(const struct conf *conf, char **path)
{
	char	*full;

	if (*path == NULL || (*path)[0] == '/')
		return;
	full = conf_path(conf, *path);
	free(*path);
	*path = full;
}

/* The directory of path, absolute when it exists, so a later chdir does not matter. */
static char *
dir_of(const char *path)
{
	const char	*slash = strrchr(path, '/');
	char		*dir, *abs;

	if (slash == NULL)
		dir = xstrdup(".");
	else if (slash == path)
		dir = xstrdup("/");
	else
		dir = xstrndup(path, (size_t)(slash - path));
	if ((abs = realpath(dir, NULL)) == NULL)
		return dir;
	free(dir);
	return abs;
}

static bool
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* Reports an empty value or one with control characters; returns false then. */
static bool
check_text(struct conf *conf, const config_setting_t *s, const char *value, const char *hint)
{
	char	*where;
	bool	 ok = true;

	if (value[0] == '\0' || has_control(value)) {
		where = setting_path(s);
		conf_error(conf, s, "%s: %s (%s)", where, value[0] == '\0' ?
		    "is empty" : "contains control characters", hint);
		free(where);
		ok = false;
	}
	return ok;
}

/* A string setting that must not be empty: a file name, a user, a folder. */
static int
get_text(struct conf *conf, const config_setting_t *group, const char *key,
    bool required, const char *hint, char **out)
{
	int	ret = conf_get_string(conf, group, key, required, out);

	if (ret == 0 && !check_text(conf, member(group, key), *out, hint)) {
		free(*out);
		*out = NULL;
		ret = -1;
	}
	return ret;
}

static bool
name_valid(const char *s)
{
	if (*s == '\0' || strlen(s) > 64)
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
			return false;
	return true;
}

static bool
host_valid(const char *h)
{
	struct in_addr	a4;
	struct in6_addr	a6;
	const char	*p;

	if (*h == '\0' || strlen(h) > 253)
		return false;
	if (inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1)
		return true;
	if (h[0] == '.' || h[0] == '-' || strstr(h, "..") != NULL)
		return false;
	for (p = h; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
			return false;
	return true;
}

static bool
host_is_loopback(const char *h)
{
	struct in_addr	a4;
	struct in6_addr	a6;

	if (strcasecmp(h, "localhost") == 0 || strcasecmp(h, "localhost.") == 0)
		return true;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, h, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		    (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

struct url {
	char	scheme[16];	/* lower case */
	char	host[256];	/* without [ ] */
	int	port;		/* -1 when absent */
};

/* Splits scheme://host[:port][/path]; returns NULL or why the URL is bad. */
static const char *
url_parse(const char *s, struct url *u)
{
	const char	*sep = strstr(s, "://"), *h, *end, *hend, *after;
	size_t		 n;
	long		 port;
	char		*pend;

	memset(u, 0, sizeof(*u));
	u->port = -1;
	if (has_control(s) || strchr(s, ' ') != NULL)
		return "contains a space or control character";
	if (sep == NULL || sep == s || (size_t)(sep - s) >= sizeof(u->scheme))
		return "has no scheme://";
	for (n = 0; s + n < sep; n++)
		u->scheme[n] = (char)tolower((unsigned char)s[n]);
	h = sep + 3;
	end = h + strcspn(h, "/?#");
	if (memchr(h, '@', (size_t)(end - h)) != NULL)
		return "carries credentials; give them in their own settings";
	if (*h == '[') {
		if ((hend = memchr(h, ']', (size_t)(end - h))) == NULL)
			return "has an unclosed [";
		h++;
		after = hend + 1;
	} else {
		hend = memchr(h, ':', (size_t)(end - h));
		if (hend == NULL)
			hend = end;
		after = hend;
	}
	if (hend == h)
		return "has no host";
	if ((size_t)(hend - h) >= sizeof(u->host))
		return "has a host name that is too long";
	memcpy(u->host, h, (size_t)(hend - h));
	if (!host_valid(u->host))
		return "has a bad host name";
	if (after < end) {
		if (*after != ':' || !isdigit((unsigned char)after[1]))
			return "has a bad port";
		errno = 0;
		port = strtol(after + 1, &pend, 10);
		if (errno != 0 || pend != end || port < 1 || port > 65535)
			return "has a bad port (use 1 to 65535)";
		u->port = (int)port;
	}
	return NULL;
}

/* No spaces, no control characters, no <>, exactly one @, a dot in the domain. */
static bool
addr_valid(const char *a)
{
	const char	*p, *at = strchr(a, '@'), *domain;
	size_t		 n;

	for (p = a; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '<' || *p == '>')
			return false;
	if (at == NULL || at == a || strchr(at + 1, '@') != NULL)
		return false;
	domain = at + 1;
	n = strlen(domain);
	if (n == 0 || domain[0] == '.' || domain[n - 1] == '.' ||
	    strchr(domain, '.') == NULL || strstr(domain, "..") != NULL)
		return false;
	return true;
}

/* Lower-case labels of letters, digits and hyphens, at least two of them. */
static bool
domain_valid(const char *d)
{
	size_t	label = 0, labels = 1;

	if (*d == '\0' || strlen(d) > 253)
		return false;
	for (; *d != '\0'; d++) {
		if (*d == '.') {
			if (label == 0 || d[-1] == '-')
				return false;
			label = 0;
			labels++;
			continue;
		}
		if (!islower((unsigned char)*d) && !isdigit((unsigned char)*d) && *d != '-')
			return false;
		if (*d == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && d[-1] != '-' && labels >= 2;
}

/* "24h" or "3bd": calendar seconds or business days.  Returns 0 or -1. */
static int
deadline_parse(const char *s, long *seconds, int *business_days)
{
	size_t	 n = strlen(s), i;
	long	 v;

	*seconds = 0;
	*business_days = 0;
	if (n > 2 && strcmp(s + n - 2, "bd") == 0) {
		for (i = 0; i < n - 2; i++)
			if (!isdigit((unsigned char)s[i]) || i >= 4)
				return -1;
		v = strtol(s, NULL, 10);
		if (v < 1 || v > BUSINESS_DAYS_MAX)
			return -1;
		*business_days = (int)v;
		return 0;
	}
	if ((v = duration_parse(s)) <= 0 || v > DEADLINE_MAX_SEC)
		return -1;
	*seconds = v;
	return 0;
}

/* A reminder interval: a duration from one second to a year, or -1. */
static long
interval_parse(const char *s)
{
	long	v = duration_parse(s);

	return v > 0 && v <= REMINDER_MAX_SEC ? v : -1;
}

static bool
date_valid(const char *s)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int	y, m, d, i, max;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return false;
	y = atoi(s);
	m = atoi(s + 5);
	d = atoi(s + 8);
	if (y < 1970 || m < 1 || m > 12 || d < 1)
		return false;
	max = days[m - 1];
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		max = 29;
	return d <= max;
}

/* "HH:MM" -> minutes after midnight, or -1. */
static int
clock_parse(const char *s)
{
	int	h, m;

	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
	    !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 23 || m > 59)
		return -1;
	return h * 60 + m;
}

static bool
timezone_exists(const char *name)
{
	GTimeZone	*tz;

	/* An empty identifier would mean the host's local zone; the file must name one. */
	if (name[0] == '\0' || has_control(name))
		return false;
	/* UTC needs no tzdata: GLib builds it in. */
	if (strcmp(name, "UTC") == 0)
		return true;
	if ((tz = g_time_zone_new_identifier(name)) == NULL)
		return false;
	g_time_zone_unref(tz);
	return true;
}

/*
 * An inline password is accepted only from a file that group and others
 * cannot read, as fetchmail insists for .fetchmailrc; anything else leaks it
 * to every local user.
 */
static void
check_inline_secret(struct conf *conf, const config_setting_t *s)
{
	const char	*file = config_setting_source_file(s);
	char		*full, *shown, *where = setting_path(s);
	struct stat	 st;

	full = source_path(conf, file);
	shown = display_name(conf, file);
	if (stat(full, &st) == -1)
		conf_error(conf, s, "%s: cannot check the mode of %s: %s (move the "
		    "password into password_file)", where, full, strerror(errno));
	else if (st.st_mode & (S_IRGRP | S_IROTH))
		conf_error(conf, s, "%s: the file is readable by %s (mode %03o); move "
		    "the password into password_file or chmod 600 %s", where,
		    (st.st_mode & S_IROTH) ? "others" : "its group",
		    (unsigned)(st.st_mode & 0777), shown);
	free(shown);
	free(full);
	free(where);
}

/* Exactly one of password and password_file; returns 0 when one is there. */
static int
load_password(struct conf *conf, const config_setting_t *g, char **password,
    char **password_file)
{
	const config_setting_t	*ps = member(g, "password");
	char			*where;
	int			 rp, rf;

	rf = get_text(conf, g, "password_file", false, "give the file that holds "
	    "the password", password_file);
	rp = conf_get_string(conf, g, "password", false, password);
	if (rp == 0) {
		if ((*password)[0] == '\0') {
			where = setting_path(ps);
			conf_error(conf, ps, "%s: is empty (give the password or use "
			    "password_file)", where);
			free(where);
			rp = -1;
		} else
			check_inline_secret(conf, ps);
	}
	if (rp == 0 && rf == 0) {
		where = setting_path(ps);
		conf_error(conf, ps, "%s: give password_file or password, not both "
		    "(remove password)", where);
		free(where);
		return -1;
	}
	return rp == 1 && rf == 1 ? 1 : 0;
}

/* Settings of the other authentication family are errors, not silently ignored. */
static void
reject_keys(struct conf *conf, const config_setting_t *g, const char *const keys[],
    const char *why)
{
	const config_setting_t	*s;
	char			*where;
	size_t			 i;

	for (i = 0; keys[i] != NULL; i++) {
		if ((s = member(g, keys[i])) == NULL)
			continue;
		where = setting_path(s);
		conf_error(conf, s, "%s: %s (remove it)", where, why);
		free(where);
	}
}

static void
load_account_auth(struct conf *conf, const config_setting_t *g, struct conf_account *a)
{
	const config_setting_t	*s;
	struct url		 u;
	const char		*why;
	char			*mech = NULL, *where, *v;

	a->auth = AUTH_LOGIN;
	if (conf_get_string(conf, g, "auth", false, &mech) == 0) {
		if (strcmp(mech, "login") == 0)
			a->auth = AUTH_LOGIN;
		else if (strcmp(mech, "plain") == 0)
			a->auth = AUTH_PLAIN;
		else if (strcmp(mech, "xoauth2") == 0)
			a->auth = AUTH_XOAUTH2;
		else {
			s = member(g, "auth");
			where = setting_path(s);
			v = str_for_log(mech, 40);
			conf_error(conf, s, "%s: unknown mechanism \"%s\" (use \"login\", "
			    "\"plain\" or \"xoauth2\")", where, v);
			free(v);
			free(where);
		}
	}
	free(mech);
	if (a->auth != AUTH_XOAUTH2) {
		reject_keys(conf, g, oauth_keys, "is only used with auth = \"xoauth2\"");
		if (load_password(conf, g, &a->password, &a->password_file) == 1) {
			where = setting_path(g);
			conf_error(conf, g, "%s: auth = \"%s\" needs a password (add "
			    "password_file = \"imap.pass\"; a file of mode 0600)", where,
			    a->auth == AUTH_PLAIN ? "plain" : "login");
			free(where);
		}
		return;
	}
	reject_keys(conf, g, password_keys, "is not used with auth = \"xoauth2\"");
	if (get_text(conf, g, "oauth_token_url", true, "give the provider's token "
	    "endpoint", &a->oauth_token_url) == 0) {
		s = member(g, "oauth_token_url");
		where = setting_path(s);
		v = str_for_log(a->oauth_token_url, 80);
		if ((why = url_parse(a->oauth_token_url, &u)) != NULL)
			conf_error(conf, s, "%s: \"%s\" %s (write "
			    "\"https://host/path\")", where, v, why);
		else if (strcmp(u.scheme, "https") != 0 &&
		    !(strcmp(u.scheme, "http") == 0 && host_is_loopback(u.host)))
			conf_error(conf, s, "%s: \"%s\" must use https:// (plain "
			    "http:// only to a loopback host): the refresh token "
			    "travels in it", where, v);
		free(v);
		free(where);
	}
	get_text(conf, g, "oauth_client_id", true, "give the client id registered "
	    "with the provider", &a->oauth_client_id);
	get_text(conf, g, "oauth_client_secret_file", false, "give a file name or "
	    "remove the setting", &a->oauth_client_secret_file);
	get_text(conf, g, "oauth_refresh_token_file", true, "give the file that "
	    "holds the refresh token", &a->oauth_refresh_token_file);
	get_text(conf, g, "oauth_scope", false, "give the scopes separated by "
	    "spaces or remove the setting", &a->oauth_scope);
}

/* Each element of a list of names: not empty, no control characters. */
static void
check_texts(struct conf *conf, const config_setting_t *g, const char *key,
    char **v, const char *hint)
{
	const config_setting_t	*s = member(g, key), *e;
	size_t			 i;

	for (i = 0; v[i] != NULL; i++) {
		e = config_setting_type(s) == CONFIG_TYPE_STRING ? s :
		    config_setting_get_elem(s, (unsigned)i);
		check_text(conf, e, v[i], hint);
	}
}

/*
 * authserv_ids = [ "none" ] says the receiving server writes no
 * Authentication-Results at all: then no id can be trusted beside it.
 */
static void
check_authserv_none(struct conf *conf, const config_setting_t *g, char **ids)
{
	const config_setting_t	*s = member(g, "authserv_ids");
	char			*where;
	size_t			 i, n = strv_len(ids);

	for (i = 0; i < n; i++) {
		if (strcasecmp(ids[i], "none") != 0 || n == 1)
			continue;
		where = setting_path(s);
		conf_error(conf, s, "%s: \"none\" (the server writes no "
		    "Authentication-Results, so notices are reported as unverified) "
		    "cannot be combined with other ids (write [ \"none\" ] alone, or "
		    "remove it)", where);
		free(where);
		return;
	}
}

static void
load_account(struct conf *conf, const config_setting_t *g, struct conf_account *a)
{
	const config_setting_t	*s;
	char			*tls = NULL, *where, *v;

	a->line = config_setting_source_line(g);
	a->tls = TLS_IMPLICIT;
	a->port = 993;
	a->timeout_sec = DEFAULT_TIMEOUT;
	if (!config_setting_is_group(g)) {
		wrong_type(conf, g, "a group { name = \"...\"; host = \"...\"; ... }");
		goto out;
	}
	conf_check_keys(conf, g, account_keys);

	if (conf_get_string(conf, g, "name", true, &a->name) == 0 && !name_valid(a->name)) {
		s = member(g, "name");
		where = setting_path(s);
		v = str_for_log(a->name, 40);
		conf_error(conf, s, "%s: \"%s\" is not a valid name (use 1 to 64 of "
		    "A-Z a-z 0-9 _ . -)", where, v);
		free(v);
		free(where);
	}
	if (conf_get_string(conf, g, "host", true, &a->host) == 0 && !host_valid(a->host)) {
		s = member(g, "host");
		where = setting_path(s);
		v = str_for_log(a->host, 80);
		conf_error(conf, s, "%s: \"%s\" is not a host name or IP address "
		    "(write host = \"imap.example.com\"; no brackets, no port)", where, v);
		free(v);
		free(where);
	}
	if (conf_get_string(conf, g, "tls", false, &tls) == 0) {
		s = member(g, "tls");
		if (strcmp(tls, "implicit") == 0)
			a->tls = TLS_IMPLICIT;
		else if (strcmp(tls, "starttls") == 0)
			a->tls = TLS_STARTTLS;
		else if (strcmp(tls, "none") == 0) {
			a->tls = TLS_NONE;
			if (a->host != NULL && !host_is_loopback(a->host)) {
				where = setting_path(s);
				v = str_for_log(a->host, 80);
				conf_error(conf, s, "%s: \"none\" would send the password "
				    "and the mail in clear to \"%s\"; it is allowed only to "
				    "a loopback host (127.0.0.1, ::1, localhost) (use tls = "
				    "\"implicit\" or \"starttls\")", where, v);
				free(v);
				free(where);
			}
		} else {
			where = setting_path(s);
			v = str_for_log(tls, 40);
			conf_error(conf, s, "%s: unknown mode \"%s\" (use \"implicit\", "
			    "\"starttls\" or \"none\")", where, v);
			free(v);
			free(where);
		}
	}
	a->port = a->tls == TLS_IMPLICIT ? 993 : 143;
	conf_get_int(conf, g, "port", false, 1, 65535, &a->port);
	get_text(conf, g, "user", true, "give the login name", &a->user);
	load_account_auth(conf, g, a);
	get_text(conf, g, "ca_file", false, "give a PEM file or remove the setting "
	    "for the system trust store", &a->ca_file);
	resolve_path(conf, &a->ca_file);
	if (conf_get_strings(conf, g, "folders", false, &a->folders) == 0) {
		if (a->folders[0] == NULL) {
			s = member(g, "folders");
			where = setting_path(s);
			conf_error(conf, s, "%s: is empty (list at least one folder, "
			    "e.g. [ \"INBOX\" ])", where);
			free(where);
		} else
			check_texts(conf, g, "folders", a->folders, "give a folder name");
	}
	get_text(conf, g, "sent_folder", false, "give a folder name or remove the "
	    "setting to find it by SPECIAL-USE \\Sent", &a->sent_folder);
	conf_get_int(conf, g, "initial_scan_days", false, 0, 36500, &a->initial_scan_days);
	conf_get_int(conf, g, "timeout", false, 5, 600, &a->timeout_sec);
	if (conf_get_strings(conf, g, "authserv_ids", false, &a->authserv_ids) == 0) {
		check_texts(conf, g, "authserv_ids", a->authserv_ids, "give the "
		    "authserv-id of your receiving server");
		check_authserv_none(conf, g, a->authserv_ids);
	}
out:
	if (a->folders == NULL)
		a->folders = strv_copy(default_folders);
	if (a->authserv_ids == NULL)
		a->authserv_ids = strv_copy(empty_strv);
	free(tls);
}

static void
load_accounts(struct conf *conf, const config_setting_t *root)
{
	const config_setting_t	*list, *s;
	size_t			 i, j;
	char			*where;
	int			 n, ret;

	if ((list = lookup(conf, root, "accounts", true, &ret)) == NULL)
		return;
	if (!config_setting_is_list(list)) {
		wrong_type(conf, list, "a list of groups ( { name = \"...\"; ... } )");
		return;
	}
	if ((n = config_setting_length(list)) == 0) {
		conf_error(conf, list, "accounts: is empty (add at least one account "
		    "{ name = ...; host = ...; user = ...; })");
		return;
	}
	conf->naccounts = (size_t)n;
	conf->accounts = xcalloc(conf->naccounts, sizeof(*conf->accounts));
	for (i = 0; i < conf->naccounts; i++) {
		load_account(conf, config_setting_get_elem(list, (unsigned)i),
		    &conf->accounts[i]);
		if (conf->accounts[i].name == NULL)
			continue;
		for (j = 0; j < i; j++) {
			if (conf->accounts[j].name == NULL ||
			    strcmp(conf->accounts[j].name, conf->accounts[i].name) != 0)
				continue;
			s = member(config_setting_get_elem(list, (unsigned)i), "name");
			where = setting_path(s);
			conf_error(conf, s, "%s: \"%s\" is already the name of accounts[%zu] "
			    "(line %d) (names must be unique)", where,
			    conf->accounts[i].name, j, conf->accounts[j].line);
			free(where);
			break;
		}
	}
}

/* One address setting (or a list element); reports and returns false when invalid. */
static bool
check_address(struct conf *conf, const config_setting_t *s, const char *addr)
{
	char	*where, *v;

	if (addr_valid(addr))
		return true;
	where = setting_path(s);
	v = str_for_log(addr, 80);
	conf_error(conf, s, "%s: \"%s\" is not a mail address (write a bare "
	    "address like \"ops@shop.example\", without <> or a name)", where, v);
	free(v);
	free(where);
	return false;
}

static void
load_smtp(struct conf *conf, const config_setting_t *root)
{
	struct conf_smtp	*m = &conf->smtp;
	const config_setting_t	*g, *s;
	struct url		 u;
	const char		*why;
	char			*where, *v;
	size_t			 i;
	int			 ret;

	m->timeout_sec = DEFAULT_TIMEOUT;
	if ((g = lookup(conf, root, "smtp", true, &ret)) == NULL)
		goto out;
	if (!config_setting_is_group(g)) {
		wrong_type(conf, g, "a group { url = \"...\"; from = \"...\"; to = [ ... ]; }");
		goto out;
	}
	conf_check_keys(conf, g, smtp_keys);
	if (conf_get_string(conf, g, "url", true, &m->url) == 0) {
		s = member(g, "url");
		v = str_for_log(m->url, 80);
		where = setting_path(s);
		if ((why = url_parse(m->url, &u)) != NULL)
			conf_error(conf, s, "%s: \"%s\" %s (write \"smtps://host:465\" "
			    "or \"smtp://host:587\")", where, v, why);
		else if (strcmp(u.scheme, "smtp") != 0 && strcmp(u.scheme, "smtps") != 0)
			conf_error(conf, s, "%s: \"%s\" must start with smtp:// "
			    "(STARTTLS) or smtps:// (implicit TLS)", where, v);
		free(where);
		free(v);
	}
	if (get_text(conf, g, "user", false, "give the login name or remove the "
	    "setting to send without AUTH", &m->user) == 0) {
		if (load_password(conf, g, &m->password, &m->password_file) == 1) {
			where = setting_path(g);
			conf_error(conf, g, "%s: user needs a password (add password_file "
			    "= \"smtp.pass\"; a file of mode 0600)", where);
			free(where);
		}
	} else
		reject_keys(conf, g, password_keys, "is only used with user");
	get_text(conf, g, "ca_file", false, "give a PEM file or remove the setting "
	    "for the system trust store", &m->ca_file);
	resolve_path(conf, &m->ca_file);
	if (conf_get_string(conf, g, "from", true, &m->from) == 0)
		check_address(conf, member(g, "from"), m->from);
	if (conf_get_strings(conf, g, "to", true, &m->to) == 0) {
		s = member(g, "to");
		if (m->to[0] == NULL) {
			where = setting_path(s);
			conf_error(conf, s, "%s: is empty (list the seller's addresses, "
			    "e.g. [ \"ops@shop.example\" ])", where);
			free(where);
		}
		for (i = 0; m->to[i] != NULL; i++)
			check_address(conf, config_setting_type(s) == CONFIG_TYPE_STRING ?
			    s : config_setting_get_elem(s, (unsigned)i), m->to[i]);
	}
	if (conf_get_string(conf, g, "counsel", false, &m->counsel) == 0)
		check_address(conf, member(g, "counsel"), m->counsel);
	conf_get_int(conf, g, "timeout", false, 5, 600, &m->timeout_sec);
out:
	if (m->to == NULL)
		m->to = strv_copy(empty_strv);
}

static void
load_tasks(struct conf *conf, const config_setting_t *root)
{
	const config_setting_t	*g, *s;
	struct conf_deadline	*d;
	char			*value, *where, *v;
	size_t			 i;
	int			 ret;

	g = lookup(conf, root, "tasks", false, &ret);
	if (g != NULL && conf_check_keys(conf, g, task_keys) != 0 &&
	    !config_setting_is_group(g))
		g = NULL;
	conf->deadlines = xcalloc(NELEM(task_defaults), sizeof(*conf->deadlines));
	for (i = 0; i < NELEM(task_defaults); i++) {
		d = &conf->deadlines[conf->ndeadlines];
		value = NULL;
		if (conf_get_string(conf, g, task_defaults[i].task, false, &value) == 0) {
			if (deadline_parse(value, &d->seconds, &d->business_days) != 0) {
				s = member(g, task_defaults[i].task);
				where = setting_path(s);
				v = str_for_log(value, 40);
				conf_error(conf, s, "%s: bad deadline \"%s\" (write \"90s\", "
				    "\"15m\", \"24h\", \"3d\", \"2w\" up to 3650d, or \"2bd\" "
				    "for business days)", where, v);
				free(v);
				free(where);
				free(value);
				continue;
			}
		} else if (task_defaults[i].deadline != NULL)
			deadline_parse(task_defaults[i].deadline, &d->seconds,
			    &d->business_days);
		else
			continue;
		free(value);
		d->task = xstrdup(task_defaults[i].task);
		conf->ndeadlines++;
	}
}

static int
long_desc(const void *a, const void *b)
{
	long	x = *(const long *)a, y = *(const long *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

static void
get_interval(struct conf *conf, const config_setting_t *g, const char *key, long *out)
{
	const config_setting_t	*s;
	char			*value = NULL, *where, *v;
	long			 sec;

	if (conf_get_string(conf, g, key, false, &value) != 0)
		return;
	if ((sec = interval_parse(value)) < 0) {
		s = member(g, key);
		where = setting_path(s);
		v = str_for_log(value, 40);
		conf_error(conf, s, "%s: bad duration \"%s\" (write \"90s\", \"15m\", "
		    "\"24h\", \"3d\" or \"2w\", at most 365d)", where, v);
		free(v);
		free(where);
	} else
		*out = sec;
	free(value);
}

static void
load_before(struct conf *conf, const config_setting_t *g)
{
	struct conf_reminders	*r = &conf->reminders;
	const config_setting_t	*s, *e;
	char			**v = NULL, *where, *shown;
	size_t			 i, j, n;
	long			 sec;

	if (conf_get_strings(conf, g, "before", false, &v) != 0) {
		v = strv_copy(default_before);
		s = NULL;
	} else
		s = member(g, "before");
	n = strv_len(v);
	r->before = xcalloc(n, sizeof(*r->before));
	for (i = 0; i < n; i++) {
		e = s == NULL || config_setting_type(s) == CONFIG_TYPE_STRING ? s :
		    config_setting_get_elem(s, (unsigned)i);
		if ((sec = interval_parse(v[i])) < 0) {
			where = setting_path(e);
			shown = str_for_log(v[i], 40);
			conf_error(conf, e, "%s: bad duration \"%s\" (write \"90s\", "
			    "\"15m\", \"24h\", \"3d\" or \"2w\", at most 365d)", where, shown);
			free(shown);
			free(where);
			continue;
		}
		for (j = 0; j < r->nbefore; j++)
			if (r->before[j] == sec)
				break;
		if (j < r->nbefore) {
			where = setting_path(e);
			conf_error(conf, e, "%s: the same time as an earlier entry "
			    "(remove one)", where);
			free(where);
			continue;
		}
		r->before[r->nbefore++] = sec;
	}
	qsort(r->before, r->nbefore, sizeof(*r->before), long_desc);
	strv_free(v);
}

static void
load_reminders(struct conf *conf, const config_setting_t *root)
{
	struct conf_reminders	*r = &conf->reminders;
	const config_setting_t	*g, *s, *e;
	char			*value = NULL, *where, *v;
	size_t			 i;
	int			 ret, start, end;

	r->overdue_every = 86400;
	r->overdue_max = 3;
	r->max_per_hour = 30;
	r->quiet_start_min = 21 * 60;
	r->quiet_end_min = 8 * 60;
	r->digest_hour = 8;
	g = lookup(conf, root, "reminders", false, &ret);
	if (g != NULL && conf_check_keys(conf, g, reminder_keys) != 0 &&
	    !config_setting_is_group(g))
		g = NULL;
	load_before(conf, g);
	get_interval(conf, g, "overdue_every", &r->overdue_every);
	conf_get_int(conf, g, "overdue_max", false, 0, 100, &r->overdue_max);
	conf_get_int(conf, g, "max_per_hour", false, 1, 10000, &r->max_per_hour);
	if (conf_get_string(conf, g, "quiet_hours", false, &value) == 0) {
		s = member(g, "quiet_hours");
		if (value[0] == '\0')
			r->quiet_start_min = r->quiet_end_min = -1;
		else if (strlen(value) != 11 || value[5] != '-' ||
		    (start = clock_parse(value)) < 0 ||
		    (end = clock_parse(value + 6)) < 0 || start == end) {
			where = setting_path(s);
			v = str_for_log(value, 40);
			conf_error(conf, s, "%s: bad time range \"%s\" (write "
			    "\"HH:MM-HH:MM\" in 24-hour time with different ends, e.g. "
			    "\"21:00-08:00\", or \"\" for none)", where, v);
			free(v);
			free(where);
		} else {
			r->quiet_start_min = start;
			r->quiet_end_min = end;
		}
		free(value);
		value = NULL;
	}
	conf_get_int(conf, g, "digest_hour", false, -1, 23, &r->digest_hour);
	if (conf_get_string(conf, g, "timezone", false, &r->timezone) == 0 &&
	    !timezone_exists(r->timezone)) {
		s = member(g, "timezone");
		where = setting_path(s);
		v = str_for_log(r->timezone, 60);
		conf_error(conf, s, "%s: unknown time zone \"%s\" (use an IANA name "
		    "like \"Europe/Berlin\" or \"America/New_York\"; see "
		    "/usr/share/zoneinfo)", where, v);
		free(v);
		free(where);
	}
	if (r->timezone == NULL)
		r->timezone = xstrdup("UTC");
	if (conf_get_strings(conf, g, "holidays", false, &r->holidays) == 0) {
		s = member(g, "holidays");
		for (i = 0; r->holidays[i] != NULL; i++) {
			if (date_valid(r->holidays[i]))
				continue;
			e = config_setting_type(s) == CONFIG_TYPE_STRING ? s :
			    config_setting_get_elem(s, (unsigned)i);
			where = setting_path(e);
			v = str_for_log(r->holidays[i], 40);
			conf_error(conf, e, "%s: \"%s\" is not a date (write "
			    "\"YYYY-MM-DD\", e.g. \"2026-12-25\")", where, v);
			free(v);
			free(where);
		}
	}
	if (r->holidays == NULL)
		r->holidays = strv_copy(empty_strv);
}

static void
load_domains(struct conf *conf, const config_setting_t *root)
{
	const config_setting_t	*s, *e;
	char			*where, *v;
	size_t			 i;

	if (conf_get_strings(conf, root, "amazon_domains", false, &conf->amazon_domains) != 0)
		goto out;
	s = member(root, "amazon_domains");
	if (conf->amazon_domains[0] == NULL) {
		conf_error(conf, s, "amazon_domains: is empty (remove the setting for "
		    "the built-in list, or list the domains Amazon mails you from)");
		goto out;
	}
	for (i = 0; conf->amazon_domains[i] != NULL; i++) {
		str_lower(conf->amazon_domains[i]);
		if (domain_valid(conf->amazon_domains[i]))
			continue;
		e = config_setting_type(s) == CONFIG_TYPE_STRING ? s :
		    config_setting_get_elem(s, (unsigned)i);
		where = setting_path(e);
		v = str_for_log(conf->amazon_domains[i], 80);
		conf_error(conf, e, "%s: \"%s\" is not a domain name (write it like "
		    "\"amazon.de\": letters, digits, hyphens and dots)", where, v);
		free(v);
		free(where);
	}
out:
	if (conf->amazon_domains == NULL)
		conf->amazon_domains = strv_copy(default_amazon_domains);
}

/*
 * A relative state path is taken from $STATE_DIRECTORY when systemd set it
 * (StateDirectory=; the first of a colon-separated list), else from the
 * directory of the config file.
 */
static void
load_state(struct conf *conf, const config_setting_t *root)
{
	const char	*sd = getenv("STATE_DIRECTORY");
	char		*state = NULL;

	if (get_text(conf, root, "state", false, "give the path of the sqlite "
	    "database", &state) != 0) {
		conf->state_path = xstrdup(DEFAULT_STATE);
		return;
	}
	if (state[0] != '/' && sd != NULL && sd[0] == '/')
		conf->state_path = xasprintf("%.*s/%s", (int)strcspn(sd, ":"), sd, state);
	else
		conf->state_path = conf_path(conf, state);
	free(state);
}

struct conf *
conf_load(const char *path)
{
	struct conf		*conf = xcalloc(1, sizeof(*conf));
	const config_setting_t	*root;
	const char		*file, *text;
	int			 saved;

	conf->path = xstrdup(path);
	conf->dir = dir_of(path);
	conf->poll_interval = DEFAULT_POLL;
	config_init(&conf->cfg);
	config_set_include_dir(&conf->cfg, conf->dir);
	if (config_read_file(&conf->cfg, path) == CONFIG_FALSE) {
		saved = errno;
		file = config_error_file(&conf->cfg);
		text = config_error_text(&conf->cfg);
		if (file == NULL)
			report_at(conf, path, 0, "cannot read the file: %s (check the "
			    "path and its permissions)", strerror(saved));
		else if (text != NULL && strstr(text, "include") != NULL)
			report_at(conf, file, (unsigned)config_error_line(&conf->cfg),
			    "%s (@include paths are relative to %s)", text, conf->dir);
		else
			report_at(conf, file, (unsigned)config_error_line(&conf->cfg),
			    "%s", text != NULL ? text : "parse error");
		conf_free(conf);
		return NULL;
	}
	root = config_root_setting(&conf->cfg);
	conf_check_keys(conf, root, top_keys);
	load_state(conf, root);
	conf_get_int(conf, root, "poll_interval", false, 10, 86400, &conf->poll_interval);
	load_accounts(conf, root);
	load_smtp(conf, root);
	load_tasks(conf, root);
	load_reminders(conf, root);
	load_domains(conf, root);
	return conf;
}

struct conf *
conf_builtin(void)
{
	struct conf	*conf = xcalloc(1, sizeof(*conf));

	conf->path = xstrdup("(built-in defaults)");
	conf->dir = xstrdup("/");
	conf->state_path = xstrdup(DEFAULT_STATE);
	conf->poll_interval = DEFAULT_POLL;
	config_init(&conf->cfg);
	conf->smtp.to = strv_copy(empty_strv);
	conf->reminders.quiet_start_min = conf->reminders.quiet_end_min = -1;
	conf->reminders.digest_hour = -1;
	conf->reminders.holidays = strv_copy(empty_strv);
	conf->amazon_domains = strv_copy(default_amazon_domains);
	return conf;
}

void
conf_account_clear(struct conf_account *a)
{
	free(a->name);
	free(a->host);
	free(a->user);
	free(a->password_file);
	secret_free(a->password);
	free(a->oauth_token_url);
	free(a->oauth_client_id);
	free(a->oauth_scope);
	free(a->oauth_client_secret_file);
	free(a->oauth_refresh_token_file);
	free(a->ca_file);
	strv_free(a->folders);
	free(a->sent_folder);
	strv_free(a->authserv_ids);
}

void
conf_free(struct conf *conf)
{
	size_t	i;

	if (conf == NULL)
		return;
	for (i = 0; i < conf->naccounts; i++)
		conf_account_clear(&conf->accounts[i]);
	free(conf->accounts);
	free(conf->smtp.url);
	free(conf->smtp.user);
	free(conf->smtp.password_file);
	secret_free(conf->smtp.password);
	free(conf->smtp.ca_file);
	free(conf->smtp.from);
	strv_free(conf->smtp.to);
	free(conf->smtp.counsel);
	for (i = 0; i < conf->ndeadlines; i++)
		free(conf->deadlines[i].task);
	free(conf->deadlines);
	free(conf->reminders.before);
	free(conf->reminders.timezone);
	strv_free(conf->reminders.holidays);
	strv_free(conf->amazon_domains);
	config_destroy(&conf->cfg);
	free(conf->src_path);
	free(conf->src_text);
	free(conf->state_path);
	free(conf->dir);
	free(conf->path);
	free(conf);
}
