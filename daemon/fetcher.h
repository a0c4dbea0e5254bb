/* fetcher.h — one child process per account owns the IMAP conversation and the parsing of what the server sends. */
#ifndef IPCASED_FETCHER_H
#define IPCASED_FETCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "util.h"

/*
 * The parent and a fetcher talk over a socketpair in frames: a u32 length,
 * then a u32 type and the fields (util.h buf_put_* encoding).  The parent
 * drives; the fetcher answers.  A fetcher that dies, hangs or sends a bad
 * frame is killed and restarted with back-off (sync.c); the parent never
 * parses IMAP or MIME itself.
 */
enum frame_type {
	/* parent -> fetcher */
	F_SYNC = 1,	/* str folder, u32 known uidvalidity, u32 last uid, u64 since (0 = all) */
	F_WANT,		/* u32 n, n x u32 uid: bodies wanted from the last header batch */
	F_IDLE,		/* str folder, u32 seconds: wait in IDLE (or sleep without IDLE) */
	F_WAKE,		/* leave IDLE now */
	F_QUIT,
	/* fetcher -> parent */
	F_READY = 16,	/* str sent folder or NULL, u32 has_idle */
	F_FOLDER,	/* str folder, u32 uidvalidity, u32 uidnext, u32 exists, u32 reset (uidvalidity changed) */
	F_HEADER,	/* u32 uid, u32 size, message (headers only) */
	F_BATCH,	/* u32 highest uid of the batch, u32 count */
	F_MESSAGE,	/* u32 uid, message (whole) */
	F_BODIES_DONE,
	F_SYNC_DONE,	/* str folder, u32 uidvalidity, u32 highest uid seen */
	F_IDLE_DONE,	/* u32 new mail (0/1) */
	F_ERROR		/* u32 enum result, str text; R_RETRY and R_FATAL end the fetcher */
};

/* Largest frame: a whole message (MESSAGE_MAX_BYTES) with its decoded text. */
#define FRAME_MAX	(64u * 1024 * 1024)

/* Exit codes of a fetcher, read by the parent to choose the back-off. */
#define FETCHER_EXIT_RETRY	75	/* network or server trouble (EX_TEMPFAIL) */
#define FETCHER_EXIT_FATAL	78	/* certificate or login refused: needs the admin (EX_CONFIG) */

/*
 * Forks a fetcher for acct.  secret (password or access token) was read by
 * the parent; the child needs no file access.  Returns the child's pid and
 * the parent's end of the socketpair in *fd, or -1 (logged).
 */
pid_t	fetcher_spawn(const struct conf *, const struct conf_account *, const char *secret, int *fd);

/*
 * The parent's side of a fetcher socket: frames are read in large chunks
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

#endif
