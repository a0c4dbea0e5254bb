/* msgid.c — Message-ID / In-Reply-To / References: validated and normalised for use as keys. */
#include "msgid.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "util.h"

/* Comments nest (RFC 5322 3.2.2); deeper ones are junk and are skipped flat. */
#define MSGID_COMMENT_DEPTH	32

/* Skips white space (folding included) and comments; returns the next byte's position. */
static const char *
skip_cfws(const char *p)
{
	return str_skip_cfws(p, MSGID_COMMENT_DEPTH);
}

/*
 * Checks and normalises the text between the angle brackets (or a bare
 * token): folding (CR/LF and the white space after it) is removed, since
 * some mailers fold long ids; any other space or control makes it invalid.
 */
static char *
normalize_span(const char *s, size_t len)
{
	struct buf	 b = { 0 };
	char		*id = NULL, *at;
	size_t		 i;

	/* "< a@b >" is legal obsolete syntax: CFWS around the id is dropped. */
	while (len > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
	    s[len - 1] == '\r' || s[len - 1] == '\n'))
		len--;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r' || c == '\n') {
			while (i + 1 < len && (s[i + 1] == ' ' || s[i + 1] == '\t' ||
			    s[i + 1] == '\r' || s[i + 1] == '\n'))
				i++;
			continue;
		}
		/* Parentheses would read as a comment when the id is parsed again. */
		if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '(' || c == ')')
			goto out;
		buf_append(&b, &c, 1);
	}
	if (b.len == 0 || b.len > MSGID_MAX_LEN || !utf8_valid(b.data, b.len))
		goto out;
	/* The last @ splits: a quoted local part may hold one of its own. */
	if ((at = strrchr(b.data, '@')) == NULL || at == b.data || at[1] == '\0')
		goto out;
	str_lower(at + 1);
	id = buf_steal(&b);
out:
	buf_free(&b);
	return id;
}

char *
msgid_normalize(const char *raw)
{
	const char	*p, *end;

	if (raw == NULL)
		return NULL;
	p = skip_cfws(raw);
	if (*p == '<') {
		p++;
		if ((end = strchr(p, '>')) == NULL)
			end = p + strlen(p);
		return normalize_span(p, (size_t)(end - p));
	}
	/* No brackets: the id is the first word (seen from old and broken mailers). */
	end = p + strcspn(p, " \t\r\n(");
	if (*skip_cfws(end) != '\0')
		return NULL;
	return normalize_span(p, (size_t)(end - p));
}

/* Appends id to the newest-MSGID_MAX_REFS window, dropping the oldest and duplicates. */
static void
window_add(char **ids, size_t *n, char *id)
{
	size_t	i;

	for (i = 0; i < *n; i++) {
		if (strcmp(ids[i], id) == 0) {
			free(id);
			return;
		}
	}
	if (*n == MSGID_MAX_REFS) {
		free(ids[0]);
		memmove(ids, ids + 1, (MSGID_MAX_REFS - 1) * sizeof(*ids));
		(*n)--;
	}
	ids[(*n)++] = id;
}

char **
msgid_parse_list(const char *raw)
{
	char		**ids = xcalloc(MSGID_MAX_REFS + 1, sizeof(*ids));
	const char	 *p, *end;
	bool		  bracketed;
	size_t		  n = 0;
	char		 *id;

	if (raw == NULL)
		return ids;
	/*
	 * Old In-Reply-To values mix phrases and addresses with the ids
	 * ("<a@b> from joe@example.com"): when any id is bracketed, only
	 * bracketed ones count; otherwise bare words holding an @ do.
	 */
	bracketed = strchr(raw, '<') != NULL;
	p = raw;
	while (*(p = skip_cfws(p)) != '\0') {
		if (*p == '<') {
			p++;
			end = p + strcspn(p, "<>");
			id = normalize_span(p, (size_t)(end - p));
			p = *end == '>' ? end + 1 : end;
		} else if (*p == '"') {
			/* A quoted phrase: skip it whole. */
			p = str_skip_quoted(p);
			continue;
		} else {
			end = p + strcspn(p, " \t\r\n(<\",");
			if (end == p)
				end++;
			id = bracketed ? NULL : normalize_span(p, (size_t)(end - p));
			p = end;
		}
		if (id != NULL)
			window_add(ids, &n, id);
	}
	return ids;
}

/* Keeps only bytes that are safe in an id's atoms, so our own ids always validate. */
static void
append_atext(struct buf *b, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')
			buf_append(b, &c, 1);
	}
}

char *
msgid_generate(const char *tag, const char *domain)
{
	unsigned char	 rnd[16];
	struct buf	 b = { 0 };
	size_t		 got = 0, i, at;
	ssize_t		 r;

	while (got < sizeof(rnd)) {
		if ((r = getrandom(rnd + got, sizeof(rnd) - got, 0)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("getrandom");
		}
		got += (size_t)r;
	}
	for (i = 0; i < sizeof(rnd); i++)
		buf_printf(&b, "%02x", rnd[i]);
	if (tag != NULL && *tag != '\0') {
		buf_puts(&b, ".");
		append_atext(&b, tag);
	}
	buf_puts(&b, "@");
	at = b.len;
	append_atext(&b, domain);
	if (b.len == at)
		buf_puts(&b, "localhost");
	str_lower(b.data + at);
	return buf_steal(&b);
}
