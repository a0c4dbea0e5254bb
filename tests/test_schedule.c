/* test_schedule.c — reminder planning, quiet hours, business days, backlog cap and the outbox sender (real SMTP server). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "conf.h"
#include "log.h"
#include "schedule.h"
#include "store.h"
#include "util.h"

#include "testutil.h"

#define H	3600L
#define D	86400L

struct fixture {
	char		 dir[64];
	struct store	*store;
	struct conf	 conf;
	long		 before[3];
	char		*to[2];
	char		*holidays[2];
	pid_t		 smtp_pid;		/* the aiosmtpd child, 0 when none */
	int		 smtp_port;
};

static time_t
utc(int y, int mo, int d, int h, int mi)
{
	struct tm	tm = { 0 };

	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return timegm(&tm);
}

/* Nothing listens on port 1 (tcpmux) here: SMTP fails with "connection refused", the retry path. */
#define DEAD_PORT	1

static int
setup(void **state)
{
	struct fixture	*f = xcalloc(1, sizeof(*f));
	char		 path[128], err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_schedule.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		fail_msg("mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/state.db", f->dir);
	if ((f->store = store_open(path, false, err, sizeof(err))) == NULL)
		fail_msg("store_open: %s", err);
	f->before[0] = 72 * H;
	f->before[1] = 24 * H;
	f->before[2] = 2 * H;
	f->to[0] = (char *)"ops@shop.example";
	f->holidays[0] = (char *)"2026-12-25";
	f->conf.dir = f->dir;
	f->conf.smtp.url = xasprintf("smtp://127.0.0.1:%d", DEAD_PORT);
	f->conf.smtp.from = (char *)"ipcased@shop.example";
	f->conf.smtp.to = f->to;
	f->conf.smtp.timeout_sec = 5;
	f->conf.reminders.before = f->before;
	f->conf.reminders.nbefore = 3;
	f->conf.reminders.overdue_every = 24 * H;
	f->conf.reminders.overdue_max = 3;
	f->conf.reminders.max_per_hour = 30;
	f->conf.reminders.quiet_start_min = -1;
	f->conf.reminders.quiet_end_min = -1;
	f->conf.reminders.digest_hour = -1;
	f->conf.reminders.timezone = (char *)"UTC";
	f->conf.reminders.holidays = f->holidays;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	testutil_stop_child(f->smtp_pid);
	store_close(f->store);
	testutil_rm_tree(f->dir);
	free(f->conf.smtp.url);
	free(f->conf.smtp.user);
	free(f->conf.smtp.password_file);
	free(f->conf.smtp.ca_file);
	free(f);
	return 0;
}

/* Test setup writes rows directly, as cases.c would. */
static void
sql(struct fixture *f, const char *fmt, ...)
{
	va_list	 ap;
	char	*q, *err = NULL;

	va_start(ap, fmt);
	q = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	if (sqlite3_exec(store_db(f->store), q, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", q, err);
	sqlite3_free(q);
}

static long long
sql_int(struct fixture *f, const char *fmt, ...)
{
	va_list		 ap;
	sqlite3_stmt	*st;
	long long	 v = -1;

	va_start(ap, fmt);
	st = testutil_query(store_db(f->store), fmt, ap);
	va_end(ap);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The text of the first row, "" when none; malloc'd. */
static char *
sql_text(struct fixture *f, const char *fmt, ...)
{
	va_list		 ap;
	sqlite3_stmt	*st;
	char		*v;

	va_start(ap, fmt);
	st = testutil_query(store_db(f->store), fmt, ap);
	va_end(ap);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		v = xstrdup((const char *)sqlite3_column_text(st, 0));
	else
		v = xstrdup("");
	sqlite3_finalize(st);
	return v;
}

static long long
add_case(struct fixture *f, const char *key, const char *urgency, time_t opened)
{
	sql(f, "INSERT INTO cases(case_key, kind, urgency, token, opened, updated,"
	    " complaint_id, marketplace, infringement_type, rights_owner_name,"
	    " rights_owner_email) VALUES (%Q, 'ip_notice', %Q, '0123456789abcdef',"
	    " %lld, %lld, '12904418236', 'us', 'trademark', 'Brand Owner Inc.',"
	    " 'legal@brand.example')", key, urgency, (long long)opened,
	    (long long)opened);
	return (long long)sqlite3_last_insert_rowid(store_db(f->store));
}

static void
add_task(struct fixture *f, long long case_id, const char *task, time_t due)
{
	sql(f, "INSERT INTO tasks(case_id, task, created, due) VALUES"
	    " (%lld, %Q, %lld, %lld)", case_id, task, (long long)(due - 7 * D),
	    (long long)due);
}

/* The thresholds of a case's task rows, oldest row first: "72h,24h". */
static char *
thresholds(struct fixture *f, long long case_id, const char *task)
{
	return sql_text(f, "SELECT group_concat(threshold, ',') FROM (SELECT"
	    " threshold FROM outbox WHERE kind = 'task' AND case_id = %lld AND"
	    " task = %Q ORDER BY id)", case_id, task);
}

static void
test_thresholds_as_time_advances(void **state)
{
	struct fixture	*f = *state;
	time_t		 due = utc(2026, 6, 10, 12, 0);
	long long	 c;
	char		*th;

	c = add_case(f, "complaint:1:us", "normal", due - 5 * D);
	add_task(f, c, "appeal", due);

	assert_int_equal(schedule_plan(f->store, &f->conf, due - 100 * H), 0);
	assert_int_equal(schedule_next_wakeup(f->store, &f->conf, due - 100 * H),
	    due - 72 * H);
	assert_int_equal(schedule_plan(f->store, &f->conf, due - 72 * H), 1);
	assert_int_equal(schedule_plan(f->store, &f->conf, due - 71 * H), 0);
	assert_int_equal(schedule_plan(f->store, &f->conf, due - 25 * H), 0);
	assert_int_equal(schedule_plan(f->store, &f->conf, due - 24 * H), 1);
	assert_int_equal(schedule_plan(f->store, &f->conf, due - 2 * H), 1);
	assert_int_equal(schedule_plan(f->store, &f->conf, due - 1 * H), 0);
	assert_int_equal(schedule_plan(f->store, &f->conf, due), 1);
	assert_int_equal(schedule_plan(f->store, &f->conf, due + 24 * H), 1);
	th = thresholds(f, c, "appeal");
	assert_string_equal(th, "72h,24h,2h,due,overdue1");
	free(th);
	/* Each row was due when planned: no quiet hours, no cap. */
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE"
	    " status = 'pending' AND next_attempt = created"), 5);
	assert_int_equal(sql_int(f, "SELECT next_attempt FROM outbox WHERE"
	    " threshold = '24h'"), due - 24 * H);
}

static void
test_late_task_gets_one_reminder(void **state)
{
	struct fixture	*f = *state;
	time_t		 due = utc(2026, 6, 1, 9, 0), now = due + 10 * D;
	long long	 c;
	char		*th;

	c = add_case(f, "complaint:2:us", "normal", due - 3 * D);
	add_task(f, c, "review", due);
	assert_int_equal(schedule_plan(f->store, &f->conf, now), 1);
	assert_int_equal(schedule_plan(f->store, &f->conf, now + H), 0);
	assert_int_equal(schedule_plan(f->store, &f->conf, now + 30 * D), 0);
	th = thresholds(f, c, "review");
	assert_string_equal(th, "overdue3");
	free(th);
}

static void
test_overdue_repeats_capped(void **state)
{
	struct fixture	*f = *state;
	time_t		 due = utc(2026, 6, 1, 9, 0), t;
	long long	 c;
	char		*th;
	int		 total = 0;

	c = add_case(f, "complaint:3:us", "normal", due - D);
	add_task(f, c, "evidence", due);
	for (t = due; t <= due + 10 * D; t += 12 * H)
		total += schedule_plan(f->store, &f->conf, t);
	assert_int_equal(total, 4);
	th = thresholds(f, c, "evidence");
	assert_string_equal(th, "due,overdue1,overdue2,overdue3");
	free(th);
	/* Sent, with no threshold left, nothing wakes the daemon. */
	sql(f, "UPDATE outbox SET status = 'sent', sent_at = next_attempt");
	assert_int_equal(schedule_next_wakeup(f->store, &f->conf, due + 10 * D), 0);
	/* A different overdue_max takes effect. */
	f->conf.reminders.overdue_max = 5;
	assert_int_equal(schedule_plan(f->store, &f->conf, due + 10 * D), 1);
	th = thresholds(f, c, "evidence");
	assert_string_equal(th, "due,overdue1,overdue2,overdue3,overdue5");
	free(th);
}

static void
test_quiet_hours_across_dst(void **state)
{
	struct fixture	*f = *state;
	time_t		 spring = utc(2026, 3, 28, 21, 0);	/* 22:00 CET, the night clocks go forward */
	time_t		 autumn = utc(2026, 10, 24, 20, 0);	/* 22:00 CEST, the night clocks go back */
	long long	 c1, c2;

	f->conf.reminders.timezone = (char *)"Europe/Berlin";
	f->conf.reminders.quiet_start_min = 21 * 60;
	f->conf.reminders.quiet_end_min = 8 * 60;
	c1 = add_case(f, "complaint:4:de", "normal", spring - D);
	add_task(f, c1, "appeal", spring + 72 * H);
	assert_int_equal(schedule_plan(f->store, &f->conf, spring), 1);
	/* 08:00 CEST on 29 March is 06:00 UTC (a fixed +1 h would say 07:00). */
	assert_int_equal(sql_int(f, "SELECT next_attempt FROM outbox WHERE"
	    " case_id = %lld", c1), utc(2026, 3, 29, 6, 0));
	assert_int_equal(sql_int(f, "SELECT next_attempt FROM outbox WHERE"
	    " case_id = %lld", c1), 1774764000);
	/* Not due yet: nothing is tried at night. */
	assert_int_equal(schedule_send_due(f->store, &f->conf, spring + H, NULL), 0);
	assert_int_equal(sql_int(f, "SELECT attempts FROM outbox WHERE"
	    " case_id = %lld", c1), 0);
	assert_int_equal(schedule_next_wakeup(f->store, &f->conf, spring + H),
	    utc(2026, 3, 29, 6, 0));

	sql(f, "UPDATE tasks SET status = 'done' WHERE case_id = %lld", c1);
	c2 = add_case(f, "complaint:5:de", "normal", autumn - D);
	add_task(f, c2, "appeal", autumn + 72 * H);
	assert_int_equal(schedule_plan(f->store, &f->conf, autumn), 1);
	/* 08:00 CET on 25 October is 07:00 UTC. */
	assert_int_equal(sql_int(f, "SELECT next_attempt FROM outbox WHERE"
	    " case_id = %lld", c2), utc(2026, 10, 25, 7, 0));
}

static void
test_quiet_hours_never_past_due(void **state)
{
	struct fixture	*f = *state;
	time_t		 now = utc(2026, 3, 28, 21, 0);	/* 22:00 CET */
	time_t		 due = now + 2 * H;		/* 00:00 CET, before the morning */
	long long	 c;

	f->conf.reminders.timezone = (char *)"Europe/Berlin";
	f->conf.reminders.quiet_start_min = 21 * 60;
	f->conf.reminders.quiet_end_min = 8 * 60;
	c = add_case(f, "complaint:6:de", "high", now - D);
	add_task(f, c, "stop_selling", due);
	assert_int_equal(schedule_plan(f->store, &f->conf, now), 1);
	/* The 2h reminder goes out at night: the morning would be too late. */
	assert_int_equal(sql_int(f, "SELECT next_attempt FROM outbox WHERE"
	    " threshold = '2h'"), now);
	/* Once past due, the night gains nothing: the "due" reminder waits for 08:00. */
	assert_int_equal(schedule_plan(f->store, &f->conf, due), 1);
	assert_int_equal(sql_int(f, "SELECT next_attempt FROM outbox WHERE"
	    " threshold = 'due'"), utc(2026, 3, 29, 6, 0));
	/* Daytime (11:00 CEST): no shift. */
	assert_int_equal(schedule_plan(f->store, &f->conf, due + D + 10 * H), 1);
	assert_int_equal(sql_int(f, "SELECT next_attempt FROM outbox WHERE"
	    " threshold = 'overdue1'"), due + D + 10 * H);
}

static void
test_business_days(void **state)
{
	struct fixture	*f = *state;

	/* Thursday before Christmas (a Friday holiday) + 1 business day = Monday. */
	assert_int_equal(schedule_add_business_days(&f->conf,
	    utc(2026, 12, 24, 10, 0), 1), utc(2026, 12, 28, 10, 0));
	assert_int_equal(schedule_add_business_days(&f->conf,
	    utc(2026, 12, 24, 10, 0), 2), utc(2026, 12, 29, 10, 0));
	/* Friday + 1 = Monday; Saturday + 1 = Monday; + 0 = unchanged; Wednesday + 1 = Thursday. */
	assert_int_equal(schedule_add_business_days(&f->conf,
	    utc(2026, 6, 12, 15, 0), 1), utc(2026, 6, 15, 15, 0));
	assert_int_equal(schedule_add_business_days(&f->conf,
	    utc(2026, 6, 13, 9, 0), 1), utc(2026, 6, 15, 9, 0));
	assert_int_equal(schedule_add_business_days(&f->conf,
	    utc(2026, 6, 12, 15, 0), 0), utc(2026, 6, 12, 15, 0));
	assert_int_equal(schedule_add_business_days(&f->conf,
	    utc(2026, 6, 10, 8, 0), 1), utc(2026, 6, 11, 8, 0));
	assert_int_equal(schedule_add_business_days(&f->conf,
	    utc(2026, 6, 12, 15, 0), 5), utc(2026, 6, 19, 15, 0));
	/* Without the holiday list, Christmas counts. */
	f->conf.reminders.holidays = NULL;
	assert_int_equal(schedule_add_business_days(&f->conf,
	    utc(2026, 12, 24, 10, 0), 1), utc(2026, 12, 25, 10, 0));
	/* Berlin: Friday 10:00 CET + 1 = Monday 10:00 CEST, an hour less in UTC. */
	f->conf.reminders.timezone = (char *)"Europe/Berlin";
	assert_int_equal(schedule_add_business_days(&f->conf,
	    utc(2026, 3, 27, 9, 0), 1), utc(2026, 3, 30, 8, 0));
	/* Friday 23:30 UTC is Saturday 01:30 in Berlin: + 1 = Monday 01:30 local. */
	assert_int_equal(schedule_add_business_days(&f->conf,
	    utc(2026, 6, 12, 23, 30), 1), utc(2026, 6, 14, 23, 30));
}

static void
test_done_and_snooze_cancel(void **state)
{
	struct fixture	*f = *state;
	time_t		 due = utc(2026, 6, 10, 12, 0), now = due - 24 * H;
	time_t		 until = now + 10 * H;
	long long	 c, c2;

	c = add_case(f, "complaint:7:us", "normal", now - D);
	add_task(f, c, "review", due);
	add_task(f, c, "evidence", due + H);
	assert_int_equal(schedule_plan(f->store, &f->conf, now), 2);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE"
	    " status = 'pending'"), 2);

	sql(f, "UPDATE tasks SET status = 'done', done_at = %lld WHERE task ="
	    " 'review'", (long long)now);
	assert_int_equal(schedule_plan(f->store, &f->conf, now), 0);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE task ="
	    " 'review' AND status = 'cancelled'"), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE task ="
	    " 'evidence' AND status = 'pending'"), 1);

	sql(f, "UPDATE cases SET snoozed_until = %lld", (long long)until);
	assert_int_equal(schedule_plan(f->store, &f->conf, now), 0);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE"
	    " status = 'pending'"), 0);
	/* Snoozed: no new rows even as thresholds pass; it wakes when the snooze ends. */
	assert_int_equal(schedule_plan(f->store, &f->conf, now + 8 * H), 0);
	assert_int_equal(schedule_next_wakeup(f->store, &f->conf, now + 8 * H), until);
	/*
	 * When the snooze ends, one reminder for the newest threshold passed
	 * meanwhile (evidence 24h), none for the one cancelled; then the next.
	 */
	assert_int_equal(schedule_plan(f->store, &f->conf, until), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE task ="
	    " 'evidence' AND threshold = '24h' AND status = 'pending'"), 1);
	assert_int_equal(schedule_plan(f->store, &f->conf, until + H), 0);
	assert_int_equal(schedule_plan(f->store, &f->conf, due + H - 2 * H), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE task ="
	    " 'evidence' AND threshold = '2h' AND status = 'pending'"), 1);

	/*
	 * A resolved case cancels too (cases.c cancels its open tasks when it
	 * resolves one); the send path re-checks as well.
	 */
	c2 = add_case(f, "complaint:8:us", "normal", now - D);
	add_task(f, c2, "appeal", due);
	assert_int_equal(schedule_plan(f->store, &f->conf, due), 1);
	sql(f, "UPDATE cases SET status = 'retracted' WHERE id = %lld", c2);
	sql(f, "UPDATE tasks SET status = 'cancelled' WHERE case_id = %lld", c2);
	assert_int_equal(schedule_send_due(f->store, &f->conf, due + 2 * D, NULL), 0);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE case_id ="
	    " %lld AND status = 'cancelled' AND attempts = 0", c2), 1);
}

static void
test_backlog_becomes_digest(void **state)
{
	struct fixture	*f = *state;
	time_t		 now = utc(2026, 6, 10, 12, 0);
	long long	 c, urgent = 0;
	char		 key[32];
	int		 i;

	/* First run on an old mailbox: 100 tasks already past due. */
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "complaint:%d:us", 1000 + i);
		c = add_case(f, key, i == 99 ? "high" : "normal", now - 20 * D);
		add_task(f, c, "review", now - H - i * 60);
		if (i == 99)
			urgent = c;
	}
	assert_int_equal(schedule_plan(f->store, &f->conf, now), 101);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE"
	    " kind = 'task' AND status = 'pending' AND next_attempt < %lld",
	    (long long)(now + H)), 30);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE"
	    " kind = 'task' AND status = 'digested'"), 70);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE"
	    " kind = 'digest' AND status = 'pending' AND next_attempt = %lld",
	    (long long)now), 1);
	/* The urgent case and the longest overdue get their own mails. */
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE"
	    " case_id = %lld AND status = 'pending'", urgent), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox o JOIN tasks t"
	    " ON t.case_id = o.case_id WHERE o.status = 'pending' AND"
	    " t.due = %lld", (long long)(now - H - 98 * 60)), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox o JOIN tasks t"
	    " ON t.case_id = o.case_id WHERE o.status = 'digested' AND"
	    " t.due = %lld", (long long)(now - H)), 1);
	/* Nothing twice. */
	assert_int_equal(schedule_plan(f->store, &f->conf, now), 0);
	assert_int_equal(schedule_plan(f->store, &f->conf, now + 30 * 60), 0);
	/* A day later everything is overdue again: still at most 30 in the hour, one digest. */
	sql(f, "UPDATE outbox SET status = 'sent', sent_at = next_attempt"
	    " WHERE status = 'pending'");
	assert_int_equal(schedule_plan(f->store, &f->conf, now + D), 101);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE"
	    " kind = 'task' AND status = 'pending'"), 30);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE"
	    " kind = 'digest' AND status = 'pending'"), 1);
}

static void
test_plan_idempotent_and_ids_stable(void **state)
{
	struct fixture	*f = *state;
	time_t		 due = utc(2026, 6, 10, 12, 0), now = due - 24 * H;
	long long	 c;
	char		*id1, *id2, *want;

	c = add_case(f, "complaint:9:us", "normal", now - D);
	add_task(f, c, "review", due);
	assert_int_equal(schedule_plan(f->store, &f->conf, now), 1);
	id1 = sql_text(f, "SELECT message_id FROM outbox WHERE case_id = %lld", c);
	/* The case's token ends the local part: replies to the reminder may carry commands. */
	want = xasprintf(".r%lld.review.24h.0123456789abcdef@shop.example", c);
	assert_non_null(strstr(id1, want));
	assert_int_equal(strlen(id1), 32 + strlen(want));
	assert_int_equal(schedule_plan(f->store, &f->conf, now), 0);
	assert_int_equal(schedule_plan(f->store, &f->conf, now + 60), 0);
	/* A failed send keeps the id for the next attempt. */
	assert_int_equal(schedule_send_due(f->store, &f->conf, now, NULL), 0);
	id2 = sql_text(f, "SELECT message_id FROM outbox WHERE case_id = %lld", c);
	assert_string_equal(id1, id2);
	free(id2);
	/* Another store on the same file (a restart) plans nothing new either. */
	store_close(f->store);
	{
		char path[128], err[256];

		snprintf(path, sizeof(path), "%s/state.db", f->dir);
		f->store = store_open(path, false, err, sizeof(err));
		assert_non_null(f->store);
	}
	assert_int_equal(schedule_plan(f->store, &f->conf, now + 120), 0);
	id2 = sql_text(f, "SELECT message_id FROM outbox WHERE case_id = %lld", c);
	assert_string_equal(id1, id2);
	free(id2);
	free(want);
	free(id1);
}

static void
test_clock_jumps(void **state)
{
	struct fixture	*f = *state;
	time_t		 due = utc(2026, 6, 10, 12, 0), now = due - 72 * H;
	long long	 c;
	char		*th;

	c = add_case(f, "complaint:10:us", "normal", now - D);
	add_task(f, c, "appeal", due);
	assert_int_equal(schedule_plan(f->store, &f->conf, now), 1);
	sql(f, "UPDATE outbox SET status = 'sent', sent_at = %lld", (long long)now);
	/* +2 days at once: one reminder (the 2h one), not 24h and 2h. */
	assert_int_equal(schedule_plan(f->store, &f->conf, due - H), 1);
	assert_int_equal(schedule_plan(f->store, &f->conf, due - H), 0);
	/* Back 3 hours: nothing older is created, nothing sent is resent. */
	sql(f, "UPDATE outbox SET status = 'sent', sent_at = %lld", (long long)(due - H));
	assert_int_equal(schedule_plan(f->store, &f->conf, due - 4 * H), 0);
	assert_int_equal(schedule_send_due(f->store, &f->conf, due - 4 * H, NULL), 0);
	th = thresholds(f, c, "appeal");
	assert_string_equal(th, "72h,2h");
	free(th);
	/* A row planned for a time a year ahead (clock went back a year) is brought forward. */
	sql(f, "INSERT INTO outbox(kind, case_id, task, threshold, message_id,"
	    " created, next_attempt) VALUES ('task', %lld, 'appeal', 'due',"
	    " 'x.r@shop.example', %lld, %lld)", c, (long long)due,
	    (long long)(due + 365 * D));
	assert_int_equal(schedule_next_wakeup(f->store, &f->conf, due - 4 * H),
	    due - 4 * H);
	assert_int_equal(schedule_plan(f->store, &f->conf, due - 4 * H), 0);
	assert_int_equal(sql_int(f, "SELECT next_attempt FROM outbox WHERE"
	    " threshold = 'due'"), due - 4 * H);
}

/*
 * The hourly cap counts what is already there once per plan and adds each
 * new row itself: a backlog from an earlier hour and mail sent in the hour
 * count too.
 */
static void
test_backlog_counts_existing_rows(void **state)
{
	struct fixture	*f = *state;
	time_t		 now = utc(2026, 6, 10, 12, 0);
	long long	 c;
	char		 key[32];
	int		 i;

	/* Two hours ago, 20 reminders; the mail server was down, 5 went out just now. */
	for (i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "complaint:%d:us", 2000 + i);
		c = add_case(f, key, "normal", now - 20 * D);
		add_task(f, c, "review", now - 3 * H - i * 60);
	}
	assert_int_equal(schedule_plan(f->store, &f->conf, now - 2 * H), 20);
	sql(f, "UPDATE outbox SET status = 'sent', sent_at = %lld WHERE id IN"
	    " (SELECT id FROM outbox ORDER BY id LIMIT 5)", (long long)(now + 60));
	for (i = 0; i < 15; i++) {
		snprintf(key, sizeof(key), "complaint:%d:us", 3000 + i);
		c = add_case(f, key, "normal", now - 20 * D);
		add_task(f, c, "review", now - H - i * 60);
	}
	/* 15 waiting + 5 sent in the hour: room for 10; the other 5 and a digest. */
	assert_int_equal(schedule_plan(f->store, &f->conf, now), 16);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE kind = 'task'"
	    " AND status = 'pending' AND created = %lld", (long long)now), 10);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE kind = 'task'"
	    " AND status = 'digested'"), 5);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE kind = 'digest'"), 1);
}

static void
test_absurd_times(void **state)
{
	struct fixture	*f = *state;
	time_t		 now = utc(2026, 6, 10, 12, 0);
	long long	 c;

	/* A deadline from a hostile notice: no overflow, no reminder, no wakeup storm. */
	c = add_case(f, "complaint:14:us", "normal", now);
	sql(f, "INSERT INTO tasks(case_id, task, created, due) VALUES (%lld,"
	    " 'appeal', %lld, 9223372036854775807)", c, (long long)now);
	sql(f, "INSERT INTO tasks(case_id, task, created, due) VALUES (%lld,"
	    " 'review', %lld, -9223372036854775807)", c, (long long)now);
	f->conf.reminders.overdue_every = 4000000000000000000L;
	assert_int_equal(schedule_plan(f->store, &f->conf, now), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE task ="
	    " 'review' AND threshold = 'due'"), 1);
	assert_true(schedule_next_wakeup(f->store, &f->conf, now) >= now);
	assert_true(schedule_add_business_days(&f->conf, now, 1 << 30) > now);
}

static void
test_daily_digest(void **state)
{
	struct fixture	*f = *state;
	time_t		 morning = utc(2026, 6, 10, 6, 0);	/* 08:00 CEST */
	long long	 c;

	f->conf.reminders.timezone = (char *)"Europe/Berlin";
	f->conf.reminders.quiet_start_min = 21 * 60;
	f->conf.reminders.quiet_end_min = 8 * 60;
	f->conf.reminders.digest_hour = 8;
	/* No open case, no digest and nothing to wake for. */
	assert_int_equal(schedule_plan(f->store, &f->conf, morning), 0);
	assert_int_equal(schedule_next_wakeup(f->store, &f->conf, morning), 0);
	c = add_case(f, "complaint:11:us", "normal", morning - D);
	add_task(f, c, "prevent", morning + 30 * D);
	assert_int_equal(schedule_plan(f->store, &f->conf, morning - 30 * 60), 0);
	assert_int_equal(schedule_next_wakeup(f->store, &f->conf, morning - 30 * 60),
	    morning);
	assert_int_equal(schedule_plan(f->store, &f->conf, morning), 1);
	assert_int_equal(schedule_plan(f->store, &f->conf, morning + 2 * H), 0);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE kind ="
	    " 'digest' AND threshold = '2026-06-10' AND next_attempt = %lld",
	    (long long)morning), 1);
	/* First run of 11 June at 23:00 local: no stale digest for the night. */
	assert_int_equal(schedule_plan(f->store, &f->conf, morning + D + 15 * H), 0);
	assert_int_equal(schedule_plan(f->store, &f->conf, morning + 2 * D), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE kind ="
	    " 'digest'"), 2);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE kind ="
	    " 'digest' AND threshold = '2026-06-12'"), 1);
	/* Next wakeup: tomorrow's digest (the rows above are sent). */
	sql(f, "UPDATE outbox SET status = 'sent', sent_at = next_attempt");
	assert_int_equal(schedule_next_wakeup(f->store, &f->conf, morning + 2 * D + H),
	    morning + 3 * D);
	/* Digest hour inside quiet hours: it waits for their end. */
	f->conf.reminders.digest_hour = 6;
	assert_int_equal(schedule_plan(f->store, &f->conf, morning + 3 * D - H), 1);
	assert_int_equal(sql_int(f, "SELECT next_attempt FROM outbox WHERE kind ="
	    " 'digest' AND threshold = '2026-06-13'"), morning + 3 * D);
}

static void
test_send_failure_backs_off(void **state)
{
	struct fixture	*f = *state;
	time_t		 due = utc(2026, 6, 10, 12, 0), now = due - 24 * H, next;
	long long	 c, attempts;
	char		*id1, *id2;
	int		 i;

	c = add_case(f, "complaint:12:us", "normal", now - D);
	add_task(f, c, "review", due);
	add_task(f, c, "stop_selling", due + 60);
	add_task(f, c, "evidence", due + 120);
	assert_int_equal(schedule_plan(f->store, &f->conf, now), 3);
	id1 = sql_text(f, "SELECT message_id FROM outbox WHERE task = 'review'");
	/* Nothing listens: one failure without an answer, the other rows are not even tried. */
	assert_int_equal(schedule_send_due(f->store, &f->conf, now, NULL), 0);
	assert_int_equal(sql_int(f, "SELECT attempts FROM outbox WHERE task ="
	    " 'review'"), 1);
	assert_int_equal(sql_int(f, "SELECT attempts FROM outbox WHERE task ="
	    " 'stop_selling'"), 0);
	assert_int_equal(sql_int(f, "SELECT attempts FROM outbox WHERE task ="
	    " 'evidence'"), 0);
	assert_true(sql_int(f, "SELECT next_attempt FROM outbox WHERE task ="
	    " 'evidence'") > now);
	next = (time_t)sql_int(f, "SELECT next_attempt FROM outbox WHERE task ="
	    " 'review'");
	assert_in_range(next - now, 54, 66);
	/* The rows not tried wait as long as the one that was. */
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE task <> 'review'"
	    " AND next_attempt = %lld", (long long)next), 2);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE status ="
	    " 'pending' AND last_reply LIKE '%%curl 7%%'"), 1);
	/* Not due again before the back-off ends. */
	assert_int_equal(schedule_send_due(f->store, &f->conf, now + 30, NULL), 0);
	assert_int_equal(sql_int(f, "SELECT attempts FROM outbox WHERE task ="
	    " 'review'"), 1);
	/* Each retry doubles the wait, up to 6 h; the row is never dropped. */
	for (i = 2; i <= 12; i++) {
		now = (time_t)sql_int(f, "SELECT next_attempt FROM outbox WHERE"
		    " task = 'review'");
		sql(f, "UPDATE outbox SET next_attempt = %lld WHERE task <> 'review'",
		    (long long)(now + 100 * D));
		assert_int_equal(schedule_send_due(f->store, &f->conf, now, NULL), 0);
		attempts = sql_int(f, "SELECT attempts FROM outbox WHERE task ="
		    " 'review'");
		assert_int_equal(attempts, i);
		next = (time_t)sql_int(f, "SELECT next_attempt FROM outbox WHERE"
		    " task = 'review'");
		if (i <= 9)
			assert_in_range(next - now, 60L * (1L << (i - 1)) * 9 / 10,
			    60L * (1L << (i - 1)) * 11 / 10);
		else
			assert_in_range(next - now, 6 * H * 9 / 10, 6 * H * 11 / 10);
	}
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE status ="
	    " 'pending'"), 3);
	id2 = sql_text(f, "SELECT message_id FROM outbox WHERE task = 'review'");
	assert_string_equal(id1, id2);
	free(id1);
	free(id2);
	/* Next wakeup: the earlier of that retry and the next threshold (review 2h). */
	assert_true(now < due - 2 * H && next > due - 2 * H);
	assert_int_equal(schedule_next_wakeup(f->store, &f->conf, now), due - 2 * H);
	sql(f, "UPDATE tasks SET status = 'done'");
	assert_int_equal(schedule_next_wakeup(f->store, &f->conf, now), next);
}

/* ---- against a real SMTP server (aiosmtpd with STARTTLS and AUTH) ---- */

static const char smtp_server_py[] =
	"import asyncio, os, socket, ssl, sys\n"
	"from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword\n"
	"outdir, cert, key, portfile, user, password = sys.argv[1:7]\n"
	"ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)\n"
	"ctx.load_cert_chain(cert, key)\n"
	"class Handler:\n"
	"    count = 0\n"
	"    async def handle_DATA(self, server, session, envelope):\n"
	"        Handler.count += 1\n"
	"        p = os.path.join(outdir, '%04d.eml' % Handler.count)\n"
	"        with open(p + '.tmp', 'wb') as f:\n"
	"            f.write(envelope.original_content)\n"
	"        os.rename(p + '.tmp', p)\n"
	"        return '250 2.0.0 queued as %d' % Handler.count\n"
	"def auth(server, session, envelope, mechanism, data):\n"
	"    ok = isinstance(data, LoginPassword) and data.login == user.encode() \\\n"
	"        and data.password == password.encode()\n"
	"    return AuthResult(success=ok, handled=False)\n"
	"sock = socket.socket()\n"
	"sock.bind(('127.0.0.1', 0))\n"
	"sock.listen(16)\n"
	"loop = asyncio.new_event_loop()\n"
	"loop.run_until_complete(loop.create_server(lambda: SMTP(Handler(),\n"
	"    hostname='localhost', tls_context=ctx, require_starttls=True,\n"
	"    auth_required=True, auth_require_tls=True, authenticator=auth),\n"
	"    sock=sock))\n"
	"with open(portfile + '.tmp', 'w') as f:\n"
	"    f.write(str(sock.getsockname()[1]))\n"
	"os.rename(portfile + '.tmp', portfile)\n"
	"loop.run_forever()\n";

/* Starts the server with a fresh CA; false (test skipped) when python3-aiosmtpd or openssl is missing. */
static bool
smtp_start(struct fixture *f)
{
	char	  path[192], portfile[192], *port;
	int	  i;

	if (access("/usr/bin/python3", X_OK) != 0 || system("/usr/bin/python3 -c "
	    "'import aiosmtpd' >/dev/null 2>&1") != 0 ||
	    system("openssl version >/dev/null 2>&1") != 0)
		return false;
	snprintf(path, sizeof(path), "%s/mail", f->dir);
	assert_int_equal(mkdir(path, 0777), 0);
	testutil_make_certs(f->dir);
	snprintf(path, sizeof(path), "%s/smtpd.py", f->dir);
	testutil_write_file(path, smtp_server_py, 0600);
	snprintf(portfile, sizeof(portfile), "%s/port", f->dir);
	if ((f->smtp_pid = fork()) == -1)
		fail_msg("fork: %s", strerror(errno));
	if (f->smtp_pid == 0) {
		char mail[192], cert[192], key[192];

		snprintf(mail, sizeof(mail), "%s/mail", f->dir);
		snprintf(cert, sizeof(cert), "%s/srv.pem", f->dir);
		snprintf(key, sizeof(key), "%s/srv.key", f->dir);
		execl("/usr/bin/python3", "python3", path, mail, cert, key,
		    portfile, "ipcased", "s3cret-pw", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 200 && access(portfile, R_OK) != 0; i++)
		usleep(50 * 1000);
	if ((port = file_read(portfile, 64, NULL)) == NULL)
		fail_msg("the SMTP server did not start");
	f->smtp_port = atoi(port);
	free(port);
	free(f->conf.smtp.url);
	f->conf.smtp.url = xasprintf("smtp://127.0.0.1:%d", f->smtp_port);
	f->conf.smtp.user = xstrdup("ipcased");
	snprintf(path, sizeof(path), "%s/smtp.pass", f->dir);
	testutil_write_file(path, "s3cret-pw\n", 0600);
	f->conf.smtp.password_file = xstrdup(path);
	f->conf.smtp.ca_file = xasprintf("%s/ca.pem", f->dir);
	return true;
}

/* The n-th message the server received (1-based); NULL when there is none. */
static char *
received(struct fixture *f, int n)
{
	char	path[192];

	snprintf(path, sizeof(path), "%s/mail/%04d.eml", f->dir, n);
	return file_read(path, 1 << 20, NULL);
}

/* The unfolded value of header name in msg; malloc'd, NULL if absent. */
static char *
header(const char *msg, const char *name)
{
	const char	*p = msg;
	struct buf	 b = { 0 };
	size_t		 len = strlen(name);

	for (;;) {
		if (strncasecmp(p, name, len) == 0 && p[len] == ':') {
			for (p += len + 1; *p != '\0'; p++) {
				if (*p == '\r')
					continue;
				if (*p == '\n' && p[1] != ' ' && p[1] != '\t')
					break;
				if (*p == '\n' || ((*p == ' ' || *p == '\t') &&
				    (b.len == 0 || b.data[b.len - 1] == ' ')))
					continue;
				buf_append(&b, p, 1);
			}
			return buf_steal(&b);
		}
		if ((p = strchr(p, '\n')) == NULL || p[1] == '\n' ||
		    (p[1] == '\r' && p[2] == '\n'))
			return NULL;
		p++;
	}
}

static void
test_send_real_smtp(void **state)
{
	struct fixture	*f = *state;
	time_t		 due = utc(2026, 6, 10, 12, 0), now = due - 24 * H;
	long long	 c;
	char		*m1, *m2, *m3, *h, *id1, *id2, *want, path[192];

	if (!smtp_start(f))
		skip();
	c = add_case(f, "complaint:13:us", "high", now - D);
	sql(f, "INSERT INTO case_asins VALUES (%lld, 'B0CR3M8W5T')", c);
	sql(f, "INSERT INTO messages(dedupe_key, case_id, role, kind, from_addr,"
	    " subject, date, received, sha256) VALUES ('k1', %lld, 'notice',"
	    " 'ip_notice', 'notice@amazon.com', 'Notice: Policy Warning', %lld,"
	    " %lld, 'x')", c, (long long)(now - D), (long long)(now - D));
	add_task(f, c, "review", due);
	add_task(f, c, "appeal", due + 6 * D);

	/* The first reminder goes out and is recorded as sent. */
	assert_int_equal(schedule_plan(f->store, &f->conf, now), 1);
	assert_int_equal(schedule_send_due(f->store, &f->conf, now, NULL), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE status ="
	    " 'sent' AND sent_at = %lld AND last_reply LIKE '250%%'",
	    (long long)now), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM events WHERE case_id ="
	    " %lld AND what = 'reminder sent: review 24h'", c), 1);
	assert_non_null(m1 = received(f, 1));
	id1 = sql_text(f, "SELECT message_id FROM outbox WHERE threshold = '24h'");
	h = header(m1, "Message-ID");
	assert_non_null(h);
	want = xasprintf("<%s>", id1);
	assert_string_equal(h, want);
	free(h);
	free(want);
	/* Sent rows are not sent again. */
	assert_int_equal(schedule_send_due(f->store, &f->conf, now + H, NULL), 0);
	assert_null(received(f, 2));

	/* The next reminder of the case threads under the first. */
	assert_int_equal(schedule_plan(f->store, &f->conf, due - 2 * H), 1);
	assert_int_equal(schedule_send_due(f->store, &f->conf, due - 2 * H, NULL), 1);
	assert_non_null(m2 = received(f, 2));
	h = header(m2, "In-Reply-To");
	assert_non_null(h);
	assert_non_null(strstr(h, id1));
	free(h);

	/* A crash between the server's 250 and the commit: sent once more, same Message-ID. */
	id2 = sql_text(f, "SELECT message_id FROM outbox WHERE threshold = '2h'");
	sql(f, "UPDATE outbox SET status = 'pending', sent_at = NULL WHERE"
	    " threshold = '2h'");
	assert_int_equal(schedule_send_due(f->store, &f->conf, due - 2 * H, NULL), 1);
	assert_non_null(m3 = received(f, 3));
	h = header(m3, "Message-ID");
	want = xasprintf("<%s>", id2);
	assert_string_equal(h, want);
	free(h);
	free(want);
	free(m3);

	/* A wrong password is permanent: held, kept, retried hourly, then sent once fixed. */
	snprintf(path, sizeof(path), "%s/smtp.pass", f->dir);
	testutil_write_file(path, "wrong\n", 0600);
	assert_int_equal(schedule_plan(f->store, &f->conf, due), 1);
	assert_int_equal(schedule_send_due(f->store, &f->conf, due, NULL), 0);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE threshold ="
	    " 'due' AND status = 'held' AND attempts = 1"), 1);
	assert_in_range(sql_int(f, "SELECT next_attempt FROM outbox WHERE"
	    " threshold = 'due'") - due, 3240, 3960);
	assert_int_equal(schedule_send_due(f->store, &f->conf, due + 10 * 60, NULL), 0);
	assert_int_equal(schedule_send_due(f->store, &f->conf, due + 2 * H, NULL), 0);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE threshold ="
	    " 'due' AND status = 'held' AND attempts = 2"), 1);
	testutil_write_file(path, "s3cret-pw\n", 0600);
	assert_int_equal(schedule_send_due(f->store, &f->conf, due + 4 * H, NULL), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE threshold ="
	    " 'due' AND status = 'sent' AND attempts = 3"), 1);
	assert_non_null(m3 = received(f, 4));
	free(m3);

	/* An alert written by cases.c (no case: phishing) goes out before tasks, and a digest lists open cases. */
	sql(f, "INSERT INTO outbox(kind, message_id, created, next_attempt,"
	    " alert_text) VALUES ('alert', 'a1.alert@shop.example', %lld, %lld,"
	    " 'A forged Amazon notice arrived.')", (long long)due, (long long)due);
	sql(f, "INSERT INTO outbox(kind, threshold, message_id, created,"
	    " next_attempt) VALUES ('digest', '2026-06-10', 'd1.d@shop.example',"
	    " %lld, %lld)", (long long)due, (long long)due);
	assert_int_equal(schedule_send_due(f->store, &f->conf, due + 5 * H, NULL), 2);
	assert_non_null(m3 = received(f, 5));
	h = header(m3, "Message-ID");
	assert_string_equal(h, "<a1.alert@shop.example>");
	free(h);
	free(m3);
	assert_non_null(m3 = received(f, 6));
	h = header(m3, "Message-ID");
	assert_string_equal(h, "<d1.d@shop.example>");
	free(h);
	free(m3);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE status <>"
	    " 'sent'"), 0);

	free(id1);
	free(id2);
	free(m1);
	free(m2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_thresholds_as_time_advances, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_task_gets_one_reminder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overdue_repeats_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quiet_hours_across_dst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quiet_hours_never_past_due, setup, teardown),
		cmocka_unit_test_setup_teardown(test_business_days, setup, teardown),
		cmocka_unit_test_setup_teardown(test_done_and_snooze_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backlog_becomes_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backlog_counts_existing_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan_idempotent_and_ids_stable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clock_jumps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absurd_times, setup, teardown),
		cmocka_unit_test_setup_teardown(test_daily_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_failure_backs_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_real_smtp, setup, teardown),
	};

	testutil_helpers_here();
	log_init(LOG_TO_STDERR, "test_schedule");
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("schedule", tests, NULL, NULL);
}
