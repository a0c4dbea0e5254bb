/*
 * ipcased-send — the daemon's network requests (netreq.h): deliver the
 * messages it is given over SMTP (smtp.h), one connection kept between
 * them, or renew an OAuth token over HTTPS (token.h); each answered in
 * turn, until the daemon closes the socket.  It holds the secrets of its
 * requests (the SMTP password, a refresh token) and nothing else.
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "frame.h"
#include "log.h"
#include "smtp.h"
#include "spawn.h"
#include "token.h"

static void
do_smtp(int fd, struct reader *r)
{
	struct smtp_job		 job = { 0 };
	struct send_result	 res;
	struct buf		 b = { 0 };
	int			 ret;

	if (!smtp_job_get(r, &job)) {
		smtp_job_clear(&job);
		fatalx("ipcased-send: malformed F_SMTP");
	}
	ret = smtp_send(&job, &res);
	smtp_job_clear(&job);
	smtp_result_put(&b, ret, &res);
	frame_send(fd, F_SMTP_DONE, &b);
	buf_free(&b);
}

static void
do_token(int fd, struct reader *r)
{
	struct token_job	 job = { 0 };
	struct token_reply	 reply = { 0 };
	struct buf		 b = { 0 };

	if (!token_job_get(r, &job)) {
		token_job_clear(&job);
		fatalx("ipcased-send: malformed F_TOKEN");
	}
	token_request(&job, &reply);
	token_job_clear(&job);
	token_reply_put(&b, &reply);
	token_reply_clear(&reply);
	frame_send(fd, F_TOKEN_DONE, &b);
	explicit_bzero(b.data, b.len);
	buf_free(&b);
}

int
main(int argc, char *argv[])
{
	enum frame_type	 type;
	struct reader	 r;
	char		*fields;
	int		 fd = helper_init(argc, argv);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("curl_global_init failed");
	/* Until the daemon closes the socket (or goes away). */
	while (frame_recv(fd, &type, &fields, &r) == 0) {
		if (type == F_SMTP)
			do_smtp(fd, &r);
		else if (type == F_TOKEN)
			do_token(fd, &r);
		else
			fatalx("ipcased-send: unexpected frame %u", (unsigned)type);
		explicit_bzero(fields, (size_t)(r.p - (const unsigned char *)fields) + r.left);
		free(fields);
	}
	smtp_close();
	curl_global_cleanup();
	return 0;
}
