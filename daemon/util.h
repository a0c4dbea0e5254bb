/* util.h — allocation that exits on failure, a growable byte buffer, safe text for logs, secrets from files. */
#ifndef IPCASED_UTIL_H
#define IPCASED_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * <unistd.h> and <fcntl.h> define R_OK for access(); here R_OK is a result
 * code.  Both are included first so that their include guards keep them from
 * defining it again later; call access() with ACCESS_READ instead.
 */
#include <fcntl.h>
#include <unistd.h>
#undef R_OK
#define ACCESS_READ	4

/* What a caller should do next; shared by every module that talks to the outside. */
enum result {
	R_OK = 0,	/* done */
	R_RETRY,	/* connection or server trouble: try again later with back-off */
	R_SKIP,		/* this item is bad: log it, move on, never retry it */
	R_FATAL		/* configuration or programming error: stop */
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);			/* NULL in, NULL out */
char	*xstrndup(const char *, size_t);
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* A growable buffer of bytes, always NUL-terminated past len. */
struct buf {
	char	*data;		/* owned; NULL until the first append */
	size_t	 len;
	size_t	 cap;
};
void	 buf_append(struct buf *, const void *, size_t);
void	 buf_reserve(struct buf *, size_t);	/* room for n more bytes: one allocation for a known size */
void	 buf_puts(struct buf *, const char *);
void	 buf_printf(struct buf *, const char *, ...) __attribute__((format(printf, 2, 3)));
char	*buf_steal(struct buf *);		/* returns data (never NULL), leaves buf empty */
void	 buf_free(struct buf *);

/*
 * Length-prefixed fields for the fetcher socket and other binary records:
 * u32 little-endian lengths, strings may hold any byte.  A reader that runs
 * past its end sets ->bad and returns zero values from then on.
 */
void	 buf_put_u32(struct buf *, uint32_t);
void	 buf_put_u64(struct buf *, uint64_t);
void	 buf_put_bytes(struct buf *, const void *, size_t);
void	 buf_put_str(struct buf *, const char *);	/* NULL is kept distinct from "" */
struct reader {
	const unsigned char	*p;
	size_t			 left;
	bool			 bad;
};
uint32_t rd_u32(struct reader *);
uint64_t rd_u64(struct reader *);
char	*rd_bytes(struct reader *, size_t *);	/* malloc'd copy, NUL-terminated; NULL if bad */
char	*rd_str(struct reader *);		/* malloc'd, NULL for a stored NULL */

/*
 * Untrusted text for a log line: control characters and DEL as \xNN,
 * invalid UTF-8 as \xNN, cut at max bytes with "...".  Returns a malloc'd
 * string; the caller frees it.  NULL in, "(null)" out.
 */
char	*str_for_log(const char *, size_t max);

bool	 utf8_valid(const char *, size_t);
/* Length of the valid UTF-8 sequence at s (1-4, never past left), or 0 when invalid or left is 0. */
size_t	 utf8_char_len(const char *, size_t left);
/* Replaces invalid UTF-8 sequences with U+FFFD and NULs with spaces; malloc'd. */
char	*utf8_sanitize(const char *, size_t);
void	 str_lower(char *);
char	*str_trim(char *);			/* in place; returns its argument moved past spaces */
/*
 * Skips white space (folding included) and comments with quoted pairs, as in
 * RFC 5322 CFWS; comments nest up to max_depth, deeper ones are skipped flat.
 * Returns the position of the next byte (the NUL at the end at the most).
 */
const char *str_skip_cfws(const char *, int max_depth);
/* Skips a quoted string with quoted pairs, from its opening '"'; returns the position after the closing one (or the NUL). */
const char *str_skip_quoted(const char *);

void	 strv_free(char **);			/* NULL-terminated string vectors */
size_t	 strv_len(char *const *);

/*
 * Reads a secret (password, token) from a file: the first line, without its
 * newline.  A relative path is looked up in $CREDENTIALS_DIRECTORY first, when
 * set, then relative to basedir.  Refuses a file readable by group or others.
 * Returns 0, or -1 with a message in err.
 */
int	 secret_read(const char *path, const char *basedir, char **out, char *err, size_t errlen);

/* Wall clock, seconds since the epoch (UTC), and monotonic milliseconds. */
time_t	 now_wall(void);
int64_t	 now_mono_ms(void);

/* "90s", "15m", "24h", "3d", "2w" -> seconds; -1 on a bad duration. */
long	 duration_parse(const char *);
/* 90061 -> "1d 1h"; writes into buf, returns buf. */
char	*duration_format(long seconds, char *buf, size_t len);

/*
 * Private (anonymous) resident memory of this process now, in KiB, from
 * /proc/self/status; -1 when unknown.  Peak RSS from getrusage() also counts
 * the pages of shared libraries, which every process on the host shares.
 */
long	 proc_rss_anon_kib(void);

/* Reads a whole file (up to max bytes); malloc'd, NUL-terminated; NULL with errno set. */
char	*file_read(const char *path, size_t max, size_t *len);

#endif
