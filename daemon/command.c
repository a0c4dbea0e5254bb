/*
 * command.c — reads mail commands from the seller's reply to a reminder: only
 * the reply's own lines (quoted text and signature are someone else's words,
 * often our own reminder, which names every verb), one command per line,
 * verbs in any case, at most COMMAND_MAX per mail.  Whether a command may be
 * obeyed (sender, token) is decided by cases.c; this file only reads text.
 */
#include "command.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define BAD_LINE_MAX	80	/* bytes of a bad line quoted back in the confirmation */

static const char *const verbs[] = { "done", "snooze", "close", "note" };

/* Words for units that people write, mapped to duration_parse()'s letters. */
static const struct {
	const char	*word;
	const char	*unit;
} unit_words[] = {
	{ "minutes", "m" }, { "minute", "m" }, { "mins", "m" }, { "min", "m" },
	{ "hours", "h" }, { "hour", "h" }, { "hrs", "h" }, { "hr", "h" },
	{ "days", "d" }, { "day", "d" }, { "weeks", "w" }, { "week", "w" },
	{ "wks", "w" }, { "wk", "w" },
};

/*
 * Words of the line a mail client puts above the quoted original, which
 * ends in a colon: "On ... X <x@y> wrote:", "Am ... schrieb X <x@y>:",
 * "Le ... X a écrit :".
 */
static const char *const attribution_words[] = {
	" wrote", " schrieb", " a \303\251crit", " escribi\303\263",
	" ha scritto", " schreef", " skrev", " napisa\305\202",
};

const char *
command_verb_name(enum command_verb v)
{
	return (size_t)v < NELEM(verbs) ? verbs[v] : "?";
}

void
command_list_clear(struct command_list *l)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		free(l->cmds[i].arg);
	for (i = 0; i < l->nbad; i++)
		free(l->bad[i]);
	memset(l, 0, sizeof(*l));
}

static bool
starts_with_ci(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Cuts valid UTF-8 at max bytes without splitting a character. */
static void
utf8_cut(char *s, size_t max)
{
	size_t	len = strlen(s);

	if (len <= max)
		return;
	len = max;
	while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
		len--;
	s[len] = '\0';
}

/* One line as valid UTF-8 without NULs or controls (tabs and CR become spaces), trimmed; malloc'd. */
static char *
line_clean(const char *p, size_t len)
{
	char	*u = utf8_sanitize(p, len), *t, *ret;
	size_t	 i;

	for (i = 0; u[i] != '\0'; i++)
		if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f)
			u[i] = ' ';
	t = str_trim(u);
	ret = xstrdup(t);
	free(u);
	return ret;
}

/*
 * Where the reply's own text ends: a quoted line, the attribution line above
 * a quote (ending in a colon), a forwarded or Outlook original ("-----Original Message-----",
 * "From: ...", a row of underscores), or the signature separator "-- ".
 */
static bool
line_ends_own_text(const char *t)
{
	char	*padded;
	size_t	 i;
	bool	 found = false;

	if (*t == '>' || strcmp(t, "--") == 0 || strncmp(t, "-----", 5) == 0 ||
	    starts_with_ci(t, "From:") || strncmp(t, "__________", 10) == 0)
		return true;
	if (*t == '\0' || t[strlen(t) - 1] != ':')
		return false;
	/* A space in front, so that a word at the start of the line is found too. */
	padded = xasprintf(" %s", t);
	for (i = 0; i < NELEM(attribution_words) && !found; i++)
		found = strcasestr(padded, attribution_words[i]) != NULL;
	free(padded);
	return found;
}

/* Strips trailing '.' and '!' (a sentence's end), then spaces. */
static void
strip_punct(char *s)
{
	size_t	len = strlen(s);

	while (len > 0 && (s[len - 1] == '.' || s[len - 1] == '!' ||
	    s[len - 1] == ' '))
		s[--len] = '\0';
}

/* "Stop selling" / "stop-selling" -> "stop_selling"; NULL when it cannot be a task id. */
static char *
task_id(const char *arg)
{
	char	*id = xstrdup(arg), *p;
	size_t	 n = 0;

	strip_punct(id);
	for (p = id; *p != '\0'; p++) {
		char	c = (char)tolower((unsigned char)*p);

		if (c == ' ' || c == '-')
			c = '_';
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			goto bad;
		/* Runs of separators are one. */
		if (c == '_' && (n == 0 || id[n - 1] == '_'))
			continue;
		id[n++] = c;
	}
	while (n > 0 && id[n - 1] == '_')
		n--;
	id[n] = '\0';
	if (n == 0 || n > COMMAND_TASK_MAX)
		goto bad;
	return id;
bad:
	free(id);
	return NULL;
}

/*
 * "2d", "2 d", "2 days", "36h" -> seconds, or -1.  A unit is required:
 * "snooze 2" is more likely a slip than two seconds.
 */
static long
snooze_seconds(const char *arg, char **written)
{
	struct buf	 b = { 0 };
	const char	*p = arg, *unit;
	char		 word[16];
	size_t		 i, n;
	long		 sec;

	*written = NULL;
	while (isdigit((unsigned char)*p) && b.len < 12)
		buf_append(&b, p++, 1);
	if (b.len == 0 || isdigit((unsigned char)*p)) {
		buf_free(&b);
		return -1;
	}
	while (*p == ' ')
		p++;
	for (n = 0; isalpha((unsigned char)p[n]) && n < sizeof(word) - 1; n++)
		word[n] = (char)tolower((unsigned char)p[n]);
	word[n] = '\0';
	p += n;
	while (*p == '.' || *p == '!' || *p == ' ')
		p++;
	if (n == 0 || *p != '\0') {
		buf_free(&b);
		return -1;
	}
	unit = word;
	for (i = 0; i < NELEM(unit_words); i++)
		if (strcmp(word, unit_words[i].word) == 0)
			unit = unit_words[i].unit;
	buf_puts(&b, unit);
	sec = duration_parse(b.data);
	if (sec < COMMAND_SNOOZE_MIN || sec > COMMAND_SNOOZE_MAX) {
		buf_free(&b);
		return -1;
	}
	*written = buf_steal(&b);
	return sec;
}

/* Free text of close and note: at most COMMAND_TEXT_MAX bytes. */
static char *
text_arg(const char *arg)
{
	char	*t = xstrdup(arg);
	size_t	 len;

	utf8_cut(t, COMMAND_TEXT_MAX);
	/* The cut may leave a space at the end. */
	len = strlen(t);
	while (len > 0 && t[len - 1] == ' ')
		t[--len] = '\0';
	return t;
}

/*
 * The verb that starts line t, with *rest pointing past it and the spaces or
 * colon after it; -1 when the first word is no verb.  "Done." and "done!"
 * alone are "done"; "done," is prose.
 */
static int
verb_of(const char *t, const char **rest)
{
	char	 word[8];
	size_t	 n, i;

	for (n = 0; t[n] != '\0' && t[n] != ' ' && t[n] != ':'; n++)
		if (n >= sizeof(word) - 1)
			return -1;
	memcpy(word, t, n);
	word[n] = '\0';
	while (n > 0 && (word[n - 1] == '.' || word[n - 1] == '!'))
		word[--n] = '\0';
	if (n == 0)
		return -1;
	for (i = 0; i < NELEM(verbs); i++) {
		if (strcasecmp(word, verbs[i]) != 0)
			continue;
		t += strlen(word);
		/* Punctuation after the verb only when nothing follows it. */
		if (*t == '.' || *t == '!') {
			while (*t == '.' || *t == '!')
				t++;
			if (*t != '\0')
				return -1;
		}
		if (*t == ':')
			t++;
		while (*t == ' ')
			t++;
		*rest = t;
		return (int)i;
	}
	return -1;
}

/* One command line into c.  0, or -1 when its argument is missing or unreadable. */
static int
command_read(enum command_verb verb, const char *rest, struct command *c)
{
	memset(c, 0, sizeof(*c));
	c->verb = verb;
	switch (verb) {
	case COMMAND_DONE:
		if (*rest == '\0')
			return 0;
		return (c->arg = task_id(rest)) != NULL ? 0 : -1;
	case COMMAND_SNOOZE:
		c->seconds = snooze_seconds(rest, &c->arg);
		return c->seconds > 0 ? 0 : -1;
	case COMMAND_CLOSE:
	case COMMAND_NOTE:
		/* rest is trimmed: not empty means there is text. */
		if (*rest == '\0')
			return -1;
		c->arg = text_arg(rest);
		return 0;
	}
	return -1;
}

size_t
command_parse(const char *text, size_t len, struct command_list *out)
{
	const char	*p = text, *end = text + len, *nl, *rest;
	struct command	 c;
	size_t		 lines = 0, seen = 0, linelen;
	char		*t;
	int		 verb;

	memset(out, 0, sizeof(*out));
	if (text == NULL)
		return 0;
	while (p < end && lines < COMMAND_LINES_MAX) {
		nl = memchr(p, '\n', (size_t)(end - p));
		linelen = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		t = NULL;
		if (linelen > COMMAND_LINE_MAX) {
			/* Far too long for a command, and cheap to skip; prose. */
			lines++;
			goto next;
		}
		t = line_clean(p, linelen);
		if (*t == '\0')
			goto next;
		lines++;
		if (line_ends_own_text(t)) {
			free(t);
			break;
		}
		if ((verb = verb_of(t, &rest)) < 0)
			goto next;
		seen++;
		if (out->n + out->nbad >= COMMAND_MAX) {
			out->dropped++;
			goto next;
		}
		if (command_read((enum command_verb)verb, rest, &c) == 0)
			out->cmds[out->n++] = c;
		else {
			utf8_cut(t, BAD_LINE_MAX);
			out->bad[out->nbad++] = xstrdup(t);
		}
next:
		free(t);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return seen;
}

bool
command_msgid_token(const char *msgid, char *token, size_t len)
{
	const char	*at, *dot, *q;

	if (msgid == NULL || len < COMMAND_TOKEN_LEN + 1 ||
	    (at = strrchr(msgid, '@')) == NULL)
		return false;
	for (dot = at; dot > msgid && dot[-1] != '.'; dot--)
		;
	/* The token is a part of its own, never the whole local part. */
	if (dot == msgid || at - dot != COMMAND_TOKEN_LEN)
		return false;
	for (q = dot; q < at; q++)
		if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f')))
			return false;
	memcpy(token, dot, COMMAND_TOKEN_LEN);
	token[COMMAND_TOKEN_LEN] = '\0';
	return true;
}
