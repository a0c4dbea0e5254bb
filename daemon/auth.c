/* auth.c — is this mail really from Amazon?  Trusted Authentication-Results, DKIM alignment, look-alikes. */
#include "auth.h"

#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define AR_MAX_RESULTS	32	/* resinfo entries kept per header; more is noise or an attack */
#define AR_MAX_HEADERS	16	/* trusted headers looked at */
#define AR_TOKEN_MAX	256

/* One "method=result ptype.property=value..." of an Authentication-Results header. */
struct ar_result {
	char	method[32];
	char	result[32];
	char	header_d[AR_TOKEN_MAX];		/* dkim: signing domain */
	char	header_i[AR_TOKEN_MAX];		/* dkim: identity, when header.d is absent */
	char	header_from[AR_TOKEN_MAX];	/* dmarc: the From domain it judged */
};

struct ar_header {
	char			authserv_id[AR_TOKEN_MAX];
	struct ar_result	res[AR_MAX_RESULTS];
	size_t			nres;
};

bool
domain_in_list(const char *domain, char *const *list)
{
	size_t	dl, el, i;

	if (domain == NULL || list == NULL)
		return false;
	dl = strlen(domain);
	for (; *list != NULL; list++) {
		el = strlen(*list);
		if (el == 0 || el > dl)
			continue;
		/*
		 * strcasecmp(domain + dl - el, *list), from the end: names
		 * differ in their last letters far more often than in their
		 * first, and this runs for every header of a scan.
		 */
		for (i = 1; i <= el; i++)
			if (tolower((unsigned char)domain[dl - i]) !=
			    tolower((unsigned char)(*list)[el - i]))
				break;
		if (i <= el)
			continue;
		if (el == dl || domain[dl - el - 1] == '.')
			return true;
	}
	return false;
}

/* RFC 8601 CFWS: white space and (possibly nested) comments with quoted pairs. */
static const char *
skip_cfws(const char *p)
{
	return str_skip_cfws(p, INT_MAX);
}

/*
 * Reads a value (a quoted-string or a run of characters up to white space,
 * ';', '(' or one of stop) into out, lower case; returns the position after it.
 */
static const char *
read_value(const char *p, const char *stop, char *out, size_t outlen)
{
	size_t	n = 0;

	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			if (n + 1 < outlen)
				out[n++] = (char)tolower((unsigned char)*p);
		}
		if (*p == '"')
			p++;
	} else {
		for (; *p != '\0' && *p != ';' && *p != '(' && *p != ' ' &&
		    *p != '\t' && *p != '\r' && *p != '\n' &&
		    (stop == NULL || strchr(stop, *p) == NULL); p++)
			if (n + 1 < outlen)
				out[n++] = (char)tolower((unsigned char)*p);
	}
	out[n] = '\0';
	return p;
}

/* Skips to the next ';' that is not inside a comment or a quoted string. */
static const char *
skip_to_semicolon(const char *p)
{
	while (*p != '\0' && *p != ';') {
		if (*p == '(') {
			p = skip_cfws(p);
			continue;
		}
		if (*p == '"') {
			p = str_skip_quoted(p);
			continue;
		}
		p++;
	}
	return p;
}

/* Parses one Authentication-Results value (RFC 8601 §2.2).  Unparseable parts are skipped. */
static void
ar_parse(const char *v, struct ar_header *h)
{
	const char		*p;
	char			 key[64], val[AR_TOKEN_MAX], *dot;
	struct ar_result	*r;

	memset(h, 0, sizeof(*h));
	p = skip_cfws(v);
	p = read_value(p, NULL, h->authserv_id, sizeof(h->authserv_id));
	p = skip_cfws(p);
	/* An optional authres-version after the authserv-id. */
	while (isdigit((unsigned char)*p))
		p++;
	for (;;) {
		p = skip_to_semicolon(p);
		if (*p != ';')
			return;
		p = skip_cfws(p + 1);
		if (h->nres == AR_MAX_RESULTS)
			return;
		r = &h->res[h->nres];
		memset(r, 0, sizeof(*r));
		p = read_value(p, "=/", r->method, sizeof(r->method));
		p = skip_cfws(p);
		if (*p == '/') {
			p = skip_cfws(p + 1);
			while (isdigit((unsigned char)*p))
				p++;
			p = skip_cfws(p);
		}
		if (*p != '=')
			continue;	/* "none" (no-result) or junk */
		p = skip_cfws(p + 1);
		p = read_value(p, NULL, r->result, sizeof(r->result));
		if (r->method[0] == '\0' || r->result[0] == '\0')
			continue;
		h->nres++;
		/* reason= and ptype.property=value pairs up to the next ';'. */
		for (;;) {
			p = skip_cfws(p);
			if (*p == '\0' || *p == ';')
				break;
			p = read_value(p, "=", key, sizeof(key));
			p = skip_cfws(p);
			if (*p != '=') {
				if (key[0] == '\0' && *p != '\0' && *p != ';')
					p++;
				continue;
			}
			p = skip_cfws(p + 1);
			p = read_value(p, NULL, val, sizeof(val));
			if ((dot = strchr(key, '.')) == NULL)
				continue;
			if (strcmp(key, "header.d") == 0)
				snprintf(r->header_d, sizeof(r->header_d), "%s", val);
			else if (strcmp(key, "header.i") == 0)
				snprintf(r->header_i, sizeof(r->header_i), "%s", val);
			else if (strcmp(key, "header.from") == 0)
				snprintf(r->header_from, sizeof(r->header_from), "%s", val);
		}
	}
}

static bool
id_trusted(const char *id, char *const *ids)
{
	for (; ids != NULL && *ids != NULL; ids++)
		if (strcasecmp(id, *ids) == 0)
			return true;
	return false;
}

/* Is d the From domain or a parent of it? */
static bool
aligned(const char *d, const char *from_domain)
{
	size_t	dl = strlen(d), fl = strlen(from_domain);

	if (dl == 0 || dl > fl)
		return false;
	if (strcasecmp(from_domain + fl - dl, d) != 0)
		return false;
	return dl == fl || from_domain[fl - dl - 1] == '.';
}

/* ---- Look-alike domains ---------------------------------------------- */

/* RFC 3492 punycode decoding of one label (without "xn--") into code points; -1 when invalid. */
static int
punycode_decode(const char *in, size_t inlen, uint32_t *out, size_t *outlen)
{
	enum { BASE = 36, TMIN = 1, TMAX = 26, SKEW = 38, DAMP = 700,
	    INITIAL_BIAS = 72, INITIAL_N = 128 };
	uint32_t	 n = INITIAL_N, i = 0, bias = INITIAL_BIAS, oldi, w, k, t, digit, delta;
	size_t		 b = 0, j, in_pos, max = *outlen, len = 0;
	int		 c;

	for (j = 0; j < inlen; j++)
		if (in[j] == '-')
			b = j;
	if (b > max)
		return -1;
	for (j = 0; j < b; j++)
		out[len++] = (unsigned char)in[j];
	for (in_pos = b > 0 ? b + 1 : 0; in_pos < inlen; ) {
		oldi = i;
		for (w = 1, k = BASE; ; k += BASE) {
			if (in_pos >= inlen)
				return -1;
			c = tolower((unsigned char)in[in_pos++]);
			if (c >= 'a' && c <= 'z')
				digit = (uint32_t)(c - 'a');
			else if (c >= '0' && c <= '9')
				digit = (uint32_t)(c - '0' + 26);
			else
				return -1;
			if (digit > (UINT32_MAX - i) / w)
				return -1;
			i += digit * w;
			t = k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
			if (digit < t)
				break;
			if (w > UINT32_MAX / (BASE - t))
				return -1;
			w *= BASE - t;
		}
		/* Bias adaptation (RFC 3492 §6.1). */
		delta = oldi == 0 ? (i - oldi) / DAMP : (i - oldi) / 2;
		delta += delta / (uint32_t)(len + 1);
		for (k = 0; delta > ((BASE - TMIN) * TMAX) / 2; k += BASE)
			delta /= BASE - TMIN;
		bias = k + (BASE - TMIN + 1) * delta / (delta + SKEW);
		if (i / (uint32_t)(len + 1) > UINT32_MAX - n)
			return -1;
		n += i / (uint32_t)(len + 1);
		i %= (uint32_t)(len + 1);
		if (len >= max || n > 0x10FFFF)
			return -1;
		memmove(out + i + 1, out + i, (len - i) * sizeof(*out));
		out[i++] = n;
		len++;
	}
	*outlen = len;
	return 0;
}

/* The ASCII letter a code point is easily mistaken for, or 0. */
static char
confusable(uint32_t c)
{
	static const struct { uint32_t cp; char ascii; } map[] = {
		{ 0x0430, 'a' }, { 0x0435, 'e' }, { 0x043e, 'o' }, { 0x0440, 'p' },
		{ 0x0441, 'c' }, { 0x0443, 'y' }, { 0x0445, 'x' }, { 0x0456, 'i' },
		{ 0x0458, 'j' }, { 0x0455, 's' }, { 0x0501, 'd' }, { 0x043c, 'm' },
		{ 0x0578, 'n' }, { 0x057c, 'n' }, { 0x0585, 'o' }, { 0x03b1, 'a' },
		{ 0x03bf, 'o' }, { 0x03bd, 'v' }, { 0x03b6, 'z' }, { 0x0251, 'a' },
		{ 0x0261, 'g' }, { 0x0131, 'i' }, { 0x0225, 'z' }, { 0x017a, 'z' },
		{ 0x017c, 'z' }, { 0x017e, 'z' }, { 0x1e93, 'z' }, { 0x1d22, 'z' },
		{ 0x0101, 'a' }, { 0x0103, 'a' }, { 0x0105, 'a' }, { 0x01ce, 'a' },
		{ 0x1ea1, 'a' }, { 0x014d, 'o' }, { 0x014f, 'o' }, { 0x0151, 'o' },
		{ 0x1ecd, 'o' }, { 0x0144, 'n' }, { 0x0146, 'n' }, { 0x0148, 'n' },
		{ 0x1e47, 'n' }, { 0x1e41, 'm' }, { 0x1e43, 'm' }, { 0x0271, 'm' },
	};
	size_t	i;

	if (c < 0x80)
		return (char)tolower((int)c);
	if (c >= 0xe0 && c <= 0xe5)
		return 'a';
	if ((c >= 0xf2 && c <= 0xf6) || c == 0xf8)
		return 'o';
	if (c >= 0xe8 && c <= 0xeb)
		return 'e';
	if (c == 0xf1)
		return 'n';
	if (c >= 0xff41 && c <= 0xff5a)
		return (char)('a' + (c - 0xff41));
	if (c >= 0xff21 && c <= 0xff3a)
		return (char)('a' + (c - 0xff21));
	if (c >= 0xff10 && c <= 0xff19)
		return (char)('0' + (c - 0xff10));
	for (i = 0; i < NELEM(map); i++)
		if (map[i].cp == c)
			return map[i].ascii;
	return 0;
}

/* Decodes one UTF-8 sequence; returns its length (1 for an invalid byte, taken as U+FFFD). */
static size_t
utf8_decode(const unsigned char *s, size_t left, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0 && left >= 2 && (s[1] & 0xc0) == 0x80) {
		*cp = ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
		return 2;
	}
	if ((s[0] & 0xf0) == 0xe0 && left >= 3 && (s[1] & 0xc0) == 0x80 &&
	    (s[2] & 0xc0) == 0x80) {
		*cp = ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) |
		    (s[2] & 0x3f);
		return 3;
	}
	if ((s[0] & 0xf8) == 0xf0 && left >= 4 && (s[1] & 0xc0) == 0x80 &&
	    (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80) {
		*cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
		    ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
		return 4;
	}
	*cp = 0xfffd;
	return 1;
}

static void
skeleton_put(struct buf *b, char c)
{
	/* Digits that pass for letters in a domain name: amaz0n, arnaz1n. */
	static const char from[] = "013457", to[] = "oleast";
	const char *p;

	if (c == 0)
		c = '?';
	if ((p = strchr(from, c)) != NULL)
		c = to[p - from];
	buf_append(b, &c, 1);
}

/*
 * The "skeleton" of a name: punycode labels decoded, confusable letters and
 * digits folded to ASCII, separators dropped, "rn" read as "m" and "vv" as
 * "w".  Returns a malloc'd string.
 */
static char *
skeleton(const char *name)
{
	struct buf	 b = { 0 };
	const char	*p = name, *label_end;
	uint32_t	 cps[128], cp;
	size_t		 n, i, left;
	char		*s, *r, *w;

	while (*p != '\0') {
		label_end = p + strcspn(p, ".");
		if (label_end - p > 4 && strncasecmp(p, "xn--", 4) == 0) {
			n = NELEM(cps);
			if (punycode_decode(p + 4, (size_t)(label_end - p - 4), cps, &n) == 0) {
				for (i = 0; i < n; i++)
					if (cps[i] != '-')
						skeleton_put(&b, confusable(cps[i]));
			}
		} else {
			while (p < label_end) {
				left = (size_t)(label_end - p);
				p += utf8_decode((const unsigned char *)p, left, &cp);
				if (cp == '-' || cp == '_' || cp == ' ')
					continue;
				skeleton_put(&b, confusable(cp));
			}
		}
		p = *label_end == '.' ? label_end + 1 : label_end;
	}
	s = buf_steal(&b);
	for (r = w = s; *r != '\0'; r++) {
		if (r[0] == 'r' && r[1] == 'n') {
			*w++ = 'm';
			r++;
		} else if (r[0] == 'v' && r[1] == 'v') {
			*w++ = 'w';
			r++;
		} else
			*w++ = *r;
	}
	*w = '\0';
	return s;
}

/*
 * Letters a typosquatter swaps for one another (amason, anazon, amazom);
 * other substitutions (amazin, as in "amazing") do not make a look-alike.
 */
static bool
confusable_pair(char a, char b)
{
	static const char *const pairs[] = { "mn", "sz", "il", "uv", "ce", "oa", "oe" };
	size_t	i;

	for (i = 0; i < NELEM(pairs); i++)
		if ((a == pairs[i][0] && b == pairs[i][1]) ||
		    (a == pairs[i][1] && b == pairs[i][0]))
			return true;
	return false;
}

/*
 * Edit distance (optimal string alignment) of a and b where insertions,
 * deletions, transpositions and confusable substitutions cost 1 and any
 * other substitution 2.
 */
static int
lookalike_distance(const char *a, size_t la, const char *b, size_t lb)
{
	int	d[9][9], i, j, v, sub;

	if (la > 8 || lb > 8)
		return 99;
	for (i = 0; i <= (int)la; i++)
		d[i][0] = i;
	for (j = 0; j <= (int)lb; j++)
		d[0][j] = j;
	for (i = 1; i <= (int)la; i++)
		for (j = 1; j <= (int)lb; j++) {
			sub = a[i - 1] == b[j - 1] ? 0 :
			    confusable_pair(a[i - 1], b[j - 1]) ? 1 : 2;
			v = d[i - 1][j - 1] + sub;
			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[la][lb];
}

static size_t
brand_letters(const char *s, size_t len)
{
	size_t	i, n = 0;

	for (i = 0; i < len; i++)
		n += s[i] == 'a' || s[i] == 'm' || s[i] == 'z' || s[i] == 'o' || s[i] == 'n';
	return n;
}

/* Does the skeleton hold "amazon" give or take one letter, or "amzn"? */
static bool
skeleton_has_brand(const char *s)
{
	size_t	len = strlen(s), i, l, *before;
	bool	yes = false;

	if (strstr(s, "amzn") != NULL)
		return true;
	/*
	 * One edit away from "amazon" keeps at least five of its letters, so a
	 * window (or a whole name) with fewer letters from a, m, z, o, n cannot
	 * match: most domains are dismissed without the distance table.
	 */
	if (brand_letters(s, len) < 5)
		return false;
	/* before[i]: brand letters in s[0..i), so that each window costs a subtraction. */
	before = xreallocarray(NULL, len + 1, sizeof(*before));
	before[0] = 0;
	for (i = 0; i < len; i++)
		before[i + 1] = before[i] + brand_letters(s + i, 1);
	for (i = 0; i < len && !yes; i++)
		for (l = 5; l <= 7 && i + l <= len && !yes; l++)
			yes = before[i + l] - before[i] >= 5 &&
			    lookalike_distance(s + i, l, "amazon", 6) <= 1;
	free(before);
	return yes;
}

/*
 * Does text (a domain or a display name) read as "amazon" once folded?
 * Every message's sender is judged before its body is fetched, and a
 * mailbox's senders repeat, so the latest answers are kept in a small
 * direct-mapped table; a longer text is judged afresh each time.
 */
#define BRAND_MEMO_SLOTS	256
#define BRAND_MEMO_TEXT		64

static bool
claims_brand(const char *text)
{
	static struct {
		char	text[BRAND_MEMO_TEXT];
		bool	used, yes;
	}		 memo[BRAND_MEMO_SLOTS];
	size_t		 len = strlen(text), i;
	uint32_t	 h = 2166136261u;	/* FNV-1a */
	char		*s;
	bool		 yes;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)text[i]) * 16777619u;
	i = h % BRAND_MEMO_SLOTS;
	if (len < BRAND_MEMO_TEXT && memo[i].used && strcmp(memo[i].text, text) == 0)
		return memo[i].yes;
	s = skeleton(text);
	yes = skeleton_has_brand(s);
	free(s);
	if (len < BRAND_MEMO_TEXT) {
		memcpy(memo[i].text, text, len + 1);
		memo[i].used = true;
		memo[i].yes = yes;
	}
	return yes;
}

bool
domain_is_lookalike(const char *domain, char *const *amazon_domains)
{
	if (domain == NULL || *domain == '\0' || domain_in_list(domain, amazon_domains))
		return false;
	return claims_brand(domain);
}

/* The domain of the first mail address inside free text (a display name), or NULL; malloc'd. */
static char *
text_address_domain(const char *text)
{
	const char	*at = strchr(text, '@'), *e;

	if (at == NULL)
		return NULL;
	for (e = at + 1; isalnum((unsigned char)*e) || *e == '.' || *e == '-' ||
	    (unsigned char)*e >= 0x80; e++)
		;
	while (e > at + 1 && e[-1] == '.')
		e--;
	if (e == at + 1)
		return NULL;
	return xstrndup(at + 1, (size_t)(e - at - 1));
}

/* ---- The verdict ----------------------------------------------------- */

/* Adds one finding (escaped arg), unless it is there already or the list is full. */
static void
add_finding(struct auth_verdict *out, const char *what, const char *arg)
{
	char	*safe = str_for_log(arg, 80), line[AUTH_FINDING_MAX];
	size_t	 i;

	snprintf(line, sizeof(line), "%s%s", what, safe);
	free(safe);
	for (i = 0; i < out->nfindings; i++)
		if (strcmp(out->findings[i], line) == 0)
			return;
	if (out->nfindings < AUTH_MAX_FINDINGS)
		memcpy(out->findings[out->nfindings++], line, sizeof(line));
}

/* Keeps the first reason: what failed, then the (untrusted, escaped) name it failed on. */
static void
set_reason(struct auth_verdict *out, const char *what, const char *arg)
{
	char	*safe;

	add_finding(out, what, arg);
	if (out->reason[0] != '\0')
		return;
	safe = str_for_log(arg, 80);
	snprintf(out->reason, sizeof(out->reason), "%s%s", what, safe);
	free(safe);
}

static bool
ids_have_none(char *const *ids)
{
	for (; ids != NULL && *ids != NULL; ids++)
		if (strcasecmp(*ids, AUTHSERV_NONE) == 0)
			return true;
	return false;
}

static bool
ids_have_real(char *const *ids)
{
	for (; ids != NULL && *ids != NULL; ids++)
		if (strcasecmp(*ids, AUTHSERV_NONE) != 0)
			return true;
	return false;
}

/*
 * Which headers are trusted: with configured ids, the first header carrying
 * one and the headers directly below it that carry one too (a provider may
 * stamp DKIM and DMARC separately); without, only the topmost header (and,
 * for forgery checks only, any other under the same id).
 * Anything further down may have been written by the sender.  *first is set
 * to the size of that first block; the headers after it in hdrs carry a
 * trusted id too but sit elsewhere: they only serve to spot a forgery (a
 * provider that does not strip its own id from incoming mail lets a sender
 * put a "pass" above or below its real verdict).
 */
static size_t
trusted_headers(const struct message *m, char *const *ids, struct ar_header *hdrs,
    size_t *first)
{
	size_t	i, n = 0;
	bool	in_block = true;

	*first = 0;
	if (m->auth_results == NULL || m->auth_results[0] == NULL)
		return 0;
	if (ids == NULL || ids[0] == NULL) {
		/* Further headers under the topmost one's id can only show a forgery. */
		ar_parse(m->auth_results[0], &hdrs[0]);
		*first = n = 1;
		for (i = 1; m->auth_results[i] != NULL && n < AR_MAX_HEADERS; i++) {
			ar_parse(m->auth_results[i], &hdrs[n]);
			if (hdrs[0].authserv_id[0] != '\0' &&
			    strcasecmp(hdrs[n].authserv_id, hdrs[0].authserv_id) == 0)
				n++;
		}
		return n;
	}
	if (!ids_have_real(ids))
		return 0;
	for (i = 0; m->auth_results[i] != NULL && n < AR_MAX_HEADERS; i++) {
		ar_parse(m->auth_results[i], &hdrs[n]);
		if (strcasecmp(hdrs[n].authserv_id, AUTHSERV_NONE) != 0 &&
		    id_trusted(hdrs[n].authserv_id, ids)) {
			n++;
			if (in_block)
				*first = n;
		} else if (n > 0)
			in_block = false;
	}
	return n;
}

/* The first trusted header that reports method, or NULL: a later one may be forged. */
static const struct ar_header *
first_with(const struct ar_header *hdrs, size_t n, const char *method)
{
	size_t	i, j;

	for (i = 0; i < n; i++)
		for (j = 0; j < hdrs[i].nres; j++)
			if (strcmp(hdrs[i].res[j].method, method) == 0)
				return &hdrs[i];
	return NULL;
}

/* The dmarc result of header h ("" when it has none). */
static const char *
dmarc_of(const struct ar_header *h)
{
	size_t	j;

	for (j = 0; j < h->nres; j++)
		if (strcmp(h->res[j].method, "dmarc") == 0)
			return h->res[j].result;
	return "";
}

/* ---- Links ----------------------------------------------------------- */

#define LINKS_MAX		500	/* links looked at per mail */
#define LINK_TEXT_BACK		200	/* bytes of link text looked at before " (url)" */

/* Amazon's own hosts for images, mail and short links, not in amazon_domains. */
static char *const amazon_service_domains[] = {
	"media-amazon.com", "ssl-images-amazon.com", "images-amazon.com",
	"amazonses.com", "amazontrust.com", "amzn.to", "a.co", NULL
};

static char *const ses_tracking[] = { "awstrack.me", NULL };

/* Anyone can publish there: a link to them is foreign, never Amazon's own and no look-alike. */
static char *const hosting_domains[] = {
	"amazonaws.com", "cloudfront.net", NULL
};

static bool
host_char(unsigned char c)
{
	return isalnum(c) || c == '.' || c == '-' || c >= 0x80;
}

/*
 * The host of the URL at s (after "scheme://"): userinfo and port dropped,
 * lower case, trailing dots removed.  Returns false when there is none.
 */
static bool
url_host(const char *s, const char *end, char *host, size_t hostlen)
{
	const char	*p, *auth_end, *at = NULL;
	size_t		 n = 0;

	for (auth_end = s; auth_end < end && *auth_end != '/' && *auth_end != '?' &&
	    *auth_end != '#' && *auth_end != ')' && *auth_end != '>' &&
	    !isspace((unsigned char)*auth_end); auth_end++)
		if (*auth_end == '@')
			at = auth_end;
	p = at != NULL ? at + 1 : s;
	for (; p < auth_end && host_char((unsigned char)*p) && n + 1 < hostlen; p++)
		host[n++] = (char)tolower((unsigned char)*p);
	while (n > 0 && host[n - 1] == '.')
		n--;
	host[n] = '\0';
	return n > 0 && strchr(host, '.') != NULL;
}

/*
 * Amazon SES click tracking (*.awstrack.me) wraps a link as
 * ".../L0/https:%2F%2Fhost%2Fpath/...": the host it leads to is what counts.
 * Any SES sender can wrap links so, so the wrapper itself proves nothing.
 */
static bool
tracked_host(const char *url, const char *end, char *host, size_t hostlen)
{
	const char	*p, *stop;
	size_t		 n = 0;

	for (stop = url; stop < end && !isspace((unsigned char)*stop) && *stop != ')' &&
	    *stop != '>'; stop++)
		;
	for (p = url; p + 12 < stop; p++) {
		if (strncasecmp(p, "http:%2F%2F", 11) == 0)
			p += 11;
		else if (strncasecmp(p, "https:%2F%2F", 12) == 0)
			p += 12;
		else
			continue;
		for (; p < stop && *p != '%' && *p != '/' && *p != '?' && *p != '@' &&
		    host_char((unsigned char)*p) && n + 1 < hostlen; p++)
			host[n++] = (char)tolower((unsigned char)*p);
		host[n] = '\0';
		return n > 0 && strchr(host, '.') != NULL;
	}
	return false;
}

/* Does the link text before a " (url)" show a host name of Amazon's? */
static bool
text_shows_amazon(const char *text, const char *url_start, char *const *amazon_domains)
{
	const char	*b = url_start, *p, *e;
	char		 tok[256];
	size_t		 n;

	while (b > text && b[-1] != '\n' && b[-1] != ')' &&
	    url_start - b < LINK_TEXT_BACK)
		b--;
	for (p = b; p < url_start; ) {
		while (p < url_start && !host_char((unsigned char)*p))
			p++;
		for (e = p; e < url_start && host_char((unsigned char)*e); e++)
			;
		n = (size_t)(e - p);
		while (n > 0 && (p[n - 1] == '.' || p[n - 1] == '-'))
			n--;
		if (n > 0 && n < sizeof(tok)) {
			memcpy(tok, p, n);
			tok[n] = '\0';
			str_lower(tok);
			if (strchr(tok, '.') != NULL && (domain_in_list(tok, amazon_domains) ||
			    domain_in_list(tok, amazon_service_domains)))
				return true;
		}
		p = e;
	}
	return false;
}

/*
 * http(s) links in the text: to a host outside Amazon, to a look-alike, or
 * behind link text that shows an Amazon host (the message module writes an
 * HTML link as "text (url)").
 */
static void
scan_links(const char *text, size_t len, char *const *amazon_domains,
    struct auth_verdict *out)
{
	const char	*end = text + len, *p = text, *url, *hs;
	char		 host[256], what[AUTH_FINDING_MAX];
	size_t		 nlinks = 0, nforeign = 0;

	while (p < end && nlinks < LINKS_MAX) {
		if ((url = memmem(p, (size_t)(end - p), "://", 3)) == NULL)
			break;
		p = url + 3;
		if (url - text >= 5 && strncasecmp(url - 5, "https", 5) == 0)
			hs = url - 5;
		else if (url - text >= 4 && strncasecmp(url - 4, "http", 4) == 0)
			hs = url - 4;
		else
			continue;
		if (hs > text && isalnum((unsigned char)hs[-1]))
			continue;
		nlinks++;
		if (!url_host(url + 3, end, host, sizeof(host)))
			continue;
		if (domain_in_list(host, ses_tracking) &&
		    !tracked_host(url + 3, end, host, sizeof(host)))
			continue;
		if (domain_in_list(host, amazon_domains) ||
		    domain_in_list(host, amazon_service_domains))
			continue;
		if (!domain_in_list(host, hosting_domains) &&
		    domain_is_lookalike(host, amazon_domains)) {
			out->link_lookalike = true;
			add_finding(out, "look-alike domain in a link: ", host);
		} else {
			out->link_foreign = true;
			if (nforeign++ < 2)
				add_finding(out, "link to a host outside Amazon: ", host);
		}
		if (hs - text >= 2 && hs[-1] == '(' && hs[-2] == ' ' &&
		    text_shows_amazon(text, hs - 2, amazon_domains)) {
			out->link_deceptive = true;
			snprintf(what, sizeof(what), "link text shows an Amazon host but "
			    "the link goes to ");
			add_finding(out, what, host);
		}
	}
}

/*
 * The sender alone: an Amazon From domain, or look-alike traits (the From
 * domain, a display name claiming Amazon, a foreign Reply-To on Amazon mail).
 * Cheap enough for the header pre-screen of every new message.
 */
static void
check_sender(const struct message *m, char *const *amazon_domains, struct auth_verdict *out)
{
	const char	*from_domain = NULL, *d;
	char		 fd[AR_TOKEN_MAX], rd[AR_TOKEN_MAX], *name_domain;

	if (m->from_addr != NULL && (d = address_domain(m->from_addr)) != NULL) {
		snprintf(fd, sizeof(fd), "%s", d);
		str_lower(fd);
		from_domain = fd;
	}
	out->amazon_from = from_domain != NULL && domain_in_list(from_domain, amazon_domains);

	/* Look-alikes: the From domain, a display name claiming Amazon, a foreign Reply-To. */
	if (from_domain != NULL && !out->amazon_from &&
	    domain_is_lookalike(from_domain, amazon_domains)) {
		out->lookalike = true;
		set_reason(out, "look-alike sender domain ", from_domain);
	}
	if (!out->amazon_from && m->from_name != NULL) {
		if ((name_domain = text_address_domain(m->from_name)) != NULL) {
			str_lower(name_domain);
			if (domain_in_list(name_domain, amazon_domains) ||
			    domain_is_lookalike(name_domain, amazon_domains)) {
				out->lookalike = true;
				set_reason(out, "display name shows an Amazon address over ",
				    from_domain != NULL ? from_domain : "no address");
			}
			free(name_domain);
		}
		if (claims_brand(m->from_name)) {
			out->lookalike = true;
			set_reason(out, "display name claims Amazon over ",
			    from_domain != NULL ? from_domain : "no address");
		}
	}
	if (out->amazon_from && m->reply_to_addr != NULL &&
	    (d = address_domain(m->reply_to_addr)) != NULL) {
		snprintf(rd, sizeof(rd), "%s", d);
		str_lower(rd);
		if (!domain_in_list(rd, amazon_domains)) {
			out->lookalike = true;
			set_reason(out, "Reply-To outside Amazon: ", rd);
		}
	}
}

bool
auth_sender_suspect(const struct message *m, char *const *amazon_domains)
{
	struct auth_verdict	v;

	memset(&v, 0, sizeof(v));
	check_sender(m, amazon_domains, &v);
	return v.amazon_from || v.lookalike;
}

void
auth_check(const struct message *m, char *const *amazon_domains,
    char *const *authserv_ids, struct auth_verdict *out)
{
	struct ar_header	*hdrs;
	const struct ar_header	*h;
	const struct ar_result	*r;
	const char		*from_domain = NULL, *d, *primary;
	char			 fd[AR_TOKEN_MAX];
	size_t			 n, first, i, j;
	bool			 dmarc_seen = false;

	memset(out, 0, sizeof(*out));
	check_sender(m, amazon_domains, out);
	if (m->from_addr != NULL && (d = address_domain(m->from_addr)) != NULL) {
		snprintf(fd, sizeof(fd), "%s", d);
		str_lower(fd);
		from_domain = fd;
	}
	if (m->text != NULL)
		scan_links(m->text, m->text_len, amazon_domains, out);

	/*
	 * Not zeroed: ar_parse() clears each header it fills, and only those
	 * are read.  Zeroing all of them (over 400 KB) cost more than the check.
	 */
	hdrs = xreallocarray(NULL, AR_MAX_HEADERS, sizeof(*hdrs));
	n = trusted_headers(m, authserv_ids, hdrs, &first);
	out->trusted_header = n > 0;
	out->unverifiable = n == 0 && ids_have_none(authserv_ids);
	if (n == 0 && !out->unverifiable && !out->amazon_from)
		add_finding(out, "no trusted Authentication-Results", "");
	if ((h = first_with(hdrs, first, "dmarc")) != NULL) {
		for (j = 0; j < h->nres && !dmarc_seen; j++) {
			r = &h->res[j];
			if (strcmp(r->method, "dmarc") != 0)
				continue;
			dmarc_seen = true;
			if (strcmp(r->result, "fail") == 0)
				out->dmarc_fail = true;
			else if (strcmp(r->result, "pass") == 0 && from_domain != NULL &&
			    (r->header_from[0] == '\0' ||
			    strcasecmp(r->header_from, from_domain) == 0))
				out->dmarc_pass = true;
		}
	}
	/* Our own id elsewhere with another DMARC result: someone wrote one of them. */
	primary = h != NULL ? dmarc_of(h) : "";
	for (i = 0; i < n; i++) {
		d = dmarc_of(&hdrs[i]);
		if (strcmp(d, "fail") == 0)
			out->dmarc_fail = true;
		if (*d != '\0' && strcmp(d, primary) != 0)
			out->conflict = true;
	}
	if (out->conflict)
		add_finding(out, "conflicting Authentication-Results under a trusted "
		    "authserv-id: one of them is forged", "");
	if ((h = first_with(hdrs, first, "dkim")) != NULL && from_domain != NULL) {
		for (j = 0; j < h->nres && !out->dkim_aligned; j++) {
			r = &h->res[j];
			if (strcmp(r->method, "dkim") != 0 || strcmp(r->result, "pass") != 0)
				continue;
			d = r->header_d;
			if (*d == '\0' && (d = strrchr(r->header_i, '@')) != NULL)
				d++;
			if (d != NULL && *d != '\0' && aligned(d, from_domain) &&
			    domain_in_list(d, amazon_domains))
				out->dkim_aligned = true;
		}
	}
	free(hdrs);

	out->authentic = out->amazon_from && out->trusted_header && out->dmarc_pass &&
	    !out->dmarc_fail && !out->conflict && out->dkim_aligned && !out->lookalike;
	if (out->authentic) {
		snprintf(out->reason, sizeof(out->reason), "dmarc=pass dkim=%.100s", from_domain);
		add_finding(out, out->reason, "");
		return;
	}
	/* For Amazon's own domain the authentication failure says most; else the look-alike. */
	if (out->amazon_from && !out->unverifiable &&
	    !(out->trusted_header && out->dmarc_pass && out->dkim_aligned &&
	    !out->conflict && !out->dmarc_fail))
		out->reason[0] = '\0';
	if (from_domain == NULL)
		set_reason(out, "no sender address", "");
	else if (!out->amazon_from)
		set_reason(out, "sender domain is not Amazon's: ", from_domain);
	else if (out->unverifiable)
		set_reason(out, "not verified: no Authentication-Results by configuration "
		    "(authserv_ids = [\"none\"]) for ", from_domain);
	else if (!out->trusted_header)
		set_reason(out, "no trusted Authentication-Results for ", from_domain);
	else if (out->dmarc_fail)
		set_reason(out, "dmarc=fail for ", from_domain);
	else if (out->conflict)
		set_reason(out, "conflicting Authentication-Results for ", from_domain);
	else if (!out->dmarc_pass)
		set_reason(out, "no dmarc=pass for ", from_domain);
	else
		set_reason(out, "no dkim=pass aligned with ", from_domain);
}
