/* store.h — sqlite3: schema, migrations, and every read and write of state. */
#ifndef IPCASED_STORE_H
#define IPCASED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/*
 * Opens (creating and migrating unless readonly) the database at path: WAL,
 * synchronous=FULL, foreign keys, defensive mode, a busy timeout.  A schema
 * newer than this program is refused.  Returns NULL with a message in err.
 */
struct store	*store_open(const char *path, bool readonly, char *err, size_t errlen);
void		 store_close(struct store *);		/* NULL is a no-op */

/* One write transaction (BEGIN IMMEDIATE).  0 or -1 (logged). */
int		 store_begin(struct store *);
int		 store_commit(struct store *);
void		 store_rollback(struct store *);

/*
 * Progress per (account, folder): the UIDVALIDITY seen and the highest UID
 * processed.  store_folder_get returns 0 when known, 1 when never synced
 * (both set to 0), -1 on error.  store_folder_set belongs in the same
 * transaction as the effects of the messages up to last_uid.
 */
int		 store_folder_get(struct store *, const char *account, const char *folder,
		    uint32_t *uidvalidity, uint32_t *last_uid);
int		 store_folder_set(struct store *, const char *account, const char *folder,
		    uint32_t uidvalidity, uint32_t last_uid);

/* The schema version this program writes (PRAGMA user_version). */
int		 store_schema_version(void);

/*
 * For cases.c and schedule.c: the open handle and a cached prepared statement
 * for sql (prepared once with SQLITE_PREPARE_PERSISTENT, reset on return).
 * Only those modules touch SQL; everything else goes through their API.
 */
struct sqlite3	*store_db(struct store *);
struct sqlite3_stmt *store_stmt(struct store *, const char *sql);

/*
 * Statement helpers shared by cases.c and schedule.c.  The step helpers
 * reset the statement (so it holds no read snapshot afterwards) and log a
 * database error as "store: what: message".
 *
 * store_step_done steps a statement that returns no rows: 0, or -1.
 * store_step_int steps a query: 1 when there is a row (its first column in
 * *out unless out is NULL), 0 when none, -1 on error.
 */
int		 store_step_done(struct store *, struct sqlite3_stmt *, const char *what);
int		 store_step_int(struct store *, struct sqlite3_stmt *, int64_t *out,
		    const char *what);
void		 store_db_warn(struct store *, const char *what);
/* A text column copied (sqlite's pointer dies with the next step); NULL stays NULL. */
char		*store_column_dup(struct sqlite3_stmt *, int col);
/* Binds a copy of text, or NULL for NULL. */
void		 store_bind_text(struct sqlite3_stmt *, int idx, const char *text);
/* Binds a row id, or NULL for one <= 0 (no case). */
void		 store_bind_id(struct sqlite3_stmt *, int idx, int64_t id);

/*
 * For a cache of table contents kept beside the handle (cases.c's candidate
 * index).  store_generation() changes with every store_changed() and every
 * rollback on this handle; store_data_version() (PRAGMA data_version)
 * changes when another connection (ipcase) committed.  store_data_version
 * returns 0, or -1 on error.  A cache set with store_set_cache() is freed
 * with free_cache by store_close() or the next store_set_cache().
 */
uint64_t	 store_generation(struct store *);
void		 store_changed(struct store *);
int		 store_data_version(struct store *, int64_t *version);
void		*store_cache(struct store *);
void		 store_set_cache(struct store *, void *cache, void (*free_cache)(void *));

#endif
