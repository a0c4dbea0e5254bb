/* schedule.c — reminder planning (thresholds, overdue repeats, quiet hours, digests, backlog cap) and the outbox sender. */
#include "schedule.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <sqlite3.h>

#include "log.h"
#include "mailer.h"
#include "msgid.h"
#include "util.h"

#define RETRY_BASE_SEC		60		/* first retry after a transient SMTP failure */
#define RETRY_MAX_SEC		(6 * 3600)	/* back-off ceiling */
#define HOLD_SEC		3600		/* permanent failures need the admin: retry hourly */
/*
 * No pending row legitimately waits longer than quiet hours (< 24 h) plus a
 * back-off (<= 6 h); one that does was scheduled before the clock went back.
 */
#define CLOCK_JUMP_SEC		(30 * 3600)
/* A late start still gets the day's digest; a start at night does not get a stale one. */
#define DIGEST_WINDOW_SEC	(12 * 3600)
#define CORRESPONDENCE_MAX	10		/* messages listed in a reminder, the newest */
#define LINE_MAX_BYTES		200		/* of one correspondence line */
#define UNIX_MAX		253402300799LL	/* 9999-12-31T23:59:59Z, GDateTime's limit */
#define BUSINESS_DAYS_MAX	10000		/* about 40 years: beyond is a typo, not a deadline */

/* One reminder time of a task. */
struct threshold {
	char	name[24];		/* "72h", "due", "overdue2" */
	time_t	at;
};

/* An open task of an open, awake case, as the planner sees it. */
struct plan_task {
	int64_t	 case_id;
	char	*task;			/* owned */
	char	*token;			/* owned: the case's, for the Message-ID (reply commands) */
	time_t	 due;
};

/* A case as a reminder shows it: the mail_case and the strings it borrows. */
struct case_view {
	struct mail_case mc;		/* points into the fields below */
	char		*token;
	char		*kind;
	char		*status;
	char		*complaint_id;
	char		*marketplace;
	char		*infringement_type;
	char		*rights_owner_name;
	char		*rights_owner_email;
	char		*urgency;
	char		*next_task;
	char		*correspondence;
	char	       **asins;		/* NULL-terminated */
};

/* One outbox row loaded for sending. */
struct outbox_row {
	int64_t	 id;
	char	*kind;
	int64_t	 case_id;		/* 0 when NULL */
	char	*task;
	char	*threshold;
	char	*message_id;
	int	 attempts;
	char	*status;
	char	*last_reply;
	char	*alert_text;
};

/* Failed deliveries in a row after which the rest of a pass waits (schedule_send_due). */
#define SEND_FAILURES_MAX	2

enum send_outcome {
	SEND_SENT,
	SEND_FAILED,			/* kept, next_attempt moved on */
	SEND_UNREACHABLE,		/* the same, and the server never answered */
	SEND_CANCELLED,			/* nothing to remind of any more */
	SEND_DBERROR
};

/* Logs the database error of the statement st ran into. */
static void
db_warn(struct store *s, const char *what)
{
	log_warnx("schedule: %s: %s", what, sqlite3_errmsg(store_db(s)));
}

/* The seller's zone; an unknown name (conf.c should have refused it) falls back to UTC. */
static GTimeZone *
tz_open(const struct conf *conf)
{
	const char	*name = conf->reminders.timezone;
	GTimeZone	*tz = NULL;

	if (name != NULL && *name != '\0' && strcmp(name, "UTC") != 0) {
		if ((tz = g_time_zone_new_identifier(name)) == NULL)
			log_warnx("schedule: unknown time zone \"%s\", using UTC",
			    name);
	}
	if (tz == NULL)
		tz = g_time_zone_new_utc();
	return tz;
}

/* t in the seller's zone.  Never NULL: t is clamped to what GDateTime can hold. */
static GDateTime *
local_time(GTimeZone *tz, time_t t)
{
	GDateTime	*utc, *local;

	if (t < 0)
		t = 0;
	if ((long long)t > UNIX_MAX - 2 * 86400)
		t = (time_t)(UNIX_MAX - 2 * 86400);
	if ((utc = g_date_time_new_from_unix_utc((gint64)t)) == NULL)
		fatalx("schedule: time %lld out of range", (long long)t);
	local = g_date_time_to_timezone(utc, tz);
	g_date_time_unref(utc);
	if (local == NULL)
		fatalx("schedule: time %lld out of range", (long long)t);
	return local;
}

/*
 * A local wall-clock time to UTC.  GLib resolves a time inside a DST gap
 * to the same wall time in the interval after it, which is what a reader
 * expects of "08:00" (the gap is at night anyway).
 */
static time_t
local_make(GTimeZone *tz, const GDate *date, int minute_of_day, int second)
{
	GDateTime	*dt;
	time_t		 t;

	dt = g_date_time_new(tz, g_date_get_year(date), g_date_get_month(date),
	    g_date_get_day(date), minute_of_day / 60, minute_of_day % 60, second);
	if (dt == NULL)
		fatalx("schedule: invalid local time %d-%d-%d %d", g_date_get_year(date),
		    g_date_get_month(date), g_date_get_day(date), minute_of_day);
	t = (time_t)g_date_time_to_unix(dt);
	g_date_time_unref(dt);
	return t;
}

static void
date_of(GDateTime *dt, GDate *date)
{
	int	y, m, d;

	g_date_time_get_ymd(dt, &y, &m, &d);
	g_date_clear(date, 1);
	g_date_set_dmy(date, (GDateDay)d, (GDateMonth)m, (GDateYear)y);
}

static void
date_format(const GDate *date, char *buf, size_t len)
{
	snprintf(buf, len, "%04d-%02d-%02d", g_date_get_year(date),
	    g_date_get_month(date), g_date_get_day(date));
}

static bool
quiet_enabled(const struct conf_reminders *r)
{
	return r->quiet_start_min >= 0 && r->quiet_end_min >= 0 &&
	    r->quiet_start_min != r->quiet_end_min &&
	    r->quiet_start_min < 24 * 60 && r->quiet_end_min < 24 * 60;
}

/* When the quiet hours around t end; t itself when t is not in quiet hours. */
static time_t
quiet_end_after(GTimeZone *tz, const struct conf_reminders *r, time_t t)
{
	GDateTime	*local;
	GDate		 date;
	time_t		 end;
	int		 m, start = r->quiet_start_min, stop = r->quiet_end_min;
	bool		 quiet, tomorrow = false;

	if (!quiet_enabled(r))
		return t;
	local = local_time(tz, t);
	m = g_date_time_get_hour(local) * 60 + g_date_time_get_minute(local);
	if (start < stop)
		quiet = m >= start && m < stop;
	else {
		/* The usual case, e.g. 21:00-08:00: the night spans midnight. */
		quiet = m >= start || m < stop;
		tomorrow = m >= start;
	}
	if (!quiet) {
		g_date_time_unref(local);
		return t;
	}
	date_of(local, &date);
	g_date_time_unref(local);
	if (tomorrow)
		g_date_add_days(&date, 1);
	end = local_make(tz, &date, stop, 0);
	return end > t ? end : t;
}

/* "72h" for 259200 seconds: the names rows are keyed on. */
static void
threshold_name(long seconds, char *buf, size_t len)
{
	if (seconds % 3600 == 0)
		snprintf(buf, len, "%ldh", seconds / 3600);
	else if (seconds % 60 == 0)
		snprintf(buf, len, "%ldm", seconds / 60);
	else
		snprintf(buf, len, "%lds", seconds);
}

static int
threshold_cmp(const void *a, const void *b)
{
	const struct threshold *x = a, *y = b;

	return x->at < y->at ? -1 : x->at > y->at;
}

/*
 * Every reminder time of a task due at due, earliest first: one per
 * reminders.before (72h, 24h, 2h), "due", then overdue1..overdue_max.  The
 * position in this list orders thresholds.  Returns the count; *out is
 * malloc'd.
 */
static size_t
thresholds_build(const struct conf_reminders *r, time_t due, struct threshold **out)
{
	struct threshold *th;
	size_t		  n = 0, i, j;
	int		  k, nover;

	/* A due time from a hostile notice must not overflow the arithmetic below. */
	if (due < 0)
		due = 0;
	if ((long long)due > UNIX_MAX)
		due = (time_t)UNIX_MAX;
	nover = r->overdue_every > 0 && r->overdue_max > 0 ? r->overdue_max : 0;
	th = xcalloc(r->nbefore + 1 + (size_t)nover, sizeof(*th));
	for (i = 0; i < r->nbefore; i++) {
		if (r->before[i] <= 0)
			continue;
		threshold_name(r->before[i], th[n].name, sizeof(th[n].name));
		th[n].at = due - r->before[i];
		n++;
	}
	qsort(th, n, sizeof(*th), threshold_cmp);
	/* Two spellings of the same offset ("3d", "72h") are one threshold. */
	for (i = 0, j = 0; i < n; i++)
		if (j == 0 || th[j - 1].at != th[i].at)
			th[j++] = th[i];
	n = j;
	snprintf(th[n].name, sizeof(th[n].name), "due");
	th[n++].at = due;
	for (k = 1; k <= nover; k++) {
		if (r->overdue_every > (UNIX_MAX - (long long)due) / k)
			break;
		snprintf(th[n].name, sizeof(th[n].name), "overdue%d", k);
		th[n++].at = due + (time_t)k * r->overdue_every;
	}
	*out = th;
	return n;
}

/* The domain our Message-IDs carry: that of smtp.from. */
static char *
msgid_domain(const struct conf *conf)
{
	const char	*from = conf->smtp.from, *at;
	char		*domain;
	size_t		 len;

	if (from == NULL || (at = strrchr(from, '@')) == NULL || at[1] == '\0')
		return xstrdup("localhost");
	domain = xstrdup(at + 1);
	len = strcspn(domain, "> \t");
	domain[len] = '\0';
	if (len == 0) {
		free(domain);
		return xstrdup("localhost");
	}
	str_lower(domain);
	return domain;
}

/*
 * Adds an outbox row.  Returns 1 when added, 0 when the row for (kind, case,
 * task, threshold) already exists, -1 on a database error (logged).
 */
static int
outbox_insert(struct store *s, const char *kind, int64_t case_id, const char *task,
    const char *threshold, const char *message_id, time_t now, const char *status,
    time_t next_attempt, const char *last_reply)
{
	sqlite3_stmt	*st;
	int		 rc, ret = 1;

	st = store_stmt(s, "INSERT INTO outbox(kind, case_id, task, threshold,"
	    " message_id, created, status, attempts, next_attempt, last_reply)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9)");
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	store_bind_id(st, 2, case_id);
	sqlite3_bind_text(st, 3, task, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, threshold, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, message_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now);
	sqlite3_bind_text(st, 7, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, next_attempt);
	sqlite3_bind_text(st, 9, last_reply, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		if (sqlite3_extended_errcode(store_db(s)) == SQLITE_CONSTRAINT_UNIQUE)
			ret = 0;
		else {
			db_warn(s, "add reminder");
			ret = -1;
		}
	}
	sqlite3_reset(st);
	return ret;
}

static int
any_open_case(struct store *s)
{
	sqlite3_stmt	*st;

	st = store_stmt(s, "SELECT 1 FROM cases WHERE status = 'open' LIMIT 1");
	return store_step_int(s, st, NULL, "open cases");
}

/*
 * A pending row whose time lies far ahead was scheduled before the clock
 * went back: send it now rather than days late.
 */
static int
plan_clock_jump(struct store *s, time_t now)
{
	sqlite3_stmt	*st;
	int		 n;

	st = store_stmt(s, "UPDATE outbox SET next_attempt = ?1"
	    " WHERE status IN ('pending', 'held') AND next_attempt > ?2");
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, now + CLOCK_JUMP_SEC);
	if (store_step_done(s, st, "reschedule after a clock jump") == -1)
		return -1;
	if ((n = sqlite3_changes(store_db(s))) > 0)
		log_warnx("schedule: %d reminders were scheduled more than %d h "
		    "ahead (did the clock go back?); sending them now", n,
		    CLOCK_JUMP_SEC / 3600);
	return 0;
}

/* Pending task reminders of done tasks, closed cases and snoozed cases are cancelled: nothing left to remind of. */
static int
plan_cancel(struct store *s, time_t now)
{
	static const struct {
		const char	*sql;
		const char	*why;
	} rules[] = {
		{ "UPDATE outbox SET status = 'cancelled', last_reply = ?1"
		  " WHERE kind = 'task' AND status IN ('pending', 'held')"
		  " AND NOT EXISTS (SELECT 1 FROM tasks t"
		  " WHERE t.case_id = outbox.case_id AND t.task = outbox.task"
		  " AND t.status = 'open')",
		  "cancelled: task done" },
		{ "UPDATE outbox SET status = 'cancelled', last_reply = ?1"
		  " WHERE kind = 'task' AND status IN ('pending', 'held')"
		  " AND EXISTS (SELECT 1 FROM cases c WHERE c.id = outbox.case_id"
		  " AND c.snoozed_until > ?2)",
		  "cancelled: case snoozed" },
	};
	sqlite3_stmt	*st;
	size_t		 i;
	int		 n;

	for (i = 0; i < NELEM(rules); i++) {
		st = store_stmt(s, rules[i].sql);
		sqlite3_bind_text(st, 1, rules[i].why, -1, SQLITE_STATIC);
		if (sqlite3_bind_parameter_count(st) >= 2)
			sqlite3_bind_int64(st, 2, now);
		if (store_step_done(s, st, "cancel reminders") == -1)
			return -1;
		if ((n = sqlite3_changes(store_db(s))) > 0)
			log_info("schedule: %d pending reminders %s", n, rules[i].why);
	}
	return 0;
}

/* The day's digest row, once per local date, when a case is open.  Returns rows added or -1. */
static int
plan_daily_digest(struct store *s, const struct conf *conf, GTimeZone *tz,
    const char *domain, time_t now)
{
	const struct conf_reminders *r = &conf->reminders;
	sqlite3_stmt	*st;
	GDateTime	*local;
	GDate		 date;
	char		 day[16], tag[32], *message_id;
	time_t		 at;
	int		 n;

	if (r->digest_hour < 0 || r->digest_hour > 23)
		return 0;
	local = local_time(tz, now);
	date_of(local, &date);
	g_date_time_unref(local);
	at = local_make(tz, &date, r->digest_hour * 60, 0);
	if (now < at || now >= at + DIGEST_WINDOW_SEC)
		return 0;
	if ((n = any_open_case(s)) != 1)
		return n;
	date_format(&date, day, sizeof(day));
	/* case_id is NULL, which UNIQUE does not compare: look first. */
	st = store_stmt(s, "SELECT 1 FROM outbox WHERE kind = 'digest'"
	    " AND threshold = ?1 LIMIT 1");
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	if ((n = store_step_int(s, st, NULL, "find digest")) != 0)
		return n == 1 ? 0 : -1;
	snprintf(tag, sizeof(tag), "d%s", day);
	message_id = msgid_generate(tag, domain);
	n = outbox_insert(s, "digest", 0, NULL, day, message_id, now, "pending",
	    quiet_end_after(tz, r, now), NULL);
	free(message_id);
	return n;
}

/*
 * Task reminders that will have gone out in the hour of send: sent in that
 * hour, or still waiting with a time before its end (a backlog held up by a
 * mail server outage counts too).
 */
static int
bucket_count(struct store *s, time_t send, long *count)
{
	sqlite3_stmt	*st;
	time_t		 hour = send - send % 3600;
	int		 rc, ret = 0;

	st = store_stmt(s, "SELECT count(*) FROM outbox WHERE kind = 'task' AND"
	    " ((status IN ('pending', 'held') AND next_attempt < ?2) OR"
	    " (status = 'sent' AND sent_at >= ?1 AND sent_at < ?2))");
	sqlite3_bind_int64(st, 1, hour);
	sqlite3_bind_int64(st, 2, hour + 3600);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*count = (long)sqlite3_column_int64(st, 0);
	else {
		db_warn(s, "count reminders");
		ret = -1;
	}
	sqlite3_reset(st);
	return ret;
}

/*
 * bucket_count() for one schedule_plan(): a first scan queues a reminder for
 * each of ~1,000 tasks, and counting the outbox again for each was quadratic.
 * Nothing but plan_task() writes task rows while the plan runs, so the counts
 * read once stay right when each new row is added to them (bucket_add()).
 */
#define BUCKETS_MAX	8

struct buckets {
	time_t	 hour[BUCKETS_MAX];
	long	 count[BUCKETS_MAX];
	size_t	 n;
};

static int
bucket_count_cached(struct store *s, struct buckets *b, time_t send, long *count)
{
	time_t	hour = send - send % 3600;
	size_t	i;

	for (i = 0; i < b->n; i++)
		if (b->hour[i] == hour) {
			*count = b->count[i];
			return 0;
		}
	if (bucket_count(s, send, count) == -1)
		return -1;
	/* Full: count with SQL each time, as before. */
	if (b->n < BUCKETS_MAX) {
		b->hour[b->n] = hour;
		b->count[b->n++] = *count;
	}
	return 0;
}

/* A new pending task row waiting from next_attempt: the hours whose bucket_count() it joins. */
static void
bucket_add(struct buckets *b, time_t next_attempt)
{
	size_t	i;

	for (i = 0; i < b->n; i++)
		if (next_attempt < b->hour[i] + 3600)
			b->count[i]++;
}

/*
 * The digest that takes reminders over the hourly cap: a digest still
 * waiting to go out by the end of send's hour, or a new one.  Its threshold
 * is copied into name.  Returns rows added (0 or 1) or -1.
 */
static int
plan_backlog_digest(struct store *s, const char *domain, time_t now, time_t send,
    char *name, size_t namelen)
{
	sqlite3_stmt	*st;
	struct tm	 tm;
	time_t		 hour = send - send % 3600;
	char		 tag[64], *message_id;
	int		 rc, n, attempt;

	st = store_stmt(s, "SELECT threshold FROM outbox WHERE kind = 'digest'"
	    " AND status IN ('pending', 'held') AND next_attempt < ?1"
	    " ORDER BY next_attempt, id LIMIT 1");
	sqlite3_bind_int64(st, 1, hour + 3600);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(name, namelen, "%s", (const char *)sqlite3_column_text(st, 0));
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_warn(s, "find digest");
		return -1;
	}
	/* Named after the hour; if that digest already went out, after this run. */
	for (attempt = 0; attempt < 2; attempt++) {
		if (attempt == 0) {
			gmtime_r(&hour, &tm);
			strftime(name, namelen, "backlog-%Y-%m-%dT%HZ", &tm);
		} else {
			gmtime_r(&now, &tm);
			strftime(name, namelen, "backlog-%Y-%m-%dT%H%M%SZ", &tm);
		}
		st = store_stmt(s, "SELECT 1 FROM outbox WHERE kind = 'digest'"
		    " AND threshold = ?1 LIMIT 1");
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if ((n = store_step_int(s, st, NULL, "find digest")) == -1)
			return -1;
		if (n == 1)
			continue;
		snprintf(tag, sizeof(tag), "d%s", name);
		message_id = msgid_generate(tag, domain);
		n = outbox_insert(s, "digest", 0, NULL, name, message_id, now,
		    "pending", send, NULL);
		free(message_id);
		return n;
	}
	/* Both names taken within one second: the later run's digest lists these too. */
	return 0;
}

/* The position of the newest threshold this task already has a row for; -1 when none. */
static int
task_newest_row(struct store *s, const struct plan_task *pt,
    const struct threshold *th, size_t nth, int *newest)
{
	sqlite3_stmt	*st;
	const char	*name;
	size_t		 i;
	int		 rc;

	*newest = -1;
	st = store_stmt(s, "SELECT threshold FROM outbox WHERE kind = 'task'"
	    " AND case_id = ?1 AND task = ?2");
	sqlite3_bind_int64(st, 1, pt->case_id);
	sqlite3_bind_text(st, 2, pt->task, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((name = (const char *)sqlite3_column_text(st, 0)) == NULL)
			continue;
		/* A threshold no longer configured orders nothing. */
		for (i = 0; i < nth; i++)
			if (strcmp(th[i].name, name) == 0 && (int)i > *newest)
				*newest = (int)i;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_warn(s, "read reminders");
		return -1;
	}
	return 0;
}

/*
 * At most one new row per task and run: for the newest threshold reached.
 * A task first seen long after its due date gets one overdue reminder, not
 * all the ones it missed, and a clock that went back creates nothing older
 * than what exists.  Returns rows added or -1.
 */
static int
plan_task(struct store *s, const struct conf *conf, GTimeZone *tz,
    const char *domain, const struct plan_task *pt, struct buckets *buckets, time_t now)
{
	const struct conf_reminders *r = &conf->reminders;
	struct threshold *th = NULL;
	const char	*status = "pending";
	char		*tag = NULL, *message_id = NULL, *reply = NULL;
	char		 digest[48];
	size_t		 nth, i;
	time_t		 send, quiet_end;
	long		 count;
	int		 reached = -1, newest, ret = -1, n, added = 0;

	nth = thresholds_build(r, pt->due, &th);
	for (i = 0; i < nth; i++)
		if (th[i].at <= now)
			reached = (int)i;
	if (reached < 0) {
		ret = 0;
		goto out;
	}
	if (task_newest_row(s, pt, th, nth, &newest) == -1)
		goto out;
	if (newest >= reached) {
		ret = 0;
		goto out;
	}
	/*
	 * Quiet hours move a reminder to the morning, unless the deadline
	 * comes before the morning: then the night is the last chance.
	 */
	send = now;
	quiet_end = quiet_end_after(tz, r, now);
	if (quiet_end != now && !(pt->due > now && pt->due < quiet_end))
		send = quiet_end;
	if (r->max_per_hour > 0) {
		if (bucket_count_cached(s, buckets, send, &count) == -1)
			goto out;
		if (count >= r->max_per_hour) {
			if ((n = plan_backlog_digest(s, domain, now, send, digest,
			    sizeof(digest))) == -1)
				goto out;
			added += n;
			status = "digested";
			reply = xasprintf("folded into digest %s", digest);
		}
	}
	/* The token ends the local part: a reply to it may carry commands (command.h). */
	tag = xasprintf("r%lld.%s.%s%s%s", (long long)pt->case_id, pt->task,
	    th[reached].name, pt->token != NULL ? "." : "",
	    pt->token != NULL ? pt->token : "");
	message_id = msgid_generate(tag, domain);
	if ((n = outbox_insert(s, "task", pt->case_id, pt->task,
	    th[reached].name, message_id, now, status, send, reply)) == -1)
		goto out;
	added += n;
	if (n == 1 && strcmp(status, "pending") == 0)
		bucket_add(buckets, send);
	if (n == 1)
		log_debug("schedule: case %lld %s %s: reminder %s at %lld",
		    (long long)pt->case_id, pt->task, th[reached].name, status,
		    (long long)send);
	ret = added;
out:
	free(message_id);
	free(tag);
	free(reply);
	free(th);
	return ret;
}

static void
plan_tasks_free(struct plan_task *pts, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		free(pts[i].task);
		free(pts[i].token);
	}
	free(pts);
}

/* Open tasks of open cases that are not snoozed, the most urgent first (they get the mails below the cap). */
static int
plan_tasks_load(struct store *s, time_t now, struct plan_task **out, size_t *nout)
{
	sqlite3_stmt	*st;
	struct plan_task *pts = NULL;
	size_t		 n = 0, cap = 0;
	int		 rc;

	/*
	 * The task's own status decides, not the case's: resolving a case
	 * cancels its tasks but opens resume and prevent, which still need
	 * their reminders.
	 */
	st = store_stmt(s, "SELECT t.case_id, t.task, t.due, c.token FROM tasks t"
	    " JOIN cases c ON c.id = t.case_id"
	    " WHERE t.status = 'open'"
	    " AND (c.snoozed_until IS NULL OR c.snoozed_until <= ?1)"
	    " ORDER BY c.urgency = 'high' DESC, t.due, t.id");
	sqlite3_bind_int64(st, 1, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_text(st, 1) == NULL)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			pts = xreallocarray(pts, cap, sizeof(*pts));
		}
		pts[n].case_id = sqlite3_column_int64(st, 0);
		pts[n].task = store_column_dup(st, 1);
		pts[n].due = (time_t)sqlite3_column_int64(st, 2);
		pts[n].token = store_column_dup(st, 3);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_warn(s, "read tasks");
		plan_tasks_free(pts, n);
		return -1;
	}
	*out = pts;
	*nout = n;
	return 0;
}

int
schedule_plan(struct store *s, const struct conf *conf, time_t now)
{
	struct plan_task *pts = NULL;
	struct buckets	 buckets = { .n = 0 };
	GTimeZone	*tz;
	char		*domain;
	size_t		 npts = 0, i;
	int		 created = 0, n, ret = -1;
	bool		 begun = false;

	tz = tz_open(conf);
	domain = msgid_domain(conf);
	if (store_begin(s) == -1)
		goto out;
	begun = true;
	if (plan_clock_jump(s, now) == -1 || plan_cancel(s, now) == -1)
		goto out;
	/* The day's digest first, so a backlog in the same hour folds into it. */
	if ((n = plan_daily_digest(s, conf, tz, domain, now)) == -1)
		goto out;
	created += n;
	if (plan_tasks_load(s, now, &pts, &npts) == -1)
		goto out;
	for (i = 0; i < npts; i++) {
		if ((n = plan_task(s, conf, tz, domain, &pts[i], &buckets, now)) == -1)
			goto out;
		created += n;
	}
	if (store_commit(s) == -1)
		goto out;
	begun = false;
	if (created > 0)
		log_info("schedule: %d new reminders planned", created);
	ret = created;
out:
	if (begun)
		store_rollback(s);
	plan_tasks_free(pts, npts);
	free(domain);
	g_time_zone_unref(tz);
	return ret;
}

/*
 * Business days: weekends and the configured holidays (local dates) do not
 * count; the time of day is kept.  Starting on a weekend, the first
 * business day after it counts as one.
 */
time_t
schedule_add_business_days(const struct conf *conf, time_t from, int days)
{
	GTimeZone	*tz;
	GDateTime	*local;
	GDate		 date;
	GDateWeekday	 wd;
	char		 day[16];
	char *const	*h;
	time_t		 t;
	int		 minute, second;
	bool		 holiday;

	if (days <= 0)
		return from;
	if (days > BUSINESS_DAYS_MAX)
		days = BUSINESS_DAYS_MAX;
	tz = tz_open(conf);
	local = local_time(tz, from);
	date_of(local, &date);
	minute = g_date_time_get_hour(local) * 60 + g_date_time_get_minute(local);
	second = g_date_time_get_second(local);
	g_date_time_unref(local);
	while (days > 0) {
		g_date_add_days(&date, 1);
		wd = g_date_get_weekday(&date);
		if (wd == G_DATE_SATURDAY || wd == G_DATE_SUNDAY)
			continue;
		date_format(&date, day, sizeof(day));
		holiday = false;
		for (h = conf->reminders.holidays; h != NULL && *h != NULL; h++)
			if (strcmp(*h, day) == 0)
				holiday = true;
		if (!holiday)
			days--;
	}
	t = local_make(tz, &date, minute, second);
	g_time_zone_unref(tz);
	return t;
}

/* ---- sending ---- */

static void
outbox_row_free(struct outbox_row *row)
{
	free(row->kind);
	free(row->task);
	free(row->threshold);
	free(row->message_id);
	free(row->status);
	free(row->last_reply);
	free(row->alert_text);
	memset(row, 0, sizeof(*row));
}

/* 1 loaded, 0 gone, -1 error. */
static int
outbox_row_load(struct store *s, int64_t id, struct outbox_row *row)
{
	sqlite3_stmt	*st;
	int		 rc, ret;

	memset(row, 0, sizeof(*row));
	st = store_stmt(s, "SELECT kind, case_id, task, threshold, message_id,"
	    " attempts, status, last_reply, alert_text FROM outbox WHERE id = ?1"
	    " AND status IN ('pending', 'held')");
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row->id = id;
		row->kind = store_column_dup(st, 0);
		row->case_id = sqlite3_column_type(st, 1) == SQLITE_NULL ? 0 :
		    sqlite3_column_int64(st, 1);
		row->task = store_column_dup(st, 2);
		row->threshold = store_column_dup(st, 3);
		row->message_id = store_column_dup(st, 4);
		row->attempts = sqlite3_column_int(st, 5);
		row->status = store_column_dup(st, 6);
		row->last_reply = store_column_dup(st, 7);
		row->alert_text = store_column_dup(st, 8);
		ret = 1;
	} else if (rc == SQLITE_DONE)
		ret = 0;
	else {
		db_warn(s, "read outbox");
		ret = -1;
	}
	sqlite3_reset(st);
	return ret;
}

/* Untrusted text for one line of a mail body: valid UTF-8, no controls, cut at a character boundary. */
static char *
clean_line(const char *s, size_t max)
{
	char	*t;
	size_t	 i, len;

	if (s == NULL)
		return xstrdup("");
	t = utf8_sanitize(s, strlen(s));
	for (i = 0; t[i] != '\0'; i++)
		if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
			t[i] = ' ';
	if ((len = strlen(t)) > max) {
		len = max;
		while (len > 0 && ((unsigned char)t[len] & 0xc0) == 0x80)
			len--;
		t[len] = '\0';
	}
	return t;
}

static void
case_view_free(struct case_view *v)
{
	free(v->token);
	free(v->kind);
	free(v->status);
	free(v->complaint_id);
	free(v->marketplace);
	free(v->infringement_type);
	free(v->rights_owner_name);
	free(v->rights_owner_email);
	free(v->urgency);
	free(v->next_task);
	free(v->correspondence);
	strv_free(v->asins);
	memset(v, 0, sizeof(*v));
}

/* The newest messages of a case, oldest first: "2024-09-12 you: subject" lines. */
static int
case_correspondence(struct store *s, GTimeZone *tz, int64_t case_id, char **out)
{
	sqlite3_stmt	*st;
	GDateTime	*local;
	char		*lines[CORRESPONDENCE_MAX], *from, *subject, *role;
	struct buf	 b = { 0 };
	size_t		 n = 0, i;
	time_t		 when;
	int		 rc;

	*out = NULL;
	st = store_stmt(s, "SELECT COALESCE(date, received), from_addr, subject,"
	    " role FROM messages WHERE case_id = ?1"
	    " ORDER BY COALESCE(date, received) DESC, id DESC LIMIT ?2");
	sqlite3_bind_int64(st, 1, case_id);
	sqlite3_bind_int(st, 2, CORRESPONDENCE_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < CORRESPONDENCE_MAX) {
		when = (time_t)sqlite3_column_int64(st, 0);
		role = clean_line((const char *)sqlite3_column_text(st, 3), 32);
		from = strcmp(role, "seller") == 0 ? xstrdup("you") :
		    clean_line((const char *)sqlite3_column_text(st, 1), 80);
		subject = clean_line((const char *)sqlite3_column_text(st, 2),
		    LINE_MAX_BYTES);
		local = local_time(tz, when);
		lines[n++] = xasprintf("%04d-%02d-%02d %s: %s",
		    g_date_time_get_year(local), g_date_time_get_month(local),
		    g_date_time_get_day_of_month(local),
		    *from != '\0' ? from : "(unknown sender)",
		    *subject != '\0' ? subject : "(no subject)");
		g_date_time_unref(local);
		free(role);
		free(from);
		free(subject);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		db_warn(s, "read correspondence");
		for (i = 0; i < n; i++)
			free(lines[i]);
		return -1;
	}
	for (i = n; i > 0; i--) {
		buf_printf(&b, "%s\n", lines[i - 1]);
		free(lines[i - 1]);
	}
	if (n > 0)
		*out = buf_steal(&b);
	return 0;
}

/* A case with its ASINs and next task (and, for a reminder of its own, its correspondence).  1 found, 0 gone, -1 error. */
static int
case_view_load(struct store *s, GTimeZone *tz, int64_t case_id,
    bool correspondence, struct case_view *v)
{
	sqlite3_stmt	*st;
	size_t		 n = 0, cap = 8;
	int		 rc, ret = -1;

	memset(v, 0, sizeof(*v));
	st = store_stmt(s, "SELECT token, kind, status, complaint_id, marketplace,"
	    " infringement_type, rights_owner_name, rights_owner_email, opened,"
	    " urgency FROM cases WHERE id = ?1");
	sqlite3_bind_int64(st, 1, case_id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			ret = 0;
		else
			db_warn(s, "read case");
		sqlite3_reset(st);
		return ret;
	}
	v->token = store_column_dup(st, 0);
	v->kind = store_column_dup(st, 1);
	v->status = store_column_dup(st, 2);
	v->complaint_id = store_column_dup(st, 3);
	v->marketplace = store_column_dup(st, 4);
	v->infringement_type = store_column_dup(st, 5);
	v->rights_owner_name = store_column_dup(st, 6);
	v->rights_owner_email = store_column_dup(st, 7);
	v->mc.opened = (time_t)sqlite3_column_int64(st, 8);
	v->urgency = store_column_dup(st, 9);
	sqlite3_reset(st);

	v->asins = xcalloc(cap, sizeof(*v->asins));
	st = store_stmt(s, "SELECT asin FROM case_asins WHERE case_id = ?1"
	    " ORDER BY asin");
	sqlite3_bind_int64(st, 1, case_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_text(st, 0) == NULL)
			continue;
		if (n + 1 == cap) {
			cap *= 2;
			v->asins = xreallocarray(v->asins, cap, sizeof(*v->asins));
		}
		v->asins[n++] = store_column_dup(st, 0);
		v->asins[n] = NULL;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_warn(s, "read ASINs");
		goto out;
	}

	st = store_stmt(s, "SELECT task, due FROM tasks WHERE case_id = ?1"
	    " AND status = 'open' ORDER BY due, id LIMIT 1");
	sqlite3_bind_int64(st, 1, case_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		v->next_task = store_column_dup(st, 0);
		v->mc.next_due = (time_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_warn(s, "read next task");
		goto out;
	}
	if (correspondence && case_correspondence(s, tz, case_id,
	    &v->correspondence) == -1)
		goto out;

	v->mc.id = case_id;
	v->mc.token = v->token;
	v->mc.kind = v->kind;
	v->mc.status = v->status;
	v->mc.complaint_id = v->complaint_id;
	v->mc.marketplace = v->marketplace;
	v->mc.infringement_type = v->infringement_type;
	v->mc.asins = (const char *const *)v->asins;
	v->mc.rights_owner_name = v->rights_owner_name;
	v->mc.rights_owner_email = v->rights_owner_email;
	v->mc.next_task = v->next_task;
	v->mc.correspondence = v->correspondence;
	v->mc.urgency = v->urgency;
	ret = 1;
out:
	if (ret != 1)
		case_view_free(v);
	return ret;
}

/* Every open case for a digest, high urgency first, then by the next deadline. */
static int
digest_cases_load(struct store *s, GTimeZone *tz, struct case_view **out, size_t *nout)
{
	sqlite3_stmt	*st;
	struct case_view *views = NULL;
	int64_t		*ids = NULL;
	size_t		 n = 0, cap = 0, i, nviews = 0;
	int		 rc, ret = -1;

	st = store_stmt(s, "SELECT c.id FROM cases c WHERE (c.status = 'open' OR EXISTS"
	    " (SELECT 1 FROM tasks t WHERE t.case_id = c.id AND t.status = 'open'))"
	    " ORDER BY c.urgency = 'high' DESC,"
	    " (SELECT min(t.due) FROM tasks t WHERE t.case_id = c.id"
	    "  AND t.status = 'open') IS NULL,"
	    " (SELECT min(t.due) FROM tasks t WHERE t.case_id = c.id"
	    "  AND t.status = 'open'), c.id");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			ids = xreallocarray(ids, cap, sizeof(*ids));
		}
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_warn(s, "read open cases");
		goto out;
	}
	views = xcalloc(n, sizeof(*views));
	for (i = 0; i < n; i++) {
		if ((rc = case_view_load(s, tz, ids[i], false, &views[nviews])) == -1)
			goto out;
		if (rc == 1)
			nviews++;
	}
	ret = 0;
out:
	if (ret == -1) {
		for (i = 0; i < nviews; i++)
			case_view_free(&views[i]);
		free(views);
		views = NULL;
		nviews = 0;
	}
	free(ids);
	*out = views;
	*nout = nviews;
	return ret;
}

/* The message id of the case's first reminder that went out: later ones thread under it. */
static int
case_thread_id(struct store *s, int64_t case_id, int64_t self, char **out)
{
	sqlite3_stmt	*st;
	int		 rc;

	*out = NULL;
	st = store_stmt(s, "SELECT message_id FROM outbox WHERE case_id = ?1"
	    " AND status = 'sent' AND id <> ?2 ORDER BY id LIMIT 1");
	sqlite3_bind_int64(st, 1, case_id);
	sqlite3_bind_int64(st, 2, self);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = store_column_dup(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_warn(s, "read thread");
		return -1;
	}
	return 0;
}

/*
 * Whether a task reminder still has something to remind of (the planner
 * cancels these too; this covers a send without a plan before it).  Sets
 * *due.  1 yes, 0 no, -1 error.
 */
static int
task_still_open(struct store *s, const struct outbox_row *row, time_t now, time_t *due)
{
	sqlite3_stmt	*st;
	int64_t		 t;
	int		 ret;

	st = store_stmt(s, "SELECT t.due FROM tasks t JOIN cases c"
	    " ON c.id = t.case_id WHERE t.case_id = ?1 AND t.task = ?2"
	    " AND t.status = 'open'"
	    " AND (c.snoozed_until IS NULL OR c.snoozed_until <= ?3)");
	sqlite3_bind_int64(st, 1, row->case_id);
	sqlite3_bind_text(st, 2, row->task, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	if ((ret = store_step_int(s, st, &t, "read task")) == 1)
		*due = (time_t)t;
	return ret;
}

/* Marks a row that has nothing left to send.  0 or -1. */
static int
outbox_cancel(struct store *s, int64_t id, const char *why)
{
	sqlite3_stmt	*st;

	if (store_begin(s) == -1)
		return -1;
	st = store_stmt(s, "UPDATE outbox SET status = 'cancelled', last_reply = ?2"
	    " WHERE id = ?1");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, why, -1, SQLITE_STATIC);
	if (store_step_done(s, st, "cancel reminder") == -1 || store_commit(s) == -1) {
		store_rollback(s);
		return -1;
	}
	return 0;
}

/* delay with +-10% jitter, so reminders that failed together do not retry together. */
static time_t
jitter(long delay)
{
	long	spread = delay / 10;

	if (spread <= 0)
		return delay;
	return delay + (long)g_random_int_range(-(gint32)spread, (gint32)spread + 1);
}

/* 60 s * 2^attempts, at most 6 h. */
static long
retry_delay(int attempts)
{
	long	delay = RETRY_BASE_SEC;
	int	i;

	for (i = 0; i < attempts && delay < RETRY_MAX_SEC; i++)
		delay *= 2;
	return delay < RETRY_MAX_SEC ? delay : RETRY_MAX_SEC;
}

/*
 * The answer to a seller's mail command (cases.c): an alert row with task
 * 'confirm', whose threshold is the command mail's dedupe key.
 */
static bool
row_is_confirm(const struct outbox_row *row)
{
	return strcmp(row->kind, "alert") == 0 && row->task != NULL &&
	    strcmp(row->task, "confirm") == 0;
}

/* What the row is about, for the log: "reminder 12 (case 3 review 24h)". */
static char *
row_describe(const struct outbox_row *row)
{
	if (strcmp(row->kind, "task") == 0)
		return xasprintf("reminder %lld (case %lld %s %s)", (long long)row->id,
		    (long long)row->case_id, row->task != NULL ? row->task : "?",
		    row->threshold != NULL ? row->threshold : "?");
	if (row_is_confirm(row))
		return xasprintf("confirmation %lld (case %lld)", (long long)row->id,
		    (long long)row->case_id);
	if (strcmp(row->kind, "alert") == 0)
		return row->case_id > 0 ? xasprintf("alert %lld (case %lld)",
		    (long long)row->id, (long long)row->case_id) :
		    xasprintf("alert %lld", (long long)row->id);
	return xasprintf("digest %lld (%s)", (long long)row->id,
	    row->threshold != NULL ? row->threshold : "?");
}

/*
 * Records what the mail server said, committed at once: after a crash
 * between the server's 250 and this commit the row goes out once more,
 * with the same Message-ID.  *next is when a failed row is tried again.
 */
static enum send_outcome
outbox_record(struct store *s, const struct outbox_row *row, int rc,
    const struct send_result *res, time_t now, time_t *next)
{
	sqlite3_stmt	*st;
	char		*what, *reply;
	const char	*status;
	bool		 permanent, repeated;
	enum send_outcome ret = SEND_DBERROR;

	what = row_describe(row);
	reply = str_for_log(res->reply, sizeof(res->reply));
	if (store_begin(s) == -1)
		goto out;
	if (rc == R_OK) {
		st = store_stmt(s, "UPDATE outbox SET status = 'sent', sent_at = ?2,"
		    " attempts = attempts + 1, last_reply = ?3 WHERE id = ?1");
		sqlite3_bind_int64(st, 1, row->id);
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_text(st, 3, res->reply, -1, SQLITE_STATIC);
		if (store_step_done(s, st, "record sent reminder") == -1)
			goto out;
		if (row->case_id > 0) {
			char *event = strcmp(row->kind, "task") == 0 ?
			    xasprintf("reminder sent: %s %s", row->task,
			    row->threshold) : row_is_confirm(row) ?
			    xasprintf("confirmation of a mail command sent") :
			    xasprintf("alert sent");

			st = store_stmt(s, "INSERT INTO events(case_id, at, what)"
			    " VALUES (?1, ?2, ?3)");
			sqlite3_bind_int64(st, 1, row->case_id);
			sqlite3_bind_int64(st, 2, now);
			sqlite3_bind_text(st, 3, event, -1, SQLITE_TRANSIENT);
			free(event);
			if (store_step_done(s, st, "record event") == -1)
				goto out;
		}
		if (store_commit(s) == -1)
			goto out;
		log_info("schedule: %s sent: %s", what, reply);
		ret = SEND_SENT;
		goto out;
	}

	/* A refusal the admin must fix is kept as held and retried hourly; never dropped. */
	permanent = res->permanent || rc == R_SKIP || rc == R_FATAL;
	status = permanent ? "held" : "pending";
	*next = now + jitter(permanent ? HOLD_SEC : retry_delay(row->attempts));
	/*
	 * Curl's texts carry timings ("after 3 ms"), so a transient failure
	 * is announced at the first attempt; a refusal whenever it changes.
	 */
	if (permanent)
		repeated = strcmp(row->status, "held") == 0 && row->last_reply != NULL &&
		    strcmp(row->last_reply, res->reply) == 0;
	else
		repeated = strcmp(row->status, "pending") == 0 && row->attempts > 0;
	st = store_stmt(s, "UPDATE outbox SET status = ?2, attempts = attempts + 1,"
	    " next_attempt = ?3, last_reply = ?4 WHERE id = ?1");
	sqlite3_bind_int64(st, 1, row->id);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, *next);
	sqlite3_bind_text(st, 4, res->reply, -1, SQLITE_STATIC);
	if (store_step_done(s, st, "record failed reminder") == -1 || store_commit(s) == -1)
		goto out;
	/* Said once per distinct failure, not at every retry. */
	if (repeated)
		log_debug("schedule: %s: still failing: %s", what, reply);
	else if (permanent)
		log_warnx("schedule: %s: the mail server refused it (%s); kept "
		    "and tried again every hour: check smtp url, user, "
		    "password_file, ca_file and addresses", what, reply);
	else
		log_warnx("schedule: %s: not sent (%s); will retry in %lld s",
		    what, reply, (long long)(*next - now));
	ret = !permanent && res->smtp_code == 0 ? SEND_UNREACHABLE : SEND_FAILED;
out:
	if (ret == SEND_DBERROR)
		store_rollback(s);
	free(reply);
	free(what);
	return ret;
}

/* Builds, sends (through nr) and records one outbox row. */
static enum send_outcome
send_one(struct store *s, const struct conf *conf, GTimeZone *tz, struct netreq *nr,
    int64_t id, time_t now, time_t *next)
{
	struct outbox_row row;
	struct case_view  view, *views = NULL;
	struct mail_case *cases = NULL;
	struct reminder	  rem;
	struct send_result res;
	const char	**rcpts = NULL;
	char		 *msg = NULL, *thread_id = NULL;
	size_t		  len = 0, nviews = 0, i;
	time_t		  due = 0;
	bool		  have_view = false;
	int		  n, rc;
	enum send_outcome ret = SEND_DBERROR;

	memset(&view, 0, sizeof(view));
	memset(&rem, 0, sizeof(rem));
	memset(&res, 0, sizeof(res));
	if ((n = outbox_row_load(s, id, &row)) != 1)
		return n == 0 ? SEND_CANCELLED : SEND_DBERROR;

	if (strcmp(row.kind, "task") == 0) {
		rem.kind = REMINDER_TASK;
		if (row.case_id <= 0 || row.task == NULL ||
		    (n = task_still_open(s, &row, now, &due)) == 0) {
			ret = outbox_cancel(s, row.id, "cancelled: task done, "
			    "case closed or snoozed") == 0 ? SEND_CANCELLED :
			    SEND_DBERROR;
			goto out;
		}
		if (n == -1)
			goto out;
	} else if (row_is_confirm(&row)) {
		rem.kind = REMINDER_CONFIRM;
		/* The command mail's id; a mail without one has a hash key instead. */
		if (row.threshold != NULL && strncmp(row.threshold, "sha256:", 7) != 0)
			rem.in_reply_to = row.threshold;
	} else if (strcmp(row.kind, "alert") == 0)
		rem.kind = REMINDER_ALERT;
	else
		rem.kind = REMINDER_DIGEST;

	if (rem.kind != REMINDER_DIGEST && row.case_id > 0) {
		if ((n = case_view_load(s, tz, row.case_id, true, &view)) == -1)
			goto out;
		have_view = n == 1;
		if (case_thread_id(s, row.case_id, row.id, &thread_id) == -1)
			goto out;
	}
	if (rem.kind == REMINDER_TASK && !have_view) {
		ret = outbox_cancel(s, row.id, "cancelled: case gone") == 0 ?
		    SEND_CANCELLED : SEND_DBERROR;
		goto out;
	}
	if (rem.kind == REMINDER_DIGEST) {
		if (digest_cases_load(s, tz, &views, &nviews) == -1)
			goto out;
		if (nviews == 0) {
			ret = outbox_cancel(s, row.id, "cancelled: no open cases") == 0 ?
			    SEND_CANCELLED : SEND_DBERROR;
			goto out;
		}
		cases = xcalloc(nviews, sizeof(*cases));
		for (i = 0; i < nviews; i++)
			cases[i] = views[i].mc;
		rem.cases = cases;
		rem.ncases = nviews;
	}
	rem.c = have_view ? &view.mc : NULL;
	rem.task = row.task;
	rem.due = due;
	rem.threshold = row.threshold;
	rem.alert_text = row.alert_text;
	rem.message_id = row.message_id;
	rem.thread_id = thread_id;
	rem.timezone = conf->reminders.timezone != NULL ?
	    conf->reminders.timezone : "UTC";
	rem.now = now;

	msg = mailer_compose(conf, &rem, &len);
	rcpts = mailer_recipients(conf, &rem);
	if (msg == NULL || rcpts == NULL || rcpts[0] == NULL) {
		/* Our own fault, not the server's: kept like a refusal so the admin sees it. */
		snprintf(res.reply, sizeof(res.reply), "%s",
		    msg == NULL ? "could not compose the message" :
		    "no recipients (smtp.to is empty)");
		res.permanent = true;
		rc = R_SKIP;
	} else
		rc = mailer_send_via(nr, conf, rcpts, msg, len, &res);
	ret = outbox_record(s, &row, rc, &res, now, next);
out:
	free(rcpts);
	free(msg);
	free(thread_id);
	free(cases);
	for (i = 0; i < nviews; i++)
		case_view_free(&views[i]);
	free(views);
	if (have_view)
		case_view_free(&view);
	outbox_row_free(&row);
	return ret;
}

/* Due rows, alerts first, then by the deadline they are about. */
static int
due_rows_load(struct store *s, time_t now, int64_t **out, size_t *nout)
{
	sqlite3_stmt	*st;
	int64_t		*ids = NULL;
	size_t		 n = 0, cap = 0;
	int		 rc;

	st = store_stmt(s, "SELECT o.id FROM outbox o LEFT JOIN tasks t"
	    " ON o.kind = 'task' AND t.case_id = o.case_id AND t.task = o.task"
	    " WHERE o.status IN ('pending', 'held') AND o.next_attempt <= ?1"
	    " ORDER BY o.kind = 'alert' DESC, COALESCE(t.due, o.next_attempt), o.id");
	sqlite3_bind_int64(st, 1, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			ids = xreallocarray(ids, cap, sizeof(*ids));
		}
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_warn(s, "read outbox");
		free(ids);
		return -1;
	}
	*out = ids;
	*nout = n;
	return 0;
}

/*
 * Rows not tried because the mail server is failing wait as long as the
 * last one that was: every row still due, in one statement (a first scan
 * can leave a thousand).  The rows tried have moved past now already.
 */
static int
outbox_defer(struct store *s, time_t until, time_t now)
{
	sqlite3_stmt	*st;
	int		 n;

	st = store_stmt(s, "UPDATE outbox SET next_attempt = ?2"
	    " WHERE status IN ('pending', 'held') AND next_attempt <= ?1 AND next_attempt < ?2");
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, until);
	if (store_step_done(s, st, "defer reminders") == -1)
		return -1;
	if ((n = sqlite3_changes(store_db(s))) > 0)
		log_info("schedule: mail server failing; %d more reminders wait %lld s",
		    n, (long long)(until - now));
	return 0;
}

int
schedule_send_due(struct store *s, const struct conf *conf, time_t now, struct netreq *given)
{
	struct netreq	 own = NETREQ_INIT;	/* one sender and connection for the round */
	struct netreq	*nr = given != NULL ? given : &own;
	GTimeZone	*tz;
	int64_t		*ids = NULL;
	size_t		 nids = 0, i;
	time_t		 next = 0;
	int		 sent = 0, failures = 0, ret = -1;

	tz = tz_open(conf);
	if (due_rows_load(s, now, &ids, &nids) == -1)
		goto out;
	for (i = 0; i < nids; i++) {
		switch (send_one(s, conf, tz, nr, ids[i], now, &next)) {
		case SEND_SENT:
			sent++;
			failures = 0;
			break;
		case SEND_FAILED:
			failures++;
			break;
		case SEND_UNREACHABLE:
			failures = SEND_FAILURES_MAX;
			break;
		case SEND_CANCELLED:
			break;
		case SEND_DBERROR:
			goto out;
		}
		/*
		 * Two failures in a row, or one without a word from the server
		 * (refused, unresolvable, timed out): the server (or our account
		 * on it) is the problem, not one message.  Do not spend a
		 * timeout on every remaining row.
		 */
		if (failures >= SEND_FAILURES_MAX) {
			if (outbox_defer(s, next, now) == -1)
				goto out;
			break;
		}
	}
	ret = sent;
out:
	netreq_end(&own);
	free(ids);
	g_time_zone_unref(tz);
	return ret;
}

/*
 * A NULL case_id defeats outbox's UNIQUE(kind, case_id, task, threshold) in
 * sqlite, so the key is looked up first; both statements run in one
 * transaction, ours or the caller's.
 */
int
schedule_alert(struct store *s, const struct conf *conf, const char *key, const char *text,
    time_t now)
{
	sqlite3_stmt	*st;
	char		*domain, *message_id;
	bool		 begun = false;
	int		 n, ret = -1;

	domain = msgid_domain(conf);
	message_id = msgid_generate("alert", domain);
	if (sqlite3_get_autocommit(store_db(s)) != 0) {
		if (store_begin(s) == -1)
			goto out;
		begun = true;
	}
	/* task 'system' marks the daemon's own alerts apart from phishing ones (task NULL). */
	st = store_stmt(s, "SELECT 1 FROM outbox WHERE kind = 'alert' AND case_id IS NULL"
	    " AND task = 'system' AND threshold = ?1 LIMIT 1");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if ((n = store_step_int(s, st, NULL, "look up alert")) == -1)
		goto out;
	if (n == 1) {
		ret = 0;
		goto out;
	}
	st = store_stmt(s, "INSERT INTO outbox(kind, case_id, task, threshold, message_id,"
	    " created, next_attempt, alert_text) VALUES ('alert', NULL, 'system', ?1, ?2, ?3, ?3, ?4)");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, message_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
	if (store_step_done(s, st, "queue alert") == -1)
		goto out;
	if (begun) {
		begun = false;
		if (store_commit(s) == -1)
			goto out;
	}
	ret = 1;
out:
	if (begun)
		store_rollback(s);
	free(message_id);
	free(domain);
	return ret;
}

int
schedule_alert_rearm(struct store *s, const char *key)
{
	sqlite3_stmt	*st;
	int		 ret;

	/* Only a row already sent: a pending or held one still tells the seller what happened. */
	st = store_stmt(s, "UPDATE outbox SET threshold = threshold || '@' || created"
	    " WHERE kind = 'alert' AND case_id IS NULL AND task = 'system' AND threshold = ?1"
	    " AND status = 'sent'");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (store_step_done(s, st, "rearm alert") == -1)
		return -1;
	ret = sqlite3_changes(store_db(s));
	return ret;
}

/* The next local digest time after now. */
static time_t
next_digest_time(GTimeZone *tz, int digest_hour, time_t now)
{
	GDateTime	*local;
	GDate		 date;
	time_t		 at;

	local = local_time(tz, now);
	date_of(local, &date);
	g_date_time_unref(local);
	at = local_make(tz, &date, digest_hour * 60, 0);
	if (at <= now) {
		g_date_add_days(&date, 1);
		at = local_make(tz, &date, digest_hour * 60, 0);
	}
	return at;
}

static void
wakeup_consider(time_t *best, time_t t)
{
	if (t > 0 && (*best == 0 || t < *best))
		*best = t;
}

time_t
schedule_next_wakeup(struct store *s, const struct conf *conf, time_t now)
{
	const struct conf_reminders *r = &conf->reminders;
	struct threshold *th;
	sqlite3_stmt	*st;
	GTimeZone	*tz = NULL;
	time_t		 best = 0, t, due, snoozed;
	size_t		 nth, i;
	int		 rc, open;

	st = store_stmt(s, "SELECT min(next_attempt) FROM outbox"
	    " WHERE status IN ('pending', 'held')");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		t = (time_t)sqlite3_column_int64(st, 0);
		/* Far ahead means the clock went back: wake now, the planner fixes it. */
		wakeup_consider(&best, t < now || t > now + CLOCK_JUMP_SEC ? now : t);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		goto fail;

	st = store_stmt(s, "SELECT t.due, c.snoozed_until FROM tasks t"
	    " JOIN cases c ON c.id = t.case_id"
	    " WHERE t.status = 'open'");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		due = (time_t)sqlite3_column_int64(st, 0);
		snoozed = sqlite3_column_type(st, 1) == SQLITE_NULL ? 0 :
		    (time_t)sqlite3_column_int64(st, 1);
		if (snoozed > now) {
			/* Reminders resume when the snooze ends. */
			wakeup_consider(&best, snoozed);
			continue;
		}
		nth = thresholds_build(r, due, &th);
		for (i = 0; i < nth; i++)
			if (th[i].at > now) {
				wakeup_consider(&best, th[i].at);
				break;
			}
		free(th);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		goto fail;

	if (r->digest_hour >= 0 && r->digest_hour <= 23) {
		if ((open = any_open_case(s)) == -1)
			goto fail;
		if (open == 1) {
			tz = tz_open(conf);
			wakeup_consider(&best, next_digest_time(tz, r->digest_hour, now));
			g_time_zone_unref(tz);
		}
	}
	return best;
fail:
	/* The loop must not sleep forever on a database hiccup: look again soon. */
	db_warn(s, "next wakeup");
	return now + 60;
}
