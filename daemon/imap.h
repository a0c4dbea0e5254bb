/* imap.h — one account's IMAP session (libetpan): connect with TLS verified, login, examine, search, fetch, IDLE. */
#ifndef IPCASED_IMAP_H
#define IPCASED_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf.h"
#include "util.h"

#define IMAP_IDLE_MAX_SEC	(25 * 60)	/* RFC 2177: servers may drop an idle client at 30 min */
/*
 * UIDs per header FETCH, and per batch the parent judges.  Dovecot spends
 * about a millisecond a command on a 50,000-message folder and each batch
 * costs a commit: 500 made a first scan a fifth slower.  The parent holds
 * up to SYNC_BATCHES_IN_FLIGHT batches of decoded headers (frame.h).
 */
#define IMAP_FETCH_BATCH	2000

struct imap_session;

struct imap_folder {
	uint32_t	uidvalidity;
	uint32_t	uidnext;	/* 0 when the server did not say */
	uint32_t	exists;
	uint64_t	highestmodseq;	/* 0 without CONDSTORE */
};

/* Called once per message of imap_fetch_headers(): the header block as the server sent it. */
typedef void	imap_header_cb(uint32_t uid, uint32_t size, const char *hdr, size_t len, void *arg);

/*
 * A session for acct; secret is the password (LOGIN, PLAIN) or the access
 * token (XOAUTH2), copied.  Nothing is sent until imap_connect().
 */
struct imap_session *imap_new(const struct conf_account *, const char *secret);
void		 imap_free(struct imap_session *);	/* logs out if connected; NULL is a no-op */

/*
 * TCP connect, TLS (implicit, or STARTTLS when configured, which must be
 * offered), the certificate chain and host name verified (tls.h) before any
 * IMAP byte is parsed or credentials sent, SNI, TCP keepalive, the EOF guard;
 * then CAPABILITY and login.  R_OK, R_RETRY (network, server trouble) or
 * R_FATAL (certificate refused, login refused: logged with the reason).
 */
enum result	 imap_connect(struct imap_session *);

/* EXAMINE (read-only) folder; fills out.  R_OK, R_RETRY, R_SKIP (no such folder). */
enum result	 imap_examine(struct imap_session *, const char *folder, struct imap_folder *out);

/*
 * UIDs above after_uid (filtered: "n:*" also matches the highest UID), and,
 * when since > 0, only those with an internal date on or after it.  *uids is
 * malloc'd, ascending.
 */
enum result	 imap_search(struct imap_session *, uint32_t after_uid, time_t since,
		    uint32_t **uids, size_t *n);

/* BODY.PEEK[HEADER.FIELDS (...)] + RFC822.SIZE for uids, in batches; cb per message. */
enum result	 imap_fetch_headers(struct imap_session *, const uint32_t *uids, size_t n,
		    imap_header_cb *cb, void *arg);

/*
 * The same for every message with a UID in lo..hi, in one UID FETCH: no
 * SEARCH needed first.  Keep hi - lo below IMAP_FETCH_BATCH and a range
 * never holds more messages than a batch.
 */
enum result	 imap_fetch_header_range(struct imap_session *, uint32_t lo, uint32_t hi,
		    imap_header_cb *cb, void *arg);

/* Called once per message of imap_fetch_messages(): its bytes, borrowed. */
typedef void	imap_message_cb(uint32_t uid, const char *raw, size_t len, void *arg);

/*
 * Whole messages (BODY.PEEK[]), at most max bytes each (<0.max> partial), in
 * one UID FETCH: uids ascending; cb per message the server sent.  A UID it
 * did not send (expunged meanwhile) is logged and skipped.  small: each is
 * known (RFC822.SIZE) to be under max, so no partial is asked for (Dovecot
 * serves a partial at half the speed); cb still gets at most max bytes.
 */
enum result	 imap_fetch_messages(struct imap_session *, const uint32_t *uids, size_t n,
		    size_t max, bool small, imap_message_cb *cb, void *arg);

/* One message as imap_fetch_messages() would; R_SKIP when it is gone.  *raw malloc'd. */
enum result	 imap_fetch_message(struct imap_session *, uint32_t uid, size_t max,
		    char **raw, size_t *len);

/* The folder with SPECIAL-USE \Sent, malloc'd, or NULL when the server marks none. */
char		*imap_find_sent(struct imap_session *);

bool		 imap_has_idle(const struct imap_session *);
/* Enters IDLE on the examined folder; then poll imap_idle_fd() for input. */
enum result	 imap_idle_start(struct imap_session *);
int		 imap_idle_fd(const struct imap_session *);
/* true when bytes already wait in libetpan's buffer (poll would not see them). */
bool		 imap_idle_pending(const struct imap_session *);
/* Leaves IDLE (DONE); *new_mail is set when EXISTS was announced. */
enum result	 imap_idle_done(struct imap_session *, bool *new_mail);

/* Bytes received on the connection so far (for benchmarks). */
uint64_t	 imap_bytes_received(const struct imap_session *);

/* The header fields fetched for the pre-screen. */
extern const char *const imap_header_fields[];

#endif
