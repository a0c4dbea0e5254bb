/*
 * fetcher.c — the process of one account (ipcased-fetch).  It alone talks to
 * the IMAP server and parses what it sends (IMAP through libetpan, MIME
 * through mime.c), so a hostile or broken server can at worst kill this
 * process: Debian's libetpan 1.9.4 crashes on a 31-byte greeting.  It holds
 * no database and no SMTP credentials; its settings and password come over
 * its socket, and the only file it opens is the account's CA file.
 */
#include "fetcher.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "imap.h"
#include "log.h"
#include "mime.h"

struct fetcher_ctx {
	const struct conf_account *acct;
	struct imap_session	*imap;
	int			 fd;		/* our end of the socketpair */
	bool			 has_idle;
	struct buf		 out;		/* frames not written yet */
};

#define FETCHER_OUT_MAX	(256 * 1024)

/* Reports and ends: the parent restarts us with back-off. */
static void __attribute__((noreturn))
fetcher_fail(struct fetcher_ctx *f, enum result why, const char *what)
{
	struct buf	 b = { 0 };
	char		*text;

	/* The reason the server or TLS gave, when a module logged one. */
	text = log_last_warning()[0] != '\0' ? xstrdup(log_last_warning()) :
	    xasprintf("%s failed", what);
	buf_put_u32(&b, (uint32_t)why);
	buf_put_str(&b, text);
	free(text);
	frame_flush(f->fd, &f->out);
	frame_send(f->fd, F_ERROR, &b);
	buf_free(&b);
	imap_free(f->imap);
	_exit(why == R_FATAL ? FETCHER_EXIT_FATAL : FETCHER_EXIT_RETRY);
}

static void
flush_or_die(struct fetcher_ctx *f)
{
	if (frame_flush(f->fd, &f->out) == -1) {
		/* The parent is gone or restarting us: nothing left to do. */
		imap_free(f->imap);
		_exit(0);
	}
}

/*
 * Headers and messages of a batch go out in few large writes rather than
 * one per message: on a first scan that is tens of thousands of system calls
 * and context switches less.  Every other frame is sent at once, since the
 * parent waits for it.
 */
static void
send_or_die(struct fetcher_ctx *f, enum frame_type type, struct buf *b)
{
	if (frame_append(&f->out, type, b) == -1) {
		imap_free(f->imap);
		_exit(FETCHER_EXIT_RETRY);
	}
	buf_free(b);
	if ((type != F_HEADER && type != F_MESSAGE) || f->out.len >= FETCHER_OUT_MAX)
		flush_or_die(f);
}

/* A header batch sent to the parent and not finished by it yet. */
struct header_batch {
	uint32_t	 count;
	uint32_t	 high;		/* highest UID of the batch */
	uint32_t	*uids;		/* count UIDs, and the RFC822.SIZE of each */
	uint32_t	*sizes;
};

/* The batches in flight, oldest first: the parent's F_WANT is about the oldest. */
struct in_flight {
	struct header_batch	 b[SYNC_BATCHES_IN_FLIGHT];
	size_t			 first, n;
};

/*
 * Bodies go in one UID FETCH per group of this many bytes (as RFC822.SIZE
 * says) or messages: a round trip per message cost more than the rest of a
 * first scan's body fetches, and a group's bodies are held in memory at once.
 */
#define FETCHER_GROUP_BYTES	(1024 * 1024)
#define FETCHER_GROUP_MAX	64

struct header_sink {
	struct fetcher_ctx	*f;
	struct header_batch	*hb;
};

static void
on_header(uint32_t uid, uint32_t size, const char *hdr, size_t len, void *arg)
{
	struct header_sink	*sink = arg;
	struct header_batch	*hb = sink->hb;
	struct message		*m = message_parse(hdr, len, true, false);
	struct buf		 b = { 0 };

	/*
	 * The parent's pre-screen reads the decoded fields only; without the
	 * header block each of the batches it holds is a third of the size.
	 */
	free(m->headers);
	m->headers = NULL;
	m->headers_len = 0;
	buf_put_u32(&b, uid);
	buf_put_u32(&b, size);
	message_serialize(m, &b);
	message_free(m);
	send_or_die(sink->f, F_HEADER, &b);
	if (hb->count < IMAP_FETCH_BATCH) {	/* imap.c passes only the UIDs asked for */
		hb->uids[hb->count] = uid;
		hb->sizes[hb->count] = size;
	}
	hb->count++;
	if (uid > hb->high)
		hb->high = uid;
}

/*
 * The UIDs a sync fetches: those a SEARCH listed, or every UID from lo to
 * end in ranges one batch wide.
 */
struct todo {
	bool		 ranges;
	uint32_t	*uids;
	size_t		 n, next;
	uint64_t	 lo;
	uint32_t	 end;
};

static bool
todo_left(const struct todo *t)
{
	return t->ranges ? t->lo <= t->end : t->next < t->n;
}

/*
 * Whether to fetch last+1 .. UIDNEXT-1 in ranges rather than SEARCH for
 * the UIDs first.  A range one batch wide never holds more than a batch,
 * and skipping the SEARCH saves a round trip on every poll that finds new
 * mail, and on a first scan a listing of every UID (50 ms of Dovecot's
 * time at 50,000 messages).  Only a date limit needs the SEARCH, and UIDs
 * so sparse that most ranges would come back nearly empty: then ranges
 * may cost up to twice the commands that all the folder's messages
 * would take in batches, no more.
 */
static bool
ranges_pay(const struct imap_folder *st, uint32_t last, uint64_t since)
{
	uint64_t	span, ranges, batches;

	if (since != 0 || st->uidnext <= (uint64_t)last + 1)
		return false;
	span = (uint64_t)st->uidnext - 1 - last;
	ranges = (span + IMAP_FETCH_BATCH - 1) / IMAP_FETCH_BATCH;
	batches = ((uint64_t)st->exists + IMAP_FETCH_BATCH - 1) / IMAP_FETCH_BATCH;
	return ranges <= 1 || ranges <= 2 * batches;
}

/*
 * Fetches the next batch's headers and sends them to the parent as one
 * batch; false when a range held no message, which sends nothing.
 */
static bool
send_batch(struct fetcher_ctx *f, struct todo *t, struct header_batch *hb)
{
	struct header_sink	 sink = { f, hb };
	struct buf		 b = { 0 };
	enum result		 res;
	uint32_t		 hi;
	size_t			 m;

	if (hb->uids == NULL) {
		hb->uids = xreallocarray(NULL, IMAP_FETCH_BATCH, sizeof(*hb->uids));
		hb->sizes = xreallocarray(NULL, IMAP_FETCH_BATCH, sizeof(*hb->sizes));
	}
	hb->count = 0;
	hb->high = 0;
	if (!t->ranges) {
		m = t->n - t->next < IMAP_FETCH_BATCH ? t->n - t->next : IMAP_FETCH_BATCH;
		res = imap_fetch_headers(f->imap, t->uids + t->next, m, on_header, &sink);
		/* Progress passes what the SEARCH listed, even if expunged since. */
		hb->high = t->uids[t->next + m - 1];
		t->next += m;
	} else {
		hi = t->end - t->lo < IMAP_FETCH_BATCH ? t->end : (uint32_t)t->lo + IMAP_FETCH_BATCH - 1;
		/* Progress passes only UIDs the server sent (on_header): none is skipped unseen. */
		res = imap_fetch_header_range(f->imap, (uint32_t)t->lo, hi, on_header, &sink);
		t->lo = (uint64_t)hi + 1;
	}
	if (res != R_OK)
		fetcher_fail(f, res, "UID FETCH headers");
	if (hb->count == 0 && t->ranges)
		return false;
	buf_put_u32(&b, hb->high);
	buf_put_u32(&b, hb->count);
	send_or_die(f, F_BATCH, &b);
	return true;
}

/* Reads the parent's next F_WANT; returns the UIDs wanted, NULL when it wants none. */
static uint32_t *
recv_want(struct fetcher_ctx *f, size_t *n)
{
	enum frame_type	 type;
	struct reader	 r;
	char		*fields;
	uint32_t	*uids = NULL;
	size_t		 i;

	if (frame_recv(f->fd, &type, &fields, &r) == -1 || type != F_WANT) {
		free(fields);
		imap_free(f->imap);
		_exit(0);
	}
	*n = rd_u32(&r);
	if (*n > IMAP_FETCH_BATCH)
		r.bad = true;
	else if (*n > 0) {
		uids = xreallocarray(NULL, *n, sizeof(*uids));
		for (i = 0; i < *n; i++)
			uids[i] = rd_u32(&r);
	}
	free(fields);
	if (r.bad)
		fetcher_fail(f, R_RETRY, "malformed F_WANT from the parent");
	return uids;
}

/* Has the parent written something we have not read (an F_WANT)? */
static bool
parent_waiting(int fd)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };

	return poll(&pfd, 1, 0) > 0;
}

static int
uid_order(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The size the server gave for uid in hb, or the most a body fetch takes when unknown. */
static size_t
batch_size_of(const struct header_batch *hb, uint32_t uid)
{
	size_t	i;

	for (i = 0; i < hb->count && i < IMAP_FETCH_BATCH; i++)
		if (hb->uids[i] == uid)
			return hb->sizes[i] < MESSAGE_MAX_BYTES ? hb->sizes[i] : MESSAGE_MAX_BYTES;
	return MESSAGE_MAX_BYTES;
}

static void
on_body(uint32_t uid, const char *raw, size_t len, void *arg)
{
	struct fetcher_ctx	*f = arg;
	struct message		*m = message_parse(raw, len, false, true);
	struct buf		 b = { 0 };

	buf_put_u32(&b, uid);
	message_serialize(m, &b);
	message_free(m);
	send_or_die(f, F_MESSAGE, &b);
}

static void
fetch_bodies(struct fetcher_ctx *f, const struct header_batch *hb, uint32_t *uids, size_t n)
{
	struct buf	 b = { 0 };
	enum result	 r;
	size_t		 i, m, bytes;
	bool		 small;

	qsort(uids, n, sizeof(*uids), uid_order);
	for (i = 0; i < n; i += m) {
		bytes = batch_size_of(hb, uids[i]);
		small = bytes < MESSAGE_MAX_BYTES;
		for (m = 1; i + m < n && m < FETCHER_GROUP_MAX; m++) {
			size_t	next = batch_size_of(hb, uids[i + m]);

			if (bytes + next > FETCHER_GROUP_BYTES)
				break;
			bytes += next;
			small &= next < MESSAGE_MAX_BYTES;
		}
		r = imap_fetch_messages(f->imap, uids + i, m, MESSAGE_MAX_BYTES, small, on_body, f);
		if (r != R_OK)
			fetcher_fail(f, r, "fetching messages");
	}
	send_or_die(f, F_BODIES_DONE, &b);
}

/*
 * Answers the parent's next F_WANT about the oldest batch in flight: its
 * bodies, or, when it wants none, the batch is finished and leaves.
 * Returns the highest UID of a finished batch, 0 otherwise.
 */
static uint32_t
serve_want(struct fetcher_ctx *f, struct in_flight *fl)
{
	struct header_batch	*hb = &fl->b[fl->first];
	uint32_t		*want, high;
	size_t			 n;

	if ((want = recv_want(f, &n)) != NULL) {
		fetch_bodies(f, hb, want, n);
		free(want);
		return 0;
	}
	high = hb->high;
	fl->first = (fl->first + 1) % NELEM(fl->b);
	fl->n--;
	return high;
}

static void
do_sync(struct fetcher_ctx *f, struct reader *r)
{
	struct imap_folder	 st;
	struct in_flight	 fl;
	struct todo		 todo = { 0 };
	struct buf		 b = { 0 };
	uint32_t		 known, last, high, done;
	uint64_t		 since;
	size_t			 i;
	enum result		 res;
	char			*folder;
	bool			 reset;

	folder = rd_str(r);
	known = rd_u32(r);
	last = rd_u32(r);
	since = rd_u64(r);
	if (r->bad || folder == NULL)
		fetcher_fail(f, R_RETRY, "malformed F_SYNC from the parent");

	if ((res = imap_examine(f->imap, folder, &st)) == R_SKIP) {
		buf_put_u32(&b, R_SKIP);
		buf_put_str(&b, folder);
		send_or_die(f, F_ERROR, &b);
		buf_put_str(&b, folder);
		buf_put_u32(&b, known);
		buf_put_u32(&b, last);
		send_or_die(f, F_SYNC_DONE, &b);
		free(folder);
		return;
	}
	if (res != R_OK)
		fetcher_fail(f, res, "EXAMINE");
	reset = known != 0 && st.uidvalidity != known;
	if (reset)
		last = 0;	/* new UIDVALIDITY: every UID is new; cases dedupe by Message-ID */
	buf_put_str(&b, folder);
	buf_put_u32(&b, st.uidvalidity);
	buf_put_u32(&b, st.uidnext);
	buf_put_u32(&b, st.exists);
	buf_put_u32(&b, reset);
	send_or_die(f, F_FOLDER, &b);

	high = last;
	/* Nothing new when UIDNEXT says so: an idle poll costs one EXAMINE. */
	if (ranges_pay(&st, last, since)) {
		todo.ranges = true;
		todo.lo = (uint64_t)last + 1;
		todo.end = st.uidnext - 1;
		log_debug("%s: %s: UIDs %u to %u in ranges", f->acct->name, folder, last + 1, todo.end);
	} else if (st.uidnext == 0 || st.uidnext > (uint64_t)last + 1) {
		res = imap_search(f->imap, last, (time_t)since, &todo.uids, &todo.n);
		if (res != R_OK)
			fetcher_fail(f, res, "UID SEARCH");
		log_debug("%s: %s: UID SEARCH listed %zu", f->acct->name, folder, todo.n);
	}
	/*
	 * Pipelined: the parent judges and records one batch while this
	 * process fetches the headers of the next ones, so the two processes
	 * (and the server) work side by side instead of in turns.  Bodies the
	 * parent waits for come before more headers; a batch leaves when the
	 * parent wants nothing more from it (a notice in a batch can make a
	 * later message of it, the rights owner's reply, a candidate).
	 */
	memset(&fl, 0, sizeof(fl));
	while (todo_left(&todo) || fl.n > 0) {
		if (fl.n > 0 && (fl.n == NELEM(fl.b) || !todo_left(&todo) || parent_waiting(f->fd))) {
			if ((done = serve_want(f, &fl)) != 0)
				high = done;
			continue;
		}
		if (send_batch(f, &todo, &fl.b[(fl.first + fl.n) % NELEM(fl.b)]))
			fl.n++;
	}
	for (i = 0; i < NELEM(fl.b); i++) {
		free(fl.b[i].uids);
		free(fl.b[i].sizes);
	}
	free(todo.uids);
	buf_put_str(&b, folder);
	buf_put_u32(&b, st.uidvalidity);
	buf_put_u32(&b, high);
	send_or_die(f, F_SYNC_DONE, &b);
	free(folder);
}

/* Returns 1 when the parent asked to wake (or quit), 0 on timeout or server data. */
static int
wait_idle(struct fetcher_ctx *f, int64_t deadline, bool *quit)
{
	struct pollfd	 pfd[2];
	enum frame_type	 type;
	struct reader	 r;
	char		*fields;
	int64_t		 left;
	int		 n;

	for (;;) {
		if (f->has_idle && imap_idle_pending(f->imap))
			return 0;
		left = deadline - now_mono_ms();
		if (left <= 0)
			return 0;
		pfd[0].fd = f->fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = f->has_idle ? imap_idle_fd(f->imap) : -1;
		pfd[1].events = POLLIN;
		n = poll(pfd, 2, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			fetcher_fail(f, R_RETRY, "poll");
		if (pfd[0].revents) {
			if (frame_recv(f->fd, &type, &fields, &r) == -1)
				*quit = true;
			else if (type == F_QUIT)
				*quit = true;
			free(fields);
			return 1;
		}
		if (pfd[1].revents)
			return 0;
	}
}

static void
do_idle(struct fetcher_ctx *f, struct reader *r)
{
	struct imap_folder	 st;
	struct buf		 b = { 0 };
	char			*folder = rd_str(r);
	uint32_t		 seconds = rd_u32(r);
	int64_t			 deadline;
	bool			 new_mail = false, quit = false;
	enum result		 res;

	if (r->bad || folder == NULL)
		fetcher_fail(f, R_RETRY, "malformed F_IDLE from the parent");
	if (seconds > IMAP_IDLE_MAX_SEC)
		seconds = IMAP_IDLE_MAX_SEC;
	deadline = now_mono_ms() + (int64_t)seconds * 1000;
	if (f->has_idle && (res = imap_examine(f->imap, folder, &st)) != R_OK)
		fetcher_fail(f, res == R_SKIP ? R_RETRY : res, "EXAMINE before IDLE");
	/*
	 * Servers send keepalives ("* OK Still here") inside IDLE; those end one
	 * IDLE round but not the wait, so only new mail, the parent or the
	 * deadline answer the parent.
	 */
	while (!new_mail && !quit) {
		if (f->has_idle && (res = imap_idle_start(f->imap)) != R_OK)
			fetcher_fail(f, R_RETRY, "IDLE");
		if (wait_idle(f, deadline, &quit) == 1) {
			if (f->has_idle && imap_idle_done(f->imap, &new_mail) != R_OK)
				fetcher_fail(f, R_RETRY, "IDLE DONE");
			break;
		}
		if (f->has_idle && imap_idle_done(f->imap, &new_mail) != R_OK)
			fetcher_fail(f, R_RETRY, "IDLE DONE");
		if (now_mono_ms() >= deadline)
			break;
	}
	free(folder);
	if (quit) {
		imap_free(f->imap);
		_exit(0);
	}
	buf_put_u32(&b, new_mail);
	send_or_die(f, F_IDLE_DONE, &b);
}

static void
limit_resources(void)
{
	struct rlimit	rl = { 0, 0 };

	setrlimit(RLIMIT_CORE, &rl);	/* a crash must not leave mail on disk */
	rl.rlim_cur = rl.rlim_max = 64;
	setrlimit(RLIMIT_NOFILE, &rl);
#ifndef __SANITIZE_ADDRESS__
	/* Room for a whole MESSAGE_MAX_BYTES message several times over, no more. */
	rl.rlim_cur = rl.rlim_max = 1024UL * 1024 * 1024;
	setrlimit(RLIMIT_AS, &rl);
#endif
}

/* What a finished pass cost: the figures `make bench` reads. */
static void
report_usage(const struct fetcher_ctx *f)
{
	struct rusage	ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		ru.ru_maxrss = 0;
	log_info("%s: fetcher done: %llu bytes received, peak RSS %ld KiB, private %ld KiB",
	    f->acct->name, (unsigned long long)imap_bytes_received(f->imap), ru.ru_maxrss,
	    proc_rss_anon_kib());
}

/* The account and its secret, the first frame; exits when the parent sends anything else. */
static char *
recv_setup(int fd, struct conf_account *acct)
{
	enum frame_type	 type;
	struct reader	 r;
	char		*fields, *secret;

	if (frame_recv(fd, &type, &fields, &r) == -1)
		_exit(0);
	if (type != F_SETUP || !frame_get_account(&r, acct) ||
	    (secret = rd_str(&r)) == NULL || r.bad) {
		log_warnx("malformed F_SETUP from the parent");
		_exit(FETCHER_EXIT_RETRY);
	}
	explicit_bzero(fields, (size_t)(r.p - (const unsigned char *)fields));
	free(fields);
	return secret;
}

void
fetcher_run(int fd)
{
	struct conf_account	 acct = { 0 };
	struct fetcher_ctx	 f = { &acct, NULL, fd, false, { NULL, 0, 0 } };
	struct buf		 b = { 0 };
	enum frame_type		 type;
	struct reader		 r;
	enum result		 res;
	char			*fields, *sent, *secret;

	signal(SIGPIPE, SIG_IGN);
	limit_resources();
	log_capture_warnings(1);
	secret = recv_setup(fd, &acct);
	f.imap = imap_new(&acct, secret);	/* copies it */
	explicit_bzero(secret, strlen(secret));
	free(secret);
	if ((res = imap_connect(f.imap)) != R_OK)
		fetcher_fail(&f, res, "connect");
	f.has_idle = imap_has_idle(f.imap);
	sent = acct.sent_folder != NULL ? xstrdup(acct.sent_folder) : imap_find_sent(f.imap);
	buf_put_str(&b, sent);
	buf_put_u32(&b, f.has_idle);
	free(sent);
	send_or_die(&f, F_READY, &b);

	for (;;) {
		if (frame_recv(fd, &type, &fields, &r) == -1)
			break;
		switch (type) {
		case F_SYNC:
			do_sync(&f, &r);
			break;
		case F_IDLE:
			do_idle(&f, &r);
			break;
		case F_WAKE:
			break;		/* arrived after the IDLE ended: nothing to wake */
		case F_QUIT:
			free(fields);
			goto out;
		default:
			free(fields);
			fetcher_fail(&f, R_RETRY, "unexpected frame from the parent");
		}
		free(fields);
	}
out:
	report_usage(&f);
	imap_free(f.imap);
	_exit(0);
}
