/* test_cases.c — the case model: opening and merging, playbook deadlines, correspondence, follow-ups, phishing, commands, export. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <json-c/json.h>
#include <sqlite3.h>

#include "cases.h"
#include "conf.h"
#include "message.h"
#include "rules.h"
#include "store.h"
#include "util.h"

#define DAY	86400

static char		 tmpdir[64];
static struct store	*st;
static struct conf	 conf;
static struct conf_deadline deadlines[] = {
	{ "review", DAY, 0 }, { "stop_selling", DAY, 0 }, { "evidence", 3 * DAY, 0 },
	{ "contact_owner", 3 * DAY, 0 }, { "follow_up", 5 * DAY, 0 },
	{ "follow_up_answer", 0, 1 }, { "appeal", 7 * DAY, 0 }, { "legal", 3 * DAY, 0 },
	{ "resume", 2 * DAY, 0 }, { "prevent", 14 * DAY, 0 },
	{ "await_decision", 14 * DAY, 0 }, { "recheck_listing", 3 * DAY, 0 },
};
static char *amazon_domains[] = { "amazon.com", "amazon.de", "amazon.co.uk",
	"amazon.ca", NULL };
static char *seller_to[] = { "ops@shop.example", NULL };
static const struct msg_origin inbox = { "shop", "INBOX", 1700000000u, 1, false };
static const struct msg_origin sentbox = { "shop", "Sent", 1700000001u, 1, true };
static time_t	 now;

static time_t
utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm	tm = { 0 };

	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return timegm(&tm);
}

static int
setup(void **state)
{
	char	err[256], path[128];

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_cases.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/state.db", tmpdir);
	memset(&conf, 0, sizeof(conf));
	conf.deadlines = deadlines;
	conf.ndeadlines = NELEM(deadlines);
	conf.amazon_domains = amazon_domains;
	conf.smtp.from = "ipcased@shop.example";
	conf.smtp.to = seller_to;
	conf.reminders.timezone = "UTC";
	now = utc(2024, 10, 1, 12, 0, 0);
	if ((st = store_open(path, false, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return store_begin(st);
}

static int
teardown(void **state)
{
	char	cmd[256];

	(void)state;
	store_rollback(st);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- building messages and verdicts by hand ---- */

struct mail {
	const char	*msgid;
	const char	*from;
	const char	*to;		/* one address */
	const char	*subject;
	const char	*text;
	const char	*in_reply_to;
	const char	*refs;		/* one id */
	const char	*content_type;
	time_t		 date;
	bool		 list;
};

static char **
strv1(const char *a)
{
	char	**v = xcalloc(2, sizeof(*v));

	v[0] = xstrdup(a);
	return v;
}

static char **
split_csv(const char *csv)
{
	char	**v = xcalloc(8, sizeof(*v)), *copy, *tok, *save = NULL;
	size_t	 n = 0;

	if (csv == NULL)
		return v;
	copy = xstrdup(csv);
	for (tok = strtok_r(copy, ",", &save); tok != NULL && n < 7;
	    tok = strtok_r(NULL, ",", &save))
		v[n++] = xstrdup(tok);
	free(copy);
	return v;
}

static struct message *
mk_msg(const struct mail *a)
{
	struct message	*m = xcalloc(1, sizeof(*m));

	m->from_addr = xstrdup(a->from);
	m->to_addrs = a->to != NULL ? strv1(a->to) : xcalloc(1, sizeof(char *));
	m->subject = xstrdup(a->subject);
	m->date = a->date;
	m->message_id = xstrdup(a->msgid);
	m->in_reply_to = xstrdup(a->in_reply_to);
	m->references = a->refs != NULL ? strv1(a->refs) : xcalloc(1, sizeof(char *));
	m->auth_results = xcalloc(1, sizeof(char *));
	m->has_list_id = a->list;
	m->content_type = xstrdup(a->content_type != NULL ? a->content_type : "text/plain");
	m->dedupe_key = xstrdup(a->msgid);
	m->text = xstrdup(a->text != NULL ? a->text : "");
	m->text_len = strlen(m->text);
	m->raw = xasprintf("Message-ID: <%s>\r\nFrom: %s\r\nSubject: %s\r\n\r\n%s\r\n",
	    a->msgid, a->from, a->subject, m->text);
	m->raw_len = strlen(m->raw);
	return m;
}

struct notice {
	enum kind	 kind;
	const char	*complaint_id;
	const char	*marketplace;
	const char	*type;
	const char	*owner_name;
	const char	*owner_email;
	const char	*asins;		/* comma-separated */
	int		 deadline_days;
	bool		 authentic;
	bool		 lawsuit;
	const char	*outcome;
};

static struct verdict *
mk_verdict(const struct notice *n)
{
	struct verdict	*v = xcalloc(1, sizeof(*v));

	v->kind = n->kind;
	v->complaint_id = xstrdup(n->complaint_id);
	v->complaint_ids = n->complaint_id != NULL ? strv1(n->complaint_id) :
	    xcalloc(1, sizeof(char *));
	v->asins = split_csv(n->asins);
	v->infringement_type = xstrdup(n->type);
	v->rights_owner_name = xstrdup(n->owner_name);
	v->rights_owner_email = xstrdup(n->owner_email);
	v->marketplace = xstrdup(n->marketplace);
	v->deadline_days = n->deadline_days != 0 ? n->deadline_days : -1;
	v->authentic = n->authentic;
	v->auth_reason = xstrdup(n->authentic ? "dmarc=pass dkim=amazon.com" :
	    "no trusted Authentication-Results");
	v->lawsuit = n->lawsuit;
	v->outcome = xstrdup(n->outcome);
	return v;
}

static void
free_verdict(struct verdict *v)
{
	verdict_clear(v);
	free(v);
}

static enum result
ingest(const struct msg_origin *o, const struct mail *a, const struct notice *n,
    struct ingest_report *r)
{
	static const struct notice other = { .kind = KIND_OTHER };
	struct message	*m = mk_msg(a);
	struct verdict	*v = mk_verdict(n != NULL ? n : &other);
	enum result	 ret;

	ret = cases_ingest(st, &conf, o, m, v, now, r);
	message_free(m);
	free_verdict(v);
	return ret;
}

/* ---- reading the database back ---- */

static int64_t
q_int(const char *fmt, ...)
{
	sqlite3_stmt	*s;
	va_list		 ap;
	char		*sql;
	int64_t		 v = -999;

	va_start(ap, fmt);
	sql = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	g_free(sql);
	return v;
}

static char	q_buf[512];

static const char *
q_text(const char *fmt, ...)
{
	sqlite3_stmt	*s;
	va_list		 ap;
	char		*sql;

	va_start(ap, fmt);
	sql = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	snprintf(q_buf, sizeof(q_buf), "(none)");
	assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		snprintf(q_buf, sizeof(q_buf), "%s", sqlite3_column_type(s, 0) ==
		    SQLITE_NULL ? "(null)" : (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	g_free(sql);
	return q_buf;
}

static int64_t
task_due(int64_t case_id, const char *task)
{
	return q_int("SELECT due FROM tasks WHERE case_id = %lld AND task = '%s'",
	    (long long)case_id, task);
}

static const char *
task_status(int64_t case_id, const char *task)
{
	return q_text("SELECT status FROM tasks WHERE case_id = %lld AND task = '%s'",
	    (long long)case_id, task);
}

/* ---- the corpus in miniature (s01, s15, s16, s17 ...) ---- */

static const struct notice s01 = {
	KIND_IP_NOTICE, "12904418236", "us", "trademark", "Halvorsen Tool Co.",
	"Legal@HalvorsenTools.example.com", "B0CR3M8W5T,B0CR3P2KXD", 90, true, false, NULL
};

static struct mail
s01_mail(void)
{
	return (struct mail){ .msgid = "notice-s01@amazon.com",
	    .from = "notice-dispute@amazon.com", .to = "ops@shop.example",
	    .subject = "Notice: Policy Warning",
	    .text = "Complaint ID: 12904418236\nASIN: B0CR3M8W5T\n",
	    .date = utc(2024, 9, 10, 15, 40, 22) };
}

static int64_t
open_s01(void)
{
	struct ingest_report r;
	struct mail	 a = s01_mail();

	assert_int_equal(ingest(&inbox, &a, &s01, &r), R_OK);
	assert_true(r.opened);
	assert_false(r.duplicate);
	return r.case_id;
}

static void
test_notice_opens_case(void **state)
{
	time_t		 d = utc(2024, 9, 10, 15, 40, 22);
	struct mail	 a = s01_mail();
	struct message	*m;
	gchar		*hash;
	int64_t		 id;

	(void)state;
	id = open_s01();
	assert_int_equal(id, 1);
	assert_int_equal(q_int("SELECT count(*) FROM cases"), 1);
	assert_string_equal(q_text("SELECT case_key FROM cases"), "complaint:12904418236:us");
	assert_string_equal(q_text("SELECT kind FROM cases"), "ip_notice");
	assert_string_equal(q_text("SELECT direction FROM cases"), "inbound");
	assert_string_equal(q_text("SELECT status FROM cases"), "open");
	assert_string_equal(q_text("SELECT marketplace FROM cases"), "us");
	assert_string_equal(q_text("SELECT infringement_type FROM cases"), "trademark");
	assert_string_equal(q_text("SELECT rights_owner_name FROM cases"), "Halvorsen Tool Co.");
	assert_string_equal(q_text("SELECT rights_owner_email FROM cases"),
	    "legal@halvorsentools.example.com");
	assert_string_equal(q_text("SELECT owner_flags FROM cases"), "(null)");
	assert_int_equal(q_int("SELECT deadline_days FROM cases"), 90);
	assert_int_equal(q_int("SELECT opened FROM cases"), d);
	assert_int_equal(q_int("SELECT length(token) FROM cases"), 16);
	assert_string_equal(q_text("SELECT urgency FROM cases"), "normal");
	assert_int_equal(q_int("SELECT count(*) FROM case_asins WHERE case_id = 1"), 2);
	assert_int_equal(q_int("SELECT count(*) FROM case_complaints"), 1);

	/* The playbook: due times from the notice's Date. */
	assert_int_equal(q_int("SELECT count(*) FROM tasks"), 5);
	assert_int_equal(task_due(id, "review"), d + DAY);
	assert_int_equal(task_due(id, "stop_selling"), d + DAY);
	assert_int_equal(task_due(id, "evidence"), d + 3 * DAY);
	assert_int_equal(task_due(id, "contact_owner"), d + 3 * DAY);
	assert_int_equal(task_due(id, "appeal"), d + 90 * DAY);	/* the notice's own 90 days */
	assert_int_equal(q_int("SELECT count(*) FROM tasks WHERE task = 'legal'"), 0);
	{
		int	open_cases;
		time_t	next;

		assert_int_equal(cases_summary(st, &open_cases, &next), 0);
		assert_int_equal(open_cases, 1);
		assert_int_equal(next, d + DAY);
	}

	/* Evidence: raw bytes unchanged and their hash. */
	m = mk_msg(&a);
	hash = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)m->raw,
	    m->raw_len);
	assert_string_equal(q_text("SELECT sha256 FROM messages"), hash);
	assert_int_equal(q_int("SELECT raw = CAST('%s' AS BLOB) FROM messages", m->raw), 1);
	assert_string_equal(q_text("SELECT role FROM messages"), "notice");
	assert_int_equal(q_int("SELECT case_id FROM messages"), 1);
	assert_int_equal(q_int("SELECT received FROM messages"), now);
	assert_int_equal(q_int("SELECT count(*) FROM message_locations"), 1);
	g_free(hash);
	message_free(m);
}

static void
test_same_notice_is_duplicate(void **state)
{
	struct ingest_report r;
	struct msg_origin other = { "shop", "Archive", 5, 9, false };
	struct mail	 a = s01_mail();

	(void)state;
	open_s01();
	assert_int_equal(ingest(&other, &a, &s01, &r), R_OK);
	assert_true(r.duplicate);
	assert_false(r.opened);
	assert_int_equal(r.case_id, 1);
	assert_int_equal(q_int("SELECT count(*) FROM cases"), 1);
	assert_int_equal(q_int("SELECT count(*) FROM messages"), 1);
	assert_int_equal(q_int("SELECT count(*) FROM tasks"), 5);
	assert_int_equal(q_int("SELECT count(*) FROM events"), 1);
	assert_int_equal(q_int("SELECT count(*) FROM message_locations"), 2);
	/* The same location twice (a crash before the folder progress) changes nothing. */
	assert_int_equal(ingest(&other, &a, &s01, &r), R_OK);
	assert_int_equal(q_int("SELECT count(*) FROM message_locations"), 2);
}

static void
test_same_complaint_merges(void **state)
{
	struct ingest_report r;
	struct mail	 a = s01_mail();
	struct notice	 n = s01;

	(void)state;
	open_s01();
	a.msgid = "notice-s01-again@amazon.com";
	a.date += DAY;
	n.asins = "B0CR3P2KXD,B0CR3ZZZZZ";
	n.owner_name = NULL;
	n.deadline_days = 0;
	assert_int_equal(ingest(&inbox, &a, &n, &r), R_OK);
	assert_false(r.opened);
	assert_false(r.duplicate);
	assert_int_equal(r.case_id, 1);
	assert_int_equal(q_int("SELECT count(*) FROM cases"), 1);
	assert_int_equal(q_int("SELECT count(*) FROM case_asins"), 3);
	assert_int_equal(q_int("SELECT count(*) FROM messages WHERE case_id = 1"), 2);
	assert_int_equal(q_int("SELECT count(*) FROM tasks"), 5);
	/* Filled fields stay. */
	assert_string_equal(q_text("SELECT rights_owner_name FROM cases"), "Halvorsen Tool Co.");
	assert_int_equal(q_int("SELECT deadline_days FROM cases"), 90);
}

static void
test_other_marketplace_is_another_case(void **state)
{
	struct ingest_report r;
	struct mail	 a = s01_mail();
	struct notice	 n = s01;

	(void)state;
	open_s01();
	a.msgid = "notice-s01-de@amazon.de";
	n.marketplace = "de";
	assert_int_equal(ingest(&inbox, &a, &n, &r), R_OK);
	assert_true(r.opened);
	assert_int_equal(r.case_id, 2);
	assert_string_equal(q_text("SELECT case_key FROM cases WHERE id = 2"),
	    "complaint:12904418236:de");
	assert_int_equal(q_int("SELECT count(*) FROM cases"), 2);
	/* The same rights owner complains again: get legal advice. */
	assert_string_equal(task_status(2, "legal"), "open");
	assert_string_equal(task_status(1, "legal"), "(none)");
}

static void
test_phishing_alerts_without_case(void **state)
{
	struct ingest_report r;
	struct mail	 a = { .msgid = "phish-1@amaz0n-seller.example",
	    .from = "notice@amaz0n-seller.example", .to = "ops@shop.example",
	    .subject = "Urgent \x1b[31mIP complaint\x1b[0m 3390117458",
	    .date = utc(2024, 9, 20, 8, 0, 0) };
	struct notice	 n = { .kind = KIND_PHISHING, .complaint_id = "3390117458",
	    .marketplace = "us", .asins = "B0CR3M8W5T" };
	const char	*text;

	(void)state;
	open_s01();
	assert_int_equal(ingest(&inbox, &a, &n, &r), R_OK);
	assert_true(r.alert);
	assert_false(r.opened);
	assert_int_equal(r.case_id, 0);
	assert_int_equal(q_int("SELECT count(*) FROM cases"), 1);
	assert_int_equal(q_int("SELECT count(*) FROM case_complaints WHERE"
	    " complaint_id = '3390117458'"), 0);
	assert_string_equal(q_text("SELECT role FROM messages WHERE message_id ="
	    " 'phish-1@amaz0n-seller.example'"), "phishing");
	assert_int_equal(q_int("SELECT case_id IS NULL FROM messages WHERE message_id ="
	    " 'phish-1@amaz0n-seller.example'"), 1);
	assert_int_equal(q_int("SELECT count(*) FROM outbox"), 1);
	assert_string_equal(q_text("SELECT kind FROM outbox"), "alert");
	assert_int_equal(q_int("SELECT case_id IS NULL FROM outbox"), 1);
	assert_string_equal(q_text("SELECT threshold FROM outbox"),
	    "phish-1@amaz0n-seller.example");
	assert_string_equal(q_text("SELECT status FROM outbox"), "pending");
	assert_int_equal(q_int("SELECT next_attempt FROM outbox"), now);
	text = q_text("SELECT alert_text FROM outbox");
	assert_non_null(strstr(text, "not from Amazon"));
	assert_non_null(strstr(text, "3390117458"));
	assert_null(strchr(text, '\x1b'));
	/* Tasks of the real case untouched; a rescan alerts no second time. */
	assert_int_equal(q_int("SELECT count(*) FROM tasks"), 5);
	assert_int_equal(ingest(&inbox, &a, &n, &r), R_OK);
	assert_true(r.duplicate);
	assert_int_equal(q_int("SELECT count(*) FROM outbox"), 1);
}

static const struct mail s15 = {
	.msgid = "3e7f1a90@shop.example", .from = "ops@shop.example",
	.to = "legal@halvorsentools.example.com",
	.subject = "Trademark complaint 12904418236 - authorised distributor invoices",
	.text = "Hello Halvorsen legal team, ...",
	/* Wednesday */
	.date = 1726067139	/* 2024-09-11 15:05:39 UTC */
};

static void
test_sent_to_owner_completes_contact(void **state)
{
	struct ingest_report r;
	int64_t		 id;

	(void)state;
	assert_int_equal(utc(2024, 9, 11, 15, 5, 39), s15.date);
	id = open_s01();
	assert_int_equal(ingest(&sentbox, &s15, NULL, &r), R_OK);
	assert_int_equal(r.case_id, id);
	assert_false(r.opened);
	assert_string_equal(q_text("SELECT role FROM messages WHERE message_id ="
	    " '3e7f1a90@shop.example'"), "seller");
	assert_string_equal(task_status(id, "contact_owner"), "done");
	assert_int_equal(q_int("SELECT done_at FROM tasks WHERE task = 'contact_owner'"),
	    s15.date);
	assert_string_equal(task_status(id, "follow_up"), "open");
	assert_int_equal(task_due(id, "follow_up"), s15.date + 5 * DAY);
}

static void
test_owner_reply_by_references(void **state)
{
	struct ingest_report r;
	/* A Friday: the answer is due the next business day, Monday. */
	struct mail	 reply = { .msgid = "HT7PR01MB5524A1B2@halvorsentools.example.com",
	    .from = "legal@halvorsentools.example.com", .to = "ops@shop.example",
	    .subject = "RE: your mail", .text = "Jonah, we will review.",
	    .in_reply_to = "3e7f1a90@shop.example", .refs = "3e7f1a90@shop.example",
	    .date = utc(2024, 9, 13, 14, 31, 18) };
	struct mail	 third = { .msgid = "x1@lawfirm.test", .from = "clerk@lawfirm.test",
	    .to = "ops@shop.example", .subject = "Re: your mail", .text = "noted",
	    .refs = "HT7PR01MB5524A1B2@halvorsentools.example.com",
	    .date = utc(2024, 9, 14, 9, 0, 0) };
	int64_t		 id;

	(void)state;
	id = open_s01();
	assert_int_equal(ingest(&sentbox, &s15, NULL, &r), R_OK);
	assert_int_equal(ingest(&inbox, &reply, NULL, &r), R_OK);
	assert_int_equal(r.case_id, id);
	assert_string_equal(q_text("SELECT role FROM messages WHERE message_id ="
	    " 'HT7PR01MB5524A1B2@halvorsentools.example.com'"), "owner");
	assert_string_equal(task_status(id, "follow_up"), "open");
	assert_int_equal(task_due(id, "follow_up"), utc(2024, 9, 16, 14, 31, 18));
	assert_int_equal(q_int("SELECT count(*) FROM tasks WHERE task = 'follow_up'"), 1);
	/* Someone else in the thread joins by References alone. */
	assert_int_equal(ingest(&inbox, &third, NULL, &r), R_OK);
	assert_int_equal(r.case_id, id);
	assert_string_equal(q_text("SELECT role FROM messages WHERE message_id ="
	    " 'x1@lawfirm.test'"), "other");
	assert_int_equal(task_due(id, "follow_up"), utc(2024, 9, 16, 14, 31, 18));
}

static void
test_owner_colleague_by_domain(void **state)
{
	struct ingest_report r;
	struct mail	 s17 = { .msgid = "HT7PR01MB5524F0E1@halvorsentools.example.com",
	    .from = "brandprotection@halvorsentools.example.com", .to = "ops@shop.example",
	    .subject = "Halvorsen / Harbor Lane", .text = "Following up for Peter.",
	    .date = utc(2024, 9, 23, 19, 2, 51) };
	struct mail	 news = { .msgid = "nl-1@marketplacemonday.example.com",
	    .from = "hello@marketplacemonday.example.com", .to = "ops@shop.example",
	    .subject = "How to get complaint 12904418236 retracted",
	    .text = "Complaint ID 12904418236, ASIN B0CR3M8W5T", .list = true,
	    .date = utc(2024, 9, 23, 7, 0, 0) };
	struct mail	 fwd = { .msgid = "fwd-1@shop.example", .from = "jonas@shop.example",
	    .to = "ops@shop.example", .subject = "Fwd: Notice: Policy Warning",
	    .text = "FYI\nComplaint ID: 12904418236\n",
	    .date = utc(2024, 9, 23, 8, 0, 0) };
	struct mail	 unrelated = { .msgid = "p-1@example.com", .from = "lucia@example.com",
	    .to = "ops@shop.example", .subject = "Dinner?", .text = "Sabado?",
	    .date = utc(2024, 9, 23, 9, 0, 0) };
	int64_t		 id, msgs, events;

	(void)state;
	id = open_s01();
	msgs = q_int("SELECT count(*) FROM messages");
	events = q_int("SELECT count(*) FROM events");
	/* Newsletters, the seller's own colleagues and personal mail are not stored. */
	assert_int_equal(ingest(&inbox, &news, NULL, &r), R_OK);
	assert_int_equal(r.case_id, 0);
	assert_int_equal(ingest(&inbox, &fwd, NULL, &r), R_OK);
	assert_int_equal(r.case_id, 0);
	assert_int_equal(ingest(&inbox, &unrelated, NULL, &r), R_OK);
	assert_int_equal(r.case_id, 0);
	assert_int_equal(q_int("SELECT count(*) FROM messages"), msgs);
	assert_int_equal(q_int("SELECT count(*) FROM events"), events);
	assert_int_equal(q_int("SELECT count(*) FROM cases"), 1);

	assert_int_equal(ingest(&inbox, &s17, NULL, &r), R_OK);
	assert_int_equal(r.case_id, id);
	assert_string_equal(q_text("SELECT role FROM messages WHERE message_id ="
	    " 'HT7PR01MB5524F0E1@halvorsentools.example.com'"), "owner");
	assert_string_equal(task_status(id, "follow_up"), "open");
}

static void
test_owner_retraction_does_not_resolve(void **state)
{
	struct ingest_report r;
	struct mail	 s10 = { .msgid = "HT7PR01MB5524C9D8@halvorsentools.example.com",
	    .from = "legal@halvorsentools.example.com", .to = "notice-retraction@amazon.com",
	    .subject = "Retraction - Complaint ID 12904418236", .text = "Dear Amazon,",
	    .date = utc(2024, 9, 23, 18, 55, 7) };
	struct notice	 n = { .kind = KIND_RETRACTION, .complaint_id = "12904418236",
	    .marketplace = "us", .owner_email = "legal@halvorsentools.example.com",
	    .authentic = false };
	int64_t		 id;

	(void)state;
	id = open_s01();
	assert_int_equal(ingest(&inbox, &s10, &n, &r), R_OK);
	assert_int_equal(r.case_id, id);
	assert_false(r.opened);
	assert_string_equal(q_text("SELECT status FROM cases"), "open");
	assert_string_equal(task_status(id, "review"), "open");
	assert_string_equal(task_status(id, "resume"), "(none)");
	assert_int_equal(q_int("SELECT count(*) FROM events WHERE what LIKE"
	    " 'rights owner says retracted%%'"), 1);
	assert_string_equal(q_text("SELECT role FROM messages WHERE message_id ="
	    " 'HT7PR01MB5524C9D8@halvorsentools.example.com'"), "owner");
}

static void
test_amazon_reinstatement_resolves(void **state)
{
	struct ingest_report r;
	time_t		 d = utc(2024, 10, 1, 8, 2, 30);
	struct mail	 a = { .msgid = "reinst-1@amazon.com", .from = "notice-dispute@amazon.com",
	    .to = "ops@shop.example", .subject = "Your listing has been reinstated",
	    .text = "Complaint ID: 12904418236", .date = d };
	struct notice	 n = { .kind = KIND_REINSTATEMENT, .complaint_id = "12904418236",
	    .marketplace = "us", .authentic = true };
	int64_t		 id;

	(void)state;
	id = open_s01();
	assert_int_equal(ingest(&inbox, &a, &n, &r), R_OK);
	assert_int_equal(r.case_id, id);
	assert_string_equal(q_text("SELECT status FROM cases"), "reinstated");
	assert_string_equal(task_status(id, "review"), "cancelled");
	assert_string_equal(task_status(id, "appeal"), "cancelled");
	assert_string_equal(task_status(id, "resume"), "open");
	assert_string_equal(task_status(id, "prevent"), "open");
	assert_int_equal(task_due(id, "resume"), d + 2 * DAY);
	assert_int_equal(task_due(id, "prevent"), d + 14 * DAY);
	assert_int_equal(q_int("SELECT count(*) FROM tasks WHERE status = 'open'"), 2);
	assert_string_equal(q_text("SELECT role FROM messages WHERE message_id ="
	    " 'reinst-1@amazon.com'"), "follow_up");
}

static void
test_unknown_follow_up_opens_case(void **state)
{
	struct ingest_report r;
	struct mail	 a = { .msgid = "reinst-2@amazon.de", .from = "notice-dispute@amazon.de",
	    .to = "ops@shop.example", .subject = "Angebot reaktiviert",
	    .text = "Beschwerdenummer: 11563309481", .date = utc(2024, 9, 21, 8, 0, 0) };
	struct notice	 n = { .kind = KIND_REINSTATEMENT, .complaint_id = "11563309481",
	    .marketplace = "de", .authentic = true };

	(void)state;
	assert_int_equal(ingest(&inbox, &a, &n, &r), R_OK);
	assert_true(r.opened);
	assert_string_equal(q_text("SELECT kind FROM cases"), "reinstatement");
	assert_string_equal(q_text("SELECT status FROM cases"), "reinstated");
	assert_string_equal(task_status(r.case_id, "resume"), "open");
}

static void
test_appeal_rejected_creates_legal(void **state)
{
	struct ingest_report r;
	struct mail	 a = { .msgid = "appeal-1@amazon.com", .from = "notice-dispute@amazon.com",
	    .to = "ops@shop.example", .subject = "We cannot accept your appeal",
	    .date = utc(2024, 9, 25, 8, 0, 0) };
	struct notice	 n = { .kind = KIND_APPEAL_DECISION, .complaint_id = "12904418236",
	    .authentic = true, .outcome = "rejected" };
	int64_t		 id;

	(void)state;
	id = open_s01();
	assert_int_equal(ingest(&inbox, &a, &n, &r), R_OK);
	assert_int_equal(r.case_id, id);
	assert_string_equal(q_text("SELECT status FROM cases"), "open");
	assert_string_equal(task_status(id, "legal"), "open");
}

static void
test_second_complaint_same_owner_creates_legal(void **state)
{
	struct ingest_report r;
	struct mail	 a = { .msgid = "notice-2@amazon.com", .from = "notice-dispute@amazon.com",
	    .to = "ops@shop.example", .subject = "Notice: Policy Warning",
	    .date = utc(2024, 9, 30, 9, 0, 0) };
	struct notice	 n = { KIND_IP_NOTICE, "12999999999", "us", "trademark",
	    "Halvorsen Tool Co.", "legal@halvorsentools.example.com", "B0DDDDDDDD", 0,
	    true, false, NULL };
	struct mail	 b = { .msgid = "notice-3@amazon.com", .from = "notice-dispute@amazon.com",
	    .to = "ops@shop.example", .subject = "Notice: Policy Warning",
	    .date = utc(2024, 9, 30, 10, 0, 0) };
	struct notice	 o = { KIND_IP_NOTICE, "13000000001", "us", "copyright",
	    "Someone Else", "ip@someone.test", "B0CR3M8W5T", 0, true, false, NULL };
	struct mail	 c = { .msgid = "notice-4@amazon.com", .from = "notice-dispute@amazon.com",
	    .to = "ops@shop.example", .subject = "Notice: Policy Warning",
	    .date = utc(2024, 9, 30, 11, 0, 0) };
	struct notice	 p = { KIND_IP_NOTICE, "13000000002", "us", "copyright",
	    "Third Party", "ip@third.test", "B0EEEEEEEE", 0, true, false, NULL };
	int64_t		 id;

	(void)state;
	id = open_s01();
	assert_string_equal(task_status(id, "legal"), "(none)");
	assert_int_equal(ingest(&inbox, &a, &n, &r), R_OK);
	assert_true(r.opened);
	assert_string_equal(task_status(r.case_id, "legal"), "open");
	assert_int_equal(task_due(r.case_id, "legal"), a.date + 3 * DAY);
	/* The appeal default (no deadline in the notice) is 7 days. */
	assert_int_equal(task_due(r.case_id, "appeal"), a.date + 7 * DAY);
	/* Same ASIN, other owner. */
	assert_int_equal(ingest(&inbox, &b, &o, &r), R_OK);
	assert_string_equal(task_status(r.case_id, "legal"), "open");
	/* Nothing shared: no legal. */
	assert_int_equal(ingest(&inbox, &c, &p, &r), R_OK);
	assert_string_equal(task_status(r.case_id, "legal"), "(none)");
}

static void
test_patent_and_account_warning(void **state)
{
	struct ingest_report r;
	struct mail	 a = { .msgid = "apex-1@amazon.com", .from = "patent-evaluation@amazon.com",
	    .to = "ops@shop.example", .subject = "APEX", .date = utc(2024, 9, 2, 9, 0, 0) };
	struct notice	 n = { KIND_APEX, "15780336192", "us", "patent", "Vantor Fitness LLC",
	    "apex-claims@gmail.com", "B0CT1D6PWN", 21, true, false, NULL };
	struct mail	 b = { .msgid = "acct-1@amazon.ca", .from = "seller-performance@amazon.ca",
	    .to = "ops@shop.example", .subject = "Your Amazon.ca selling privileges",
	    .date = utc(2024, 9, 3, 9, 0, 0) };
	struct notice	 w = { KIND_ACCOUNT_WARNING, NULL, "ca", "counterfeit", NULL, NULL,
	    "B0CW9X2KFP", 17, true, false, NULL };
	int64_t		 apex;

	(void)state;
	assert_int_equal(ingest(&inbox, &a, &n, &r), R_OK);
	apex = r.case_id;
	assert_string_equal(task_status(apex, "legal"), "open");
	assert_int_equal(task_due(apex, "appeal"), a.date + 21 * DAY);
	assert_string_equal(q_text("SELECT owner_flags FROM cases WHERE id = %lld",
	    (long long)apex), "freemail");
	assert_false(r.alert);

	assert_int_equal(ingest(&inbox, &b, &w, &r), R_OK);
	assert_true(r.opened);
	assert_true(r.alert);
	assert_string_equal(q_text("SELECT case_key FROM cases WHERE id = %lld",
	    (long long)r.case_id), "msg:acct-1@amazon.ca");
	assert_string_equal(q_text("SELECT urgency FROM cases WHERE id = %lld",
	    (long long)r.case_id), "high");
	assert_string_equal(task_status(r.case_id, "legal"), "open");
	assert_int_equal(task_due(r.case_id, "appeal"), b.date + 17 * DAY);
	assert_int_equal(q_int("SELECT count(*) FROM outbox WHERE kind = 'alert'"
	    " AND case_id = %lld", (long long)r.case_id), 1);
}

static void
test_owner_flags_and_freemail_domain(void **state)
{
	struct ingest_report r;
	struct mail	 a = { .msgid = "n-1@amazon.com", .from = "notice-dispute@amazon.com",
	    .to = "ops@shop.example", .subject = "Notice: Policy Warning",
	    .date = utc(2024, 9, 2, 9, 0, 0) };
	struct notice	 n = { KIND_IP_NOTICE, "14000000001", "us", "copyright", "X",
	    "brand@arnazon-legal.example", "B0AAAAAAAA", 0, true, false, NULL };
	struct mail	 b = { .msgid = "n-2@amazon.com", .from = "notice-dispute@amazon.com",
	    .to = "ops@shop.example", .subject = "Notice: Policy Warning",
	    .date = utc(2024, 9, 2, 10, 0, 0) };
	struct notice	 g = { KIND_IP_NOTICE, "14000000002", "us", "copyright", "Y",
	    "someone@gmail.com", "B0BBBBBBBB", 0, true, false, NULL };
	struct mail	 stranger = { .msgid = "s-1@gmail.com", .from = "stranger@gmail.com",
	    .to = "ops@shop.example", .subject = "hi", .text = "hello",
	    .date = utc(2024, 9, 3, 10, 0, 0) };
	struct mail	 owner = { .msgid = "s-2@gmail.com", .from = "Someone@gmail.com",
	    .to = "ops@shop.example", .subject = "re", .text = "hello",
	    .date = utc(2024, 9, 3, 11, 0, 0) };

	(void)state;
	assert_int_equal(ingest(&inbox, &a, &n, &r), R_OK);
	assert_string_equal(q_text("SELECT owner_flags FROM cases WHERE id = 1"), "lookalike");
	assert_int_equal(ingest(&inbox, &b, &g, &r), R_OK);
	assert_string_equal(q_text("SELECT owner_flags FROM cases WHERE id = 2"), "freemail");
	/* Another gmail user is not "the same domain"; the owner's own address is. */
	assert_int_equal(ingest(&inbox, &stranger, NULL, &r), R_OK);
	assert_int_equal(r.case_id, 0);
	assert_int_equal(ingest(&inbox, &owner, NULL, &r), R_OK);
	assert_int_equal(r.case_id, 2);
}

static void
test_report_confirmation_is_outbound(void **state)
{
	struct ingest_report r;
	struct mail	 a = { .msgid = "brand-1@amazon.co.uk",
	    .from = "brand-registry-noreply@amazon.co.uk", .to = "ops@shop.example",
	    .subject = "Report a Violation: submission 11009845273 received",
	    .date = utc(2024, 9, 5, 9, 0, 0) };
	struct notice	 n = { KIND_REPORT_CONFIRMATION, "11009845273", "uk", "copyright",
	    NULL, NULL, "B0D9F2K7LW,B0D9F4N1QS", 0, true, false, NULL };
	int64_t		 id;

	(void)state;
	assert_int_equal(ingest(&inbox, &a, &n, &r), R_OK);
	id = r.case_id;
	assert_true(r.opened);
	assert_string_equal(q_text("SELECT direction FROM cases"), "outbound");
	assert_string_equal(q_text("SELECT kind FROM cases"), "report_confirmation");
	assert_string_equal(task_status(id, "await_decision"), "open");
	assert_int_equal(task_due(id, "await_decision"), a.date + 14 * DAY);
	assert_string_equal(task_status(id, "review"), "(none)");
	assert_string_equal(task_status(id, "stop_selling"), "(none)");
	/* Then: once decided, recheck the listing. */
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(cases_task_done(st, "1", "await_decision", now), 0);
	assert_int_equal(store_begin(st), 0);
	assert_string_equal(task_status(id, "await_decision"), "done");
	assert_string_equal(task_status(id, "recheck_listing"), "open");
	assert_int_equal(task_due(id, "recheck_listing"), now + 3 * DAY);
}

static void
test_bounce_joins_case(void **state)
{
	struct ingest_report r;
	struct mail	 bounce = { .msgid = "bounce-1@mx.shop.example",
	    .from = "MAILER-DAEMON@mx.shop.example", .to = "ops@shop.example",
	    .subject = "Undelivered Mail Returned to Sender",
	    .text = "<legal@halvorsentools.example.com>: host said: 550 no such user",
	    .content_type = "multipart/report", .date = utc(2024, 9, 11, 15, 6, 0) };
	int64_t		 id;

	(void)state;
	id = open_s01();
	assert_int_equal(ingest(&inbox, &bounce, NULL, &r), R_OK);
	assert_int_equal(r.case_id, id);
	assert_string_equal(q_text("SELECT role FROM messages WHERE message_id ="
	    " 'bounce-1@mx.shop.example'"), "bounce");
	assert_int_equal(q_int("SELECT count(*) FROM events WHERE what LIKE 'bounce:%%'"), 1);
}

static void
test_is_candidate(void **state)
{
	struct mail	 a = { .msgid = "c1@x.test", .from = "someone@x.test",
	    .to = "ops@shop.example", .subject = "hello" };
	struct message	*m;
	struct ingest_report r;

	(void)state;
	open_s01();
	assert_int_equal(ingest(&sentbox, &s15, NULL, &r), R_OK);
	m = mk_msg(&a);
	assert_false(cases_candidate_match(cases_candidates(st), m));
	message_free(m);
	a.in_reply_to = "3e7f1a90@shop.example";
	m = mk_msg(&a);
	assert_true(cases_candidate_match(cases_candidates(st), m));
	message_free(m);
	a.in_reply_to = NULL;
	a.from = "newperson@halvorsentools.example.com";
	m = mk_msg(&a);
	assert_true(cases_candidate_match(cases_candidates(st), m));
	message_free(m);
	a.from = "someone@x.test";
	a.subject = "about 12904418236";
	m = mk_msg(&a);
	assert_true(cases_candidate_match(cases_candidates(st), m));
	message_free(m);
	a.subject = "about 12904418237";
	m = mk_msg(&a);
	assert_false(cases_candidate_match(cases_candidates(st), m));
	message_free(m);
}

/* The second complaint of s01's owner: a newer case for the same address. */
static int64_t
open_second_of_owner(void)
{
	struct ingest_report r;
	struct mail	 a = { .msgid = "notice-2b@amazon.com", .from = "notice-dispute@amazon.com",
	    .to = "ops@shop.example", .subject = "Notice: Policy Warning",
	    .text = "Complaint ID: 13355190462\nASIN: B0DDDDDDDD\n",
	    .date = utc(2024, 9, 12, 8, 0, 0) };
	struct notice	 n = { KIND_IP_NOTICE, "13355190462", "us", "trademark",
	    "Halvorsen Tool Co.", "legal@halvorsentools.example.com", "B0DDDDDDDD", 90,
	    true, false, NULL };

	assert_int_equal(ingest(&inbox, &a, &n, &r), R_OK);
	assert_true(r.opened);
	return r.case_id;
}

static void
test_owner_with_two_cases(void **state)
{
	struct ingest_report r;
	/* The seller writes about the first complaint after the second arrived. */
	struct mail	 sent = s15;
	struct mail	 about2 = { .msgid = "HT7-about2@halvorsentools.example.com",
	    .from = "brandprotection@halvorsentools.example.com", .to = "ops@shop.example",
	    .subject = "Complaint 13355190462", .text = "About the second one.",
	    .date = utc(2024, 9, 13, 9, 0, 0) };
	struct mail	 asin1 = { .msgid = "HT7-asin1@halvorsentools.example.com",
	    .from = "legal@halvorsentools.example.com", .to = "ops@shop.example",
	    .subject = "Your listing", .text = "The listing B0CR3P2KXD is fine now.",
	    .date = utc(2024, 9, 13, 10, 0, 0) };
	struct mail	 bare = { .msgid = "HT7-bare@halvorsentools.example.com",
	    .from = "legal@halvorsentools.example.com", .to = "ops@shop.example",
	    .subject = "Hello", .text = "Any news?", .date = utc(2024, 9, 13, 11, 0, 0) };
	/* In the first case's thread, although it names the second complaint. */
	struct mail	 threaded = { .msgid = "HT7-threaded@halvorsentools.example.com",
	    .from = "legal@halvorsentools.example.com", .to = "ops@shop.example",
	    .subject = "RE: complaint 13355190462 too", .text = "See below.",
	    .in_reply_to = "3e7f1a90@shop.example", .date = utc(2024, 9, 13, 12, 0, 0) };
	int64_t		 one, two;

	(void)state;
	one = open_s01();
	two = open_second_of_owner();
	sent.date = utc(2024, 9, 12, 15, 5, 39);
	assert_int_equal(ingest(&sentbox, &sent, NULL, &r), R_OK);
	assert_int_equal(r.case_id, one);
	assert_string_equal(task_status(one, "contact_owner"), "done");
	assert_int_equal(q_int("SELECT done_at FROM tasks WHERE case_id = %lld AND"
	    " task = 'contact_owner'", (long long)one), sent.date);
	assert_string_equal(task_status(two, "contact_owner"), "open");
	assert_string_equal(task_status(two, "follow_up"), "(none)");
	/* A colleague names the second complaint: the second case. */
	assert_int_equal(ingest(&inbox, &about2, NULL, &r), R_OK);
	assert_int_equal(r.case_id, two);
	/* An ASIN of the first complaint decides too. */
	assert_int_equal(ingest(&inbox, &asin1, NULL, &r), R_OK);
	assert_int_equal(r.case_id, one);
	/* Nothing cited: the address alone, the most recently updated case. */
	assert_int_equal(ingest(&inbox, &bare, NULL, &r), R_OK);
	assert_int_equal(r.case_id, two);
	/* The thread decides before any complaint id. */
	assert_int_equal(ingest(&inbox, &threaded, NULL, &r), R_OK);
	assert_int_equal(r.case_id, one);
	assert_int_equal(q_int("SELECT count(*) FROM messages WHERE case_id = %lld",
	    (long long)two), 3);
}

/* A message whose raw bytes are raw (a bounce with its MIME parts) and whose text is text. */
static enum result
ingest_raw(const struct mail *a, const char *raw, struct ingest_report *r)
{
	static const struct notice other = { .kind = KIND_OTHER };
	struct message	*m = mk_msg(a);
	struct verdict	*v = mk_verdict(&other);
	enum result	 ret;

	free(m->raw);
	m->raw = xstrdup(raw);
	m->raw_len = strlen(raw);
	ret = cases_ingest(st, &conf, &inbox, m, v, now, r);
	message_free(m);
	free_verdict(v);
	return ret;
}

static void
test_bounce_by_returned_headers(void **state)
{
	struct ingest_report r;
	struct mail	 sent = s15;
	struct mail	 bounce = { .msgid = "dsn-1@smtp.shop.example",
	    .from = "MAILER-DAEMON@smtp.shop.example", .to = "ops@shop.example",
	    .subject = "Undelivered Mail Returned to Sender",
	    .text = "<legal@halvorsentools.example.com>: 552 Mailbox full\n",
	    .content_type = "multipart/report", .date = utc(2024, 9, 12, 16, 0, 0) };
	static const char dsn[] =
	    "From: MAILER-DAEMON@smtp.shop.example\r\n"
	    "Message-Id: <dsn-1@smtp.shop.example>\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n"
	    "\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
	    "<legal@halvorsentools.example.com>: 552 Mailbox full\r\n"
	    "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
	    "Final-Recipient: rfc822; legal@halvorsentools.example.com\r\n"
	    "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
	    "From: ops@shop.example\r\nTo: legal@halvorsentools.example.com\r\n"
	    "Message-ID: <3e7f1a90@shop.example>\r\nSubject: Invoices\r\n"
	    "--b--\r\n";
	/* The returned mail itself was never stored; its References were. */
	static const char dsn_refs[] =
	    "From: MAILER-DAEMON@smtp.shop.example\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n"
	    "\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
	    "Message-ID: <never-stored@shop.example>\r\n"
	    "References: <3e7f1a90@shop.example>\r\n <unknown@halvorsentools.example.com>\r\n"
	    "Subject: Re: Invoices\r\n--b--\r\n";
	/* Quoted in the text, folded, and naming no stored message: the subject's complaint id. */
	struct mail	 quoted = { .msgid = "dsn-3@smtp.shop.example",
	    .from = "postmaster@smtp.shop.example", .to = "ops@shop.example",
	    .subject = "Delivery failure", .content_type = "multipart/report",
	    .text = "delivery-status\n> Message-ID: <gone@shop.example>\n"
	    "> Subject: Re: complaint\n>  12904418236 invoices\n",
	    .date = utc(2024, 9, 12, 18, 0, 0) };
	/* Nothing but the owner's address: the newest case of that owner. */
	struct mail	 bare = { .msgid = "dsn-4@smtp.shop.example",
	    .from = "MAILER-DAEMON@smtp.shop.example", .to = "ops@shop.example",
	    .subject = "Undelivered Mail Returned to Sender",
	    .text = "<legal@halvorsentools.example.com>: 552 Mailbox full\n",
	    .content_type = "multipart/report", .date = utc(2024, 9, 12, 19, 0, 0) };
	int64_t		 one, two;

	(void)state;
	one = open_s01();
	sent.date = utc(2024, 9, 12, 15, 5, 39);
	assert_int_equal(ingest(&sentbox, &sent, NULL, &r), R_OK);
	assert_int_equal(r.case_id, one);
	/* The second case is newer: the owner's address alone would pick it. */
	two = open_second_of_owner();
	assert_int_equal(ingest_raw(&bounce, dsn, &r), R_OK);
	assert_int_equal(r.case_id, one);
	assert_string_equal(q_text("SELECT role FROM messages WHERE message_id ="
	    " 'dsn-1@smtp.shop.example'"), "bounce");
	bounce.msgid = "dsn-2@smtp.shop.example";
	assert_int_equal(ingest_raw(&bounce, dsn_refs, &r), R_OK);
	assert_int_equal(r.case_id, one);
	assert_int_equal(ingest(&inbox, &quoted, NULL, &r), R_OK);
	assert_int_equal(r.case_id, one);
	assert_int_equal(ingest(&inbox, &bare, NULL, &r), R_OK);
	assert_int_equal(r.case_id, two);
	assert_int_equal(q_int("SELECT count(*) FROM messages WHERE role = 'bounce'"
	    " AND case_id = %lld", (long long)one), 3);
}

static void
test_late_sent_mail_completes_contact(void **state)
{
	struct ingest_report r;
	time_t		 resolved = utc(2024, 9, 20, 8, 0, 0);
	struct mail	 a = { .msgid = "retr-1@amazon.com", .from = "notice-dispute@amazon.com",
	    .to = "ops@shop.example", .subject = "Retraction received",
	    .text = "Complaint ID: 12904418236", .date = resolved };
	struct notice	 n = { .kind = KIND_RETRACTION, .complaint_id = "12904418236",
	    .marketplace = "us", .authentic = true };
	struct mail	 late = s15;
	int64_t		 id, two;

	(void)state;
	id = open_s01();
	/* A first scan: Amazon's resolution in INBOX is read before Sent. */
	assert_int_equal(ingest(&inbox, &a, &n, &r), R_OK);
	assert_string_equal(q_text("SELECT status FROM cases WHERE id = %lld",
	    (long long)id), "retracted");
	assert_string_equal(task_status(id, "contact_owner"), "cancelled");
	assert_int_equal(ingest(&sentbox, &s15, NULL, &r), R_OK);
	assert_int_equal(r.case_id, id);
	assert_string_equal(task_status(id, "contact_owner"), "done");
	assert_int_equal(q_int("SELECT done_at FROM tasks WHERE case_id = %lld AND"
	    " task = 'contact_owner'", (long long)id), s15.date);
	/* Nothing else comes back to life. */
	assert_string_equal(task_status(id, "follow_up"), "(none)");
	assert_string_equal(task_status(id, "review"), "cancelled");

	/* Mail written after the end does not make a cancelled task done. */
	two = open_second_of_owner();
	a.msgid = "retr-2@amazon.com";
	a.text = "Complaint ID: 13355190462";
	n.complaint_id = "13355190462";
	assert_int_equal(ingest(&inbox, &a, &n, &r), R_OK);
	assert_int_equal(r.case_id, two);
	late.msgid = "after-end@shop.example";
	late.subject = "Complaint 13355190462: thanks";
	late.date = resolved + DAY;
	assert_int_equal(ingest(&sentbox, &late, NULL, &r), R_OK);
	assert_int_equal(r.case_id, two);
	assert_string_equal(task_status(two, "contact_owner"), "cancelled");
}

static void
test_report_decision_stays_outbound(void **state)
{
	struct ingest_report r;
	struct mail	 conf_mail = { .msgid = "brand-2@amazon.com",
	    .from = "brand-registry-noreply@amazon.com", .to = "ops@shop.example",
	    .subject = "Report a Violation: submission 19904417328 received",
	    .date = utc(2024, 9, 5, 9, 0, 0) };
	struct notice	 confirm = { KIND_REPORT_CONFIRMATION, "19904417328", "us",
	    "copyright", NULL, NULL, "B0DN5T8WQA", 0, true, false, NULL };
	struct mail	 decision = { .msgid = "brand-3@amazon.com",
	    .from = "brand-registry-noreply@amazon.com", .to = "ops@shop.example",
	    .subject = "Report a Violation: update on submission 19904417328",
	    .date = utc(2024, 9, 9, 9, 0, 0) };
	struct notice	 decided = { KIND_APPEAL_DECISION, "19904417328", "us", NULL,
	    NULL, NULL, "B0DN5T8WQA", 0, true, false, "report_action_taken" };
	struct notice	 as_notice = { KIND_IP_NOTICE, "19904417328", "us", "copyright",
	    NULL, NULL, "B0DN5T8WQA", 0, true, false, NULL };
	struct notice	 unknown = { KIND_APPEAL_DECISION, "19900000001", "us", NULL,
	    NULL, NULL, NULL, 0, true, false, "report_no_action" };
	int64_t		 id;

	(void)state;
	assert_int_equal(ingest(&inbox, &conf_mail, &confirm, &r), R_OK);
	id = r.case_id;
	assert_int_equal(ingest(&inbox, &decision, &decided, &r), R_OK);
	assert_int_equal(r.case_id, id);
	assert_false(r.opened);
	assert_string_equal(task_status(id, "await_decision"), "done");
	assert_string_equal(task_status(id, "recheck_listing"), "open");
	assert_int_equal(q_int("SELECT count(*) FROM events WHERE what LIKE"
	    " 'Amazon took action on your report%%'"), 1);
	/* Safeguard: a notice citing the report's id opens no case against the seller. */
	decision.msgid = "brand-4@amazon.com";
	assert_int_equal(ingest(&inbox, &decision, &as_notice, &r), R_OK);
	assert_int_equal(r.case_id, id);
	assert_false(r.opened);
	assert_int_equal(q_int("SELECT count(*) FROM cases"), 1);
	assert_int_equal(q_int("SELECT count(*) FROM cases WHERE direction = 'inbound'"), 0);
	assert_int_equal(q_int("SELECT count(*) FROM messages WHERE case_id = %lld",
	    (long long)id), 3);
	/* An answer about a report never seen: an outbound case of its own. */
	decision.msgid = "brand-5@amazon.com";
	assert_int_equal(ingest(&inbox, &decision, &unknown, &r), R_OK);
	assert_true(r.opened);
	assert_string_equal(q_text("SELECT direction FROM cases WHERE id = %lld",
	    (long long)r.case_id), "outbound");
	assert_string_equal(task_status(r.case_id, "recheck_listing"), "open");
	assert_string_equal(task_status(r.case_id, "review"), "(none)");
}

static bool
candidate(const struct mail *a)
{
	struct message	*m = mk_msg(a);
	bool		 yes = cases_candidate_match(cases_candidates(st), m);

	message_free(m);
	return yes;
}

static void
test_candidate_index_follows_writes(void **state)
{
	struct ingest_report r;
	struct mail	 reply = { .msgid = "c2@x.test", .from = "someone@x.test",
	    .to = "ops@shop.example", .subject = "hello",
	    .in_reply_to = "3e7f1a90@shop.example" };
	struct mail	 owner = { .msgid = "c3@x.test",
	    .from = "legal@halvorsentools.example.com", .to = "ops@shop.example",
	    .subject = "hello" };
	struct mail	 colleague = { .msgid = "c4@x.test",
	    .from = "Someone.Else@HalvorsenTools.example.com", .to = "ops@shop.example",
	    .subject = "hello" };
	struct mail	 cites = { .msgid = "c5@x.test", .from = "someone@x.test",
	    .to = "ops@shop.example", .subject = "re complaint 13355190462" };
	struct mail	 ours = { .msgid = "c6@x.test", .from = "ops@shop.example",
	    .to = "ipcased@shop.example", .subject = "Re: reminder",
	    .refs = "task.1.abc@shop.example" };
	struct store	*other;
	char		 err[256], path[128];

	(void)state;
	/* Built empty first, so each write below must reach it. */
	assert_false(candidate(&owner));
	assert_false(candidate(&reply));
	assert_false(candidate(&cites));
	open_s01();
	assert_true(candidate(&owner));
	assert_true(candidate(&colleague));
	assert_false(candidate(&reply));
	assert_int_equal(ingest(&sentbox, &s15, NULL, &r), R_OK);
	assert_true(candidate(&reply));
	assert_false(candidate(&cites));
	open_second_of_owner();
	assert_true(candidate(&cites));
	/* Our own mail, written by schedule.c: a reply to it may be a command. */
	assert_false(candidate(&ours));
	assert_int_equal(sqlite3_exec(store_db(st), "INSERT INTO outbox(kind, case_id,"
	    " task, threshold, message_id, created, next_attempt) VALUES ('task', 1,"
	    " 'review', '24h', 'task.1.abc@shop.example', 0, 0)", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_true(candidate(&ours));
	/* A rollback takes the rows back out. */
	store_rollback(st);
	assert_false(candidate(&owner));
	assert_false(candidate(&ours));
	assert_int_equal(store_begin(st), 0);
	open_s01();
	open_second_of_owner();
	assert_int_equal(ingest(&sentbox, &s15, NULL, &r), R_OK);
	assert_int_equal(store_commit(st), 0);
	assert_true(candidate(&owner));
	/* Closed by this handle: the owner of case 2 still has case 1 open. */
	assert_int_equal(cases_close(st, "2", "settled", now), 0);
	assert_true(candidate(&owner));
	/* Closed by ipcase, another connection: no open case of that owner is left. */
	snprintf(path, sizeof(path), "%s/state.db", tmpdir);
	assert_non_null(other = store_open(path, false, err, sizeof(err)));
	assert_int_equal(cases_close(other, "1", "settled", now), 0);
	store_close(other);
	assert_false(candidate(&owner));
	assert_false(candidate(&colleague));
	/* Complaint ids and threads of ended cases still count. */
	assert_true(candidate(&cites));
	assert_true(candidate(&reply));
	assert_int_equal(store_begin(st), 0);
}

static void
test_commands(void **state)
{
	int64_t		 id;

	(void)state;
	id = open_s01();
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(cases_task_done(st, "#1", "review", now), 0);
	assert_string_equal(task_status(id, "review"), "done");
	assert_int_equal(q_int("SELECT done_at FROM tasks WHERE task = 'review'"), now);
	assert_int_equal(cases_task_done(st, "1", "review", now), -1);	/* no longer open */
	assert_int_equal(cases_task_done(st, "9", "review", now), -1);
	assert_int_equal(cases_task_done(st, "x1", "review", now), -1);
	assert_int_equal(cases_snooze(st, "1", 3 * DAY, now), 0);
	assert_int_equal(q_int("SELECT snoozed_until FROM cases"), now + 3 * DAY);
	assert_int_equal(cases_note(st, "1", "called the owner\x1b", now), 0);
	assert_int_equal(q_int("SELECT count(*) FROM notes"), 1);
	assert_int_equal(cases_close(st, "1", "settled with the rights owner", now), 0);
	assert_string_equal(q_text("SELECT status FROM cases"), "closed");
	assert_string_equal(q_text("SELECT close_reason FROM cases"),
	    "settled with the rights owner");
	assert_int_equal(q_int("SELECT closed FROM cases"), now);
	assert_string_equal(task_status(id, "appeal"), "cancelled");
	assert_string_equal(task_status(id, "review"), "done");
	assert_string_equal(task_status(id, "prevent"), "open");
	assert_int_equal(cases_close(st, "1", "again", now), -1);
	assert_int_equal(store_begin(st), 0);
}

static void
test_export_verifies(void **state)
{
	struct ingest_report r;
	struct mail	 a = s01_mail();
	struct message	*m;
	char		 dir[128], cmd[300], *data, name[256];
	size_t		 len;
	int		 rc;

	(void)state;
	open_s01();
	assert_int_equal(ingest(&sentbox, &s15, NULL, &r), R_OK);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(cases_note(st, "1", "first note", now), 0);
	snprintf(dir, sizeof(dir), "%s/export", tmpdir);
	assert_int_equal(cases_export(st, "1", dir), 0);
	snprintf(cmd, sizeof(cmd), "cd '%s' && sha256sum -c --quiet SHA256SUMS", dir);
	rc = system(cmd);
	assert_int_equal(rc, 0);
	/* The notice's bytes, unchanged. */
	snprintf(name, sizeof(name), "%s/01-20240910-notice-policy-warning.eml", dir);
	data = file_read(name, 1 << 20, &len);
	assert_non_null(data);
	m = mk_msg(&a);
	assert_int_equal(len, m->raw_len);
	assert_memory_equal(data, m->raw, len);
	free(data);
	message_free(m);
	snprintf(name, sizeof(name), "%s/02-20240911-trademark-complaint-12904418236.eml", dir);
	assert_int_equal(access(name, R_OK), 0);
	snprintf(name, sizeof(name), "%s/timeline.json", dir);
	data = file_read(name, 1 << 20, &len);
	assert_non_null(data);
	{
		json_object *o = json_tokener_parse(data), *tl;

		assert_non_null(o);
		assert_true(json_object_object_get_ex(o, "timeline", &tl));
		assert_true(json_object_array_length(tl) >= 5);
		json_object_put(o);
	}
	free(data);
	/* A tampered file fails the check: the test can fail. */
	snprintf(cmd, sizeof(cmd), "cd '%s' && echo x >> timeline.md && "
	    "sha256sum -c --quiet SHA256SUMS >/dev/null 2>&1", dir);
	assert_int_not_equal(system(cmd), 0);
	/* Never overwrites. */
	assert_int_equal(cases_export(st, "1", dir), -1);
	assert_int_equal(store_begin(st), 0);
}

static void
test_list_json(void **state)
{
	static const char *const keys[] = { "id", "kind", "status", "complaint_id",
	    "complaint_ids", "marketplace", "infringement_type", "asins",
	    "rights_owner_name", "rights_owner_email", "deadline_days", "opened",
	    "urgency", "next_task", "next_due", "messages" };
	struct ingest_report r;
	struct mail	 a = { .msgid = "acct-1@amazon.ca", .from = "seller-performance@amazon.ca",
	    .to = "ops@shop.example", .subject = "selling privileges",
	    .date = utc(2024, 9, 3, 9, 0, 0) };
	struct notice	 w = { KIND_ACCOUNT_WARNING, NULL, "ca", NULL, NULL, NULL,
	    NULL, 0, true, false, NULL };
	json_object	*arr, *o, *v;
	char		*buf = NULL;
	size_t		 len = 0, i;
	FILE		*fp;

	(void)state;
	open_s01();
	assert_int_equal(ingest(&inbox, &a, &w, &r), R_OK);
	fp = open_memstream(&buf, &len);
	assert_int_equal(cases_print_list(st, false, true, fp), 0);
	fclose(fp);
	arr = json_tokener_parse(buf);
	assert_non_null(arr);
	assert_true(json_object_is_type(arr, json_type_array));
	assert_int_equal(json_object_array_length(arr), 2);
	o = json_object_array_get_idx(arr, 0);
	for (i = 0; i < NELEM(keys); i++)
		assert_true(json_object_object_get_ex(o, keys[i], NULL));
	json_object_object_get_ex(o, "id", &v);
	assert_int_equal(json_object_get_int64(v), 1);
	json_object_object_get_ex(o, "opened", &v);
	assert_string_equal(json_object_get_string(v), "2024-09-10T15:40:22Z");
	json_object_object_get_ex(o, "asins", &v);
	assert_int_equal(json_object_array_length(v), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 0)),
	    "B0CR3M8W5T");
	json_object_object_get_ex(o, "complaint_ids", &v);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 0)),
	    "12904418236");
	json_object_object_get_ex(o, "next_task", &v);
	assert_string_equal(json_object_get_string(v), "review");
	json_object_object_get_ex(o, "next_due", &v);
	assert_string_equal(json_object_get_string(v), "2024-09-11T15:40:22Z");
	json_object_object_get_ex(o, "messages", &v);
	assert_int_equal(json_object_get_int(v), 1);
	json_object_object_get_ex(o, "deadline_days", &v);
	assert_int_equal(json_object_get_int(v), 90);
	o = json_object_array_get_idx(arr, 1);
	json_object_object_get_ex(o, "complaint_id", &v);
	assert_null(v);
	assert_true(json_object_object_get_ex(o, "complaint_id", NULL));
	json_object_object_get_ex(o, "urgency", &v);
	assert_string_equal(json_object_get_string(v), "high");
	json_object_put(arr);
	free(buf);

	/* show --json: tasks and messages as arrays. */
	buf = NULL;
	fp = open_memstream(&buf, &len);
	assert_int_equal(cases_print_show(st, "1", true, fp), 0);
	fclose(fp);
	o = json_tokener_parse(buf);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "tasks", &v));
	assert_int_equal(json_object_array_length(v), 5);
	assert_true(json_object_object_get_ex(o, "messages", &v));
	assert_true(json_object_is_type(v, json_type_array));
	v = json_object_array_get_idx(v, 0);
	assert_true(json_object_object_get_ex(v, "sha256", NULL));
	assert_true(json_object_object_get_ex(v, "folder", &v));
	assert_string_equal(json_object_get_string(v), "INBOX");
	assert_true(json_object_object_get_ex(o, "events", NULL));
	assert_true(json_object_object_get_ex(o, "notes", NULL));
	json_object_put(o);
	free(buf);

	/* The human table escapes control bytes. */
	buf = NULL;
	fp = open_memstream(&buf, &len);
	assert_int_equal(cases_print_show(st, "1", false, fp), 0);
	fclose(fp);
	assert_non_null(strstr(buf, "12904418236"));
	assert_null(strchr(buf, '\x1b'));
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_notice_opens_case),
		T(test_same_notice_is_duplicate),
		T(test_same_complaint_merges),
		T(test_other_marketplace_is_another_case),
		T(test_phishing_alerts_without_case),
		T(test_sent_to_owner_completes_contact),
		T(test_owner_reply_by_references),
		T(test_owner_colleague_by_domain),
		T(test_owner_retraction_does_not_resolve),
		T(test_amazon_reinstatement_resolves),
		T(test_unknown_follow_up_opens_case),
		T(test_appeal_rejected_creates_legal),
		T(test_second_complaint_same_owner_creates_legal),
		T(test_patent_and_account_warning),
		T(test_owner_flags_and_freemail_domain),
		T(test_report_confirmation_is_outbound),
		T(test_bounce_joins_case),
		T(test_is_candidate),
		T(test_owner_with_two_cases),
		T(test_bounce_by_returned_headers),
		T(test_late_sent_mail_completes_contact),
		T(test_report_decision_stays_outbound),
		T(test_candidate_index_follows_writes),
		T(test_commands),
		T(test_export_verifies),
		T(test_list_json),
#undef T
	};

	return cmocka_run_group_tests_name("cases", tests, NULL, NULL);
}
