/* store.c — the sqlite3 database: schema, migrations, transactions, folder progress and a prepared-statement cache. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "log.h"
#include "util.h"

#define STORE_VERSION		1
#define STORE_BUSY_MS		10000	/* the daemon and ipcase may meet; wait rather than fail */

struct stmt_entry {
	const char	*key;		/* the caller's pointer, compared first */
	char		*sql;		/* owned copy, compared when the pointer differs */
	sqlite3_stmt	*stmt;
};

struct store {
	sqlite3			*db;
	char			*path;
	bool			 readonly;
	struct stmt_entry	*stmts;
	size_t			 nstmts;
	size_t			 capstmts;
	uint64_t		 generation;	/* store_changed() and rollbacks */
	void			*cache;
	void			(*free_cache)(void *);
};

/*
 * Schema version 1.  Every table is STRICT so a wrong type is an error, not
 * a silent conversion.  Cases are never deleted (they are evidence), so the
 * foreign keys only guard against rows pointing at nothing.  The outbox
 * status words belong to schedule.c (pending, sent, held, cancelled), so
 * they are not constrained here.
 */
static const char schema_v1[] =
	"CREATE TABLE folders ("
	" account TEXT NOT NULL, folder TEXT NOT NULL,"
	" uidvalidity INTEGER NOT NULL, last_uid INTEGER NOT NULL,"
	" PRIMARY KEY(account, folder)) STRICT;"
	"CREATE TABLE cases ("
	" id INTEGER PRIMARY KEY,"
	" case_key TEXT UNIQUE NOT NULL,"
	" kind TEXT NOT NULL,"
	" direction TEXT NOT NULL DEFAULT 'inbound'"
	"  CHECK (direction IN ('inbound', 'outbound')),"
	" status TEXT NOT NULL DEFAULT 'open'"
	"  CHECK (status IN ('open', 'retracted', 'reinstated',"
	"   'appeal_accepted', 'upheld', 'legal_decision', 'closed')),"
	" complaint_id TEXT, marketplace TEXT, infringement_type TEXT,"
	" rights_owner_name TEXT, rights_owner_email TEXT, deadline_days INTEGER,"
	" urgency TEXT NOT NULL DEFAULT 'normal'"
	"  CHECK (urgency IN ('normal', 'high')),"
	" token TEXT NOT NULL,"
	" opened INTEGER NOT NULL, updated INTEGER NOT NULL,"
	" closed INTEGER, close_reason TEXT,"
	" snoozed_until INTEGER, owner_flags TEXT) STRICT;"
	"CREATE INDEX cases_owner ON cases(rights_owner_email);"
	"CREATE INDEX cases_status ON cases(status);"
	"CREATE TABLE case_asins ("
	" case_id INTEGER NOT NULL REFERENCES cases(id),"
	" asin TEXT NOT NULL,"
	" PRIMARY KEY(case_id, asin)) STRICT;"
	"CREATE INDEX case_asins_asin ON case_asins(asin);"
	"CREATE TABLE case_complaints ("
	" case_id INTEGER NOT NULL REFERENCES cases(id),"
	" complaint_id TEXT NOT NULL,"
	" PRIMARY KEY(case_id, complaint_id)) STRICT;"
	"CREATE INDEX case_complaints_id ON case_complaints(complaint_id);"
	"CREATE TABLE messages ("
	" id INTEGER PRIMARY KEY,"
	" dedupe_key TEXT UNIQUE NOT NULL,"
	" message_id TEXT,"
	" case_id INTEGER REFERENCES cases(id),"
	" role TEXT NOT NULL,"
	" kind TEXT NOT NULL,"
	" from_addr TEXT, subject TEXT, date INTEGER,"
	" received INTEGER NOT NULL,"
	" sha256 TEXT NOT NULL,"
	" raw BLOB) STRICT;"
	"CREATE INDEX messages_message_id ON messages(message_id);"
	"CREATE INDEX messages_case ON messages(case_id);"
	"CREATE TABLE message_locations ("
	" message_id INTEGER NOT NULL REFERENCES messages(id),"
	" account TEXT NOT NULL, folder TEXT NOT NULL,"
	" uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,"
	" PRIMARY KEY(account, folder, uidvalidity, uid)) STRICT;"
	"CREATE INDEX message_locations_message ON message_locations(message_id);"
	"CREATE TABLE tasks ("
	" id INTEGER PRIMARY KEY,"
	" case_id INTEGER NOT NULL REFERENCES cases(id),"
	" task TEXT NOT NULL,"
	" status TEXT NOT NULL DEFAULT 'open'"
	"  CHECK (status IN ('open', 'done', 'cancelled')),"
	" created INTEGER NOT NULL, due INTEGER NOT NULL, done_at INTEGER,"
	" UNIQUE(case_id, task)) STRICT;"
	"CREATE INDEX tasks_open ON tasks(status, due);"
	"CREATE TABLE outbox ("
	" id INTEGER PRIMARY KEY,"
	" kind TEXT NOT NULL CHECK (kind IN ('task', 'alert', 'digest')),"
	" case_id INTEGER REFERENCES cases(id),"
	" task TEXT, threshold TEXT,"
	" message_id TEXT UNIQUE NOT NULL,"
	" created INTEGER NOT NULL,"
	" status TEXT NOT NULL DEFAULT 'pending',"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_attempt INTEGER NOT NULL,"
	" sent_at INTEGER, last_reply TEXT, alert_text TEXT,"
	" UNIQUE(kind, case_id, task, threshold)) STRICT;"
	"CREATE INDEX outbox_pending ON outbox(status, next_attempt);"
	"CREATE TABLE events ("
	" id INTEGER PRIMARY KEY,"
	" case_id INTEGER REFERENCES cases(id),"
	" at INTEGER NOT NULL,"
	" what TEXT NOT NULL) STRICT;"
	"CREATE INDEX events_case ON events(case_id);"
	"CREATE TABLE notes ("
	" id INTEGER PRIMARY KEY,"
	" case_id INTEGER NOT NULL REFERENCES cases(id),"
	" at INTEGER NOT NULL,"
	" text TEXT NOT NULL) STRICT;"
	"CREATE INDEX notes_case ON notes(case_id);";

int
store_schema_version(void)
{
	return STORE_VERSION;
}

/* Runs SQL without parameters (only our own constant text).  0 or -1 with err set. */
static int
exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char	*msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s", msg != NULL ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* A pragma that answers one text row (journal_mode); the answer is copied into out. */
static int
pragma_text(sqlite3 *db, const char *sql, char *out, size_t outlen, char *err, size_t errlen)
{
	sqlite3_stmt	*st = NULL;
	const unsigned char *t;
	int		 rc, ret = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", sql, sqlite3_errmsg(db));
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		snprintf(err, errlen, "%s: %s", sql, sqlite3_errmsg(db));
		goto out;
	}
	t = sqlite3_column_text(st, 0);
	snprintf(out, outlen, "%s", t != NULL ? (const char *)t : "");
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

static int
user_version(sqlite3 *db, int *version, char *err, size_t errlen)
{
	char	buf[32];

	if (pragma_text(db, "PRAGMA user_version", buf, sizeof(buf), err, errlen) == -1)
		return -1;
	*version = atoi(buf);
	return 0;
}

/*
 * Brings the schema to STORE_VERSION in one IMMEDIATE transaction, so two
 * processes starting together cannot both create the tables.
 */
static int
migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	char	sql[64];
	int	version;

	if (exec_sql(db, "BEGIN IMMEDIATE", err, errlen) == -1)
		return -1;
	if (user_version(db, &version, err, errlen) == -1)
		goto fail;
	if (version > STORE_VERSION) {
		snprintf(err, errlen, "%s: database schema %d is newer than this "
		    "program's %d (was it written by a newer ipcased? upgrade ipcased)",
		    path, version, STORE_VERSION);
		goto fail;
	}
	if (version < 1) {
		if (exec_sql(db, schema_v1, err, errlen) == -1)
			goto fail;
		/* PRAGMA takes no bound parameters; the value is our own integer. */
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", 1);
		if (exec_sql(db, sql, err, errlen) == -1)
			goto fail;
		log_info("%s: created schema version %d", path, 1);
	}
	if (exec_sql(db, "COMMIT", err, errlen) == -1)
		goto fail;
	return 0;
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

struct store *
store_open(const char *path, bool readonly, char *err, size_t errlen)
{
	struct store	*s = NULL;
	struct stat	 sb;
	sqlite3		*db = NULL;
	char		 mode[32];
	int		 flags, rc, version;

	if (readonly && stat(path, &sb) == -1) {
		snprintf(err, errlen, "%s: %s (no database yet: has ipcased run?)",
		    path, strerror(errno));
		return NULL;
	}
	flags = SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOMUTEX;
	flags |= readonly ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if ((rc = sqlite3_open_v2(path, &db, flags, NULL)) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path,
		    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(db, STORE_BUSY_MS);
	/* Mail is hostile input: no schema tricks, no "double-quoted" strings. */
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	/*
	 * The WAL is durable as it stands (synchronous = FULL) and the next
	 * open, or the automatic checkpoint, folds it in: a run with --once, or
	 * an ipcase command, need not wait for it at exit.
	 */
	sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	if (exec_sql(db, "PRAGMA trusted_schema = OFF", err, errlen) == -1 ||
	    exec_sql(db, "PRAGMA foreign_keys = ON", err, errlen) == -1)
		goto fail_msg;
	if (!readonly) {
		if (pragma_text(db, "PRAGMA journal_mode = WAL", mode,
		    sizeof(mode), err, errlen) == -1)
			goto fail_msg;
		if (strcmp(mode, "wal") != 0) {
			snprintf(err, errlen, "journal_mode is \"%s\", not wal "
			    "(is the database on a network file system?)", mode);
			goto fail_msg;
		}
		/* A notice acknowledged to nobody must still survive power loss. */
		if (exec_sql(db, "PRAGMA synchronous = FULL", err, errlen) == -1)
			goto fail_msg;
		/*
		 * 1 MB of page cache, not sqlite's 2: a scan writes new pages
		 * and reads few back (the kernel caches the file anyway); the
		 * daemon's peak memory fell by 0.9 MB at no cost measured.
		 */
		if (exec_sql(db, "PRAGMA cache_size = -1024", err, errlen) == -1)
			goto fail_msg;
		if (migrate(db, path, err, errlen) == -1)
			goto fail;
	} else {
		if (user_version(db, &version, err, errlen) == -1)
			goto fail_msg;
		if (version > STORE_VERSION) {
			snprintf(err, errlen, "%s: database schema %d is newer "
			    "than this program's %d (upgrade ipcase)", path,
			    version, STORE_VERSION);
			goto fail;
		}
		if (version < 1) {
			snprintf(err, errlen, "%s: not an ipcased database (no "
			    "schema; has ipcased run?)", path);
			goto fail;
		}
	}
	s = xcalloc(1, sizeof(*s));
	s->db = db;
	s->path = xstrdup(path);
	s->readonly = readonly;
	return s;
fail_msg:
	/* err already says what failed; add the file. */
	{
		char	tmp[512];

		snprintf(tmp, sizeof(tmp), "%s", err);
		snprintf(err, errlen, "%s: %s", path, tmp);
	}
fail:
	sqlite3_close(db);
	return NULL;
}

void
store_close(struct store *s)
{
	size_t	i;
	int	rc;

	if (s == NULL)
		return;
	if (s->cache != NULL && s->free_cache != NULL)
		s->free_cache(s->cache);
	for (i = 0; i < s->nstmts; i++) {
		sqlite3_finalize(s->stmts[i].stmt);
		free(s->stmts[i].sql);
	}
	free(s->stmts);
	if (!s->readonly && sqlite3_get_autocommit(s->db) == 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	if ((rc = sqlite3_close(s->db)) != SQLITE_OK)
		log_warnx("%s: close: %s", s->path, sqlite3_errstr(rc));
	free(s->path);
	free(s);
}

struct sqlite3 *
store_db(struct store *s)
{
	return s->db;
}

/*
 * The cache is searched by pointer first (callers pass string literals, so
 * this is the usual hit), then by text.  A failure to prepare is a
 * programming error in our own SQL, hence fatal.
 */
sqlite3_stmt *
store_stmt(struct store *s, const char *sql)
{
	struct stmt_entry *e;
	sqlite3_stmt	*st;
	size_t		 i;

	for (i = 0; i < s->nstmts; i++)
		if (s->stmts[i].key == sql)
			goto found;
	for (i = 0; i < s->nstmts; i++)
		if (strcmp(s->stmts[i].sql, sql) == 0)
			goto found;
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &st, NULL) != SQLITE_OK)
		fatalx("%s: prepare \"%s\": %s", s->path, sql,
		    sqlite3_errmsg(s->db));
	if (s->nstmts == s->capstmts) {
		s->capstmts = s->capstmts ? s->capstmts * 2 : 32;
		s->stmts = xreallocarray(s->stmts, s->capstmts,
		    sizeof(*s->stmts));
	}
	e = &s->stmts[s->nstmts++];
	e->key = sql;
	e->sql = xstrdup(sql);
	e->stmt = st;
	return st;
found:
	st = s->stmts[i].stmt;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

static int
exec_tx(struct store *s, const char *sql)
{
	char	err[256];

	if (exec_sql(s->db, sql, err, sizeof(err)) == -1) {
		log_warnx("%s: %s: %s", s->path, sql, err);
		return -1;
	}
	return 0;
}

int
store_begin(struct store *s)
{
	return exec_tx(s, "BEGIN IMMEDIATE");
}

int
store_commit(struct store *s)
{
	return exec_tx(s, "COMMIT");
}

void
store_rollback(struct store *s)
{
	/* A cache may have seen rows the rollback takes away. */
	s->generation++;
	if (sqlite3_get_autocommit(s->db) == 0)
		exec_tx(s, "ROLLBACK");
}

void
store_db_warn(struct store *s, const char *what)
{
	log_warnx("store: %s: %s", what, sqlite3_errmsg(s->db));
}

int
store_step_done(struct store *s, sqlite3_stmt *st, const char *what)
{
	int	rc = sqlite3_step(st), ret = 0;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		store_db_warn(s, what);
		ret = -1;
	}
	sqlite3_reset(st);
	return ret;
}

int
store_step_int(struct store *s, sqlite3_stmt *st, int64_t *out, const char *what)
{
	int	rc = sqlite3_step(st), ret;

	if (rc == SQLITE_ROW) {
		if (out != NULL)
			*out = sqlite3_column_int64(st, 0);
		ret = 1;
	} else if (rc == SQLITE_DONE)
		ret = 0;
	else {
		store_db_warn(s, what);
		ret = -1;
	}
	sqlite3_reset(st);
	return ret;
}

char *
store_column_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t != NULL ? xstrdup((const char *)t) : NULL;
}

void
store_bind_text(sqlite3_stmt *st, int idx, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(st, idx, text, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, idx);
}

void
store_bind_id(sqlite3_stmt *st, int idx, int64_t id)
{
	if (id > 0)
		sqlite3_bind_int64(st, idx, id);
	else
		sqlite3_bind_null(st, idx);
}

uint64_t
store_generation(struct store *s)
{
	return s->generation;
}

void
store_changed(struct store *s)
{
	s->generation++;
}

int
store_data_version(struct store *s, int64_t *version)
{
	sqlite3_stmt	*st = store_stmt(s, "PRAGMA data_version");

	return store_step_int(s, st, version, "data version") == 1 ? 0 : -1;
}

void *
store_cache(struct store *s)
{
	return s->cache;
}

void
store_set_cache(struct store *s, void *cache, void (*free_cache)(void *))
{
	if (s->cache != NULL && s->free_cache != NULL && s->cache != cache)
		s->free_cache(s->cache);
	s->cache = cache;
	s->free_cache = free_cache;
}

int
store_folder_get(struct store *s, const char *account, const char *folder,
    uint32_t *uidvalidity, uint32_t *last_uid)
{
	sqlite3_stmt	*st;
	int		 rc, ret = -1;

	*uidvalidity = 0;
	*last_uid = 0;
	st = store_stmt(s, "SELECT uidvalidity, last_uid FROM folders"
	    " WHERE account = ?1 AND folder = ?2");
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, folder, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*uidvalidity = (uint32_t)sqlite3_column_int64(st, 0);
		*last_uid = (uint32_t)sqlite3_column_int64(st, 1);
		ret = 0;
	} else if (rc == SQLITE_DONE)
		ret = 1;
	else
		log_warnx("%s: folder progress: %s", s->path,
		    sqlite3_errmsg(s->db));
	sqlite3_reset(st);
	return ret;
}

int
store_folder_set(struct store *s, const char *account, const char *folder,
    uint32_t uidvalidity, uint32_t last_uid)
{
	sqlite3_stmt	*st;
	int		 ret = 0;

	st = store_stmt(s, "INSERT INTO folders(account, folder, uidvalidity,"
	    " last_uid) VALUES (?1, ?2, ?3, ?4)"
	    " ON CONFLICT(account, folder) DO UPDATE SET"
	    " uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid");
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, folder, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, uidvalidity);
	sqlite3_bind_int64(st, 4, last_uid);
	if (sqlite3_step(st) != SQLITE_DONE) {
		log_warnx("%s: folder progress: %s", s->path,
		    sqlite3_errmsg(s->db));
		ret = -1;
	}
	sqlite3_reset(st);
	return ret;
}
