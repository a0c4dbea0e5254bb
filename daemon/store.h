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

#endif
