/* test_store.c — the database: schema creation, migrations, refusal of newer schemas, read-only use, statement cache. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "util.h"

static char	tmpdir[64];
static char	dbpath[128];

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_store.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(dbpath, sizeof(dbpath), "%s/state.db", tmpdir);
	return 0;
}

static int
teardown(void **state)
{
	char	cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int64_t
q_int(struct store *s, const char *sql)
{
	sqlite3_stmt	*st;
	int64_t		 v = -12345;

	assert_int_equal(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
test_migration_creates_v1(void **state)
{
	struct store	*s;
	sqlite3_stmt	*st;
	char		 err[256] = "";

	(void)state;
	s = store_open(dbpath, false, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(store_schema_version(), 1);
	assert_int_equal(q_int(s, "PRAGMA user_version"), 1);
	assert_int_equal(q_int(s, "PRAGMA foreign_keys"), 1);
	assert_int_equal(q_int(s, "PRAGMA synchronous"), 2);	/* FULL */
	assert_int_equal(q_int(s, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
	    " AND name IN ('folders', 'cases', 'case_asins', 'case_complaints',"
	    " 'messages', 'message_locations', 'tasks', 'outbox', 'events', 'notes')"), 10);
	assert_int_equal(sqlite3_prepare_v2(store_db(s), "PRAGMA journal_mode", -1,
	    &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	/* STRICT: a string in an INTEGER column is an error, not a conversion. */
	assert_int_not_equal(sqlite3_exec(store_db(s), "INSERT INTO folders VALUES"
	    " ('a', 'INBOX', 'abc', 1)", NULL, NULL, NULL), SQLITE_OK);
	/* Foreign keys: a task for no case is refused. */
	assert_int_not_equal(sqlite3_exec(store_db(s), "INSERT INTO tasks(case_id, task,"
	    " created, due) VALUES (99, 'review', 1, 2)", NULL, NULL, NULL), SQLITE_OK);
	store_close(s);
}

static void
test_reopen_is_idempotent(void **state)
{
	struct store	*s;
	uint32_t	 uv, last;
	char		 err[256] = "";

	(void)state;
	s = store_open(dbpath, false, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(store_folder_get(s, "shop", "INBOX", &uv, &last), 1);
	assert_int_equal(uv, 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_folder_set(s, "shop", "INBOX", 1700000000u, 42), 0);
	assert_int_equal(store_commit(s), 0);
	store_close(s);

	s = store_open(dbpath, false, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(q_int(s, "PRAGMA user_version"), 1);
	assert_int_equal(store_folder_get(s, "shop", "INBOX", &uv, &last), 0);
	assert_int_equal(uv, 1700000000u);
	assert_int_equal(last, 42);
	/* An update replaces, a rollback undoes. */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_folder_set(s, "shop", "INBOX", 1700000000u, 43), 0);
	store_rollback(s);
	assert_int_equal(store_folder_get(s, "shop", "INBOX", &uv, &last), 0);
	assert_int_equal(last, 42);
	store_close(s);
}

static void
test_newer_schema_refused(void **state)
{
	struct store	*s;
	char		 err[256] = "";

	(void)state;
	s = store_open(dbpath, false, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(sqlite3_exec(store_db(s), "PRAGMA user_version = 7",
	    NULL, NULL, NULL), SQLITE_OK);
	store_close(s);

	s = store_open(dbpath, false, err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "newer"));
	assert_non_null(strstr(err, "7"));
	err[0] = '\0';
	s = store_open(dbpath, true, err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "newer"));
}

static void
test_readonly(void **state)
{
	struct store	*s;
	char		 err[256] = "";

	(void)state;
	/* A missing database is a clear error, and is not created. */
	s = store_open(dbpath, true, err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, dbpath));
	assert_int_equal(access(dbpath, F_OK), -1);

	s = store_open(dbpath, false, err, sizeof(err));
	assert_non_null(s);
	store_close(s);
	s = store_open(dbpath, true, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(q_int(s, "SELECT count(*) FROM cases"), 0);
	assert_int_not_equal(sqlite3_exec(store_db(s), "INSERT INTO folders VALUES"
	    " ('a', 'INBOX', 1, 1)", NULL, NULL, NULL), SQLITE_OK);
	store_close(s);
}

static void
test_stmt_cache(void **state)
{
	static const char sql[] = "SELECT value FROM json_each('[1,2,3]')";
	struct store	*s;
	sqlite3_stmt	*a, *b;
	char		 copy[sizeof(sql)], err[256] = "";

	(void)state;
	s = store_open(dbpath, false, err, sizeof(err));
	assert_non_null(s);
	a = store_stmt(s, sql);
	assert_int_equal(sqlite3_step(a), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(a, 0), 1);
	assert_int_equal(sqlite3_step(a), SQLITE_ROW);
	/* The same text at another address is the same statement, reset. */
	memcpy(copy, sql, sizeof(sql));
	b = store_stmt(s, copy);
	assert_ptr_equal(a, b);
	assert_int_equal(sqlite3_step(b), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(b, 0), 1);
	/* Bindings are cleared too. */
	a = store_stmt(s, "SELECT ?1 IS NULL");
	sqlite3_bind_int(a, 1, 5);
	assert_int_equal(sqlite3_step(a), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(a, 0), 0);
	a = store_stmt(s, "SELECT ?1 IS NULL");
	assert_int_equal(sqlite3_step(a), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(a, 0), 1);
	assert_ptr_not_equal(a, b);
	store_close(s);	/* must finalize every cached statement, or close fails (logged) */
}

static void
test_step_helpers(void **state)
{
	struct store	*s;
	sqlite3_stmt	*st;
	int64_t		 v = -1;
	char		 err[256] = "", *t;

	(void)state;
	s = store_open(dbpath, false, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(store_begin(s), 0);
	/* NULL text and a missing id bind NULL; text is copied. */
	st = store_stmt(s, "INSERT INTO events(case_id, at, what) VALUES (?1, ?2, ?3)");
	store_bind_id(st, 1, 0);
	sqlite3_bind_int64(st, 2, 7);
	{
		char	what[] = "first";

		store_bind_text(st, 3, what);
		what[0] = 'X';
		assert_int_equal(store_step_done(s, st, "add event"), 0);
	}
	st = store_stmt(s, "SELECT what, case_id FROM events WHERE at = 7");
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	t = store_column_dup(st, 0);
	assert_string_equal(t, "first");
	free(t);
	assert_null(store_column_dup(st, 1));
	sqlite3_reset(st);
	st = store_stmt(s, "INSERT INTO events(case_id, at, what) VALUES (?1, 8, 'x')");
	store_bind_text(st, 1, NULL);
	assert_int_equal(store_step_done(s, st, "add event"), 0);
	/* A constraint failure is an error, logged and -1; the statement is reset. */
	st = store_stmt(s, "INSERT INTO events(case_id, at, what) VALUES (?1, 9, 'x')");
	store_bind_id(st, 1, 99);
	assert_int_equal(store_step_done(s, st, "add event"), -1);
	/* 1 with the first column, 0 for no row, NULL out only tells whether. */
	st = store_stmt(s, "SELECT count(*) FROM events");
	assert_int_equal(store_step_int(s, st, &v, "count"), 1);
	assert_int_equal(v, 2);
	st = store_stmt(s, "SELECT at FROM events WHERE at > 100");
	v = -1;
	assert_int_equal(store_step_int(s, st, &v, "none"), 0);
	assert_int_equal(v, -1);
	st = store_stmt(s, "SELECT 1 FROM events WHERE at = 8");
	assert_int_equal(store_step_int(s, st, NULL, "exists"), 1);
	store_rollback(s);
	store_close(s);
}

static int	freed;

static void
count_free(void *p)
{
	freed++;
	free(p);
}

static void
test_cache_and_versions(void **state)
{
	struct store	*s, *other;
	uint64_t	 g;
	int64_t		 dv, dv2;
	char		 err[256] = "";

	(void)state;
	s = store_open(dbpath, false, err, sizeof(err));
	assert_non_null(s);
	other = store_open(dbpath, false, err, sizeof(err));
	assert_non_null(other);
	/* Our own changes and rollbacks move the generation. */
	g = store_generation(s);
	store_changed(s);
	assert_true(store_generation(s) != g);
	g = store_generation(s);
	assert_int_equal(store_begin(s), 0);
	store_rollback(s);
	assert_true(store_generation(s) != g);
	/* Another connection's commit moves the data version, ours does not. */
	assert_int_equal(store_data_version(s, &dv), 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_folder_set(s, "shop", "INBOX", 1, 2), 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(store_data_version(s, &dv2), 0);
	assert_int_equal(dv2, dv);
	assert_int_equal(store_begin(other), 0);
	assert_int_equal(store_folder_set(other, "shop", "INBOX", 1, 3), 0);
	assert_int_equal(store_commit(other), 0);
	assert_int_equal(store_data_version(s, &dv2), 0);
	assert_int_not_equal(dv2, dv);
	store_close(other);
	/* A cache is freed when replaced and when the store closes. */
	freed = 0;
	assert_null(store_cache(s));
	store_set_cache(s, xmalloc(8), count_free);
	assert_non_null(store_cache(s));
	store_set_cache(s, xmalloc(8), count_free);
	assert_int_equal(freed, 1);
	store_close(s);
	assert_int_equal(freed, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migration_creates_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_is_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stmt_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_step_helpers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_and_versions, setup, teardown),
	};

	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
