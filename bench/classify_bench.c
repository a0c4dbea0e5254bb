/* classify_bench.c — `make bench`: classification throughput per core, and how many bodies the pre-screen decodes. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "log.h"
#include "mime.h"
#include "rules.h"
#include "util.h"

/*
 * Usage: classify_bench CONF DIR...
 *
 * Every file of each DIR is one message.  Each goes the daemon's way: its
 * header block is parsed alone and pre-screened (rules_prescreen()); only
 * when that says so is the whole message decoded (MIME, charsets, HTML) and
 * classified.  Only that work is timed, in CPU time of this one thread, so
 * the figure is messages per second per core; reading the files is not.
 * Prints one line: messages, prescreened, share (%), cpu_s, msgs_per_s
 * (all messages), decoded_per_s (the pre-screened ones alone: decode and
 * rules), and the kinds found.
 */

static double
cpu_now(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		fatal("clock_gettime");
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The length of the header block, up to and including the empty line. */
static size_t
header_len(const char *raw, size_t len)
{
	size_t	i;

	for (i = 0; i + 1 < len; i++) {
		if (raw[i] != '\n')
			continue;
		if (raw[i + 1] == '\n')
			return i + 2;
		if (raw[i + 1] == '\r' && i + 2 < len && raw[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

int
main(int argc, char *argv[])
{
	struct conf	*conf;
	struct rules	*rules;
	struct message	*h, *m;
	struct verdict	 v = { 0 };
	struct dirent	*de;
	DIR		*d;
	char		*path, *raw;
	size_t		 len, total = 0, screened = 0, kinds[KIND_PHISHING + 1] = { 0 };
	double		 cpu = 0, cpu_full = 0, t0, t1;
	int		 i, k;

	log_init(LOG_TO_STDERR, "classify_bench");
	if (argc < 3) {
		fprintf(stderr, "usage: classify_bench CONF DIR...\n");
		return 2;
	}
	if ((conf = conf_load(argv[1])) == NULL || conf->nerrors > 0 ||
	    (rules = rules_load(conf)) == NULL)
		return 2;
	for (i = 2; i < argc; i++) {
		if ((d = opendir(argv[i])) == NULL) {
			fprintf(stderr, "classify_bench: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			path = xasprintf("%s/%s", argv[i], de->d_name);
			raw = file_read(path, MESSAGE_MAX_BYTES, &len);
			free(path);
			if (raw == NULL)
				continue;
			t0 = cpu_now();
			h = message_parse(raw, header_len(raw, len), true, false);
			if (rules_prescreen(rules, h)) {
				t1 = cpu_now();
				m = message_parse(raw, len, false, false);
				rules_classify(rules, conf, m, &v);
				kinds[v.kind]++;
				verdict_clear(&v);
				message_free(m);
				cpu_full += cpu_now() - t1;
				screened++;
			} else
				kinds[KIND_OTHER]++;
			message_free(h);
			cpu += cpu_now() - t0;
			total++;
			free(raw);
		}
		closedir(d);
	}
	printf("%zu %zu %.1f %.3f %.0f %.0f", total, screened,
	    total > 0 ? 100.0 * (double)screened / (double)total : 0.0, cpu,
	    cpu > 0 ? (double)total / cpu : 0.0,
	    cpu_full > 0 ? (double)screened / cpu_full : 0.0);
	for (k = 0; k <= KIND_PHISHING; k++)
		if (kinds[k] > 0)
			printf(" %s=%zu", kind_name((enum kind)k), kinds[k]);
	printf("\n");
	rules_free(rules);
	conf_free(conf);
	return 0;
}
