/*
 * fuzz_rules.c — libFuzzer target: any bytes as a mail -> the shipped rules
 * (classification and field extraction) with the shipped config.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "mime.h"
#include "rules.h"
#include "util.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct conf	*conf;
static struct rules	*rules;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*path = getenv("IPCASED_FUZZ_CONF");

	(void)argc;
	(void)argv;
	if (path == NULL)
		path = "tests/fuzz/fuzz.conf";
	if ((conf = conf_load(path)) == NULL || conf->nerrors > 0 ||
	    (rules = rules_load(conf)) == NULL) {
		fprintf(stderr, "fuzz_rules: %s does not load\n", path);
		abort();
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct message	*m = message_parse((const char *)data, size, false, false);
	struct verdict	 v;

	memset(&v, 0, sizeof(v));
	(void)rules_prescreen(rules, m);
	rules_classify(rules, conf, m, &v);
	for (char **a = v.asins; *a != NULL; a++)
		if (strlen(*a) != 10)
			abort();	/* only ASIN-shaped tokens become ASINs */
	verdict_clear(&v);
	message_free(m);
	return 0;
}
