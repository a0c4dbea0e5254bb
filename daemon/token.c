/*
 * token.c — the refresh-token grant (RFC 6749 §6) that Gmail and Microsoft
 * 365 require for IMAP with XOAUTH2.  The HTTPS exchange and the parsing of
 * the provider's JSON happen here, in ipcased-send; the daemon (oauth.c)
 * keeps the files and the cache.
 */
#include "token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "log.h"

#define TOKEN_MAX_REPLY		(64 * 1024)
#define TOKEN_CONNECT_TIMEOUT	15L

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	struct buf	*b = arg;

	if (b->len + size * n > TOKEN_MAX_REPLY)
		return 0;	/* a token reply is small: refuse a flood */
	buf_append(b, p, size * n);
	return size * n;
}

static void
form_field(CURL *c, struct buf *form, const char *name, const char *value)
{
	char	*esc = curl_easy_escape(c, value, 0);

	if (esc == NULL)
		fatalx("curl_easy_escape");
	buf_printf(form, "%s%s=%s", form->len ? "&" : "", name, esc);
	curl_free(esc);
}

void
token_request(const struct token_job *job, struct token_reply *out)
{
	struct buf		 form = { 0 }, reply = { 0 };
	struct json_object	*root = NULL, *v;
	char			 cerr[CURL_ERROR_SIZE] = "";
	const char		*error;
	long			 code = 0;
	CURLcode		 rc;
	CURL			*c;

	out->result = R_RETRY;
	out->expires_in = 3600;
	if ((c = curl_easy_init()) == NULL)
		fatalx("curl_easy_init");
	form_field(c, &form, "grant_type", "refresh_token");
	form_field(c, &form, "refresh_token", job->refresh_token);
	form_field(c, &form, "client_id", job->client_id);
	if (job->client_secret != NULL)
		form_field(c, &form, "client_secret", job->client_secret);
	if (job->scope != NULL)
		form_field(c, &form, "scope", job->scope);
	curl_easy_setopt(c, CURLOPT_URL, job->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, form.data);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)form.len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, TOKEN_CONNECT_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, job->timeout_sec);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	if ((rc = curl_easy_perform(c)) != CURLE_OK) {
		/* curl's text is at most CURL_ERROR_SIZE (256): cut to fit the answer. */
		snprintf(out->err, sizeof(out->err), "token endpoint: %.200s",
		    cerr[0] ? cerr : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	root = reply.data != NULL ? json_tokener_parse(reply.data) : NULL;
	if (code >= 500 || root == NULL || !json_object_is_type(root, json_type_object)) {
		snprintf(out->err, sizeof(out->err), "token endpoint answered HTTP %ld%s", code,
		    root == NULL ? " without JSON" : "");
		goto out;
	}
	if (code != 200) {
		/* invalid_grant: revoked or expired; invalid_client: the app itself. */
		error = json_object_object_get_ex(root, "error", &v) ? json_object_get_string(v) : "";
		snprintf(out->err, sizeof(out->err),
		    "token endpoint refused the grant (HTTP %ld, %.60s)", code, error);
		out->result = code == 400 || code == 401 ? R_FATAL : R_RETRY;
		goto out;
	}
	if (!json_object_object_get_ex(root, "access_token", &v) ||
	    !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0 ||
	    strpbrk(json_object_get_string(v), "\r\n ") != NULL) {
		snprintf(out->err, sizeof(out->err), "token endpoint sent no usable access_token");
		goto out;
	}
	out->access_token = xstrdup(json_object_get_string(v));
	if (json_object_object_get_ex(root, "expires_in", &v) && json_object_get_int64(v) > 0)
		out->expires_in = (long)json_object_get_int64(v);
	if (json_object_object_get_ex(root, "refresh_token", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    strcmp(json_object_get_string(v), job->refresh_token) != 0 &&
	    strpbrk(json_object_get_string(v), "\r\n") == NULL)
		out->new_refresh_token = xstrdup(json_object_get_string(v));
	out->result = R_OK;
out:
	/* The provider's words go into our log and mail: printable bytes only. */
	for (char *p = out->err; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
	curl_easy_cleanup(c);
	json_object_put(root);
	if (form.data != NULL)
		explicit_bzero(form.data, form.len);
	buf_free(&form);
	if (reply.data != NULL)
		explicit_bzero(reply.data, reply.len);
	buf_free(&reply);
}
