/* message.h — a decoded message (decoding: mime.h), its raw header block, and its wire format between the fetcher and the daemon. */
#ifndef IPCASED_MESSAGE_H
#define IPCASED_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util.h"

/* Limits that keep hostile mail cheap; each one hit is logged and flagged. */
#define MESSAGE_MAX_BYTES	(25u * 1024 * 1024)	/* whole message */
#define MESSAGE_MAX_DEPTH	32			/* MIME nesting */
#define MESSAGE_MAX_PARTS	500
#define MESSAGE_MAX_TEXT	(2u * 1024 * 1024)	/* decoded text kept */
#define MESSAGE_MAX_HEADER_LINES 5000

/* Why a message was decoded only in part (message.flags). */
#define MSG_TRUNCATED		0x01	/* larger than MESSAGE_MAX_BYTES or MAX_TEXT */
#define MSG_TOO_DEEP		0x02
#define MSG_TOO_MANY_PARTS	0x04
#define MSG_BAD_CHARSET		0x08	/* unknown charset or invalid bytes replaced */
#define MSG_NO_BODY		0x10	/* headers only were given */
#define MSG_MALFORMED		0x20	/* MIME structure broken; text recovered where possible */
#define MSG_TOO_MANY_HEADERS	0x40

/* All strings owned, UTF-8, free of NUL, CR and LF unless stated; NULL when absent. */
struct message {
	char	 *from_addr;		/* addr-spec, domain lower-cased */
	char	 *from_name;		/* display name, decoded */
	char	 *reply_to_addr;
	char	 *return_path;		/* addr-spec without <>, "" for the null sender <> */
	char	**to_addrs;		/* To and Cc addr-specs, NULL-terminated, never NULL */
	char	 *subject;		/* decoded, folded to one line */
	time_t	  date;			/* Date: header, UTC; 0 when absent or invalid */
	char	 *message_id;		/* normalised by msgid_normalize() */
	char	 *in_reply_to;		/* first valid id, normalised */
	char	**references;		/* normalised ids, oldest first, NULL-terminated, never NULL */
	char	**auth_results;		/* Authentication-Results values, topmost first, unfolded; never NULL */
	char	 *auto_submitted;	/* Auto-Submitted value, lower case */
	char	 *precedence;		/* Precedence value, lower case */
	bool	  has_list_id;		/* List-Id or List-Unsubscribe present */
	char	 *content_type;		/* top-level type/subtype, lower case */
	char	 *dedupe_key;		/* message_id, else "sha256:" of stable headers ("" for a
					   header-only parse, which is never stored); never NULL */

	char	 *text;			/* body text (plain parts, else HTML as text), may contain newlines; NULL with MSG_NO_BODY */
	size_t	  text_len;
	char	 *forwarded_text;	/* forwarded mail kept apart: message/rfc822 parts and inline "Forwarded message" blocks; NULL if none */
	size_t	  forwarded_len;
	unsigned  flags;		/* MSG_* */

	char	 *raw;			/* the bytes as fetched (evidence); may hold NULs */
	size_t	  raw_len;

	/* Private to message.c: the top header block (NULs as spaces, at most MESSAGE_MAX_HEADER_LINES) for message_header(). */
	char	 *headers;
	size_t	  headers_len;
};

void		 message_free(struct message *);	/* NULL is a no-op */

/* The value of one header of the raw header block, unfolded and RFC 2047-decoded; malloc'd or NULL. */
char		*message_header(const struct message *, const char *name);

/* For the fetcher socket: lossless encoding of every field (raw included). */
void		 message_serialize(const struct message *, struct buf *);
struct message	*message_deserialize(struct reader *);	/* NULL if the record is bad */

/* "user@Example.COM" checks: a plausible addr-spec (no spaces, controls, one @, a dot in the domain). */
bool		 address_valid(const char *);
/* The domain part of an address, or NULL. Points into its argument. */
const char	*address_domain(const char *);

/* The domain part lowered in place: domains compare case-insensitively. */
void		 address_lower_domain(char *addr);

/*
 * Reading a raw header block (for mime.c and message_header()).  One field:
 * its name, and its value from after the colon to the end of its last line.
 */
struct header_field {
	const char	*name;
	size_t		 name_len;
	const char	*value;
	size_t		 value_len;
};

/* The next field of block[*pos..len); false at the empty line or the end. */
bool		 header_field_next(const char *block, size_t len, size_t *pos, struct header_field *);
bool		 header_field_is(const struct header_field *, const char *name);	/* case-insensitive */
char		*header_field_unfold(const struct header_field *);	/* CR, LF removed, trimmed; malloc'd */

/*
 * Untrusted text as one clean line: invalid UTF-8 replaced, controls and
 * line separators as spaces, runs of white space collapsed, trimmed;
 * malloc'd.  text_one_line_g() takes a GLib string (freed) and returns
 * NULL for NULL or empty.
 */
char		*text_one_line(const char *s, size_t len);
char		*text_one_line_g(char *gs);

void		 message_gmime_init(void);	/* once, before GMime's header utilities */

#endif
