/* fuzz_message.c — libFuzzer target: any bytes as a mail -> message_parse(), then the fetcher-socket round trip. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct message	*m, *back;
	struct buf	 b = { 0 };
	struct reader	 r;

	m = message_parse((const char *)data, size, false, true);
	message_serialize(m, &b);
	r.p = (const unsigned char *)b.data;
	r.left = b.len;
	r.bad = false;
	back = message_deserialize(&r);
	if (back == NULL || back->raw_len != m->raw_len ||
	    memcmp(back->raw, m->raw, m->raw_len) != 0)
		abort();	/* the round trip must be lossless */
	message_free(back);
	message_free(m);
	buf_free(&b);
	return 0;
}
