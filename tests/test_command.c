/* test_command.c — mail commands: parsing a reply's own lines, and obeying a reply to a reminder only from the seller with the case's token, once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
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

#include "cases.h"
#include "command.h"
#include "conf.h"
#include "log.h"
#include "mailer.h"
#include "mime.h"
#include "rules.h"
#include "schedule.h"
#include "store.h"
#include "util.h"

#include "testutil.h"

#define H	3600L
#define D	86400L
#define PYTHON	"/usr/bin/python3"

static char	 smtp_script[512];

/* ---- parsing ---- */

static void
test_parse_commands(void **state)
{
	struct command_list l;
	const char	*text = "done appeal\nsnooze 2d\nclose retracted\n"
	    "note called the owner, he will retract\n";

	(void)state;
	assert_int_equal(command_parse(text, strlen(text), &l), 4);
	assert_int_equal(l.n, 4);
	assert_int_equal(l.nbad, 0);
	assert_int_equal(l.dropped, 0);
	assert_int_equal(l.cmds[0].verb, COMMAND_DONE);
	assert_string_equal(l.cmds[0].arg, "appeal");
	assert_int_equal(l.cmds[1].verb, COMMAND_SNOOZE);
	assert_string_equal(l.cmds[1].arg, "2d");
	assert_int_equal(l.cmds[1].seconds, 2 * D);
	assert_int_equal(l.cmds[2].verb, COMMAND_CLOSE);
	assert_string_equal(l.cmds[2].arg, "retracted");
	assert_int_equal(l.cmds[3].verb, COMMAND_NOTE);
	assert_string_equal(l.cmds[3].arg, "called the owner, he will retract");
	assert_string_equal(command_verb_name(COMMAND_SNOOZE), "snooze");
	command_list_clear(&l);
	assert_int_equal(l.n, 0);
}

/* Quoted text is our reminder (it names every verb) or someone else's: never commands. */
static void
test_parse_quotes_and_signature(void **state)
{
	static const char *const texts[] = {
		"done review\n\n> done appeal\n> close retracted\n",
		"done review\nOn Tue, 1 Oct 2024 at 12:00, ipcased <ipcased@shop.example> wrote:\n"
		    "close retracted\n",
		"done review\nOn Tue, 1 Oct 2024 at 12:00, ipcased <ipcased@shop.example>\n"
		    "wrote:\n\nclose retracted\n",
		"done review\n-- \nJonah Fields\nnote not me\n",
		"done review\n\n-----Original Message-----\nclose retracted\n",
		"done review\n________________________________\nFrom: ipcased\nclose retracted\n",
		"done review\nFrom: ipcased <ipcased@shop.example>\nSent: Tuesday\n"
		    "close retracted\n",
		"done review\nAm 01.10.2024 um 12:00 schrieb ipcased <ipcased@shop.example>:\n"
		    "close retracted\n",
		"  done review\n   > close retracted\n",
	};
	struct command_list l;
	size_t		 i;

	(void)state;
	for (i = 0; i < NELEM(texts); i++) {
		assert_int_equal(command_parse(texts[i], strlen(texts[i]), &l), 1);
		assert_int_equal(l.n, 1);
		assert_int_equal(l.cmds[0].verb, COMMAND_DONE);
		assert_string_equal(l.cmds[0].arg, "review");
		command_list_clear(&l);
	}
	/* A reply that only quotes holds no command. */
	assert_int_equal(command_parse("> done review\n", 14, &l), 0);
	command_list_clear(&l);
}

static void
test_parse_forms(void **state)
{
	struct command_list l;
	const char	*text = "Hi,\r\n\r\nDONE Stop Selling\r\nSnooze 2 Days.\r\n"
	    "\tDone.\r\nNote: called   the owner\r\ndone contact-owner!\r\n"
	    "snooze 36H\r\nClose: Retracted by the owner\r\nThanks, Jonah\r\n";

	(void)state;
	assert_int_equal(command_parse(text, strlen(text), &l), 7);
	assert_int_equal(l.n, 7);
	assert_int_equal(l.nbad, 0);
	assert_string_equal(l.cmds[0].arg, "stop_selling");
	assert_int_equal(l.cmds[1].verb, COMMAND_SNOOZE);
	assert_string_equal(l.cmds[1].arg, "2d");
	assert_int_equal(l.cmds[1].seconds, 2 * D);
	/* A bare "done" means the task of the reminder answered. */
	assert_int_equal(l.cmds[2].verb, COMMAND_DONE);
	assert_null(l.cmds[2].arg);
	assert_int_equal(l.cmds[3].verb, COMMAND_NOTE);
	assert_string_equal(l.cmds[3].arg, "called   the owner");
	assert_string_equal(l.cmds[4].arg, "contact_owner");
	assert_int_equal(l.cmds[5].seconds, 36 * H);
	assert_string_equal(l.cmds[6].arg, "Retracted by the owner");
	command_list_clear(&l);

	/* Prose that starts like a verb is not a command; nor is a reply without one. */
	text = "done, thanks!\nclosed the listings yesterday\nnotes attached\n"
	    "Thanks, will do.\n";
	assert_int_equal(command_parse(text, strlen(text), &l), 0);
	assert_int_equal(l.n + l.nbad + l.dropped, 0);
	command_list_clear(&l);
	assert_int_equal(command_parse(NULL, 0, &l), 0);
	assert_int_equal(command_parse("", 0, &l), 0);
}

static void
test_parse_bad_lines(void **state)
{
	struct command_list l;
	const char	*text = "snooze forever\nsnooze 2\nsnooze 0d\nsnooze 53w\n"
	    "snooze 30s\nclose\nnote   \ndone foo/bar\nsnooze 1.5d\n"
	    "done a_task_name_that_is_much_longer_than_forty_bytes\n";

	(void)state;
	assert_int_equal(command_parse(text, strlen(text), &l), 10);
	assert_int_equal(l.n, 0);
	assert_int_equal(l.nbad, 10);
	assert_string_equal(l.bad[0], "snooze forever");
	assert_string_equal(l.bad[5], "close");
	assert_string_equal(l.bad[6], "note");
	assert_null(l.cmds[0].arg);
	command_list_clear(&l);
	/* A year is the longest snooze. */
	assert_int_equal(command_parse("snooze 52w", 10, &l), 1);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.cmds[0].seconds, 52 * 7 * D);
	command_list_clear(&l);
}

static void
test_parse_limits(void **state)
{
	struct command_list l;
	struct buf	 b = { 0 };
	char		*t;
	size_t		 i;

	(void)state;
	/* At most COMMAND_MAX commands, good and bad together; the rest are counted. */
	for (i = 0; i < 13; i++)
		buf_printf(&b, i == 4 ? "snooze never\n" : "note n%zu\n", i);
	assert_int_equal(command_parse(b.data, b.len, &l), 13);
	assert_int_equal(l.n, COMMAND_MAX - 1);
	assert_int_equal(l.nbad, 1);
	assert_int_equal(l.dropped, 3);
	assert_string_equal(l.cmds[8].arg, "n9");
	command_list_clear(&l);
	buf_free(&b);

	/* A note is cut at COMMAND_TEXT_MAX bytes, never inside a character. */
	buf_puts(&b, "note ");
	for (i = 0; i < 400; i++)
		buf_puts(&b, "\xc3\xa9");
	assert_int_equal(command_parse(b.data, b.len, &l), 1);
	assert_true(strlen(l.cmds[0].arg) <= COMMAND_TEXT_MAX);
	assert_true(strlen(l.cmds[0].arg) >= COMMAND_TEXT_MAX - 1);
	assert_true(utf8_valid(l.cmds[0].arg, strlen(l.cmds[0].arg)));
	command_list_clear(&l);
	buf_free(&b);

	/* NULs, controls and invalid UTF-8 never reach an argument. */
	t = xstrdup("note a\x01" "b\xff" "c\x1b[31m\nX");
	t[strlen(t) - 1] = '\0';
	assert_int_equal(command_parse(t, strlen(t) + 1, &l), 1);
	assert_non_null(l.cmds[0].arg);
	assert_null(strchr(l.cmds[0].arg, '\x1b'));
	assert_null(strchr(l.cmds[0].arg, '\x01'));
	assert_true(utf8_valid(l.cmds[0].arg, strlen(l.cmds[0].arg)));
	command_list_clear(&l);
	free(t);

	/* Only the first COMMAND_LINES_MAX lines of text are read. */
	for (i = 0; i < COMMAND_LINES_MAX; i++)
		buf_puts(&b, "blah\n");
	buf_puts(&b, "done review\n");
	assert_int_equal(command_parse(b.data, b.len, &l), 0);
	command_list_clear(&l);
	buf_free(&b);

	/* A line longer than COMMAND_LINE_MAX is prose. */
	buf_puts(&b, "note ");
	for (i = 0; i < COMMAND_LINE_MAX; i++)
		buf_puts(&b, "x");
	buf_puts(&b, "\ndone review\n");
	assert_int_equal(command_parse(b.data, b.len, &l), 1);
	assert_int_equal(l.cmds[0].verb, COMMAND_DONE);
	command_list_clear(&l);
	buf_free(&b);
}

static void
test_msgid_token(void **state)
{
	char	tok[COMMAND_TOKEN_LEN + 1];

	(void)state;
	assert_true(command_msgid_token("0a1b.r12.review.24h.0123456789abcdef@shop.example",
	    tok, sizeof(tok)));
	assert_string_equal(tok, "0123456789abcdef");
	assert_true(command_msgid_token("confirm.ab.fedcba9876543210@x.example", tok,
	    sizeof(tok)));
	assert_string_equal(tok, "fedcba9876543210");
	assert_false(command_msgid_token("0a1b.r12.review.24h@shop.example", tok, sizeof(tok)));
	assert_false(command_msgid_token("0a1b.0123456789abcde@shop.example", tok, sizeof(tok)));
	assert_false(command_msgid_token("0a1b.0123456789abcdef0@shop.example", tok, sizeof(tok)));
	assert_false(command_msgid_token("0a1b.0123456789ABCDEF@shop.example", tok, sizeof(tok)));
	assert_false(command_msgid_token("0123456789abcdef@shop.example", tok, sizeof(tok)));
	assert_false(command_msgid_token("a.0123456789abcdef", tok, sizeof(tok)));
	assert_false(command_msgid_token(NULL, tok, sizeof(tok)));
	assert_false(command_msgid_token("a.0123456789abcdef@x", tok, 8));
}

/* ---- a store with one case and its reminders ---- */

struct fixture {
	char		 dir[64];
	struct store	*store;
	struct conf	 conf;
	long		 before[3];
	char		*to[3];
	time_t		 now;
	int64_t		 case_id;
	char		*reminder_id;	/* the review reminder's Message-ID */
	pid_t		 smtp_pid;
};

static struct conf_deadline deadlines[] = {
	{ "review", D, 0 }, { "stop_selling", D, 0 }, { "evidence", 3 * D, 0 },
	{ "contact_owner", 3 * D, 0 }, { "follow_up", 5 * D, 0 },
	{ "follow_up_answer", 0, 1 }, { "appeal", 7 * D, 0 }, { "legal", 3 * D, 0 },
	{ "resume", 2 * D, 0 }, { "prevent", 14 * D, 0 },
	{ "await_decision", 14 * D, 0 }, { "recheck_listing", 3 * D, 0 },
};
static char *amazon_domains[] = { "amazon.com", "amazon.de", NULL };
static const struct msg_origin notice_origin = { "shop", "INBOX", 1700000000u, 1, false };
static const struct msg_origin inbox = { "shop", "INBOX", 1700000000u, 10, false };
static const struct msg_origin archive = { "shop", "Archive", 1700000002u, 77, false };
static const struct msg_origin sentbox = { "shop", "Sent", 1700000001u, 5, true };

static const char notice_raw[] =
	"From: Amazon <notice-dispute@amazon.com>\n"
	"To: ops@shop.example\n"
	"Subject: Notice: Policy Warning\n"
	"Date: Tue, 01 Oct 2024 12:00:00 +0000\n"
	"Message-ID: <notice-1@amazon.com>\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"\n"
	"Complaint ID: 12904418236\nASIN: B0CR3M8W5T\n"
	"Rights owner: legal@halvorsentools.example.com\n";

static enum result
ingest_verdict(struct fixture *f, const struct msg_origin *o, const char *raw,
    const struct verdict *v, struct ingest_report *r)
{
	struct message	*m = message_parse(raw, strlen(raw), false, true);
	enum result	 ret;

	assert_int_equal(store_begin(f->store), 0);
	ret = cases_ingest(f->store, &f->conf, o, m, v, f->now, r);
	if (ret == R_OK)
		assert_int_equal(store_commit(f->store), 0);
	else
		store_rollback(f->store);
	message_free(m);
	return ret;
}

/* Ingests raw as the daemon does for mail rules call "other". */
static struct ingest_report
ingest(struct fixture *f, const struct msg_origin *o, const char *raw)
{
	static char	*empty[] = { NULL };
	struct verdict	 v;
	struct ingest_report r;

	memset(&v, 0, sizeof(v));
	v.kind = KIND_OTHER;
	v.complaint_ids = empty;
	v.asins = empty;
	v.deadline_days = -1;
	assert_int_equal(ingest_verdict(f, o, raw, &v, &r), R_OK);
	return r;
}

static long long
q_int(struct fixture *f, const char *fmt, ...)
{
	va_list		 ap;
	sqlite3_stmt	*st;
	long long	 v = -999;

	va_start(ap, fmt);
	st = testutil_query(store_db(f->store), fmt, ap);
	va_end(ap);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The text of the first row, "(none)" when no row, "(null)" for NULL; malloc'd. */
static char *
q_text(struct fixture *f, const char *fmt, ...)
{
	va_list		 ap;
	sqlite3_stmt	*st;
	char		*v;

	va_start(ap, fmt);
	st = testutil_query(store_db(f->store), fmt, ap);
	va_end(ap);
	if (sqlite3_step(st) != SQLITE_ROW)
		v = xstrdup("(none)");
	else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
		v = xstrdup("(null)");
	else
		v = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

static void
assert_q_text(struct fixture *f, const char *want, const char *fmt, ...)
{
	va_list	 ap;
	char	*q, *v;

	va_start(ap, fmt);
	q = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	v = q_text(f, "%s", q);
	sqlite3_free(q);
	assert_string_equal(v, want);
	free(v);
}

static int
setup(void **state)
{
	static char	*asins[] = { "B0CR3M8W5T", NULL };
	static char	*cids[] = { "12904418236", NULL };
	struct fixture	*f = xcalloc(1, sizeof(*f));
	struct ingest_report r;
	struct verdict	 v;
	char		 path[128], err[256];
	struct tm	 tm = { .tm_year = 124, .tm_mon = 9, .tm_mday = 1, .tm_hour = 12,
	    .tm_min = 1 };

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_command.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/state.db", f->dir);
	if ((f->store = store_open(path, false, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	f->before[0] = 72 * H;
	f->before[1] = 24 * H;
	f->before[2] = 2 * H;
	f->to[0] = (char *)"ops@shop.example";
	f->to[1] = (char *)"Owner@Shop.example";
	f->conf.dir = f->dir;
	f->conf.deadlines = deadlines;
	f->conf.ndeadlines = NELEM(deadlines);
	f->conf.amazon_domains = amazon_domains;
	f->conf.smtp.url = xstrdup("smtp://127.0.0.1:1");
	f->conf.smtp.from = (char *)"ipcased@shop.example";
	f->conf.smtp.to = f->to;
	f->conf.smtp.timeout_sec = 10;
	f->conf.reminders.before = f->before;
	f->conf.reminders.nbefore = 3;
	f->conf.reminders.overdue_every = 24 * H;
	f->conf.reminders.overdue_max = 3;
	f->conf.reminders.max_per_hour = 30;
	f->conf.reminders.quiet_start_min = -1;
	f->conf.reminders.quiet_end_min = -1;
	f->conf.reminders.digest_hour = -1;
	f->conf.reminders.timezone = (char *)"UTC";
	f->now = timegm(&tm);

	memset(&v, 0, sizeof(v));
	v.kind = KIND_IP_NOTICE;
	v.complaint_id = cids[0];
	v.complaint_ids = cids;
	v.asins = asins;
	v.marketplace = (char *)"us";
	v.infringement_type = (char *)"trademark";
	v.rights_owner_email = (char *)"legal@halvorsentools.example.com";
	v.deadline_days = -1;
	v.authentic = true;
	if (ingest_verdict(f, &notice_origin, notice_raw, &v, &r) != R_OK || !r.opened)
		return -1;
	f->case_id = r.case_id;
	/* The reminders that are due now: review's among them. */
	if (schedule_plan(f->store, &f->conf, f->now) < 1)
		return -1;
	f->reminder_id = q_text(f, "SELECT message_id FROM outbox WHERE kind = 'task'"
	    " AND task = 'review'");
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
	free(f->reminder_id);
	free(f);
	return 0;
}

/* A reply to the mail with id to (a reminder of ours), headers before the body. */
static char *
reply(const char *from, const char *msgid, const char *to, const char *headers,
    const char *body)
{
	return xasprintf("From: Seller <%s>\n"
	    "To: ipcased@shop.example\n"
	    "Subject: Re: [ipcased #1] Review the complaint due in 24h: trademark, "
	    "B0CR3M8W5T, complaint 12904418236\n"
	    "Date: Tue, 01 Oct 2024 12:30:00 +0000\n"
	    "Message-ID: <%s>\n"
	    "In-Reply-To: <%s>\n"
	    "References: <%s>\n"
	    "%s"
	    "MIME-Version: 1.0\n"
	    "Content-Type: text/plain; charset=utf-8\n"
	    "\n%s", from, msgid, to, to, headers, body);
}

/* What fd 2 received while fn ran: the log lines. */
struct capture {
	int	 saved;
	char	 path[128];
};

static void
capture_begin(struct fixture *f, struct capture *c)
{
	int	fd;

	snprintf(c->path, sizeof(c->path), "%s/log.txt", f->dir);
	fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	c->saved = dup(2);
	dup2(fd, 2);
	close(fd);
}

static char *
capture_end(struct capture *c)
{
	char	*text;

	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	text = file_read(c->path, 1 << 20, NULL);
	assert_non_null(text);
	return text;
}

static void
assert_review_open(struct fixture *f)
{
	assert_q_text(f, "open", "SELECT status FROM tasks WHERE case_id = %lld AND"
	    " task = 'review'", (long long)f->case_id);
}

/* Nothing of it is kept, no confirmation queued, the case untouched. */
static void
assert_ignored(struct fixture *f, const struct ingest_report *r, const char *msgid)
{
	assert_int_equal(r->case_id, 0);
	assert_false(r->duplicate);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages WHERE message_id = %Q",
	    msgid), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM outbox WHERE kind = 'alert'"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM notes"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM events WHERE what LIKE"
	    " '%%by mail%%'"), 0);
	assert_review_open(f);
	assert_q_text(f, "open", "SELECT status FROM cases WHERE id = %lld",
	    (long long)f->case_id);
}

static void
test_reminder_id_carries_token(void **state)
{
	struct fixture	*f = *state;
	char		 tok[COMMAND_TOKEN_LEN + 1], *want;

	assert_true(command_msgid_token(f->reminder_id, tok, sizeof(tok)));
	want = q_text(f, "SELECT token FROM cases WHERE id = %lld", (long long)f->case_id);
	assert_string_equal(tok, want);
	free(want);
}

static void
test_valid_command_applied_once(void **state)
{
	struct fixture	*f = *state;
	struct ingest_report r;
	char		*raw, *text;
	long long	 done_at;

	raw = reply("ops@shop.example", "cmd-1@shop.example", f->reminder_id, "",
	    "Done\n\nOn Tue, 1 Oct 2024 ipcased <ipcased@shop.example> wrote:\n"
	    "> Reply to this mail with the line \"done\"\n> close retracted\n");
	f->now += 1800;
	r = ingest(f, &inbox, raw);
	assert_int_equal(r.case_id, f->case_id);
	assert_false(r.duplicate);
	assert_false(r.opened);
	assert_non_null(strstr(r.what, "Done: review"));
	assert_q_text(f, "done", "SELECT status FROM tasks WHERE case_id = %lld AND"
	    " task = 'review'", (long long)f->case_id);
	done_at = q_int(f, "SELECT done_at FROM tasks WHERE task = 'review'");
	assert_int_equal(done_at, f->now);
	/* The quoted "close" was not obeyed. */
	assert_q_text(f, "open", "SELECT status FROM cases");
	/* Kept as the seller's message of the case, never as correspondence. */
	assert_q_text(f, "seller", "SELECT role FROM messages WHERE message_id ="
	    " 'cmd-1@shop.example'");
	assert_q_text(f, "command", "SELECT kind FROM messages WHERE message_id ="
	    " 'cmd-1@shop.example'");
	assert_int_equal(q_int(f, "SELECT count(*) FROM events WHERE what ="
	    " 'task review done (by mail from ops@shop.example)'"), 1);
	/* One confirmation, threaded to the command by its key. */
	assert_int_equal(q_int(f, "SELECT count(*) FROM outbox WHERE kind = 'alert'"
	    " AND task = 'confirm' AND case_id = %lld AND threshold ="
	    " 'cmd-1@shop.example' AND status = 'pending'", (long long)f->case_id), 1);
	text = q_text(f, "SELECT alert_text FROM outbox WHERE task = 'confirm'");
	assert_true(strncmp(text, "Done: review\n", 13) == 0);
	assert_non_null(strstr(text, "Applied: done review"));
	free(text);

	/* Seen again (a rescan, another folder, the Sent copy): nothing more happens. */
	f->now += 3600;
	r = ingest(f, &inbox, raw);
	assert_true(r.duplicate);
	r = ingest(f, &archive, raw);
	assert_true(r.duplicate);
	r = ingest(f, &sentbox, raw);
	assert_true(r.duplicate);
	assert_int_equal(q_int(f, "SELECT count(*) FROM outbox WHERE task = 'confirm'"), 1);
	assert_int_equal(q_int(f, "SELECT done_at FROM tasks WHERE task = 'review'"),
	    done_at);
	assert_int_equal(q_int(f, "SELECT count(*) FROM events WHERE what LIKE"
	    " '%%by mail%%'"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages WHERE message_id ="
	    " 'cmd-1@shop.example'"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM message_locations l JOIN"
	    " messages m ON m.id = l.message_id WHERE m.message_id ="
	    " 'cmd-1@shop.example'"), 3);
	/* The planner drops the review's pending reminders: the task is done. */
	assert_true(schedule_plan(f->store, &f->conf, f->now) >= 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM outbox WHERE kind = 'task' AND"
	    " task = 'review' AND status = 'pending'"), 0);
	free(raw);
}

static void
test_sent_copy_and_address_case(void **state)
{
	struct fixture	*f = *state;
	struct ingest_report r;
	char		*raw;

	/* The seller's own Sent copy counts; addresses compare without case. */
	raw = reply("owner@shop.EXAMPLE", "cmd-2@shop.example", f->reminder_id, "",
	    "note called the owner\n");
	r = ingest(f, &sentbox, raw);
	assert_int_equal(r.case_id, f->case_id);
	assert_q_text(f, "called the owner", "SELECT text FROM notes WHERE case_id = %lld",
	    (long long)f->case_id);
	assert_int_equal(q_int(f, "SELECT count(*) FROM events WHERE what ="
	    " 'note added (by mail from Owner@Shop.example)'"), 1);
	free(raw);
}

static void
test_unknown_address_ignored(void **state)
{
	struct fixture	*f = *state;
	struct ingest_report r;
	struct capture	 c;
	char		*raw, *log;

	raw = reply("ops@shop.example.evil.test", "cmd-3@evil.test", f->reminder_id, "",
	    "done review\nclose retracted\n");
	capture_begin(f, &c);
	r = ingest(f, &inbox, raw);
	log = capture_end(&c);
	assert_ignored(f, &r, "cmd-3@evil.test");
	assert_non_null(strstr(log, "command from an unknown address"));
	assert_non_null(strstr(log, "ops@shop.example.evil.test"));
	free(log);
	free(raw);
}

static void
test_token_required(void **state)
{
	struct fixture	*f = *state;
	struct ingest_report r;
	struct capture	 c;
	char		*raw, *log, *old_id;

	/* A reminder row without the token (written before tokens were used). */
	old_id = xasprintf("old%s", strrchr(f->reminder_id, '@'));
	assert_int_equal(sqlite3_exec(store_db(f->store), "UPDATE outbox SET message_id"
	    " = 'b7e1.r1.evidence.72h@shop.example' WHERE task = 'evidence'",
	    NULL, NULL, NULL), SQLITE_OK);
	raw = reply("ops@shop.example", "cmd-4@shop.example",
	    "b7e1.r1.evidence.72h@shop.example", "", "done review\n");
	capture_begin(f, &c);
	r = ingest(f, &inbox, raw);
	log = capture_end(&c);
	assert_ignored(f, &r, "cmd-4@shop.example");
	assert_non_null(strstr(log, "does not carry the case's token"));
	free(log);
	free(raw);

	/* A token that is not the case's (it changed, or the id was made up). */
	assert_int_equal(sqlite3_exec(store_db(f->store), "UPDATE cases SET token ="
	    " 'ffffffffffffffff'", NULL, NULL, NULL), SQLITE_OK);
	raw = reply("ops@shop.example", "cmd-5@shop.example", f->reminder_id, "",
	    "done review\n");
	capture_begin(f, &c);
	r = ingest(f, &inbox, raw);
	log = capture_end(&c);
	assert_ignored(f, &r, "cmd-5@shop.example");
	assert_non_null(strstr(log, "does not carry the case's token"));
	free(log);
	free(raw);

	/* An id that is not ours at all: no command, and not a case thread either. */
	raw = reply("ops@shop.example", "cmd-6@shop.example", old_id, "", "done review\n");
	r = ingest(f, &inbox, raw);
	assert_ignored(f, &r, "cmd-6@shop.example");
	free(raw);
	free(old_id);
}

static void
test_automatic_replies_ignored(void **state)
{
	static const char *const headers[] = {
		"Auto-Submitted: auto-replied\n",
		"Auto-Submitted: auto-generated\n",
		"Precedence: bulk\n",
		"Precedence: junk\n",
		"List-Id: <sellers.lists.example>\n",
		"Return-Path: <>\n",
		"X-Autoreply: yes\n",
		"X-Autorespond: on\n",
	};
	struct fixture	*f = *state;
	struct ingest_report r;
	struct capture	 c;
	char		*raw, *log, id[64];
	size_t		 i;

	for (i = 0; i < NELEM(headers); i++) {
		snprintf(id, sizeof(id), "auto-%zu@shop.example", i);
		raw = reply("ops@shop.example", id, f->reminder_id, headers[i],
		    "I am out of the office.\ndone review\nclose retracted\n");
		capture_begin(f, &c);
		r = ingest(f, &inbox, raw);
		log = capture_end(&c);
		assert_ignored(f, &r, id);
		assert_non_null(strstr(log, "answered our mail automatically"));
		free(log);
		free(raw);
	}
	/* A delivery report from the mailer daemon, valid token and all. */
	raw = xasprintf("From: MAILER-DAEMON@mx.shop.example\nTo: ops@shop.example\n"
	    "Subject: Undelivered Mail\nMessage-ID: <dsn-1@mx.shop.example>\n"
	    "In-Reply-To: <%s>\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
	    "--b\nContent-Type: text/plain\n\ndone review\n--b\n"
	    "Content-Type: message/delivery-status\n\nStatus: 5.1.1\n--b--\n",
	    f->reminder_id);
	r = ingest(f, &inbox, raw);
	assert_ignored(f, &r, "dsn-1@mx.shop.example");
	free(raw);
}

/* DMARC says the From is forged (the topmost Authentication-Results is trusted when none are configured). */
static void
test_forged_sender_ignored(void **state)
{
	struct fixture	*f = *state;
	struct ingest_report r;
	char		*raw;

	raw = reply("ops@shop.example", "cmd-7@evil.test", f->reminder_id,
	    "Authentication-Results: mx.shop.example; dmarc=fail header.from=shop.example\n",
	    "done review\n");
	r = ingest(f, &inbox, raw);
	assert_ignored(f, &r, "cmd-7@evil.test");
	free(raw);
}

static void
test_no_command_reply(void **state)
{
	struct fixture	*f = *state;
	struct ingest_report r;
	char		*raw;

	raw = reply("ops@shop.example", "cmd-8@shop.example", f->reminder_id, "",
	    "Thanks, I will look at it tomorrow.\n\n> done review\n");
	r = ingest(f, &inbox, raw);
	assert_ignored(f, &r, "cmd-8@shop.example");
	/* Nor is it correspondence of the case. */
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 1);
	free(raw);
}

static void
test_snooze_note_close(void **state)
{
	struct fixture	*f = *state;
	struct ingest_report r;
	char		*raw, *text;

	raw = reply("ops@shop.example", "cmd-9@shop.example", f->reminder_id, "",
	    "snooze 2d\nnote called the owner\nclose retracted\ndone appeal\n");
	r = ingest(f, &inbox, raw);
	assert_int_equal(r.case_id, f->case_id);
	assert_int_equal(q_int(f, "SELECT snoozed_until FROM cases"), f->now + 2 * D);
	assert_q_text(f, "called the owner", "SELECT text FROM notes");
	assert_q_text(f, "closed", "SELECT status FROM cases");
	assert_q_text(f, "retracted", "SELECT close_reason FROM cases");
	assert_int_equal(q_int(f, "SELECT closed FROM cases"), f->now);
	assert_q_text(f, "cancelled", "SELECT status FROM tasks WHERE task = 'appeal'");
	assert_q_text(f, "open", "SELECT status FROM tasks WHERE task = 'prevent'");
	/* An event per command; the one that came after the close was refused. */
	assert_int_equal(q_int(f, "SELECT count(*) FROM events WHERE what LIKE"
	    " '%%(by mail from ops@shop.example)%%'"), 4);
	assert_int_equal(q_int(f, "SELECT count(*) FROM events WHERE what LIKE"
	    " 'mail command not applied%%done appeal%%'"), 1);
	text = q_text(f, "SELECT alert_text FROM outbox WHERE task = 'confirm'");
	assert_true(strncmp(text, "Snoozed 2d; Noted; Closed: retracted; Not applied:"
	    " done appeal\n", 63) == 0);
	assert_non_null(strstr(text, "no open task \"appeal\""));
	free(text);
	free(raw);
}

static void
test_not_understood(void **state)
{
	struct fixture	*f = *state;
	struct ingest_report r;
	char		*raw, *text;

	raw = reply("ops@shop.example", "cmd-10@shop.example", f->reminder_id, "",
	    "done stop selling\nsnooze forever\n");
	r = ingest(f, &inbox, raw);
	assert_int_equal(r.case_id, f->case_id);
	assert_q_text(f, "done", "SELECT status FROM tasks WHERE task = 'stop_selling'");
	assert_int_equal(q_int(f, "SELECT snoozed_until IS NULL FROM cases"), 1);
	text = q_text(f, "SELECT alert_text FROM outbox WHERE task = 'confirm'");
	assert_true(strncmp(text, "Not understood: snooze forever\n", 31) == 0);
	assert_non_null(strstr(text, "Applied: done stop_selling"));
	free(text);
	assert_int_equal(q_int(f, "SELECT count(*) FROM events WHERE what ="
	    " 'mail command not understood (by mail from ops@shop.example):"
	    " snooze forever'"), 1);
	free(raw);
}

static void
test_is_candidate(void **state)
{
	struct fixture	*f = *state;
	struct message	*m;
	char		*raw;

	raw = xasprintf("From: someone@x.test\nTo: ops@shop.example\nSubject: Re: hi\n"
	    "Message-ID: <c1@x.test>\nReferences: <a@b.test> <%s>\n\n", f->reminder_id);
	m = message_parse(raw, strlen(raw), true, false);
	assert_true(cases_candidate_match(cases_candidates(f->store), m));
	message_free(m);
	free(raw);
	raw = xstrdup("From: someone@x.test\nTo: ops@shop.example\nSubject: Re: hi\n"
	    "Message-ID: <c2@x.test>\nIn-Reply-To: <nothing@x.test>\n\n");
	m = message_parse(raw, strlen(raw), true, false);
	assert_false(cases_candidate_match(cases_candidates(f->store), m));
	message_free(m);
	free(raw);
}

/*
 * Our own mail comes back: the reminders go to the mailbox we watch.  They
 * cite the complaint id, the ASINs and the rights owner's address, and must
 * never join the case as correspondence, nor a bounce of them as "the
 * owner's address does not work".
 */
static void
test_own_mail_not_correspondence(void **state)
{
	struct fixture	*f = *state;
	const char	*asins[] = { "B0CR3M8W5T", NULL };
	struct mail_case mc;
	struct reminder	 rem;
	struct ingest_report r;
	char		*raw, *token, *bounce;
	size_t		 len;
	int		 i;

	token = q_text(f, "SELECT token FROM cases");
	memset(&mc, 0, sizeof(mc));
	mc.id = f->case_id;
	mc.token = token;
	mc.kind = "ip_notice";
	mc.status = "open";
	mc.complaint_id = "12904418236";
	mc.asins = asins;
	mc.rights_owner_email = "legal@halvorsentools.example.com";
	mc.opened = f->now;
	for (i = 0; i < 2; i++) {
		memset(&rem, 0, sizeof(rem));
		rem.kind = REMINDER_TASK;
		rem.c = &mc;
		rem.task = "evidence";
		rem.due = f->now + 3 * D;
		rem.threshold = "72h";
		/* The first reminder of a case, then one threaded under it. */
		rem.message_id = i == 0 ? "e1.r1.evidence.72h.x@shop.example" :
		    "e2.r1.evidence.24h.x@shop.example";
		rem.thread_id = i == 0 ? NULL : f->reminder_id;
		rem.timezone = "UTC";
		rem.now = f->now;
		raw = mailer_compose(&f->conf, &rem, &len);
		r = ingest(f, &inbox, raw);
		assert_int_equal(r.case_id, 0);
		assert_non_null(strstr(r.what, "ignored"));
		free(raw);
	}
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 1);

	/* Bounced, quoting its headers and the rights owner's address. */
	bounce = xasprintf("From: MAILER-DAEMON@mx.shop.example\nTo: ipcased@shop.example\n"
	    "Subject: Undelivered Mail Returned to Sender\n"
	    "Message-ID: <dsn-2@mx.shop.example>\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
	    "--b\nContent-Type: text/plain\n\n<ops@shop.example>: mailbox full\n--b\n"
	    "Content-Type: message/delivery-status\n\nStatus: 4.2.2\n--b\n"
	    "Content-Type: text/rfc822-headers\n\nFrom: ipcased <ipcased@shop.example>\n"
	    "Subject: [ipcased #1] Gather evidence: complaint 12904418236\n"
	    "X-Ipcased-Case: 1\n--b--\n"
	    "Write to: legal@halvorsentools.example.com\n");
	r = ingest(f, &inbox, bounce);
	assert_int_equal(r.case_id, 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM events WHERE what LIKE 'bounce%%'"), 0);
	free(bounce);

	/* Counsel's out-of-office answer without References still names the case. */
	raw = xstrdup("From: counsel@law.example\nTo: ipcased@shop.example\n"
	    "Subject: Out of office: [ipcased #1] Legal advice due in 3d:"
	    " complaint 12904418236\nMessage-ID: <ooo-1@law.example>\n"
	    "Auto-Submitted: auto-replied\n\nI am away. Re: 12904418236 B0CR3M8W5T\n");
	r = ingest(f, &inbox, raw);
	assert_int_equal(r.case_id, 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 1);
	free(raw);

	/* Our mail with its X- headers stripped on the way: From and Auto-Submitted say it. */
	raw = xstrdup("From: ipcased <ipcased@shop.example>\nTo: ops@shop.example\n"
	    "Subject: Daily digest: 1 open case, 0 overdue\n"
	    "Message-ID: <d9.d2024-10-02@shop.example>\nAuto-Submitted: auto-generated\n"
	    "\n#1 review: complaint 12904418236, B0CR3M8W5T,"
	    " legal@halvorsentools.example.com\n");
	r = ingest(f, &inbox, raw);
	assert_int_equal(r.case_id, 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 1);
	free(raw);

	/* The seller writing by hand from smtp.from's address is still the seller. */
	raw = xstrdup("From: ipcased@shop.example\nTo: legal@halvorsentools.example.com\n"
	    "Subject: complaint 12904418236\nMessage-ID: <hand-1@shop.example>\n"
	    "\nWe are authorised distributors.\n");
	r = ingest(f, &sentbox, raw);
	assert_int_equal(r.case_id, f->case_id);
	assert_q_text(f, "seller", "SELECT role FROM messages WHERE message_id ="
	    " 'hand-1@shop.example'");
	assert_q_text(f, "done", "SELECT status FROM tasks WHERE task = 'contact_owner'");
	free(raw);

	/* The rights owner's own mail still joins, of course. */
	raw = xstrdup("From: legal@halvorsentools.example.com\nTo: ops@shop.example\n"
	    "Subject: complaint 12904418236\nMessage-ID: <own-1@halvorsentools.example.com>\n"
	    "\nPlease call us.\n");
	r = ingest(f, &archive, raw);
	assert_int_equal(r.case_id, f->case_id);
	assert_q_text(f, "owner", "SELECT role FROM messages WHERE message_id ="
	    " 'own-1@halvorsentools.example.com'");
	free(raw);
	free(token);
}

/* ---- the confirmation goes out threaded (tests/smtp_server.py) ---- */

/* Starts smtp_server.py (STARTTLS, AUTH) with a fresh CA; false when python3-aiosmtpd or openssl is missing. */
static bool
smtp_start(struct fixture *f)
{
	char	 portfile[192], pass[192], *port;
	int	 i;

	if (access(PYTHON, X_OK) != 0 || access(smtp_script, ACCESS_READ) != 0 ||
	    system(PYTHON " -c 'import aiosmtpd' >/dev/null 2>&1") != 0 ||
	    system("openssl version >/dev/null 2>&1") != 0)
		return false;
	testutil_make_certs(f->dir);
	snprintf(portfile, sizeof(portfile), "%s/port", f->dir);
	snprintf(pass, sizeof(pass), "%s/smtp.pass", f->dir);
	testutil_write_file(pass, "s3cret-pw\n", 0600);
	if ((f->smtp_pid = fork()) == -1)
		fail_msg("fork: %s", strerror(errno));
	if (f->smtp_pid == 0) {
		char	cert[192], key[192], maildir[192], log[192], parent[32];
		int	null = open("/dev/null", O_WRONLY);

		snprintf(cert, sizeof(cert), "%s/srv.pem", f->dir);
		snprintf(key, sizeof(key), "%s/srv.key", f->dir);
		snprintf(maildir, sizeof(maildir), "%s/Maildir", f->dir);
		snprintf(log, sizeof(log), "%s/mail.jsonl", f->dir);
		snprintf(parent, sizeof(parent), "%d", (int)getppid());
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execl(PYTHON, "python3", smtp_script, "--port", "0", "--port-file",
		    portfile, "--cert", cert, "--key", key, "--user", "ipcased",
		    "--password-file", pass, "--maildir", maildir, "--log", log,
		    "--parent-pid", parent, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 300 && access(portfile, ACCESS_READ) != 0; i++)
		usleep(50 * 1000);
	if ((port = file_read(portfile, 64, NULL)) == NULL)
		fail_msg("smtp_server.py did not start");
	free(f->conf.smtp.url);
	f->conf.smtp.url = xasprintf("smtp://127.0.0.1:%d", atoi(port));
	free(port);
	f->conf.smtp.user = xstrdup("ipcased");
	f->conf.smtp.password_file = xstrdup(pass);
	f->conf.smtp.ca_file = xasprintf("%s/ca.pem", f->dir);
	return true;
}

/* The raw mail the server received with this Message-ID (without <>); NULL when none. */
static char *
delivered(struct fixture *f, const char *msgid)
{
	char		 dir[192], *path, *raw, *found = NULL;
	struct dirent	*de;
	struct message	*m;
	DIR		*d;

	snprintf(dir, sizeof(dir), "%s/Maildir/new", f->dir);
	if ((d = opendir(dir)) == NULL)
		return NULL;
	while (found == NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if ((raw = file_read(path, 1 << 20, NULL)) != NULL) {
			m = message_parse(raw, strlen(raw), false, false);
			if (m->message_id != NULL && strcmp(m->message_id, msgid) == 0)
				found = raw;
			else
				free(raw);
			message_free(m);
		}
		free(path);
	}
	closedir(d);
	return found;
}

static void
test_confirmation_sent_threaded(void **state)
{
	struct fixture	*f = *state;
	struct ingest_report r;
	struct message	*m;
	char		*raw, *sent, *confirm_id, *first_id, *kind;
	int		 n;

	if (!smtp_start(f))
		skip();
	/* The reminders go out; the review one comes back into the mailbox we watch. */
	n = schedule_send_due(f->store, &f->conf, f->now, NULL);
	assert_true(n >= 2);
	assert_int_equal(q_int(f, "SELECT count(*) FROM outbox WHERE status <> 'sent'"), 0);
	assert_non_null(sent = delivered(f, f->reminder_id));
	r = ingest(f, &inbox, sent);
	assert_int_equal(r.case_id, 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 1);
	free(sent);

	/* The seller answers it; the confirmation goes out in the same thread. */
	f->now += 600;
	raw = reply("ops@shop.example", "cmd-11@shop.example", f->reminder_id, "",
	    "done\nsnooze 1d\n");
	r = ingest(f, &inbox, raw);
	assert_int_equal(r.case_id, f->case_id);
	free(raw);
	confirm_id = q_text(f, "SELECT message_id FROM outbox WHERE task = 'confirm'");
	first_id = q_text(f, "SELECT message_id FROM outbox WHERE case_id = %lld AND"
	    " status = 'sent' ORDER BY id LIMIT 1", (long long)f->case_id);
	assert_int_equal(schedule_send_due(f->store, &f->conf, f->now, NULL), 1);
	assert_q_text(f, "sent", "SELECT status FROM outbox WHERE task = 'confirm'");
	assert_int_equal(q_int(f, "SELECT count(*) FROM events WHERE what ="
	    " 'confirmation of a mail command sent'"), 1);
	assert_non_null(sent = delivered(f, confirm_id));
	m = message_parse(sent, strlen(sent), false, true);
	assert_string_equal(m->in_reply_to, "cmd-11@shop.example");
	assert_int_equal(strv_len(m->references), 2);
	assert_string_equal(m->references[0], first_id);
	assert_string_equal(m->references[1], "cmd-11@shop.example");
	assert_string_equal(m->subject, "[ipcased #1] Done: review; Snoozed 1d");
	assert_string_equal(m->auto_submitted, "auto-generated");
	assert_string_equal(m->to_addrs[0], "ops@shop.example");
	kind = message_header(m, "X-Ipcased-Kind");
	assert_string_equal(kind, "confirm");
	free(kind);
	assert_non_null(strstr(m->text, "Applied: done review"));
	assert_non_null(strstr(m->text, "Applied: snooze 1d"));
	message_free(m);

	/* The confirmation comes back too: ignored, never a command nor correspondence. */
	r = ingest(f, &inbox, sent);
	assert_int_equal(r.case_id, 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 2);
	assert_int_equal(q_int(f, "SELECT count(*) FROM outbox WHERE task = 'confirm'"), 1);
	free(sent);
	free(first_id);
	free(confirm_id);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest parse[] = {
		cmocka_unit_test(test_parse_commands),
		cmocka_unit_test(test_parse_quotes_and_signature),
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_parse_bad_lines),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_msgid_token),
	};
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest ingest_tests[] = {
		T(test_reminder_id_carries_token),
		T(test_valid_command_applied_once),
		T(test_sent_copy_and_address_case),
		T(test_unknown_address_ignored),
		T(test_token_required),
		T(test_automatic_replies_ignored),
		T(test_forged_sender_ignored),
		T(test_no_command_reply),
		T(test_snooze_note_close),
		T(test_not_understood),
		T(test_is_candidate),
		T(test_own_mail_not_correspondence),
		T(test_confirmation_sent_threaded),
	};
	const char	*env = getenv("IPCASED_SMTP_SERVER");
	char		*dir, *slash;
	int		 rc;

	testutil_helpers_here();

	/* tests/smtp_server.py: next to the binary, else from the top of the tree. */
	if (env != NULL)
		snprintf(smtp_script, sizeof(smtp_script), "%s", env);
	else {
		dir = xstrdup(argc > 0 ? argv[0] : "");
		if ((slash = strrchr(dir, '/')) != NULL) {
			*slash = '\0';
			snprintf(smtp_script, sizeof(smtp_script), "%s/smtp_server.py", dir);
		}
		if (slash == NULL || access(smtp_script, ACCESS_READ) != 0)
			snprintf(smtp_script, sizeof(smtp_script), "tests/smtp_server.py");
		free(dir);
	}
	log_init(LOG_TO_STDERR, "test_command");
	signal(SIGPIPE, SIG_IGN);
	rc = cmocka_run_group_tests_name("command parsing", parse, NULL, NULL);
	rc += cmocka_run_group_tests_name("mail commands", ingest_tests, NULL, NULL);
	return rc;
}
