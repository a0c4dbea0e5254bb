/*
 * ipcased.c — the daemon: options, signals, sd_notify, the main loop.
 *
 * One thread, one place that waits (loop.c).  The parent owns the config,
 * the store, the rules, the cases, the schedule and the mailer; each account
 * has a fetcher child (fetcher.c) driven by sync.c.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <systemd/sd-daemon.h>

#include "cases.h"
#include "conf.h"
#include "log.h"
#include "loop.h"
#include "rules.h"
#include "schedule.h"
#include "store.h"
#include "sync.h"
#include "util.h"

#define DEFAULT_CONF		"/etc/ipcased/ipcased.conf"
#define STATUS_EVERY_MS		(60 * 1000)
#define SCHEDULE_EVERY_MS	(60 * 1000)	/* at least this often, also with nothing due */

struct daemon {
	const char	*conf_path;
	bool		 once;
	struct conf	*conf;
	struct rules	*rules;
	struct store	*store;
	struct sync	*sync;
	struct loop	*loop;
	uint64_t	 watchdog_usec;
	int64_t		 watchdog_next;
	int64_t		 schedule_next;
	int64_t		 status_next;
	char		 status_accounts[512];	/* the account states last sent in STATUS= */
	int		 sent_total;
};

/*
 * Under systemd the unit hands the configuration over as a credential
 * (readable by the service's dynamic user only); elsewhere the FHS place.
 */
static const char *
default_conf_path(void)
{
	static char	 path[4096];
	const char	*dir = getenv("CREDENTIALS_DIRECTORY");

	if (dir != NULL && snprintf(path, sizeof(path), "%s/ipcased.conf", dir) <
	    (int)sizeof(path) && access(path, ACCESS_READ) == 0)
		return path;
	return DEFAULT_CONF;
}

/*
 * systemd sets JOURNAL_STREAM to "device:inode" of the stream it connected
 * to stderr; only when stderr still is that stream do priority prefixes make
 * sense (sd-daemon(3)): a child of the service with stderr redirected logs plain.
 */
static bool
stderr_is_journal(void)
{
	const char		*env = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	struct stat		 st;

	if (env == NULL || sscanf(env, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) == -1)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void __attribute__((noreturn))
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: ipcased [-c CONF] [--foreground] [--syslog] [--once] [--check-config] [-v] [--version]\n"
	    "  -c CONF          configuration file (default %s)\n"
	    "  --foreground     log plain lines to stderr (no journald prefixes)\n"
	    "  --syslog         log to syslog (facility daemon) instead of stderr\n"
	    "  --once           sync every account once, send due reminders, exit\n"
	    "  --check-config   validate the configuration and exit (2 on errors)\n"
	    "  -v               verbose (debug) logging\n", DEFAULT_CONF);
	exit(code);
}

/*
 * Loads and validates conf and rules together; on any error prints
 * "N errors; nothing started." style summaries (outcome says what happens
 * instead of "nothing started") and returns -1.  Secrets are checked as well
 * when check_secrets (--check-config, start-up, reload).
 */
static int
load_config(const char *path, bool check_secrets, const char *outcome, struct conf **confp,
    struct rules **rulesp)
{
	struct conf	*conf;
	struct rules	*rules = NULL;
	char		 err[512], *secret;

	*confp = NULL;
	*rulesp = NULL;
	if ((conf = conf_load(path)) == NULL)
		return -1;
	rules = rules_load(conf);
	if (check_secrets && conf->nerrors == 0) {
		for (size_t i = 0; i < conf->naccounts; i++) {
			const struct conf_account *a = &conf->accounts[i];
			const char *file = a->auth == AUTH_XOAUTH2 ?
			    a->oauth_refresh_token_file : a->password_file;

			if (a->password != NULL || file == NULL)
				continue;
			if (secret_read(file, conf->dir, &secret, err, sizeof(err)) == -1) {
				fprintf(stderr, "%s%s:%d: accounts[%zu]: %s\n", log_error_prefix(),
				    conf->path, a->line, i, err);
				conf->nerrors++;
				continue;
			}
			explicit_bzero(secret, strlen(secret));
			free(secret);
		}
		if (conf->smtp.password == NULL && conf->smtp.password_file != NULL) {
			if (secret_read(conf->smtp.password_file, conf->dir, &secret, err,
			    sizeof(err)) == -1) {
				fprintf(stderr, "%s%s: smtp: %s\n", log_error_prefix(), conf->path, err);
				conf->nerrors++;
			} else {
				explicit_bzero(secret, strlen(secret));
				free(secret);
			}
		}
	}
	if (conf->nerrors > 0 || rules == NULL) {
		fprintf(stderr, "%s%d error%s; %s.\n", log_error_prefix(), conf->nerrors ? conf->nerrors : 1,
		    conf->nerrors == 1 ? "" : "s", outcome);
		rules_free(rules);
		conf_free(conf);
		return -1;
	}
	*confp = conf;
	*rulesp = rules;
	return 0;
}

static void
notify_status(struct daemon *d)
{
	char	accounts[512], due[64] = "none";
	int	open_cases = 0;
	time_t	next_due = 0;

	sync_status(d->sync, accounts, sizeof(accounts));
	snprintf(d->status_accounts, sizeof(d->status_accounts), "%s", accounts);
	if (cases_summary(d->store, &open_cases, &next_due) == 0 && next_due != 0) {
		long	left = (long)(next_due - now_wall());
		char	span[32];

		if (left < 0)
			snprintf(due, sizeof(due), "overdue by %s",
			    duration_format(-left, span, sizeof(span)));
		else
			snprintf(due, sizeof(due), "in %s", duration_format(left, span, sizeof(span)));
	}
	sd_notifyf(0, "STATUS=%zu account%s (%s), %d open case%s, next deadline %s",
	    d->conf->naccounts, d->conf->naccounts == 1 ? "" : "s", accounts, open_cases,
	    open_cases == 1 ? "" : "s", due);
}

/*
 * Plans reminders and sends the due ones.  After new case mail (changed)
 * the round will most likely send: its sender starts first, so that its
 * start-up overlaps the planning (after a first scan, a thousand rows).
 */
static void
run_schedule(struct daemon *d, bool changed)
{
	struct netreq	nr = NETREQ_INIT;
	int		planned, sent;

	if (changed)
		netreq_start(&nr);
	planned = schedule_plan(d->store, d->conf, now_wall());
	sent = schedule_send_due(d->store, d->conf, now_wall(), &nr);
	netreq_end(&nr);
	if (planned > 0 || sent > 0)
		log_info("reminders: %d new, %d sent", planned > 0 ? planned : 0, sent > 0 ? sent : 0);
	if (sent > 0)
		d->sent_total += sent;
}

/* SIGHUP: a new configuration replaces the running one only when valid. */
static void
reload(struct daemon *d)
{
	struct conf	*conf;
	struct rules	*rules;
	struct store	*store = d->store;
	char		 err[256];

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)now_mono_ms() * 1000ULL);
	log_info("reloading %s", d->conf_path);
	if (load_config(d->conf_path, true, "the running configuration stays in force", &conf,
	    &rules) == -1) {
		log_warnx("reload refused: the configuration has errors (above); "
		    "the running one stays in force");
		sd_notify(0, "READY=1");
		return;
	}
	if (strcmp(conf->state_path, d->conf->state_path) != 0) {
		if ((store = store_open(conf->state_path, false, err, sizeof(err))) == NULL) {
			log_warnx("reload refused: %s", err);
			rules_free(rules);
			conf_free(conf);
			sd_notify(0, "READY=1");
			return;
		}
	}
	sync_free(d->sync);
	if (store != d->store)
		store_close(d->store);
	rules_free(d->rules);
	conf_free(d->conf);
	d->conf = conf;
	d->rules = rules;
	d->store = store;
	d->sync = sync_new(d->conf, d->rules, d->store, d->once);
	d->schedule_next = 0;
	log_info("configuration reloaded: %zu account%s", conf->naccounts,
	    conf->naccounts == 1 ? "" : "s");
	sd_notify(0, "READY=1");
}

static int
next_timeout(struct daemon *d, int sync_ms, int64_t now)
{
	int64_t	t = sync_ms < 0 ? INT32_MAX : sync_ms;

	if (!d->once) {
		if (d->schedule_next - now < t)
			t = d->schedule_next - now;
		if (d->status_next - now < t)
			t = d->status_next - now;
	}
	if (d->watchdog_usec > 0 && d->watchdog_next - now < t)
		t = d->watchdog_next - now;
	return t < 0 ? 0 : (int)t;
}

static void
plan_schedule_wakeup(struct daemon *d, int64_t now)
{
	time_t	wake = schedule_next_wakeup(d->store, d->conf, now_wall());
	int64_t	in_ms = SCHEDULE_EVERY_MS;

	if (wake != 0 && (wake - now_wall()) * 1000 < in_ms)
		in_ms = (wake - now_wall()) * 1000;
	d->schedule_next = now + (in_ms < 0 ? 0 : in_ms);
}

/*
 * systemctl status shows the last STATUS=: send a new one when an account
 * changes state or cases may have changed, not only once a minute, or it
 * says "connecting, 0 open cases" for a minute after the first sync.
 */
static bool
status_stale(struct daemon *d, int64_t now)
{
	char	accounts[512];

	if (now >= d->status_next)
		return true;
	sync_status(d->sync, accounts, sizeof(accounts));
	return strcmp(accounts, d->status_accounts) != 0;
}

static int
main_loop(struct daemon *d)
{
	struct pollfd	pfd[64];
	unsigned	sigs;
	int64_t		now;
	int		n, sync_ms;
	bool		changed;

	for (;;) {
		now = now_mono_ms();
		/* Only a loop that turns pings the watchdog: a hang must starve it. */
		if (d->watchdog_usec > 0 && now >= d->watchdog_next) {
			sd_notify(0, "WATCHDOG=1");
			d->watchdog_next = now + (int64_t)(d->watchdog_usec / 2000);
		}
		sync_ms = sync_step(d->sync, now);
		if (d->once && sync_finished(d->sync))
			break;
		/* Never inside a batch's transaction: the schedule writes the store too. */
		if (!d->once && !sync_busy(d->sync) &&
		    ((changed = sync_take_changes(d->sync)) || now >= d->schedule_next)) {
			run_schedule(d, changed);
			plan_schedule_wakeup(d, now_mono_ms());
			d->status_next = now;	/* cases or reminders may have changed */
		}
		if (!d->once && status_stale(d, now)) {
			notify_status(d);
			d->status_next = now + STATUS_EVERY_MS;
		}
		n = sync_pollfds(d->sync, pfd, (int)NELEM(pfd));
		if (loop_wait(d->loop, pfd, n, next_timeout(d, sync_ms, now_mono_ms()), &sigs) > 0)
			sync_handle(d->sync, pfd, n);
		if (sigs & LOOP_SIG_TERM) {
			log_info("stopping");
			sd_notify(0, "STOPPING=1");
			break;
		}
		if (sigs & LOOP_SIG_HUP)
			reload(d);
		if (sigs & LOOP_SIG_USR1) {
			int	open_cases = 0;
			time_t	next_due = 0;

			sync_log_status(d->sync);
			if (cases_summary(d->store, &open_cases, &next_due) == 0)
				log_info("%d open case%s, %d reminder%s sent since start", open_cases,
				    open_cases == 1 ? "" : "s", d->sent_total,
				    d->sent_total == 1 ? "" : "s");
		}
		if (sigs & LOOP_SIG_USR2)
			sync_wake(d->sync);
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "foreground",   no_argument,       NULL, 'f' },
		{ "syslog",       no_argument,       NULL, 's' },
		{ "once",         no_argument,       NULL, 'o' },
		{ "check-config", no_argument,       NULL, 'n' },
		{ "version",      no_argument,       NULL, 'V' },
		{ "help",         no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct daemon	 d = { .conf_path = DEFAULT_CONF };
	bool		 foreground = false, check_only = false, conf_given = false;
	bool		 use_syslog = false;
	char		 err[256];
	int		 ch, verbose = 0, ret = 0;

	while ((ch = getopt_long(argc, argv, "c:fsnvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d.conf_path = optarg;
			conf_given = true;
			break;
		case 'f':
			foreground = true;
			break;
		case 's':
			use_syslog = true;
			break;
		case 'o':
			d.once = true;
			break;
		case 'n':
			check_only = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("ipcased %s\n", VERSION);
			return 0;
		case 'h':
			usage(0);
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (!conf_given)
		d.conf_path = default_conf_path();

	/* libetpan writes LOGOUT to dead sockets: a SIGPIPE must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	log_init(use_syslog ? LOG_TO_SYSLOG : !foreground && stderr_is_journal() ?
	    LOG_TO_JOURNAL : LOG_TO_STDERR, "ipcased");
	log_set_verbose(verbose);

	if (load_config(d.conf_path, true, "nothing started", &d.conf, &d.rules) == -1)
		return 2;
	if (check_only) {
		printf("%s: configuration OK (%zu account%s)\n", d.conf_path, d.conf->naccounts,
		    d.conf->naccounts == 1 ? "" : "s");
		rules_free(d.rules);
		conf_free(d.conf);
		return 0;
	}
	if ((d.store = store_open(d.conf->state_path, false, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		ret = 1;
		goto out;
	}
	if ((d.loop = loop_new()) == NULL) {
		ret = 1;
		goto out;
	}
	if (sd_watchdog_enabled(0, &d.watchdog_usec) <= 0)
		d.watchdog_usec = 0;
	d.sync = sync_new(d.conf, d.rules, d.store, d.once);
	/* Ready once the config is valid and the store migrated: not after a login (the network may be down). */
	sd_notify(0, "READY=1");
	log_info("started: %zu account%s, state %s", d.conf->naccounts,
	    d.conf->naccounts == 1 ? "" : "s", d.conf->state_path);

	main_loop(&d);

	if (d.once) {
		struct rusage	ru;

		run_schedule(&d, sync_take_changes(d.sync));
		if (sync_failed(d.sync) > 0)
			ret = 1;
		if (getrusage(RUSAGE_SELF, &ru) == 0)
			log_info("done: peak RSS %ld KiB, private %ld KiB", ru.ru_maxrss,
			    proc_rss_anon_kib());
	}
out:
	sync_free(d.sync);
	loop_free(d.loop);
	store_close(d.store);
	rules_free(d.rules);
	conf_free(d.conf);
	return ret;
}
