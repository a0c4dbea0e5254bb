/*
 * ipcase.c — the command-line tool for the seller and the admin: list and
 * show cases, mark tasks done, snooze, close, note, export the evidence, and
 * classify mail files without a store.  Reads the store read-only except for
 * the commands that change a case.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "classify.h"
#include "conf.h"
#include "log.h"
#include "rules.h"
#include "store.h"
#include "util.h"

#ifndef VERSION
#define VERSION		"0.1.0"
#endif

#define DEFAULT_CONF	"/etc/ipcased/ipcased.conf"

#define EXIT_RUNTIME	1
#define EXIT_USAGE	2

static const char usage_text[] =
    "usage: ipcase [-c CONF] list [--all] [--json]\n"
    "       ipcase [-c CONF] show CASE [--json]\n"
    "       ipcase [-c CONF] done CASE TASK\n"
    "       ipcase [-c CONF] snooze CASE DURATION\n"
    "       ipcase [-c CONF] close CASE REASON\n"
    "       ipcase [-c CONF] note CASE TEXT\n"
    "       ipcase [-c CONF] export CASE DIR\n"
    "       ipcase [-c CONF] classify FILE.eml...\n"
    "       ipcase --help | --version\n";

static void __attribute__((noreturn))
usage(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "ipcase: %s\n", why);
	fputs(usage_text, stderr);
	exit(EXIT_USAGE);
}

static void
help(void)
{
	fputs(usage_text, stdout);
	fputs("\n"
	    "  -c CONF     configuration file (default " DEFAULT_CONF ")\n"
	    "  list        open cases (--all: every case) as a table or JSON\n"
	    "  show        one case: fields, tasks, messages, history\n"
	    "  done        mark a task of a case done (e.g. done 3 review)\n"
	    "  snooze      no reminders for a case for DURATION (90m, 24h, 3d, 2w)\n"
	    "  close       end a case with a reason; open tasks are cancelled\n"
	    "  note        add a note to a case\n"
	    "  export      write every mail (.eml), timeline.md, timeline.json\n"
	    "              and SHA256SUMS into DIR (never overwrites)\n"
	    "  classify    print how each mail file is classified (JSON lines);\n"
	    "              without -c and " DEFAULT_CONF ", on the built-in rules\n"
	    "\nExit status: 0 ok, 1 runtime failure, 2 usage or configuration error.\n",
	    stdout);
}

static struct conf *
load_conf(const char *path)
{
	struct conf	*conf = conf_load(path);

	if (conf == NULL)
		exit(EXIT_USAGE);
	if (conf->nerrors > 0) {
		fprintf(stderr, "%d error%s in %s\n", conf->nerrors,
		    conf->nerrors == 1 ? "" : "s", path);
		conf_free(conf);
		exit(EXIT_USAGE);
	}
	return conf;
}

static struct store *
open_store(const struct conf *conf, bool readonly)
{
	struct store	*s;
	char		 err[512];

	if ((s = store_open(conf->state_path, readonly, err, sizeof(err))) == NULL)
		fprintf(stderr, "ipcase: %s\n", err);
	return s;
}

static int
cmd_classify(struct conf *conf, bool builtin, char **files, int nfiles)
{
	struct rules	*rules;
	int		 failures;

	rules = builtin ? rules_load_default(conf) : rules_load(conf);
	if (rules == NULL) {
		fprintf(stderr, "ipcase: the rules in %s have errors\n", conf->path);
		return EXIT_USAGE;
	}
	failures = classify_files(rules, conf, files, nfiles, stdout);
	rules_free(rules);
	if (fflush(stdout) == EOF)
		return EXIT_RUNTIME;
	return failures > 0 ? EXIT_RUNTIME : 0;
}

/* list [--all] [--json] in any order. */
static int
cmd_list(struct store *s, char **args, int nargs)
{
	bool	all = false, json = false;
	int	i;

	for (i = 0; i < nargs; i++) {
		if (strcmp(args[i], "--all") == 0)
			all = true;
		else if (strcmp(args[i], "--json") == 0)
			json = true;
		else
			usage("list: unknown option");
	}
	return cases_print_list(s, all, json, stdout) == 0 ? 0 : EXIT_RUNTIME;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ "config",	required_argument,	NULL, 'c' },
		{ NULL,		0,			NULL, 0 }
	};
	const char	*conf_path = DEFAULT_CONF, *cmd;
	struct conf	*conf;
	struct store	*s = NULL;
	char		**args;
	bool		 readonly, json = false, conf_given = false, builtin;
	long		 seconds;
	int		 ch, nargs, ret = EXIT_RUNTIME;

	log_init(LOG_TO_STDERR, "ipcase");
	/* "+": options stop at the command, so "note 3 -x" keeps its text. */
	while ((ch = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			conf_given = true;
			break;
		case 'h':
			help();
			return 0;
		case 'V':
			printf("ipcase %s\n", VERSION);
			return 0;
		default:
			usage(NULL);
		}
	}
	if (optind >= argc)
		usage("no command given");
	cmd = argv[optind];
	args = argv + optind + 1;
	nargs = argc - optind - 1;

	/* Check the command line before touching the configuration. */
	if (strcmp(cmd, "list") == 0)
		readonly = true;
	else if (strcmp(cmd, "show") == 0) {
		if (nargs == 2 && strcmp(args[1], "--json") == 0)
			json = true;
		else if (nargs == 2 && strcmp(args[0], "--json") == 0) {
			json = true;
			args++;
		} else if (nargs != 1)
			usage("show needs a case number");
		readonly = true;
	} else if (strcmp(cmd, "export") == 0) {
		if (nargs != 2)
			usage("export needs a case number and a directory");
		readonly = true;
	} else if (strcmp(cmd, "done") == 0 || strcmp(cmd, "close") == 0 ||
	    strcmp(cmd, "note") == 0 || strcmp(cmd, "snooze") == 0) {
		if (nargs != 2)
			usage("this command needs a case number and one more argument");
		readonly = false;
	} else if (strcmp(cmd, "classify") == 0) {
		if (nargs < 1)
			usage("classify needs at least one file");
		readonly = true;
	} else
		usage("unknown command");
	seconds = 0;
	if (strcmp(cmd, "snooze") == 0 && (seconds = duration_parse(args[1])) <= 0)
		usage("snooze: bad duration (write e.g. 90m, 24h, 3d or 2w)");

	/*
	 * classify needs only the rules: with no -c and no default config
	 * installed, it runs on the built-in defaults.
	 */
	builtin = strcmp(cmd, "classify") == 0 && !conf_given &&
	    access(DEFAULT_CONF, F_OK) != 0;
	conf = builtin ? conf_builtin() : load_conf(conf_path);
	if (strcmp(cmd, "classify") == 0) {
		ret = cmd_classify(conf, builtin, args, nargs);
		goto out;
	}
	if ((s = open_store(conf, readonly)) == NULL)
		goto out;
	if (strcmp(cmd, "list") == 0)
		ret = cmd_list(s, args, nargs);
	else if (strcmp(cmd, "show") == 0)
		ret = cases_print_show(s, args[0], json, stdout) == 0 ? 0 : EXIT_RUNTIME;
	else if (strcmp(cmd, "export") == 0) {
		ret = cases_export(s, args[0], args[1]) == 0 ? 0 : EXIT_RUNTIME;
		if (ret == 0)
			printf("exported case %s to %s (check: cd %s && sha256sum -c SHA256SUMS)\n",
			    args[0], args[1], args[1]);
	} else if (strcmp(cmd, "done") == 0)
		ret = cases_task_done(s, args[0], args[1], now_wall()) == 0 ? 0 : EXIT_RUNTIME;
	else if (strcmp(cmd, "snooze") == 0)
		ret = cases_snooze(s, args[0], seconds, now_wall()) == 0 ? 0 : EXIT_RUNTIME;
	else if (strcmp(cmd, "close") == 0)
		ret = cases_close(s, args[0], args[1], now_wall()) == 0 ? 0 : EXIT_RUNTIME;
	else if (strcmp(cmd, "note") == 0)
		ret = cases_note(s, args[0], args[1], now_wall()) == 0 ? 0 : EXIT_RUNTIME;
	if (ret == 0 && fflush(stdout) == EOF)
		ret = EXIT_RUNTIME;
out:
	store_close(s);
	conf_free(conf);
	return ret;
}
