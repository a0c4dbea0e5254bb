/*
 * fuzz_header_diff.c — libFuzzer target: any bytes as a header block ->
 * message_parse(headers_only) with mime.c's fast paths and without (GMime
 * alone); every decoded field must be the same.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static bool
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool
same_v(char **a, char **b)
{
	size_t	i;

	for (i = 0; a[i] != NULL && b[i] != NULL; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return a[i] == NULL && b[i] == NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct message	*f, *g;

	mime_set_fast_paths(true);
	f = message_parse((const char *)data, size, true, false);
	mime_set_fast_paths(false);
	g = message_parse((const char *)data, size, true, false);
	mime_set_fast_paths(true);
	if (!same(f->from_addr, g->from_addr) || !same(f->from_name, g->from_name) ||
	    !same(f->reply_to_addr, g->reply_to_addr) || !same(f->return_path, g->return_path) ||
	    !same_v(f->to_addrs, g->to_addrs) || !same(f->subject, g->subject) ||
	    f->date != g->date || !same(f->message_id, g->message_id) ||
	    !same(f->in_reply_to, g->in_reply_to) || !same_v(f->references, g->references) ||
	    !same_v(f->auth_results, g->auth_results) ||
	    !same(f->auto_submitted, g->auto_submitted) || !same(f->precedence, g->precedence) ||
	    f->has_list_id != g->has_list_id || !same(f->content_type, g->content_type) ||
	    !same(f->dedupe_key, g->dedupe_key) || f->flags != g->flags ||
	    f->headers_len != g->headers_len ||
	    memcmp(f->headers, g->headers, f->headers_len) != 0)
		abort();	/* a fast path decoded differently from GMime */
	message_free(f);
	message_free(g);
	return 0;
}
