/* frame.h — the frames the daemon and its helper processes (fetchers, the sender) exchange over a socketpair. */
#ifndef IPCASED_FRAME_H
#define IPCASED_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "smtp.h"
#include "token.h"
#include "util.h"

/*
 * The parent and a helper talk over a socketpair in frames: a u32 length,
 * then a u32 type and the fields (util.h buf_put_* encoding).  The parent
 * drives; the helper answers.  A fetcher that dies, hangs or sends a bad
 * frame is killed and restarted with back-off (sync.c); the parent never
 * parses IMAP or MIME itself.
 */
enum frame_type {
	/* parent -> fetcher */
	F_SETUP = 1,	/* the account (frame_put_account), str secret: first frame, once */
	F_SYNC,		/* str folder, u32 known uidvalidity, u32 last uid, u64 since (0 = all) */
	F_WANT,		/* u32 n, n x u32 uid: bodies wanted from the oldest unfinished
			   header batch; n = 0 finishes it (its effects are committed) */
	F_IDLE,		/* str folder, u32 seconds: wait in IDLE (or sleep without IDLE) */
	F_WAKE,		/* leave IDLE now */
	F_QUIT,
	/* parent -> sender (ipcased-send), one request per process */
	F_SMTP,		/* smtp_job_put(): deliver one message */
	F_TOKEN,	/* token_job_put(): renew an OAuth access token */
	/* fetcher -> parent */
	F_READY = 16,	/* str sent folder or NULL, u32 has_idle */
	F_FOLDER,	/* str folder, u32 uidvalidity, u32 uidnext, u32 exists, u32 reset (uidvalidity changed) */
	F_HEADER,	/* u32 uid, u32 size, message (decoded header fields only: no
			   header block, no dedupe digest) */
	F_BATCH,	/* u32 highest uid of the batch, u32 count */
	F_MESSAGE,	/* u32 uid, message (whole) */
	F_BODIES_DONE,
	F_SYNC_DONE,	/* str folder, u32 uidvalidity, u32 highest uid seen */
	F_IDLE_DONE,	/* u32 new mail (0/1) */
	F_ERROR,	/* u32 enum result, str text; R_RETRY and R_FATAL end the fetcher */
	/* sender -> parent */
	F_SMTP_DONE = 48,	/* smtp_result_put() */
	F_TOKEN_DONE		/* token_reply_put() */
};

/*
 * Header batches a fetcher may have sent that the parent has not finished:
 * the one being judged and two more.  With fewer, the fetcher would wait
 * while the parent records a batch, the server idle; each batch waiting
 * costs the parent its decoded headers in memory.
 */
#define SYNC_BATCHES_IN_FLIGHT	3

/* Largest frame: a whole message (MESSAGE_MAX_BYTES) with its decoded text. */
#define FRAME_MAX	(64u * 1024 * 1024)

/* Exit codes of a fetcher, read by the parent to choose the back-off. */
#define FETCHER_EXIT_RETRY	75	/* network or server trouble (EX_TEMPFAIL) */
#define FETCHER_EXIT_FATAL	78	/* certificate or login refused: needs the admin (EX_CONFIG) */

/*
 * The parent's side of a helper socket: frames are read in large chunks
 * without blocking, so a batch of headers costs a few system calls rather
 * than two per message, and a large message never stalls the main loop.
 */
struct frame_reader {
	int		fd;
	struct buf	in;		/* bytes read, not yet consumed from off */
	size_t		off;
};

/*
 * The next whole frame: 1 with *fields malloc'd (free it) and r over it; 0
 * when no whole frame is buffered and the socket has nothing more now; -1 on
 * end of file, an error or a malformed frame.
 */
int	frame_next(struct frame_reader *, enum frame_type *, char **fields, struct reader *r);
void	frame_reader_reset(struct frame_reader *, int fd);	/* frees the buffer; fd -1 for none */

/* Frames: 0 on success, -1 on a closed peer, an I/O error or a malformed frame (logged at debug). */
int	frame_send(int fd, enum frame_type, const struct buf *fields);
/* Reads one frame; *fields is malloc'd (free it) and r points into it. */
int	frame_recv(int fd, enum frame_type *, char **fields, struct reader *r);

/* Writes out whole (frames appended with frame_append) and empties it; -1 on an error. */
int	frame_flush(int fd, struct buf *out);
/* Appends one frame to out; -1 (logged) when it is larger than FRAME_MAX. */
int	frame_append(struct buf *out, enum frame_type, const struct buf *fields);

/*
 * An account's IMAP settings, all a fetcher needs of the configuration (it
 * reads no file).  frame_get_account() fills a zeroed struct with malloc'd
 * strings (free with conf_account_clear()); false on a malformed record.
 */
void	frame_put_account(struct buf *, const struct conf_account *);
bool	frame_get_account(struct reader *, struct conf_account *);

/* The sender's requests and answers (smtp.h, token.h). */
void	smtp_job_put(struct buf *, const struct smtp_job *);
bool	smtp_job_get(struct reader *, struct smtp_job *);	/* fills a zeroed job; false if malformed */
void	smtp_job_clear(struct smtp_job *);			/* wipes the password */
/* The reply kept on the outbox row; a long one is cut (the log line has it whole). */
void	smtp_reply_set(struct send_result *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void	smtp_result_put(struct buf *, int ret, const struct send_result *);
int	smtp_result_get(struct reader *, struct send_result *);	/* the R_* code, -1 if malformed */

/* The get functions fill zeroed structs. */
void	token_job_put(struct buf *, const struct token_job *);
bool	token_job_get(struct reader *, struct token_job *);
void	token_job_clear(struct token_job *);		/* wipes the secrets */
void	token_reply_put(struct buf *, const struct token_reply *);
bool	token_reply_get(struct reader *, struct token_reply *);
void	token_reply_clear(struct token_reply *);	/* wipes the tokens */

#endif
