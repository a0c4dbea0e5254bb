/* message.c — the decoded message: its fields, its header block, its wire format between the fetcher and the daemon. */
#include "message.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "log.h"
#include "util.h"

#define MESSAGE_RECORD_MAGIC	0x3147534dU	/* "MSG1" */
#define MESSAGE_ALL_FLAGS	(MSG_TRUNCATED | MSG_TOO_DEEP | MSG_TOO_MANY_PARTS | \
				 MSG_TOO_MANY_HEADERS | MSG_BAD_CHARSET | MSG_NO_BODY | MSG_MALFORMED)

static bool	mime_ready;

/* GMime decodes the header fields; it is set up on first use. */
void
message_gmime_init(void)
{
	if (!mime_ready) {
		g_mime_init();
		mime_ready = true;
	}
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Makes untrusted text one clean line: invalid UTF-8 replaced, controls,
 * C1 controls and line separators become spaces, runs of white space
 * collapse, both ends are trimmed.  Returns malloc'd.
 *
 * One pass writing straight into the result: this runs on most header
 * values of every message.  The result is never longer than the input
 * except for invalid bytes, each a 3-byte U+FFFD; at the first one the
 * room grows to three bytes for every byte left, once.
 */
char *
text_one_line(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t		 i = 0, n, o = 0, cap = len + 2;
	bool		 space = false;
	char		*out = xmalloc(cap);

	while (i < len) {
		if (p[i] < 0x80) {
			if (p[i] <= ' ' || p[i] == 0x7f) {
				space = true;	/* NUL, controls, DEL, space */
				i++;
				continue;
			}
			if (space && o > 0)
				out[o++] = ' ';
			space = false;
			do	/* a run of printable ASCII, byte by byte: no call per byte */
				out[o++] = (char)p[i++];
			while (i < len && p[i] > ' ' && p[i] < 0x7f);
			continue;
		} else if ((n = utf8_char_len(s + i, len - i)) == 0) {
			if (cap - o < 3 * (len - i) + 2) {
				cap = o + 3 * (len - i) + 2;
				out = xreallocarray(out, cap, 1);
			}
			if (space && o > 0)
				out[o++] = ' ';
			space = false;
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		} else if ((n == 2 && p[i] == 0xc2 && p[i + 1] <= 0xa0) ||
		    (n == 3 && p[i] == 0xe2 && p[i + 1] == 0x80 &&
		    (p[i + 2] == 0xa8 || p[i + 2] == 0xa9))) {
			space = true;	/* C1 controls, no-break space, U+2028, U+2029 */
			i += n;
			continue;
		}
		if (space && o > 0)
			out[o++] = ' ';
		space = false;
		memcpy(out + o, p + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

/* text_one_line for a GLib string, which is freed; NULL when absent or empty. */
char *
text_one_line_g(char *gs)
{
	char	*s;

	if (gs == NULL)
		return NULL;
	s = text_one_line(gs, strlen(gs));
	g_free(gs);
	if (*s == '\0') {
		free(s);
		return NULL;
	}
	return s;
}

/* The domain of an address is case-insensitive: lower it for stable comparisons. */
void
address_lower_domain(char *addr)
{
	char	*at;

	if (addr != NULL && (at = strrchr(addr, '@')) != NULL)
		str_lower(at + 1);
}

bool
address_valid(const char *s)
{
	const char	*at, *p;

	if (s == NULL || (at = strchr(s, '@')) == NULL || at == s ||
	    strchr(at + 1, '@') != NULL)
		return false;
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '<' ||
		    *p == '>' || *p == ',' || *p == ';')
			return false;
	p = at + 1;
	if (*p == '\0' || *p == '.' || strchr(p, '.') == NULL ||
	    p[strlen(p) - 1] == '.' || strstr(p, "..") != NULL)
		return false;
	return utf8_valid(s, strlen(s));
}

const char *
address_domain(const char *s)
{
	const char	*at;

	if (s == NULL || (at = strrchr(s, '@')) == NULL || at[1] == '\0')
		return NULL;
	return at + 1;
}

/* Reads the next header field of block[*pos..len); false at the end of the block. */
bool
header_field_next(const char *block, size_t len, size_t *pos, struct header_field *f)
{
	const char	*nl, *c;
	size_t		 i, eol, colon;

	while (*pos < len) {
		i = *pos;
		if (block[i] == '\r' || block[i] == '\n')
			return false;	/* the empty line ends the block */
		/* A field runs on over continuation lines, which start with WSP. */
		for (eol = i; ; eol = (size_t)(nl - block) + 1) {
			if ((nl = memchr(block + eol, '\n', len - eol)) == NULL) {
				eol = len;
				break;
			}
			if ((size_t)(nl - block) + 1 >= len || !is_wsp(nl[1])) {
				eol = (size_t)(nl - block);
				break;
			}
		}
		*pos = eol < len ? eol + 1 : len;
		if (is_wsp(block[i]))
			continue;	/* a stray continuation: junk */
		if ((c = memchr(block + i, ':', eol - i)) == NULL)
			continue;	/* no colon: junk */
		colon = (size_t)(c - block);
		f->name = block + i;
		f->name_len = colon - i;
		while (f->name_len > 0 && is_wsp(f->name[f->name_len - 1]))
			f->name_len--;	/* "Subject :" (RFC 5322 obsolete syntax) */
		f->value = block + colon + 1;
		f->value_len = eol - colon - 1;
		return true;
	}
	return false;
}

bool
header_field_is(const struct header_field *f, const char *name)
{
	return f->name_len == strlen(name) && strncasecmp(f->name, name, f->name_len) == 0;
}

/* Bytes str_trim() would drop at either end once CR and LF are removed and NULs are spaces. */
static bool
unfold_trims(char c)
{
	return c == '\0' || c == ' ' || (c >= '\t' && c <= '\r');
}

/*
 * The value unfolded (CR and LF removed, NULs as spaces) and trimmed;
 * malloc'd.  The ends are trimmed first, the rest copied at once, and
 * only a value that holds CR, LF or NUL is then rewritten byte by byte.
 */
char *
header_field_unfold(const struct header_field *f)
{
	const char	*v = f->value, *e = f->value + f->value_len;
	char		*s, *r, *w;
	size_t		 n;

	while (v < e && unfold_trims(*v))
		v++;
	while (e > v && unfold_trims(e[-1]))
		e--;
	n = (size_t)(e - v);
	s = xmalloc(n + 1);
	memcpy(s, v, n);
	s[n] = '\0';
	if (memchr(s, '\n', n) == NULL && memchr(s, '\r', n) == NULL &&
	    memchr(s, '\0', n) == NULL)
		return s;
	for (r = w = s; r < s + n; r++)
		if (*r != '\r' && *r != '\n')
			*w++ = *r == '\0' ? ' ' : *r;
	*w = '\0';
	return s;
}


void
message_free(struct message *m)
{
	if (m == NULL)
		return;
	free(m->from_addr);
	free(m->from_name);
	free(m->reply_to_addr);
	free(m->return_path);
	strv_free(m->to_addrs);
	free(m->subject);
	free(m->message_id);
	free(m->in_reply_to);
	strv_free(m->references);
	strv_free(m->auth_results);
	free(m->auto_submitted);
	free(m->precedence);
	free(m->content_type);
	free(m->dedupe_key);
	free(m->text);
	free(m->forwarded_text);
	free(m->raw);
	free(m->headers);
	free(m);
}

char *
message_header(const struct message *m, const char *name)
{
	struct header_field	 f;
	size_t			 pos = 0;
	char			*v, *s;

	if (m == NULL || m->headers == NULL || name == NULL)
		return NULL;
	message_gmime_init();
	while (header_field_next(m->headers, m->headers_len, &pos, &f)) {
		if (!header_field_is(&f, name))
			continue;
		v = header_field_unfold(&f);
		s = text_one_line_g(g_mime_utils_header_decode_text(NULL, v));
		free(v);
		return s != NULL ? s : xstrdup("");
	}
	return NULL;
}

/* Serialisation: a magic number, then every field in struct order. */
static void
put_strv(struct buf *b, char **v)
{
	size_t	n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	buf_put_u32(b, (uint32_t)n);
	for (n = 0; v != NULL && v[n] != NULL; n++)
		buf_put_str(b, v[n]);
}

static void
put_opt_bytes(struct buf *b, const char *p, size_t len)
{
	buf_put_u32(b, p != NULL);
	if (p != NULL)
		buf_put_bytes(b, p, len);
}

/* The bytes of a string as buf_put_str() writes it. */
static size_t
str_size(const char *s)
{
	return 4 + (s != NULL ? strlen(s) : 0);
}

static size_t
strv_size(char *const *v)
{
	size_t	n = 4;

	while (v != NULL && *v != NULL)
		n += str_size(*v++);
	return n;
}

void
message_serialize(const struct message *m, struct buf *b)
{
	/* One allocation for the record: the header block alone would double the buffer four times. */
	buf_reserve(b, 4 * 10 + 8 + str_size(m->from_addr) + str_size(m->from_name) +
	    str_size(m->reply_to_addr) + str_size(m->return_path) + strv_size(m->to_addrs) +
	    str_size(m->subject) + str_size(m->message_id) + str_size(m->in_reply_to) +
	    strv_size(m->references) + strv_size(m->auth_results) +
	    str_size(m->auto_submitted) + str_size(m->precedence) + str_size(m->content_type) +
	    str_size(m->dedupe_key) + (m->text != NULL ? 4 + m->text_len : 0) +
	    (m->forwarded_text != NULL ? 4 + m->forwarded_len : 0) +
	    (m->raw != NULL ? 4 + m->raw_len : 0) + (m->headers != NULL ? 4 + m->headers_len : 0));
	buf_put_u32(b, MESSAGE_RECORD_MAGIC);
	buf_put_str(b, m->from_addr);
	buf_put_str(b, m->from_name);
	buf_put_str(b, m->reply_to_addr);
	buf_put_str(b, m->return_path);
	put_strv(b, m->to_addrs);
	buf_put_str(b, m->subject);
	buf_put_u64(b, (uint64_t)(int64_t)m->date);
	buf_put_str(b, m->message_id);
	buf_put_str(b, m->in_reply_to);
	put_strv(b, m->references);
	put_strv(b, m->auth_results);
	buf_put_str(b, m->auto_submitted);
	buf_put_str(b, m->precedence);
	buf_put_u32(b, m->has_list_id);
	buf_put_str(b, m->content_type);
	buf_put_str(b, m->dedupe_key);
	put_opt_bytes(b, m->text, m->text_len);
	put_opt_bytes(b, m->forwarded_text, m->forwarded_len);
	buf_put_u32(b, m->flags);
	put_opt_bytes(b, m->raw, m->raw_len);
	put_opt_bytes(b, m->headers, m->headers_len);
}

/* A text field: NULL allowed when nullable; NUL bytes or invalid UTF-8 spoil the record. */
static char *
rd_text(struct reader *r, bool nullable, size_t *lenp)
{
	struct reader	 save = *r;
	size_t		 len;
	char		*s;

	if (rd_u32(r) == UINT32_MAX) {
		if (!nullable)
			r->bad = true;
		return NULL;
	}
	if (r->bad)
		return NULL;
	*r = save;
	if ((s = rd_bytes(r, &len)) == NULL)
		return NULL;
	if (memchr(s, '\0', len) != NULL || !utf8_valid(s, len)) {
		free(s);
		r->bad = true;
		return NULL;
	}
	if (lenp != NULL)
		*lenp = len;
	return s;
}

static char **
rd_strv(struct reader *r)
{
	uint32_t	 n = rd_u32(r), i;
	char		**v;

	/* Each entry takes at least four bytes: a larger count is a lie. */
	if (r->bad || n > r->left / 4) {
		r->bad = true;
		return NULL;
	}
	v = xcalloc((size_t)n + 1, sizeof(*v));
	for (i = 0; i < n && !r->bad; i++)
		v[i] = rd_text(r, false, NULL);
	return v;
}

static char *
rd_opt(struct reader *r, bool text, size_t *lenp)
{
	uint32_t	present = rd_u32(r);

	*lenp = 0;
	if (present > 1)
		r->bad = true;
	if (r->bad || present == 0)
		return NULL;
	return text ? rd_text(r, false, lenp) : rd_bytes(r, lenp);
}

struct message *
message_deserialize(struct reader *r)
{
	struct message	*m;

	if (rd_u32(r) != MESSAGE_RECORD_MAGIC) {
		r->bad = true;
		return NULL;
	}
	m = xcalloc(1, sizeof(*m));
	m->from_addr = rd_text(r, true, NULL);
	m->from_name = rd_text(r, true, NULL);
	m->reply_to_addr = rd_text(r, true, NULL);
	m->return_path = rd_text(r, true, NULL);
	m->to_addrs = rd_strv(r);
	m->subject = rd_text(r, true, NULL);
	m->date = (time_t)(int64_t)rd_u64(r);
	m->message_id = rd_text(r, true, NULL);
	m->in_reply_to = rd_text(r, true, NULL);
	m->references = rd_strv(r);
	m->auth_results = rd_strv(r);
	m->auto_submitted = rd_text(r, true, NULL);
	m->precedence = rd_text(r, true, NULL);
	m->has_list_id = rd_u32(r) != 0;
	m->content_type = rd_text(r, false, NULL);
	m->dedupe_key = rd_text(r, false, NULL);
	m->text = rd_opt(r, true, &m->text_len);
	m->forwarded_text = rd_opt(r, true, &m->forwarded_len);
	m->flags = rd_u32(r);
	if (m->flags & ~(unsigned)MESSAGE_ALL_FLAGS)
		r->bad = true;
	m->raw = rd_opt(r, false, &m->raw_len);
	m->headers = rd_opt(r, false, &m->headers_len);
	if (r->bad || m->to_addrs == NULL || m->references == NULL || m->auth_results == NULL) {
		r->bad = true;
		message_free(m);
		return NULL;
	}
	return m;
}
