/*
 * oauth.c — access tokens for XOAUTH2 (Gmail, Microsoft 365).  The daemon
 * reads and rotates the refresh token here; the HTTPS exchange runs in
 * ipcased-send (token.h); the fetcher only ever sees the short-lived access
 * token.
 */
#include "oauth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "netreq.h"
#include "token.h"

char *
oauth_rotated_path(const struct conf *conf, const struct conf_account *acct)
{
	const char	*slash = strrchr(conf->state_path, '/');

	if (slash == NULL)
		return xasprintf("oauth-%s.token", acct->name);
	return xasprintf("%.*s/oauth-%s.token", (int)(slash - conf->state_path),
	    conf->state_path, acct->name);
}

/* Where secret_read() finds oauth_refresh_token_file: a credential first, as there. */
static char *
given_path(const struct conf *conf, const struct conf_account *acct)
{
	const char	*file = acct->oauth_refresh_token_file, *credir;
	char		*path;

	if (file[0] == '/')
		return xstrdup(file);
	if ((credir = getenv("CREDENTIALS_DIRECTORY")) != NULL) {
		path = xasprintf("%s/%s", credir, file);
		if (access(path, F_OK) == 0)
			return path;
		free(path);
	}
	return xasprintf("%s/%s", conf->dir, file);
}

/* Writes the rotated refresh token atomically: a crash leaves the old or the new one. */
static int
save_rotated(const char *path, const char *token)
{
	char	*tmp = xasprintf("%s.tmp", path);
	FILE	*f;
	int	 fd, ret = -1;

	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1 ||
	    (f = fdopen(fd, "w")) == NULL) {
		log_warn("%s", tmp);
		if (fd != -1)
			close(fd);
		goto out;
	}
	fprintf(f, "%s\n", token);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		log_warn("%s", tmp);
		fclose(f);
		goto out;
	}
	fclose(f);
	if (rename(tmp, path) == -1) {
		log_warn("rename %s", path);
		goto out;
	}
	ret = 0;
out:
	free(tmp);
	return ret;
}

enum result
oauth_refresh(const struct conf *conf, const struct conf_account *acct, char **token,
    time_t *expires, char *err, size_t errlen)
{
	struct token_job	 job = { 0 };
	struct token_reply	 reply = { 0 };
	struct buf		 req = { 0 };
	struct reader		 r;
	char			*rotated = oauth_rotated_path(conf, acct), *given, *fields = NULL;
	enum result		 ret = R_RETRY;
	struct stat		 st, gst;

	*token = NULL;
	/*
	 * The rotated copy is the newest token, unless the seller has since
	 * authorised again and written a fresh one into the configured file.
	 */
	given = given_path(conf, acct);
	if (stat(rotated, &st) == 0 && (stat(given, &gst) == -1 ||
	    st.st_mtim.tv_sec > gst.st_mtim.tv_sec || (st.st_mtim.tv_sec == gst.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec >= gst.st_mtim.tv_nsec))) {
		if (secret_read(rotated, NULL, &job.refresh_token, err, errlen) == -1) {
			ret = R_FATAL;
			goto out;
		}
	} else if (secret_read(acct->oauth_refresh_token_file, conf->dir, &job.refresh_token,
	    err, errlen) == -1) {
		ret = R_FATAL;
		goto out;
	}
	if (acct->oauth_client_secret_file != NULL &&
	    secret_read(acct->oauth_client_secret_file, conf->dir, &job.client_secret, err,
	    errlen) == -1) {
		ret = R_FATAL;
		goto out;
	}
	job.url = xstrdup(acct->oauth_token_url);
	job.timeout_sec = acct->timeout_sec > 0 ? acct->timeout_sec : 30;
	job.client_id = xstrdup(acct->oauth_client_id);
	job.scope = acct->oauth_scope != NULL ? xstrdup(acct->oauth_scope) : NULL;
	token_job_put(&req, &job);
	if (netreq_call(F_TOKEN, &req, F_TOKEN_DONE, job.timeout_sec, &fields, &r,
	    err, errlen) == -1)
		goto out;
	if (!token_reply_get(&r, &reply)) {
		snprintf(err, errlen, "a malformed answer from ipcased-send");
		goto out;
	}
	if ((ret = (enum result)reply.result) != R_OK) {
		snprintf(err, errlen, "%s", reply.err);
		goto out;
	}
	*token = reply.access_token;
	reply.access_token = NULL;
	*expires = now_wall() + reply.expires_in;
	if (reply.new_refresh_token != NULL && save_rotated(rotated, reply.new_refresh_token) == 0)
		log_info("%s: the provider rotated the refresh token; kept in %s",
		    acct->name, rotated);
out:
	if (fields != NULL)
		explicit_bzero(fields, (size_t)(r.p - (const unsigned char *)fields) + r.left);
	free(fields);
	if (req.data != NULL)
		explicit_bzero(req.data, req.len);
	buf_free(&req);
	token_job_clear(&job);
	token_reply_clear(&reply);
	free(rotated);
	free(given);
	return ret;
}
