/* util.c — allocation that exits on failure, buffers, log-safe text, secrets, durations. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

void *
xmalloc(size_t n)
{
	void	*p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("malloc");
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void	*p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		fatal("calloc");
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		fatalx("reallocarray: %zu * %zu overflows", n, size);
	p = realloc(p, n * size != 0 ? n * size : 1);
	if (p == NULL)
		fatal("realloc");
	return p;
}

char *
xstrdup(const char *s)
{
	char	*p;

	if (s == NULL)
		return NULL;
	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p;

	if ((p = strndup(s, n)) == NULL)
		fatal("strndup");
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*p;

	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		fatal("vasprintf");
	va_end(ap);
	return p;
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t	cap = b->cap ? b->cap : 256;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = xreallocarray(b->data, cap, 1);
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_reserve(struct buf *b, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		if (n > SIZE_MAX - b->len - 1)
			fatalx("buf_reserve: %zu bytes", n);
		b->cap = b->len + n + 1;
		b->data = xreallocarray(b->data, b->cap, 1);
		b->data[b->len] = '\0';
	}
}

void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	char	*p;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("vasprintf");
	buf_append(b, p, (size_t)n);
	free(p);
}

char *
buf_steal(struct buf *b)
{
	char	*p = b->data;

	if (p == NULL)
		p = xstrdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buf_put_u32(struct buf *b, uint32_t v)
{
	unsigned char	c[4] = { v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24 };

	buf_append(b, c, 4);
}

void
buf_put_u64(struct buf *b, uint64_t v)
{
	buf_put_u32(b, (uint32_t)v);
	buf_put_u32(b, (uint32_t)(v >> 32));
}

void
buf_put_bytes(struct buf *b, const void *p, size_t n)
{
	if (n > UINT32_MAX - 1)
		fatalx("buf_put_bytes: %zu bytes", n);
	buf_put_u32(b, (uint32_t)n);
	buf_append(b, p, n);
}

/* NULL is stored as length 0xffffffff so that "" and NULL stay distinct. */
void
buf_put_str(struct buf *b, const char *s)
{
	if (s == NULL)
		buf_put_u32(b, UINT32_MAX);
	else
		buf_put_bytes(b, s, strlen(s));
}

uint32_t
rd_u32(struct reader *r)
{
	uint32_t	v;

	if (r->bad || r->left < 4) {
		r->bad = true;
		return 0;
	}
	v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
	    (uint32_t)r->p[3] << 24;
	r->p += 4;
	r->left -= 4;
	return v;
}

uint64_t
rd_u64(struct reader *r)
{
	uint64_t	lo = rd_u32(r);

	return lo | (uint64_t)rd_u32(r) << 32;
}

static char *
rd_counted(struct reader *r, uint32_t n, size_t *len)
{
	char	*p;

	if (r->bad || r->left < n) {
		r->bad = true;
		return NULL;
	}
	p = xmalloc((size_t)n + 1);
	memcpy(p, r->p, n);
	p[n] = '\0';
	r->p += n;
	r->left -= n;
	if (len != NULL)
		*len = n;
	return p;
}

char *
rd_bytes(struct reader *r, size_t *len)
{
	uint32_t	n = rd_u32(r);

	if (n == UINT32_MAX)
		r->bad = true;
	return rd_counted(r, n, len);
}

char *
rd_str(struct reader *r)
{
	uint32_t	n = rd_u32(r);

	if (r->bad || n == UINT32_MAX)
		return NULL;
	return rd_counted(r, n, NULL);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when invalid. */
static size_t
utf8_seq(const unsigned char *s, size_t left)
{
	size_t	n, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (left < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t	i = 0, n;

	while (i < len) {
		if ((n = utf8_seq(p + i, len - i)) == 0)
			return false;
		i += n;
	}
	return true;
}

size_t
utf8_char_len(const char *s, size_t left)
{
	return left > 0 ? utf8_seq((const unsigned char *)s, left) : 0;
}

/*
 * Two passes, the first only counting, so the result is written once into
 * an exact allocation: this runs on every header value and body of a scan.
 */
char *
utf8_sanitize(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t		i, n, bad = 0, o = 0;
	bool		clean = true;
	char		*out;

	for (i = 0; i < len; i += n) {
		if (p[i] < 0x80) {
			n = 1;
			clean &= p[i] != '\0';
		} else if ((n = utf8_seq(p + i, len - i)) == 0) {
			n = 1;
			bad++;
		}
	}
	if (bad > (SIZE_MAX - len - 1) / 2)
		fatalx("utf8_sanitize: %zu bytes", len);
	out = xmalloc(len + 2 * bad + 1);
	if (clean && bad == 0) {
		memcpy(out, s, len);
		out[len] = '\0';
		return out;
	}
	for (i = 0; i < len; i += n) {
		if (p[i] < 0x80) {
			n = 1;
			out[o++] = p[i] == '\0' ? ' ' : (char)p[i];
		} else if ((n = utf8_seq(p + i, len - i)) == 0) {
			n = 1;
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
		} else {
			memcpy(out + o, p + i, n);
			o += n;
		}
	}
	out[o] = '\0';
	return out;
}

char *
str_for_log(const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	struct buf	b = { 0 };
	size_t		i = 0, n, len;

	if (s == NULL)
		return xstrdup("(null)");
	len = strlen(s);
	buf_append(&b, "", 0);
	while (i < len) {
		if (b.len >= max) {
			buf_puts(&b, "...");
			break;
		}
		n = utf8_seq(p + i, len - i);
		if (n == 1 && (p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\'))
			buf_printf(&b, "\\x%02x", p[i]);
		else if (n == 0)
			buf_printf(&b, "\\x%02x", p[i]);
		else if (n == 3 && p[i] == 0xe2 && p[i + 1] == 0x80 &&
		    (p[i + 2] == 0xa8 || p[i + 2] == 0xa9))
			buf_puts(&b, "\\u2028");	/* line and paragraph separators */
		else
			buf_append(&b, p + i, n);
		i += n ? n : 1;
	}
	return buf_steal(&b);
}

void
str_lower(char *s)
{
	for (; s && *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

const char *
str_skip_cfws(const char *p, int max_depth)
{
	int	depth;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			return p;
		for (depth = 0; *p != '\0'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(' && depth < max_depth)
				depth++;
			else if (*p == ')' && --depth == 0) {
				p++;
				break;
			}
		}
	}
}

const char *
str_skip_quoted(const char *p)
{
	for (p++; *p != '\0' && *p != '"'; p++)
		if (*p == '\\' && p[1] != '\0')
			p++;
	if (*p == '"')
		p++;
	return p;
}

char *
str_trim(char *s)
{
	char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int
secret_read(const char *path, const char *basedir, char **out, char *err, size_t errlen)
{
	const char	*credir = getenv("CREDENTIALS_DIRECTORY");
	char		*full = NULL, *data = NULL, *nl;
	struct stat	 st;
	size_t		 len;
	int		 fd = -1, ret = -1;

	*out = NULL;
	if (path[0] != '/' && credir != NULL) {
		full = xasprintf("%s/%s", credir, path);
		if (access(full, F_OK) != 0) {
			free(full);
			full = NULL;
		}
	}
	if (full == NULL)
		full = path[0] == '/' || basedir == NULL ? xstrdup(path) :
		    xasprintf("%s/%s", basedir, path);
	if ((fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		snprintf(err, errlen, "%s: %s", full, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", full);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "%s: readable by group or others (mode %03o); "
		    "run chmod 600 %s", full, (unsigned)(st.st_mode & 0777), full);
		goto out;
	}
	close(fd);
	fd = -1;
	if ((data = file_read(full, 64 * 1024, &len)) == NULL) {
		snprintf(err, errlen, "%s: %s", full, strerror(errno));
		goto out;
	}
	if ((nl = strpbrk(data, "\r\n")) != NULL)
		*nl = '\0';
	if (data[0] == '\0' || strlen(data) != strcspn(data, "\r\n")) {
		snprintf(err, errlen, "%s: empty", full);
		goto out;
	}
	*out = data;
	data = NULL;
	ret = 0;
out:
	if (fd != -1)
		close(fd);
	if (data != NULL) {
		explicit_bzero(data, strlen(data));
		free(data);
	}
	free(full);
	return ret;
}

time_t
now_wall(void)
{
	return time(NULL);
}

int64_t
now_mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long
duration_parse(const char *s)
{
	char	*end;
	long	 v, mult;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || v < 0)
		return -1;
	if (strcmp(end, "s") == 0 || *end == '\0')
		mult = 1;
	else if (strcmp(end, "m") == 0)
		mult = 60;
	else if (strcmp(end, "h") == 0)
		mult = 3600;
	else if (strcmp(end, "d") == 0)
		mult = 86400;
	else if (strcmp(end, "w") == 0)
		mult = 7 * 86400;
	else
		return -1;
	if (v > LONG_MAX / mult)
		return -1;
	return v * mult;
}

char *
duration_format(long s, char *buf, size_t len)
{
	long	d = s / 86400, h = (s % 86400) / 3600, m = (s % 3600) / 60;

	if (d > 0 && h > 0)
		snprintf(buf, len, "%ldd %ldh", d, h);
	else if (d > 0)
		snprintf(buf, len, "%ldd", d);
	else if (h > 0)
		snprintf(buf, len, "%ldh", h);
	else
		snprintf(buf, len, "%ldm", m);
	return buf;
}

char *
file_read(const char *path, size_t max, size_t *lenp)
{
	struct buf	 b = { 0 };
	char		 chunk[65536];
	ssize_t		 n;
	int		 fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	buf_append(&b, "", 0);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (b.len + (size_t)n > max) {
			close(fd);
			buf_free(&b);
			errno = EFBIG;
			return NULL;
		}
		buf_append(&b, chunk, (size_t)n);
	}
	saved = errno;
	close(fd);
	if (n < 0) {
		buf_free(&b);
		errno = saved;
		return NULL;
	}
	if (lenp != NULL)
		*lenp = b.len;
	return buf_steal(&b);
}

long
proc_rss_anon_kib(void)
{
	char	*status = file_read("/proc/self/status", 64 * 1024, NULL), *p;
	long	 kib = -1;

	if (status != NULL && (p = strstr(status, "\nRssAnon:")) != NULL)
		kib = strtol(p + 9, NULL, 10);
	free(status);
	return kib;
}

void
strv_free(char **v)
{
	char	**p;

	if (v == NULL)
		return;
	for (p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

size_t
strv_len(char *const *v)
{
	size_t	n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}
