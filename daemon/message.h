/* message.h — one RFC 5322 message -> decoded headers + UTF-8 text (GMime: MIME, charsets, HTML). */
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
	char	 *dedupe_key;		/* message_id, else "sha256:" of stable headers; never NULL */

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

/*
 * Decodes raw (a whole message, or only its header block: then MSG_NO_BODY).
 * Never fails: anything unparseable yields empty fields and MSG_MALFORMED.
 * keep_raw copies raw into ->raw.  Returns a message the caller frees with
 * message_free().
 */
struct message	*message_parse(const char *raw, size_t len, bool headers_only, bool keep_raw);
void		 message_free(struct message *);	/* NULL is a no-op */

/* The value of one header of the raw header block, unfolded and RFC 2047-decoded; malloc'd or NULL. */
char		*message_header(const struct message *, const char *name);

/* For the fetcher socket: lossless encoding of every field (raw included). */
void		 message_serialize(const struct message *, struct buf *);
struct message	*message_deserialize(struct reader *);	/* NULL if the record is bad */

/* HTML (UTF-8) -> plain text: block elements break lines, script/style dropped, entities decoded. malloc'd. */
char		*html_to_text(const char *html, size_t len, size_t *out_len);

/* "user@Example.COM" checks: a plausible addr-spec (no spaces, controls, one @, a dot in the domain). */
bool		 address_valid(const char *);
/* The domain part of an address, or NULL. Points into its argument. */
const char	*address_domain(const char *);

#endif
