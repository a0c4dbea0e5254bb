/*
 * fuzz_frame.c — libFuzzer target: what a compromised helper could send the
 * daemon.  The first byte picks the record: a fetcher's message
 * (message_deserialize), the sender's SMTP answer (smtp_result_get) or its
 * token answer (token_reply_get), or the account settings a fetcher reads
 * (frame_get_account).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "frame.h"
#include "message.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader		 r = { data + 1, size > 0 ? size - 1 : 0, false };
	struct send_result	 sr;
	struct token_reply	 tr;
	struct conf_account	 acct;
	struct message		*m;

	if (size == 0)
		return 0;
	switch (data[0] % 4) {
	case 0:
		m = message_deserialize(&r);
		message_free(m);
		break;
	case 1:
		smtp_result_get(&r, &sr);
		break;
	case 2:
		memset(&tr, 0, sizeof(tr));
		token_reply_get(&r, &tr);
		token_reply_clear(&tr);
		break;
	default:
		memset(&acct, 0, sizeof(acct));
		frame_get_account(&r, &acct);
		conf_account_clear(&acct);
		break;
	}
	return 0;
}
