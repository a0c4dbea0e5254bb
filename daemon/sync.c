/*
 * sync.c — the parent's side of every account.  Each account has a fetcher
 * child (fetcher.c); this file tells it which folder to sync from which UID,
 * decides from the headers which bodies are worth fetching, and commits the
 * effects of each batch together with the folder's new "last UID" in ONE
 * sqlite transaction, so a crash at any point neither loses nor doubles a
 * message.  A fetcher that fails, dies or hangs is restarted with
 * exponential back-off and jitter, logged once per outage.
 */
#include "sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cases.h"
#include "frame.h"
#include "imap.h"
#include "log.h"
#include "message.h"
#include "oauth.h"
#include "schedule.h"
#include "spawn.h"

#define BACKOFF_MIN_MS		1000
#define BACKOFF_MAX_MS		(15 * 60 * 1000)
#define BACKOFF_FATAL_MIN_MS	(60 * 1000)	/* login or certificate refused: the admin must act */
#define BACKOFF_FATAL_MAX_MS	(60 * 60 * 1000)
#define ONCE_MAX_ATTEMPTS	4		/* --once gives up after this many failed connections */
#define SILENCE_GRACE_MS	(60 * 1000)	/* on top of the account's timeouts before a fetcher counts as hung */

enum acct_state {
	A_DOWN,		/* no fetcher; restart at restart_ms */
	A_CONNECTING,	/* fetcher started, waiting for F_READY */
	A_SYNCING,	/* F_SYNC sent for folders[folder] */
	A_IDLE,		/* F_IDLE sent */
	A_FINISHED,	/* --once: done */
	A_GAVE_UP	/* --once: too many failures */
};

struct batch_item {
	uint32_t	 uid;
	uint32_t	 size;
	struct message	*headers;	/* owned */
	struct message	*full;		/* owned, NULL until fetched */
	bool		 asked;		/* body requested */
	bool		 ingested;
	bool		 rules_want;	/* the rules' pre-screen wants its body */
};

/* One header batch: judged in order, the first while the others wait. */
struct batch {
	struct batch_item	*items;		/* IMAP_FETCH_BATCH long once allocated */
	size_t			 n;
	uint32_t		 high;		/* highest UID, from F_BATCH */
	bool			 complete;	/* F_BATCH received */
};

struct account {
	const struct conf_account *acct;
	struct sync		*sync;
	enum acct_state		 state;
	pid_t			 pid;
	int			 fd;
	struct frame_reader	 rd;			/* frames from fd, read ahead */
	char			*secret;		/* password or access token, wiped on free */
	time_t			 secret_expires;	/* XOAUTH2 access token */
	char		       **folders;		/* configured + Sent; NULL-terminated */
	char			*sent;			/* the Sent folder's name, or NULL */
	size_t			 folder;		/* index being synced */
	bool			 has_idle;
	uint32_t		 uidvalidity;		/* of the folder being synced */
	bool			 in_txn;
	struct batch		 batches[SYNC_BATCHES_IN_FLIGHT];	/* [0] is judged first */
	size_t			 nbatches;
	int			 failures;		/* consecutive */
	int64_t			 restart_ms;
	int64_t			 deadline_ms;		/* kill the fetcher if silent past this */
	char			 last_error[200];
	uint64_t		 messages;		/* processed since start */
	uint64_t		 bodies;		/* of which fetched whole */
	time_t			 last_sync;
};

struct sync {
	const struct conf	*conf;
	const struct rules	*rules;
	struct store		*store;
	bool			 once;
	bool			 changed;
	struct account		*accounts;
	size_t			 naccounts;
};

static const char *const state_names[] = {
	"down", "connecting", "syncing", "idle", "finished", "gave up"
};

static int64_t
jitter(int64_t ms)
{
	uint32_t	r = 0;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)now_mono_ms();
	/* +-20 %: accounts failing together do not retry together. */
	return ms * 8 / 10 + (int64_t)(r % (uint32_t)(ms * 4 / 10 + 1));
}

static void
batch_empty(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		message_free(b->items[i].headers);
		message_free(b->items[i].full);
	}
	b->n = 0;
	b->high = 0;
	b->complete = false;
}

static void
batch_clear(struct account *a)
{
	for (size_t i = 0; i < NELEM(a->batches); i++) {
		batch_empty(&a->batches[i]);
		free(a->batches[i].items);
		a->batches[i].items = NULL;
	}
	a->nbatches = 0;
}

/* The batch being judged, or NULL while its headers are still coming. */
static struct batch *
batch_judged(struct account *a)
{
	return a->nbatches > 0 && a->batches[0].complete ? &a->batches[0] : NULL;
}

/* The batch the next F_HEADER belongs to; NULL when the fetcher sent too many. */
static struct batch *
batch_incoming(struct account *a)
{
	struct batch	*b;

	if (a->nbatches > 0 && !a->batches[a->nbatches - 1].complete)
		return &a->batches[a->nbatches - 1];
	if (a->nbatches == NELEM(a->batches))
		return NULL;
	b = &a->batches[a->nbatches++];
	if (b->items == NULL)
		b->items = xreallocarray(NULL, IMAP_FETCH_BATCH, sizeof(*b->items));
	return b;
}

/* The first batch is done: the next one moves up, keeping its memory for reuse. */
static void
batch_retire(struct account *a)
{
	struct batch	done = a->batches[0];

	batch_empty(&done);
	memmove(&a->batches[0], &a->batches[1], (a->nbatches - 1) * sizeof(done));
	a->batches[--a->nbatches] = done;
}

static int64_t
silence_limit_ms(const struct account *a)
{
	return (int64_t)a->acct->timeout_sec * 4 * 1000 + SILENCE_GRACE_MS;
}

/* The account holding the store's transaction, or NULL. */
static const struct account *
txn_holder(const struct sync *s)
{
	for (size_t i = 0; i < s->naccounts; i++)
		if (s->accounts[i].in_txn)
			return &s->accounts[i];
	return NULL;
}

/*
 * The fetcher is gone or must go: kill it, undo the batch in flight and
 * plan the restart.  why is logged on the first failure of an outage only.
 */
static void
account_down(struct account *a, enum result why, const char *reason)
{
	const bool	 first = a->failures == 0;
	int64_t		 delay, base, cap;
	bool		 give_up;

	if (a->in_txn) {
		store_rollback(a->sync->store);
		a->in_txn = false;
	}
	batch_clear(a);
	if (a->fd != -1) {
		close(a->fd);
		a->fd = -1;
	}
	frame_reader_reset(&a->rd, -1);
	if (a->pid > 0) {
		helper_reap(a->pid, 0);
		a->pid = -1;
	}
	a->failures++;
	/* A refused login, certificate or grant will not heal within a one-shot run. */
	give_up = a->sync->once && (why == R_FATAL || a->failures >= ONCE_MAX_ATTEMPTS);
	/*
	 * One line per outage: a server going down fails one way and then
	 * another ("connection lost", then "connection refused").  Only a
	 * turn to a refusal the admin must act on is worth a second line.
	 */
	if (first || (why == R_FATAL && strcmp(reason, a->last_error) != 0))
		log_warnx("%s: %s%s", a->acct->name, reason, give_up ? "" :
		    "; retrying with back-off");
	else
		log_debug("%s: %s (failure %d)", a->acct->name, reason, a->failures);
	snprintf(a->last_error, sizeof(a->last_error), "%s", reason);

	if (give_up) {
		log_warnx("%s: giving up after %d attempt%s", a->acct->name, a->failures,
		    a->failures == 1 ? "" : "s");
		a->state = A_GAVE_UP;
		return;
	}
	base = why == R_FATAL ? BACKOFF_FATAL_MIN_MS : BACKOFF_MIN_MS;
	cap = why == R_FATAL ? BACKOFF_FATAL_MAX_MS : BACKOFF_MAX_MS;
	if (a->sync->once)
		cap = 8000;	/* a one-shot run does not wait an hour */
	delay = base;
	for (int i = 1; i < a->failures && delay < cap; i++)
		delay *= 2;
	if (delay > cap)
		delay = cap;
	a->restart_ms = now_mono_ms() + jitter(delay);
	a->state = A_DOWN;
}

/* Something was saved: the outage, if there was one, is over. */
static void
account_progress(struct account *a)
{
	a->failures = 0;
	a->last_error[0] = '\0';
}

static void
account_send(struct account *a, enum frame_type type, struct buf *b)
{
	if (frame_send(a->fd, type, b) == -1)
		account_down(a, R_RETRY, "fetcher went away");
	buf_free(b);
}

/*
 * The provider refused the refresh token (revoked, expired, or the client
 * itself refused): no retry can fix that, the seller must authorise again.
 * Said loudly in the log each time, mailed once per outage.
 */
static void
oauth_alert(struct account *a, const char *err)
{
	const struct conf_account *acct = a->acct;
	char	*key, *text;

	log_warnx("%s: XOAUTH2 sign-in refused: %s; the grant was revoked or has expired, or "
	    "the client is not allowed: authorise ipcased again and put the new refresh "
	    "token in %s", acct->name, err, acct->oauth_refresh_token_file);
	key = xasprintf("oauth-refused:%s", acct->name);
	text = xasprintf("ipcased can no longer read the mailbox of account \"%s\" (%s on %s): "
	    "the OAuth provider refused its refresh token (%s). The grant was revoked or has "
	    "expired. Until you authorise ipcased again and put the new refresh token in %s, "
	    "new Amazon notices in that mailbox are not seen.", acct->name, acct->user,
	    acct->host, err, acct->oauth_refresh_token_file);
	if (schedule_alert(a->sync->store, a->sync->conf, key, text, now_wall()) == 1)
		a->sync->changed = true;
	free(text);
	free(key);
}

/* XOAUTH2: a fresh access token for the next connection. */
static int
account_token(struct account *a)
{
	char		err[256], *key;
	enum result	r;

	if (a->secret != NULL && a->secret_expires > now_wall() + OAUTH_RENEW_BEFORE_SEC)
		return 0;
	if (a->secret != NULL) {
		explicit_bzero(a->secret, strlen(a->secret));
		free(a->secret);
		a->secret = NULL;
	}
	if ((r = oauth_refresh(a->sync->conf, a->acct, &a->secret, &a->secret_expires, err,
	    sizeof(err))) != R_OK) {
		if (r == R_FATAL)
			oauth_alert(a, err);
		account_down(a, r, err);
		return -1;
	}
	/* Should the grant be revoked again one day, the seller hears of it again. */
	key = xasprintf("oauth-refused:%s", a->acct->name);
	schedule_alert_rearm(a->sync->store, key);
	free(key);
	return 0;
}

/*
 * Starts the account's fetcher program and hands it the account's settings
 * and secret (read here: the fetcher opens no credential file).
 */
static pid_t
fetcher_spawn(struct account *a)
{
	struct buf	 b = { 0 };
	pid_t		 pid;

	if ((pid = helper_spawn("ipcased-fetch", a->acct->name, &a->fd)) == -1)
		return -1;
	frame_put_account(&b, a->acct);
	buf_put_str(&b, a->secret);
	/* A full socket buffer cannot block this: the fetcher reads it first. */
	if (frame_send(a->fd, F_SETUP, &b) == -1)
		log_warn("%s: sending the fetcher its settings", a->acct->name);
	explicit_bzero(b.data, b.len);
	buf_free(&b);
	return pid;
}

static void
account_start(struct account *a)
{
	const struct conf_account *acct = a->acct;
	char	err[256];

	if (acct->auth == AUTH_XOAUTH2) {
		if (account_token(a) == -1)
			return;
	} else if (a->secret == NULL) {
		if (acct->password != NULL)
			a->secret = xstrdup(acct->password);
		else if (acct->password_file == NULL || secret_read(acct->password_file,
		    a->sync->conf->dir, &a->secret, err, sizeof(err)) == -1) {
			account_down(a, R_FATAL, acct->password_file == NULL ?
			    "no password configured" : err);
			return;
		}
	}
	if ((a->pid = fetcher_spawn(a)) == -1) {
		account_down(a, R_RETRY, "cannot start a fetcher");
		return;
	}
	frame_reader_reset(&a->rd, a->fd);
	a->state = A_CONNECTING;
	a->deadline_ms = now_mono_ms() + silence_limit_ms(a);
}

static void
account_sync_folder(struct account *a)
{
	struct buf	 b = { 0 };
	const char	*folder = a->folders[a->folder];
	uint32_t	 uidvalidity = 0, last = 0;
	time_t		 since = 0;
	int		 known;

	known = store_folder_get(a->sync->store, a->acct->name, folder, &uidvalidity, &last);
	if (known == -1) {
		account_down(a, R_RETRY, "database error reading folder state");
		return;
	}
	/* A first run on an old mailbox looks back only initial_scan_days. */
	if ((known == 1 || last == 0) && a->acct->initial_scan_days > 0)
		since = now_wall() - (time_t)a->acct->initial_scan_days * 86400;
	buf_put_str(&b, folder);
	buf_put_u32(&b, uidvalidity);
	buf_put_u32(&b, last);
	buf_put_u64(&b, (uint64_t)since);
	a->uidvalidity = uidvalidity;
	a->state = A_SYNCING;
	a->deadline_ms = now_mono_ms() + silence_limit_ms(a);
	account_send(a, F_SYNC, &b);
}

static void
account_idle(struct account *a)
{
	struct buf	b = { 0 };
	int		seconds = a->sync->conf->poll_interval;

	if (seconds > IMAP_IDLE_MAX_SEC)
		seconds = IMAP_IDLE_MAX_SEC;
	buf_put_str(&b, a->folders[0]);
	buf_put_u32(&b, (uint32_t)seconds);
	a->state = A_IDLE;
	a->deadline_ms = now_mono_ms() + (int64_t)seconds * 1000 + silence_limit_ms(a);
	account_send(a, F_IDLE, &b);
}

static void
account_next_folder(struct account *a)
{
	a->folder++;
	if (a->folders[a->folder] != NULL) {
		account_sync_folder(a);
		return;
	}
	a->last_sync = now_wall();
	a->folder = 0;
	if (a->sync->once) {
		struct buf	b = { 0 };

		log_info("%s: %llu new messages, %llu of them fetched whole", a->acct->name,
		    (unsigned long long)a->messages, (unsigned long long)a->bodies);

		account_send(a, F_QUIT, &b);
		if (a->state == A_DOWN || a->state == A_GAVE_UP)
			return;
		if (a->fd != -1)
			close(a->fd);
		a->fd = -1;
		frame_reader_reset(&a->rd, -1);
		a->state = A_FINISHED;
		return;
	}
	account_idle(a);
}

static void
on_ready(struct account *a, struct reader *r)
{
	char	*sent = rd_str(r);
	size_t	 n;

	a->has_idle = rd_u32(r) != 0;
	if (r->bad) {
		free(sent);
		account_down(a, R_RETRY, "malformed F_READY");
		return;
	}
	/*
	 * A login is not yet a recovery: a database that fails after it (disk
	 * full) must keep the back-off growing and let --once give up, so the
	 * failures are cleared by the first progress (account_progress).
	 */
	if (a->failures > 0)
		log_info("%s: connected again after %d failed attempts", a->acct->name, a->failures);
	else
		log_info("%s: connected%s", a->acct->name, a->has_idle ? " (IDLE)" : "");
	free(a->sent);
	a->sent = sent;
	/* The Sent folder joins the configured ones unless it is one of them. */
	strv_free(a->folders);
	n = strv_len(a->acct->folders);
	a->folders = xcalloc(n + 2, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		a->folders[i] = xstrdup(a->acct->folders[i]);
	if (sent != NULL) {
		bool	listed = false;

		for (size_t i = 0; i < n; i++)
			listed |= strcmp(a->folders[i], sent) == 0;
		if (!listed)
			a->folders[n] = xstrdup(sent);
	}
	a->folder = 0;
	account_sync_folder(a);
}

static void
on_folder(struct account *a, struct reader *r)
{
	char		*folder = rd_str(r);
	uint32_t	 uidvalidity = rd_u32(r), uidnext = rd_u32(r), exists = rd_u32(r);
	bool		 reset = rd_u32(r) != 0;

	(void)uidnext;
	if (r->bad || folder == NULL) {
		free(folder);
		account_down(a, R_RETRY, "malformed F_FOLDER");
		return;
	}
	if (reset)
		log_warnx("%s: %s: UIDVALIDITY changed from %u to %u; rescanning %u messages "
		    "(already recorded ones are recognised by Message-ID)", a->acct->name,
		    folder, a->uidvalidity, uidvalidity, exists);
	a->uidvalidity = uidvalidity;
	free(folder);
}

static void
on_header(struct account *a, struct reader *r)
{
	struct batch_item	*it;
	struct batch		*b;
	uint32_t		 uid = rd_u32(r), size = rd_u32(r);
	struct message		*m = message_deserialize(r);

	if (m == NULL || r->bad) {
		message_free(m);
		account_down(a, R_RETRY, "malformed F_HEADER");
		return;
	}
	if ((b = batch_incoming(a)) == NULL || b->n >= IMAP_FETCH_BATCH) {
		message_free(m);
		account_down(a, R_RETRY, "fetcher sent more headers than it may have in flight");
		return;
	}
	it = &b->items[b->n++];
	memset(it, 0, sizeof(*it));
	it->uid = uid;
	it->size = size;
	it->headers = m;
	/*
	 * Screened on arrival: the rules' answer depends on the headers alone,
	 * and this way it is worked out while an earlier batch waits for its
	 * bodies rather than after.
	 */
	it->rules_want = rules_prescreen(a->sync->rules, m);
}

/*
 * A batch is asked again after each round of bodies: the rules' answer
 * cannot change in between, only what the cases know, so the cases' index
 * is brought up to date once a round.
 */
static bool
is_candidate(const struct batch_item *it, const struct cand_index *ci)
{
	return it->rules_want || cases_candidate_match(ci, it->headers);
}

/* Asks for the bodies of the candidates not asked yet; an empty F_WANT ends the batch. */
static size_t
ask_bodies(struct account *a, struct batch *bt)
{
	const struct cand_index *ci = cases_candidates(a->sync->store);
	struct buf	b = { 0 }, uids = { 0 };
	size_t		i, n = 0;

	for (i = 0; i < bt->n; i++) {
		if (bt->items[i].asked || !is_candidate(&bt->items[i], ci))
			continue;
		bt->items[i].asked = true;
		buf_put_u32(&uids, bt->items[i].uid);
		n++;
	}
	buf_put_u32(&b, (uint32_t)n);
	if (n > 0)
		buf_append(&b, uids.data, uids.len);
	buf_free(&uids);
	account_send(a, F_WANT, &b);
	return n;
}

static void batch_judge(struct account *);

/*
 * Saves the folder's progress with the batch's effects: one transaction.
 * Then the next batch, if its headers are all here.
 */
static void
commit_batch(struct account *a, struct batch *b)
{
	if (store_folder_set(a->sync->store, a->acct->name, a->folders[a->folder],
	    a->uidvalidity, b->high) == -1 || store_commit(a->sync->store) == -1) {
		account_down(a, R_RETRY, "database error saving progress");
		return;
	}
	a->in_txn = false;
	a->messages += b->n;
	batch_retire(a);
	account_progress(a);
	if (batch_judged(a) != NULL)
		batch_judge(a);
}

/* The first batch is complete: its transaction starts, its candidates' bodies are asked for. */
static void
batch_judge(struct account *a)
{
	struct batch	*b = batch_judged(a);

	if (store_begin(a->sync->store) == -1) {
		account_down(a, R_RETRY, "database busy or failing");
		return;
	}
	a->in_txn = true;
	if (ask_bodies(a, b) == 0 && a->state == A_SYNCING)
		commit_batch(a, b);
}

static void
on_batch(struct account *a, struct reader *r)
{
	uint32_t	 high = rd_u32(r), count = rd_u32(r);
	struct batch	*b = batch_incoming(a);

	if (r->bad || b == NULL || count != b->n) {
		account_down(a, R_RETRY, "malformed F_BATCH");
		return;
	}
	b->high = high;
	b->complete = true;
	if (b == &a->batches[0])
		batch_judge(a);
	else
		log_debug("%s: batch up to UID %u waits behind %zu", a->acct->name, high,
		    (size_t)(b - a->batches));
}

static void
on_message(struct account *a, struct reader *r)
{
	uint32_t	 uid = rd_u32(r);
	struct message	*m = message_deserialize(r);
	struct batch	*b = batch_judged(a);
	size_t		 i;

	if (m == NULL || r->bad) {
		message_free(m);
		account_down(a, R_RETRY, "malformed F_MESSAGE");
		return;
	}
	for (i = 0; b != NULL && i < b->n; i++) {
		if (b->items[i].uid == uid && b->items[i].asked && b->items[i].full == NULL) {
			b->items[i].full = m;
			a->bodies++;
			return;
		}
	}
	message_free(m);
	account_down(a, R_RETRY, "fetcher sent a message that was not asked for");
}

static void
ingest(struct account *a, struct batch_item *it)
{
	const char		*folder = a->folders[a->folder];
	struct msg_origin	 origin = {
		a->acct->name, folder, a->uidvalidity, it->uid,
		a->sent != NULL && strcmp(folder, a->sent) == 0
	};
	struct ingest_report	 rep;
	struct verdict		 v;
	char			*subject;

	memset(&rep, 0, sizeof(rep));
	memset(&v, 0, sizeof(v));
	rules_classify_ids(a->sync->rules, a->acct->authserv_ids, it->full, &v);
	if (cases_ingest(a->sync->store, a->sync->conf, &origin, it->full, &v, now_wall(),
	    &rep) != R_OK) {
		verdict_clear(&v);
		account_down(a, R_RETRY, "database error recording a message");
		return;
	}
	it->ingested = true;
	if (rep.case_id != 0 || rep.alert || v.kind != KIND_OTHER) {
		subject = str_for_log(it->full->subject, 80);
		log_info("%s: %s UID %u \"%s\": %s: %s", a->acct->name, folder, it->uid,
		    subject, kind_name(v.kind), rep.what);
		free(subject);
	}
	if (rep.opened || rep.case_id != 0 || rep.alert)
		a->sync->changed = true;
	verdict_clear(&v);
}

static void
on_bodies_done(struct account *a)
{
	struct batch	*b = batch_judged(a);
	size_t		 i;

	if (b == NULL) {
		account_down(a, R_RETRY, "fetcher sent bodies with no batch asking");
		return;
	}
	for (i = 0; i < b->n && a->state == A_SYNCING; i++)
		if (b->items[i].full != NULL && !b->items[i].ingested)
			ingest(a, &b->items[i]);
	if (a->state != A_SYNCING)
		return;
	/* What this round recorded may make more of the batch relevant. */
	if (ask_bodies(a, b) > 0 || a->state != A_SYNCING)
		return;
	commit_batch(a, b);
}

static void
on_sync_done(struct account *a, struct reader *r)
{
	char		*folder = rd_str(r);
	uint32_t	 uidvalidity = rd_u32(r), high = rd_u32(r), known_uv = 0, known_last = 0;

	/* A batch not finished would have its effects and progress lost. */
	if (r->bad || folder == NULL || a->nbatches > 0) {
		free(folder);
		account_down(a, R_RETRY, "malformed F_SYNC_DONE");
		return;
	}
	/* Record a new UIDVALIDITY (or a first sync of an empty folder) too. */
	if (store_folder_get(a->sync->store, a->acct->name, folder, &known_uv, &known_last) != 0 ||
	    known_uv != uidvalidity || known_last != high) {
		if (store_begin(a->sync->store) == -1 ||
		    store_folder_set(a->sync->store, a->acct->name, folder, uidvalidity, high) == -1 ||
		    store_commit(a->sync->store) == -1) {
			store_rollback(a->sync->store);
			free(folder);
			account_down(a, R_RETRY, "database error saving progress");
			return;
		}
	}
	free(folder);
	account_progress(a);
	account_next_folder(a);
}

static void
on_error(struct account *a, struct reader *r)
{
	enum result	 why = (enum result)rd_u32(r);
	char		*text = rd_str(r), *safe = str_for_log(text, 160);

	if (why == R_SKIP) {
		/* A folder that does not exist: said once per connection, then skipped. */
		log_warnx("%s: folder \"%s\" not found; skipped", a->acct->name, safe);
	} else {
		char		reason[200];
		const char	*p = safe;
		size_t		 len = strlen(a->acct->name);

		/* The fetcher's warnings already name the account. */
		if (strncmp(p, a->acct->name, len) == 0 && strncmp(p + len, ": ", 2) == 0)
			p += len + 2;
		snprintf(reason, sizeof(reason), "%s", p);
		account_down(a, why == R_FATAL ? R_FATAL : R_RETRY, reason);
	}
	free(text);
	free(safe);
}

static void
on_idle_done(struct account *a, struct reader *r)
{
	bool	new_mail = rd_u32(r) != 0;

	if (r->bad) {
		account_down(a, R_RETRY, "malformed F_IDLE_DONE");
		return;
	}
	if (new_mail)
		log_debug("%s: new mail", a->acct->name);
	a->folder = 0;
	account_sync_folder(a);
}

static void account_frame(struct account *, enum frame_type, struct reader *);
static void account_lost(struct account *);

/* May this account's frames be handled now?  Not while another one holds the transaction. */
static bool
account_may_read(const struct account *a)
{
	const struct account	*holder = txn_holder(a->sync);

	return a->fd != -1 && (holder == NULL || holder == a);
}

/* Handles every whole frame that has arrived, without blocking. */
static void
account_read(struct account *a)
{
	enum frame_type	 type;
	struct reader	 r;
	char		*fields;
	int		 n;

	while (account_may_read(a)) {
		if ((n = frame_next(&a->rd, &type, &fields, &r)) == 0)
			return;
		if (n == -1) {
			account_lost(a);
			return;
		}
		account_frame(a, type, &r);
		free(fields);
	}
}

/* The socket ended: name the cause when the fetcher died, since a crash is worth knowing. */
static void
account_lost(struct account *a)
{
	char		reason[200] = "fetcher closed the connection";
	enum result	why = R_RETRY;
	int		status;

	if (a->pid > 0 && waitpid(a->pid, &status, 0) == a->pid) {
		a->pid = -1;
		if (WIFSIGNALED(status))
			snprintf(reason, sizeof(reason), "fetcher killed by signal %d "
			    "(hostile or broken server?)", WTERMSIG(status));
		else if (WIFEXITED(status) && WEXITSTATUS(status) == FETCHER_EXIT_FATAL) {
			why = R_FATAL;
			snprintf(reason, sizeof(reason), "%s", a->last_error[0] ?
			    a->last_error : "login or certificate refused");
		} else if (a->last_error[0] != '\0')
			snprintf(reason, sizeof(reason), "%s", a->last_error);
	}
	account_down(a, why, reason);
}

static void
account_frame(struct account *a, enum frame_type type, struct reader *rp)
{
	struct reader	r = *rp;

	a->deadline_ms = now_mono_ms() + silence_limit_ms(a);
	if (a->state == A_IDLE)
		a->deadline_ms += (int64_t)IMAP_IDLE_MAX_SEC * 1000;
	switch (type) {
	case F_READY:
		if (a->state == A_CONNECTING)
			on_ready(a, &r);
		else
			account_down(a, R_RETRY, "unexpected F_READY");
		break;
	case F_FOLDER:
		on_folder(a, &r);
		break;
	case F_HEADER:
		on_header(a, &r);
		break;
	case F_BATCH:
		on_batch(a, &r);
		break;
	case F_MESSAGE:
		on_message(a, &r);
		break;
	case F_BODIES_DONE:
		on_bodies_done(a);
		break;
	case F_SYNC_DONE:
		on_sync_done(a, &r);
		break;
	case F_IDLE_DONE:
		on_idle_done(a, &r);
		break;
	case F_ERROR:
		on_error(a, &r);
		break;
	default:
		account_down(a, R_RETRY, "unknown frame from fetcher");
		break;
	}
}

struct sync *
sync_new(const struct conf *conf, const struct rules *rules, struct store *store, bool once)
{
	struct sync	*s = xcalloc(1, sizeof(*s));
	size_t		 i;

	s->conf = conf;
	s->rules = rules;
	s->store = store;
	s->once = once;
	s->naccounts = conf->naccounts;
	s->accounts = xcalloc(s->naccounts, sizeof(*s->accounts));
	for (i = 0; i < s->naccounts; i++) {
		s->accounts[i].acct = &conf->accounts[i];
		s->accounts[i].sync = s;
		s->accounts[i].state = A_DOWN;
		s->accounts[i].pid = -1;
		s->accounts[i].fd = -1;
		s->accounts[i].rd.fd = -1;
		s->accounts[i].restart_ms = 0;
	}
	return s;
}

void
sync_free(struct sync *s)
{
	struct buf	 b = { 0 };
	int64_t		 until;
	size_t		 i;

	if (s == NULL)
		return;
	for (i = 0; i < s->naccounts; i++) {
		struct account	*a = &s->accounts[i];

		if (a->in_txn)
			store_rollback(s->store);
		if (a->fd != -1) {
			frame_send(a->fd, F_QUIT, &b);
			close(a->fd);
		}
	}
	/* A fetcher in a network read gets a moment (a second for them all), then SIGKILL. */
	until = now_mono_ms() + 1000;
	for (i = 0; i < s->naccounts; i++) {
		struct account	*a = &s->accounts[i];
		int64_t		 left = until - now_mono_ms();

		if (a->pid > 0)
			helper_reap(a->pid, left > 0 ? (int)left : 0);
		batch_clear(a);
		frame_reader_reset(&a->rd, -1);
		if (a->secret != NULL) {
			explicit_bzero(a->secret, strlen(a->secret));
			free(a->secret);
		}
		strv_free(a->folders);
		free(a->sent);
	}
	free(s->accounts);
	free(s);
}

int
sync_step(struct sync *s, int64_t now)
{
	int64_t	next = -1, wait;
	size_t	i;

	for (i = 0; i < s->naccounts; i++) {
		struct account	*a = &s->accounts[i];
		const struct account *holder = txn_holder(s);

		/* Not read while another account's batch is in flight: not hung either. */
		if (holder != NULL && holder != a && a->deadline_ms < now + silence_limit_ms(a))
			a->deadline_ms = now + silence_limit_ms(a);
		/* Frames read ahead while another account held the transaction. */
		if (a->fd != -1 && a->rd.in.len > a->rd.off && account_may_read(a))
			account_read(a);
		if (a->state == A_DOWN && now >= a->restart_ms)
			account_start(a);
		if ((a->state == A_CONNECTING || a->state == A_SYNCING || a->state == A_IDLE) &&
		    now >= a->deadline_ms)
			account_down(a, R_RETRY, "fetcher hung (no answer in time)");
		if (a->state == A_DOWN)
			wait = a->restart_ms - now;
		else if (a->state == A_CONNECTING || a->state == A_SYNCING || a->state == A_IDLE)
			wait = a->deadline_ms - now;
		else
			continue;
		if (wait < 0)
			wait = 0;
		if (next == -1 || wait < next)
			next = wait;
	}
	return next > INT32_MAX ? INT32_MAX : (int)next;
}

bool
sync_busy(const struct sync *s)
{
	return txn_holder(s) != NULL;
}

int
sync_pollfds(struct sync *s, struct pollfd *pfd, int max)
{
	const struct account *holder = txn_holder(s);
	int	n = 0;

	for (size_t i = 0; i < s->naccounts && n < max; i++) {
		if (s->accounts[i].fd == -1)
			continue;
		/*
		 * One sqlite connection, one transaction: while a batch is in
		 * flight the other fetchers wait (their frames stay in the
		 * socket) rather than fail to begin their own.
		 */
		if (holder != NULL && holder != &s->accounts[i])
			continue;
		pfd[n].fd = s->accounts[i].fd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		n++;
	}
	return n;
}

void
sync_handle(struct sync *s, const struct pollfd *pfd, int n)
{
	for (int k = 0; k < n; k++) {
		if (pfd[k].revents == 0)
			continue;
		for (size_t i = 0; i < s->naccounts; i++) {
			const struct account *holder = txn_holder(s);

			/* Polled before another account began its batch: wait for the next round. */
			if (holder != NULL && holder != &s->accounts[i])
				continue;
			if (s->accounts[i].fd == pfd[k].fd && s->accounts[i].fd != -1)
				account_read(&s->accounts[i]);
		}
	}
}

bool
sync_finished(const struct sync *s)
{
	for (size_t i = 0; i < s->naccounts; i++)
		if (s->accounts[i].state != A_FINISHED && s->accounts[i].state != A_GAVE_UP)
			return false;
	return true;
}

int
sync_failed(const struct sync *s)
{
	int	n = 0;

	for (size_t i = 0; i < s->naccounts; i++)
		n += s->accounts[i].state == A_GAVE_UP ||
		    (s->accounts[i].state == A_DOWN && s->accounts[i].failures > 0);
	return n;
}

bool
sync_take_changes(struct sync *s)
{
	bool	c = s->changed;

	s->changed = false;
	return c;
}

void
sync_wake(struct sync *s)
{
	struct buf	b = { 0 };

	for (size_t i = 0; i < s->naccounts; i++)
		if (s->accounts[i].state == A_IDLE)
			account_send(&s->accounts[i], F_WAKE, &b);
}

void
sync_status(const struct sync *s, char *buf, size_t len)
{
	size_t	off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < s->naccounts && off < len; i++) {
		const struct account *a = &s->accounts[i];
		int	n;

		n = snprintf(buf + off, len - off, "%s%s: %s", i ? "; " : "",
		    a->acct->name, state_names[a->state]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

void
sync_log_status(const struct sync *s)
{
	for (size_t i = 0; i < s->naccounts; i++) {
		const struct account *a = &s->accounts[i];
		char	when[32] = "never";
		struct tm tm;

		if (a->last_sync != 0 && gmtime_r(&a->last_sync, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		log_info("%s: %s, %llu messages this run (%llu fetched whole), last full sync %s%s%s",
		    a->acct->name, state_names[a->state], (unsigned long long)a->messages,
		    (unsigned long long)a->bodies, when,
		    a->last_error[0] ? ", last error: " : "", a->last_error);
	}
}
