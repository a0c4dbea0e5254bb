/* mime.c — one RFC 5322 message -> decoded headers + UTF-8 text: GMime for MIME, iconv for charsets, libxml2 for HTML. */
#include "mime.h"

#include <errno.h>
#include <iconv.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>
#include <libxml/HTMLparser.h>

#include "log.h"
#include "msgid.h"
#include "util.h"

#define MESSAGE_MAX_ADDRS	1000	/* To + Cc addresses kept */
#define MESSAGE_DEDUPE_BODY	4096	/* body bytes in the fallback dedupe hash */
#define MESSAGE_BOUNDARY_MAX	256	/* longer boundaries are never matched by the pre-scan */
#define MESSAGE_HREF_MAX	2048	/* link targets longer than this are not shown */
#define MESSAGE_LIMIT_FLAGS	(MSG_TRUNCATED | MSG_TOO_DEEP | MSG_TOO_MANY_PARTS | MSG_TOO_MANY_HEADERS)

/* Text collected for one destination (the body, or forwarded mail). */
struct text_out {
	struct buf	 b;
	bool		 full;
};

/* The header fields message_parse needs, each the first occurrence, unfolded. */
struct top_headers {
	char		*from, *reply_to, *return_path, *to, *cc, *subject, *date;
	char		*message_id, *in_reply_to, *references;
	char		*auto_submitted, *precedence, *content_type;
	bool		 list;
	char	       **auth_results;
	size_t		 nauth;
};

/* One open container for the pre-scan: a multipart (with boundary) or message/rfc822. */
struct scan_level {
	bool		 multipart;
	char		 boundary[MESSAGE_BOUNDARY_MAX];
	size_t		 len;		/* 0: unknown, never matches */
};

/* State of one parse, shared with GMime's warning callback. */
struct parse_state {
	struct message		*m;
	bool			 cut;	/* we handed GMime fewer bytes than the message has */
	GMimeParserOptions	*opts;	/* made on first use: the fast paths need none */
};

/* One mailbox of an address list: addr-spec and display name (NULL if none), not NUL-terminated. */
struct mailbox_span {
	const char	*addr;
	size_t		 addr_len;
	const char	*name;
	size_t		 name_len;
};

/* Off only in tests: every header field then goes to GMime, the reference the fast paths must match. */
static bool	fast_paths = true;

static GMimeParserOptions *parse_options(struct parse_state *);

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* The fields kept whole (the first occurrence), with their slot in struct top_headers. */
#define TOP_FIELD(name, member) { name, sizeof(name) - 1, offsetof(struct top_headers, member) }
static const struct top_field {
	const char	*name;
	size_t		 len;
	size_t		 off;
} top_fields[] = {
	TOP_FIELD("From", from),
	TOP_FIELD("To", to),
	TOP_FIELD("Cc", cc),
	TOP_FIELD("Subject", subject),
	TOP_FIELD("Date", date),
	TOP_FIELD("Message-ID", message_id),
	TOP_FIELD("Reply-To", reply_to),
	TOP_FIELD("Return-Path", return_path),
	TOP_FIELD("In-Reply-To", in_reply_to),
	TOP_FIELD("References", references),
	TOP_FIELD("Auto-Submitted", auto_submitted),
	TOP_FIELD("Precedence", precedence),
	TOP_FIELD("Content-Type", content_type),
};

static bool
field_named(const struct header_field *f, const char *name, size_t len)
{
	return f->name_len == len && strncasecmp(f->name, name, len) == 0;
}

static void
top_headers_read(const char *block, size_t len, struct top_headers *h)
{
	struct header_field	 f;
	size_t			 pos = 0, i;
	char			**slot;

	h->auth_results = xcalloc(1, sizeof(*h->auth_results));
	while (header_field_next(block, len, &pos, &f)) {
		for (i = 0; i < NELEM(top_fields); i++)
			if (field_named(&f, top_fields[i].name, top_fields[i].len))
				break;
		if (i < NELEM(top_fields)) {
			slot = (char **)(void *)((char *)h + top_fields[i].off);
			if (*slot == NULL)
				*slot = header_field_unfold(&f);
		} else if (field_named(&f, "List-Id", 7) || field_named(&f, "List-Unsubscribe", 16))
			h->list = true;
		else if (field_named(&f, "Authentication-Results", 22)) {
			char	*v = header_field_unfold(&f);

			h->auth_results = xreallocarray(h->auth_results, h->nauth + 2,
			    sizeof(*h->auth_results));
			h->auth_results[h->nauth++] = text_one_line(v, strlen(v));
			h->auth_results[h->nauth] = NULL;
			free(v);
		}
	}
}

static void
top_headers_clear(struct top_headers *h)
{
	free(h->from);
	free(h->reply_to);
	free(h->return_path);
	free(h->to);
	free(h->cc);
	free(h->subject);
	free(h->date);
	free(h->message_id);
	free(h->in_reply_to);
	free(h->references);
	free(h->auto_submitted);
	free(h->content_type);
	free(h->precedence);
	strv_free(h->auth_results);
}

/* text_one_line(), NULL instead of "". */
static char *
one_line_or_null(const char *s, size_t len)
{
	char	*t = text_one_line(s, len);

	if (*t == '\0') {
		free(t);
		return NULL;
	}
	return t;
}

/* A mailbox's addr-spec, cleaned, domain lowered; NULL if empty. */
static char *
mailbox_addr(const struct mailbox_span *mb)
{
	char	*s;

	if (mb->addr == NULL || (s = one_line_or_null(mb->addr, mb->addr_len)) == NULL)
		return NULL;
	address_lower_domain(s);
	return s;
}

/* A GMime mailbox as a span for fn. */
static bool
mailbox_call(InternetAddressMailbox *m, bool (*fn)(const struct mailbox_span *, void *),
    void *arg)
{
	struct mailbox_span	 mb;
	const char		*name = internet_address_get_name(INTERNET_ADDRESS(m));

	mb.addr = internet_address_mailbox_get_addr(m);
	mb.addr_len = mb.addr != NULL ? strlen(mb.addr) : 0;
	mb.name = name;
	mb.name_len = name != NULL ? strlen(name) : 0;
	return fn(&mb, arg);
}

/*
 * The simple address lists, which are nearly all of them, are read without
 * GMime: its parser, objects and their unref cost tens of thousands of
 * instructions a list.  Simple means printable ASCII, no "=?" anywhere, and
 * mailboxes separated by commas, each "local@domain", or "<local@domain>"
 * after an optional display name that is either words (atoms, with dots
 * after their first character) separated by white space or one quoted
 * string without quoted pairs; local part and domain
 * are dot-atoms.  Anything else (comments, groups, encoded words, quoted
 * pairs or local parts, domain literals, obsolete syntax, empty members,
 * 8-bit bytes) goes to GMime.  tests/test_message.c and
 * tests/fuzz/fuzz_header_diff.c check that both agree on every field.
 */
static bool
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
	case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
	case '|': case '}': case '~':
		return true;
	default:
		return false;
	}
}

static const char *
skip_wsp(const char *p)
{
	while (is_wsp(*p))
		p++;
	return p;
}

/* The end of a dot-atom at p, or NULL. */
static const char *
dot_atom_end(const char *p)
{
	for (;;) {
		if (!is_atext((unsigned char)*p))
			return NULL;
		while (is_atext((unsigned char)*p))
			p++;
		if (*p != '.')
			return p;
		p++;
	}
}

/*
 * The end of "local@domain" at p, or NULL.  Also NULL for a domain with
 * "xn--" anywhere: GMime turns IDNA domains into Unicode (a look-alike
 * domain shows as one), and that stays its job.
 */
static const char *
addr_spec_end(const char *p)
{
	const char	*d, *e;

	if ((p = dot_atom_end(p)) == NULL || *p != '@')
		return NULL;
	if ((e = dot_atom_end(d = p + 1)) == NULL)
		return NULL;
	for (; e - d >= 4; d++)
		if ((d[0] | 0x20) == 'x' && (d[1] | 0x20) == 'n' && d[2] == '-' && d[3] == '-')
			return NULL;
	return e;
}

/* One simple mailbox at p (white space skipped); its end, or NULL when it is not simple. */
static const char *
simple_mailbox(const char *p, struct mailbox_span *mb)
{
	const char	*e;

	mb->name = NULL;
	mb->name_len = 0;
	if (*p == '"') {
		for (e = p + 1; *e >= ' ' && *e <= '~' && *e != '"' && *e != '\\'; e++)
			;
		if (*e != '"')
			return NULL;
		mb->name = p + 1;
		mb->name_len = (size_t)(e - p - 1);
		p = skip_wsp(e + 1);
	} else if (*p != '<') {
		if ((e = addr_spec_end(p)) != NULL) {
			mb->addr = p;
			mb->addr_len = (size_t)(e - p);
			return e;
		}
		mb->name = p;
		while (is_atext((unsigned char)*p)) {
			while (is_atext((unsigned char)*p) || *p == '.')
				p++;	/* "Amazon.com", "J. Doe": obs-phrase dots */
			mb->name_len = (size_t)(p - mb->name);
			p = skip_wsp(p);
		}
		if (mb->name_len == 0)
			return NULL;
	}
	if (*p != '<' || (e = addr_spec_end(p + 1)) == NULL || *e != '>')
		return NULL;
	mb->addr = p + 1;
	mb->addr_len = (size_t)(e - p - 1);
	return e + 1;
}

/*
 * Walks a simple list: the first pass only checks, so that fn sees either
 * every mailbox or none.  Returns false, without calling fn, when the list
 * is not simple.
 */
static bool
address_simple_walk(const char *value, bool (*fn)(const struct mailbox_span *, void *),
    void *arg)
{
	struct mailbox_span	 mb;
	const char		*p, *v;
	int			 pass;

	for (v = value; *v != '\0'; v++)
		if ((*v < ' ' && *v != '\t') || *v > '~' || (*v == '=' && v[1] == '?'))
			return false;	/* char is signed: 8-bit bytes are below ' ' */
	for (pass = 0; pass < 2; pass++) {
		for (p = skip_wsp(value); *p != '\0'; ) {
			if ((p = simple_mailbox(p, &mb)) == NULL)
				return false;
			p = skip_wsp(p);
			if (*p == ',') {
				p = skip_wsp(p + 1);
				if (*p == '\0')
					return false;
			} else if (*p != '\0')
				return false;
			if (pass == 1 && !fn(&mb, arg))
				return true;
		}
	}
	return true;
}

/*
 * Calls fn for every mailbox of an address list value, group members
 * included, until fn returns false.
 */
static void
address_walk(struct parse_state *ps, const char *value,
    bool (*fn)(const struct mailbox_span *, void *), void *arg)
{
	InternetAddressList	*list, *members;
	InternetAddress		*a;
	int			 i, j, n, nm;

	if (value == NULL || (fast_paths && address_simple_walk(value, fn, arg)))
		return;
	if ((list = internet_address_list_parse(parse_options(ps), value)) == NULL)
		return;
	n = internet_address_list_length(list);
	for (i = 0; i < n; i++) {
		a = internet_address_list_get_address(list, i);
		if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
			if (!mailbox_call(INTERNET_ADDRESS_MAILBOX(a), fn, arg))
				break;
		} else if (INTERNET_ADDRESS_IS_GROUP(a)) {
			members = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a));
			nm = members != NULL ? internet_address_list_length(members) : 0;
			for (j = 0; j < nm; j++) {
				a = internet_address_list_get_address(members, j);
				if (INTERNET_ADDRESS_IS_MAILBOX(a) &&
				    !mailbox_call(INTERNET_ADDRESS_MAILBOX(a), fn, arg))
					goto out;
			}
		}
	}
out:
	g_object_unref(list);
}

/* For address_walk: the first mailbox with an address. */
struct first_mailbox {
	char	*addr;
	char	*name;
};

static bool
take_first(const struct mailbox_span *mb, void *arg)
{
	struct first_mailbox	*fm = arg;

	if ((fm->addr = mailbox_addr(mb)) == NULL)
		return true;
	if (mb->name != NULL)
		fm->name = one_line_or_null(mb->name, mb->name_len);
	return false;
}

/* For address_walk: every address into a vector. */
struct addr_vec {
	char	**v;
	size_t	  n;
};

static bool
take_all(const struct mailbox_span *mb, void *arg)
{
	struct addr_vec	*av = arg;
	char		*a;

	if (av->n >= MESSAGE_MAX_ADDRS)
		return false;
	if ((a = mailbox_addr(mb)) != NULL) {
		av->v = xreallocarray(av->v, av->n + 2, sizeof(*av->v));
		av->v[av->n++] = a;
		av->v[av->n] = NULL;
	}
	return true;
}

/* "<a@b>" -> "a@b", "<>" -> "", domain lowered. */
static char *
return_path_parse(const char *v)
{
	const char	*lt, *gt;
	char		*s, *t;

	if (v == NULL)
		return NULL;
	if ((lt = strchr(v, '<')) != NULL) {
		lt++;
		gt = strchr(lt, '>');
		s = text_one_line(lt, gt != NULL ? (size_t)(gt - lt) : strlen(lt));
	} else
		s = text_one_line(v, strlen(v));
	if ((t = strchr(s, ' ')) != NULL)
		*t = '\0';
	address_lower_domain(s);
	return s;
}

/*
 * How far GMime may read.  GMime recurses once per MIME level (up to 1024
 * levels and seconds of work for a 100,000-level message), so the levels
 * and parts are counted here first, cheaply, and the input is cut where
 * it would go deeper than MESSAGE_MAX_DEPTH or past MESSAGE_MAX_PARTS.
 * Anything unclear (an unparseable boundary) counts as a level.
 */
static bool
scan_ci_prefix(const char *p, const char *end, const char *word)
{
	size_t	n = strlen(word);

	return (size_t)(end - p) >= n && strncasecmp(p, word, n) == 0;
}

static const char *
scan_skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/* Fills lvl from a Content-Type value; returns false for a leaf type. */
static bool
scan_content_type(const char *p, const char *end, struct scan_level *lvl)
{
	const char	*q;

	p = scan_skip_space(p, end);
	lvl->len = 0;
	if (scan_ci_prefix(p, end, "message/rfc822") ||
	    scan_ci_prefix(p, end, "message/global")) {
		lvl->multipart = false;
		return true;
	}
	if (!scan_ci_prefix(p, end, "multipart/"))
		return false;
	lvl->multipart = true;
	for (; p < end; p++) {
		if (*p != ';')
			continue;
		q = scan_skip_space(p + 1, end);
		if (!scan_ci_prefix(q, end, "boundary"))
			continue;
		q = scan_skip_space(q + 8, end);
		if (q >= end || *q != '=')
			continue;
		q = scan_skip_space(q + 1, end);
		lvl->len = 0;
		if (q < end && *q == '"') {
			for (q++; q < end && *q != '"'; q++) {
				if (*q == '\\' && q + 1 < end)
					q++;
				if (lvl->len == sizeof(lvl->boundary))
					break;
				lvl->boundary[lvl->len++] = *q;
			}
		} else {
			for (; q < end && *q != ';' && (unsigned char)*q > ' '; q++) {
				if (lvl->len == sizeof(lvl->boundary))
					break;
				lvl->boundary[lvl->len++] = *q;
			}
		}
		if (lvl->len == sizeof(lvl->boundary))
			lvl->len = 0;
		break;
	}
	return true;
}

/* 1: a delimiter of lvl, 2: its close delimiter, 0: neither. */
static int
scan_boundary(const char *p, const char *end, const struct scan_level *lvl)
{
	if (!lvl->multipart || lvl->len == 0 || (size_t)(end - p) < lvl->len + 2 ||
	    memcmp(p + 2, lvl->boundary, lvl->len) != 0)
		return 0;
	p += lvl->len + 2;
	if (end - p >= 2 && p[0] == '-' && p[1] == '-')
		return 2;
	return scan_skip_space(p, end) == end ? 1 : 0;
}

static size_t
mime_prescan(const char *buf, size_t len, unsigned *flags)
{
	struct scan_level	*stack;
	const char		*line, *eol, *ct = NULL, *ct_end = NULL;
	size_t			 depth = 0, parts = 0, pos = 0, next, k, ret = len;
	bool			 in_headers = true, ct_open = false;
	int			 kind;

	stack = xcalloc(MESSAGE_MAX_DEPTH + 1, sizeof(*stack));
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);

		line = buf + pos;
		next = nl != NULL ? (size_t)(nl - buf) + 1 : len;
		eol = buf + next;
		while (eol > line && (eol[-1] == '\n' || eol[-1] == '\r'))
			eol--;
		kind = 0;
		if (eol - line >= 2 && line[0] == '-' && line[1] == '-') {
			for (k = depth; k-- > 0;)
				if ((kind = scan_boundary(line, eol, &stack[k])) != 0)
					break;
		}
		if (kind != 0) {
			depth = kind == 2 ? k : k + 1;
			in_headers = kind == 1;
			ct = NULL;
			ct_open = false;
			if (kind == 1 && ++parts > MESSAGE_MAX_PARTS) {
				*flags |= MSG_TOO_MANY_PARTS;
				ret = pos;
				goto out;
			}
		} else if (in_headers && eol == line) {
			in_headers = false;
			if (ct != NULL && scan_content_type(ct, ct_end, &stack[depth])) {
				if (depth == MESSAGE_MAX_DEPTH) {
					*flags |= MSG_TOO_DEEP;
					ret = next;
					goto out;
				}
				in_headers = !stack[depth].multipart;
				depth++;
			}
			ct = NULL;
			ct_open = false;
		} else if (in_headers && is_wsp(*line)) {
			if (ct_open)
				ct_end = eol;	/* the field goes on */
		} else if (in_headers) {
			ct_open = false;
			if (scan_ci_prefix(line, eol, "content-type")) {
				const char *c = line + 12;

				while (c < eol && is_wsp(*c))
					c++;
				if (c < eol && *c == ':') {
					ct = c + 1;
					ct_end = eol;
					ct_open = true;
				}
			}
		}
		pos = next;
	}
out:
	free(stack);
	return ret;
}

/* Maps a MIME charset label to an iconv name; NULL means UTF-8. */
static const char *
charset_iconv_name(const char *cs, bool *guess)
{
	static const struct {
		const char	*label;
		const char	*iconv;
	} map[] = {
		/* WHATWG: Latin-1 labels mean windows-1252, a superset. */
		{ "iso-8859-1", "WINDOWS-1252" }, { "iso8859-1", "WINDOWS-1252" },
		{ "latin1", "WINDOWS-1252" }, { "l1", "WINDOWS-1252" },
		{ "iso_8859-1", "WINDOWS-1252" },
		/* Supersets that real mail labelled with the narrower name uses. */
		{ "gb2312", "GB18030" }, { "gbk", "GB18030" }, { "x-gbk", "GB18030" },
		{ "cp936", "GB18030" }, { "euc-cn", "GB18030" }, { "gb18030", "GB18030" },
		{ "shift_jis", "CP932" }, { "shift-jis", "CP932" }, { "sjis", "CP932" },
		{ "x-sjis", "CP932" }, { "ms_kanji", "CP932" }, { "windows-31j", "CP932" },
		{ "cp932", "CP932" },
		{ "iso-2022-jp", "ISO-2022-JP-2" },
		{ "euc-kr", "CP949" }, { "ks_c_5601-1987", "CP949" }, { "ks_c_5601", "CP949" },
		{ "big5", "CP950" }, { "x-big5", "CP950" },
	};
	size_t	i;

	*guess = false;
	if (cs == NULL || *cs == '\0' || strcasecmp(cs, "us-ascii") == 0 ||
	    strcasecmp(cs, "ascii") == 0 || strcasecmp(cs, "ansi_x3.4-1968") == 0) {
		*guess = true;
		return NULL;
	}
	if (strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0)
		return NULL;
	for (i = 0; i < NELEM(map); i++)
		if (strcasecmp(cs, map[i].label) == 0)
			return map[i].iconv;
	return g_mime_charset_iconv_name(cs);
}

/* Converts with cd; invalid input becomes U+FFFD and sets *bad. */
static void
iconv_all(iconv_t cd, const char *in, size_t len, struct buf *out, bool *bad)
{
	char	 chunk[8192], *op;
	char	*ip = (char *)(uintptr_t)in;
	size_t	 il = len, ol;

	for (;;) {
		size_t	r;

		op = chunk;
		ol = sizeof(chunk);
		r = iconv(cd, il > 0 ? &ip : NULL, &il, &op, &ol);
		buf_append(out, chunk, sizeof(chunk) - ol);
		if (r != (size_t)-1) {
			if (il == 0 && ip != NULL) {
				ip = NULL;	/* flush a stateful encoding's shift state */
				continue;
			}
			break;
		}
		if (errno == E2BIG)
			continue;
		*bad = true;
		buf_append(out, "\xef\xbf\xbd", 3);
		if (errno == EILSEQ && il > 0) {
			ip++;
			il--;
			continue;
		}
		break;		/* EINVAL: incomplete sequence at the end */
	}
}

/* Decoded part bytes in a declared charset -> UTF-8 (NUL-free); malloc'd. */
static char *
to_utf8(const char *in, size_t len, const char *charset, unsigned *flags, size_t *out_len)
{
	struct buf	 b = { 0 };
	const char	*name;
	bool		 guess, bad = false;
	iconv_t		 cd;
	char		*s;

	name = charset_iconv_name(charset, &guess);
	if (name == NULL) {
		/* Declared UTF-8: invalid bytes become U+FFFD (flagged below). */
		if (!guess || utf8_valid(in, len))
			goto copy;
		/* Undeclared or "ASCII" 8-bit text is most often windows-1252. */
		name = "WINDOWS-1252";
		bad = true;
	}
	if ((cd = iconv_open("UTF-8", name)) == (iconv_t)-1 &&
	    (cd = iconv_open("UTF-8", charset)) == (iconv_t)-1) {
		bad = true;
		if ((cd = iconv_open("UTF-8", "WINDOWS-1252")) == (iconv_t)-1)
			fatal("iconv_open WINDOWS-1252");
	}
	iconv_all(cd, in, len, &b, &bad);
	iconv_close(cd);
	if (bad)
		*flags |= MSG_BAD_CHARSET;
	s = utf8_sanitize(b.data != NULL ? b.data : "", b.len);
	buf_free(&b);
	*out_len = strlen(s);
	return s;
copy:
	if (memchr(in, '\0', len) != NULL || !utf8_valid(in, len))
		*flags |= MSG_BAD_CHARSET;
	s = utf8_sanitize(in, len);
	*out_len = strlen(s);
	return s;
}

/*
 * Appends to b at most what fits under MESSAGE_MAX_TEXT, cut at a character
 * boundary; once cut, *full is set and nothing more is appended.  True when
 * this call cut the text.
 */
static bool
text_append_capped(struct buf *b, bool *full, const char *s, size_t len)
{
	bool	cut = false;

	if (*full)
		return false;
	if (b->len + len > MESSAGE_MAX_TEXT) {
		len = MESSAGE_MAX_TEXT - b->len;
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
		*full = true;
		cut = true;
	}
	buf_append(b, s, len);
	return cut;
}

/* Appends at most what fits under MESSAGE_MAX_TEXT, cut at a character boundary. */
static void
text_append(struct text_out *o, const char *s, size_t len, unsigned *flags)
{
	if (text_append_capped(&o->b, &o->full, s, len))
		*flags |= MSG_TRUNCATED;
}

/* Appends a part's text: CRLF and lone CR become LF, parts are separated by a line break. */
static void
text_add_part(struct text_out *o, const char *s, size_t len, unsigned *flags)
{
	struct buf	t = { 0 };
	size_t		i;

	buf_append(&t, "", 0);
	for (i = 0; i < len; i++) {
		if (s[i] == '\r') {
			buf_append(&t, "\n", 1);
			if (i + 1 < len && s[i + 1] == '\n')
				i++;
		} else
			buf_append(&t, s + i, 1);
	}
	if (t.len > 0) {
		if (o->b.len > 0 && o->b.data[o->b.len - 1] != '\n')
			text_append(o, "\n", 1, flags);
		text_append(o, t.data, t.len, flags);
	}
	buf_free(&t);
}

/* A part's content, transfer-decoded, at most max bytes (the rest is flagged, not read). */
static char *
part_decode(GMimePart *part, size_t max, size_t *out_len, unsigned *flags)
{
	GMimeDataWrapper	*dw = g_mime_part_get_content(part);
	GMimeContentEncoding	 enc;
	GMimeStream		*src, *fs;
	GMimeFilter		*filter;
	struct buf		 b = { 0 };
	char			 chunk[8192];
	ssize_t			 n;

	buf_append(&b, "", 0);
	if (dw == NULL || (src = g_mime_data_wrapper_get_stream(dw)) == NULL)
		goto out;
	enc = g_mime_data_wrapper_get_encoding(dw);
	g_mime_stream_reset(src);
	fs = g_mime_stream_filter_new(src);
	if (enc == GMIME_CONTENT_ENCODING_BASE64 ||
	    enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    enc == GMIME_CONTENT_ENCODING_UUENCODE) {
		filter = g_mime_filter_basic_new(enc, FALSE);
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(fs), filter);
		g_object_unref(filter);
	}
	while ((n = g_mime_stream_read(fs, chunk, sizeof(chunk))) > 0) {
		if (b.len + (size_t)n > max) {
			buf_append(&b, chunk, max - b.len);
			*flags |= MSG_TRUNCATED;
			break;
		}
		buf_append(&b, chunk, (size_t)n);
	}
	g_object_unref(fs);
	g_mime_stream_reset(src);
out:
	*out_len = b.len;
	return buf_steal(&b);
}

/* The charset an HTML part declares in a <meta> tag, when MIME gave none; malloc'd or NULL. */
static char *
html_sniff_charset(const char *s, size_t len)
{
	const char	*p, *end = s + (len < 2048 ? len : 2048);
	size_t		 n;

	for (p = s; p + 8 < end; p++) {
		if (strncasecmp(p, "charset=", 8) != 0)
			continue;
		p += 8;
		while (p < end && (*p == '"' || *p == '\'' || *p == ' '))
			p++;
		for (n = 0; p + n < end && n < 40 &&
		    (g_ascii_isalnum(p[n]) || p[n] == '-' || p[n] == '_' || p[n] == '.' ||
		    p[n] == ':'); n++)
			;
		return n > 0 ? xstrndup(p, n) : NULL;
	}
	return NULL;
}

/* Decodes a text/plain or text/html leaf into o. */
static void
leaf_text(GMimeObject *obj, bool html, struct text_out *o, unsigned *flags)
{
	const char	*cs = g_mime_object_get_content_type_parameter(obj, "charset");
	char		*raw, *utf8, *sniffed = NULL, *text;
	size_t		 rawlen, ulen, tlen;

	raw = part_decode(GMIME_PART(obj), MESSAGE_MAX_TEXT, &rawlen, flags);
	if (html && cs == NULL)
		cs = sniffed = html_sniff_charset(raw, rawlen);
	utf8 = to_utf8(raw, rawlen, cs, flags, &ulen);
	free(raw);
	free(sniffed);
	if (html) {
		text = html_to_text(utf8, ulen, &tlen);
		text_add_part(o, text, tlen, flags);
		free(text);
	} else
		text_add_part(o, utf8, ulen, flags);
	free(utf8);
}

/* "From: ...", "Date: ...", "Subject: ..." of a forwarded message, for context. */
static void
forward_summary(GMimeMessage *msg, struct text_out *o, unsigned *flags)
{
	static const char *const names[] = { "From", "Date", "Subject" };
	size_t		 i;
	const char	*v;
	char		*line, *clean;

	if (o->b.len > 0)
		text_append(o, "\n", 1, flags);
	for (i = 0; i < NELEM(names); i++) {
		if ((v = g_mime_object_get_header(GMIME_OBJECT(msg), names[i])) == NULL)
			continue;
		clean = text_one_line_g(g_mime_utils_header_decode_text(NULL, v));
		if (clean == NULL)
			continue;
		line = xasprintf("%s: %s\n", names[i], clean);
		text_append(o, line, strlen(line), flags);
		free(line);
		free(clean);
	}
}

static bool
part_is(GMimeObject *obj, const char *type, const char *subtype)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);

	return ct != NULL && g_mime_content_type_is_type(ct, type, subtype);
}

/* The child of a multipart/alternative to read: plain text first, else the richest (last) text/HTML. */
static int
alternative_pick(GMimeMultipart *mp)
{
	int	i, n = g_mime_multipart_get_count(mp), pick = -1;

	for (i = 0; i < n; i++) {
		GMimeObject *c = g_mime_multipart_get_part(mp, i);

		if (GMIME_IS_PART(c) && part_is(c, "text", "plain"))
			return i;
		if (part_is(c, "text", "html") || GMIME_IS_MULTIPART(c))
			pick = i;
	}
	return pick >= 0 ? pick : n - 1;
}

struct walk_item {
	GMimeObject	*obj;
	int		 depth;
	bool		 forwarded;
};

/*
 * Collects the text of the MIME tree with an explicit stack: text/plain
 * parts, HTML where it stands in for text, and message/rfc822 parts
 * apart in forwarded text.  Bounded by depth and part count.
 */
static void
body_walk(GMimeObject *top, struct text_out *text, struct text_out *fwd, unsigned *flags)
{
	struct walk_item	*stack = NULL, it;
	size_t			 n = 0, cap = 0, parts = 0;
	int			 i, count;

	cap = 16;
	stack = xreallocarray(NULL, cap, sizeof(*stack));
	stack[n++] = (struct walk_item){ top, 0, false };
	while (n > 0) {
		it = stack[--n];
		if (++parts > MESSAGE_MAX_PARTS) {
			*flags |= MSG_TOO_MANY_PARTS;
			break;
		}
		if (it.depth > MESSAGE_MAX_DEPTH) {
			*flags |= MSG_TOO_DEEP;
			continue;
		}
		if (GMIME_IS_MULTIPART(it.obj)) {
			GMimeMultipart	*mp = GMIME_MULTIPART(it.obj);

			count = g_mime_multipart_get_count(mp);
			if (count <= 0)
				continue;
			if (n + (size_t)count >= cap) {
				cap = n + (size_t)count + 16;
				stack = xreallocarray(stack, cap, sizeof(*stack));
			}
			if (part_is(it.obj, "multipart", "alternative")) {
				stack[n++] = (struct walk_item){ g_mime_multipart_get_part(mp,
				    alternative_pick(mp)), it.depth + 1, it.forwarded };
				continue;
			}
			for (i = count - 1; i >= 0; i--)
				stack[n++] = (struct walk_item){ g_mime_multipart_get_part(mp, i),
				    it.depth + 1, it.forwarded };
		} else if (GMIME_IS_MESSAGE_PART(it.obj)) {
			GMimeMessage	*msg = g_mime_message_part_get_message(GMIME_MESSAGE_PART(it.obj));
			GMimeObject	*body;

			if (msg == NULL || (body = g_mime_message_get_mime_part(msg)) == NULL)
				continue;
			forward_summary(msg, fwd, flags);
			if (n + 1 >= cap) {
				cap = n + 16;
				stack = xreallocarray(stack, cap, sizeof(*stack));
			}
			stack[n++] = (struct walk_item){ body, it.depth + 1, true };
		} else if (GMIME_IS_PART(it.obj)) {
			bool	plain = part_is(it.obj, "text", "plain");
			bool	html = part_is(it.obj, "text", "html");

			if ((!plain && !html) || g_mime_part_is_attachment(GMIME_PART(it.obj)))
				continue;
			leaf_text(it.obj, html, it.forwarded ? fwd : text, flags);
		}
	}
	free(stack);
}

/* Forward prefixes in several languages; an "Original Message" line only means a forward after one. */
static bool
subject_is_forward(const char *subject)
{
	static const char *const prefixes[] = { "fwd:", "fw:", "wg:", "tr:", "rv:", "enc:", "i:" };
	size_t	i;

	if (subject == NULL)
		return false;
	for (i = 0; i < NELEM(prefixes); i++)
		if (strncasecmp(subject, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* Is line (without its newline) a mail client's "forwarded message follows" marker? */
static bool
forward_marker(const char *line, size_t len, bool forward_subject)
{
	const char	*p = line, *e = line + len;
	size_t		 dashes = 0;

	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	if ((size_t)(e - p) == 24 && strncasecmp(p, "Begin forwarded message:", 24) == 0)
		return true;
	while (p < e && (*p == '-' || *p == ' ')) {
		dashes += *p == '-';
		p++;
	}
	while (e > p && (e[-1] == '-' || e[-1] == ' '))
		e--;
	if (dashes < 2)
		return false;
	if ((size_t)(e - p) == 17 && strncasecmp(p, "forwarded message", 17) == 0)
		return true;
	return forward_subject && (size_t)(e - p) == 16 &&
	    strncasecmp(p, "original message", 16) == 0;
}

/*
 * An inline forward ("---------- Forwarded message ---------") is a copy
 * of someone else's mail, like a message/rfc822 part: move it from the
 * text to the forwarded text.
 */
static void
split_inline_forward(struct text_out *text, struct text_out *fwd, const char *subject,
    unsigned *flags)
{
	bool		 fs = subject_is_forward(subject);
	const char	*p, *nl, *end;
	struct buf	 moved = { 0 };

	if (text->b.data == NULL)
		return;
	end = text->b.data + text->b.len;
	for (p = text->b.data; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (forward_marker(p, (size_t)(nl - p), fs))
			break;
	}
	if (p >= end)
		return;
	buf_append(&moved, p, (size_t)(end - p));
	if (fwd->b.len > 0)
		buf_append(&moved, "\n", 1);
	buf_append(&moved, fwd->b.data != NULL ? fwd->b.data : "", fwd->b.len);
	text->b.len = (size_t)(p - text->b.data);
	while (text->b.len > 0 && text->b.data[text->b.len - 1] == '\n')
		text->b.len--;
	text->b.data[text->b.len] = '\0';
	buf_free(&fwd->b);
	fwd->full = false;
	text_append(fwd, moved.data, moved.len, flags);
	buf_free(&moved);
}

static void
parser_warning(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer arg)
{
	struct parse_state	*ps = arg;

	(void)offset;
	(void)item;
	switch (code) {
	case GMIME_WARN_TRUNCATED_MESSAGE:
		if (ps->cut)
			break;	/* we cut it ourselves, and flagged why */
		/* FALLTHROUGH */
	case GMIME_WARN_MALFORMED_MULTIPART:
	case GMIME_WARN_MALFORMED_MESSAGE:
	case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
	case GMIME_CRIT_NESTING_OVERFLOW:
	case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
		ps->m->flags |= MSG_MALFORMED;
		break;
	default:
		break;
	}
}

/* Copies n bytes, NULs as spaces: C strings inside GMime would stop at them. */
static void
copy_no_nul(char *dst, const char *src, size_t n)
{
	char	*z = dst, *end = dst + n;

	if (n == 0)
		return;
	memcpy(dst, src, n);
	while ((z = memchr(z, '\0', (size_t)(end - z))) != NULL)
		*z++ = ' ';
}

/* The hash that stands in for a missing Message-ID: stable headers and the start of the body. */
static char *
dedupe_hash(const struct top_headers *h, const char *body, size_t body_len)
{
	const char *const	 vals[] = { h->from, h->to, h->date, h->subject };
	struct buf		 b = { 0 };
	gchar			*hex;
	char			*key;
	size_t			 i;

	for (i = 0; i < NELEM(vals); i++)
		buf_put_str(&b, vals[i]);
	buf_put_bytes(&b, body, body_len < MESSAGE_DEDUPE_BODY ? body_len : MESSAGE_DEDUPE_BODY);
	hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)b.data, b.len);
	key = xasprintf("sha256:%s", hex);
	g_free(hex);
	buf_free(&b);
	return key;
}

static void
log_limits(const struct message *m)
{
	char	*id;

	if ((m->flags & MESSAGE_LIMIT_FLAGS) == 0)
		return;
	id = str_for_log(m->message_id != NULL ? m->message_id : m->dedupe_key, 120);
	if (m->flags & MSG_TRUNCATED)
		log_warnx("message %s: over %u bytes or %u bytes of text; decoded in part",
		    id, MESSAGE_MAX_BYTES, MESSAGE_MAX_TEXT);
	if (m->flags & MSG_TOO_DEEP)
		log_warnx("message %s: MIME nested deeper than %d levels; decoded in part",
		    id, MESSAGE_MAX_DEPTH);
	if (m->flags & MSG_TOO_MANY_PARTS)
		log_warnx("message %s: more than %d MIME parts; decoded in part",
		    id, MESSAGE_MAX_PARTS);
	if (m->flags & MSG_TOO_MANY_HEADERS)
		log_warnx("message %s: more than %d header lines; the rest ignored",
		    id, MESSAGE_MAX_HEADER_LINES);
	free(id);
}

/* Printable ASCII or tab, no "=?": a Subject that needs no RFC 2047 decoding. */
static bool
text_is_simple(const char *v)
{
	for (; *v != '\0'; v++)
		if ((*v < ' ' && *v != '\t') || *v > '~' || (*v == '=' && v[1] == '?'))
			return false;
	return true;
}

/* n digits at p as a number, or -1. */
static int
digits(const char *p, int n)
{
	int	v = 0;

	while (n-- > 0) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p++ - '0');
	}
	return v;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t		era;
	unsigned	yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/*
 * The canonical RFC 5322 date, "[Mon, ]2 Sep 2024 11:00:00 +0000", exactly
 * so (one space apart, names capitalised as written, a four-digit year from
 * 1970, no comment after the zone), converted without GMime and GLib's time
 * zone objects.  False for anything else, which GMime reads.
 */
static bool
date_simple(const char *s, time_t *out)
{
	static const char	 days[] = "MonTueWedThuFriSatSun";
	static const char	 months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	static const int	 mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int			 day, month, year, hour, min, sec, zh, zm, i;
	int64_t			 t;
	bool			 leap;

	for (i = 0; i < 7 && strncmp(s, days + 3 * i, 3) != 0; i++)
		;
	if (i < 7) {
		if (s[3] != ',' || s[4] != ' ')
			return false;
		s += 5;
	}
	/* Every byte read below follows a digit or a separator that matched: never past the NUL. */
	if ((day = digits(s, 1)) < 0)
		return false;
	if (s[1] >= '0' && s[1] <= '9')
		day = day * 10 + (*++s - '0');
	if (s[1] != ' ')
		return false;
	s += 2;
	for (month = 0; month < 12 && strncmp(s, months + 3 * month, 3) != 0; month++)
		;
	if (month == 12 || s[3] != ' ')
		return false;
	s += 4;
	if ((year = digits(s, 4)) < 1970 || s[4] != ' ' ||
	    (hour = digits(s + 5, 2)) < 0 || s[7] != ':' ||
	    (min = digits(s + 8, 2)) < 0 || s[10] != ':' ||
	    (sec = digits(s + 11, 2)) < 0 || s[13] != ' ' ||
	    (s[14] != '+' && s[14] != '-') ||
	    (zh = digits(s + 15, 2)) < 0 || (zm = digits(s + 17, 2)) < 0 || s[19] != '\0')
		return false;
	leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (day < 1 || day > mdays[month] || (month == 1 && day == 29 && !leap) ||
	    hour > 23 || min > 59 || sec > 59 || zh > 23 || zm > 59)
		return false;
	t = days_from_civil(year, (unsigned)month + 1, (unsigned)day) * 86400 +
	    hour * 3600 + min * 60 + sec;
	t -= (s[14] == '-' ? -1 : 1) * (zh * 3600 + zm * 60);
	*out = t > 0 && (int64_t)(time_t)t == t ? (time_t)t : 0;
	return true;
}

/* "type/subtype" at the start of a Content-Type value, then its end, white space or ';'. */
static bool
is_type_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '+' || c == '.' || c == '_';
}

/* The lower-cased type/subtype of a simple Content-Type, malloc'd; NULL when GMime must read it. */
static char *
content_type_simple(const char *v)
{
	const char	*p = v, *slash;
	char		*s;

	while (is_type_char(*p))
		p++;
	if (p == v || *p != '/')
		return NULL;
	slash = p++;
	while (is_type_char(*p))
		p++;
	if (p == slash + 1)
		return NULL;
	s = xstrndup(v, (size_t)(p - v));
	p = skip_wsp(p);
	if (*p != '\0' && *p != ';') {
		free(s);
		return NULL;
	}
	str_lower(s);
	return s;
}

static void
fill_headers(struct message *m, const struct top_headers *h, struct parse_state *ps)
{
	struct first_mailbox	 fm = { NULL, NULL };
	struct addr_vec		 av = { NULL, 0 };
	GDateTime		*dt;
	char		       **irt;

	address_walk(ps, h->from, take_first, &fm);
	m->from_addr = fm.addr;
	m->from_name = fm.name;
	fm.addr = fm.name = NULL;
	address_walk(ps, h->reply_to, take_first, &fm);
	m->reply_to_addr = fm.addr;
	free(fm.name);
	m->return_path = return_path_parse(h->return_path);
	address_walk(ps, h->to, take_all, &av);
	address_walk(ps, h->cc, take_all, &av);
	m->to_addrs = av.v != NULL ? av.v : xcalloc(1, sizeof(char *));
	if (h->subject != NULL) {
		if (fast_paths && text_is_simple(h->subject))
			m->subject = one_line_or_null(h->subject, strlen(h->subject));
		else
			m->subject = text_one_line_g(g_mime_utils_header_decode_text(
			    parse_options(ps), h->subject));
	}
	if (h->date != NULL && !(fast_paths && date_simple(h->date, &m->date)) &&
	    (dt = g_mime_utils_header_decode_date(h->date)) != NULL) {
		gint64	t = g_date_time_to_unix(dt);

		m->date = t > 0 && (gint64)(time_t)t == t ? (time_t)t : 0;
		g_date_time_unref(dt);
	}
	m->message_id = msgid_normalize(h->message_id);
	irt = msgid_parse_list(h->in_reply_to);
	m->in_reply_to = xstrdup(irt[0]);
	strv_free(irt);
	m->references = msgid_parse_list(h->references);
	if (h->auto_submitted != NULL) {
		m->auto_submitted = text_one_line(h->auto_submitted, strlen(h->auto_submitted));
		str_lower(m->auto_submitted);
	}
	if (h->precedence != NULL) {
		m->precedence = text_one_line(h->precedence, strlen(h->precedence));
		str_lower(m->precedence);
	}
	m->has_list_id = h->list;
}

static GMimeParserOptions *
parse_options(struct parse_state *ps)
{
	static const char	*fallback[] = { "UTF-8", "windows-1252", NULL };

	if (ps->opts == NULL) {
		ps->opts = g_mime_parser_options_new();
		g_mime_parser_options_set_fallback_charsets(ps->opts, fallback);
		g_mime_parser_options_set_warning_callback(ps->opts, parser_warning, ps);
	}
	return ps->opts;
}

void
mime_set_fast_paths(bool on)
{
	fast_paths = on;
}

struct message *
message_parse(const char *raw, size_t len, bool headers_only, bool keep_raw)
{
	struct message		*m = xcalloc(1, sizeof(*m));
	struct top_headers	 h = { 0 };
	struct text_out		 text = { { 0 }, false }, fwd = { { 0 }, false };
	struct parse_state	 ps = { m, false, NULL };
	GMimeStream		*stream = NULL;
	GMimeParser		*parser = NULL;
	GMimeMessage		*gm = NULL;
	GMimeObject		*top = NULL;
	size_t			 use = len, pos = 0, lines = 0, hdr_cut, body_start;
	size_t			 in_len, gm_len = 0, scanned;
	char			*in = NULL;
	const char		*nl;

	message_gmime_init();
	if (raw == NULL) {
		raw = "";
		use = len = 0;
	}
	if (keep_raw) {
		m->raw = xmalloc(len + 1);
		memcpy(m->raw, raw, len);
		m->raw[len] = '\0';
		m->raw_len = len;
	}
	if (use > MESSAGE_MAX_BYTES) {
		use = MESSAGE_MAX_BYTES;
		m->flags |= MSG_TRUNCATED;
	}

	/*
	 * The top header block ends at the first empty line.  Past
	 * MESSAGE_MAX_HEADER_LINES lines the rest of the block is skipped
	 * (flagged) and the body kept.
	 */
	hdr_cut = body_start = use;
	while (pos < use) {
		bool	empty = raw[pos] == '\n' ||
		    (raw[pos] == '\r' && pos + 1 < use && raw[pos + 1] == '\n');

		nl = memchr(raw + pos, '\n', use - pos);
		if (empty) {
			if (hdr_cut == use)
				hdr_cut = pos;
			body_start = (size_t)(nl - raw) + 1;
			break;
		}
		if (++lines > MESSAGE_MAX_HEADER_LINES && hdr_cut == use) {
			m->flags |= MSG_TOO_MANY_HEADERS;
			hdr_cut = pos;
		}
		if (nl == NULL)
			break;
		pos = (size_t)(nl - raw) + 1;
	}
	m->headers = xmalloc(hdr_cut + 1);
	copy_no_nul(m->headers, raw, hdr_cut);
	m->headers[hdr_cut] = '\0';
	m->headers_len = hdr_cut;
	if (headers_only) {
		m->flags |= MSG_NO_BODY;
		body_start = use;
	}

	if (!headers_only) {
		/* GMime's input: the (cut) header block, an empty line, the body; no NULs. */
		in_len = hdr_cut + 4 + (use - body_start);
		in = g_malloc(in_len + 1);
		copy_no_nul(in, raw, hdr_cut);
		gm_len = hdr_cut;
		if (hdr_cut > 0 && in[hdr_cut - 1] != '\n') {
			memcpy(in + gm_len, "\r\n", 2);
			gm_len += 2;
		}
		memcpy(in + gm_len, "\r\n", 2);
		gm_len += 2;
		copy_no_nul(in + gm_len, raw + body_start, use - body_start);
		gm_len += use - body_start;
		scanned = mime_prescan(in, gm_len, &m->flags);
		ps.cut = scanned < gm_len || use < len;
		gm_len = scanned;
	}

	top_headers_read(m->headers, m->headers_len, &h);
	fill_headers(m, &h, &ps);
	m->auth_results = h.auth_results;
	h.auth_results = NULL;

	if (headers_only) {
		/*
		 * The pre-screen of every new message needs no MIME tree: the
		 * fields above and the top Content-Type are all, and building
		 * (and freeing) a GMimeMessage was most of a first scan's cost.
		 */
		if (h.content_type != NULL && (!fast_paths ||
		    (m->content_type = content_type_simple(h.content_type)) == NULL)) {
			GMimeContentType *ct = g_mime_content_type_parse(parse_options(&ps),
			    h.content_type);

			if (ct != NULL) {
				m->content_type = text_one_line_g(g_mime_content_type_get_mime_type(ct));
				str_lower(m->content_type);
				g_object_unref(ct);
			}
		}
	} else {
		stream = g_mime_stream_mem_new_with_byte_array(
		    g_byte_array_new_take((guint8 *)in, gm_len));
		parser = g_mime_parser_new_with_stream(stream);
		gm = g_mime_parser_construct_message(parser, parse_options(&ps));
		top = gm != NULL ? g_mime_message_get_mime_part(gm) : NULL;
		if (gm == NULL)
			m->flags |= MSG_MALFORMED;
	}
	if (top != NULL) {
		gchar	*ct = g_mime_content_type_get_mime_type(g_mime_object_get_content_type(top));

		m->content_type = text_one_line_g(ct);
		str_lower(m->content_type);
	}
	if (m->content_type == NULL)
		m->content_type = xstrdup("text/plain");
	if (!headers_only) {
		if (top != NULL)
			body_walk(top, &text, &fwd, &m->flags);
		split_inline_forward(&text, &fwd, m->subject, &m->flags);
		m->text_len = text.b.len;
		m->text = buf_steal(&text.b);
		if (fwd.b.len > 0) {
			m->forwarded_len = fwd.b.len;
			m->forwarded_text = buf_steal(&fwd.b);
		}
	}
	buf_free(&fwd.b);
	/* A header block alone (the pre-screen's copy) is never stored: no digest for it. */
	m->dedupe_key = m->message_id != NULL ? xstrdup(m->message_id) : headers_only ?
	    xstrdup("") : dedupe_hash(&h, raw + body_start, use - body_start);
	if (gm != NULL)
		g_object_unref(gm);
	if (parser != NULL)
		g_object_unref(parser);
	if (stream != NULL)
		g_object_unref(stream);
	if (ps.opts != NULL)
		g_mime_parser_options_free(ps.opts);
	top_headers_clear(&h);
	log_limits(m);
	return m;
}


/* HTML to text: an iterative walk over libxml2's tree, so no nesting depth can exhaust the stack. */
struct html_out {
	struct buf	 b;
	bool		 space;		/* white space seen and not yet written */
	bool		 full;
	int		 pre;		/* inside <pre> */
	size_t		 anchor;	/* where the text of the current <a> starts */
};

static void
html_put(struct html_out *o, const char *s, size_t len)
{
	text_append_capped(&o->b, &o->full, s, len);
}

/* Newlines at the end of the text so far. */
static int
html_trailing_newlines(const struct html_out *o)
{
	size_t	i;
	int	n = 0;

	for (i = o->b.len; i > 0 && o->b.data[i - 1] == '\n' && n < 2; i--)
		n++;
	return n;
}

/* Ends the current line with up to `want` newlines in a row (2 = one blank line, the most kept). */
static void
html_break(struct html_out *o, int want)
{
	int	n;

	o->space = false;
	if (o->b.len == 0)
		return;
	for (n = html_trailing_newlines(o); n < want && !o->full; n++)
		html_put(o, "\n", 1);
}

static void
html_text(struct html_out *o, const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;

	for (; *p != '\0' && !o->full; p++) {
		bool	ws = *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f';
		bool	nbsp = p[0] == 0xc2 && p[1] == 0xa0;

		if (o->pre > 0 && *p == '\n') {
			html_put(o, "\n", 1);
			continue;
		}
		if (o->pre > 0 && *p == '\r')
			continue;
		if (nbsp) {
			p++;
			ws = true;
		}
		if (ws && o->pre == 0) {
			o->space = true;
			continue;
		}
		if (ws)
			html_put(o, " ", 1);
		else {
			if (o->space && o->b.len > 0 && o->b.data[o->b.len - 1] != '\n')
				html_put(o, " ", 1);
			o->space = false;
			html_put(o, (const char *)p, 1);
		}
	}
}

static bool
name_in(const xmlChar *name, const char *const *list)
{
	for (; *list != NULL; list++)
		if (xmlStrcasecmp(name, (const xmlChar *)*list) == 0)
			return true;
	return false;
}

static const char *const html_skip[] = { "script", "style", "head", "title", "template", NULL };
static const char *const html_para[] = { "p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul",
	"ol", "blockquote", "pre", "hr", "dl", "address", "form", NULL };
static const char *const html_line[] = { "div", "tr", "li", "dt", "dd", "section", "article",
	"header", "footer", "center", "caption", "tbody", "thead", "tfoot", "nav", "main",
	"aside", "figure", "figcaption", NULL };

/* Returns whether to descend into node. */
static bool
html_enter(struct html_out *o, xmlNodePtr node)
{
	if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) {
		if (node->content != NULL)
			html_text(o, (const char *)node->content);
		return false;
	}
	if (node->type != XML_ELEMENT_NODE || node->name == NULL)
		return false;
	if (name_in(node->name, html_skip))
		return false;
	if (xmlStrcasecmp(node->name, (const xmlChar *)"br") == 0) {
		html_break(o, html_trailing_newlines(o) < 2 ? html_trailing_newlines(o) + 1 : 2);
		return false;
	}
	if (name_in(node->name, html_para))
		html_break(o, 2);
	else if (name_in(node->name, html_line))
		html_break(o, 1);
	else if ((xmlStrcasecmp(node->name, (const xmlChar *)"td") == 0 ||
	    xmlStrcasecmp(node->name, (const xmlChar *)"th") == 0) &&
	    o->b.len > 0 && o->b.data[o->b.len - 1] != '\n')
		o->space = true;	/* cells of a row stay on one line */
	if (xmlStrcasecmp(node->name, (const xmlChar *)"pre") == 0)
		o->pre++;
	if (xmlStrcasecmp(node->name, (const xmlChar *)"a") == 0)
		o->anchor = o->b.len;
	return true;
}

static void
html_leave(struct html_out *o, xmlNodePtr node)
{
	xmlChar	*href;

	if (node->type != XML_ELEMENT_NODE || node->name == NULL)
		return;
	if (name_in(node->name, html_para))
		html_break(o, 2);
	else if (name_in(node->name, html_line))
		html_break(o, 1);
	if (xmlStrcasecmp(node->name, (const xmlChar *)"pre") == 0 && o->pre > 0)
		o->pre--;
	if (xmlStrcasecmp(node->name, (const xmlChar *)"a") == 0 &&
	    (href = xmlGetProp(node, (const xmlChar *)"href")) != NULL) {
		/* Show where a link goes, as plain-text mail does: phishing hides there. */
		const char	*h = (const char *)href;
		size_t		 hl = strlen(h);

		if (hl < MESSAGE_HREF_MAX && (strncasecmp(h, "http://", 7) == 0 ||
		    strncasecmp(h, "https://", 8) == 0) && o->anchor <= o->b.len &&
		    memmem(o->b.data != NULL ? o->b.data + o->anchor : "",
		    o->b.len - o->anchor, h, hl) == NULL) {
			char	*clean = text_one_line(h, hl);

			html_text(o, " (");
			html_put(o, clean, strlen(clean));
			html_put(o, ")", 1);
			free(clean);
		}
		xmlFree(href);
	}
}

char *
html_to_text(const char *html, size_t len, size_t *out_len)
{
	struct html_out	 o = { { 0 }, false, false, 0, 0 };
	htmlDocPtr	 doc = NULL;
	xmlNodePtr	 node;
	char		*s;
	bool		 down;

	if (len > MESSAGE_MAX_TEXT)
		len = MESSAGE_MAX_TEXT;
	if (html != NULL && len > 0)
		doc = htmlReadMemory(html, (int)len, NULL, "UTF-8", HTML_PARSE_RECOVER |
		    HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
	node = doc != NULL ? doc->children : NULL;
	while (node != NULL && !o.full) {
		down = html_enter(&o, node);
		if (down && node->children != NULL) {
			node = node->children;
			continue;
		}
		if (down)
			html_leave(&o, node);
		while (node != NULL && node->next == NULL) {
			node = node->parent;
			if (node == NULL || node == (xmlNodePtr)doc)
				node = NULL;
			else
				html_leave(&o, node);
		}
		if (node != NULL)
			node = node->next;
	}
	if (doc != NULL)
		xmlFreeDoc(doc);
	while (o.b.len > 0 && (o.b.data[o.b.len - 1] == '\n' || o.b.data[o.b.len - 1] == ' '))
		o.b.len--;
	s = utf8_sanitize(o.b.data != NULL ? o.b.data : "", o.b.len);
	buf_free(&o.b);
	if (out_len != NULL)
		*out_len = strlen(s);
	return s;
}
