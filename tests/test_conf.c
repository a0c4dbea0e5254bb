/* test_conf.c — config loading: the sample loads clean, defaults, every error with its file:line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "util.h"

/* tests/conf, found from the test binary's own path (make check runs tests/test_conf). */
static char	*fixdir;

static char *
fixture(const char *name)
{
	return xasprintf("%s/%s", fixdir, name);
}

/* Loads path with stderr sent to a file; returns what was printed (malloc'd). */
static char *
load_capture(const char *path, struct conf **out)
{
	char	 tmpl[] = "/tmp/test_conf_err.XXXXXX";
	char	*text;
	int	 fd, saved;

	fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	*out = conf_load(path);
	fflush(stderr);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	close(fd);
	text = file_read(tmpl, 1 << 20, NULL);
	assert_non_null(text);
	unlink(tmpl);
	return text;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char *
temp_dir(void)
{
	char	tmpl[] = "/tmp/test_conf.XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	return xstrdup(tmpl);
}

static void
temp_dir_remove(char *dir)
{
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static char *
write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char	*path = xasprintf("%s/%s", dir, name);
	FILE	*f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static void
copy_file(const char *from, const char *dir, const char *name)
{
	char	*text = file_read(from, 1 << 20, NULL);

	assert_non_null(text);
	free(write_file(dir, name, text, 0644));
	free(text);
}

/*
 * Loads a fixture that must give exactly the lines in want (each without the
 * "path:" prefix, which is added) and that many errors.
 */
static void
expect_errors(const char *name, const char *const want[])
{
	struct conf	*conf;
	struct buf	 expected = { 0 };
	char		*path = fixture(name), *got;
	int		 n;

	buf_puts(&expected, "");
	for (n = 0; want[n] != NULL; n++)
		buf_printf(&expected, "%s:%s\n", path, want[n]);
	got = load_capture(path, &conf);
	assert_non_null(conf);
	assert_string_equal(got, expected.data);
	assert_int_equal(conf->nerrors, n);
	conf_free(conf);
	free(got);
	buf_free(&expected);
	free(path);
}

static void
test_sample_fixture(void **state)
{
	const struct conf_deadline *d;
	struct conf_account *a;
	struct conf	*conf;
	char		*path = fixture("sample.conf"), *err;

	(void)state;
	err = load_capture(path, &conf);
	assert_non_null(conf);
	assert_string_equal(err, "");
	assert_int_equal(conf->nerrors, 0);

	assert_string_equal(conf->state_path, "/var/lib/ipcased/state.db");
	assert_int_equal(conf->poll_interval, 300);
	assert_int_equal(conf->naccounts, 1);
	a = &conf->accounts[0];
	assert_string_equal(a->name, "shop");
	assert_string_equal(a->host, "imap.shop.example");
	assert_int_equal(a->port, 993);
	assert_int_equal(a->tls, TLS_IMPLICIT);
	assert_string_equal(a->user, "seller@shop.example");
	assert_int_equal(a->auth, AUTH_LOGIN);
	assert_string_equal(a->password_file, "imap.pass");
	assert_null(a->password);
	assert_null(a->oauth_token_url);
	assert_null(a->ca_file);
	assert_int_equal(strv_len(a->folders), 1);
	assert_string_equal(a->folders[0], "INBOX");
	assert_null(a->sent_folder);
	assert_int_equal(a->initial_scan_days, 0);
	assert_int_equal(a->timeout_sec, 30);
	assert_int_equal(strv_len(a->authserv_ids), 1);
	assert_string_equal(a->authserv_ids[0], "mx.shop.example");
	assert_true(a->line > 0);

	assert_string_equal(conf->smtp.url, "smtps://smtp.shop.example:465");
	assert_string_equal(conf->smtp.user, "ipcased@shop.example");
	assert_string_equal(conf->smtp.password_file, "smtp.pass");
	assert_null(conf->smtp.password);
	assert_string_equal(conf->smtp.from, "ipcased@shop.example");
	assert_int_equal(strv_len(conf->smtp.to), 1);
	assert_string_equal(conf->smtp.to[0], "ops@shop.example");
	assert_null(conf->smtp.counsel);
	assert_int_equal(conf->smtp.timeout_sec, 30);

	assert_int_equal(conf->ndeadlines, 12);
	assert_non_null(d = conf_deadline(conf, "review"));
	assert_int_equal(d->seconds, 86400);
	assert_int_equal(d->business_days, 0);
	assert_non_null(d = conf_deadline(conf, "follow_up_answer"));
	assert_int_equal(d->seconds, 0);
	assert_int_equal(d->business_days, 1);
	assert_int_equal(conf_deadline(conf, "prevent")->seconds, 14 * 86400);
	assert_null(conf_deadline(conf, "comply"));
	assert_null(conf_deadline(conf, "nonsense"));

	assert_int_equal(conf->reminders.nbefore, 3);
	assert_int_equal(conf->reminders.before[0], 72 * 3600);
	assert_int_equal(conf->reminders.before[1], 24 * 3600);
	assert_int_equal(conf->reminders.before[2], 2 * 3600);
	assert_int_equal(conf->reminders.overdue_every, 86400);
	assert_int_equal(conf->reminders.overdue_max, 3);
	assert_int_equal(conf->reminders.max_per_hour, 30);
	assert_int_equal(conf->reminders.quiet_start_min, 21 * 60);
	assert_int_equal(conf->reminders.quiet_end_min, 8 * 60);
	assert_int_equal(conf->reminders.digest_hour, 8);
	assert_string_equal(conf->reminders.timezone, "UTC");
	assert_int_equal(strv_len(conf->reminders.holidays), 2);
	assert_string_equal(conf->reminders.holidays[1], "2026-12-26");

	assert_int_equal(strv_len(conf->amazon_domains), 24);
	assert_string_equal(conf->amazon_domains[0], "amazon.com");
	assert_string_equal(conf->amazon_domains[23], "amazon.lu");

	assert_non_null(conf_section(conf, "smtp"));
	assert_null(conf_section(conf, "rules"));
	conf_free(conf);
	free(err);
	free(path);
}

/* The shipped sample itself, with a stand-in rules.conf next to it. */
static void
test_shipped_sample(void **state)
{
	const config_setting_t *rules;
	struct conf	*conf;
	char		*dir = temp_dir(), *sample, *rules_fix, *path, *err;

	(void)state;
	sample = xasprintf("%s/../../conf/ipcased.conf", fixdir);
	rules_fix = fixture("rules.conf");
	copy_file(sample, dir, "ipcased.conf");
	copy_file(rules_fix, dir, "rules.conf");
	path = xasprintf("%s/ipcased.conf", dir);
	err = load_capture(path, &conf);
	assert_non_null(conf);
	assert_string_equal(err, "");
	assert_int_equal(conf->nerrors, 0);
	assert_non_null(rules = conf_section(conf, "rules"));
	assert_true(config_setting_is_list(rules));
	assert_int_equal(config_setting_length(rules), 1);
	assert_string_equal(conf->dir, dir);
	conf_free(conf);
	free(err);
	free(path);
	free(rules_fix);
	free(sample);
	temp_dir_remove(dir);
}

/* conf/ipcased.conf in place, with the real conf/rules.conf once it exists. */
static void
test_shipped_sample_with_rules(void **state)
{
	struct conf	*conf;
	char		*path, *rules, *err;

	(void)state;
	rules = xasprintf("%s/../../conf/rules.conf", fixdir);
	if (access(rules, R_OK) != 0) {
		free(rules);
		skip();
	}
	path = xasprintf("%s/../../conf/ipcased.conf", fixdir);
	err = load_capture(path, &conf);
	assert_non_null(conf);
	assert_string_equal(err, "");
	assert_int_equal(conf->nerrors, 0);
	assert_non_null(conf_section(conf, "rules"));
	conf_free(conf);
	free(err);
	free(path);
	free(rules);
}

static void
test_minimal_defaults(void **state)
{
	struct conf_account *a;
	struct conf	*conf;
	char		*path = fixture("minimal.conf"), *err;

	(void)state;
	err = load_capture(path, &conf);
	assert_string_equal(err, "");
	assert_int_equal(conf->nerrors, 0);
	assert_string_equal(conf->state_path, "/var/lib/ipcased/state.db");
	assert_int_equal(conf->poll_interval, 300);
	a = &conf->accounts[0];
	assert_string_equal(a->name, "mail.box-1");
	assert_int_equal(a->tls, TLS_STARTTLS);
	assert_int_equal(a->port, 143);
	assert_int_equal(a->auth, AUTH_LOGIN);
	assert_int_equal(strv_len(a->folders), 1);
	assert_string_equal(a->folders[0], "INBOX");
	assert_non_null(a->authserv_ids);
	assert_int_equal(strv_len(a->authserv_ids), 0);
	assert_int_equal(a->timeout_sec, 30);
	assert_int_equal(a->initial_scan_days, 0);
	assert_null(conf->smtp.user);
	assert_int_equal(strv_len(conf->smtp.to), 1);
	assert_string_equal(conf->smtp.to[0], "ops@shop.example");
	assert_int_equal(conf->smtp.timeout_sec, 30);
	assert_int_equal(conf->ndeadlines, 12);
	assert_int_equal(conf_deadline(conf, "appeal")->seconds, 7 * 86400);
	assert_int_equal(conf_deadline(conf, "await_decision")->seconds, 14 * 86400);
	assert_int_equal(conf_deadline(conf, "follow_up_answer")->business_days, 1);
	assert_int_equal(conf->reminders.nbefore, 3);
	assert_int_equal(conf->reminders.before[0], 72 * 3600);
	assert_int_equal(conf->reminders.overdue_every, 86400);
	assert_int_equal(conf->reminders.quiet_start_min, 21 * 60);
	assert_int_equal(conf->reminders.quiet_end_min, 8 * 60);
	assert_int_equal(conf->reminders.digest_hour, 8);
	assert_string_equal(conf->reminders.timezone, "UTC");
	assert_int_equal(strv_len(conf->reminders.holidays), 0);
	assert_int_equal(strv_len(conf->amazon_domains), 24);
	assert_string_equal(conf->amazon_domains[1], "amazon.ca");
	conf_free(conf);
	free(err);
	free(path);
}

static void
test_state_directory(void **state)
{
	struct conf	*conf;
	char		*path = fixture("relstate.conf"), *err, *want;

	(void)state;
	unsetenv("STATE_DIRECTORY");
	err = load_capture(path, &conf);
	assert_string_equal(err, "");
	want = xasprintf("%s/db/state.db", conf->dir);
	assert_string_equal(conf->state_path, want);
	assert_true(conf->dir[0] == '/');
	free(want);
	assert_int_equal(conf->accounts[0].tls, TLS_NONE);
	assert_int_equal(conf->accounts[0].port, 143);
	conf_free(conf);
	free(err);

	setenv("STATE_DIRECTORY", "/var/lib/ipcased:/var/lib/other", 1);
	err = load_capture(path, &conf);
	unsetenv("STATE_DIRECTORY");
	assert_string_equal(err, "");
	assert_string_equal(conf->state_path, "/var/lib/ipcased/db/state.db");
	conf_free(conf);
	free(err);
	free(path);
}

static void
test_unknown_key(void **state)
{
	static const char *const want[] = {
		"6: accounts[0]: unknown setting \"prot\" (known: name, host, port, "
		    "tls, user, auth, password, password_file, oauth_token_url, "
		    "oauth_client_id, oauth_client_secret_file, "
		    "oauth_refresh_token_file, oauth_scope, ca_file, folders, sent_folder, "
		    "initial_scan_days, timeout, authserv_ids)",
		NULL
	};

	(void)state;
	expect_errors("unknown-key.conf", want);
}

static void
test_wrong_type(void **state)
{
	static const char *const want[] = {
		"2: poll_interval: must be an integer, not a string",
		NULL
	};

	(void)state;
	expect_errors("wrong-type.conf", want);
}

static void
test_int64(void **state)
{
	static const char *const want[] = {
		"4: accounts[0].port: 5000000000 is out of range (use 1 to 65535)",
		"5: accounts[0].timeout: 4294967326 is out of range (use 5 to 600)",
		NULL
	};

	(void)state;
	expect_errors("int64.conf", want);
}

static void
test_port_range(void **state)
{
	static const char *const want[] = {
		"4: accounts[0].port: 70000 is out of range (use 1 to 65535)",
		NULL
	};

	(void)state;
	expect_errors("port-range.conf", want);
}

static void
test_tls_none(void **state)
{
	static const char *const want[] = {
		"4: accounts[0].tls: \"none\" would send the password and the mail "
		    "in clear to \"imap.shop.example\"; it is allowed only to a "
		    "loopback host (127.0.0.1, ::1, localhost) (use tls = "
		    "\"implicit\" or \"starttls\")",
		NULL
	};

	(void)state;
	expect_errors("tls-none.conf", want);
}

static void
test_bad_duration(void **state)
{
	static const char *const want[] = {
		"5: tasks.appeal: bad deadline \"7x\" (write \"90s\", \"15m\", "
		    "\"24h\", \"3d\", \"2w\" up to 3650d, or \"2bd\" for business days)",
		"10: reminders.before[2]: bad duration \"1y\" (write \"90s\", "
		    "\"15m\", \"24h\", \"3d\" or \"2w\", at most 365d)",
		NULL
	};

	(void)state;
	expect_errors("bad-duration.conf", want);
}

static void
test_bad_timezone(void **state)
{
	static const char *const want[] = {
		"4: reminders.timezone: unknown time zone \"Europe/Atlantis\" (use "
		    "an IANA name like \"Europe/Berlin\" or \"America/New_York\"; see "
		    "/usr/share/zoneinfo)",
		NULL
	};

	(void)state;
	expect_errors("bad-timezone.conf", want);
}

static void
test_bad_quiet_hours(void **state)
{
	static const char *const want[] = {
		"5: reminders.quiet_hours: bad time range \"21:00-25:00\" (write "
		    "\"HH:MM-HH:MM\" in 24-hour time with different ends, e.g. "
		    "\"21:00-08:00\", or \"\" for none)",
		NULL
	};

	(void)state;
	expect_errors("bad-quiet.conf", want);
}

static void
test_duplicate_name(void **state)
{
	static const char *const want[] = {
		"5: accounts[2].name: \"shop\" is already the name of accounts[0] "
		    "(line 3) (names must be unique)",
		NULL
	};

	(void)state;
	expect_errors("dup-name.conf", want);
}

static void
test_missing_smtp_to(void **state)
{
	static const char *const want[] = {
		"3: smtp: missing setting \"to\" (add to = ...;)",
		NULL
	};

	(void)state;
	expect_errors("no-smtp-to.conf", want);
}

/* Every error is reported, not only the first. */
static void
test_many_errors(void **state)
{
	struct conf	*conf;
	char		*path = fixture("many-errors.conf"), *err, *first;
	size_t		 lines = 0;
	const char	*p;

	(void)state;
	err = load_capture(path, &conf);
	assert_int_equal(conf->nerrors, 40);
	for (p = err; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	assert_int_equal(lines, 40);
	first = xasprintf("%s:2: unknown setting \"pol_interval\" (known: state, "
	    "poll_interval, accounts, smtp, tasks, reminders, amazon_domains, "
	    "rules, rule_settings)\n", path);
	assert_memory_equal(err, first, strlen(first));
	assert_non_null(strstr(err, ":18: amazon_domains[2]: \"nodot\" is not a domain"));
	assert_non_null(strstr(err, ":17: reminders.holidays[0]: \"2026-02-29\" is not a date"));
	/* Amazon.DE is lower-cased and accepted; 2024-02-29 is a leap day. */
	assert_null(strstr(err, "Amazon.DE"));
	assert_null(strstr(err, "2024-02-29"));
	/* The password of accounts[1] is refused but never shown. */
	assert_null(strstr(err, "\"x\";"));
	free(first);
	conf_free(conf);
	free(err);
	free(path);
}

static void
test_include_error(void **state)
{
	struct conf	*conf;
	char		*path = fixture("include-error.conf"), *err, *want;

	(void)state;
	err = load_capture(path, &conf);
	assert_non_null(conf);
	want = xasprintf("%s/include-error-inc.conf:3: unknown setting "
	    "\"poll_intervall\" (known: state, poll_interval, accounts, smtp, "
	    "tasks, reminders, amazon_domains, rules, rule_settings)\n", fixdir);
	assert_string_equal(err, want);
	assert_int_equal(conf->nerrors, 1);
	assert_non_null(conf_section(conf, "rules"));
	conf_free(conf);
	free(want);
	free(err);
	free(path);
}

static void
test_parse_errors(void **state)
{
	struct conf	*conf;
	char		*path, *err, *want;

	(void)state;
	path = fixture("syntax.conf");
	err = load_capture(path, &conf);
	assert_null(conf);
	want = xasprintf("%s:3: syntax error\n", path);
	assert_string_equal(err, want);
	free(want);
	free(err);
	free(path);

	path = fixture("include-syntax.conf");
	err = load_capture(path, &conf);
	assert_null(conf);
	want = xasprintf("%s/include-syntax-inc.conf:3: syntax error\n", fixdir);
	assert_string_equal(err, want);
	free(want);
	free(err);
	free(path);

	path = fixture("does-not-exist.conf");
	err = load_capture(path, &conf);
	assert_null(conf);
	want = xasprintf("%s: cannot read the file: No such file or directory "
	    "(check the path and its permissions)\n", path);
	assert_string_equal(err, want);
	free(want);
	free(err);
	free(path);
}

static const char inline_conf[] =
    "# inline passwords\n"
    "accounts = (\n"
    "  { name = \"shop\"; host = \"imap.shop.example\"; user = \"u\";\n"
    "    password = \"s3cret-imap\"; }\n"
    ");\n"
    "smtp = { url = \"smtp://127.0.0.1:2525\"; from = \"a@shop.example\";\n"
    "  to = [ \"b@shop.example\" ]; user = \"ipcased\";\n"
    "  password = \"s3cret-smtp\"; };\n";

static void
test_inline_password(void **state)
{
	struct conf	*conf;
	char		*dir = temp_dir(), *path, *err, *want;

	(void)state;
	path = write_file(dir, "ipcased.conf", inline_conf, 0644);
	err = load_capture(path, &conf);
	want = xasprintf(
	    "%s:4: accounts[0].password: the file is readable by others (mode 644); "
	    "move the password into password_file or chmod 600 %s\n"
	    "%s:8: smtp.password: the file is readable by others (mode 644); "
	    "move the password into password_file or chmod 600 %s\n",
	    path, path, path, path);
	assert_string_equal(err, want);
	assert_int_equal(conf->nerrors, 2);
	assert_null(strstr(err, "s3cret"));
	conf_free(conf);
	free(want);
	free(err);

	assert_int_equal(chmod(path, 0640), 0);
	err = load_capture(path, &conf);
	assert_int_equal(conf->nerrors, 2);
	assert_non_null(strstr(err, "readable by its group (mode 640)"));
	conf_free(conf);
	free(err);

	assert_int_equal(chmod(path, 0600), 0);
	err = load_capture(path, &conf);
	assert_string_equal(err, "");
	assert_int_equal(conf->nerrors, 0);
	assert_string_equal(conf->accounts[0].password, "s3cret-imap");
	assert_null(conf->accounts[0].password_file);
	assert_string_equal(conf->smtp.password, "s3cret-smtp");
	assert_string_equal(conf->smtp.user, "ipcased");
	conf_free(conf);
	free(err);
	free(path);
	temp_dir_remove(dir);
}

/* An inline password in an @include'd file is judged by that file's mode. */
static void
test_inline_password_in_include(void **state)
{
	struct conf	*conf;
	char		*dir = temp_dir(), *path, *inc, *err;

	(void)state;
	path = write_file(dir, "main.conf",
	    "accounts = ( { name = \"a\"; host = \"localhost\"; tls = \"none\";\n"
	    "  user = \"u\"; password_file = \"p\"; } );\n"
	    "@include \"smtp.conf\"\n", 0644);
	inc = write_file(dir, "smtp.conf",
	    "smtp = { url = \"smtps://mail.example\"; from = \"a@b.example\";\n"
	    "  to = \"c@d.example\"; user = \"u\"; password = \"pw\"; };\n", 0600);
	err = load_capture(path, &conf);
	assert_string_equal(err, "");
	assert_int_equal(conf->nerrors, 0);
	assert_string_equal(conf->smtp.password, "pw");
	conf_free(conf);
	free(err);

	assert_int_equal(chmod(inc, 0604), 0);
	err = load_capture(path, &conf);
	assert_int_equal(conf->nerrors, 1);
	assert_non_null(strstr(err, "/smtp.conf:2: smtp.password: the file is "
	    "readable by others (mode 604)"));
	conf_free(conf);
	free(err);
	free(inc);
	free(path);
	temp_dir_remove(dir);
}

/* Small configs written on the fly: a valid base plus one variation. */
static struct conf *
load_variant(const char *accounts, const char *smtp, const char *extra, char **err)
{
	struct conf	*conf;
	char		*dir = temp_dir(), *text, *path;

	text = xasprintf("accounts = ( %s );\nsmtp = { %s };\n%s\n",
	    accounts ? accounts : "{ name = \"a\"; host = \"imap.example.com\"; "
	    "user = \"u\"; password_file = \"p\"; }",
	    smtp ? smtp : "url = \"smtps://mail.example.com\"; from = \"a@b.example\"; "
	    "to = \"c@d.example\";", extra ? extra : "");
	path = write_file(dir, "v.conf", text, 0644);
	*err = load_capture(path, &conf);
	assert_non_null(conf);
	free(path);
	free(text);
	temp_dir_remove(dir);
	return conf;
}

static int
variant_errors(const char *accounts, const char *smtp, const char *extra)
{
	struct conf	*conf;
	char		*err;
	int		 n;

	conf = load_variant(accounts, smtp, extra, &err);
	n = conf->nerrors;
	conf_free(conf);
	free(err);
	return n;
}

static void
test_addresses_and_urls(void **state)
{
	(void)state;
	assert_int_equal(variant_errors(NULL, NULL, NULL), 0);
	assert_int_equal(variant_errors(NULL, "url = \"smtp://[::1]:25\"; "
	    "from = \"a.b+c@d.example\"; to = [ \"x@y.example\", \"z@w.example\" ]; "
	    "counsel = \"l@law.example\";", NULL), 0);
	/* "<a@b.example>", "a@b@c.example", "a@nodot", "a@b.example " */
	assert_int_equal(variant_errors(NULL, "url = \"smtps://m.example\"; "
	    "from = \"<a@b.example>\"; to = [ \"a@b@c.example\", \"a@nodot\", "
	    "\"a@b.example \", \"@b.example\" ];", NULL), 5);
	assert_int_equal(variant_errors(NULL, "url = \"smtps://m.example\"; "
	    "from = \"a@b.example\"; to = [ ];", NULL), 1);
	/* Credentials in the URL, no host, a bad port, another scheme. */
	assert_int_equal(variant_errors(NULL, "url = \"smtps://u:p@m.example\"; "
	    "from = \"a@b.example\"; to = \"c@d.example\";", NULL), 1);
	assert_int_equal(variant_errors(NULL, "url = \"smtps://:465\"; "
	    "from = \"a@b.example\"; to = \"c@d.example\";", NULL), 1);
	assert_int_equal(variant_errors(NULL, "url = \"smtp://m.example:99999\"; "
	    "from = \"a@b.example\"; to = \"c@d.example\";", NULL), 1);
	assert_int_equal(variant_errors(NULL, "url = \"imaps://m.example\"; "
	    "from = \"a@b.example\"; to = \"c@d.example\";", NULL), 1);
	/* An SMTP password without a user, and a user without a password. */
	assert_int_equal(variant_errors(NULL, "url = \"smtps://m.example\"; "
	    "from = \"a@b.example\"; to = \"c@d.example\"; password_file = \"p\";",
	    NULL), 1);
	assert_int_equal(variant_errors(NULL, "url = \"smtps://m.example\"; "
	    "from = \"a@b.example\"; to = \"c@d.example\"; user = \"u\";", NULL), 1);
}

static void
test_auth(void **state)
{
	struct conf	*conf;
	char		*err;

	(void)state;
	conf = load_variant("{ name = \"g\"; host = \"imap.gmail.com\"; user = "
	    "\"me@gmail.com\"; auth = \"xoauth2\"; oauth_token_url = "
	    "\"https://oauth2.googleapis.com/token\"; oauth_client_id = \"id\"; "
	    "oauth_refresh_token_file = \"rt\"; folders = \"INBOX\"; "
	    "sent_folder = \"[Gmail]/Sent Mail\"; }", NULL, NULL, &err);
	assert_string_equal(err, "");
	assert_int_equal(conf->accounts[0].auth, AUTH_XOAUTH2);
	assert_string_equal(conf->accounts[0].oauth_client_id, "id");
	assert_null(conf->accounts[0].oauth_client_secret_file);
	assert_string_equal(conf->accounts[0].sent_folder, "[Gmail]/Sent Mail");
	conf_free(conf);
	free(err);

	/* http:// only to loopback. */
	assert_int_equal(variant_errors("{ name = \"g\"; host = \"localhost\"; "
	    "user = \"u\"; auth = \"xoauth2\"; oauth_token_url = "
	    "\"http://127.0.0.1:8080/token\"; oauth_client_id = \"id\"; "
	    "oauth_refresh_token_file = \"rt\"; }", NULL, NULL), 0);
	assert_int_equal(variant_errors("{ name = \"g\"; host = \"h.example\"; "
	    "user = \"u\"; auth = \"xoauth2\"; oauth_token_url = "
	    "\"http://login.example/token\"; oauth_client_id = \"id\"; "
	    "oauth_refresh_token_file = \"rt\"; }", NULL, NULL), 1);
	/* Both password and password_file; an unknown mechanism. */
	assert_int_equal(variant_errors("{ name = \"a\"; host = \"h.example\"; "
	    "user = \"u\"; password_file = \"p\"; password = \"x\"; }", NULL, NULL), 2);
	assert_int_equal(variant_errors("{ name = \"a\"; host = \"h.example\"; "
	    "user = \"u\"; auth = \"cram-md5\"; password_file = \"p\"; }", NULL, NULL), 1);
	/* No user; no accounts at all. */
	assert_int_equal(variant_errors("{ name = \"a\"; host = \"h.example\"; "
	    "password_file = \"p\"; }", NULL, NULL), 1);
	assert_int_equal(variant_errors("", NULL, NULL), 1);
}

static void
test_reminders_and_tasks(void **state)
{
	struct conf	*conf;
	char		*err;

	(void)state;
	conf = load_variant(NULL, NULL, "reminders = { before = [ \"2h\", \"3d\", "
	    "\"30m\" ]; quiet_hours = \"\"; digest_hour = -1; timezone = "
	    "\"Europe/Berlin\"; holidays = \"2024-02-29\"; overdue_every = \"12h\"; "
	    "overdue_max = 0; max_per_hour = 5; };\n"
	    "tasks = { comply = \"30d\"; follow_up_answer = \"2bd\"; appeal = \"2w\"; };\n"
	    "amazon_domains = [ \"Amazon.DE\", \"sell.amazon.com\" ];\n"
	    "state = \"/srv/ipcased.db\"; poll_interval = 10;", &err);
	assert_string_equal(err, "");
	assert_int_equal(conf->reminders.nbefore, 3);
	assert_int_equal(conf->reminders.before[0], 3 * 86400);
	assert_int_equal(conf->reminders.before[1], 2 * 3600);
	assert_int_equal(conf->reminders.before[2], 30 * 60);
	assert_int_equal(conf->reminders.quiet_start_min, -1);
	assert_int_equal(conf->reminders.quiet_end_min, -1);
	assert_int_equal(conf->reminders.digest_hour, -1);
	assert_string_equal(conf->reminders.timezone, "Europe/Berlin");
	assert_int_equal(strv_len(conf->reminders.holidays), 1);
	assert_int_equal(conf->reminders.overdue_every, 12 * 3600);
	assert_int_equal(conf->reminders.overdue_max, 0);
	assert_int_equal(conf->reminders.max_per_hour, 5);
	assert_int_equal(conf->ndeadlines, 13);
	assert_int_equal(conf_deadline(conf, "comply")->seconds, 30 * 86400);
	assert_int_equal(conf_deadline(conf, "follow_up_answer")->business_days, 2);
	assert_int_equal(conf_deadline(conf, "appeal")->seconds, 14 * 86400);
	assert_int_equal(conf_deadline(conf, "review")->seconds, 86400);
	assert_int_equal(strv_len(conf->amazon_domains), 2);
	assert_string_equal(conf->amazon_domains[0], "amazon.de");
	assert_string_equal(conf->state_path, "/srv/ipcased.db");
	assert_int_equal(conf->poll_interval, 10);
	conf_free(conf);
	free(err);

	assert_int_equal(variant_errors(NULL, NULL, "poll_interval = 9;"), 1);
	assert_int_equal(variant_errors(NULL, NULL, "reminders = { quiet_hours = "
	    "\"08:00-08:00\"; };"), 1);
	assert_int_equal(variant_errors(NULL, NULL, "reminders = { quiet_hours = "
	    "\"8:00-17:00\"; };"), 1);
	assert_int_equal(variant_errors(NULL, NULL, "reminders = { timezone = \"\"; };"), 1);
	assert_int_equal(variant_errors(NULL, NULL, "reminders = { holidays = "
	    "[ \"2026-13-01\", \"2026-04-31\", \"26-01-01\" ]; };"), 3);
	assert_int_equal(variant_errors(NULL, NULL, "tasks = { legal = \"0d\"; "
	    "resume = \"0bd\"; prevent = \"-1d\"; evidence = \"bd\"; };"), 4);
	assert_int_equal(variant_errors(NULL, NULL, "tasks = \"24h\";"), 1);
	assert_int_equal(variant_errors(NULL, NULL, "amazon_domains = [];"), 1);
	assert_int_equal(variant_errors(NULL, NULL, "accounts2 = 1;"), 1);
}

/* The helpers rules.c uses on its own section. */
static void
test_getters(void **state)
{
	static const char *const known[] = {
		"name", "enabled", "weight", "words", "one", "big", "flag", "mixed",
		"frac", NULL
	};
	const config_setting_t *rule;
	struct conf	*conf;
	char		*path = fixture("getters.conf"), *err, *s, **v;
	bool		 b;
	int		 n, before;

	(void)state;
	err = load_capture(path, &conf);
	assert_int_equal(conf->nerrors, 0);
	free(err);
	rule = config_setting_get_elem(conf_section(conf, "rules"), 0);
	assert_non_null(rule);

	assert_int_equal(conf_check_keys(conf, rule, known), -1);
	assert_int_equal(conf->nerrors, 1);
	assert_int_equal(conf_get_string(conf, rule, "name", true, &s), 0);
	assert_string_equal(s, "r1");
	free(s);
	assert_int_equal(conf_get_bool(conf, rule, "enabled", true, &b), 0);
	assert_true(b);
	n = 0;
	assert_int_equal(conf_get_int(conf, rule, "weight", true, 0, 10, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(conf_get_strings(conf, rule, "words", true, &v), 0);
	assert_int_equal(strv_len(v), 2);
	assert_string_equal(v[1], "b");
	strv_free(v);
	assert_int_equal(conf_get_strings(conf, rule, "one", true, &v), 0);
	assert_int_equal(strv_len(v), 1);
	assert_string_equal(v[0], "c");
	strv_free(v);
	before = conf->nerrors;
	/* Absent and optional: 1, nothing reported, nothing touched. */
	n = 42;
	assert_int_equal(conf_get_int(conf, rule, "absent", false, 0, 10, &n), 1);
	assert_int_equal(n, 42);
	assert_int_equal(conf_get_string(conf, rule, "absent", false, &s), 1);
	assert_null(s);
	assert_int_equal(conf->nerrors, before);
	/* Errors: each -1 and one message more. */
	assert_int_equal(conf_get_string(conf, rule, "absent", true, &s), -1);
	assert_int_equal(conf_get_int(conf, rule, "big", true, 0, 10, &n), -1);
	assert_int_equal(n, 42);
	assert_int_equal(conf_get_int(conf, rule, "weight", true, 6, 10, &n), -1);
	assert_int_equal(conf_get_bool(conf, rule, "flag", true, &b), -1);
	assert_int_equal(conf_get_strings(conf, rule, "mixed", true, &v), -1);
	assert_null(v);
	assert_int_equal(conf_get_int(conf, rule, "frac", true, 0, 10, &n), -1);
	assert_int_equal(conf->nerrors, before + 6);
	conf_free(conf);
	free(path);
}

static void
test_path_and_strv(void **state)
{
	struct conf	*conf;
	char		*path = fixture("minimal.conf"), *err, *p, *want;

	(void)state;
	err = load_capture(path, &conf);
	p = conf_path(conf, "imap.pass");
	want = xasprintf("%s/imap.pass", conf->dir);
	assert_string_equal(p, want);
	free(p);
	free(want);
	p = conf_path(conf, "/etc/ipcased/ca.pem");
	assert_string_equal(p, "/etc/ipcased/ca.pem");
	free(p);
	assert_null(conf_path(conf, NULL));
	assert_int_equal(strv_len(NULL), 0);
	strv_free(NULL);
	conf_free(conf);
	conf_free(NULL);
	free(err);
	free(path);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sample_fixture),
		cmocka_unit_test(test_shipped_sample),
		cmocka_unit_test(test_shipped_sample_with_rules),
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_state_directory),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_int64),
		cmocka_unit_test(test_port_range),
		cmocka_unit_test(test_tls_none),
		cmocka_unit_test(test_bad_duration),
		cmocka_unit_test(test_bad_timezone),
		cmocka_unit_test(test_bad_quiet_hours),
		cmocka_unit_test(test_duplicate_name),
		cmocka_unit_test(test_missing_smtp_to),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_include_error),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_inline_password),
		cmocka_unit_test(test_inline_password_in_include),
		cmocka_unit_test(test_addresses_and_urls),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_reminders_and_tasks),
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_path_and_strv),
	};
	const char	*slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
	char		*probe;
	int		 failed;

	/* Beside the binary (make check), else from the repository root. */
	if (slash != NULL)
		fixdir = xasprintf("%.*s/conf", (int)(slash - argv[0]), argv[0]);
	else
		fixdir = xstrdup("tests/conf");
	probe = xasprintf("%s/sample.conf", fixdir);
	if (access(probe, R_OK) != 0) {
		free(fixdir);
		fixdir = xstrdup("tests/conf");
	}
	free(probe);
	unsetenv("STATE_DIRECTORY");
	failed = cmocka_run_group_tests_name("conf", tests, NULL, NULL);
	free(fixdir);
	return failed;
}
