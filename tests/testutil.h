/* testutil.h — set-up code the unit tests share: a scratch tree removed whole, files of a given mode, a test CA and server certificate, SQL queries, a child stopped and reaped. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

/*
 * Every test is built from its one .c file against the library (Makefile rule
 * tests/test_%: tests/test_%.c $(LIB)), so shared test code cannot be an object
 * of its own: these are static inline functions, compiled into each test that
 * includes this header.  Include it after <cmocka.h> (failures are cmocka
 * failures) and "util.h".
 */

#include <errno.h>
#include <stdarg.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <sqlite3.h>

static inline int
testutil_rm_entry(const char *path, const struct stat *sb, int flag,
    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes dir and everything below it, links not followed. */
static inline void
testutil_rm_tree(const char *dir)
{
	nftw(dir, testutil_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes text to path and gives it mode; the test fails if path cannot be opened. */
static inline void
testutil_write_file(const char *path, const char *text, mode_t mode)
{
	FILE	*fp;

	if ((fp = fopen(path, "w")) == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	fputs(text, fp);
	fclose(fp);
	chmod(path, mode);
}

/*
 * Makes a fresh test CA (dir/ca.pem, ca.key) and a certificate it signed for
 * localhost and 127.0.0.1 (dir/srv.pem, srv.key); the test fails if openssl does.
 */
static inline void
testutil_make_certs(const char *dir)
{
	char	*cmd;
	int	 rc;

	cmd = xasprintf("cd %s && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
	    "-nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca "
	    ">/dev/null 2>&1 && "
	    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	    "-keyout srv.key -out srv.csr -subj /CN=localhost >/dev/null 2>&1 && "
	    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > srv.ext && "
	    "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key "
	    "-CAcreateserial -out srv.pem -days 2 -extfile srv.ext "
	    ">/dev/null 2>&1", dir);
	rc = system(cmd);
	free(cmd);
	assert_int_equal(rc, 0);
}

/* Prepares the query fmt (sqlite3_vmprintf: %Q quotes); the test fails on an SQL error.  The caller steps and finalizes. */
static inline sqlite3_stmt *
testutil_query(sqlite3 *db, const char *fmt, va_list ap)
{
	sqlite3_stmt	*st;
	char		*q;

	q = sqlite3_vmprintf(fmt, ap);
	if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", q, sqlite3_errmsg(db));
	sqlite3_free(q);
	return st;
}

/* Stops a child this test started (SIGTERM) and reaps it; a pid <= 0 is a no-op. */
static inline void
testutil_stop_child(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

/*
 * The daemon's helper programs (ipcased-send, ipcased-fetch) for a test run
 * by hand from the top of the tree; tests/run.sh sets IPCASED_LIBEXEC itself.
 */
static inline void
testutil_helpers_here(void)
{
	if (getenv("IPCASED_LIBEXEC") == NULL)
		setenv("IPCASED_LIBEXEC", "daemon", 1);
}

#endif
