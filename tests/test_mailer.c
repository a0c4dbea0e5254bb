/* test_mailer.c — mailer: hostile text never breaks a header; sending through tests/smtp_server.py (TLS, AUTH, faults). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <json-c/json.h>

#include "mailer.h"
#include "util.h"
#include "testutil.h"

#define NOW		((time_t)1726000000)	/* 2024-09-10 20:26:40 UTC */
#define PYTHON		"/usr/bin/python3"
#define SMTP_USER	"ipcased"
#define SMTP_PASS	"s3cret-pass"

struct server {
	pid_t	 pid;
	int	 port;
	char	 dir[PATH_MAX];		/* its Maildir, logs */
};

static char	 tmpdir[] = "/tmp/ipcased-mailer-XXXXXX";
static char	 script[PATH_MAX];
static struct server main_server;
static struct server extra_server;	/* per-test servers (--tls none, implicit) */

static char	*seller_to[] = { "ops@shop.example", "boss@shop.example", NULL };
static char	*amazon_domains[] = { "amazon.com", "amazon.de", NULL };

/* ---- helpers ---- */

static void
conf_init(struct conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->dir = tmpdir;
	conf->smtp.url = NULL;
	conf->smtp.from = "ipcased@shop.example";
	conf->smtp.to = seller_to;
	conf->smtp.counsel = "counsel@law.example";
	conf->smtp.timeout_sec = 10;
	conf->reminders.timezone = "Europe/Berlin";
	conf->amazon_domains = amazon_domains;
}

static GMimeMessage *
parse_message(const char *text, size_t len)
{
	GMimeStream	*st = g_mime_stream_mem_new_with_buffer(text, len);
	GMimeParser	*p = g_mime_parser_new_with_stream(st);
	GMimeMessage	*m = g_mime_parser_construct_message(p, NULL);

	g_object_unref(p);
	g_object_unref(st);
	assert_non_null(m);
	return m;
}

/* The decoded text of the part with this MIME type (g_malloc'd), or NULL. */
static char *
part_text(GMimeMessage *m, const char *type)
{
	GMimeObject	*top = g_mime_message_get_mime_part(m), *part;
	char		*t, *ret = NULL;
	int		 i;

	if (!GMIME_IS_MULTIPART(top))
		return NULL;
	for (i = 0; i < g_mime_multipart_get_count(GMIME_MULTIPART(top)); i++) {
		part = g_mime_multipart_get_part(GMIME_MULTIPART(top), i);
		t = g_mime_content_type_get_mime_type(g_mime_object_get_content_type(part));
		if (strcasecmp(t, type) == 0 && GMIME_IS_TEXT_PART(part))
			ret = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
		g_free(t);
	}
	return ret;
}

/* Text with its line breaks as spaces: wrapped paragraphs become searchable. */
static char *
squash(const char *text)
{
	char	*s = xstrdup(text), *p;

	for (p = s; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
	return s;
}

/* A line-breaking or control character anywhere in s (UTF-8)? */
static bool
has_breaking(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return true;
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return true;
		if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
			return true;
	}
	return false;
}

static char *
slurp(const char *path, size_t *len)
{
	char	*s = file_read(path, 16 * 1024 * 1024, len);

	if (s == NULL) {
		s = xstrdup("");
		*len = 0;
	}
	return s;
}

static size_t
count_lines(const char *path)
{
	size_t	 len, i, n = 0;
	char	*s = slurp(path, &len);

	for (i = 0; i < len; i++)
		if (s[i] == '\n')
			n++;
	free(s);
	return n;
}

static bool
file_contains(const char *path, const char *needle)
{
	size_t	 len;
	char	*s = slurp(path, &len);
	bool	 found = strstr(s, needle) != NULL;

	free(s);
	return found;
}

/* Runs a shell command and frees it; returns its exit status. */
static int
run(char *cmd)
{
	int	st = system(cmd);

	free(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
write_secret(const char *name, const char *value)
{
	char	*path = xasprintf("%s/%s", tmpdir, name);
	FILE	*f;
	int	 ret = -1;

	if ((f = fopen(path, "w")) != NULL) {
		fprintf(f, "%s\n", value);
		ret = fclose(f) == 0 && chmod(path, 0600) == 0 ? 0 : -1;
	}
	free(path);
	return ret;
}

/* A CA, a server certificate for localhost/127.0.0.1, and a second, unrelated CA. */
static int
make_pki(void)
{
	char	*cmd;
	int	 r;

	cmd = xasprintf("cd %s && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	    "-keyout ca.key -out ca.pem -days 2 -subj /CN=ipcased-test-ca && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	    "-keyout other.key -out other-ca.pem -days 2 -subj /CN=ipcased-other-ca && "
	    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	    "-keyout server.key -out server.csr -subj /CN=localhost && "
	    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && "
	    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	    "-out server.pem -days 2 -extfile ext.cnf", tmpdir);
	r = run(xasprintf("(%s) >%s/openssl.log 2>&1", cmd, tmpdir));
	free(cmd);
	return r == 0 ? 0 : -1;
}

static void
server_stop(struct server *s)
{
	int	st, i;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	for (i = 0; i < 50; i++) {
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			return;
		}
		usleep(100 * 1000);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &st, 0);
	s->pid = 0;
}

/*
 * Starts tests/smtp_server.py with the common arguments plus extra (NULL-
 * terminated); reads the port it prints.  Returns 0 or -1.
 */
static int
server_start(struct server *s, const char *name, const char *const *extra)
{
	const char	*argv[64];
	char		 parent[32], buf[64], *cert, *key, *pass, *maildir, *log, *cmdlog, *errlog;
	struct pollfd	 pfd;
	size_t		 n = 0, got = 0;
	ssize_t		 r;
	int		 fds[2], errfd, i;
	pid_t		 me = getpid();

	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "%s/%s", tmpdir, name);
	if (mkdir(s->dir, 0700) == -1 && errno != EEXIST)
		return -1;
	cert = xasprintf("%s/server.pem", tmpdir);
	key = xasprintf("%s/server.key", tmpdir);
	pass = xasprintf("%s/server.pass", tmpdir);
	maildir = xasprintf("%s/Maildir", s->dir);
	log = xasprintf("%s/mail.jsonl", s->dir);
	cmdlog = xasprintf("%s/commands.log", s->dir);
	errlog = xasprintf("%s/server.log", s->dir);
	snprintf(parent, sizeof(parent), "%d", (int)me);
	argv[n++] = PYTHON;
	argv[n++] = script;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--hostname";
	argv[n++] = "localhost";
	argv[n++] = "--cert";
	argv[n++] = cert;
	argv[n++] = "--key";
	argv[n++] = key;
	argv[n++] = "--user";
	argv[n++] = SMTP_USER;
	argv[n++] = "--password-file";
	argv[n++] = pass;
	argv[n++] = "--maildir";
	argv[n++] = maildir;
	argv[n++] = "--log";
	argv[n++] = log;
	argv[n++] = "--command-log";
	argv[n++] = cmdlog;
	argv[n++] = "--parent-pid";
	argv[n++] = parent;
	for (i = 0; extra != NULL && extra[i] != NULL && n < NELEM(argv) - 1; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	if (pipe(fds) == -1)
		return -1;
	if ((s->pid = fork()) == -1)
		return -1;
	if (s->pid == 0) {
		/* The server goes when the test goes, even when it crashes. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != me)
			_exit(1);
		dup2(fds[1], 1);
		if ((errfd = open(errlog, O_WRONLY | O_CREAT | O_APPEND, 0600)) != -1)
			dup2(errfd, 2);
		close(fds[0]);
		close(fds[1]);
		execv(PYTHON, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	while (got < sizeof(buf) - 1 && memchr(buf, '\n', got) == NULL) {
		if (poll(&pfd, 1, 15000) <= 0)
			break;
		if ((r = read(fds[0], buf + got, sizeof(buf) - 1 - got)) <= 0)
			break;
		got += (size_t)r;
	}
	close(fds[0]);
	buf[got] = '\0';
	s->port = atoi(buf);
	free(cert);
	free(key);
	free(pass);
	free(maildir);
	free(log);
	free(cmdlog);
	free(errlog);
	if (s->port <= 0) {
		fprintf(stderr, "smtp_server.py did not start (see %s/server.log)\n", s->dir);
		server_stop(s);
		return -1;
	}
	return 0;
}

static char *
server_file(const struct server *s, const char *name)
{
	return xasprintf("%s/%s", s->dir, name);
}

/* The JSON log entry of the message with this Message-ID (with <>), or NULL. */
static json_object *
server_find(const struct server *s, const char *msgid)
{
	char		*path = server_file(s, "mail.jsonl"), *text, *line, *save = NULL;
	json_object	*o, *id, *found = NULL;
	size_t		 len;

	text = slurp(path, &len);
	for (line = strtok_r(text, "\n", &save); line != NULL && found == NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((o = json_tokener_parse(line)) == NULL)
			continue;
		if (json_object_object_get_ex(o, "message_id", &id) &&
		    json_object_is_type(id, json_type_string) &&
		    strcmp(json_object_get_string(id), msgid) == 0)
			found = o;
		else
			json_object_put(o);
	}
	free(text);
	free(path);
	return found;
}

static const char *
json_str(json_object *o, const char *key)
{
	json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* An integer member, or -1. */
static int64_t
json_int(json_object *o, const char *key)
{
	json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int64(v);
}

static void
conf_for_server(struct conf *conf, const struct server *s, const char *scheme)
{
	static char	url[128];

	conf_init(conf);
	snprintf(url, sizeof(url), "%s://127.0.0.1:%d", scheme, s->port);
	conf->smtp.url = url;
	conf->smtp.user = SMTP_USER;
	conf->smtp.password_file = "smtp.pass";
	conf->smtp.ca_file = "ca.pem";
}

/* ---- hostile text generator ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

static const char *const hostile_pieces[] = {
	"\r", "\n", "\r\n", "\r\nBcc: x@evil.example", "\nTo: victim@evil.example\n",
	"\xe2\x80\xa8", "\xe2\x80\xa9", "\xc2\x85", "\x1b[31m", "\x7f", "\t", "\v\f",
	"=?utf-8?q?a=0D=0ABcc:_x@evil?=", "=?UTF-8?B?DQpCY2M6IHhAZXZpbA==?=",
	"<script>alert(1)</script>", "&amp;\"'", "\xe2\x80\xaegnp.exe",
	"\xff\xfe", "\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	"ACME GmbH", "B0CR3M8W5T", "Ärger & Söhne", "\xe6\x97\xa5\xe6\x9c\xac",
	" ", "  ", ":", "@", "<x@y>", ".", "\n.\n", "..",
};

/* Raw bytes, NULs included; *len set. */
static char *
hostile_bytes(size_t *len)
{
	struct buf	 b = { 0 };
	size_t		 i, n, k;

	buf_append(&b, "", 0);
	switch (rng() % 8) {
	case 0:
		/* A 2,000-byte string, no space to fold at. */
		for (i = 0; i < 2000; i++)
			buf_append(&b, rng() % 50 ? "A" : "\r\n", rng() % 50 ? 1 : 2);
		break;
	case 1:
		for (i = 0; i < 1000; i++)
			buf_append(&b, "\xc3\xa9", 2);
		break;
	default:
		n = 1 + rng() % 8;
		for (i = 0; i < n; i++) {
			k = rng() % (NELEM(hostile_pieces) + 1);
			if (k == NELEM(hostile_pieces))
				buf_append(&b, "\0", 1);
			else
				buf_puts(&b, hostile_pieces[k]);
		}
	}
	*len = b.len;
	return buf_steal(&b);
}

/* Half through utf8_sanitize (as the caller does), half raw (cut at a NUL). */
static char *
hostile_string(void)
{
	size_t	 len;
	char	*raw = hostile_bytes(&len), *s;

	if (rng() % 2) {
		s = utf8_sanitize(raw, len);
		free(raw);
		return s;
	}
	return raw;
}

static const char *const all_tasks[] = {
	"review", "stop_selling", "evidence", "contact_owner", "follow_up", "appeal",
	"legal", "comply", "resume", "prevent", "await_decision", "recheck_listing",
};

/* The header set a composed message must have, and nothing else. */
static void
check_header_set(GMimeMessage *m, const char *raw, const struct reminder *r)
{
	const char	*p, *nl, *colon;
	GMimeHeaderList	*hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
	const char	*want[16];
	size_t		 nwant = 0, i, j;
	bool		 seen[16] = { false };
	bool		 with_case = r->kind != REMINDER_DIGEST && r->c != NULL && r->c->id > 0;
	int		 k, count = g_mime_header_list_get_count(hl);
	const char	*name;

	want[nwant++] = "Date";
	want[nwant++] = "From";
	want[nwant++] = "Subject";
	want[nwant++] = "To";
	want[nwant++] = "Message-Id";
	want[nwant++] = "Auto-Submitted";
	want[nwant++] = "X-Auto-Response-Suppress";
	want[nwant++] = "X-Ipcased-Kind";	/* our own mail is known when it comes back */
	want[nwant++] = "MIME-Version";
	want[nwant++] = "Content-Type";
	if (r->thread_id != NULL) {
		want[nwant++] = "In-Reply-To";
		want[nwant++] = "References";
	}
	if (with_case) {
		want[nwant++] = "X-Ipcased-Case";
		if (r->c->token != NULL)
			want[nwant++] = "X-Ipcased-Token";
	}
	/* GMime keeps Content-Type with the part; the raw check sees all. */
	for (k = 0; k < count; k++) {
		name = g_mime_header_get_name(g_mime_header_list_get_header_at(hl, k));
		if (strcasecmp(name, "Content-Type") == 0)
			continue;
		for (j = 0; j < nwant; j++)
			if (strcasecmp(name, want[j]) == 0)
				break;
		if (j == nwant)
			fail_msg("unexpected header \"%s\"", name);
		if (seen[j])
			fail_msg("header \"%s\" twice", name);
		seen[j] = true;
	}
	for (i = 0; i < nwant; i++)
		if (!seen[i] && strcasecmp(want[i], "Content-Type") != 0)
			fail_msg("header \"%s\" missing", want[i]);

	/* The raw header block: every line a continuation or one wanted field, once. */
	memset(seen, 0, sizeof(seen));
	for (p = raw; *p != '\0' && *p != '\n'; p = nl + 1) {
		nl = strchr(p, '\n');
		assert_non_null(nl);
		if (*p == ' ' || *p == '\t') {
			assert_true(p != raw);
			continue;
		}
		colon = memchr(p, ':', (size_t)(nl - p));
		assert_non_null(colon);
		for (j = 0; j < nwant; j++)
			if (strlen(want[j]) == (size_t)(colon - p) &&
			    strncasecmp(p, want[j], (size_t)(colon - p)) == 0)
				break;
		if (j == nwant)
			fail_msg("unexpected raw header \"%.*s\"", (int)(colon - p), p);
		if (seen[j])
			fail_msg("raw header \"%s\" twice", want[j]);
		seen[j] = true;
	}
	for (i = 0; i < nwant; i++)
		if (!seen[i])
			fail_msg("raw header \"%s\" missing", want[i]);
}

/* Raw-text checks: no CR or NUL, every line within 998 bytes, header names known. */
static void
check_raw(const char *msg, size_t len)
{
	size_t	i, col = 0;

	assert_int_equal(strlen(msg), len);
	assert_null(memchr(msg, '\r', len));
	for (i = 0; i < len; i++) {
		if (msg[i] == '\n')
			col = 0;
		else
			assert_true(++col <= 998);
	}
}

static void
check_addresses(GMimeMessage *m, const char *const *want, const char *owner)
{
	InternetAddressList *l = g_mime_message_get_addresses(m, GMIME_ADDRESS_TYPE_TO);
	InternetAddress	*a;
	const char	*addr;
	int		 i, n = internet_address_list_length(l), nwant = 0;

	while (want[nwant] != NULL)
		nwant++;
	assert_int_equal(n, nwant);
	for (i = 0; i < n; i++) {
		a = internet_address_list_get_address(l, i);
		assert_true(INTERNET_ADDRESS_IS_MAILBOX(a));
		addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
		assert_string_equal(addr, want[i]);
		if (owner != NULL)
			assert_true(strcasecmp(addr, owner) != 0);
	}
	assert_int_equal(internet_address_list_length(
	    g_mime_message_get_addresses(m, GMIME_ADDRESS_TYPE_CC)), 0);
	assert_int_equal(internet_address_list_length(
	    g_mime_message_get_addresses(m, GMIME_ADDRESS_TYPE_BCC)), 0);
}

/* ---- compose tests ---- */

static void
test_compose_hostile_1000(void **state)
{
	struct conf	 conf;
	struct mail_case cases[3];
	struct reminder	 r;
	GMimeMessage	*m;
	char		*strs[3][8], *asins[3][4], *msg, *subject, *text, *html, *thread;
	const char	**rcpts;
	const char	*got, *p;
	size_t		 len, j, k;
	int		 iter;

	(void)state;
	conf_init(&conf);
	for (iter = 0; iter < 1000; iter++) {
		memset(cases, 0, sizeof(cases));
		for (k = 0; k < 3; k++) {
			for (j = 0; j < 8; j++)
				strs[k][j] = hostile_string();
			for (j = 0; j < 3; j++)
				asins[k][j] = hostile_string();
			asins[k][3] = NULL;
			cases[k].id = 12 + (int64_t)k;
			cases[k].token = "0123456789abcdef";
			cases[k].kind = iter % 7 == 0 ? "phishing" : "ip_notice";
			cases[k].status = "open";
			cases[k].complaint_id = strs[k][0];
			cases[k].marketplace = strs[k][1];
			cases[k].infringement_type = strs[k][2];
			cases[k].asins = (const char *const *)asins[k];
			cases[k].rights_owner_name = strs[k][3];
			cases[k].rights_owner_email = strs[k][4];
			cases[k].opened = NOW - 86400;
			cases[k].next_task = strs[k][5];
			cases[k].next_due = NOW + (time_t)(rng() % 400000) - 200000;
			cases[k].correspondence = strs[k][6];
			cases[k].urgency = k == 1 ? "high" : NULL;
		}
		memset(&r, 0, sizeof(r));
		r.kind = iter % 5 == 3 ? REMINDER_ALERT : iter % 5 == 4 ? REMINDER_DIGEST :
		    REMINDER_TASK;
		r.c = r.kind == REMINDER_DIGEST ? NULL : &cases[0];
		r.task = all_tasks[(size_t)iter % NELEM(all_tasks)];
		r.due = NOW + (time_t)(rng() % 400000) - 100000;
		r.threshold = iter % 3 ? "24h" : "overdue1";
		r.alert_text = strs[0][7];
		r.cases = cases;
		r.ncases = 3;
		r.message_id = "r1.12.abc@shop.example";
		thread = iter % 2 ? "r0.12.abc@shop.example" : NULL;
		r.thread_id = thread;
		r.timezone = iter % 4 ? "Europe/Berlin" : "No/Such_Zone";
		r.now = NOW;

		msg = mailer_compose(&conf, &r, &len);
		check_raw(msg, len);
		subject = mailer_subject(&r);
		assert_false(has_breaking(subject));
		assert_true(utf8_valid(subject, strlen(subject)));
		assert_null(strstr(subject, "=?"));
		assert_true(strlen(subject) <= 300);

		m = parse_message(msg, len);
		check_header_set(m, msg, &r);
		got = g_mime_message_get_subject(m);
		assert_non_null(got);
		assert_string_equal(got, subject);
		rcpts = mailer_recipients(&conf, &r);
		check_addresses(m, rcpts, cases[0].rights_owner_email);
		if (thread != NULL) {
			assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(m),
			    "In-Reply-To"), "<r0.12.abc@shop.example>");
			assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(m),
			    "References"), "<r0.12.abc@shop.example>");
		}
		assert_string_equal(g_mime_message_get_message_id(m), "r1.12.abc@shop.example");
		text = part_text(m, "text/plain");
		html = part_text(m, "text/html");
		assert_non_null(text);
		assert_non_null(html);
		assert_null(strchr(text, '\r'));
		assert_null(strchr(html, '\r'));
		/* Untrusted markup arrives escaped, never as a tag. */
		assert_null(strstr(html, "<script"));
		for (p = text; *p != '\0'; p++)
			assert_true((unsigned char)*p >= 0x20 || *p == '\n');
		g_free(text);
		g_free(html);
		free(rcpts);
		g_object_unref(m);
		free(subject);
		free(msg);
		for (k = 0; k < 3; k++) {
			for (j = 0; j < 8; j++)
				free(strs[k][j]);
			for (j = 0; j < 3; j++)
				free(asins[k][j]);
		}
	}
}

static const char *case_asins[] = { "B0CR3M8W5T", "B0XXXXXXXX", NULL };

static struct mail_case
sample_case(void)
{
	struct mail_case c;

	memset(&c, 0, sizeof(c));
	c.id = 12;
	c.token = "0123456789abcdef";
	c.kind = "ip_notice";
	c.status = "open";
	c.complaint_id = "1234567890";
	c.marketplace = "us";
	c.infringement_type = "copyright";
	c.asins = case_asins;
	c.rights_owner_name = "ACME Brands LLC";
	c.rights_owner_email = "legal@acme.example";
	c.opened = NOW - 2 * 86400;
	c.next_task = "appeal";
	c.next_due = NOW + 86400;
	c.correspondence = "2024-09-09 you -> legal@acme.example: Complaint 1234567890\n"
	    "2024-09-10 legal@acme.example -> you: Re: Complaint 1234567890\n";
	return c;
}

static struct reminder
sample_task(const struct mail_case *c, const char *task)
{
	struct reminder r;

	memset(&r, 0, sizeof(r));
	r.kind = REMINDER_TASK;
	r.c = c;
	r.task = task;
	r.due = NOW + 86400;
	r.threshold = "24h";
	r.message_id = "ipcased.12.appeal.24h@shop.example";
	r.timezone = "Europe/Berlin";
	r.now = NOW;
	return r;
}

static void
test_subject_examples(void **state)
{
	struct mail_case c = sample_case(), cases[5];
	struct reminder	 r;
	const char	*trademark[] = { "B0AAAAAAAA", "B0BBBBBBBB", "B0CCCCCCCC", "B0DDDDDDDD", NULL };
	char		*s;
	int		 i;

	(void)state;
	c.asins = (const char *const[]){ "B0XXXXXXXX", NULL };
	r = sample_task(&c, "appeal");
	s = mailer_subject(&r);
	assert_string_equal(s, "[ipcased #12] Appeal due in 24h: copyright, B0XXXXXXXX, "
	    "complaint 1234567890");
	free(s);

	c.infringement_type = "trademark";
	c.asins = trademark;
	r = sample_task(&c, "stop_selling");
	r.threshold = "overdue1";
	r.due = NOW - 3600;
	s = mailer_subject(&r);
	assert_string_equal(s, "[ipcased #12] OVERDUE: Stop selling \xe2\x80\x94 trademark, "
	    "B0AAAAAAAA, B0BBBBBBBB, B0CCCCCCCC +1 more, complaint 1234567890");
	free(s);

	r = sample_task(&c, "review");
	r.due = NOW + 2 * 3600;
	s = mailer_subject(&r);
	assert_true(strncmp(s, "[ipcased #12] Review the complaint due in 2h: ", 46) == 0);
	free(s);

	c.kind = "phishing";
	memset(&r, 0, sizeof(r));
	r.kind = REMINDER_ALERT;
	r.c = &c;
	r.alert_text = "A mail claiming to be from Amazon failed DMARC.";
	s = mailer_subject(&r);
	assert_string_equal(s, "[ipcased] Alert: phishing mail pretending to be Amazon");
	free(s);

	memset(cases, 0, sizeof(cases));
	for (i = 0; i < 5; i++) {
		cases[i].id = i + 1;
		cases[i].next_due = i < 2 ? NOW - 60 : NOW + 3600;
	}
	memset(&r, 0, sizeof(r));
	r.kind = REMINDER_DIGEST;
	r.cases = cases;
	r.ncases = 5;
	r.now = NOW;
	s = mailer_subject(&r);
	assert_string_equal(s, "[ipcased] Daily digest: 5 open cases, 2 overdue");
	free(s);
}

static void
test_injection_stays_in_subject(void **state)
{
	struct mail_case c = sample_case();
	struct reminder	 r;
	struct conf	 conf;
	GMimeMessage	*m;
	char		*msg, *s;
	size_t		 len;

	(void)state;
	conf_init(&conf);
	c.rights_owner_name = "ACME\r\nBcc: x@evil.example\r\n\r\nbody";
	c.complaint_id = "=?utf-8?q?a=0D=0ABcc:_x@evil?=";
	r = sample_task(&c, "contact_owner");
	s = mailer_subject(&r);
	assert_non_null(strstr(s, "(ACME Bcc: x@evil.example body)"));
	assert_non_null(strstr(s, "complaint = ?utf-8?q?a=0D=0ABcc:_x@evil?="));
	msg = mailer_compose(&conf, &r, &len);
	check_raw(msg, len);
	assert_null(strstr(msg, "\nBcc:"));
	m = parse_message(msg, len);
	check_header_set(m, msg, &r);
	assert_null(g_mime_object_get_header(GMIME_OBJECT(m), "Bcc"));
	assert_string_equal(g_mime_message_get_subject(m), s);
	g_object_unref(m);
	free(msg);
	free(s);
}

static void
test_recipients(void **state)
{
	struct mail_case c = sample_case();
	struct reminder	 r;
	struct conf	 conf;
	char		*to[] = { "ops@shop.example", "notices@amazon.com",
	    "x@sellercentral.amazon.de", "OPS@shop.example", NULL };
	const char	**v;
	size_t		 i;

	(void)state;
	conf_init(&conf);
	c.rights_owner_email = "ops@shop.example.evil";
	for (i = 0; i < NELEM(all_tasks); i++) {
		r = sample_task(&c, all_tasks[i]);
		v = mailer_recipients(&conf, &r);
		assert_string_equal(v[0], "ops@shop.example");
		assert_string_equal(v[1], "boss@shop.example");
		if (strcmp(all_tasks[i], "legal") == 0) {
			assert_string_equal(v[2], "counsel@law.example");
			assert_null(v[3]);
		} else
			assert_null(v[2]);
		free(v);
	}
	/* Amazon never gets a reminder; duplicates collapse; no counsel outside legal. */
	conf.smtp.to = to;
	r = sample_task(&c, "appeal");
	v = mailer_recipients(&conf, &r);
	assert_string_equal(v[0], "ops@shop.example");
	assert_null(v[1]);
	free(v);
	conf.smtp.counsel = NULL;
	r = sample_task(&c, "legal");
	v = mailer_recipients(&conf, &r);
	assert_string_equal(v[0], "ops@shop.example");
	assert_null(v[1]);
	free(v);
}

static void
test_body_content(void **state)
{
	struct mail_case c = sample_case();
	struct reminder	 r;
	struct conf	 conf;
	GMimeMessage	*m;
	char		*msg, *text, *html, *flat;
	size_t		 len, i;

	(void)state;
	conf_init(&conf);
	c.rights_owner_name = "<b>Bold</b> & Co";
	r = sample_task(&c, "appeal");
	r.thread_id = "ipcased.12.appeal.72h@shop.example";
	msg = mailer_compose(&conf, &r, &len);
	m = parse_message(msg, len);
	text = part_text(m, "text/plain");
	html = part_text(m, "text/html");
	flat = squash(text);
	assert_non_null(strstr(flat, "Seller Central > Performance > Account Health > "
	    "Product Policy Compliance > Received Intellectual Property Complaints > "
	    "the complaint > Appeal."));
	free(flat);
	assert_non_null(strstr(text, "ipcase done 12 appeal"));
	/* 2024-09-11 20:26:40 UTC is 22:26 in Berlin (CEST). */
	assert_non_null(strstr(text, "due Wed 2024-09-11 22:26 CEST (in 24h)"));
	assert_non_null(strstr(text, "2024-09-10 legal@acme.example -> you: Re: Complaint"));
	assert_non_null(strstr(text, "B0CR3M8W5T, B0XXXXXXXX"));
	assert_non_null(strstr(text, "<b>Bold</b> & Co <legal@acme.example>"));
	assert_non_null(strstr(html, "&lt;b&gt;Bold&lt;/b&gt; &amp; Co &lt;legal@acme.example&gt;"));
	assert_null(strstr(html, "<b>"));
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(m), "Auto-Submitted"),
	    "auto-generated");
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(m), "X-Ipcased-Case"), "12");
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(m), "X-Ipcased-Token"),
	    "0123456789abcdef");
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(m), "In-Reply-To"),
	    "<ipcased.12.appeal.72h@shop.example>");
	g_free(text);
	g_free(html);
	g_object_unref(m);
	free(msg);

	/* Every playbook task has its own instructions, not the fallback. */
	for (i = 0; i < NELEM(all_tasks); i++) {
		r = sample_task(&c, all_tasks[i]);
		msg = mailer_compose(&conf, &r, &len);
		m = parse_message(msg, len);
		text = part_text(m, "text/plain");
		flat = squash(text);
		assert_null(strstr(flat, "follow the task's instructions"));
		assert_non_null(strstr(text, "Where\n-----"));
		assert_non_null(strstr(text, "Keep as evidence\n----------------"));
		assert_non_null(strstr(flat, "ipcase done 12 "));
		if (strcmp(all_tasks[i], "stop_selling") == 0)
			assert_non_null(strstr(flat, "Inventory > Manage All Inventory"));
		if (strcmp(all_tasks[i], "await_decision") == 0)
			assert_non_null(strstr(flat, "Brand Registry > Report a Violation > "
			    "Submission History"));
		free(flat);
		g_free(text);
		g_object_unref(m);
		free(msg);
	}
}

static void
test_alert_and_digest(void **state)
{
	struct mail_case c = sample_case(), cases[4];
	struct reminder	 r;
	struct conf	 conf;
	GMimeMessage	*m;
	char		*msg, *text, *p1, *p2, *p3, *p4;
	size_t		 len;

	(void)state;
	conf_init(&conf);
	c.kind = "phishing";
	memset(&r, 0, sizeof(r));
	r.kind = REMINDER_ALERT;
	r.c = &c;
	r.alert_text = "A mail \"from Amazon\" to ops@shop.example failed DMARC.";
	r.message_id = "ipcased.alert.7@shop.example";
	r.now = NOW;
	msg = mailer_compose(&conf, &r, &len);
	m = parse_message(msg, len);
	text = part_text(m, "text/plain");
	assert_non_null(strstr(text, "stop-spoofing@amazon.com"));
	assert_non_null(strstr(text, "Do not click any link"));
	assert_non_null(strstr(text, "failed DMARC."));
	g_free(text);
	g_object_unref(m);
	free(msg);

	/* Digest: high urgency first, then by next due; no case header. */
	memset(cases, 0, sizeof(cases));
	cases[0].id = 1;
	cases[0].next_task = "evidence";
	cases[0].next_due = NOW + 7200;
	cases[1].id = 2;
	cases[1].next_task = "review";
	cases[1].next_due = NOW - 60;
	cases[2].id = 3;
	cases[2].next_task = "legal";
	cases[2].next_due = NOW + 86400;
	cases[2].urgency = "high";
	cases[3].id = 4;
	memset(&r, 0, sizeof(r));
	r.kind = REMINDER_DIGEST;
	r.cases = cases;
	r.ncases = 4;
	r.message_id = "ipcased.digest.2024-09-10@shop.example";
	r.timezone = "UTC";
	r.now = NOW;
	msg = mailer_compose(&conf, &r, &len);
	m = parse_message(msg, len);
	check_header_set(m, msg, &r);
	text = part_text(m, "text/plain");
	p1 = strstr(text, "\n#3 HIGH legal, due Wed 2024-09-11 20:26 UTC");
	p2 = strstr(text, "\n#2 OVERDUE review");
	p3 = strstr(text, "\n#1 evidence");
	p4 = strstr(text, "\n#4 no open task");
	assert_non_null(p1);
	assert_non_null(p2);
	assert_non_null(p3);
	assert_non_null(p4);
	assert_true(p1 < p2 && p2 < p3 && p3 < p4);
	g_free(text);
	g_object_unref(m);
	free(msg);
}

/* ---- sending ---- */

/* One message through an ipcased-send of its own, as a round of one sends it. */
static int
send_alone(const struct conf *conf, const char *const *rcpts, const char *msg, size_t len,
    struct send_result *out)
{
	struct netreq	nr = NETREQ_INIT;
	int		ret;

	ret = mailer_send_via(&nr, conf, rcpts, msg, len, out);
	netreq_end(&nr);
	return ret;
}

static char *
compose_sample(const struct conf *conf, const char *msgid, size_t *len)
{
	struct mail_case c = sample_case();
	struct reminder	 r = sample_task(&c, "appeal");

	c.correspondence = "line one\n.\n..two\n";
	r.message_id = msgid;
	return mailer_compose(conf, &r, len);
}

static void
test_send_delivers(void **state)
{
	struct conf	 conf;
	struct send_result res;
	struct mail_case c = sample_case();
	struct reminder	 r = sample_task(&c, "legal");
	json_object	*e, *rc;
	GMimeMessage	*m;
	const char	**rcpts;
	char		*msg, *got, *subject;
	size_t		 len, glen, i;

	(void)state;
	conf_for_server(&conf, &main_server, "smtp");
	r.message_id = "ipcased.12.legal.24h@shop.example";
	msg = mailer_compose(&conf, &r, &len);
	rcpts = mailer_recipients(&conf, &r);
	assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_OK);
	assert_int_equal(res.smtp_code, 250);
	assert_false(res.permanent);
	assert_true(strncmp(res.reply, "250", 3) == 0);

	e = server_find(&main_server, "<ipcased.12.legal.24h@shop.example>");
	assert_non_null(e);
	assert_string_equal(json_str(e, "mail_from"), "ipcased@shop.example");
	assert_true(json_object_object_get_ex(e, "rcpt_tos", &rc));
	assert_int_equal(json_object_array_length(rc), 3);
	for (i = 0; i < 3; i++)
		assert_string_equal(json_object_get_string(json_object_array_get_idx(rc, i)),
		    rcpts[i]);
	subject = mailer_subject(&r);
	assert_string_equal(json_str(e, "subject"), subject);
	/* On the wire every line ends in CRLF; parsed back, it is our message. */
	got = slurp(json_str(e, "file"), &glen);
	for (i = 0; i < glen; i++)
		if (got[i] == '\n')
			assert_true(i > 0 && got[i - 1] == '\r');
	m = parse_message(got, glen);
	assert_string_equal(g_mime_message_get_message_id(m), "ipcased.12.legal.24h@shop.example");
	assert_string_equal(g_mime_message_get_subject(m), subject);
	g_object_unref(m);
	free(got);
	free(subject);
	json_object_put(e);
	free(rcpts);
	free(msg);
}

/*
 * A round of reminders goes through one ipcased-send and one connection: a
 * refused message in between costs that connection (curl drops it), not the
 * round.
 */
static void
test_send_round_one_connection(void **state)
{
	struct netreq	 nr = NETREQ_INIT;
	struct conf	 conf;
	struct send_result res;
	const char	*rcpts[] = { "ops@shop.example", NULL };
	const char	*rejected[] = { "reject@shop.example", NULL };
	json_object	*e;
	pid_t		 sender;
	char		*msg, id[64], wid[70];
	int64_t		 port[4];
	size_t		 len;
	int		 i;

	(void)state;
	conf_for_server(&conf, &main_server, "smtp");
	for (i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "ipcased.round.%d@shop.example", i);
		msg = compose_sample(&conf, id, &len);
		if (i == 2)
			assert_int_equal(mailer_send_via(&nr, &conf, rejected, msg, len, &res),
			    R_SKIP);
		assert_int_equal(mailer_send_via(&nr, &conf, rcpts, msg, len, &res), R_OK);
		/* The same process all along. */
		if (i == 0)
			sender = nr.pid;
		assert_true(nr.pid > 0);
		assert_int_equal(nr.pid, sender);
		snprintf(wid, sizeof(wid), "<%s>", id);
		e = server_find(&main_server, wid);
		assert_non_null(e);
		port[i] = json_int(e, "peer_port");
		json_object_put(e);
		free(msg);
	}
	netreq_end(&nr);
	assert_int_equal(nr.pid, -1);
	/* One connection for the first two, a new one after the refusal. */
	assert_true(port[0] > 0);
	assert_int_equal(port[1], port[0]);
	assert_true(port[2] != port[0]);
	assert_int_equal(port[3], port[2]);
}

/* Hostile subjects as a different reader (Python's email package) decodes them. */
static void
test_send_hostile_subjects(void **state)
{
	struct conf	 conf;
	struct send_result res;
	struct mail_case c = sample_case();
	struct reminder	 r;
	json_object	*e;
	const char	**rcpts;
	char		*owner, *asin, *msg, *subject, id[64], wid[70];
	const char	*asins[2];
	size_t		 len;
	int		 i;

	(void)state;
	conf_for_server(&conf, &main_server, "smtp");
	for (i = 0; i < 25; i++) {
		owner = hostile_string();
		asin = hostile_string();
		asins[0] = asin;
		asins[1] = NULL;
		c.rights_owner_name = owner;
		c.asins = asins;
		r = sample_task(&c, i % 2 ? "contact_owner" : "follow_up");
		snprintf(id, sizeof(id), "ipcased.hostile.%d@shop.example", i);
		snprintf(wid, sizeof(wid), "<%s>", id);
		r.message_id = id;
		msg = mailer_compose(&conf, &r, &len);
		rcpts = mailer_recipients(&conf, &r);
		assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_OK);
		e = server_find(&main_server, wid);
		assert_non_null(e);
		subject = mailer_subject(&r);
		assert_string_equal(json_str(e, "subject"), subject);
		json_object_put(e);
		free(subject);
		free(rcpts);
		free(msg);
		free(asin);
		free(owner);
	}
}

static void
test_send_dot_stuffing(void **state)
{
	struct conf	 conf;
	struct send_result res;
	const char	*rcpts[] = { "ops@shop.example", NULL };
	const char	*msg = "From: ipcased@shop.example\nTo: ops@shop.example\n"
	    "Subject: dots\nMessage-ID: <dots.1@shop.example>\n\nline1\n.\n..x\n.x\n.\nend\n";
	const char	*want = "From: ipcased@shop.example\r\nTo: ops@shop.example\r\n"
	    "Subject: dots\r\nMessage-ID: <dots.1@shop.example>\r\n\r\nline1\r\n.\r\n..x\r\n"
	    ".x\r\n.\r\nend\r\n";
	json_object	*e;
	char		*got;
	size_t		 glen;

	(void)state;
	conf_for_server(&conf, &main_server, "smtp");
	assert_int_equal(send_alone(&conf, rcpts, msg, strlen(msg), &res), R_OK);
	e = server_find(&main_server, "<dots.1@shop.example>");
	assert_non_null(e);
	got = slurp(json_str(e, "file"), &glen);
	assert_string_equal(got, want);
	free(got);
	json_object_put(e);
}

static void
test_send_refuses_bad_envelope(void **state)
{
	struct conf	 conf;
	struct send_result res;
	const char	*bad[] = {
		"ops@shop.example\r\nRCPT TO:<x@evil.example>",
		"ops@shop.example\nRCPT TO:<x@evil.example>",
		"ops@shop.example\rRCPT TO:<x@evil.example>",
		"ops@shop.example> NOTIFY=NEVER",
		"ops shop@example", "<ops@shop.example>", "ops@shop@example",
		"opsshop.example", "ops@shop.example\x7f", "@shop.example", "ops@",
		"ops@shop.example\t",
	};
	const char	*rcpts[3];
	char		*cmdlog = server_file(&main_server, "commands.log"), *msg;
	size_t		 before, i, len;

	(void)state;
	conf_for_server(&conf, &main_server, "smtp");
	msg = compose_sample(&conf, "ipcased.inject@shop.example", &len);
	before = count_lines(cmdlog);
	for (i = 0; i < NELEM(bad); i++) {
		rcpts[0] = "ops@shop.example";
		rcpts[1] = bad[i];
		rcpts[2] = NULL;
		memset(&res, 0x55, sizeof(res));
		assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_SKIP);
		assert_true(res.permanent);
		assert_int_equal(res.smtp_code, 0);
		assert_non_null(strstr(res.reply, "refused envelope address"));
		assert_null(strchr(res.reply, '\r'));
		assert_null(strchr(res.reply, '\n'));
	}
	/* A bad From, a message with a CR, no recipients: refused the same way. */
	rcpts[0] = "ops@shop.example";
	rcpts[1] = NULL;
	conf.smtp.from = "ipcased@shop.example\r\nRCPT TO:<x@evil.example>";
	assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_SKIP);
	assert_true(res.permanent);
	conf.smtp.from = "ipcased@shop.example";
	assert_int_equal(send_alone(&conf, rcpts, "Subject: x\r\n\r\nbody\r\n", 20, &res), R_SKIP);
	assert_true(res.permanent);
	assert_int_equal(send_alone(&conf, rcpts, "Subject: x\n\nbo\0dy\n", 18, &res), R_SKIP);
	rcpts[0] = NULL;
	assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_SKIP);
	/* None of that opened a connection. */
	assert_int_equal(count_lines(cmdlog), before);

	/* A good message goes through; the server never saw an injected command. */
	rcpts[0] = "ops@shop.example";
	rcpts[1] = NULL;
	assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_OK);
	assert_true(count_lines(cmdlog) > before);
	assert_true(file_contains(cmdlog, "RCPT TO:<ops@shop.example>"));
	assert_false(file_contains(cmdlog, "evil.example"));
	assert_false(file_contains(cmdlog, "\\x0d"));
	assert_false(file_contains(cmdlog, "NOTIFY"));
	free(msg);
	free(cmdlog);
}

static void
test_send_wrong_password(void **state)
{
	struct conf	 conf;
	struct send_result res;
	const char	*rcpts[] = { "ops@shop.example", NULL };
	char		*msg, *cmdlog = server_file(&main_server, "commands.log");
	size_t		 len;

	(void)state;
	conf_for_server(&conf, &main_server, "smtp");
	conf.smtp.password_file = "wrong.pass";
	msg = compose_sample(&conf, "ipcased.wrongpw@shop.example", &len);
	assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_SKIP);
	assert_true(res.permanent);
	assert_int_equal(res.smtp_code, 535);
	assert_non_null(strstr(res.reply, "curl 67"));
	assert_null(strstr(res.reply, "wrong-pass"));
	assert_null(server_find(&main_server, "<ipcased.wrongpw@shop.example>"));
	/* The log records no credential (AUTH arguments are redacted or not logged). */
	assert_false(file_contains(cmdlog, "d3JvbmctcGFzcw"));
	/* A password file readable by others is refused before connecting. */
	conf.smtp.password_file = "loose.pass";
	assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_SKIP);
	assert_true(res.permanent);
	assert_non_null(strstr(res.reply, "chmod 600"));
	free(msg);
	free(cmdlog);
}

static void
test_send_rcpt_451_retry(void **state)
{
	struct conf	 conf;
	struct send_result res;
	const char	*rcpts[] = { "ops@shop.example", "tempfail@shop.example", NULL };
	char		*msg;
	size_t		 len;

	(void)state;
	conf_for_server(&conf, &main_server, "smtp");
	msg = compose_sample(&conf, "ipcased.451@shop.example", &len);
	assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_RETRY);
	assert_false(res.permanent);
	assert_int_equal(res.smtp_code, 451);
	assert_non_null(strstr(res.reply, "451"));
	assert_null(server_find(&main_server, "<ipcased.451@shop.example>"));
	free(msg);
}

static void
test_send_rcpt_550_permanent(void **state)
{
	struct conf	 conf;
	struct send_result res;
	const char	*rcpts[] = { "reject@shop.example", NULL };
	char		*msg;
	size_t		 len;

	(void)state;
	conf_for_server(&conf, &main_server, "smtp");
	msg = compose_sample(&conf, "ipcased.550@shop.example", &len);
	assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_SKIP);
	assert_true(res.permanent);
	assert_int_equal(res.smtp_code, 550);
	free(msg);
}

static void
test_send_data_451_retry(void **state)
{
	struct conf	 conf;
	struct send_result res;
	const char	*rcpts[] = { "datafail@shop.example", NULL };
	char		*msg;
	size_t		 len;

	(void)state;
	conf_for_server(&conf, &main_server, "smtp");
	msg = compose_sample(&conf, "ipcased.data451@shop.example", &len);
	assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_RETRY);
	assert_false(res.permanent);
	assert_int_equal(res.smtp_code, 451);
	free(msg);
}

/*
 * A TCP socket bound to a free port of 127.0.0.1, listening with backlog
 * (not listening when backlog < 0); its port goes into srv, which is
 * otherwise zeroed.  Returns the socket, for the test to close.
 */
static int
loopback_socket(int backlog, struct server *srv)
{
	struct sockaddr_in sin;
	socklen_t	 sl = sizeof(sin);
	int		 fd;

	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	if (backlog >= 0)
		assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	memset(srv, 0, sizeof(*srv));
	srv->port = ntohs(sin.sin_port);
	return fd;
}

static void
test_send_nothing_listening(void **state)
{
	struct conf	 conf;
	struct send_result res;
	struct server	 none;
	const char	*rcpts[] = { "ops@shop.example", NULL };
	char		*msg;
	size_t		 len;
	int		 fd;

	(void)state;
	/* A bound socket that does not listen: the port is ours and refuses. */
	fd = loopback_socket(-1, &none);
	conf_for_server(&conf, &none, "smtp");
	msg = compose_sample(&conf, "ipcased.nolisten@shop.example", &len);
	assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_RETRY);
	close(fd);
	assert_false(res.permanent);
	assert_int_equal(res.smtp_code, 0);
	assert_non_null(strstr(res.reply, "curl 7)"));
	free(msg);
}

static void
test_send_server_silent(void **state)
{
	struct conf	 conf;
	struct send_result res;
	struct server	 silent;
	const char	*rcpts[] = { "ops@shop.example", NULL };
	char		*msg;
	size_t		 len;
	int		 fd;
	time_t		 t0;

	(void)state;
	/* It accepts connections (the backlog does) and never says a word. */
	fd = loopback_socket(4, &silent);
	conf_for_server(&conf, &silent, "smtp");
	conf.smtp.timeout_sec = 2;
	msg = compose_sample(&conf, "ipcased.silent@shop.example", &len);
	t0 = time(NULL);
	assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_RETRY);
	close(fd);
	assert_true(time(NULL) - t0 <= 5);
	assert_false(res.permanent);
	assert_non_null(strstr(res.reply, "curl 28"));
	free(msg);
}

static void
test_send_wrong_ca(void **state)
{
	struct conf	 conf;
	struct send_result res;
	const char	*rcpts[] = { "ops@shop.example", NULL };
	char		*msg, *cmdlog = server_file(&main_server, "commands.log");
	size_t		 len, before;

	(void)state;
	conf_for_server(&conf, &main_server, "smtp");
	conf.smtp.ca_file = "other-ca.pem";
	msg = compose_sample(&conf, "ipcased.wrongca@shop.example", &len);
	before = count_lines(cmdlog);
	assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_SKIP);
	assert_true(res.permanent);
	assert_non_null(strstr(res.reply, "curl 60"));
	assert_null(server_find(&main_server, "<ipcased.wrongca@shop.example>"));
	/* It stopped at the handshake: no AUTH after STARTTLS. */
	assert_true(count_lines(cmdlog) - before <= 3);
	assert_false(file_contains(cmdlog, "ipcased.wrongca"));
	free(msg);
	free(cmdlog);
}

static int
setup_server_none(void **state)
{
	const char	*extra[] = { "--tls", "none", NULL };

	(void)state;
	return server_start(&extra_server, "smtp-none", extra);
}

static int
setup_server_implicit(void **state)
{
	const char	*extra[] = { "--tls", "implicit", NULL };

	(void)state;
	return server_start(&extra_server, "smtp-implicit", extra);
}

static int
teardown_extra_server(void **state)
{
	(void)state;
	server_stop(&extra_server);
	return 0;
}

static void
test_send_starttls_required(void **state)
{
	struct conf	 conf;
	struct send_result res;
	const char	*rcpts[] = { "ops@shop.example", NULL };
	char		*msg, *cmdlog = server_file(&extra_server, "commands.log");
	size_t		 len;

	(void)state;
	conf_for_server(&conf, &extra_server, "smtp");
	msg = compose_sample(&conf, "ipcased.plain@shop.example", &len);
	assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_SKIP);
	assert_true(res.permanent);
	/* The password never went out in clear: no AUTH, no MAIL. */
	assert_true(file_contains(cmdlog, "EHLO shop.example"));
	assert_false(file_contains(cmdlog, "AUTH"));
	assert_false(file_contains(cmdlog, "MAIL FROM"));
	free(msg);
	free(cmdlog);
}

static void
test_send_smtps(void **state)
{
	struct conf	 conf;
	struct send_result res;
	const char	*rcpts[] = { "ops@shop.example", NULL };
	json_object	*e;
	char		*msg;
	size_t		 len;

	(void)state;
	conf_for_server(&conf, &extra_server, "smtps");
	msg = compose_sample(&conf, "ipcased.smtps@shop.example", &len);
	assert_int_equal(send_alone(&conf, rcpts, msg, len, &res), R_OK);
	e = server_find(&extra_server, "<ipcased.smtps@shop.example>");
	assert_non_null(e);
	json_object_put(e);
	free(msg);
}

/* ---- groups ---- */

static int
setup_compose(void **state)
{
	(void)state;
	g_mime_init();
	return 0;
}

static int
setup_send(void **state)
{
	const char	*extra[] = {
		"--fail-rcpt", "tempfail@shop.example=451",
		"--fail-rcpt", "reject@shop.example=550",
		"--fail-data", "datafail@shop.example=451",
		NULL
	};
	char		*path;

	(void)state;
	if (make_pki() == -1) {
		fprintf(stderr, "openssl failed: see %s/openssl.log\n", tmpdir);
		return -1;
	}
	if (write_secret("smtp.pass", SMTP_PASS) == -1 ||
	    write_secret("server.pass", SMTP_PASS) == -1 ||
	    write_secret("wrong.pass", "wrong-pass") == -1 ||
	    write_secret("loose.pass", SMTP_PASS) == -1)
		return -1;
	path = xasprintf("%s/loose.pass", tmpdir);
	chmod(path, 0644);
	free(path);
	return server_start(&main_server, "smtp", extra);
}

static int
teardown_send(void **state)
{
	(void)state;
	server_stop(&main_server);
	return 0;
}

static void
find_script(const char *argv0)
{
	const char	*env = getenv("IPCASED_SMTP_SERVER");
	char		*dir, *slash;

	if (env != NULL) {
		snprintf(script, sizeof(script), "%s", env);
		return;
	}
	/* The binary lives in tests/, next to the script. */
	dir = xstrdup(argv0);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		snprintf(script, sizeof(script), "%s/smtp_server.py", dir);
	} else
		snprintf(script, sizeof(script), "tests/smtp_server.py");
	if (access(script, F_OK) != 0)
		snprintf(script, sizeof(script), "tests/smtp_server.py");
	free(dir);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest compose[] = {
		cmocka_unit_test(test_compose_hostile_1000),
		cmocka_unit_test(test_subject_examples),
		cmocka_unit_test(test_injection_stays_in_subject),
		cmocka_unit_test(test_recipients),
		cmocka_unit_test(test_body_content),
		cmocka_unit_test(test_alert_and_digest),
	};
	const struct CMUnitTest send[] = {
		cmocka_unit_test(test_send_delivers),
		cmocka_unit_test(test_send_round_one_connection),
		cmocka_unit_test(test_send_hostile_subjects),
		cmocka_unit_test(test_send_dot_stuffing),
		cmocka_unit_test(test_send_refuses_bad_envelope),
		cmocka_unit_test(test_send_wrong_password),
		cmocka_unit_test(test_send_rcpt_451_retry),
		cmocka_unit_test(test_send_rcpt_550_permanent),
		cmocka_unit_test(test_send_data_451_retry),
		cmocka_unit_test(test_send_nothing_listening),
		cmocka_unit_test(test_send_server_silent),
		cmocka_unit_test(test_send_wrong_ca),
		cmocka_unit_test_setup_teardown(test_send_starttls_required,
		    setup_server_none, teardown_extra_server),
		cmocka_unit_test_setup_teardown(test_send_smtps,
		    setup_server_implicit, teardown_extra_server),
	};
	int	 failed;

	testutil_helpers_here();

	(void)argc;
	signal(SIGPIPE, SIG_IGN);
	unsetenv("CREDENTIALS_DIRECTORY");
	find_script(argv[0]);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	failed = cmocka_run_group_tests_name("mailer_compose", compose, setup_compose, NULL);
	failed += cmocka_run_group_tests_name("mailer_send", send, setup_send, teardown_send);
	server_stop(&extra_server);
	server_stop(&main_server);
	if (failed == 0 || getenv("KEEP_TMP") == NULL)
		run(xasprintf("rm -rf '%s'", tmpdir));
	return failed;
}
