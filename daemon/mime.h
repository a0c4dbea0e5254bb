/* mime.h — decoding one RFC 5322 message (GMime: MIME, charsets; libxml2: HTML) into a struct message. */
#ifndef IPCASED_MIME_H
#define IPCASED_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "message.h"

/*
 * Decodes raw (a whole message, or only its header block: then MSG_NO_BODY).
 * Never fails: anything unparseable yields empty fields and MSG_MALFORMED.
 * keep_raw copies raw into ->raw.  Returns a message the caller frees with
 * message_free().
 */
struct message	*message_parse(const char *raw, size_t len, bool headers_only, bool keep_raw);
/*
 * For tests: false sends every header field to GMime, bypassing the fast
 * paths for simple addresses, subjects, dates and content types; both
 * must decode every field alike.  On by default.
 */
void		 mime_set_fast_paths(bool on);
/* HTML (UTF-8) -> plain text: block elements break lines, script/style dropped, entities decoded. malloc'd. */
char		*html_to_text(const char *html, size_t len, size_t *out_len);

#endif
