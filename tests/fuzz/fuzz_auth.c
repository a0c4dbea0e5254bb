/*
 * fuzz_auth.c — libFuzzer target: Authentication-Results parsing.  The
 * input's lines are the From address, the Reply-To and then A-R values.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "message.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char		*amazon[] = { "amazon.com", "amazon.de", "amazon.co.jp", NULL };
	static char		*trusted[] = { "mx.seller-mail.example", NULL };
	struct message		 m;
	struct auth_verdict	 v;
	char			*text = xstrndup((const char *)data, size), *line, *save = NULL;
	char			*lines[66] = { 0 };
	size_t			 n = 0;

	for (line = strtok_r(text, "\n", &save); line != NULL && n < 64;
	    line = strtok_r(NULL, "\n", &save))
		lines[n++] = line;
	memset(&m, 0, sizeof(m));
	m.from_addr = n > 0 ? lines[0] : NULL;
	m.reply_to_addr = n > 1 ? lines[1] : NULL;
	m.auth_results = n > 2 ? lines + 2 : lines + n;
	m.to_addrs = lines + n;
	m.references = lines + n;
	auth_check(&m, amazon, trusted, &v);
	if (v.authentic && !(v.amazon_from && v.dmarc_pass && v.dkim_aligned))
		abort();	/* authentic must never be granted without all three */
	auth_check(&m, amazon, lines + n, &v);
	free(text);
	return 0;
}
