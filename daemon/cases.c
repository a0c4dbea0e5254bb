/*
 * cases.c — the case model: one case per complaint and marketplace, the
 * playbook tasks with their deadlines, the linking of the correspondence
 * with the rights owner, and the evidence (raw mail kept unchanged).  Also
 * the seller's commands behind ipcase: list, show, done, snooze, close,
 * note and export, and the same commands by mail: a reply to our own mail,
 * obeyed only from smtp.to with the case's token (command.c reads the lines).
 * Our own mail, bounces of it and automatic answers to it never become
 * correspondence.
 */
#include "cases.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <glib.h>
#include <json-c/json.h>
#include <sqlite3.h>

#include "auth.h"
#include "command.h"
#include "log.h"
#include "msgid.h"

#define DAY			86400L
#define TOKENS_MAX		200	/* id-like words looked up per message: hostile mail stays cheap */
#define TEXT_FIELD_MAX		200	/* untrusted text in alerts and tables */

/* PLAYBOOK.md defaults, used when the configuration has no entry for a task. */
static const struct {
	const char	*task;
	long		 seconds;
	int		 business_days;
} default_deadlines[] = {
	{ "review",		DAY,		0 },
	{ "stop_selling",	DAY,		0 },
	{ "evidence",		3 * DAY,	0 },
	{ "contact_owner",	3 * DAY,	0 },
	{ "follow_up",		5 * DAY,	0 },
	{ "follow_up_answer",	0,		1 },
	{ "appeal",		7 * DAY,	0 },
	{ "legal",		3 * DAY,	0 },
	{ "resume",		2 * DAY,	0 },
	{ "prevent",		14 * DAY,	0 },
	{ "await_decision",	14 * DAY,	0 },
	{ "recheck_listing",	3 * DAY,	0 },
};

/* Mail services anyone can sign up for: an address there says nothing about who owns a right. */
static const char *const freemail_domains[] = {
	"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com",
	"msn.com", "yahoo.com", "aol.com", "icloud.com", "me.com", "mail.com",
	"protonmail.com", "proton.me", "web.de", "qq.com", "163.com", "126.com",
	"sina.com", "yandex.ru", "yandex.com", "mail.ru", "zoho.com", "gmx.net",
	"gmx.de", "gmx.com", "t-online.de", "foxmail.com", NULL
};
static const char *const freemail_prefixes[] = {
	"gmx.", "webmail.", "yahoo.", "hotmail.", "outlook.", "live.", NULL
};

/* One ingest call: its inputs and what the helpers need to share. */
struct ingest {
	struct store		*s;
	const struct conf	*conf;
	const struct msg_origin	*origin;
	const struct message	*m;
	const struct verdict	*v;
	time_t			 now;
	time_t			 base;		/* the mail's Date (or now): deadlines start here */
	struct ingest_report	*out;
};

/* A case as the commands show it.  Strings owned. */
struct case_row {
	int64_t	 id;
	char	*case_key, *kind, *direction, *status, *complaint_id, *marketplace;
	char	*infringement_type, *rights_owner_name, *rights_owner_email;
	char	*urgency, *close_reason, *owner_flags, *token;
	int64_t	 deadline_days;		/* -1 when none */
	int64_t	 opened, updated, closed, snoozed_until;	/* 0 when none */
};

/* ---- small helpers ---- */

static void
bind_time(sqlite3_stmt *st, int i, time_t t)
{
	if (t != 0)
		sqlite3_bind_int64(st, i, (sqlite3_int64)t);
	else
		sqlite3_bind_null(st, i);
}

static int64_t
col_int(sqlite3_stmt *st, int i, int64_t dflt)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return dflt;
	return sqlite3_column_int64(st, i);
}

static char *
sha256_hex(const void *data, size_t len)
{
	gchar	*g = g_compute_checksum_for_data(G_CHECKSUM_SHA256,
	    data != NULL ? data : (const void *)"", data != NULL ? len : 0);
	char	*hex;

	if (g == NULL)
		fatalx("sha256: checksum failed");
	hex = xstrdup(g);
	g_free(g);
	return hex;
}

static const char *
domain_of(const char *addr)
{
	const char	*at;

	if (addr == NULL || (at = strrchr(addr, '@')) == NULL || at[1] == '\0')
		return NULL;
	return at + 1;
}

static char *
lower_dup(const char *s)
{
	char	*d = xstrdup(s);

	if (d != NULL)
		for (char *p = d; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
	return d;
}

static bool
domain_is_amazon(const struct conf *conf, const char *domain)
{
	return domain != NULL && domain_in_list(domain, conf->amazon_domains);
}

static bool
domain_is_freemail(const char *domain)
{
	size_t	i;

	if (domain == NULL)
		return false;
	if (domain_in_list(domain, (char *const *)freemail_domains))
		return true;
	for (i = 0; freemail_prefixes[i] != NULL; i++)
		if (strncasecmp(domain, freemail_prefixes[i],
		    strlen(freemail_prefixes[i])) == 0)
			return true;
	return false;
}

/* The seller's own domains (reminder recipients, our From, account logins). */
static bool
domain_is_seller(const struct conf *conf, const char *domain)
{
	const char	*d;
	size_t		 i;

	if (domain == NULL)
		return false;
	for (i = 0; conf->smtp.to != NULL && conf->smtp.to[i] != NULL; i++)
		if ((d = domain_of(conf->smtp.to[i])) != NULL &&
		    strcasecmp(d, domain) == 0)
			return true;
	if ((d = domain_of(conf->smtp.from)) != NULL && strcasecmp(d, domain) == 0)
		return true;
	for (i = 0; i < conf->naccounts; i++)
		if ((d = domain_of(conf->accounts[i].user)) != NULL &&
		    strcasecmp(d, domain) == 0)
			return true;
	return false;
}

/* "freemail", "lookalike", both comma-separated, or NULL; malloc'd. */
static char *
owner_flags_for(const struct conf *conf, const char *email)
{
	const char	*d = domain_of(email);
	bool		 fm = domain_is_freemail(d), la = d != NULL && domain_is_lookalike(d, conf->amazon_domains);

	if (fm && la)
		return xstrdup("freemail,lookalike");
	if (fm)
		return xstrdup("freemail");
	if (la)
		return xstrdup("lookalike");
	return NULL;
}

static char *
random_token(void)
{
	unsigned char	 r[8];
	char		 hex[17];
	size_t		 i;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		fatal("getrandom");
	for (i = 0; i < sizeof(r); i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	return xstrdup(hex);
}

static void
iso_time(time_t t, char *buf, size_t len)
{
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
human_time(time_t t, char *buf, size_t len)
{
	struct tm	tm;

	if (t == 0) {
		snprintf(buf, len, "-");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M", &tm);
}

/* ---- deadlines ---- */

static bool
is_business_day(char *const *holidays, GDateTime *dt)
{
	gchar	*day;
	bool	 holiday = false;
	size_t	 i;

	if (g_date_time_get_day_of_week(dt) >= 6)
		return false;
	if (holidays == NULL)
		return true;
	day = g_date_time_format(dt, "%Y-%m-%d");
	for (i = 0; day != NULL && holidays[i] != NULL; i++)
		if (strcmp(holidays[i], day) == 0)
			holiday = true;
	g_free(day);
	return !holiday;
}

/*
 * base + n business days in the seller's time zone (zone; NULL: UTC): the same
 * clock time on the n-th following day that is neither a Saturday, a Sunday
 * nor one of holidays ("YYYY-MM-DD", may be NULL).
 */
static time_t
business_days_add(const char *zone, char *const *holidays, time_t base, int n)
{
	GTimeZone	*tz = NULL;
	GDateTime	*utc, *dt, *next;
	time_t		 t;

	if (zone != NULL)
		tz = g_time_zone_new_identifier(zone);
	if (tz == NULL)
		tz = g_time_zone_new_utc();
	utc = g_date_time_new_from_unix_utc((gint64)base);
	if (utc == NULL) {
		g_time_zone_unref(tz);
		return base + (time_t)n * DAY;
	}
	dt = g_date_time_to_timezone(utc, tz);
	g_date_time_unref(utc);
	while (n > 0 && dt != NULL) {
		next = g_date_time_add_days(dt, 1);
		g_date_time_unref(dt);
		dt = next;
		if (dt != NULL && is_business_day(holidays, dt))
			n--;
	}
	t = dt != NULL ? (time_t)g_date_time_to_unix(dt) : base + (time_t)n * DAY;
	if (dt != NULL)
		g_date_time_unref(dt);
	g_time_zone_unref(tz);
	return t;
}

/* PLAYBOOK.md's deadline: for the commands, which have no configuration at hand. */
static time_t
deadline_default(const char *task, time_t base)
{
	size_t	i;

	for (i = 0; i < NELEM(default_deadlines); i++)
		if (strcmp(default_deadlines[i].task, task) == 0)
			return default_deadlines[i].business_days > 0 ?
			    business_days_add(NULL, NULL, base,
			    default_deadlines[i].business_days) :
			    base + default_deadlines[i].seconds;
	return base + 3 * DAY;
}

static time_t
deadline_after(const struct conf *conf, const char *task, time_t base)
{
	const struct conf_deadline *d = conf_deadline(conf, task);

	if (d == NULL)
		return deadline_default(task, base);
	if (d->business_days > 0)
		return business_days_add(conf->reminders.timezone,
		    conf->reminders.holidays, base, d->business_days);
	return base + d->seconds;
}

/* ---- rows ---- */

/* Writes one task row with sql (?1 case, ?2 task, ?3 created, ?4 due).  0, or -1 logged. */
static int
task_write(struct store *s, const char *sql, int64_t case_id, const char *task,
    time_t created, time_t due, const char *what)
{
	sqlite3_stmt	*st = store_stmt(s, sql);

	sqlite3_bind_int64(st, 1, case_id);
	sqlite3_bind_text(st, 2, task, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, created);
	sqlite3_bind_int64(st, 4, due);
	return store_step_done(s, st, what);
}

/* A task, created once: a second call for the same case and task changes nothing. */
static int
task_create(struct store *s, int64_t case_id, const char *task, time_t created, time_t due)
{
	return task_write(s, "INSERT OR IGNORE INTO tasks(case_id, task, created,"
	    " due) VALUES (?1, ?2, ?3, ?4)", case_id, task, created, due,
	    "create task");
}

/* A task that is (again) open with a new due time: follow_up moves back and forth. */
static int
task_reopen(struct store *s, int64_t case_id, const char *task, time_t created, time_t due)
{
	return task_write(s, "INSERT INTO tasks(case_id, task, created, due)"
	    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(case_id, task) DO UPDATE SET"
	    " due = excluded.due, status = 'open', done_at = NULL", case_id, task,
	    created, due, "reopen task");
}

/* resume and prevent after a resolution: a cancelled one comes back, a done one stays done. */
static int
task_revive(struct store *s, int64_t case_id, const char *task, time_t created, time_t due)
{
	return task_write(s, "INSERT INTO tasks(case_id, task, created, due)"
	    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(case_id, task) DO UPDATE SET"
	    " due = excluded.due, status = 'open', done_at = NULL"
	    " WHERE tasks.status = 'cancelled'", case_id, task, created, due,
	    "revive task");
}

/* Marks a task done at at with sql (?1 case, ?2 task, ?3 at): 1 when one was, 0 when none, -1 on error. */
static int
task_mark_done(struct store *s, const char *sql, int64_t case_id, const char *task,
    time_t at)
{
	sqlite3_stmt	*st = store_stmt(s, sql);

	sqlite3_bind_int64(st, 1, case_id);
	sqlite3_bind_text(st, 2, task, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, at);
	if (store_step_done(s, st, "finish task") == -1)
		return -1;
	return sqlite3_changes(store_db(s)) > 0 ? 1 : 0;
}

/* 1 when an open task was marked done, 0 when there was none, -1 on error. */
static int
task_finish(struct store *s, int64_t case_id, const char *task, time_t at)
{
	return task_mark_done(s, "UPDATE tasks SET status = 'done', done_at = ?3"
	    " WHERE case_id = ?1 AND task = ?2 AND status = 'open'", case_id, task, at);
}

/*
 * The seller did a task before the case ended although we learn of it only
 * afterwards (a first scan reads INBOX, with Amazon's resolution, before
 * Sent): a task the resolution cancelled is done, dated by the mail.  1 when
 * one was, 0 when not (no such task, or at was not before the end), -1 on
 * error.
 */
static int
task_finish_before_end(struct store *s, int64_t case_id, const char *task, time_t at)
{
	return task_mark_done(s, "UPDATE tasks SET status = 'done', done_at = ?3"
	    " WHERE case_id = ?1 AND task = ?2 AND status = 'cancelled'"
	    " AND EXISTS (SELECT 1 FROM cases c WHERE c.id = ?1 AND c.status <> 'open'"
	    " AND c.closed IS NOT NULL AND ?3 < c.closed)", case_id, task, at);
}

/* When a case ends, what is left to do is moot; the look-back (prevent) is not. */
static int
tasks_cancel_open(struct store *s, int64_t case_id)
{
	sqlite3_stmt	*st = store_stmt(s, "UPDATE tasks SET status = 'cancelled'"
	    " WHERE case_id = ?1 AND status = 'open' AND task <> 'prevent'");

	sqlite3_bind_int64(st, 1, case_id);
	return store_step_done(s, st, "cancel tasks");
}

static int
event_add(struct store *s, int64_t case_id, time_t at, const char *what)
{
	sqlite3_stmt	*st = store_stmt(s, "INSERT INTO events(case_id, at, what)"
	    " VALUES (?1, ?2, ?3)");

	store_bind_id(st, 1, case_id);
	sqlite3_bind_int64(st, 2, at);
	sqlite3_bind_text(st, 3, what, -1, SQLITE_TRANSIENT);
	return store_step_done(s, st, "add event");
}

static int
case_touch(struct store *s, int64_t case_id, time_t now)
{
	sqlite3_stmt	*st = store_stmt(s, "UPDATE cases SET updated = ?2"
	    " WHERE id = ?1");

	sqlite3_bind_int64(st, 1, case_id);
	sqlite3_bind_int64(st, 2, now);
	return store_step_done(s, st, "touch case");
}

/* Status and direction of a case; -1 on error or when it does not exist. */
static int
case_state(struct store *s, int64_t case_id, char *status, size_t slen,
    bool *outbound)
{
	sqlite3_stmt	*st = store_stmt(s, "SELECT status, direction FROM cases"
	    " WHERE id = ?1");
	int		 rc, ret = -1;

	sqlite3_bind_int64(st, 1, case_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(status, slen, "%s", sqlite3_column_text(st, 0));
		*outbound = strcmp((const char *)sqlite3_column_text(st, 1),
		    "outbound") == 0;
		ret = 0;
	} else if (rc != SQLITE_DONE)
		store_db_warn(s, "case state");
	sqlite3_reset(st);
	return ret;
}

static bool
case_is_open(struct store *s, int64_t case_id)
{
	char	status[32];
	bool	outbound;

	return case_state(s, case_id, status, sizeof(status), &outbound) == 0 &&
	    strcmp(status, "open") == 0;
}

/* Ends a case as Amazon decided: open tasks cancelled, then resume and prevent. */
static int
case_resolve(struct store *s, const struct conf *conf, int64_t case_id,
    const char *status, time_t base, time_t now, const char *why)
{
	sqlite3_stmt	*st = store_stmt(s, "UPDATE cases SET status = ?2,"
	    " closed = ?3, updated = ?4 WHERE id = ?1");

	/* Each write to cases, messages and case_complaints tells the candidate index. */
	store_changed(s);
	sqlite3_bind_int64(st, 1, case_id);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, base);
	sqlite3_bind_int64(st, 4, now);
	if (store_step_done(s, st, "resolve case") == -1 ||
	    tasks_cancel_open(s, case_id) == -1 ||
	    task_revive(s, case_id, "resume", now,
	    deadline_after(conf, "resume", base)) == -1 ||
	    task_revive(s, case_id, "prevent", now,
	    deadline_after(conf, "prevent", base)) == -1 ||
	    event_add(s, case_id, base, why) == -1)
		return -1;
	return 0;
}

static int
case_add_asins(struct store *s, int64_t case_id, char *const *asins, int *added)
{
	sqlite3_stmt	*st;
	size_t		 i;

	for (i = 0; asins != NULL && asins[i] != NULL; i++) {
		st = store_stmt(s, "INSERT OR IGNORE INTO case_asins(case_id, asin)"
		    " VALUES (?1, ?2)");
		sqlite3_bind_int64(st, 1, case_id);
		sqlite3_bind_text(st, 2, asins[i], -1, SQLITE_TRANSIENT);
		if (store_step_done(s, st, "add ASIN") == -1)
			return -1;
		if (added != NULL)
			*added += sqlite3_changes(store_db(s));
	}
	return 0;
}

static int
case_add_complaint(struct store *s, int64_t case_id, const char *complaint_id)
{
	sqlite3_stmt	*st;

	if (complaint_id == NULL || *complaint_id == '\0')
		return 0;
	store_changed(s);
	st = store_stmt(s, "INSERT OR IGNORE INTO case_complaints"
	    "(case_id, complaint_id) VALUES (?1, ?2)");
	sqlite3_bind_int64(st, 1, case_id);
	sqlite3_bind_text(st, 2, complaint_id, -1, SQLITE_TRANSIENT);
	return store_step_done(s, st, "add complaint id");
}

/* Union of the verdict's ASINs and complaint ids into the case; empty fields filled. */
static int
case_merge_verdict(struct ingest *ix, int64_t case_id, int *new_asins)
{
	const struct verdict *v = ix->v;
	sqlite3_stmt	*st;
	char		*email = lower_dup(v->rights_owner_email);
	char		*flags = owner_flags_for(ix->conf, email);
	size_t		 i;
	int		 ret = -1;

	store_changed(ix->s);
	st = store_stmt(ix->s, "UPDATE cases SET"
	    " complaint_id = coalesce(complaint_id, ?2),"
	    " marketplace = coalesce(marketplace, ?3),"
	    " infringement_type = coalesce(infringement_type, ?4),"
	    " rights_owner_name = coalesce(rights_owner_name, ?5),"
	    " owner_flags = CASE WHEN rights_owner_email IS NULL THEN ?7"
	    "  ELSE owner_flags END,"
	    " rights_owner_email = coalesce(rights_owner_email, ?6),"
	    " deadline_days = coalesce(deadline_days, ?8),"
	    " updated = ?9 WHERE id = ?1");
	sqlite3_bind_int64(st, 1, case_id);
	store_bind_text(st, 2, v->complaint_id);
	store_bind_text(st, 3, v->marketplace);
	store_bind_text(st, 4, v->infringement_type);
	store_bind_text(st, 5, v->rights_owner_name);
	store_bind_text(st, 6, email);
	store_bind_text(st, 7, flags);
	if (v->deadline_days > 0)
		sqlite3_bind_int64(st, 8, v->deadline_days);
	else
		sqlite3_bind_null(st, 8);
	sqlite3_bind_int64(st, 9, ix->now);
	if (store_step_done(ix->s, st, "merge case") == -1)
		goto out;
	if (case_add_complaint(ix->s, case_id, v->complaint_id) == -1)
		goto out;
	for (i = 0; v->complaint_ids != NULL && v->complaint_ids[i] != NULL; i++)
		if (case_add_complaint(ix->s, case_id, v->complaint_ids[i]) == -1)
			goto out;
	if (case_add_asins(ix->s, case_id, v->asins, new_asins) == -1)
		goto out;
	ret = 0;
out:
	free(flags);
	free(email);
	return ret;
}

/* A new case row from the verdict.  Returns its id, or -1. */
static int64_t
case_insert(struct ingest *ix, const char *key, const char *kind, bool outbound)
{
	const struct verdict *v = ix->v;
	sqlite3_stmt	*st;
	char		*email = lower_dup(v->rights_owner_email);
	char		*flags = owner_flags_for(ix->conf, email);
	char		*token = random_token();
	int64_t		 id = -1;

	store_changed(ix->s);
	st = store_stmt(ix->s, "INSERT INTO cases(case_key, kind, direction,"
	    " complaint_id, marketplace, infringement_type, rights_owner_name,"
	    " rights_owner_email, deadline_days, urgency, token, opened, updated,"
	    " owner_flags) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
	    " ?12, ?13, ?14)");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, outbound ? "outbound" : "inbound", -1, SQLITE_STATIC);
	store_bind_text(st, 4, v->complaint_id);
	store_bind_text(st, 5, v->marketplace);
	store_bind_text(st, 6, v->infringement_type);
	store_bind_text(st, 7, v->rights_owner_name);
	store_bind_text(st, 8, email);
	if (v->deadline_days > 0)
		sqlite3_bind_int64(st, 9, v->deadline_days);
	else
		sqlite3_bind_null(st, 9);
	sqlite3_bind_text(st, 10, v->kind == KIND_ACCOUNT_WARNING ? "high" :
	    "normal", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, token, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 12, ix->base);
	sqlite3_bind_int64(st, 13, ix->now);
	store_bind_text(st, 14, flags);
	if (store_step_done(ix->s, st, "open case") == 0)
		id = sqlite3_last_insert_rowid(store_db(ix->s));
	free(token);
	free(flags);
	free(email);
	if (id > 0 && case_merge_verdict(ix, id, NULL) == -1)
		id = -1;
	return id;
}

/*
 * Records the message (raw bytes and their hash as evidence) and where it
 * was found.  case_id 0 stores it without a case (phishing).
 */
static int
message_record(struct ingest *ix, int64_t case_id, const char *role, const char *kind)
{
	const struct message *m = ix->m;
	sqlite3_stmt	*st;
	char		*hash = sha256_hex(m->raw, m->raw_len);
	int64_t		 row;
	int		 ret = -1;

	store_changed(ix->s);
	st = store_stmt(ix->s, "INSERT INTO messages(dedupe_key, message_id,"
	    " case_id, role, kind, from_addr, subject, date, received, sha256, raw)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
	sqlite3_bind_text(st, 1, m->dedupe_key, -1, SQLITE_TRANSIENT);
	store_bind_text(st, 2, m->message_id);
	store_bind_id(st, 3, case_id);
	sqlite3_bind_text(st, 4, role, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, kind, -1, SQLITE_STATIC);
	store_bind_text(st, 6, m->from_addr);
	store_bind_text(st, 7, m->subject);
	bind_time(st, 8, m->date);
	sqlite3_bind_int64(st, 9, ix->now);
	sqlite3_bind_text(st, 10, hash, -1, SQLITE_TRANSIENT);
	if (m->raw != NULL)
		sqlite3_bind_blob64(st, 11, m->raw, m->raw_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 11);
	if (store_step_done(ix->s, st, "record message") == -1)
		goto out;
	row = sqlite3_last_insert_rowid(store_db(ix->s));
	if (ix->origin != NULL && ix->origin->account != NULL &&
	    ix->origin->folder != NULL) {
		st = store_stmt(ix->s, "INSERT OR IGNORE INTO message_locations"
		    "(message_id, account, folder, uidvalidity, uid)"
		    " VALUES (?1, ?2, ?3, ?4, ?5)");
		sqlite3_bind_int64(st, 1, row);
		sqlite3_bind_text(st, 2, ix->origin->account, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, ix->origin->folder, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, ix->origin->uidvalidity);
		sqlite3_bind_int64(st, 5, ix->origin->uid);
		if (store_step_done(ix->s, st, "record location") == -1)
			goto out;
	}
	ret = 0;
out:
	free(hash);
	return ret;
}

/*
 * An alert for the seller, sent by schedule.c.  The outbox Message-ID is
 * derived from the mail that caused it, so a rescan or a retry after a
 * crash cannot alert twice.
 */
static int
alert_add(struct ingest *ix, int64_t case_id, const char *text)
{
	const char	*domain = domain_of(ix->conf->smtp.from);
	sqlite3_stmt	*st;
	char		*hash = sha256_hex(ix->m->dedupe_key, strlen(ix->m->dedupe_key));
	char		*msgid, *token = NULL;
	int		 ret;

	/* An alert about a case carries its token: the seller may answer it with commands. */
	if (case_id > 0) {
		st = store_stmt(ix->s, "SELECT token FROM cases WHERE id = ?1");
		sqlite3_bind_int64(st, 1, case_id);
		if (sqlite3_step(st) == SQLITE_ROW)
			token = store_column_dup(st, 0);
		sqlite3_reset(st);
	}
	msgid = xasprintf("alert.%.32s%s%s@%s", hash, token != NULL ? "." : "",
	    token != NULL ? token : "", domain != NULL ? domain : "ipcased.invalid");
	free(token);
	st = store_stmt(ix->s, "INSERT OR IGNORE INTO outbox(kind, case_id, task,"
	    " threshold, message_id, created, next_attempt, alert_text)"
	    " VALUES ('alert', ?1, NULL, ?2, ?3, ?4, ?4, ?5)");
	store_bind_id(st, 1, case_id);
	sqlite3_bind_text(st, 2, ix->m->dedupe_key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, msgid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, ix->now);
	sqlite3_bind_text(st, 5, text, -1, SQLITE_TRANSIENT);
	ret = store_step_done(ix->s, st, "queue alert");
	free(msgid);
	free(hash);
	if (ret == 0)
		ix->out->alert = true;
	return ret;
}

/* ---- finding the case a message belongs to ---- */

/* A case for this complaint id: same marketplace, or one of the two unknown. */
static int
case_find_complaint(struct store *s, const char *complaint_id,
    const char *marketplace, bool outbound, int64_t *case_id)
{
	sqlite3_stmt	*st = store_stmt(s, "SELECT c.id FROM case_complaints cc"
	    " JOIN cases c ON c.id = cc.case_id WHERE cc.complaint_id = ?1"
	    " AND c.direction = ?3 AND (c.marketplace IS NULL OR ?2 IS NULL"
	    " OR c.marketplace = ?2) ORDER BY (c.marketplace IS ?2) DESC,"
	    " (c.status = 'open') DESC, c.id LIMIT 1");

	sqlite3_bind_text(st, 1, complaint_id, -1, SQLITE_TRANSIENT);
	store_bind_text(st, 2, marketplace);
	sqlite3_bind_text(st, 3, outbound ? "outbound" : "inbound", -1, SQLITE_STATIC);
	return store_step_int(s, st, case_id, "find complaint");
}

/* Follow-ups may lack the marketplace or come from another: any case with the id. */
static int
case_find_any_complaint(struct store *s, const char *complaint_id,
    const char *marketplace, int64_t *case_id)
{
	sqlite3_stmt	*st = store_stmt(s, "SELECT c.id FROM case_complaints cc"
	    " JOIN cases c ON c.id = cc.case_id WHERE cc.complaint_id = ?1"
	    " ORDER BY (c.marketplace IS ?2) DESC, (c.status = 'open') DESC,"
	    " c.updated DESC LIMIT 1");

	sqlite3_bind_text(st, 1, complaint_id, -1, SQLITE_TRANSIENT);
	store_bind_text(st, 2, marketplace);
	return store_step_int(s, st, case_id, "find complaint");
}

/* The case holding a message with this Message-ID. */
static int
case_find_thread(struct store *s, const char *message_id, int64_t *case_id)
{
	sqlite3_stmt	*st = store_stmt(s, "SELECT case_id FROM messages"
	    " WHERE message_id = ?1 AND case_id IS NOT NULL"
	    " ORDER BY id DESC LIMIT 1");

	sqlite3_bind_text(st, 1, message_id, -1, SQLITE_TRANSIENT);
	return store_step_int(s, st, case_id, "find thread");
}

/* A growing list of case ids, each once, in the order found. */
struct case_ids {
	int64_t	*v;
	size_t	 n;
};

static void
case_ids_add(struct case_ids *ids, int64_t id)
{
	size_t	i;

	for (i = 0; i < ids->n; i++)
		if (ids->v[i] == id)
			return;
	ids->v = xreallocarray(ids->v, ids->n + 1, sizeof(*ids->v));
	ids->v[ids->n++] = id;
}

/* The position of id in ids, or -1. */
static ssize_t
case_ids_find(const struct case_ids *ids, int64_t id)
{
	size_t	i;

	for (i = 0; i < ids->n; i++)
		if (ids->v[i] == id)
			return (ssize_t)i;
	return -1;
}

/*
 * The cases whose rights owner has this address, or (when the domain is not
 * a free-mail service, where strangers share it) an address at the same
 * domain, appended to ids: an exact address first, then open cases, then
 * the newest.  0, or -1 on error.
 */
static int
owner_cases(struct ingest *ix, const char *addr, struct case_ids *ids)
{
	sqlite3_stmt	*st;
	char		*lower = lower_dup(addr);
	const char	*d = domain_of(lower);
	int		 rc;

	if (d != NULL && (domain_is_freemail(d) || domain_is_amazon(ix->conf, d) ||
	    domain_is_seller(ix->conf, d)))
		d = NULL;
	st = store_stmt(ix->s, "SELECT id FROM cases WHERE"
	    " rights_owner_email IS NOT NULL AND"
	    " (rights_owner_email = ?1 OR (?2 IS NOT NULL"
	    "  AND instr(coalesce(owner_flags, ''), 'freemail') = 0"
	    "  AND substr(rights_owner_email, instr(rights_owner_email, '@') + 1) = ?2))"
	    " ORDER BY (rights_owner_email = ?1) DESC, (status = 'open') DESC,"
	    " updated DESC, id DESC");
	store_bind_text(st, 1, lower);
	store_bind_text(st, 2, d);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		case_ids_add(ids, sqlite3_column_int64(st, 0));
	if (rc != SQLITE_DONE)
		store_db_warn(ix->s, "find rights owner");
	sqlite3_reset(st);
	free(lower);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Is addr the rights owner of this case (the same address, or the same non-free-mail domain)? */
static bool
addr_is_owner(struct ingest *ix, int64_t case_id, const char *addr)
{
	sqlite3_stmt	*st;
	const char	*owner, *flags, *od, *ad;
	char		*lower;
	bool		 yes = false;

	if (addr == NULL)
		return false;
	lower = lower_dup(addr);
	st = store_stmt(ix->s, "SELECT rights_owner_email, owner_flags FROM cases"
	    " WHERE id = ?1");
	sqlite3_bind_int64(st, 1, case_id);
	if (sqlite3_step(st) == SQLITE_ROW &&
	    (owner = (const char *)sqlite3_column_text(st, 0)) != NULL) {
		flags = (const char *)sqlite3_column_text(st, 1);
		od = domain_of(owner);
		ad = domain_of(lower);
		if (strcmp(owner, lower) == 0)
			yes = true;
		else if (od != NULL && ad != NULL && strcmp(od, ad) == 0 &&
		    (flags == NULL || strstr(flags, "freemail") == NULL) &&
		    !domain_is_freemail(ad) && !domain_is_amazon(ix->conf, ad) &&
		    !domain_is_seller(ix->conf, ad))
			yes = true;
	}
	sqlite3_reset(st);
	free(lower);
	return yes;
}

static bool
message_is_bulk(const struct message *m)
{
	return m->has_list_id || (m->precedence != NULL &&
	    (strcmp(m->precedence, "bulk") == 0 || strcmp(m->precedence, "list") == 0 ||
	    strcmp(m->precedence, "junk") == 0));
}

static bool
message_is_autoreply(const struct message *m)
{
	return m->auto_submitted != NULL && strcmp(m->auto_submitted, "no") != 0;
}

static bool
addr_is_mailer_daemon(const char *addr)
{
	size_t	n;

	if (addr == NULL)
		return false;
	n = strcspn(addr, "@");
	return (n == 13 && strncasecmp(addr, "mailer-daemon", 13) == 0) ||
	    (n == 10 && strncasecmp(addr, "postmaster", 10) == 0);
}

/* Case-insensitive search in bytes that may hold NULs. */
static bool
bytes_contain(const char *hay, size_t len, const char *needle)
{
	size_t	n = strlen(needle), i;

	if (hay == NULL || n == 0 || len < n)
		return false;
	for (i = 0; i + n <= len; i++)
		if (strncasecmp(hay + i, needle, n) == 0)
			return true;
	return false;
}

/* A delivery status notification: from the mailer daemon, or multipart/report with delivery-status. */
static bool
message_is_bounce(const struct message *m)
{
	if (addr_is_mailer_daemon(m->from_addr))
		return true;
	if (m->content_type == NULL || strcmp(m->content_type, "multipart/report") != 0)
		return false;
	return bytes_contain(m->raw, m->raw_len, "delivery-status") ||
	    bytes_contain(m->text, m->text_len, "delivery-status");
}

/* ---- our own mail, and automatic mail about it ---- */

/* One of our outbox rows that a message answers. */
struct our_mail {
	int64_t	 case_id;	/* 0 when none: a digest, a phishing alert */
	char	*task;		/* the reminder's task; NULL unless a task reminder */
	char	*message_id;	/* ours, as sent */
};

static void
our_mail_clear(struct our_mail *om)
{
	free(om->task);
	free(om->message_id);
	memset(om, 0, sizeof(*om));
}

/*
 * Does m answer mail we sent: is an id of its In-Reply-To or References
 * (the newest first) one of our outbox ids?  1 and *om filled, 0 no, -1 on
 * a database error.
 */
static int
our_mail_find(struct store *s, const struct message *m, struct our_mail *om)
{
	sqlite3_stmt	*st;
	const char	*id;
	size_t		 n = strv_len(m->references), i;
	int		 rc;

	memset(om, 0, sizeof(*om));
	for (i = 0; i <= n; i++) {
		id = i == 0 ? m->in_reply_to : m->references[n - i];
		if (id == NULL)
			continue;
		st = store_stmt(s, "SELECT coalesce(case_id, 0), CASE WHEN kind = 'task'"
		    " THEN task END, message_id FROM outbox WHERE message_id = ?1");
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			om->case_id = sqlite3_column_int64(st, 0);
			om->task = store_column_dup(st, 1);
			om->message_id = store_column_dup(st, 2);
			sqlite3_reset(st);
			return 1;
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			store_db_warn(s, "find our mail");
			return -1;
		}
	}
	return 0;
}

/*
 * Why m was sent by a machine, not a person (RFC 3834 and what mail
 * systems do in practice); NULL when it looks written by hand.
 */
static const char *
message_automatic(const struct message *m)
{
	static const char *const flags[] = {
		"X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autogenerated",
	};
	char	*v;
	size_t	 i;

	if (message_is_autoreply(m))
		return "Auto-Submitted";
	if (message_is_bulk(m))
		return "Precedence or List headers";
	if (m->return_path != NULL && *m->return_path == '\0')
		return "empty Return-Path";
	if (addr_is_mailer_daemon(m->from_addr))
		return "from the mailer daemon";
	if (m->content_type != NULL && strcmp(m->content_type, "multipart/report") == 0)
		return "a delivery or read report";
	for (i = 0; i < NELEM(flags); i++) {
		if ((v = message_header(m, flags[i])) != NULL) {
			free(v);
			return flags[i];
		}
	}
	return NULL;
}

/* Is addr one of the seller's configured addresses (smtp.to)?  Returns that entry, or NULL. */
static const char *
seller_address(const struct conf *conf, const char *addr)
{
	size_t	i;

	for (i = 0; addr != NULL && conf->smtp.to != NULL && conf->smtp.to[i] != NULL; i++)
		if (strcasecmp(conf->smtp.to[i], addr) == 0)
			return conf->smtp.to[i];
	return NULL;
}

/*
 * Is m mail we sent, come back (the reminders go to the mailbox we watch,
 * and some providers file what their SMTP sends in Sent)?  Our headers, our
 * Message-ID, or our From address on automatic mail: smtp.from may be an
 * address the seller writes from by hand too.  1 yes, 0 no, -1 on a
 * database error.
 */
static int
mail_is_ours(struct ingest *ix)
{
	static const char *const ours[] = {
		"X-Ipcased-Kind", "X-Ipcased-Case", "X-Ipcased-Token",
	};
	const struct message *m = ix->m;
	const char	*from = ix->conf->smtp.from;
	sqlite3_stmt	*st;
	char		*v;
	size_t		 i;

	for (i = 0; i < NELEM(ours); i++) {
		if ((v = message_header(m, ours[i])) != NULL) {
			free(v);
			return 1;
		}
	}
	if (m->from_addr != NULL && from != NULL && strcasecmp(m->from_addr, from) == 0 &&
	    message_is_autoreply(m))
		return 1;
	if (m->message_id == NULL)
		return 0;
	st = store_stmt(ix->s, "SELECT 1 FROM outbox WHERE message_id = ?1");
	sqlite3_bind_text(st, 1, m->message_id, -1, SQLITE_TRANSIENT);
	return store_step_int(ix->s, st, NULL, "find our mail");
}

/*
 * Mail that must never join a case as correspondence although it quotes
 * one (our reminders cite complaint ids, ASINs and the rights owner's
 * address): our own mail come back, a bounce of it, and an automatic
 * answer to it.  Sets *why.  1 yes, 0 no, -1 on a database error.
 */
static int
mail_about_ours(struct ingest *ix, const char **why)
{
	const struct message *m = ix->m;
	int	rc;

	if ((rc = mail_is_ours(ix)) != 0) {
		*why = "our own mail came back";
		return rc;
	}
	if (message_is_bounce(m) && (bytes_contain(m->raw, m->raw_len, "X-Ipcased-") ||
	    bytes_contain(m->text, m->text_len, "X-Ipcased-"))) {
		*why = "a bounce of our own mail";
		return 1;
	}
	if (message_automatic(m) != NULL && m->subject != NULL &&
	    bytes_contain(m->subject, strlen(m->subject), "[ipcased")) {
		*why = "an automatic answer to our own mail";
		return 1;
	}
	return 0;
}

/* Appends w (taken, not copied) to the NULL-terminated vector *v of *n words. */
static void
words_push(char ***v, size_t *n, char *w)
{
	*v = xreallocarray(*v, *n + 2, sizeof(**v));
	(*v)[(*n)++] = w;
	(*v)[*n] = NULL;
}

/*
 * Words that may be complaint ids (8 to 20 digits) or ASINs (10 letters and
 * digits starting with B0), standing alone, from text.  Appended to *words
 * (at most TOKENS_MAX in all).
 */
static void
collect_tokens(const char *text, size_t len, char ***words, size_t *n)
{
	size_t	i = 0, j, k;

	if (text == NULL)
		return;
	while (i < len && *n < TOKENS_MAX) {
		if (!isalnum((unsigned char)text[i])) {
			i++;
			continue;
		}
		for (j = i; j < len && isalnum((unsigned char)text[j]); j++)
			;
		k = j - i;
		bool digits = true;
		for (size_t q = i; q < j; q++)
			if (!isdigit((unsigned char)text[q]))
				digits = false;
		if ((digits && k >= 8 && k <= 20) || (k == 10 &&
		    toupper((unsigned char)text[i]) == 'B' && text[i + 1] == '0')) {
			char	*w = xstrndup(text + i, k);

			for (char *p = w; *p != '\0'; p++)
				*p = (char)toupper((unsigned char)*p);
			words_push(words, n, w);
		}
		i = j;
	}
}

/*
 * A case citing one of the words as complaint id, else one citing it as
 * ASIN; open cases first, then the newest.  With among, only those cases
 * count, the earlier in among the better.  1 and *case_id, 0 when none, -1
 * on error.
 */
static int
case_find_words(struct store *s, char *const *words, const struct case_ids *among,
    int64_t *case_id)
{
	static const char *const sql[] = {
		"SELECT c.id FROM case_complaints cc JOIN cases c"
		" ON c.id = cc.case_id WHERE cc.complaint_id = ?1"
		" ORDER BY (c.status = 'open') DESC, c.updated DESC, c.id DESC",
		"SELECT c.id FROM case_asins a JOIN cases c"
		" ON c.id = a.case_id WHERE a.asin = ?1"
		" ORDER BY (c.status = 'open') DESC, c.updated DESC, c.id DESC",
	};
	sqlite3_stmt	*st;
	int64_t		 id, best;
	ssize_t		 pos, best_pos;
	size_t		 q, i;
	int		 rc;

	for (q = 0; q < NELEM(sql); q++) {
		for (i = 0; words != NULL && words[i] != NULL; i++) {
			st = store_stmt(s, sql[q]);
			sqlite3_bind_text(st, 1, words[i], -1, SQLITE_TRANSIENT);
			best = 0;
			best_pos = -1;
			while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
				id = sqlite3_column_int64(st, 0);
				if (among == NULL) {
					best = id;
					break;
				}
				pos = case_ids_find(among, id);
				if (pos >= 0 && (best_pos < 0 || pos < best_pos)) {
					best = id;
					best_pos = pos;
				}
			}
			sqlite3_reset(st);
			if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
				store_db_warn(s, q == 0 ? "find complaint id" : "find ASIN");
				return -1;
			}
			if (best > 0) {
				*case_id = best;
				return 1;
			}
		}
	}
	return 0;
}

/* The first case (newest id first) holding a message with one of ids.  1, 0 or -1. */
static int
case_find_thread_any(struct store *s, char *const *ids, int64_t *case_id)
{
	size_t	i;
	int	rc;

	for (i = 0; ids != NULL && ids[i] != NULL; i++)
		if ((rc = case_find_thread(s, ids[i], case_id)) != 0)
			return rc;
	return 0;
}

/* Words that may be complaint ids or ASINs: the verdict's ids, then the subject's and the text's. */
static char **
message_words(const struct ingest *ix)
{
	const struct message *m = ix->m;
	char	**words = NULL;
	size_t	  i, n = 0;

	for (i = 0; ix->v->complaint_ids != NULL && ix->v->complaint_ids[i] != NULL &&
	    n < TOKENS_MAX; i++)
		words_push(&words, &n, xstrdup(ix->v->complaint_ids[i]));
	if (m->subject != NULL)
		collect_tokens(m->subject, strlen(m->subject), &words, &n);
	collect_tokens(m->text, m->text_len, &words, &n);
	return words;
}

#define RETURNED_SCAN_MAX	(1024 * 1024)	/* bytes of a bounce searched for returned headers */
#define RETURNED_IDS_MAX	(2 * MSGID_MAX_REFS)

/* What a bounce says about the message that came back. */
struct returned {
	char	**msgids;	/* its Message-ID(s) */
	char	**parents;	/* its In-Reply-To, then its References newest first */
	char	**words;	/* id-like words of its Subject */
	size_t	  nwords;
};

static void
returned_clear(struct returned *r)
{
	strv_free(r->msgids);
	strv_free(r->parents);
	strv_free(r->words);
	memset(r, 0, sizeof(*r));
}

/* Appends the ids of list (NULL-terminated) to *v, newest first when reverse; takes none of list. */
static void
ids_append(char ***v, char *const *list, bool reverse)
{
	size_t	n = strv_len(*v), k = strv_len(list), i;

	for (i = 0; i < k && n < RETURNED_IDS_MAX; i++)
		words_push(v, &n, xstrdup(list[reverse ? k - 1 - i : i]));
}

/* Skips the quoting of a line ("> ", ">>"); returns where its own text starts. */
static const char *
unquote(const char *p, const char *end)
{
	while (p < end && (*p == '>' || *p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* Does the text start like a header field ("Name:")?  Tells a quoted field from a continuation. */
static bool
looks_like_field(const char *p, const char *end)
{
	const char	*q = p;

	while (q < end && (isalnum((unsigned char)*q) || *q == '-'))
		q++;
	return q > p && q < end && *q == ':';
}

/*
 * Reads header fields of a returned or quoted message out of buf: lines
 * (quoting ignored) that start with Message-ID:, In-Reply-To:, References:
 * or Subject:, with their continuation lines.  A DSN's text/rfc822-headers
 * or message/rfc822 part and a bounce that quotes the message in its text
 * all look like this.
 */
static void
returned_scan(const char *buf, size_t len, struct returned *r)
{
	static const char *const names[] = {
		"message-id:", "in-reply-to:", "references:", "subject:"
	};
	const char	*p, *end, *nl, *own, *vend, *from;
	struct buf	 value = { 0 };
	char		**list, *id;
	size_t		 i, k;

	if (buf == NULL)
		return;
	end = buf + (len < RETURNED_SCAN_MAX ? len : RETURNED_SCAN_MAX);
	for (p = buf; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		own = unquote(p, nl);
		for (i = 0; i < NELEM(names); i++)
			if ((size_t)(nl - own) >= strlen(names[i]) &&
			    strncasecmp(own, names[i], strlen(names[i])) == 0)
				break;
		if (i == NELEM(names))
			continue;
		/* The value and its continuation lines (folded, maybe quoted). */
		buf_free(&value);
		from = own + strlen(names[i]);
		for (k = 0; ; k++) {
			vend = nl;
			if (vend > from && vend[-1] == '\r')
				vend--;
			if (k > 0)
				buf_puts(&value, " ");
			buf_append(&value, from, (size_t)(vend - from));
			if (nl >= end || k >= 20)
				break;
			p = nl + 1;
			if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
				nl = end;
			from = p;
			while (from < nl && *from == '>')
				from++;
			if (from == nl || (*from != ' ' && *from != '\t') ||
			    unquote(from, nl) == nl || (from > p &&
			    looks_like_field(unquote(from, nl), nl))) {
				/* Not a continuation: read this line again as a field. */
				nl = p - 1;
				break;
			}
		}
		buf_append(&value, "", 0);
		if (i == 0) {
			if ((id = msgid_normalize(value.data)) != NULL) {
				char	*one[] = { id, NULL };

				ids_append(&r->msgids, one, false);
				free(id);
			}
		} else if (i == 3) {
			if (r->nwords < TOKENS_MAX)
				collect_tokens(value.data, strlen(value.data), &r->words,
				    &r->nwords);
		} else {
			list = msgid_parse_list(value.data);
			/* In-Reply-To names the parent; References, oldest first, the ancestors. */
			ids_append(&r->parents, list, i == 2);
			strv_free(list);
		}
	}
	buf_free(&value);
}

/* The body of raw: what follows the first empty line. */
static const char *
raw_body(const char *raw, size_t len, size_t *body_len)
{
	const char	*p;
	size_t		 i;

	*body_len = 0;
	if (raw == NULL)
		return NULL;
	for (i = 0; i + 1 < len; i++) {
		if (raw[i] != '\n')
			continue;
		p = raw + i + 1;
		if (p < raw + len && *p == '\n') {
			*body_len = len - (i + 2);
			return p + 1;
		}
		if (p + 1 < raw + len && p[0] == '\r' && p[1] == '\n') {
			*body_len = len - (i + 3);
			return p + 2;
		}
	}
	return NULL;
}

/*
 * A bounce quoting a rights owner's address: the case whose owner it is,
 * open cases first, then the newest.
 */
static int
case_find_quoted_owner(struct ingest *ix, int64_t *case_id)
{
	const struct message *m = ix->m;
	sqlite3_stmt	*st = store_stmt(ix->s, "SELECT id, rights_owner_email FROM cases"
	    " WHERE rights_owner_email IS NOT NULL"
	    " ORDER BY (status = 'open') DESC, updated DESC, id DESC");
	const char	*owner;
	int		 rc, ret = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		owner = (const char *)sqlite3_column_text(st, 1);
		if (bytes_contain(m->text, m->text_len, owner) ||
		    bytes_contain(m->forwarded_text, m->forwarded_len, owner) ||
		    bytes_contain(m->raw, m->raw_len, owner)) {
			*case_id = sqlite3_column_int64(st, 0);
			ret = 1;
			break;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_db_warn(ix->s, "find quoted owner");
		ret = -1;
	}
	sqlite3_reset(st);
	return ret;
}

/*
 * The case a bounce belongs to: the returned message's own Message-ID, then
 * its In-Reply-To and References, matched against the messages of the cases
 * (the returned headers in the message/rfc822 or text/rfc822-headers part,
 * or quoted in the text); then a complaint id or ASIN it cites; then, last,
 * a rights owner's address it quotes (the same owner may have two cases).
 */
static int
case_find_bounce(struct ingest *ix, int64_t *case_id)
{
	const struct message *m = ix->m;
	struct returned	 r;
	const char	*body;
	char		**words;
	size_t		 body_len, n;
	int		 rc;

	memset(&r, 0, sizeof(r));
	body = raw_body(m->raw, m->raw_len, &body_len);
	returned_scan(body, body_len, &r);
	returned_scan(m->text, m->text_len, &r);
	returned_scan(m->forwarded_text, m->forwarded_len, &r);
	if ((rc = case_find_thread_any(ix->s, r.msgids, case_id)) != 0 ||
	    (rc = case_find_thread_any(ix->s, r.parents, case_id)) != 0)
		goto out;
	words = message_words(ix);
	n = strv_len(words);
	for (size_t i = 0; r.words != NULL && r.words[i] != NULL && n < TOKENS_MAX; i++)
		words_push(&words, &n, xstrdup(r.words[i]));
	collect_tokens(m->forwarded_text, m->forwarded_len, &words, &n);
	rc = case_find_words(ix->s, words, NULL, case_id);
	strv_free(words);
	if (rc == 0)
		rc = case_find_quoted_owner(ix, case_id);
out:
	returned_clear(&r);
	return rc;
}

/*
 * The case a message belongs to, as correspondence: (a) it answers a
 * message of a case (In-Reply-To, References); (b) a bounce: see
 * case_find_bounce(); (c) it is from (or, for the seller's own mail, to)
 * a rights owner or a colleague at the same domain: when that owner has
 * several cases, the one whose complaint id (or ASIN) the mail cites, and
 * only without one the newest; (d) it cites a complaint id or an ASIN,
 * unless it is Amazon's, the seller's own circle's or bulk mail (a
 * newsletter or a forwarded copy must not join).
 * 1 and *case_id, 0 when none, -1 on error.
 */
static int
case_find_related(struct ingest *ix, int64_t *case_id)
{
	const struct message *m = ix->m;
	bool		 sent = ix->origin != NULL && ix->origin->sent;
	bool		 words_ok;
	struct case_ids	 owners = { NULL, 0 };
	char		**words = NULL;
	size_t		 i;
	int		 rc;

	if (m->in_reply_to != NULL &&
	    (rc = case_find_thread(ix->s, m->in_reply_to, case_id)) != 0)
		return rc;
	for (i = strv_len(m->references); i > 0; i--)
		if ((rc = case_find_thread(ix->s, m->references[i - 1], case_id)) != 0)
			return rc;
	if (!sent && message_is_bounce(m))
		return case_find_bounce(ix, case_id);

	rc = 0;
	if (sent) {
		for (i = 0; m->to_addrs[i] != NULL && rc == 0; i++)
			rc = owner_cases(ix, m->to_addrs[i], &owners);
	} else if (m->from_addr != NULL)
		rc = owner_cases(ix, m->from_addr, &owners);
	if (rc == -1)
		goto out;
	if (owners.n > 0) {
		/* The owner's mail about one complaint joins that complaint's case. */
		words = message_words(ix);
		if ((rc = case_find_words(ix->s, words, &owners, case_id)) == 0) {
			*case_id = owners.v[0];
			rc = 1;
		}
		goto out;
	}

	words_ok = !message_is_bulk(m);
	if (sent) {
		bool outside = false;

		for (i = 0; m->to_addrs[i] != NULL; i++) {
			const char *d = domain_of(m->to_addrs[i]);

			if (!domain_is_amazon(ix->conf, d) &&
			    !domain_is_seller(ix->conf, d))
				outside = true;
		}
		words_ok = words_ok && outside;
	} else {
		const char *d = domain_of(m->from_addr);

		words_ok = words_ok && d != NULL && !domain_is_amazon(ix->conf, d) &&
		    !domain_is_seller(ix->conf, d);
	}
	if (words_ok) {
		words = message_words(ix);
		rc = case_find_words(ix->s, words, NULL, case_id);
	}
out:
	strv_free(words);
	free(owners.v);
	return rc;
}

/* ---- what each kind of message does ---- */

static const char *
kind_str(enum kind k)
{
	const char	*name = kind_name(k);

	return name != NULL ? name : "other";
}

/* Phishing never touches a case: the mail is kept and the seller alerted. */
static enum result
ingest_phishing(struct ingest *ix)
{
	const struct message *m = ix->m;
	const struct verdict *v = ix->v;
	char	*from = str_for_log(m->from_addr, TEXT_FIELD_MAX);
	char	*subject = str_for_log(m->subject, TEXT_FIELD_MAX);
	char	*reason = str_for_log(v->auth_reason != NULL ? v->auth_reason :
	    "not authenticated as Amazon mail", TEXT_FIELD_MAX);
	char	*cid = str_for_log(v->complaint_id, 40);
	char	*text;
	enum result ret = R_RETRY;

	text = xasprintf("A mail that looks like an Amazon notice is not from "
	    "Amazon (%s).\nFrom: %s\nSubject: %s\n%s%s%s"
	    "Do not click its links, open its attachments, reply to it or send "
	    "any documents. Check Account Health in Seller Central by typing "
	    "the address yourself; a real notice is always there too. You may "
	    "forward the mail to stop-spoofing@amazon.com.",
	    reason, from, subject,
	    v->complaint_id != NULL ? "It quotes complaint ID " : "",
	    v->complaint_id != NULL ? cid : "",
	    v->complaint_id != NULL ? " (no case was opened for it).\n" : "");
	if (message_record(ix, 0, "phishing", "phishing") == -1 ||
	    alert_add(ix, 0, text) == -1)
		goto out;
	snprintf(ix->out->what, sizeof(ix->out->what),
	    "phishing: seller alerted, no case");
	ret = R_OK;
out:
	free(text);
	free(cid);
	free(reason);
	free(subject);
	free(from);
	return ret;
}

/* Is this the second complaint from the same rights owner, or on one of the same ASINs? */
static int
second_complaint(struct store *s, int64_t case_id, char *why, size_t len)
{
	sqlite3_stmt	*st;
	int64_t		 other;
	int		 rc;

	st = store_stmt(s, "SELECT o.id FROM cases c JOIN cases o"
	    " ON o.id <> c.id AND o.direction = 'inbound' AND"
	    " ((c.rights_owner_email IS NOT NULL AND"
	    "   o.rights_owner_email = c.rights_owner_email) OR"
	    "  (c.rights_owner_name IS NOT NULL AND"
	    "   lower(o.rights_owner_name) = lower(c.rights_owner_name)))"
	    " WHERE c.id = ?1 ORDER BY o.id LIMIT 1");
	sqlite3_bind_int64(st, 1, case_id);
	if ((rc = store_step_int(s, st, &other, "same owner")) != 0) {
		if (rc == 1)
			snprintf(why, len, "a second complaint from the same "
			    "rights owner (case %" PRId64 ")", other);
		return rc;
	}
	st = store_stmt(s, "SELECT a.case_id FROM case_asins a JOIN cases o"
	    " ON o.id = a.case_id WHERE a.case_id <> ?1 AND o.direction = 'inbound'"
	    " AND a.asin IN (SELECT asin FROM case_asins WHERE case_id = ?1)"
	    " ORDER BY a.case_id LIMIT 1");
	sqlite3_bind_int64(st, 1, case_id);
	if ((rc = store_step_int(s, st, &other, "same ASIN")) == 1)
		snprintf(why, len, "a second complaint on the same ASIN (case %"
		    PRId64 ")", other);
	return rc;
}

static bool
is_patent(const char *type)
{
	return type != NULL && strstr(type, "patent") != NULL;
}

/* Playbook tasks for a notice on an open case (created once each). */
static int
notice_tasks(struct ingest *ix, int64_t case_id, bool outbound)
{
	const struct verdict *v = ix->v;
	struct store	*s = ix->s;
	sqlite3_stmt	*st;
	char		 why[160] = "";
	char		*owner = NULL, *type = NULL;
	time_t		 appeal_due;
	int64_t		 days = -1;
	int		 rc, ret = -1;

	if (outbound)
		return task_create(s, case_id, "await_decision", ix->now,
		    deadline_after(ix->conf, "await_decision", ix->base));

	st = store_stmt(s, "SELECT rights_owner_email, infringement_type,"
	    " deadline_days FROM cases WHERE id = ?1");
	sqlite3_bind_int64(st, 1, case_id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		owner = store_column_dup(st, 0);
		type = store_column_dup(st, 1);
		days = col_int(st, 2, -1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		store_db_warn(s, "notice tasks");
		return -1;
	}
	if (task_create(s, case_id, "review", ix->now,
	    deadline_after(ix->conf, "review", ix->base)) == -1 ||
	    task_create(s, case_id, "stop_selling", ix->now,
	    deadline_after(ix->conf, "stop_selling", ix->base)) == -1 ||
	    task_create(s, case_id, "evidence", ix->now,
	    deadline_after(ix->conf, "evidence", ix->base)) == -1)
		goto out;
	if (owner != NULL && task_create(s, case_id, "contact_owner", ix->now,
	    deadline_after(ix->conf, "contact_owner", ix->base)) == -1)
		goto out;
	/* The notice's own deadline (APEX three weeks, 90 days) wins over the default. */
	if (v->deadline_days > 0)
		days = v->deadline_days;
	appeal_due = days > 0 ? ix->base + (time_t)days * DAY :
	    deadline_after(ix->conf, "appeal", ix->base);
	if (task_create(s, case_id, "appeal", ix->now, appeal_due) == -1)
		goto out;

	if (v->kind == KIND_ACCOUNT_WARNING)
		snprintf(why, sizeof(why), "an account-level warning");
	else if (is_patent(v->infringement_type) || is_patent(type))
		snprintf(why, sizeof(why), "a patent complaint");
	else if (v->lawsuit)
		snprintf(why, sizeof(why), "the notice speaks of a lawsuit or court");
	else if (second_complaint(s, case_id, why, sizeof(why)) == -1)
		goto out;
	if (why[0] != '\0') {
		char	*what = xasprintf("legal advice needed: %s", why);

		st = store_stmt(s, "SELECT 1 FROM tasks WHERE case_id = ?1"
		    " AND task = 'legal'");
		sqlite3_bind_int64(st, 1, case_id);
		rc = store_step_int(s, st, NULL, "legal task");
		if (rc == 0 && (task_create(s, case_id, "legal", ix->now,
		    deadline_after(ix->conf, "legal", ix->base)) == -1 ||
		    event_add(s, case_id, ix->base, what) == -1))
			rc = -1;
		free(what);
		if (rc == -1)
			goto out;
	}
	ret = 0;
out:
	free(type);
	free(owner);
	return ret;
}

/*
 * rules.conf marks Amazon's answer to the seller's own report (Brand
 * Registry, Report a Violation) as an appeal decision whose outcome starts
 * with "report_": "report_action_taken", "report_no_action".
 */
static bool
outcome_is_report(const char *outcome)
{
	return outcome != NULL && strncmp(outcome, "report_", 7) == 0;
}

/* A follow-up from Amazon on the seller's own report: the decision is in, look at the listing. */
static int
outbound_decided(struct ingest *ix, int64_t case_id)
{
	const char	*outcome = ix->v->outcome;
	const char	*what = "Amazon answered your report: check the reported listing";

	if (outcome != NULL && strcmp(outcome, "report_action_taken") == 0)
		what = "Amazon took action on your report: check that the reported "
		    "listing changed";
	else if (outcome != NULL && strcmp(outcome, "report_no_action") == 0)
		what = "Amazon took no action on your report: check the listing and "
		    "report again with more evidence if it still infringes";
	if (task_finish(ix->s, case_id, "await_decision", ix->base) == -1 ||
	    task_create(ix->s, case_id, "recheck_listing", ix->now,
	    deadline_after(ix->conf, "recheck_listing", ix->base)) == -1 ||
	    event_add(ix->s, case_id, ix->base, what) == -1)
		return -1;
	return 0;
}

/* The seller's own report this id names (any marketplace, open first): 1, 0 or -1. */
static int
case_find_report(struct store *s, const char *complaint_id, int64_t *case_id)
{
	sqlite3_stmt	*st = store_stmt(s, "SELECT c.id FROM case_complaints cc"
	    " JOIN cases c ON c.id = cc.case_id WHERE cc.complaint_id = ?1"
	    " AND c.direction = 'outbound'"
	    " ORDER BY (c.status = 'open') DESC, c.updated DESC, c.id DESC LIMIT 1");

	sqlite3_bind_text(st, 1, complaint_id, -1, SQLITE_TRANSIENT);
	return store_step_int(s, st, case_id, "find report");
}

/*
 * A notice citing the id of the seller's own report (Amazon's answer to it,
 * in words no rule knows) must never open a case against the seller: it is
 * kept with the report, and Amazon's own mail counts as its answer.
 */
static enum result
ingest_notice_on_report(struct ingest *ix, int64_t case_id)
{
	const struct verdict *v = ix->v;
	char	*cid = str_for_log(v->complaint_id, 40);
	char	*what;
	int	 rc;

	ix->out->case_id = case_id;
	if (message_record(ix, case_id, v->authentic ? "follow_up" : "other",
	    kind_str(v->kind)) == -1) {
		free(cid);
		return R_RETRY;
	}
	what = xasprintf("a mail reads like a %s but cites %s, the id of your own "
	    "report: kept here, no case opened against you; read it", kind_str(v->kind),
	    cid);
	rc = event_add(ix->s, case_id, ix->base, what);
	free(what);
	free(cid);
	if (rc == -1 || (v->authentic && case_is_open(ix->s, case_id) &&
	    outbound_decided(ix, case_id) == -1) ||
	    case_touch(ix->s, case_id, ix->now) == -1)
		return R_RETRY;
	snprintf(ix->out->what, sizeof(ix->out->what), "follow-up to report case %"
	    PRId64 " (%s citing the report's id)", case_id, kind_str(v->kind));
	return R_OK;
}

/* ip_notice, apex, account_warning, report_confirmation: open a case or merge into one. */
static enum result
ingest_notice(struct ingest *ix)
{
	const struct verdict *v = ix->v;
	const struct message *m = ix->m;
	bool		 outbound = v->kind == KIND_REPORT_CONFIRMATION;
	int64_t		 case_id = 0;
	int		 added = 0, rc;
	char		*key;

	if (v->complaint_id != NULL && *v->complaint_id != '\0') {
		rc = case_find_complaint(ix->s, v->complaint_id, v->marketplace,
		    outbound, &case_id);
		if (rc == -1)
			return R_RETRY;
		/* The seller's own reports get their own key space: an id may recur. */
		key = xasprintf("%s:%s:%s", outbound ? "report" : "complaint",
		    v->complaint_id, v->marketplace != NULL ? v->marketplace : "-");
	} else
		key = xasprintf("msg:%s", m->dedupe_key);

	if (case_id == 0 && !outbound && v->complaint_id != NULL &&
	    *v->complaint_id != '\0') {
		int64_t	 report = 0;

		if ((rc = case_find_report(ix->s, v->complaint_id, &report)) == -1) {
			free(key);
			return R_RETRY;
		}
		if (rc == 1) {
			free(key);
			return ingest_notice_on_report(ix, report);
		}
	}
	if (case_id == 0) {
		case_id = case_insert(ix, key, kind_str(v->kind), outbound);
		free(key);
		if (case_id < 0)
			return R_RETRY;
		ix->out->opened = true;
		if (event_add(ix->s, case_id, ix->base, outbound ?
		    "opened: Amazon confirmed your report of a violation" :
		    "opened from a notice") == -1)
			return R_RETRY;
	} else {
		free(key);
		if (case_merge_verdict(ix, case_id, &added) == -1)
			return R_RETRY;
		char *what = xasprintf("a further %s notice for this complaint%s",
		    kind_str(v->kind), added > 0 ? " names more ASINs" : "");
		rc = event_add(ix->s, case_id, ix->base, what);
		free(what);
		if (rc == -1)
			return R_RETRY;
	}
	ix->out->case_id = case_id;
	if (message_record(ix, case_id, "notice", kind_str(v->kind)) == -1)
		return R_RETRY;
	if (case_is_open(ix->s, case_id) && notice_tasks(ix, case_id, outbound) == -1)
		return R_RETRY;

	if (v->kind == KIND_ACCOUNT_WARNING) {
		sqlite3_stmt *st = store_stmt(ix->s, "UPDATE cases SET urgency = 'high'"
		    " WHERE id = ?1");
		char	*subject = str_for_log(m->subject, TEXT_FIELD_MAX);
		char	*mkt = str_for_log(v->marketplace, 8);
		char	*text;

		sqlite3_bind_int64(st, 1, case_id);
		if (store_step_done(ix->s, st, "urgency") == -1) {
			free(mkt);
			free(subject);
			return R_RETRY;
		}
		text = xasprintf("Amazon warns about your whole selling account%s%s "
		    "(case #%" PRId64 "): \"%s\". Open Account Health in Seller "
		    "Central now and act before the deadline%s; ask an IP lawyer.",
		    v->marketplace != NULL ? " on marketplace " : "",
		    v->marketplace != NULL ? mkt : "", case_id, subject,
		    v->deadline_days > 0 ? " stated in the mail" : "");
		rc = alert_add(ix, case_id, text);
		free(text);
		free(mkt);
		free(subject);
		if (rc == -1)
			return R_RETRY;
	}
	snprintf(ix->out->what, sizeof(ix->out->what), "%s case %" PRId64 " (%s)",
	    ix->out->opened ? "opened" : "merged into", case_id, kind_str(v->kind));
	return R_OK;
}

/* reinstatement, retraction, appeal_decision. */
static enum result
ingest_follow_up(struct ingest *ix)
{
	const struct verdict *v = ix->v;
	struct store	*s = ix->s;
	/*
	 * Only Amazon resolves a case: a rights owner's own "we retracted" is
	 * authentic as the owner's mail, yet Amazon accepts a retraction only
	 * once it confirms it.
	 */
	const char	*from_domain = ix->m->from_addr ? address_domain(ix->m->from_addr) : NULL;
	bool		 amazon = v->authentic && from_domain != NULL &&
	    domain_in_list(from_domain, ix->conf->amazon_domains), outbound = false;
	bool		 report = v->kind == KIND_APPEAL_DECISION &&
	    outcome_is_report(v->outcome);
	int64_t		 case_id = 0;
	char		 status[32];
	const char	*role;
	int		 rc;

	/* An answer to the seller's own report belongs to that report, never to a complaint. */
	for (size_t i = 0; report && case_id == 0 && v->complaint_ids != NULL &&
	    v->complaint_ids[i] != NULL; i++)
		if (case_find_report(s, v->complaint_ids[i], &case_id) == -1)
			return R_RETRY;
	if (!report && v->complaint_id != NULL && *v->complaint_id != '\0' &&
	    case_find_any_complaint(s, v->complaint_id, v->marketplace, &case_id) == -1)
		return R_RETRY;
	for (size_t i = 0; !report && case_id == 0 && v->complaint_ids != NULL &&
	    v->complaint_ids[i] != NULL; i++)
		if (case_find_any_complaint(s, v->complaint_ids[i], v->marketplace,
		    &case_id) == -1)
			return R_RETRY;
	if (!report && case_id == 0 && case_find_related(ix, &case_id) == -1)
		return R_RETRY;
	if (case_id == 0 && report && v->complaint_id != NULL) {
		/* A report not seen before (its confirmation predates the scan): follow it too. */
		char	*key = xasprintf("report:%s:%s", v->complaint_id,
		    v->marketplace != NULL ? v->marketplace : "-");

		case_id = case_insert(ix, key, kind_name(KIND_REPORT_CONFIRMATION), true);
		free(key);
		if (case_id < 0)
			return R_RETRY;
		ix->out->opened = true;
		if (event_add(s, case_id, ix->base, "opened: Amazon answered a report "
		    "of yours not seen before") == -1 ||
		    (!amazon && task_create(s, case_id, "await_decision", ix->now,
		    deadline_after(ix->conf, "await_decision", ix->base)) == -1))
			return R_RETRY;
	} else if (case_id == 0) {
		/* Unknown complaint: a case of its own, so nothing is lost. */
		char	*key = xasprintf("msg:%s", ix->m->dedupe_key);

		case_id = case_insert(ix, key, kind_str(v->kind), false);
		free(key);
		if (case_id < 0)
			return R_RETRY;
		ix->out->opened = true;
		if (event_add(s, case_id, ix->base, "opened from a follow-up "
		    "for a complaint not seen before") == -1)
			return R_RETRY;
	} else if (case_merge_verdict(ix, case_id, NULL) == -1)
		return R_RETRY;
	ix->out->case_id = case_id;

	if (amazon)
		role = "follow_up";
	else if (addr_is_owner(ix, case_id, ix->m->from_addr) ||
	    v->kind == KIND_RETRACTION)
		role = "owner";
	else
		role = "other";
	if (message_record(ix, case_id, role, kind_str(v->kind)) == -1)
		return R_RETRY;
	if (case_state(s, case_id, status, sizeof(status), &outbound) == -1)
		return R_RETRY;

	rc = 0;
	if (outbound && amazon)
		rc = outbound_decided(ix, case_id);
	else if (!amazon) {
		if (v->kind == KIND_RETRACTION)
			rc = event_add(s, case_id, ix->base, "rights owner says "
			    "retracted; waiting for Amazon's confirmation");
		else {
			char	*reason = str_for_log(v->auth_reason, TEXT_FIELD_MAX);
			char	*what = xasprintf("a mail claims a %s but is not "
			    "authenticated as Amazon's (%s): check Account Health",
			    kind_str(v->kind), reason);

			rc = event_add(s, case_id, ix->base, what);
			free(what);
			free(reason);
		}
	} else if (v->kind == KIND_REINSTATEMENT)
		rc = case_resolve(s, ix->conf, case_id, "reinstated", ix->base,
		    ix->now, "Amazon reinstated the listing");
	else if (v->kind == KIND_RETRACTION)
		rc = case_resolve(s, ix->conf, case_id, "retracted", ix->base,
		    ix->now, "Amazon confirmed the retraction");
	else if (v->outcome != NULL && strcmp(v->outcome, "accepted") == 0)
		rc = case_resolve(s, ix->conf, case_id, "appeal_accepted",
		    ix->base, ix->now, "Amazon accepted the appeal");
	else if (v->outcome != NULL && strcmp(v->outcome, "rejected") == 0) {
		rc = event_add(s, case_id, ix->base, "Amazon rejected the appeal");
		if (rc == 0 && strcmp(status, "open") == 0)
			rc = task_reopen(s, case_id, "legal", ix->now,
			    deadline_after(ix->conf, "legal", ix->base));
	} else
		rc = event_add(s, case_id, ix->base, "Amazon decided on the "
		    "appeal (outcome not recognised): read the mail");
	if (rc == -1)
		return R_RETRY;

	/* A case of its own that is still open needs at least a look. */
	if (ix->out->opened && !outbound && case_is_open(s, case_id) &&
	    task_create(s, case_id, "review", ix->now,
	    deadline_after(ix->conf, "review", ix->base)) == -1)
		return R_RETRY;
	if (case_touch(s, case_id, ix->now) == -1)
		return R_RETRY;
	snprintf(ix->out->what, sizeof(ix->out->what), "%s case %" PRId64 " (%s%s)",
	    ix->out->opened ? "opened" : "follow-up to", case_id,
	    kind_str(v->kind), amazon ? "" : ", not from Amazon");
	return R_OK;
}

/* Correspondence: the seller and the rights owner, bounces, anything in a case's thread. */
static enum result
ingest_correspondence(struct ingest *ix)
{
	const struct message *m = ix->m;
	struct store	*s = ix->s;
	bool		 sent = ix->origin != NULL && ix->origin->sent;
	bool		 open, to_owner = false;
	const char	*role;
	int64_t		 case_id = 0;
	size_t		 i;
	int		 rc;

	if ((rc = case_find_related(ix, &case_id)) == -1)
		return R_RETRY;
	if (rc == 0) {
		snprintf(ix->out->what, sizeof(ix->out->what), "ignored");
		return R_OK;
	}
	ix->out->case_id = case_id;
	open = case_is_open(s, case_id);
	rc = 0;
	if (sent) {
		role = "seller";
		for (i = 0; m->to_addrs[i] != NULL; i++)
			if (addr_is_owner(ix, case_id, m->to_addrs[i]))
				to_owner = true;
	} else if (message_is_bounce(m))
		role = "bounce";
	else if (addr_is_owner(ix, case_id, m->from_addr))
		role = "owner";
	else if (domain_is_amazon(ix->conf, domain_of(m->from_addr)))
		role = "amazon";
	else
		role = "other";
	if (message_record(ix, case_id, role, "other") == -1)
		return R_RETRY;

	if (to_owner) {
		/* The mail's Date, not the order we read it in, says whether it came before the end. */
		if ((rc = task_finish(s, case_id, "contact_owner", ix->base)) == 0 &&
		    !open && m->date > 0 && m->date == ix->base)
			rc = task_finish_before_end(s, case_id, "contact_owner", ix->base);
		if (rc == -1)
			return R_RETRY;
		rc = 0;
		if (open)
			rc = task_reopen(s, case_id, "follow_up", ix->now,
			    deadline_after(ix->conf, "follow_up", ix->base));
		if (rc == 0)
			rc = event_add(s, case_id, ix->base, "you wrote to the "
			    "rights owner: waiting for an answer");
	} else if (strcmp(role, "bounce") == 0)
		rc = event_add(s, case_id, ix->base, "bounce: evidence the rights "
		    "owner's address does not work");
	else if (strcmp(role, "owner") == 0 && message_is_autoreply(m))
		rc = event_add(s, case_id, ix->base, "automatic reply from the "
		    "rights owner");
	else if (strcmp(role, "owner") == 0) {
		if (open)
			rc = task_reopen(s, case_id, "follow_up", ix->now,
			    deadline_after(ix->conf, "follow_up_answer", ix->base));
		if (rc == 0)
			rc = event_add(s, case_id, ix->base, "the rights owner "
			    "wrote: your answer is due");
	}
	if (rc == -1 || case_touch(s, case_id, ix->now) == -1)
		return R_RETRY;
	snprintf(ix->out->what, sizeof(ix->out->what), "linked to case %" PRId64
	    " (%s)", case_id, role);
	return R_OK;
}

static enum result ingest_reply_to_ours(struct ingest *, const struct our_mail *);

/*
 * An id in In-Reply-To/References shaped like ours (our domain, a case
 * token) that is not in the outbox: a reply to a mail we never sent, i.e. a
 * token altered by hand or forged.  Returns that id (borrowed) or NULL.
 */
static const char *
forged_reply_id(const struct conf *conf, const struct message *m)
{
	const char	*ours = domain_of(conf->smtp.from), *d;
	char		 token[COMMAND_TOKEN_LEN + 1];
	size_t		 i;

	if (ours == NULL)
		return NULL;
	for (i = 0; ; i++) {
		const char *id = i == 0 ? m->in_reply_to :
		    m->references != NULL ? m->references[i - 1] : NULL;

		if (i > 0 && id == NULL)
			return NULL;
		if (id == NULL || (d = strrchr(id, '@')) == NULL)
			continue;
		if (strcasecmp(d + 1, ours) == 0 &&
		    command_msgid_token(id, token, sizeof(token)))
			return id;
	}
}

enum result
cases_ingest(struct store *s, const struct conf *conf, const struct msg_origin *origin,
    const struct message *m, const struct verdict *v, time_t now,
    struct ingest_report *out)
{
	const char	*forged;
	struct ingest	 ix = { s, conf, origin, m, v, now, now, out };
	struct our_mail	 om;
	sqlite3_stmt	*st;
	const char	*why;
	int64_t		 row, case_id;
	enum result	 ret;
	int		 rc;

	memset(out, 0, sizeof(*out));
	/* A Date in the future (a wrong clock, a forgery) must not push deadlines away. */
	if (m->date > 0 && m->date <= now + DAY)
		ix.base = m->date;

	st = store_stmt(s, "SELECT id, coalesce(case_id, 0) FROM messages"
	    " WHERE dedupe_key = ?1");
	sqlite3_bind_text(st, 1, m->dedupe_key, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row = sqlite3_column_int64(st, 0);
		case_id = sqlite3_column_int64(st, 1);
		sqlite3_reset(st);
		out->duplicate = true;
		out->case_id = case_id;
		snprintf(out->what, sizeof(out->what), "already recorded");
		if (origin == NULL || origin->account == NULL || origin->folder == NULL)
			return R_OK;
		st = store_stmt(s, "INSERT OR IGNORE INTO message_locations"
		    "(message_id, account, folder, uidvalidity, uid)"
		    " VALUES (?1, ?2, ?3, ?4, ?5)");
		sqlite3_bind_int64(st, 1, row);
		sqlite3_bind_text(st, 2, origin->account, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, origin->folder, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, origin->uidvalidity);
		sqlite3_bind_int64(st, 5, origin->uid);
		return store_step_done(s, st, "record location") == 0 ? R_OK : R_RETRY;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_db_warn(s, "dedupe");
		return R_RETRY;
	}

	/* A reply to our own mail is a command or nothing, never correspondence. */
	if ((rc = our_mail_find(s, m, &om)) == -1)
		return R_RETRY;
	if (rc == 1) {
		ret = ingest_reply_to_ours(&ix, &om);
		our_mail_clear(&om);
		return ret;
	}
	if ((forged = forged_reply_id(conf, m)) != NULL) {
		char	*from = str_for_log(m->from_addr, TEXT_FIELD_MAX);
		char	*id = str_for_log(forged, TEXT_FIELD_MAX);

		log_warnx("cases: reply from %s answers <%s>, which ipcased never sent "
		    "(token altered or forged): ignored", from, id);
		free(from);
		free(id);
		snprintf(out->what, sizeof(out->what), "ignored: answers a mail we never sent");
		return R_OK;
	}
	if ((rc = mail_about_ours(&ix, &why)) == -1)
		return R_RETRY;
	if (rc == 1) {
		char	*from = str_for_log(m->from_addr, TEXT_FIELD_MAX);

		log_info("cases: %s from %s: ignored", why, from);
		free(from);
		snprintf(out->what, sizeof(out->what), "ignored: %s", why);
		return R_OK;
	}

	/* The seller's own Sent mail is never a notice nor phishing, whatever it quotes. */
	if (origin != NULL && origin->sent)
		return ingest_correspondence(&ix);
	switch (v->kind) {
	case KIND_PHISHING:
		return ingest_phishing(&ix);
	case KIND_IP_NOTICE:
	case KIND_APEX:
	case KIND_ACCOUNT_WARNING:
	case KIND_REPORT_CONFIRMATION:
		return ingest_notice(&ix);
	case KIND_REINSTATEMENT:
	case KIND_RETRACTION:
	case KIND_APPEAL_DECISION:
		return ingest_follow_up(&ix);
	case KIND_OTHER:
	default:
		return ingest_correspondence(&ix);
	}
}

/*
 * ---- the candidate index ----
 *
 * cases_candidate_match() runs for every new message of a scan, before its body
 * is fetched, so it asks no SQL per message: it looks in hash sets of what
 * the store knows.  The sets are built on first use and again after this
 * handle wrote a case, a message or a complaint id (store_changed(), which
 * cases.c calls: it is the only writer of those tables), after a rollback,
 * and after another connection committed (PRAGMA data_version: ipcase may
 * have closed a case).  Our own outbox, which schedule.c writes too, grows
 * only: new rows are read when this handle changed anything at all.
 */
struct cand_index {
	bool		 valid;
	int64_t		 data_version;
	uint64_t	 generation;
	int64_t		 changes;	/* sqlite3_total_changes64() when the outbox was read */
	int64_t		 outbox_max;	/* the highest outbox id read */
	GHashTable	*msgids;	/* Message-IDs of stored messages and of our own mail */
	GHashTable	*owners;	/* rights owner addresses of open cases */
	GHashTable	*domains;	/* their domains where a colleague counts (no free-mail) */
	GHashTable	*complaints;	/* every complaint id of every case */
};

static void
cand_index_free(void *p)
{
	struct cand_index *ci = p;

	if (ci == NULL)
		return;
	g_hash_table_destroy(ci->msgids);
	g_hash_table_destroy(ci->owners);
	g_hash_table_destroy(ci->domains);
	g_hash_table_destroy(ci->complaints);
	free(ci);
}

/* Adds column col of every row of st to set.  0, or -1 on error. */
static int
cand_fill(struct store *s, sqlite3_stmt *st, int col, GHashTable *set, const char *what)
{
	const unsigned char *t;
	int	rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((t = sqlite3_column_text(st, col)) != NULL)
			g_hash_table_add(set, g_strdup((const char *)t));
	if (rc != SQLITE_DONE)
		store_db_warn(s, what);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Our own mail sent since the last look: a reply to it may be a command. */
static int
cand_index_outbox(struct store *s, struct cand_index *ci)
{
	sqlite3_stmt	*st = store_stmt(s, "SELECT id, message_id FROM outbox"
	    " WHERE id > ?1 ORDER BY id");
	const unsigned char *t;
	int		 rc;

	sqlite3_bind_int64(st, 1, ci->outbox_max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ci->outbox_max = sqlite3_column_int64(st, 0);
		if ((t = sqlite3_column_text(st, 1)) != NULL)
			g_hash_table_add(ci->msgids, g_strdup((const char *)t));
	}
	if (rc != SQLITE_DONE)
		store_db_warn(s, "candidate index");
	sqlite3_reset(st);
	ci->changes = sqlite3_total_changes64(store_db(s));
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
cand_index_build(struct store *s, struct cand_index *ci)
{
	sqlite3_stmt	*st;
	const char	*owner, *flags, *d;
	int		 rc;

	g_hash_table_remove_all(ci->msgids);
	g_hash_table_remove_all(ci->owners);
	g_hash_table_remove_all(ci->domains);
	g_hash_table_remove_all(ci->complaints);
	ci->outbox_max = 0;
	st = store_stmt(s, "SELECT message_id FROM messages WHERE message_id IS NOT NULL");
	if (cand_fill(s, st, 0, ci->msgids, "candidate index") == -1)
		return -1;
	st = store_stmt(s, "SELECT complaint_id FROM case_complaints");
	if (cand_fill(s, st, 0, ci->complaints, "candidate index") == -1)
		return -1;
	st = store_stmt(s, "SELECT rights_owner_email, owner_flags FROM cases"
	    " WHERE status = 'open' AND rights_owner_email IS NOT NULL");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		owner = (const char *)sqlite3_column_text(st, 0);
		flags = (const char *)sqlite3_column_text(st, 1);
		g_hash_table_add(ci->owners, g_strdup(owner));
		/* A free-mail owner's neighbours are strangers. */
		if ((d = strchr(owner, '@')) != NULL && !domain_is_freemail(d + 1) &&
		    (flags == NULL || strstr(flags, "freemail") == NULL))
			g_hash_table_add(ci->domains, g_strdup(d + 1));
	}
	if (rc != SQLITE_DONE)
		store_db_warn(s, "candidate index");
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return -1;
	return cand_index_outbox(s, ci);
}

/* The index, up to date; NULL on a database error. */
static struct cand_index *
cand_index_get(struct store *s)
{
	struct cand_index *ci = store_cache(s);
	int64_t		 version;

	if (store_data_version(s, &version) == -1)
		return NULL;
	if (ci == NULL) {
		ci = xcalloc(1, sizeof(*ci));
		ci->msgids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		ci->owners = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		ci->domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		ci->complaints = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		store_set_cache(s, ci, cand_index_free);
	}
	if (!ci->valid || ci->data_version != version ||
	    ci->generation != store_generation(s)) {
		ci->valid = false;
		if (cand_index_build(s, ci) == -1)
			return NULL;
		ci->valid = true;
		ci->data_version = version;
		ci->generation = store_generation(s);
	} else if (ci->changes != sqlite3_total_changes64(store_db(s)) &&
	    cand_index_outbox(s, ci) == -1) {
		ci->valid = false;
		return NULL;
	}
	return ci;
}

/* Is addr a rights owner of an open case, or a colleague at the owner's (not free-mail) domain? */
static bool
cand_address(const struct cand_index *ci, const char *addr)
{
	char		 small[256], *lower;
	const char	*d;
	size_t		 len;
	bool		 yes;

	if (addr == NULL)
		return false;
	/* Every message asks this: no allocation for an address of common length. */
	if ((len = strlen(addr)) < sizeof(small)) {
		memcpy(small, addr, len + 1);
		str_lower(small);
		lower = small;
	} else
		lower = lower_dup(addr);
	d = domain_of(lower);
	/* The hash lookup first: the free-mail list is a walk, and few domains are owners'. */
	yes = g_hash_table_contains(ci->owners, lower) || (d != NULL &&
	    g_hash_table_contains(ci->domains, d) && !domain_is_freemail(d));
	if (lower != small)
		free(lower);
	return yes;
}

const struct cand_index *
cases_candidates(struct store *s)
{
	return cand_index_get(s);
}

bool
cases_candidate_match(const struct cand_index *ci, const struct message *h)
{
	char		 tok[COMMAND_TOKEN_LEN + 1];
	char		**words = NULL;
	size_t		 i, n = 0;
	bool		 yes = false;

	/* On a database error, fetch the body: a missed notice costs more than a fetch. */
	if (ci == NULL)
		return true;
	/* A reply in a case's thread, or to our own mail (it may be a command). */
	if (h->in_reply_to != NULL && g_hash_table_contains(ci->msgids, h->in_reply_to))
		return true;
	for (i = 0; h->references != NULL && h->references[i] != NULL; i++)
		if (g_hash_table_contains(ci->msgids, h->references[i]))
			return true;
	if (cand_address(ci, h->from_addr))
		return true;
	for (i = 0; h->to_addrs != NULL && h->to_addrs[i] != NULL; i++)
		if (cand_address(ci, h->to_addrs[i]))
			return true;
	/* Shaped like our own ids though unknown: fetched so that a forged token is logged. */
	if (h->in_reply_to != NULL && command_msgid_token(h->in_reply_to, tok, sizeof(tok)))
		return true;
	/* A bounce may be of the seller's mail to a rights owner. */
	if (addr_is_mailer_daemon(h->from_addr) && g_hash_table_size(ci->owners) > 0)
		return true;
	if (h->subject != NULL)
		collect_tokens(h->subject, strlen(h->subject), &words, &n);
	for (i = 0; i < n && !yes; i++)
		yes = g_hash_table_contains(ci->complaints, words[i]);
	strv_free(words);
	return yes;
}

/* ---- the seller's commands ---- */

static void
case_row_free(struct case_row *c)
{
	free(c->case_key);
	free(c->kind);
	free(c->direction);
	free(c->status);
	free(c->complaint_id);
	free(c->marketplace);
	free(c->infringement_type);
	free(c->rights_owner_name);
	free(c->rights_owner_email);
	free(c->urgency);
	free(c->close_reason);
	free(c->owner_flags);
	free(c->token);
	memset(c, 0, sizeof(*c));
}

/* 1 loaded, 0 no such case, -1 error. */
static int
case_load(struct store *s, int64_t id, struct case_row *c)
{
	sqlite3_stmt	*st = store_stmt(s, "SELECT id, case_key, kind, direction,"
	    " status, complaint_id, marketplace, infringement_type,"
	    " rights_owner_name, rights_owner_email, deadline_days, urgency,"
	    " opened, updated, closed, close_reason, snoozed_until, owner_flags,"
	    " token FROM cases WHERE id = ?1");
	int		 rc, ret;

	memset(c, 0, sizeof(*c));
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		c->id = sqlite3_column_int64(st, 0);
		c->case_key = store_column_dup(st, 1);
		c->kind = store_column_dup(st, 2);
		c->direction = store_column_dup(st, 3);
		c->status = store_column_dup(st, 4);
		c->complaint_id = store_column_dup(st, 5);
		c->marketplace = store_column_dup(st, 6);
		c->infringement_type = store_column_dup(st, 7);
		c->rights_owner_name = store_column_dup(st, 8);
		c->rights_owner_email = store_column_dup(st, 9);
		c->deadline_days = col_int(st, 10, -1);
		c->urgency = store_column_dup(st, 11);
		c->opened = col_int(st, 12, 0);
		c->updated = col_int(st, 13, 0);
		c->closed = col_int(st, 14, 0);
		c->close_reason = store_column_dup(st, 15);
		c->snoozed_until = col_int(st, 16, 0);
		c->owner_flags = store_column_dup(st, 17);
		c->token = store_column_dup(st, 18);
		ret = 1;
	} else if (rc == SQLITE_DONE)
		ret = 0;
	else {
		store_db_warn(s, "load case");
		ret = -1;
	}
	sqlite3_reset(st);
	return ret;
}

/* "3" or "#3" -> a loaded case; otherwise a message on stderr and -1. */
static int
case_resolve_ref(struct store *s, const char *ref, struct case_row *c)
{
	char		*end;
	long long	 id;
	int		 rc;

	if (ref != NULL && *ref == '#')
		ref++;
	errno = 0;
	id = ref != NULL && isdigit((unsigned char)*ref) ? strtoll(ref, &end, 10) : 0;
	if (ref == NULL || id <= 0 || errno != 0 || *end != '\0') {
		char	*safe = str_for_log(ref, 40);

		fprintf(stderr, "ipcase: \"%s\" is not a case number (see "
		    "`ipcase list`)\n", safe);
		free(safe);
		return -1;
	}
	if ((rc = case_load(s, id, c)) == 0)
		fprintf(stderr, "ipcase: no case %lld (see `ipcase list --all`)\n", id);
	else if (rc == -1)
		fprintf(stderr, "ipcase: cannot read case %lld from the database\n", id);
	return rc == 1 ? 0 : -1;
}

static json_object *
json_str(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

static json_object *
json_time(time_t t)
{
	char	buf[32];

	if (t == 0)
		return NULL;
	iso_time(t, buf, sizeof(buf));
	return json_object_new_string(buf);
}

/* The next open task: 1 found, 0 none, -1 error.  *task is malloc'd. */
static int
case_next_task(struct store *s, int64_t id, char **task, time_t *due)
{
	sqlite3_stmt	*st = store_stmt(s, "SELECT task, due FROM tasks WHERE"
	    " case_id = ?1 AND status = 'open' ORDER BY due, id LIMIT 1");
	int		 rc, ret = 0;

	*task = NULL;
	*due = 0;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*task = store_column_dup(st, 0);
		*due = (time_t)sqlite3_column_int64(st, 1);
		ret = 1;
	} else if (rc != SQLITE_DONE) {
		store_db_warn(s, "next task");
		ret = -1;
	}
	sqlite3_reset(st);
	return ret;
}

/* A NULL-terminated vector of one text column for one case id. */
static char **
case_strings(struct store *s, const char *sql, int64_t id)
{
	sqlite3_stmt	*st = store_stmt(s, sql);
	char		**v = xcalloc(1, sizeof(*v));
	size_t		 n = 0;

	sqlite3_bind_int64(st, 1, id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		v = xreallocarray(v, n + 2, sizeof(*v));
		v[n++] = store_column_dup(st, 0);
		v[n] = NULL;
	}
	sqlite3_reset(st);
	return v;
}

static char **
case_asins(struct store *s, int64_t id)
{
	return case_strings(s, "SELECT asin FROM case_asins WHERE case_id = ?1"
	    " ORDER BY asin", id);
}

static char **
case_complaint_ids(struct store *s, int64_t id)
{
	return case_strings(s, "SELECT complaint_id FROM case_complaints"
	    " WHERE case_id = ?1 ORDER BY complaint_id", id);
}

static int64_t
case_message_count(struct store *s, int64_t id)
{
	sqlite3_stmt	*st = store_stmt(s, "SELECT count(*) FROM messages"
	    " WHERE case_id = ?1");
	int64_t		 n = 0;

	sqlite3_bind_int64(st, 1, id);
	store_step_int(s, st, &n, "count messages");
	return n;
}

static json_object *
json_strv(char *const *v)
{
	json_object	*a = json_object_new_array();

	for (; v != NULL && *v != NULL; v++)
		json_object_array_add(a, json_object_new_string(*v));
	return a;
}

/* The list object of the brief. */
static json_object *
case_json(struct store *s, const struct case_row *c)
{
	json_object	*o = json_object_new_object();
	char		**asins = case_asins(s, c->id), **cids = case_complaint_ids(s, c->id);
	char		*task = NULL;
	time_t		 due = 0;

	case_next_task(s, c->id, &task, &due);
	json_object_object_add(o, "id", json_object_new_int64(c->id));
	json_object_object_add(o, "kind", json_str(c->kind));
	json_object_object_add(o, "direction", json_str(c->direction));
	json_object_object_add(o, "status", json_str(c->status));
	json_object_object_add(o, "complaint_id", json_str(c->complaint_id));
	json_object_object_add(o, "complaint_ids", json_strv(cids));
	json_object_object_add(o, "marketplace", json_str(c->marketplace));
	json_object_object_add(o, "infringement_type", json_str(c->infringement_type));
	json_object_object_add(o, "asins", json_strv(asins));
	json_object_object_add(o, "rights_owner_name", json_str(c->rights_owner_name));
	json_object_object_add(o, "rights_owner_email", json_str(c->rights_owner_email));
	json_object_object_add(o, "owner_flags", json_str(c->owner_flags));
	json_object_object_add(o, "deadline_days", c->deadline_days >= 0 ?
	    json_object_new_int64(c->deadline_days) : NULL);
	json_object_object_add(o, "opened", json_time(c->opened));
	json_object_object_add(o, "updated", json_time(c->updated));
	json_object_object_add(o, "closed", json_time(c->closed));
	json_object_object_add(o, "close_reason", json_str(c->close_reason));
	json_object_object_add(o, "snoozed_until", json_time(c->snoozed_until));
	json_object_object_add(o, "urgency", json_str(c->urgency));
	json_object_object_add(o, "next_task", json_str(task));
	json_object_object_add(o, "next_due", json_time(due));
	json_object_object_add(o, "messages",
	    json_object_new_int64(case_message_count(s, c->id)));
	free(task);
	strv_free(asins);
	strv_free(cids);
	return o;
}

static json_object *
case_tasks_json(struct store *s, int64_t id)
{
	sqlite3_stmt	*st = store_stmt(s, "SELECT task, status, due, done_at,"
	    " created FROM tasks WHERE case_id = ?1 ORDER BY due, id");
	json_object	*a = json_object_new_array(), *t;

	sqlite3_bind_int64(st, 1, id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		t = json_object_new_object();
		json_object_object_add(t, "task", json_str((const char *)
		    sqlite3_column_text(st, 0)));
		json_object_object_add(t, "status", json_str((const char *)
		    sqlite3_column_text(st, 1)));
		json_object_object_add(t, "due", json_time(col_int(st, 2, 0)));
		json_object_object_add(t, "done_at", json_time(col_int(st, 3, 0)));
		json_object_object_add(t, "created", json_time(col_int(st, 4, 0)));
		json_object_array_add(a, t);
	}
	sqlite3_reset(st);
	return a;
}

static json_object *
case_messages_json(struct store *s, int64_t id)
{
	sqlite3_stmt	*st = store_stmt(s, "SELECT m.date, m.from_addr, m.subject,"
	    " (SELECT l.folder FROM message_locations l WHERE l.message_id = m.id"
	    "  ORDER BY l.rowid LIMIT 1), m.role, m.sha256, m.received, m.kind"
	    " FROM messages m WHERE m.case_id = ?1"
	    " ORDER BY coalesce(m.date, m.received), m.id");
	json_object	*a = json_object_new_array(), *o;

	sqlite3_bind_int64(st, 1, id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		o = json_object_new_object();
		json_object_object_add(o, "date", json_time(col_int(st, 0, 0)));
		json_object_object_add(o, "from", json_str((const char *)
		    sqlite3_column_text(st, 1)));
		json_object_object_add(o, "subject", json_str((const char *)
		    sqlite3_column_text(st, 2)));
		json_object_object_add(o, "folder", json_str((const char *)
		    sqlite3_column_text(st, 3)));
		json_object_object_add(o, "role", json_str((const char *)
		    sqlite3_column_text(st, 4)));
		json_object_object_add(o, "sha256", json_str((const char *)
		    sqlite3_column_text(st, 5)));
		json_object_object_add(o, "received", json_time(col_int(st, 6, 0)));
		json_object_object_add(o, "kind", json_str((const char *)
		    sqlite3_column_text(st, 7)));
		json_object_array_add(a, o);
	}
	sqlite3_reset(st);
	return a;
}

/* notes or events: [{"at", key}] in time order. */
static json_object *
case_log_json(struct store *s, const char *sql, const char *key, int64_t id)
{
	sqlite3_stmt	*st = store_stmt(s, sql);
	json_object	*a = json_object_new_array(), *o;

	sqlite3_bind_int64(st, 1, id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		o = json_object_new_object();
		json_object_object_add(o, "at", json_time(col_int(st, 0, 0)));
		json_object_object_add(o, key, json_str((const char *)
		    sqlite3_column_text(st, 1)));
		json_object_array_add(a, o);
	}
	sqlite3_reset(st);
	return a;
}

static const char sql_notes[] = "SELECT at, text FROM notes WHERE case_id = ?1"
    " ORDER BY at, id";
static const char sql_events[] = "SELECT at, what FROM events WHERE case_id = ?1"
    " ORDER BY at, id";

static json_object *
case_show_json(struct store *s, const struct case_row *c)
{
	json_object	*o = case_json(s, c);

	json_object_object_add(o, "tasks", case_tasks_json(s, c->id));
	json_object_object_add(o, "messages", case_messages_json(s, c->id));
	json_object_object_add(o, "notes", case_log_json(s, sql_notes, "text", c->id));
	json_object_object_add(o, "events", case_log_json(s, sql_events, "what", c->id));
	return o;
}

static int
json_print(json_object *o, FILE *fp)
{
	const char	*text = json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	fprintf(fp, "%s\n", text);
	return ferror(fp) ? -1 : 0;
}

/* Untrusted text for the terminal: no control byte gets through. */
static char *
term(const char *s, size_t max)
{
	return str_for_log(s != NULL ? s : "-", max);
}

int
cases_print_list(struct store *s, bool all, bool json, FILE *fp)
{
	sqlite3_stmt	*st = store_stmt(s, "SELECT id FROM cases WHERE"
	    " (?1 <> 0 OR status = 'open') ORDER BY id");
	int64_t		*ids = NULL;
	size_t		 n = 0, i;
	json_object	*arr = NULL;
	int		 rc, ret = -1;

	sqlite3_bind_int(st, 1, all ? 1 : 0);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ids = xreallocarray(ids, n + 1, sizeof(*ids));
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "ipcase: cannot list cases: %s\n",
		    sqlite3_errmsg(store_db(s)));
		goto out;
	}
	if (json)
		arr = json_object_new_array();
	else
		fprintf(fp, "%5s  %-15s  %-19s  %-3s  %-12s  %-24s  %-15s  %s\n",
		    "CASE", "STATUS", "KIND", "MKT", "COMPLAINT", "ASINS",
		    "NEXT TASK", "DUE (UTC)");
	for (i = 0; i < n; i++) {
		struct case_row	 c;

		if (case_load(s, ids[i], &c) != 1)
			goto out;
		if (json)
			json_object_array_add(arr, case_json(s, &c));
		else {
			char	**asins = case_asins(s, c.id), *task = NULL;
			char	 due[32], asin_col[64];
			char	*kind = term(c.kind, 19), *cid = term(c.complaint_id, 12);
			char	*mkt = term(c.marketplace, 3), *tk;
			time_t	 t;

			case_next_task(s, c.id, &task, &t);
			human_time(t, due, sizeof(due));
			if (asins[0] == NULL)
				snprintf(asin_col, sizeof(asin_col), "-");
			else if (asins[1] == NULL)
				snprintf(asin_col, sizeof(asin_col), "%.11s", asins[0]);
			else
				snprintf(asin_col, sizeof(asin_col), "%.11s +%zu",
				    asins[0], strv_len(asins) - 1);
			tk = term(task, 15);
			fprintf(fp, "%5" PRId64 "  %-15s  %-19s  %-3s  %-12s  %-24s  "
			    "%-15s  %s%s%s\n", c.id, c.status, kind, mkt, cid,
			    asin_col, tk, due,
			    strcmp(c.urgency, "high") == 0 ? "  URGENT" : "",
			    c.snoozed_until > now_wall() ? "  (snoozed)" : "");
			free(tk);
			free(mkt);
			free(cid);
			free(kind);
			free(task);
			strv_free(asins);
		}
		case_row_free(&c);
	}
	if (json)
		ret = json_print(arr, fp);
	else
		ret = ferror(fp) ? -1 : 0;
out:
	json_object_put(arr);
	free(ids);
	return ret;
}

static void
print_field(FILE *fp, const char *label, const char *value)
{
	char	*v = term(value, 400);

	fprintf(fp, "%-14s %s\n", label, v);
	free(v);
}

int
cases_print_show(struct store *s, const char *case_ref, bool json, FILE *fp)
{
	struct case_row	 c;
	json_object	*o;
	sqlite3_stmt	*st;
	char		 t1[32], t2[32], **v;
	int		 ret;

	if (case_resolve_ref(s, case_ref, &c) == -1)
		return -1;
	if (json) {
		o = case_show_json(s, &c);
		ret = json_print(o, fp);
		json_object_put(o);
		case_row_free(&c);
		return ret;
	}
	fprintf(fp, "Case #%" PRId64 "  %s  %s (%s, urgency %s)\n", c.id, c.kind,
	    c.status, c.direction, c.urgency);
	print_field(fp, "Complaint:", c.complaint_id);
	v = case_complaint_ids(s, c.id);
	if (strv_len(v) > 1) {
		char	*j = g_strjoinv(", ", v);

		print_field(fp, "All ids:", j);
		g_free(j);
	}
	strv_free(v);
	print_field(fp, "Marketplace:", c.marketplace);
	print_field(fp, "Right:", c.infringement_type);
	v = case_asins(s, c.id);
	{
		char	*j = g_strjoinv(", ", v);

		print_field(fp, "ASINs:", *j != '\0' ? j : NULL);
		g_free(j);
	}
	strv_free(v);
	print_field(fp, "Rights owner:", c.rights_owner_name);
	print_field(fp, "Owner address:", c.rights_owner_email);
	if (c.owner_flags != NULL)
		print_field(fp, "Warning:", c.owner_flags);
	human_time(c.opened, t1, sizeof(t1));
	fprintf(fp, "%-14s %s UTC\n", "Opened:", t1);
	if (c.deadline_days >= 0)
		fprintf(fp, "%-14s %" PRId64 " days stated in the notice\n",
		    "Deadline:", c.deadline_days);
	if (c.closed != 0) {
		human_time(c.closed, t1, sizeof(t1));
		fprintf(fp, "%-14s %s UTC\n", "Ended:", t1);
	}
	if (c.close_reason != NULL)
		print_field(fp, "Reason:", c.close_reason);
	if (c.snoozed_until != 0) {
		human_time(c.snoozed_until, t1, sizeof(t1));
		fprintf(fp, "%-14s %s UTC\n", "Snoozed until:", t1);
	}

	fprintf(fp, "\nTasks:\n");
	st = store_stmt(s, "SELECT task, status, due, done_at FROM tasks"
	    " WHERE case_id = ?1 ORDER BY due, id");
	sqlite3_bind_int64(st, 1, c.id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		human_time(col_int(st, 2, 0), t1, sizeof(t1));
		human_time(col_int(st, 3, 0), t2, sizeof(t2));
		fprintf(fp, "  %-16s %-10s due %s%s%s\n",
		    sqlite3_column_text(st, 0), sqlite3_column_text(st, 1), t1,
		    sqlite3_column_type(st, 3) != SQLITE_NULL ? "  done " : "",
		    sqlite3_column_type(st, 3) != SQLITE_NULL ? t2 : "");
	}
	sqlite3_reset(st);

	fprintf(fp, "\nMessages:\n");
	st = store_stmt(s, "SELECT coalesce(m.date, m.received), m.role,"
	    " m.from_addr, m.subject FROM messages m WHERE m.case_id = ?1"
	    " ORDER BY coalesce(m.date, m.received), m.id");
	sqlite3_bind_int64(st, 1, c.id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		char	*from = term((const char *)sqlite3_column_text(st, 2), 60);
		char	*subj = term((const char *)sqlite3_column_text(st, 3), 100);

		human_time(col_int(st, 0, 0), t1, sizeof(t1));
		fprintf(fp, "  %s  %-9s %s: %s\n", t1, sqlite3_column_text(st, 1),
		    from, subj);
		free(subj);
		free(from);
	}
	sqlite3_reset(st);

	fprintf(fp, "\nHistory:\n");
	st = store_stmt(s, "SELECT at, 'event', what FROM events WHERE case_id = ?1"
	    " UNION ALL SELECT at, 'note', text FROM notes WHERE case_id = ?1"
	    " ORDER BY 1");
	sqlite3_bind_int64(st, 1, c.id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		char	*what = term((const char *)sqlite3_column_text(st, 2), 400);

		human_time(col_int(st, 0, 0), t1, sizeof(t1));
		fprintf(fp, "  %s  %-5s %s\n", t1, sqlite3_column_text(st, 1), what);
		free(what);
	}
	sqlite3_reset(st);
	case_row_free(&c);
	return ferror(fp) ? -1 : 0;
}

/*
 * The commands run in their own transaction, or in the caller's when one is
 * open (a mail command inside the daemon).  1 own, 0 the caller's, -1 failed.
 */
static int
tx_begin(struct store *s)
{
	if (sqlite3_get_autocommit(store_db(s)) == 0)
		return 0;
	if (store_begin(s) == -1) {
		fprintf(stderr, "ipcase: the database is busy or read-only\n");
		return -1;
	}
	return 1;
}

static int
tx_end(struct store *s, int own, int ret)
{
	if (own != 1)
		return ret;
	if (ret == 0 && store_commit(s) == 0)
		return 0;
	store_rollback(s);
	if (ret == 0)
		fprintf(stderr, "ipcase: could not save the change\n");
	return -1;
}

/* The open tasks of a case, ", "-joined ("none" when none); malloc'd. */
static char *
open_tasks_text(struct store *s, int64_t id)
{
	char	**open = case_strings(s, "SELECT task FROM tasks WHERE case_id = ?1"
	    " AND status = 'open' ORDER BY due", id);
	char	 *j = g_strjoinv(", ", open), *ret;

	ret = xstrdup(*j != '\0' ? j : "none");
	g_free(j);
	strv_free(open);
	return ret;
}

/* " (by mail from x)" for an event, "" for ipcase; malloc'd. */
static char *
by_suffix(const char *by)
{
	return by != NULL ? xasprintf(" (%s)", by) : xstrdup("");
}

/*
 * The work of the seller's commands, shared by ipcase and mail commands,
 * inside the caller's transaction.  by names who gave a mail command for
 * the case's events ("by mail from ops@shop.example"); NULL for ipcase.
 * Each returns 1 when applied, 0 when refused (why says why), -1 on a
 * database error.
 */
static int
apply_done(struct store *s, const struct case_row *c, const char *task,
    const char *by, time_t now, char *why, size_t whylen)
{
	char	*what, *suffix;
	int	 rc;

	if ((rc = task_finish(s, c->id, task, now)) == -1)
		return -1;
	if (rc == 0) {
		char	*safe = str_for_log(task, 40), *open = open_tasks_text(s, c->id);

		snprintf(why, whylen, "case %" PRId64 " has no open task \"%s\""
		    " (open: %s)", c->id, safe, open);
		free(open);
		free(safe);
		return 0;
	}
	suffix = by_suffix(by);
	what = xasprintf("task %s done%s", task, suffix);
	rc = event_add(s, c->id, now, what);
	free(what);
	free(suffix);
	if (rc == -1)
		return -1;
	/* The seller's own report: once Amazon decided, look at the listing again. */
	if (strcmp(task, "await_decision") == 0 && strcmp(c->status, "open") == 0 &&
	    task_create(s, c->id, "recheck_listing", now,
	    deadline_default("recheck_listing", now)) == -1)
		return -1;
	return case_touch(s, c->id, now) == 0 ? 1 : -1;
}

static int
apply_snooze(struct store *s, const struct case_row *c, long seconds,
    const char *by, time_t now)
{
	sqlite3_stmt	*st;
	char		 until[32], *what, *suffix;
	int		 rc;

	st = store_stmt(s, "UPDATE cases SET snoozed_until = ?2, updated = ?3"
	    " WHERE id = ?1");
	sqlite3_bind_int64(st, 1, c->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now + seconds);
	sqlite3_bind_int64(st, 3, now);
	if (store_step_done(s, st, "snooze") == -1)
		return -1;
	human_time(now + seconds, until, sizeof(until));
	suffix = by_suffix(by);
	what = xasprintf("reminders snoozed until %s UTC%s", until, suffix);
	rc = event_add(s, c->id, now, what);
	free(what);
	free(suffix);
	return rc == 0 ? 1 : -1;
}

static int
apply_close(struct store *s, const struct case_row *c, const char *reason,
    const char *by, time_t now, char *why, size_t whylen)
{
	sqlite3_stmt	*st;
	char		*text, *what, *suffix;
	int		 ret = -1;

	if (strcmp(c->status, "open") != 0) {
		snprintf(why, whylen, "case %" PRId64 " has already ended (%s)",
		    c->id, c->status);
		return 0;
	}
	text = utf8_sanitize(reason, strlen(reason));
	store_changed(s);
	st = store_stmt(s, "UPDATE cases SET status = 'closed', closed = ?2,"
	    " close_reason = ?3, updated = ?2 WHERE id = ?1");
	sqlite3_bind_int64(st, 1, c->id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
	if (store_step_done(s, st, "close case") == -1 || tasks_cancel_open(s, c->id) == -1 ||
	    task_revive(s, c->id, "prevent", now, deadline_default("prevent", now)) == -1)
		goto out;
	suffix = by_suffix(by);
	what = xasprintf("closed by the seller: %s%s", text, suffix);
	if (event_add(s, c->id, now, what) == 0)
		ret = 1;
	free(what);
	free(suffix);
out:
	free(text);
	return ret;
}

static int
apply_note(struct store *s, const struct case_row *c, const char *note,
    const char *by, time_t now)
{
	sqlite3_stmt	*st;
	char		*text, *what;
	int		 ret = -1;

	text = utf8_sanitize(note, strlen(note));
	st = store_stmt(s, "INSERT INTO notes(case_id, at, text) VALUES (?1, ?2, ?3)");
	sqlite3_bind_int64(st, 1, c->id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
	if (store_step_done(s, st, "add note") == -1 || case_touch(s, c->id, now) == -1)
		goto out;
	/* A note from ipcase is visible as such; one by mail also says who sent it. */
	if (by != NULL) {
		what = xasprintf("note added (%s)", by);
		if (event_add(s, c->id, now, what) == -1) {
			free(what);
			goto out;
		}
		free(what);
	}
	ret = 1;
out:
	free(text);
	return ret;
}

/* An ipcase command's outcome: a refusal is printed; 0 or -1. */
static int
command_outcome(int rc, const char *why)
{
	if (rc == 0)
		fprintf(stderr, "ipcase: %s\n", why);
	return rc == 1 ? 0 : -1;
}

/*
 * Resolves an ipcase command's case into c and opens its transaction:
 * tx_begin()'s 1 or 0, or -1 (printed, nothing to free).
 */
static int
command_begin(struct store *s, const char *case_ref, struct case_row *c)
{
	int	own;

	if (case_resolve_ref(s, case_ref, c) == -1)
		return -1;
	if ((own = tx_begin(s)) == -1) {
		case_row_free(c);
		return -1;
	}
	return own;
}

/* Ends what command_begin() began with rc, the apply_*() result: 0 or -1. */
static int
command_end(struct store *s, struct case_row *c, int own, int rc,
    const char *why)
{
	int	ret;

	ret = command_outcome(rc, why);
	ret = tx_end(s, own, ret);
	case_row_free(c);
	return ret;
}

int
cases_task_done(struct store *s, const char *case_ref, const char *task, time_t now)
{
	struct case_row	 c;
	char		 why[256];
	int		 own;

	if ((own = command_begin(s, case_ref, &c)) == -1)
		return -1;
	return command_end(s, &c, own,
	    apply_done(s, &c, task, NULL, now, why, sizeof(why)), why);
}

int
cases_snooze(struct store *s, const char *case_ref, long seconds, time_t now)
{
	struct case_row	 c;
	int		 own;

	if (seconds <= 0) {
		fprintf(stderr, "ipcase: snooze needs a positive duration (e.g. 3d)\n");
		return -1;
	}
	if ((own = command_begin(s, case_ref, &c)) == -1)
		return -1;
	return command_end(s, &c, own, apply_snooze(s, &c, seconds, NULL, now), "");
}

int
cases_close(struct store *s, const char *case_ref, const char *reason, time_t now)
{
	struct case_row	 c;
	char		 why[256];
	int		 own;

	if (reason == NULL || *reason == '\0') {
		fprintf(stderr, "ipcase: close needs a reason\n");
		return -1;
	}
	if ((own = command_begin(s, case_ref, &c)) == -1)
		return -1;
	return command_end(s, &c, own,
	    apply_close(s, &c, reason, NULL, now, why, sizeof(why)), why);
}

int
cases_note(struct store *s, const char *case_ref, const char *note, time_t now)
{
	struct case_row	 c;
	int		 own;

	if (note == NULL || *note == '\0') {
		fprintf(stderr, "ipcase: the note is empty\n");
		return -1;
	}
	if ((own = command_begin(s, case_ref, &c)) == -1)
		return -1;
	return command_end(s, &c, own, apply_note(s, &c, note, NULL, now), "");
}

/* ---- mail commands: the seller's reply to our own mail ---- */

/*
 * Did the mail come through a trusted Authentication-Results header that
 * says its From is forged (dmarc=fail)?  Only the receiving account's
 * authserv-ids count.  The token is the guard; this only adds to it.
 */
static bool
sender_forged(struct ingest *ix)
{
	struct auth_verdict av;
	char *const	*ids = NULL;
	size_t		 i;

	if (ix->origin == NULL || ix->origin->sent || ix->origin->account == NULL)
		return false;
	for (i = 0; i < ix->conf->naccounts; i++)
		if (ix->conf->accounts[i].name != NULL &&
		    strcmp(ix->conf->accounts[i].name, ix->origin->account) == 0)
			ids = ix->conf->accounts[i].authserv_ids;
	auth_check(ix->m, ix->conf->amazon_domains, ids, &av);
	return av.trusted_header && av.dmarc_fail;
}

/*
 * The confirmation, sent by schedule.c like an alert: an outbox row of kind
 * 'alert' with task 'confirm' (the schema allows no other kind), threshold
 * the command mail's dedupe key (unique, and the mail it answers), and
 * alert_text "subject\nbody".  Its Message-ID carries the case's token, so
 * the seller may answer it with further commands.
 */
static int
confirm_add(struct ingest *ix, const struct case_row *c, const char *text)
{
	const char	*domain = domain_of(ix->conf->smtp.from);
	sqlite3_stmt	*st;
	char		*hash = sha256_hex(ix->m->dedupe_key, strlen(ix->m->dedupe_key));
	char		*msgid;
	int		 ret;

	msgid = xasprintf("confirm.%.32s.%s@%s", hash, c->token,
	    domain != NULL ? domain : "ipcased.invalid");
	st = store_stmt(ix->s, "INSERT OR IGNORE INTO outbox(kind, case_id, task,"
	    " threshold, message_id, created, next_attempt, alert_text)"
	    " VALUES ('alert', ?1, 'confirm', ?2, ?3, ?4, ?4, ?5)");
	sqlite3_bind_int64(st, 1, c->id);
	sqlite3_bind_text(st, 2, ix->m->dedupe_key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, msgid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, ix->now);
	sqlite3_bind_text(st, 5, text, -1, SQLITE_TRANSIENT);
	ret = store_step_done(ix->s, st, "queue confirmation");
	free(msgid);
	free(hash);
	return ret;
}

/*
 * Applies the commands of one mail to case c in order, each once (the mail
 * is recorded first, so a second sight of it is a duplicate).  Each command
 * leaves an event; subject and body of the confirmation are appended to
 * *subject and *body.  0, or -1 on a database error.
 */
static int
commands_apply(struct ingest *ix, struct case_row *c, const struct our_mail *om,
    const struct command_list *cl, const char *by, struct buf *subject,
    struct buf *body)
{
	const struct command *cmd;
	char		 why[256], *what, *shown;
	const char	*task;
	size_t		 i;
	int		 rc;

	for (i = 0; i < cl->n; i++) {
		cmd = &cl->cmds[i];
		why[0] = '\0';
		task = NULL;
		switch (cmd->verb) {
		case COMMAND_DONE:
			/* A bare "done" means the task the answered reminder was about. */
			task = cmd->arg != NULL ? cmd->arg : om->task;
			if (task == NULL) {
				char	*open = open_tasks_text(ix->s, c->id);

				snprintf(why, sizeof(why), "say which task (open: %s)", open);
				free(open);
				rc = 0;
			} else
				rc = apply_done(ix->s, c, task, by, ix->now, why, sizeof(why));
			break;
		case COMMAND_SNOOZE:
			rc = apply_snooze(ix->s, c, cmd->seconds, by, ix->now);
			break;
		case COMMAND_CLOSE:
			rc = apply_close(ix->s, c, cmd->arg, by, ix->now, why, sizeof(why));
			break;
		case COMMAND_NOTE:
			rc = apply_note(ix->s, c, cmd->arg, by, ix->now);
			break;
		default:
			fatalx("mail command: verb %d", (int)cmd->verb);
		}
		if (rc == -1)
			return -1;
		shown = xasprintf("%s%s%s", command_verb_name(cmd->verb),
		    task != NULL || cmd->arg != NULL ? " " : "",
		    task != NULL ? task : cmd->arg != NULL ? cmd->arg : "");
		if (subject->len > 0)
			buf_puts(subject, "; ");
		if (rc == 0) {
			buf_printf(body, "Not applied: %s: %s\n", shown, why);
			buf_printf(subject, "Not applied: %s", shown);
			what = xasprintf("mail command not applied (%s): %s: %s", by,
			    shown, why);
			rc = event_add(ix->s, c->id, ix->now, what);
			free(what);
			if (rc == -1) {
				free(shown);
				return -1;
			}
		} else {
			buf_printf(body, "Applied: %s\n", shown);
			switch (cmd->verb) {
			case COMMAND_DONE:
				buf_printf(subject, "Done: %s", task);
				break;
			case COMMAND_SNOOZE:
				buf_printf(subject, "Snoozed %s", cmd->arg);
				break;
			case COMMAND_CLOSE:
				buf_printf(subject, "Closed: %s", cmd->arg);
				break;
			case COMMAND_NOTE:
				buf_puts(subject, "Noted");
				break;
			}
		}
		free(shown);
		/* A close changes what the next command finds. */
		case_row_free(c);
		if (case_load(ix->s, om->case_id, c) != 1)
			return -1;
	}
	return 0;
}

/*
 * A reply to our own mail (a reminder, an alert, a confirmation): never
 * correspondence.  Obeyed as commands only when it is no automatic reply,
 * not our own mail come back, from one of the seller's addresses, and the
 * id it answers carries the case's token; everything else is logged and
 * ignored.
 */
static enum result
ingest_reply_to_ours(struct ingest *ix, const struct our_mail *om)
{
	const struct message *m = ix->m;
	struct command_list cl;
	struct case_row	 c;
	struct buf	 subject = { 0 }, body = { 0 };
	const char	*why, *seller;
	char		 token[COMMAND_TOKEN_LEN + 1];
	char		*from = str_for_log(m->from_addr, TEXT_FIELD_MAX);
	char		*by = NULL, *text = NULL;
	size_t		 i, seen;
	enum result	 ret = R_RETRY;
	int		 rc;

	memset(&cl, 0, sizeof(cl));
	memset(&c, 0, sizeof(c));
	snprintf(ix->out->what, sizeof(ix->out->what), "ignored: reply to our mail");
	if ((rc = mail_is_ours(ix)) != 0) {
		if (rc == 1)
			log_info("cases: our own mail came back (from %s): ignored", from);
		ret = rc == 1 ? R_OK : R_RETRY;
		goto out;
	}
	if ((why = message_automatic(m)) != NULL) {
		log_info("cases: %s answered our mail automatically (%s): ignored",
		    from, why);
		ret = R_OK;
		goto out;
	}
	if (om->case_id <= 0) {
		log_info("cases: %s replied to our mail about no case (a digest or "
		    "an alert): ignored", from);
		ret = R_OK;
		goto out;
	}
	if ((seller = seller_address(ix->conf, m->from_addr)) == NULL) {
		log_warnx("cases: case %" PRId64 ": command from an unknown address "
		    "%s: ignored (only smtp.to may give commands)", om->case_id, from);
		ret = R_OK;
		goto out;
	}
	if ((rc = case_load(ix->s, om->case_id, &c)) != 1) {
		ret = rc == 0 ? R_OK : R_RETRY;
		goto out;
	}
	if (!command_msgid_token(om->message_id, token, sizeof(token)) ||
	    c.token == NULL || strcmp(token, c.token) != 0) {
		log_warnx("cases: case %" PRId64 ": reply from %s does not carry "
		    "the case's token: ignored", c.id, from);
		ret = R_OK;
		goto out;
	}
	if (sender_forged(ix)) {
		log_warnx("cases: case %" PRId64 ": reply from %s fails DMARC: "
		    "a forged sender, ignored", c.id, from);
		ret = R_OK;
		goto out;
	}
	if ((seen = command_parse(m->text, m->text_len, &cl)) == 0) {
		log_info("cases: case %" PRId64 ": reply from %s holds no command "
		    "line: ignored", c.id, from);
		ret = R_OK;
		goto out;
	}

	by = xasprintf("by mail from %s", seller);
	if (message_record(ix, c.id, "seller", "command") == -1 ||
	    commands_apply(ix, &c, om, &cl, by, &subject, &body) == -1)
		goto out;
	for (i = 0; i < cl.nbad; i++) {
		char	*what = xasprintf("mail command not understood (%s): %s",
		    by, cl.bad[i]);

		buf_printf(&body, "Not understood: %s\n", cl.bad[i]);
		rc = event_add(ix->s, c.id, ix->now, what);
		free(what);
		if (rc == -1)
			goto out;
	}
	if (cl.dropped > 0)
		buf_printf(&body, "Not obeyed: %zu more command line%s (at most %d "
		    "per mail)\n", cl.dropped, cl.dropped == 1 ? "" : "s", COMMAND_MAX);
	if (cl.nbad > 0) {
		buf_free(&subject);
		buf_printf(&subject, "Not understood: %s", cl.bad[0]);
	} else if (cl.dropped > 0 && subject.len == 0)
		buf_printf(&subject, "Not obeyed: too many commands");
	buf_puts(&body, "Commands, one per line at the top of a reply to a "
	    "reminder: done TASK (or just done), snooze 2d, close REASON, "
	    "note TEXT.\n");
	buf_append(&subject, "", 0);
	text = xasprintf("%s\n%s", subject.data, body.data != NULL ? body.data : "");
	if (confirm_add(ix, &c, text) == -1)
		goto out;
	ix->out->case_id = c.id;
	snprintf(ix->out->what, sizeof(ix->out->what), "mail command: %s",
	    subject.data);
	log_info("cases: case %" PRId64 ": %zu command%s from %s: %s", c.id, seen,
	    seen == 1 ? "" : "s", from, subject.data);
	ret = R_OK;
out:
	free(text);
	free(by);
	buf_free(&body);
	buf_free(&subject);
	command_list_clear(&cl);
	case_row_free(&c);
	free(from);
	return ret;
}

int
cases_summary(struct store *s, int *open_cases, time_t *next_due)
{
	sqlite3_stmt	*st;
	int64_t		 n = 0, due = 0;

	*open_cases = 0;
	*next_due = 0;
	st = store_stmt(s, "SELECT count(*) FROM cases WHERE status = 'open'");
	if (store_step_int(s, st, &n, "summary") == -1)
		return -1;
	st = store_stmt(s, "SELECT min(t.due) FROM tasks t JOIN cases c"
	    " ON c.id = t.case_id WHERE t.status = 'open' AND c.status = 'open'");
	if (store_step_int(s, st, &due, "summary") == -1)
		return -1;
	*open_cases = (int)n;
	*next_due = (time_t)due;
	return 0;
}

/* ---- export ---- */

struct export_msg {
	int64_t	 id;
	time_t	 at;
	char	*role, *from, *subject, *sha256, *file;
	char	*raw;
	size_t	 raw_len;
	bool	 has_raw;
};

struct tl_entry {
	time_t		 at;
	size_t		 seq;		/* keeps equal times in insertion order */
	char		*md;		/* one Markdown list item, terminal-safe */
	json_object	*obj;
};

struct timeline {
	struct tl_entry	*v;
	size_t		 n;
};

static void
tl_add(struct timeline *tl, time_t at, const char *type, char *md, json_object *obj)
{
	tl->v = xreallocarray(tl->v, tl->n + 1, sizeof(*tl->v));
	json_object_object_add(obj, "at", json_time(at));
	json_object_object_add(obj, "type", json_object_new_string(type));
	tl->v[tl->n].at = at;
	tl->v[tl->n].seq = tl->n;
	tl->v[tl->n].md = md;
	tl->v[tl->n].obj = obj;
	tl->n++;
}

static int
tl_cmp(const void *a, const void *b)
{
	const struct tl_entry *x = a, *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A file-name-safe slug of a subject: ASCII letters and digits and dashes, cut at a word within 40. */
static char *
subject_slug(const char *subject)
{
	struct buf	 b = { 0 };
	bool		 dash = false;
	const char	*p;
	char		*slug, *cut;

	buf_append(&b, "", 0);
	for (p = subject != NULL ? subject : ""; *p != '\0' && b.len <= 40; p++) {
		if (isascii((unsigned char)*p) && isalnum((unsigned char)*p)) {
			if (dash && b.len > 0)
				buf_puts(&b, "-");
			dash = false;
			buf_append(&b, (const char[]){ (char)tolower((unsigned char)*p) }, 1);
		} else
			dash = true;
	}
	if (b.len == 0)
		buf_puts(&b, "no-subject");
	slug = buf_steal(&b);
	if (strlen(slug) > 40) {
		slug[40] = '\0';
		if ((cut = strrchr(slug, '-')) != NULL && cut - slug >= 10)
			*cut = '\0';
	}
	return slug;
}

static int
write_new(int dfd, const char *dir, const char *name, const void *data, size_t len)
{
	const char	*p = data;
	ssize_t		 n;
	int		 fd;

	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd == -1) {
		fprintf(stderr, "ipcase: %s/%s: %s\n", dir, name, strerror(errno));
		return -1;
	}
	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "ipcase: %s/%s: %s\n", dir, name, strerror(errno));
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		fprintf(stderr, "ipcase: %s/%s: %s\n", dir, name, strerror(errno));
		return -1;
	}
	return 0;
}

static void
export_msgs_free(struct export_msg *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].role);
		free(v[i].from);
		free(v[i].subject);
		free(v[i].sha256);
		free(v[i].file);
		free(v[i].raw);
	}
	free(v);
}

static struct export_msg *
export_load_msgs(struct store *s, int64_t case_id, size_t *np)
{
	sqlite3_stmt	*st = store_stmt(s, "SELECT id, coalesce(date, received),"
	    " role, from_addr, subject, sha256, raw FROM messages WHERE case_id = ?1"
	    " ORDER BY coalesce(date, received), id");
	struct export_msg *v = NULL, *e;
	size_t		 n = 0;
	int		 len;

	sqlite3_bind_int64(st, 1, case_id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		v = xreallocarray(v, n + 1, sizeof(*v));
		e = &v[n++];
		memset(e, 0, sizeof(*e));
		e->id = sqlite3_column_int64(st, 0);
		e->at = (time_t)sqlite3_column_int64(st, 1);
		e->role = store_column_dup(st, 2);
		e->from = store_column_dup(st, 3);
		e->subject = store_column_dup(st, 4);
		e->sha256 = store_column_dup(st, 5);
		if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
			const void *blob = sqlite3_column_blob(st, 6);

			len = sqlite3_column_bytes(st, 6);
			e->raw = xmalloc((size_t)len + 1);
			if (len > 0)
				memcpy(e->raw, blob, (size_t)len);
			e->raw_len = (size_t)len;
			e->has_raw = true;
		}
	}
	sqlite3_reset(st);
	*np = n;
	return v;
}

static void
export_timeline_rest(struct store *s, int64_t case_id, struct timeline *tl)
{
	sqlite3_stmt	*st;
	char		 t1[32];

	st = store_stmt(s, "SELECT task, status, created, due, done_at FROM tasks"
	    " WHERE case_id = ?1 ORDER BY created, id");
	sqlite3_bind_int64(st, 1, case_id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *task = (const char *)sqlite3_column_text(st, 0);
		const char *status = (const char *)sqlite3_column_text(st, 1);
		json_object *o = json_object_new_object();

		human_time(col_int(st, 3, 0), t1, sizeof(t1));
		json_object_object_add(o, "task", json_object_new_string(task));
		json_object_object_add(o, "status", json_object_new_string(status));
		json_object_object_add(o, "due", json_time(col_int(st, 3, 0)));
		json_object_object_add(o, "done_at", json_time(col_int(st, 4, 0)));
		tl_add(tl, col_int(st, 2, 0), "task",
		    xasprintf("task `%s` created, due %s UTC (now %s)", task, t1,
		    status), o);
		if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
			o = json_object_new_object();
			json_object_object_add(o, "task", json_object_new_string(task));
			tl_add(tl, col_int(st, 4, 0), "task_done",
			    xasprintf("task `%s` done", task), o);
		}
	}
	sqlite3_reset(st);

	st = store_stmt(s, "SELECT at, 'event', what FROM events WHERE case_id = ?1"
	    " UNION ALL SELECT at, 'note', text FROM notes WHERE case_id = ?1"
	    " ORDER BY 1");
	sqlite3_bind_int64(st, 1, case_id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(st, 1);
		const char *text = (const char *)sqlite3_column_text(st, 2);
		json_object *o = json_object_new_object();
		char	*safe = term(text, 2000);

		json_object_object_add(o, "text", json_object_new_string(text));
		tl_add(tl, col_int(st, 0, 0), type, xasprintf("%s: %s",
		    strcmp(type, "note") == 0 ? "your note" : "event", safe), o);
		free(safe);
	}
	sqlite3_reset(st);
}

int
cases_export(struct store *s, const char *case_ref, const char *dir)
{
	static const char *const fixed[] = { "timeline.md", "timeline.json", "SHA256SUMS" };
	struct case_row	 c;
	struct export_msg *msgs = NULL;
	struct timeline	 tl = { NULL, 0 };
	struct buf	 md = { 0 }, sums = { 0 };
	struct stat	 sb;
	json_object	*root = NULL, *arr;
	const char	*text;
	char		 day[16], t1[32], *hash;
	size_t		 n = 0, i;
	int		 dfd = -1, ret = -1;

	if (case_resolve_ref(s, case_ref, &c) == -1)
		return -1;
	if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "ipcase: %s: %s\n", dir, strerror(errno));
		goto out;
	}
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "ipcase: %s: %s\n", dir, strerror(errno));
		goto out;
	}
	msgs = export_load_msgs(s, c.id, &n);
	for (i = 0; i < n; i++) {
		struct tm	 tm;
		char		*slug = subject_slug(msgs[i].subject);

		gmtime_r(&msgs[i].at, &tm);
		strftime(day, sizeof(day), "%Y%m%d", &tm);
		msgs[i].file = xasprintf("%02zu-%s-%s.eml", i + 1, day, slug);
		free(slug);
	}
	/* Evidence is never overwritten: check every name before writing any. */
	for (i = 0; i < n + NELEM(fixed); i++) {
		const char *name = i < n ? msgs[i].file : fixed[i - n];

		if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
			fprintf(stderr, "ipcase: %s/%s exists; export into an "
			    "empty directory\n", dir, name);
			goto out;
		}
	}

	buf_append(&sums, "", 0);
	for (i = 0; i < n; i++) {
		struct export_msg *e = &msgs[i];
		json_object	*o = json_object_new_object();
		char		*from = term(e->from, 200), *subj = term(e->subject, 300);
		const char	*note = "";

		json_object_object_add(o, "role", json_str(e->role));
		json_object_object_add(o, "from", json_str(e->from));
		json_object_object_add(o, "subject", json_str(e->subject));
		json_object_object_add(o, "sha256", json_str(e->sha256));
		if (e->has_raw) {
			if (write_new(dfd, dir, e->file, e->raw, e->raw_len) == -1) {
				free(subj);
				free(from);
				json_object_put(o);
				goto out;
			}
			hash = sha256_hex(e->raw, e->raw_len);
			if (e->sha256 == NULL || strcmp(hash, e->sha256) != 0) {
				fprintf(stderr, "ipcase: warning: %s: the stored "
				    "bytes no longer match the hash taken when the "
				    "mail arrived\n", e->file);
				note = " **hash differs from the one recorded on arrival**";
			}
			buf_printf(&sums, "%s  %s\n", hash, e->file);
			free(hash);
			json_object_object_add(o, "file", json_str(e->file));
		} else {
			note = " (raw bytes were not kept)";
			json_object_object_add(o, "file", NULL);
		}
		tl_add(&tl, e->at, "message", xasprintf("mail (%s) from %s: %s — "
		    "`%s`, sha256 %s%s", e->role, from, subj,
		    e->has_raw ? e->file : "-", e->sha256 != NULL ? e->sha256 : "-",
		    note), o);
		free(subj);
		free(from);
	}
	export_timeline_rest(s, c.id, &tl);
	if (tl.n > 0)
		qsort(tl.v, tl.n, sizeof(*tl.v), tl_cmp);

	/* timeline.md */
	{
		char	*kind = term(c.kind, 40), *cid = term(c.complaint_id, 40);
		char	*mkt = term(c.marketplace, 8), *type = term(c.infringement_type, 40);
		char	*owner = term(c.rights_owner_name, 200);
		char	*email = term(c.rights_owner_email, 200);
		char	**asins = case_asins(s, c.id), *j = g_strjoinv(", ", asins);

		human_time(c.opened, t1, sizeof(t1));
		buf_printf(&md, "# Case %" PRId64 ": %s %s (%s)\n\n", c.id, kind,
		    cid, mkt);
		buf_printf(&md, "- Status: %s\n- Right: %s\n- ASINs: %s\n"
		    "- Rights owner: %s <%s>\n- Opened: %s UTC\n\n## Timeline (UTC)\n\n",
		    c.status, type, *j != '\0' ? j : "-", owner, email, t1);
		g_free(j);
		strv_free(asins);
		free(email);
		free(owner);
		free(type);
		free(mkt);
		free(cid);
		free(kind);
	}
	arr = json_object_new_array();
	for (i = 0; i < tl.n; i++) {
		human_time(tl.v[i].at, t1, sizeof(t1));
		buf_printf(&md, "- %s — %s\n", t1, tl.v[i].md);
		json_object_array_add(arr, tl.v[i].obj);
		tl.v[i].obj = NULL;
	}
	root = json_object_new_object();
	json_object_object_add(root, "case", case_show_json(s, &c));
	json_object_object_add(root, "timeline", arr);
	if (write_new(dfd, dir, "timeline.md", md.data, md.len) == -1)
		goto out;
	hash = sha256_hex(md.data, md.len);
	buf_printf(&sums, "%s  timeline.md\n", hash);
	free(hash);
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	{
		char	*withnl = xasprintf("%s\n", text);

		ret = write_new(dfd, dir, "timeline.json", withnl, strlen(withnl));
		if (ret == 0) {
			hash = sha256_hex(withnl, strlen(withnl));
			buf_printf(&sums, "%s  timeline.json\n", hash);
			free(hash);
		}
		free(withnl);
		if (ret == -1)
			goto out;
		ret = -1;
	}
	if (write_new(dfd, dir, "SHA256SUMS", sums.data, sums.len) == -1)
		goto out;
	ret = 0;
out:
	for (i = 0; i < tl.n; i++) {
		free(tl.v[i].md);
		json_object_put(tl.v[i].obj);
	}
	free(tl.v);
	json_object_put(root);
	buf_free(&md);
	buf_free(&sums);
	export_msgs_free(msgs, n);
	if (dfd != -1)
		close(dfd);
	case_row_free(&c);
	return ret;
}
