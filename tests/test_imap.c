/* test_imap.c — imap.c and tls.c against a private Dovecot (tests/t_imap.sh) and tests/imap_fake.py. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "imap.h"
#include "log.h"
#include "tls.h"
#include "util.h"

static const char *dir, *dovecot_conf, *dovecot_log, *user, *pass;
static int port_tls, port_plain;

/* ---- helpers -------------------------------------------------------------- */

static char *
path_in_dir(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void
acct_init(struct conf_account *a, const char *host, int port, enum tls_mode tls,
    const char *login, enum auth_mech auth, const char *ca_name)
{
	memset(a, 0, sizeof(*a));
	a->name = (char *)"test";
	a->host = (char *)host;
	a->port = port;
	a->tls = tls;
	a->user = (char *)login;
	a->auth = auth;
	a->ca_file = ca_name != NULL ? path_in_dir(ca_name) : NULL;
	a->timeout_sec = 10;
}

static void
acct_clear(struct conf_account *a)
{
	free(a->ca_file);
	a->ca_file = NULL;
}

static char *
slurp(const char *path)
{
	size_t	 len;
	char	*s = file_read(path, 64 << 20, &len);

	return s != NULL ? s : xstrdup("");
}

static char *
run_output(const char *cmd)
{
	struct buf	 b = { 0 };
	char		 chunk[4096];
	size_t		 n;
	FILE		*p;

	if ((p = popen(cmd, "r")) == NULL)
		fail_msg("popen %s", cmd);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		buf_append(&b, chunk, n);
	assert_int_equal(pclose(p), 0);
	return buf_steal(&b);
}

static char *
mailbox_flags(void)
{
	char	*cmd, *out;

	cmd = xasprintf("doveadm -c %s fetch -u %s 'uid flags' mailbox INBOX", dovecot_conf, user);
	out = run_output(cmd);
	free(cmd);
	return out;
}

/* Writes a CRLF message with this subject, saves it in INBOX; returns its bytes. */
static char *
save_message(const char *subject, size_t *len)
{
	static int	 seq;
	char		*path, *cmd, *msg;
	FILE		*f;

	msg = xasprintf("From: Amazon <notice@amazon.com>\r\n"
	    "To: seller@shop.example\r\n"
	    "Subject: %s\r\n"
	    "Date: Tue, 10 Sep 2024 15:40:22 +0000\r\n"
	    "Message-ID: <t%d.%ld@test.example>\r\n"
	    "X-Not-Fetched: yes\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "\r\n"
	    "Body line one of %s.\r\n"
	    "Line two.\r\n", subject, ++seq, (long)getpid(), subject);
	path = xasprintf("%s/msg%d.eml", dir, seq);
	if ((f = fopen(path, "w")) == NULL)
		fail_msg("fopen %s", path);
	fputs(msg, f);
	fclose(f);
	cmd = xasprintf("doveadm -c %s save -u %s -m INBOX < %s", dovecot_conf, user, path);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(path);
	*len = strlen(msg);
	return msg;
}

static size_t
count_substr(const char *hay, const char *needle)
{
	size_t	n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* Waits up to ms for the Dovecot log to hold more than `before` copies of needle. */
static size_t
wait_log(const char *path, const char *needle, size_t before, int ms)
{
	size_t	 n = 0;
	char	*s;
	int	 waited;

	for (waited = 0; waited <= ms; waited += 50) {
		s = slurp(path);
		n = count_substr(s, needle);
		free(s);
		if (n > before)
			break;
		usleep(50 * 1000);
	}
	return n;
}

static struct imap_session *
connect_ok(struct conf_account *a, const char *secret)
{
	struct imap_session *s = imap_new(a, secret);

	assert_int_equal(imap_connect(s), R_OK);
	return s;
}

/* ---- the fake server ------------------------------------------------------ */

struct fake {
	pid_t	 pid;
	int	 port;
	char	*log;
	char	*portfile;
};

static void
fake_start(struct fake *f, const char *mode, const char *tls, const char *cert)
{
	static int	 n;
	const char	*py = getenv("IMAPT_PYTHON"), *script = getenv("IMAPT_FAKE");
	char		*certpath, *keypath, *s;
	int		 i;

	assert_non_null(py);
	assert_non_null(script);
	n++;
	f->log = xasprintf("%s/fake%d.log", dir, n);
	f->portfile = xasprintf("%s/fake%d.port", dir, n);
	certpath = xasprintf("%s/%s.pem", dir, cert != NULL ? cert : "server");
	keypath = xasprintf("%s/%s.key", dir, cert != NULL ? cert : "server");
	unlink(f->portfile);
	if ((f->pid = fork()) == -1)
		fail_msg("fork");
	if (f->pid == 0) {
		int fd;

		/* Dies with us, even when a test crashes, and keeps no pipe of ours open. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if ((fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0644)) != -1) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		execl(py, py, script, "--mode", mode, "--tls", tls, "--cert", certpath,
		    "--key", keypath, "--log", f->log, "--port-file", f->portfile,
		    (char *)NULL);
		_exit(127);
	}
	free(certpath);
	free(keypath);
	for (i = 0; i < 100; i++) {
		if (access(f->portfile, R_OK) == 0)
			break;
		usleep(50 * 1000);
	}
	assert_true(i < 100);
	s = slurp(f->portfile);
	f->port = atoi(s);
	free(s);
	assert_true(f->port > 0);
}

static void
fake_stop(struct fake *f)
{
	int	status;

	kill(f->pid, SIGTERM);
	waitpid(f->pid, &status, 0);
	free(f->log);
	free(f->portfile);
}

/* Every line the client sent to the fake, "C: ..." one per line. */
static char *
fake_log(const struct fake *f)
{
	/* The fake logs after each read; give it a moment after we hang up. */
	usleep(200 * 1000);
	return slurp(f->log);
}

/* ---- tls.c ---------------------------------------------------------------- */

static int
verify_files(const char *const *names, size_t n, const char *host, const char *ca,
    char *err, size_t errlen)
{
	const unsigned char *der[4] = { NULL };
	size_t	 lens[4] = { 0 }, i;
	char	*bufs[4], *path, *capath;
	int	 r;

	for (i = 0; i < n; i++) {
		path = xasprintf("%s/%s", dir, names[i]);
		bufs[i] = file_read(path, 1 << 20, &lens[i]);
		assert_non_null(bufs[i]);
		der[i] = (const unsigned char *)bufs[i];
		free(path);
	}
	capath = ca != NULL ? path_in_dir(ca) : NULL;
	r = tls_verify_der_chain(der, lens, n, host, capath, err, errlen);
	free(capath);
	for (i = 0; i < n; i++)
		free(bufs[i]);
	return r;
}

static void
test_tls_chain_good(void **state)
{
	const char	*leaf[] = { "server.der" }, *chain[] = { "server.der", "ca.der" };
	char		 err[256];

	(void)state;
	assert_int_equal(verify_files(leaf, 1, "localhost", "ca.pem", err, sizeof(err)), 0);
	/* An IP literal is matched against the iPAddress SAN. */
	assert_int_equal(verify_files(leaf, 1, "127.0.0.1", "ca.pem", err, sizeof(err)), 0);
	assert_int_equal(verify_files(chain, 2, "127.0.0.1", "ca.pem", err, sizeof(err)), 0);
}

static void
test_tls_chain_bad(void **state)
{
	const char	*leaf[] = { "server.der" }, *other[] = { "other.der" };
	const char	*rogue[] = { "rogue.der" }, *client[] = { "client.der" };
	char		 err[256];

	(void)state;
	assert_int_equal(verify_files(leaf, 1, "127.0.0.2", "ca.pem", err, sizeof(err)), -1);
	assert_string_equal(err, "name does not match 127.0.0.2");
	assert_int_equal(verify_files(leaf, 1, "mail.example", "ca.pem", err, sizeof(err)), -1);
	assert_string_equal(err, "name does not match mail.example");
	assert_int_equal(verify_files(other, 1, "127.0.0.1", "ca.pem", err, sizeof(err)), -1);
	assert_string_equal(err, "name does not match 127.0.0.1");
	assert_int_equal(verify_files(other, 1, "other.example", "ca.pem", err, sizeof(err)), 0);
	assert_int_equal(verify_files(rogue, 1, "localhost", "ca.pem", err, sizeof(err)), -1);
	assert_string_equal(err, "certificate signed by an unknown issuer");
	assert_int_equal(verify_files(leaf, 1, "localhost", "rogueca.pem", err, sizeof(err)), -1);
	assert_string_equal(err, "certificate signed by an unknown issuer");
	/* The test CA is in no system store. */
	assert_int_equal(verify_files(leaf, 1, "localhost", NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown issuer"));
	/* A client certificate is no server certificate. */
	assert_int_equal(verify_files(client, 1, "localhost", "ca.pem", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not meant for a TLS server"));
	/* Garbage and missing input. */
	assert_int_equal(tls_verify_der_chain(NULL, NULL, 0, "localhost", NULL, err, sizeof(err)), -1);
	{
		const unsigned char *junk[] = { (const unsigned char *)"junk" };
		size_t	jlen[] = { 4 };

		assert_int_equal(tls_verify_der_chain(junk, jlen, 1, "localhost", NULL,
		    err, sizeof(err)), -1);
	}
	assert_int_equal(verify_files(leaf, 1, "localhost", "nonexistent.pem", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no CA certificate loaded"));
}

/* ---- against Dovecot ------------------------------------------------------- */

static void
test_connect_examine(void **state)
{
	struct conf_account	 a;
	struct imap_session	*s;
	struct imap_folder	 f;

	(void)state;
	acct_init(&a, "127.0.0.1", port_tls, TLS_IMPLICIT, user, AUTH_LOGIN, "ca.pem");
	s = connect_ok(&a, pass);
	assert_int_equal(imap_examine(s, "INBOX", &f), R_OK);
	assert_true(f.uidvalidity != 0);
	assert_true(f.uidnext >= 1);
	/* Dovecot has CONDSTORE: EXAMINE INBOX (CONDSTORE) reports a modseq. */
	assert_true(f.highestmodseq >= 1);
	assert_int_equal(imap_examine(s, "No/Such/Folder", &f), R_SKIP);
	/* The session survives a refused EXAMINE. */
	assert_int_equal(imap_examine(s, "INBOX", &f), R_OK);
	assert_true(imap_has_idle(s));
	assert_true(imap_bytes_received(s) > 100);
	imap_free(s);
	acct_clear(&a);
}

static void
test_connect_localhost_plain(void **state)
{
	struct conf_account	 a;
	struct imap_session	*s;
	struct imap_folder	 f;
	size_t			 before;
	char			*needle;

	(void)state;
	/* "localhost" may resolve to ::1 first, where nothing listens: next address. */
	acct_init(&a, "localhost", port_tls, TLS_IMPLICIT, user, AUTH_PLAIN, "ca.pem");
	needle = xasprintf("Login: user=<%s>, method=PLAIN", user);
	before = wait_log(dovecot_log, needle, SIZE_MAX, 0);
	s = connect_ok(&a, pass);
	assert_int_equal(imap_examine(s, "INBOX", &f), R_OK);
	imap_free(s);
	assert_true(wait_log(dovecot_log, needle, before, 2000) > before);
	free(needle);
	acct_clear(&a);
}

static void
test_starttls_dovecot(void **state)
{
	struct conf_account	 a;
	struct imap_session	*s;
	struct imap_folder	 f;
	char			*logtext, *last;

	(void)state;
	acct_init(&a, "127.0.0.1", port_plain, TLS_STARTTLS, user, AUTH_LOGIN, "ca.pem");
	s = connect_ok(&a, pass);
	assert_int_equal(imap_examine(s, "INBOX", &f), R_OK);
	imap_free(s);
	/* The login happened inside TLS: Dovecot marks it ", TLS,". */
	wait_log(dovecot_log, "Login: user=", 0, 1000);
	logtext = slurp(dovecot_log);
	last = logtext;
	while (strstr(last + 1, "Login: user=") != NULL)
		last = strstr(last + 1, "Login: user=");
	assert_non_null(strstr(last, ", TLS"));
	free(logtext);
	/* A wrong CA after STARTTLS is refused just the same. */
	acct_clear(&a);
	acct_init(&a, "127.0.0.1", port_plain, TLS_STARTTLS, user, AUTH_LOGIN, "rogueca.pem");
	s = imap_new(&a, pass);
	assert_int_equal(imap_connect(s), R_FATAL);
	imap_free(s);
	acct_clear(&a);
}

static void
test_wrong_ca_refused(void **state)
{
	struct conf_account	 a;
	struct imap_session	*s;
	size_t			 before, after;
	char			*logtext;

	(void)state;
	before = wait_log(dovecot_log, "no auth attempts", SIZE_MAX, 0);
	/* A user name found nowhere else in the log: any attempt would show it. */
	acct_init(&a, "127.0.0.1", port_tls, TLS_IMPLICIT, "victim", AUTH_LOGIN, "rogueca.pem");
	s = imap_new(&a, "victim-password");
	assert_int_equal(imap_connect(s), R_FATAL);
	imap_free(s);
	/* Dovecot saw the connection end without any authentication attempt. */
	after = wait_log(dovecot_log, "no auth attempts", before, 3000);
	assert_true(after > before);
	logtext = slurp(dovecot_log);
	assert_null(strstr(logtext, "victim"));
	free(logtext);
	acct_clear(&a);
}

static void
test_login_refused(void **state)
{
	struct conf_account	 a;
	struct imap_session	*s;

	(void)state;
	acct_init(&a, "127.0.0.1", port_tls, TLS_IMPLICIT, user, AUTH_LOGIN, "ca.pem");
	s = imap_new(&a, "wrong-password");
	assert_int_equal(imap_connect(s), R_FATAL);
	imap_free(s);
	a.auth = AUTH_PLAIN;
	s = imap_new(&a, "wrong-password");
	assert_int_equal(imap_connect(s), R_FATAL);
	imap_free(s);
	/* Nothing listens on port 1 of the loopback: retry later. */
	a.port = 1;
	s = imap_new(&a, pass);
	assert_int_equal(imap_connect(s), R_RETRY);
	imap_free(s);
	acct_clear(&a);
}

struct collected {
	uint32_t	 uids[16];
	uint32_t	 sizes[16];
	char		*hdrs[16];
	size_t		 n;
};

/* What imap_fetch_messages() passed on, copied. */
struct body_copy {
	char	*raw;
	size_t	 len;
	int	 calls;
};

static void
copy_body(uint32_t uid, const char *raw, size_t len, void *arg)
{
	struct body_copy	*bc = arg;

	(void)uid;
	free(bc->raw);
	bc->raw = xmalloc(len + 1);
	memcpy(bc->raw, raw, len);
	bc->len = len;
	bc->calls++;
}

static void
collect_cb(uint32_t uid, uint32_t size, const char *hdr, size_t len, void *arg)
{
	struct collected *c = arg;

	assert_true(c->n < 16);
	c->uids[c->n] = uid;
	c->sizes[c->n] = size;
	c->hdrs[c->n] = xstrndup(hdr, len);
	c->n++;
}

static void
test_search_fetch_readonly(void **state)
{
	struct conf_account	 a;
	struct imap_session	*s;
	struct imap_folder	 f;
	struct collected	 c = { 0 };
	uint32_t		*uids, pick[2], first;
	size_t			 n, len[3], rawlen, i;
	char			*msg[3], *raw, *flags_before, *flags_after, subject[64];

	(void)state;
	acct_init(&a, "127.0.0.1", port_tls, TLS_IMPLICIT, user, AUTH_LOGIN, "ca.pem");
	s = connect_ok(&a, pass);
	assert_int_equal(imap_examine(s, "INBOX", &f), R_OK);
	first = f.uidnext;
	for (i = 0; i < 3; i++) {
		snprintf(subject, sizeof(subject), "Notice of infringement %zu", i);
		msg[i] = save_message(subject, &len[i]);
	}
	flags_before = mailbox_flags();

	assert_int_equal(imap_examine(s, "INBOX", &f), R_OK);
	assert_int_equal(f.uidnext, first + 3);
	assert_int_equal(imap_search(s, first - 1, 0, &uids, &n), R_OK);
	assert_int_equal(n, 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(uids[i], first + i);
	free(uids);
	/* UID n:* also matches the highest UID when n is above it: filtered. */
	assert_int_equal(imap_search(s, first + 2, 0, &uids, &n), R_OK);
	assert_int_equal(n, 0);
	free(uids);
	/* SINCE is the internal date: today's mail is newer than yesterday... */
	assert_int_equal(imap_search(s, first - 1, time(NULL) - 86400, &uids, &n), R_OK);
	assert_int_equal(n, 3);
	free(uids);
	/* ...and older than the day after tomorrow. */
	assert_int_equal(imap_search(s, first - 1, time(NULL) + 2 * 86400, &uids, &n), R_OK);
	assert_int_equal(n, 0);
	free(uids);

	/* Two UIDs that are not consecutive: the set is "first,first+2". */
	pick[0] = first;
	pick[1] = first + 2;
	assert_int_equal(imap_fetch_headers(s, pick, 2, collect_cb, &c), R_OK);
	assert_int_equal(c.n, 2);
	for (i = 0; i < c.n; i++) {
		size_t k = c.uids[i] == first ? 0 : 2;

		assert_true(c.uids[i] == pick[0] || c.uids[i] == pick[1]);
		snprintf(subject, sizeof(subject), "Subject: Notice of infringement %zu\r\n", k);
		assert_non_null(strstr(c.hdrs[i], subject));
		assert_non_null(strstr(c.hdrs[i], "From: Amazon <notice@amazon.com>"));
		/* Only the fields asked for (imap_header_fields): no Message-ID either. */
		assert_null(strstr(c.hdrs[i], "X-Not-Fetched"));
		assert_null(strstr(c.hdrs[i], "Message-ID:"));
		assert_int_equal(c.sizes[i], len[k]);
		free(c.hdrs[i]);
	}

	/* A range: the messages in it and none outside, whatever else the folder holds. */
	c.n = 0;
	assert_int_equal(imap_fetch_header_range(s, first + 1, first + 2, collect_cb, &c), R_OK);
	assert_int_equal(c.n, 2);
	for (i = 0; i < c.n; i++) {
		assert_true(c.uids[i] == first + 1 || c.uids[i] == first + 2);
		assert_int_equal(c.sizes[i], len[c.uids[i] - first]);
		snprintf(subject, sizeof(subject), "Subject: Notice of infringement %u\r\n",
		    c.uids[i] - first);
		assert_non_null(strstr(c.hdrs[i], subject));
		free(c.hdrs[i]);
	}
	assert_int_not_equal(c.uids[0], c.uids[1]);
	/* Past the last UID, and backwards: nothing, and no error. */
	c.n = 0;
	assert_int_equal(imap_fetch_header_range(s, first + 3, first + 1000, collect_cb, &c), R_OK);
	assert_int_equal(imap_fetch_header_range(s, first + 2, first + 1, collect_cb, &c), R_OK);
	assert_int_equal(c.n, 0);
	/* UID 0 is no UID: the range starts at 1, so it ends at first here. */
	assert_int_equal(imap_fetch_header_range(s, 0, first, collect_cb, &c), R_OK);
	assert_true(c.n >= 1);
	for (i = 0; i < c.n; i++) {
		assert_true(c.uids[i] >= 1 && c.uids[i] <= first);
		free(c.hdrs[i]);
	}
	assert_int_equal(c.uids[c.n - 1], first);

	/* The whole message, byte for byte, and a capped one. */
	assert_int_equal(imap_fetch_message(s, first + 1, 1 << 20, &raw, &rawlen), R_OK);
	assert_int_equal(rawlen, len[1]);
	assert_memory_equal(raw, msg[1], len[1]);
	free(raw);
	assert_int_equal(imap_fetch_message(s, first + 1, 50, &raw, &rawlen), R_OK);
	assert_int_equal(rawlen, 50);
	assert_memory_equal(raw, msg[1], 50);
	free(raw);
	/* Known to be small: BODY.PEEK[] without a partial, still capped at max for the caller. */
	{
		struct body_copy	 bc = { NULL, 0, 0 };
		uint32_t		 one = first + 1;

		assert_int_equal(imap_fetch_messages(s, &one, 1, 1 << 20, true, copy_body, &bc), R_OK);
		assert_int_equal(bc.calls, 1);
		assert_int_equal(bc.len, len[1]);
		assert_memory_equal(bc.raw, msg[1], len[1]);
		free(bc.raw);
		bc = (struct body_copy){ NULL, 0, 0 };
		assert_int_equal(imap_fetch_messages(s, &one, 1, 50, true, copy_body, &bc), R_OK);
		assert_int_equal(bc.len, 50);
		assert_memory_equal(bc.raw, msg[1], 50);
		free(bc.raw);
	}
	/* A UID that does not exist: skip it. */
	assert_int_equal(imap_fetch_message(s, first + 1000, 0, &raw, &rawlen), R_SKIP);
	assert_null(raw);

	imap_free(s);
	/* Nothing we did changed a flag (no \Seen from FETCH, no \Recent lost). */
	flags_after = mailbox_flags();
	assert_string_equal(flags_before, flags_after);
	assert_null(strstr(flags_after, "\\Seen"));
	free(flags_before);
	free(flags_after);
	for (i = 0; i < 3; i++)
		free(msg[i]);
	acct_clear(&a);
}

static void
test_fetch_headers_batches(void **state)
{
	struct conf_account	 a;
	struct imap_session	*s;
	struct imap_folder	 f;
	struct collected	 c = { 0 };
	uint32_t		*uids;
	size_t			 n, i;

	(void)state;
	acct_init(&a, "127.0.0.1", port_tls, TLS_IMPLICIT, user, AUTH_LOGIN, "ca.pem");
	s = connect_ok(&a, pass);
	assert_int_equal(imap_examine(s, "INBOX", &f), R_OK);
	assert_int_equal(imap_search(s, 0, 0, &uids, &n), R_OK);
	assert_true(n >= 3);
	assert_true(n <= 16);
	/* Every message once, in a single set of intervals. */
	assert_int_equal(imap_fetch_headers(s, uids, n, collect_cb, &c), R_OK);
	assert_int_equal(c.n, n);
	for (i = 0; i < c.n; i++) {
		assert_non_null(strstr(c.hdrs[i], "Subject: "));
		free(c.hdrs[i]);
	}
	free(uids);
	/* Nothing asked, nothing sent. */
	assert_int_equal(imap_fetch_headers(s, NULL, 0, collect_cb, &c), R_OK);
	imap_free(s);
	acct_clear(&a);
}

static void
test_find_sent(void **state)
{
	struct conf_account	 a;
	struct imap_session	*s;
	char			*sent;

	(void)state;
	acct_init(&a, "127.0.0.1", port_tls, TLS_IMPLICIT, user, AUTH_LOGIN, "ca.pem");
	s = connect_ok(&a, pass);
	sent = imap_find_sent(s);
	assert_non_null(sent);
	assert_string_equal(sent, "Sent");
	free(sent);
	imap_free(s);
	acct_clear(&a);
}

static void
test_idle(void **state)
{
	struct conf_account	 a;
	struct imap_session	*s;
	struct imap_folder	 f;
	struct pollfd		 pfd;
	uint32_t		 uidnext;
	int64_t			 t0, waited;
	size_t			 len;
	bool			 new_mail = true;
	char			*msg;

	(void)state;
	acct_init(&a, "127.0.0.1", port_tls, TLS_IMPLICIT, user, AUTH_LOGIN, "ca.pem");
	s = connect_ok(&a, pass);
	assert_int_equal(imap_examine(s, "INBOX", &f), R_OK);
	assert_true(imap_has_idle(s));
	uidnext = f.uidnext;

	/* Nothing arrives: DONE reports no new mail. */
	assert_int_equal(imap_idle_start(s), R_OK);
	assert_true(imap_idle_fd(s) >= 0);
	assert_false(imap_idle_pending(s));
	pfd.fd = imap_idle_fd(s);
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 300), 0);
	assert_int_equal(imap_idle_done(s, &new_mail), R_OK);
	assert_false(new_mail);

	/* A message arrives: the descriptor wakes within 2 s. */
	assert_int_equal(imap_idle_start(s), R_OK);
	msg = save_message("Arrives during IDLE", &len);
	t0 = now_mono_ms();
	pfd.fd = imap_idle_fd(s);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (!imap_idle_pending(s))
		assert_int_equal(poll(&pfd, 1, 2000), 1);
	waited = now_mono_ms() - t0;
	assert_true(waited < 2000);
	assert_int_equal(imap_idle_done(s, &new_mail), R_OK);
	assert_true(new_mail);
	/* The session goes on after IDLE. */
	assert_int_equal(imap_examine(s, "INBOX", &f), R_OK);
	assert_int_equal(f.uidnext, uidnext + 1);
	free(msg);
	imap_free(s);
	acct_clear(&a);
}

/* ---- against the fake server ------------------------------------------------ */

static void
test_fake_unverified_greeting_never_parsed(void **state)
{
	struct conf_account	 a;
	struct imap_session	*s;
	struct fake		 fk;
	char			*lines;

	(void)state;
	/* A certificate from an unknown CA: refused before the crashing greeting. */
	fake_start(&fk, "permflags", "implicit", "rogue");
	acct_init(&a, "127.0.0.1", fk.port, TLS_IMPLICIT, user, AUTH_LOGIN, "ca.pem");
	s = imap_new(&a, pass);
	assert_int_equal(imap_connect(s), R_FATAL);
	imap_free(s);
	lines = fake_log(&fk);
	assert_non_null(strstr(lines, "CONNECT"));
	assert_null(strstr(lines, "C: "));
	free(lines);
	fake_stop(&fk);

	/* Our CA, but issued to other.example: the name does not match 127.0.0.1. */
	fake_start(&fk, "permflags", "implicit", "other");
	a.port = fk.port;
	s = imap_new(&a, pass);
	assert_int_equal(imap_connect(s), R_FATAL);
	imap_free(s);
	lines = fake_log(&fk);
	assert_non_null(strstr(lines, "CONNECT"));
	assert_null(strstr(lines, "C: "));
	free(lines);
	fake_stop(&fk);
	acct_clear(&a);
}

static void
test_fake_permflags_crashes_libetpan(void **state)
{
	struct conf_account	 a;
	struct rlimit		 nocore = { 0, 0 };
	struct fake		 fk;
	pid_t			 pid;
	int			 status, i;

	(void)state;
	/*
	 * A trusted server that sends "* OK [PERMANENTFLAGS (\\x)] x" kills
	 * libetpan 1.9.4 with SIGSEGV (fixed upstream only in 266d59f).  This
	 * is why the daemon runs each account's fetcher in its own child
	 * process.  A libetpan with the fix makes the child exit instead, and
	 * this test must then be changed to expect that.
	 */
	fake_start(&fk, "permflags", "implicit", "server");
	acct_init(&a, "127.0.0.1", fk.port, TLS_IMPLICIT, user, AUTH_LOGIN, "ca.pem");
	if ((pid = fork()) == -1)
		fail_msg("fork");
	if (pid == 0) {
		struct imap_session *s;

		/* ASan's SEGV handler would turn the signal into exit(1). */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		setrlimit(RLIMIT_CORE, &nocore);
		alarm(20);
		s = imap_new(&a, pass);
		imap_connect(s);
		_exit(0);
	}
	for (i = 0; i < 300; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(50 * 1000);
	}
	if (i == 300) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("the child hung");
	}
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
	fake_stop(&fk);
	acct_clear(&a);
}

/*
 * A STARTTLS account against a plain fake in mode: the connection must fail
 * (R_FATAL).  Returns what the fake logged (malloc'd); the fake is stopped.
 */
static char *
fake_starttls_refused(const char *mode)
{
	struct conf_account	 a;
	struct imap_session	*s;
	struct fake		 fk;
	char			*lines;

	fake_start(&fk, mode, "none", NULL);
	acct_init(&a, "127.0.0.1", fk.port, TLS_STARTTLS, user, AUTH_LOGIN, "ca.pem");
	s = imap_new(&a, pass);
	assert_int_equal(imap_connect(s), R_FATAL);
	imap_free(s);
	lines = fake_log(&fk);
	fake_stop(&fk);
	acct_clear(&a);
	return lines;
}

static void
test_fake_no_starttls(void **state)
{
	char	*lines;

	(void)state;
	lines = fake_starttls_refused("nostarttls");
	assert_non_null(strstr(lines, "CAPABILITY"));
	assert_null(strstr(lines, "LOGIN"));
	assert_null(strstr(lines, "AUTHENTICATE"));
	assert_null(strstr(lines, pass));
	free(lines);
}

static void
test_fake_starttls_injection(void **state)
{
	char	*lines;

	(void)state;
	lines = fake_starttls_refused("inject");
	assert_non_null(strstr(lines, "STARTTLS"));
	assert_null(strstr(lines, "LOGIN "));
	assert_null(strstr(lines, pass));
	free(lines);
}

static int64_t
cpu_ms(void)
{
	struct rusage	ru;

	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static void
one_header_cb(uint32_t uid, uint32_t size, const char *hdr, size_t len, void *arg)
{
	if (size == 42 && len == 17 && memcmp(hdr, "Subject: fake", 13) == 0)
		*(uint32_t *)arg = uid;
}

/*
 * Child side of the hangup test: 0 when the fetch failed with R_RETRY fast
 * and without burning CPU, else a code that says what went wrong.
 */
static int
hangup_child(int port)
{
	struct conf_account	 a;
	struct imap_session	*s;
	struct imap_folder	 f;
	int64_t			 t0, c0, wall, cpu;
	uint32_t		 one = 1, hdr_uid;
	enum result		 r;
	size_t			 len;
	char			*raw;

	acct_init(&a, "127.0.0.1", port, TLS_NONE, user, AUTH_LOGIN, NULL);
	s = imap_new(&a, pass);
	if (imap_connect(s) != R_OK || imap_examine(s, "INBOX", &f) != R_OK ||
	    f.uidvalidity != 7)
		return 2;
	hdr_uid = 0;
	if (imap_fetch_headers(s, &one, 1, one_header_cb, &hdr_uid) != R_OK || hdr_uid != 1)
		return 6;
	t0 = now_mono_ms();
	c0 = cpu_ms();
	r = imap_fetch_message(s, 1, 1 << 20, &raw, &len);
	wall = now_mono_ms() - t0;
	cpu = cpu_ms() - c0;
	imap_free(s);
	acct_clear(&a);
	if (r != R_RETRY || raw != NULL)
		return 3;
	/* Far below the 10 s timeout, and no spinning on the way. */
	if (wall >= 3000)
		return 4;
	if (cpu >= 500)
		return 5;
	return 0;
}

static void
test_fake_hangup_in_literal(void **state)
{
	struct fake		 fk;
	pid_t			 pid;
	int			 status;
	char			*lines;

	(void)state;
	/* Plain text on the loopback: read() returns 0 at EOF (TLS would say -1). */
	fake_start(&fk, "literal", "none", NULL);
	/* libetpan without the guard spins forever: a child, killed after 8 s. */
	if ((pid = fork()) == -1)
		fail_msg("fork");
	if (pid == 0) {
		alarm(8);
		_exit(hangup_child(fk.port));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("the fetch child died of signal %d (spinning?)", WTERMSIG(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	lines = fake_log(&fk);
	assert_non_null(strstr(lines, "HANGUP"));
	/*
	 * Under EXAMINE even BODY[] would not set \Seen on Dovecot, so the
	 * wire is the proof: only BODY.PEEK, never BODY[, never SELECT.
	 */
	assert_non_null(strstr(lines, " BODY.PEEK[HEADER.FIELDS (From Reply-To To Cc Subject"));
	assert_non_null(strstr(lines, " BODY.PEEK[]<0.1048576>"));
	assert_null(strstr(lines, " BODY["));
	assert_null(strstr(lines, "SELECT"));
	assert_non_null(strstr(lines, " EXAMINE INBOX"));
	free(lines);
	fake_stop(&fk);
}

/* A server that answers a header FETCH with UIDs nobody asked for: only the asked ones go on. */
static void
test_fake_stray_uids(void **state)
{
	struct conf_account	 a;
	struct imap_session	*s;
	struct imap_folder	 f;
	struct fake		 fk;
	struct collected	 c = { 0 };
	uint32_t		 three = 3;
	char			*lines, subject[32];
	size_t			 i;

	(void)state;
	fake_start(&fk, "stray", "none", NULL);
	acct_init(&a, "127.0.0.1", fk.port, TLS_NONE, user, AUTH_LOGIN, NULL);
	s = connect_ok(&a, pass);
	assert_int_equal(imap_examine(s, "INBOX", &f), R_OK);
	assert_int_equal(imap_fetch_header_range(s, 2, 3, collect_cb, &c), R_OK);
	assert_int_equal(c.n, 2);
	for (i = 0; i < c.n; i++) {
		assert_int_equal(c.uids[i], 2 + i);
		snprintf(subject, sizeof(subject), "Subject: stray %u", c.uids[i]);
		assert_non_null(strstr(c.hdrs[i], subject));
		free(c.hdrs[i]);
	}
	c.n = 0;
	assert_int_equal(imap_fetch_headers(s, &three, 1, collect_cb, &c), R_OK);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.uids[0], 3);
	free(c.hdrs[0]);
	imap_free(s);
	lines = fake_log(&fk);
	assert_non_null(strstr(lines, " UID FETCH 2:3 (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS ("));
	assert_non_null(strstr(lines, " UID FETCH 3 (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS ("));
	free(lines);
	fake_stop(&fk);
	acct_clear(&a);
}

static void
test_fake_xoauth2(void **state)
{
	struct conf_account	 a;
	struct imap_session	*s;
	struct fake		 fk;
	char			*lines, *sasl, *b64, *want;

	(void)state;
	fake_start(&fk, "literal", "none", NULL);
	acct_init(&a, "127.0.0.1", fk.port, TLS_NONE, user, AUTH_XOAUTH2, NULL);
	s = connect_ok(&a, "access-token-123");
	imap_free(s);
	/* RFC-less but documented by Google: user=U^Aauth=Bearer T^A^A, base64. */
	sasl = xasprintf("user=%s\001auth=Bearer access-token-123\001\001", user);
	b64 = g_base64_encode((const guchar *)sasl, strlen(sasl));
	want = xasprintf("AUTHENTICATE XOAUTH2 %s", b64);
	lines = fake_log(&fk);
	assert_non_null(strstr(lines, want));
	free(lines);
	free(want);
	g_free(b64);
	free(sasl);
	fake_stop(&fk);
	acct_clear(&a);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_chain_good),
		cmocka_unit_test(test_tls_chain_bad),
		cmocka_unit_test(test_connect_examine),
		cmocka_unit_test(test_connect_localhost_plain),
		cmocka_unit_test(test_starttls_dovecot),
		cmocka_unit_test(test_wrong_ca_refused),
		cmocka_unit_test(test_login_refused),
		cmocka_unit_test(test_search_fetch_readonly),
		cmocka_unit_test(test_fetch_headers_batches),
		cmocka_unit_test(test_find_sent),
		cmocka_unit_test(test_idle),
		cmocka_unit_test(test_fake_unverified_greeting_never_parsed),
		cmocka_unit_test(test_fake_permflags_crashes_libetpan),
		cmocka_unit_test(test_fake_no_starttls),
		cmocka_unit_test(test_fake_starttls_injection),
		cmocka_unit_test(test_fake_hangup_in_literal),
		cmocka_unit_test(test_fake_stray_uids),
		cmocka_unit_test(test_fake_xoauth2),
	};
	char	self[PATH_MAX], script[PATH_MAX + 16], *slash;
	char  **args;
	int	i;

	/* Without servers, run through t_imap.sh, which starts them and comes back here. */
	if ((dir = getenv("IMAPT_DIR")) == NULL) {
		if (realpath("/proc/self/exe", self) == NULL) {
			perror("realpath /proc/self/exe");
			return 1;
		}
		snprintf(script, sizeof(script), "%s", self);
		if ((slash = strrchr(script, '/')) != NULL)
			*slash = '\0';
		strcat(script, "/t_imap.sh");
		args = xcalloc((size_t)argc + 4, sizeof(*args));
		args[0] = (char *)"sh";
		args[1] = script;
		args[2] = self;
		for (i = 1; i < argc; i++)
			args[i + 2] = argv[i];
		execv("/bin/sh", args);
		perror("exec /bin/sh t_imap.sh");
		return 1;
	}
	dovecot_conf = getenv("IMAPT_CONF");
	dovecot_log = getenv("IMAPT_LOG");
	user = getenv("IMAPT_USER");
	pass = getenv("IMAPT_PASS");
	port_tls = getenv("IMAPT_PORT") ? atoi(getenv("IMAPT_PORT")) : 0;
	port_plain = getenv("IMAPT_PORT_PLAIN") ? atoi(getenv("IMAPT_PORT_PLAIN")) : 0;
	if (dovecot_conf == NULL || dovecot_log == NULL || user == NULL || pass == NULL ||
	    port_tls == 0 || port_plain == 0) {
		fprintf(stderr, "test_imap: IMAPT_* environment incomplete\n");
		return 1;
	}
	/* A server that dies mid-session must not kill us (reliability.md §0.3). */
	signal(SIGPIPE, SIG_IGN);
	log_init(LOG_TO_STDERR, "test_imap");
	return cmocka_run_group_tests_name("imap", tests, NULL, NULL);
}
