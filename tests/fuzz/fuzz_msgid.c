/* fuzz_msgid.c — libFuzzer target: Message-ID / References values -> msgid_normalize(), msgid_parse_list(). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "msgid.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*s = xstrndup((const char *)data, size), *id, **refs;

	id = msgid_normalize(s);
	/* A normalised id is a fixed point: normalising it again changes nothing. */
	if (id != NULL) {
		char	*again = msgid_normalize(id);

		if (again == NULL || strcmp(again, id) != 0)
			abort();
		free(again);
	}
	refs = msgid_parse_list(s);
	if (strv_len(refs) > MSGID_MAX_REFS)
		abort();
	strv_free(refs);
	free(id);
	free(s);
	return 0;
}
