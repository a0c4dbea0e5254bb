/*
 * frame.c — frames over a socketpair between the daemon and its helper
 * processes, and the account settings a fetcher is started with.
 */
#include "frame.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define SMTP_RCPTS_MAX		1000	/* recipients of one message */

static int
write_all(int fd, const void *p, size_t n)
{
	const char	*c = p;
	ssize_t		 w;

	while (n > 0) {
		if ((w = write(fd, c, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
read_all(int fd, void *p, size_t n)
{
	char	*c = p;
	ssize_t	 r;

	while (n > 0) {
		if ((r = read(fd, c, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

int
frame_append(struct buf *out, enum frame_type type, const struct buf *fields)
{
	size_t	n = fields != NULL ? fields->len : 0;

	if (n + 4 > FRAME_MAX) {
		log_warnx("frame of %zu bytes refused", n);
		return -1;
	}
	buf_put_u32(out, (uint32_t)(n + 4));
	buf_put_u32(out, (uint32_t)type);
	if (n > 0)
		buf_append(out, fields->data, n);
	return 0;
}

int
frame_flush(int fd, struct buf *out)
{
	if (out->len > 0 && write_all(fd, out->data, out->len) == -1)
		return -1;
	out->len = 0;
	return 0;
}

int
frame_send(int fd, enum frame_type type, const struct buf *fields)
{
	struct buf	out = { 0 };
	int		ret;

	ret = frame_append(&out, type, fields);
	if (ret == 0)
		ret = write_all(fd, out.data, out.len);
	buf_free(&out);
	return ret;
}

int
frame_recv(int fd, enum frame_type *type, char **fields, struct reader *r)
{
	unsigned char	 head[8];
	struct reader	 hr = { head, sizeof(head), false };
	uint32_t	 len;
	char		*body;

	*fields = NULL;
	if (read_all(fd, head, sizeof(head)) == -1)
		return -1;
	len = rd_u32(&hr);
	*type = (enum frame_type)rd_u32(&hr);
	if (len < 4 || len > FRAME_MAX) {
		log_debug("frame length %u refused", len);
		return -1;
	}
	len -= 4;
	body = xmalloc((size_t)len + 1);
	if (len > 0 && read_all(fd, body, len) == -1) {
		free(body);
		return -1;
	}
	*fields = body;
	r->p = (const unsigned char *)body;
	r->left = len;
	r->bad = false;
	return 0;
}

#define FRAME_READ_CHUNK	(256 * 1024)

void
frame_reader_reset(struct frame_reader *fr, int fd)
{
	buf_free(&fr->in);
	fr->off = 0;
	fr->fd = fd;
}

int
frame_next(struct frame_reader *fr, enum frame_type *type, char **fields, struct reader *r)
{
	struct reader	 hr;
	uint32_t	 len;
	size_t		 have;
	ssize_t		 n;
	char		*body;

	*fields = NULL;
	for (;;) {
		have = fr->in.len - fr->off;
		if (have >= 8) {
			hr.p = (const unsigned char *)fr->in.data + fr->off;
			hr.left = 8;
			hr.bad = false;
			len = rd_u32(&hr);
			*type = (enum frame_type)rd_u32(&hr);
			if (len < 4 || len > FRAME_MAX) {
				log_debug("frame length %u refused", len);
				return -1;
			}
			if (have >= (size_t)len + 4) {
				body = xmalloc((size_t)len - 4 + 1);
				memcpy(body, fr->in.data + fr->off + 8, len - 4);
				body[len - 4] = '\0';
				fr->off += (size_t)len + 4;
				if (fr->off == fr->in.len)
					fr->off = fr->in.len = 0;
				*fields = body;
				r->p = (const unsigned char *)body;
				r->left = len - 4;
				r->bad = false;
				return 1;
			}
		}
		/* Keep the unread tail at the front before reading more. */
		if (fr->off > 0) {
			memmove(fr->in.data, fr->in.data + fr->off, have);
			fr->in.len = have;
			fr->off = 0;
		}
		buf_append(&fr->in, NULL, 0);
		if (fr->in.cap - fr->in.len < FRAME_READ_CHUNK + 1) {
			fr->in.data = xreallocarray(fr->in.data, fr->in.len + FRAME_READ_CHUNK + 1, 1);
			fr->in.cap = fr->in.len + FRAME_READ_CHUNK + 1;
		}
		n = recv(fr->fd, fr->in.data + fr->in.len, FRAME_READ_CHUNK, MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		fr->in.len += (size_t)n;
		fr->in.data[fr->in.len] = '\0';
	}
}

void
frame_put_account(struct buf *b, const struct conf_account *a)
{
	buf_put_str(b, a->name);
	buf_put_str(b, a->host);
	buf_put_u32(b, (uint32_t)a->port);
	buf_put_u32(b, (uint32_t)a->tls);
	buf_put_str(b, a->user);
	buf_put_u32(b, (uint32_t)a->auth);
	buf_put_str(b, a->ca_file);
	buf_put_str(b, a->sent_folder);
	buf_put_u32(b, (uint32_t)a->timeout_sec);
	buf_put_u32(b, (uint32_t)a->line);
}

bool
frame_get_account(struct reader *r, struct conf_account *a)
{
	a->name = rd_str(r);
	a->host = rd_str(r);
	a->port = (int)rd_u32(r);
	a->tls = (enum tls_mode)rd_u32(r);
	a->user = rd_str(r);
	a->auth = (enum auth_mech)rd_u32(r);
	a->ca_file = rd_str(r);
	a->sent_folder = rd_str(r);
	a->timeout_sec = (int)rd_u32(r);
	a->line = (int)rd_u32(r);
	return !r->bad && a->name != NULL && a->host != NULL && a->user != NULL &&
	    a->port > 0 && a->port < 65536;
}

static void
wipe(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void
smtp_job_put(struct buf *b, const struct smtp_job *job)
{
	size_t	n = strv_len(job->rcpts), i;

	buf_put_str(b, job->url);
	buf_put_str(b, job->ca_file);
	buf_put_str(b, job->user);
	buf_put_str(b, job->password);
	buf_put_str(b, job->from);
	buf_put_u32(b, (uint32_t)n);
	for (i = 0; i < n; i++)
		buf_put_str(b, job->rcpts[i]);
	buf_put_u32(b, (uint32_t)job->timeout_sec);
	buf_put_bytes(b, job->msg, job->len);
}

bool
smtp_job_get(struct reader *r, struct smtp_job *job)
{
	uint32_t	n, i;

	job->url = rd_str(r);
	job->ca_file = rd_str(r);
	job->user = rd_str(r);
	job->password = rd_str(r);
	job->from = rd_str(r);
	n = rd_u32(r);
	if (r->bad || n == 0 || n > SMTP_RCPTS_MAX)
		return false;
	job->rcpts = xcalloc((size_t)n + 1, sizeof(*job->rcpts));
	for (i = 0; i < n; i++)
		if ((job->rcpts[i] = rd_str(r)) == NULL)
			return false;
	job->timeout_sec = (long)rd_u32(r);
	job->msg = rd_bytes(r, &job->len);
	return !r->bad && job->url != NULL && job->from != NULL && job->msg != NULL &&
	    job->timeout_sec > 0;
}

void
smtp_job_clear(struct smtp_job *job)
{
	free(job->url);
	free(job->ca_file);
	free(job->user);
	wipe(job->password);
	free(job->from);
	strv_free(job->rcpts);
	free(job->msg);
	memset(job, 0, sizeof(*job));
}

void
smtp_reply_set(struct send_result *out, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(out->reply, sizeof(out->reply), fmt, ap);
	va_end(ap);
}

void
smtp_result_put(struct buf *b, int ret, const struct send_result *res)
{
	buf_put_u32(b, (uint32_t)ret);
	buf_put_u32(b, (uint32_t)res->smtp_code);
	buf_put_u32(b, res->permanent);
	buf_put_str(b, res->reply);
}

int
smtp_result_get(struct reader *r, struct send_result *res)
{
	uint32_t	 ret = rd_u32(r);
	char		*reply;

	res->smtp_code = (long)rd_u32(r);
	res->permanent = rd_u32(r) != 0;
	reply = rd_str(r);
	snprintf(res->reply, sizeof(res->reply), "%s", reply != NULL ? reply : "");
	free(reply);
	if (r->bad || (ret != R_OK && ret != R_RETRY && ret != R_SKIP))
		return -1;
	return (int)ret;
}

void
token_job_put(struct buf *b, const struct token_job *job)
{
	buf_put_str(b, job->url);
	buf_put_u32(b, (uint32_t)job->timeout_sec);
	buf_put_str(b, job->refresh_token);
	buf_put_str(b, job->client_id);
	buf_put_str(b, job->client_secret);
	buf_put_str(b, job->scope);
}

bool
token_job_get(struct reader *r, struct token_job *job)
{
	job->url = rd_str(r);
	job->timeout_sec = (long)rd_u32(r);
	job->refresh_token = rd_str(r);
	job->client_id = rd_str(r);
	job->client_secret = rd_str(r);
	job->scope = rd_str(r);
	return !r->bad && job->url != NULL && job->refresh_token != NULL &&
	    job->client_id != NULL && job->timeout_sec > 0;
}

void
token_job_clear(struct token_job *job)
{
	free(job->url);
	wipe(job->refresh_token);
	free(job->client_id);
	wipe(job->client_secret);
	free(job->scope);
	memset(job, 0, sizeof(*job));
}

void
token_reply_put(struct buf *b, const struct token_reply *t)
{
	buf_put_u32(b, (uint32_t)t->result);
	buf_put_str(b, t->err);
	buf_put_str(b, t->access_token);
	buf_put_u64(b, (uint64_t)t->expires_in);
	buf_put_str(b, t->new_refresh_token);
}

bool
token_reply_get(struct reader *r, struct token_reply *t)
{
	char	*err;

	t->result = (int)rd_u32(r);
	err = rd_str(r);
	snprintf(t->err, sizeof(t->err), "%s", err != NULL ? err : "");
	free(err);
	t->access_token = rd_str(r);
	t->expires_in = (long)rd_u64(r);
	t->new_refresh_token = rd_str(r);
	for (err = t->err; *err != '\0'; err++)
		if ((unsigned char)*err < 0x20 || (unsigned char)*err == 0x7f)
			*err = '?';
	if (r->bad || (t->result != R_OK && t->result != R_RETRY && t->result != R_FATAL))
		return false;
	/* Whatever the helper says: a token goes into an IMAP command and a file line. */
	if ((t->access_token != NULL && strpbrk(t->access_token, "\r\n ") != NULL) ||
	    (t->new_refresh_token != NULL && strpbrk(t->new_refresh_token, "\r\n") != NULL))
		return false;
	return t->result != R_OK || (t->access_token != NULL && t->expires_in > 0);
}

void
token_reply_clear(struct token_reply *t)
{
	wipe(t->access_token);
	wipe(t->new_refresh_token);
	memset(t, 0, sizeof(*t));
}
