/*
 * smtp.c — delivery of composed messages with libcurl.  It runs in
 * ipcased-send, a program of its own that the daemon starts for a round of
 * reminders (netreq.h): the daemon links no TLS or SMTP code, and a server
 * that crashes curl takes only this process with it.  The messages of a
 * round share one connection (one TLS handshake, one AUTH); curl closes it
 * after a failed one and connects again for the next.
 */
#include "smtp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "frame.h"
#include "log.h"

#define SMTP_CONNECT_TIMEOUT	15L

/* Kept between messages: its connection cache holds the open SMTP session. */
static CURL	*handle;

struct upload {
	const char	*p;
	size_t		 left;
};

struct server_line {
	char	last[200];		/* the last reply line the server sent */
	char	error[200];		/* the last 4xx/5xx line: QUIT's 221 must not hide it */
};

static size_t
upload_read(char *dst, size_t size, size_t nitems, void *ud)
{
	struct upload	*u = ud;
	size_t		 n = size * nitems;

	if (n > u->left)
		n = u->left;
	memcpy(dst, u->p, n);
	u->p += n;
	u->left -= n;
	return n;
}

/* Keeps the server's last reply line; what we send (AUTH!) is never looked at. */
static int
debug_cb(CURL *c, curl_infotype type, char *data, size_t size, void *ud)
{
	struct server_line *sl = ud;
	size_t		 i, n = 0;

	(void)c;
	if (type != CURLINFO_HEADER_IN)
		return 0;
	for (i = 0; i < size && n + 1 < sizeof(sl->last); i++) {
		if (data[i] == '\r' || data[i] == '\n')
			break;
		sl->last[n++] = (unsigned char)data[i] < 0x20 ||
		    (unsigned char)data[i] >= 0x7f ? '?' : data[i];
	}
	sl->last[n] = '\0';
	if (sl->last[0] == '4' || sl->last[0] == '5')
		memcpy(sl->error, sl->last, n + 1);
	return 0;
}

static bool
curl_code_is_permanent(CURLcode res)
{
	switch (res) {
	case CURLE_LOGIN_DENIED:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_USE_SSL_FAILED:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
		return true;
	default:
		return false;
	}
}

int
smtp_send(const struct smtp_job *job, struct send_result *out)
{
	struct curl_slist *list = NULL;
	struct server_line sl = { "", "" };
	struct upload	 up = { job->msg, job->len };
	char		 errbuf[CURL_ERROR_SIZE] = "", *from, *s;
	const char	*server;
	CURL		*c;
	CURLcode	 res;
	long		 code = 0;
	size_t		 n;
	int		 ret;

	memset(out, 0, sizeof(*out));
	/* Reset after each message (below): its options are gone, its connection kept. */
	if (handle == NULL && (handle = curl_easy_init()) == NULL)
		fatalx("curl_easy_init failed");
	c = handle;
	curl_easy_setopt(c, CURLOPT_URL, job->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	if (strncasecmp(job->url, "smtp://", 7) == 0)
		curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (job->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, job->ca_file);
	if (job->user != NULL) {
		curl_easy_setopt(c, CURLOPT_USERNAME, job->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, job->password);
	}
	from = xasprintf("<%s>", job->from);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	for (n = 0; job->rcpts[n] != NULL; n++) {
		s = xasprintf("<%s>", job->rcpts[n]);
		if ((list = curl_slist_append(list, s)) == NULL)
			fatal("curl_slist_append");
		free(s);
	}
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, list);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &up);
	/* LF -> CRLF and dot-stuffing; only right because msg has no CR. */
	curl_easy_setopt(c, CURLOPT_CRLF, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, SMTP_CONNECT_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, job->timeout_sec);
	curl_easy_setopt(c, CURLOPT_SERVER_RESPONSE_TIMEOUT, job->timeout_sec);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, job->timeout_sec);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, debug_cb);
	curl_easy_setopt(c, CURLOPT_DEBUGDATA, &sl);
	curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);

	res = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	out->smtp_code = code;
	if (res == CURLE_OK) {
		smtp_reply_set(out, "%s", sl.last[0] != '\0' ? sl.last : "250 ok");
		log_info("smtp: sent to %zu recipient%s: %s", n, n == 1 ? "" : "s",
		    out->reply);
		ret = R_OK;
		goto out;
	}
	server = sl.error[0] != '\0' ? sl.error : sl.last;
	smtp_reply_set(out, "%s (curl %d)%s%s",
	    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(res), (int)res,
	    server[0] != '\0' ? "; server: " : "", server);
	if (curl_code_is_permanent(res) || (code >= 500 && code <= 599)) {
		out->permanent = true;
		ret = R_SKIP;
	} else
		ret = R_RETRY;
	log_warnx("smtp: %s: %s%s", job->url, out->reply,
	    ret == R_SKIP ? " (permanent: kept, needs attention)" : " (will retry)");
out:
	/* The next message starts clean, and no pointer into this call's memory stays set. */
	curl_easy_reset(c);
	curl_slist_free_all(list);
	free(from);
	return ret;
}

void
smtp_close(void)
{
	if (handle == NULL)
		return;
	curl_easy_cleanup(handle);	/* QUIT */
	handle = NULL;
}
