/* fuzz_frame.c — libFuzzer target: what a compromised fetcher could send the parent -> message_deserialize(). */
#include <stddef.h>
#include <stdint.h>

#include "message.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader	 r = { data, size, false };
	struct message	*m = message_deserialize(&r);

	message_free(m);
	return 0;
}
