/*
 * test_frame.c — what crosses the sockets to the helper programs: the
 * account a fetcher starts with, the sender's requests and answers (round
 * trips, and refusals of what a compromised helper could send), and a real
 * ipcased-send carrying out a request against closed ports, or given up
 * when the daemon is asked to stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "frame.h"
#include "netreq.h"
#include "spawn.h"
#include "util.h"
#include "testutil.h"

static void
test_account_round_trip(void **state)
{
	struct conf_account	 a = { 0 }, b = { 0 };
	struct buf		 w = { 0 };
	struct reader		 r;

	(void)state;
	a.name = (char *)"shop";
	a.host = (char *)"imap.example.com";
	a.port = 993;
	a.tls = TLS_IMPLICIT;
	a.user = (char *)"seller@example.com";
	a.auth = AUTH_XOAUTH2;
	a.ca_file = NULL;
	a.sent_folder = (char *)"Sent Items";
	a.timeout_sec = 45;
	a.line = 7;
	frame_put_account(&w, &a);
	r = (struct reader){ (const unsigned char *)w.data, w.len, false };
	assert_true(frame_get_account(&r, &b));
	assert_string_equal(b.name, "shop");
	assert_string_equal(b.host, "imap.example.com");
	assert_int_equal(b.port, 993);
	assert_int_equal(b.tls, TLS_IMPLICIT);
	assert_string_equal(b.user, "seller@example.com");
	assert_int_equal(b.auth, AUTH_XOAUTH2);
	assert_null(b.ca_file);
	assert_string_equal(b.sent_folder, "Sent Items");
	assert_int_equal(b.timeout_sec, 45);
	conf_account_clear(&b);

	/* Cut anywhere: refused, nothing leaked. */
	for (size_t cut = 0; cut < w.len; cut++) {
		memset(&b, 0, sizeof(b));
		r = (struct reader){ (const unsigned char *)w.data, cut, false };
		assert_false(frame_get_account(&r, &b));
		conf_account_clear(&b);
	}
	buf_free(&w);
}

static void
test_smtp_job_round_trip(void **state)
{
	char			*rcpts[] = { (char *)"a@shop.example", (char *)"b@shop.example", NULL };
	struct smtp_job		 j = { 0 }, k = { 0 };
	struct send_result	 sr = { 250, false, "250 2.0.0 queued" }, sr2;
	struct buf		 w = { 0 };
	struct reader		 r;

	(void)state;
	j.url = (char *)"smtps://127.0.0.1:465/shop.example";
	j.user = (char *)"ipcased";
	j.password = (char *)"s3cret";
	j.from = (char *)"ipcased@shop.example";
	j.rcpts = rcpts;
	j.timeout_sec = 20;
	j.msg = (char *)"Subject: x\n\nbody\n";
	j.len = strlen(j.msg);
	smtp_job_put(&w, &j);
	r = (struct reader){ (const unsigned char *)w.data, w.len, false };
	assert_true(smtp_job_get(&r, &k));
	assert_string_equal(k.url, j.url);
	assert_null(k.ca_file);
	assert_string_equal(k.password, "s3cret");
	assert_string_equal(k.rcpts[1], "b@shop.example");
	assert_null(k.rcpts[2]);
	assert_int_equal(k.len, j.len);
	assert_memory_equal(k.msg, j.msg, j.len);
	smtp_job_clear(&k);
	buf_free(&w);

	smtp_result_put(&w, R_OK, &sr);
	r = (struct reader){ (const unsigned char *)w.data, w.len, false };
	assert_int_equal(smtp_result_get(&r, &sr2), R_OK);
	assert_int_equal(sr2.smtp_code, 250);
	assert_string_equal(sr2.reply, "250 2.0.0 queued");
	buf_free(&w);

	/* An answer code the daemon does not know is malformed. */
	smtp_result_put(&w, 99, &sr);
	r = (struct reader){ (const unsigned char *)w.data, w.len, false };
	assert_int_equal(smtp_result_get(&r, &sr2), -1);
	buf_free(&w);
}

/* A token answer as a compromised sender could write it. */
static bool
token_answer(int result, const char *err, const char *token, const char *refresh,
    struct token_reply *out)
{
	struct token_reply	 t = { 0 };
	struct buf		 w = { 0 };
	struct reader		 r;
	bool			 ok;

	t.result = result;
	snprintf(t.err, sizeof(t.err), "%s", err);
	t.access_token = token != NULL ? xstrdup(token) : NULL;
	t.expires_in = 3599;
	t.new_refresh_token = refresh != NULL ? xstrdup(refresh) : NULL;
	token_reply_put(&w, &t);
	token_reply_clear(&t);
	memset(out, 0, sizeof(*out));
	r = (struct reader){ (const unsigned char *)w.data, w.len, false };
	ok = token_reply_get(&r, out);
	buf_free(&w);
	return ok;
}

static void
test_token_reply_refusals(void **state)
{
	struct token_reply	t;

	(void)state;
	assert_true(token_answer(R_OK, "", "ya29.token", "1//new", &t));
	assert_string_equal(t.access_token, "ya29.token");
	assert_string_equal(t.new_refresh_token, "1//new");
	assert_int_equal(t.expires_in, 3599);
	token_reply_clear(&t);
	/* A token goes into an IMAP command line and a file line: no CR, LF or space. */
	assert_false(token_answer(R_OK, "", "ya29\r\nA1 LOGOUT", NULL, &t));
	token_reply_clear(&t);
	assert_false(token_answer(R_OK, "", "ya29 x", NULL, &t));
	token_reply_clear(&t);
	assert_false(token_answer(R_OK, "", "ok", "1//a\nb", &t));
	token_reply_clear(&t);
	assert_false(token_answer(R_OK, "", NULL, NULL, &t));
	token_reply_clear(&t);
	assert_false(token_answer(77, "", NULL, NULL, &t));
	token_reply_clear(&t);
	/* The provider's words reach the log printable. */
	assert_true(token_answer(R_FATAL, "invalid_grant\r\nInjected: yes\x1b[31m", NULL, NULL, &t));
	assert_null(strpbrk(t.err, "\r\n\x1b"));
	assert_non_null(strstr(t.err, "invalid_grant??Injected: yes?[31m"));
	token_reply_clear(&t);
}

#define TOKEN_TIMEOUT_SEC	5

/* A token renewal request to url, into req. */
static void
renewal_request(struct buf *req, const char *url)
{
	struct token_job	 j = { 0 };

	j.url = (char *)url;
	j.timeout_sec = TOKEN_TIMEOUT_SEC;
	j.refresh_token = (char *)"1//refresh";
	j.client_id = (char *)"client";
	token_job_put(req, &j);
}

/* One request through a real ipcased-send (IPCASED_LIBEXEC points at the build tree). */
static int
token_via_sender(const char *url, struct token_reply *t, char *err, size_t errlen)
{
	struct buf		 req = { 0 };
	struct reader		 r;
	char			*fields;
	int			 ret;

	renewal_request(&req, url);
	ret = netreq_call(F_TOKEN, &req, F_TOKEN_DONE, TOKEN_TIMEOUT_SEC, &fields, &r, err,
	    errlen);
	buf_free(&req);
	if (ret == 0) {
		memset(t, 0, sizeof(*t));
		assert_true(token_reply_get(&r, t));
		free(fields);
	}
	return ret;
}

static void
test_sender_closed_port(void **state)
{
	struct token_reply	t;
	char			err[256];

	(void)state;
	assert_int_equal(token_via_sender("http://127.0.0.1:1/token", &t, err, sizeof(err)), 0);
	assert_int_equal(t.result, R_RETRY);
	assert_non_null(strstr(t.err, "token endpoint"));
	assert_null(t.access_token);
	token_reply_clear(&t);
}

/* A sender started ahead of its first request (the daemon's round after new mail). */
static void
test_sender_started_ahead(void **state)
{
	struct netreq		 nr = NETREQ_INIT;
	struct token_reply	 t;
	struct buf		 req = { 0 };
	struct reader		 r;
	char			*fields, err[256];
	pid_t			 pid;
	int			 i;

	(void)state;
	assert_int_equal(netreq_start(&nr), 0);
	assert_true((pid = nr.pid) > 0);
	assert_int_equal(netreq_start(&nr), 0);		/* one is running: no second */
	assert_int_equal(nr.pid, pid);
	renewal_request(&req, "http://127.0.0.1:1/token");
	/* Two requests, both through the process started ahead. */
	for (i = 0; i < 2; i++) {
		assert_int_equal(netreq_ask(&nr, F_TOKEN, &req, F_TOKEN_DONE, TOKEN_TIMEOUT_SEC,
		    &fields, &r, err, sizeof(err)), 0);
		assert_int_equal(nr.pid, pid);
		assert_true(token_reply_get(&r, &t));
		assert_int_equal(t.result, R_RETRY);
		token_reply_clear(&t);
		free(fields);
	}
	buf_free(&req);
	netreq_end(&nr);
	assert_int_equal(nr.pid, -1);
	assert_int_equal(kill(pid, 0), -1);		/* reaped, not a zombie */

	/* Started and never asked: it ends with its socket, and is reaped. */
	assert_int_equal(netreq_start(&nr), 0);
	pid = nr.pid;
	netreq_end(&nr);
	assert_int_equal(kill(pid, 0), -1);
}

/*
 * A helper whose daemon is gone before it runs (its -p is not its parent)
 * leaves at once, though its socket is still open: it must not outlive
 * the daemon that posix_spawn started it for.
 */
static void
test_helper_orphan_leaves(void **state)
{
	char		*path;
	pid_t		 pid;
	int		 sv[2], status = -1, i;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	path = xasprintf("%s/ipcased-send", getenv("IPCASED_LIBEXEC"));
	if ((pid = fork()) == 0) {
		if (dup2(sv[1], HELPER_FD) == -1)
			_exit(127);
		execl(path, "ipcased-send", "-l", "stderr", "-v", "0", "-p", "1", (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	close(sv[1]);
	for (i = 0; i < 200 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(10000);
	if (i == 200) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	assert_true(i < 200);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(sv[0]);
	free(path);
}

static void
test_sender_given_up_on_stop(void **state)
{
	struct token_reply	t;
	sigset_t		block, pending;
	char			err[256];
	int64_t			start;
	int			sig;

	(void)state;
	/* As in the daemon: SIGTERM blocked (signalfd), then pending. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, NULL);
	raise(SIGTERM);
	start = now_mono_ms();
	assert_int_equal(token_via_sender("http://127.0.0.1:1/token", &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "stopping"));
	assert_true(now_mono_ms() - start < 2000);
	sigpending(&pending);
	assert_int_equal(sigismember(&pending, SIGTERM), 1);
	sigwait(&block, &sig);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_account_round_trip),
		cmocka_unit_test(test_smtp_job_round_trip),
		cmocka_unit_test(test_token_reply_refusals),
		cmocka_unit_test(test_sender_closed_port),
		cmocka_unit_test(test_sender_started_ahead),
		cmocka_unit_test(test_helper_orphan_leaves),
		cmocka_unit_test(test_sender_given_up_on_stop),
	};

	testutil_helpers_here();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
