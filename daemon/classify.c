/* classify.c — `ipcase classify`: one JSON object per mail file, no store needed. */
#include "classify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "mime.h"
#include "util.h"

/* A JSON string, or null; text that is not UTF-8 is repaired first, so the line stays valid JSON. */
static struct json_object *
json_text(const char *s)
{
	struct json_object	*o;
	char			*clean;

	if (s == NULL)
		return NULL;
	if (utf8_valid(s, strlen(s)))
		return json_object_new_string(s);
	clean = utf8_sanitize(s, strlen(s));
	o = json_object_new_string(clean);
	free(clean);
	return o;
}

static struct json_object *
json_strv(char *const *v)
{
	struct json_object	*a = json_object_new_array();

	for (; v != NULL && *v != NULL; v++)
		json_object_array_add(a, json_text(*v));
	return a;
}

static void
print_object(struct json_object *o, FILE *out)
{
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE), out);
	fputc('\n', out);
}

static void
print_verdict(const char *file, const struct verdict *v, FILE *out)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "file", json_text(file));
	json_object_object_add(o, "kind", json_object_new_string(kind_name(v->kind)));
	json_object_object_add(o, "complaint_id", json_text(v->complaint_id));
	json_object_object_add(o, "complaint_ids", json_strv(v->complaint_ids));
	json_object_object_add(o, "asins", json_strv(v->asins));
	json_object_object_add(o, "infringement_type", json_text(v->infringement_type));
	json_object_object_add(o, "rights_owner_name", json_text(v->rights_owner_name));
	json_object_object_add(o, "rights_owner_email", json_text(v->rights_owner_email));
	json_object_object_add(o, "marketplace", json_text(v->marketplace));
	json_object_object_add(o, "deadline_days", v->deadline_days >= 0 ?
	    json_object_new_int(v->deadline_days) : NULL);
	/* Unknown, not false, where the account has no Authentication-Results to judge by. */
	json_object_object_add(o, "authentic", v->unverified ? NULL :
	    json_object_new_boolean(v->authentic));
	json_object_object_add(o, "unverified", json_object_new_boolean(v->unverified));
	json_object_object_add(o, "rule", json_text(v->rule));
	json_object_object_add(o, "auth_reason", json_text(v->auth_reason));
	json_object_object_add(o, "reasons", json_strv(v->reasons));
	json_object_object_add(o, "lawsuit", json_object_new_boolean(v->lawsuit));
	json_object_object_add(o, "outcome", json_text(v->outcome));
	print_object(o, out);
	json_object_put(o);
}

static void
print_error(const char *file, const char *error, FILE *out)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "file", json_text(file));
	json_object_object_add(o, "error", json_text(error));
	print_object(o, out);
	json_object_put(o);
}

int
classify_files(const struct rules *rules, const struct conf *conf, char *const *files,
    int nfiles, FILE *out)
{
	struct verdict	 v = { 0 };
	struct message	*m;
	char		*raw;
	size_t		 len;
	int		 i, failures = 0;

	for (i = 0; i < nfiles; i++) {
		if ((raw = file_read(files[i], MESSAGE_MAX_BYTES, &len)) == NULL) {
			print_error(files[i], strerror(errno), out);
			failures++;
			continue;
		}
		m = message_parse(raw, len, false, false);
		free(raw);
		rules_classify(rules, conf, m, &v);
		print_verdict(files[i], &v, out);
		verdict_clear(&v);
		message_free(m);
	}
	fflush(out);
	return failures;
}
