/*
 * oauth.c — the refresh-token grant (RFC 6749 §6) that Gmail and Microsoft
 * 365 require for IMAP with XOAUTH2.  Runs in the parent, which may read and
 * write files; the fetcher only ever sees the short-lived access token.
 */
#include "oauth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "log.h"

#define OAUTH_MAX_REPLY		(64 * 1024)

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	struct buf	*b = arg;

	if (b->len + size * n > OAUTH_MAX_REPLY)
		return 0;	/* a token reply is small: refuse a flood */
	buf_append(b, p, size * n);
	return size * n;
}

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

static char *
form_field(CURL *c, struct buf *form, const char *name, const char *value)
{
	char	*esc = curl_easy_escape(c, value, 0);

	if (esc == NULL)
		fatalx("curl_easy_escape");
	buf_printf(form, "%s%s=%s", form->len ? "&" : "", name, esc);
	curl_free(esc);
	return form->data;
}

static void
wipe(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

enum result
oauth_refresh(const struct conf *conf, const struct conf_account *acct, char **token,
    time_t *expires, char *err, size_t errlen)
{
	struct buf		 form = { 0 }, reply = { 0 };
	struct json_object	*root = NULL, *v;
	char			*rotated = oauth_rotated_path(conf, acct), *refresh = NULL;
	char			*given;
	char			*client_secret = NULL, cerr[CURL_ERROR_SIZE] = "";
	const char		*new_refresh, *error;
	enum result		 ret = R_RETRY;
	long			 code = 0, expires_in = 3600;
	CURLcode		 rc;
	CURL			*c = NULL;
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
		if (secret_read(rotated, NULL, &refresh, err, errlen) == -1) {
			ret = R_FATAL;
			goto out;
		}
	} else if (secret_read(acct->oauth_refresh_token_file, conf->dir, &refresh, err,
	    errlen) == -1) {
		ret = R_FATAL;
		goto out;
	}
	if (acct->oauth_client_secret_file != NULL &&
	    secret_read(acct->oauth_client_secret_file, conf->dir, &client_secret, err,
	    errlen) == -1) {
		ret = R_FATAL;
		goto out;
	}
	if ((c = curl_easy_init()) == NULL)
		fatalx("curl_easy_init");
	form_field(c, &form, "grant_type", "refresh_token");
	form_field(c, &form, "refresh_token", refresh);
	form_field(c, &form, "client_id", acct->oauth_client_id);
	if (client_secret != NULL)
		form_field(c, &form, "client_secret", client_secret);
	if (acct->oauth_scope != NULL)
		form_field(c, &form, "scope", acct->oauth_scope);
	curl_easy_setopt(c, CURLOPT_URL, acct->oauth_token_url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, form.data);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)form.len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)acct->timeout_sec);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	if ((rc = curl_easy_perform(c)) != CURLE_OK) {
		snprintf(err, errlen, "token endpoint: %s", cerr[0] ? cerr : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	root = reply.data != NULL ? json_tokener_parse(reply.data) : NULL;
	if (code >= 500 || root == NULL || !json_object_is_type(root, json_type_object)) {
		snprintf(err, errlen, "token endpoint answered HTTP %ld%s", code,
		    root == NULL ? " without JSON" : "");
		goto out;
	}
	if (code != 200) {
		/* invalid_grant: revoked or expired; invalid_client: the app itself. */
		error = json_object_object_get_ex(root, "error", &v) ? json_object_get_string(v) : "";
		snprintf(err, errlen, "token endpoint refused the grant (HTTP %ld, %.60s)", code,
		    error);
		for (char *p = err; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
				*p = '?';
		ret = code == 400 || code == 401 ? R_FATAL : R_RETRY;
		goto out;
	}
	if (!json_object_object_get_ex(root, "access_token", &v) ||
	    !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0 ||
	    strpbrk(json_object_get_string(v), "\r\n ") != NULL) {
		snprintf(err, errlen, "token endpoint sent no usable access_token");
		goto out;
	}
	*token = xstrdup(json_object_get_string(v));
	if (json_object_object_get_ex(root, "expires_in", &v) && json_object_get_int64(v) > 0)
		expires_in = (long)json_object_get_int64(v);
	*expires = now_wall() + expires_in;
	if (json_object_object_get_ex(root, "refresh_token", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    strcmp(json_object_get_string(v), refresh) != 0) {
		new_refresh = json_object_get_string(v);
		if (strpbrk(new_refresh, "\r\n") == NULL && save_rotated(rotated, new_refresh) == 0)
			log_info("%s: the provider rotated the refresh token; kept in %s",
			    acct->name, rotated);
	}
	ret = R_OK;
out:
	if (c != NULL)
		curl_easy_cleanup(c);
	json_object_put(root);
	if (form.data != NULL)
		explicit_bzero(form.data, form.len);
	buf_free(&form);
	buf_free(&reply);
	wipe(refresh);
	wipe(client_secret);
	free(rotated);
	free(given);
	return ret;
}
