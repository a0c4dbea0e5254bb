/* fuzz_conf.c — libFuzzer target: any bytes as a config file -> conf_load() and rules_load(). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf.h"
#include "rules.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char	 path[64];
	struct conf	*c;
	struct rules	*r;
	FILE		*f;

	/* Run with -close_fd_mask=2 (run.sh does): every input prints config errors. */
	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/tmp/ipcased-fuzz-conf.%d", (int)getpid());
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
	if ((c = conf_load(path)) != NULL) {
		r = rules_load(c);
		rules_free(r);
		conf_free(c);
	}
	unlink(path);
	return 0;
}
