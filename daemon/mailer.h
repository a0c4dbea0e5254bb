/* mailer.h — compose reminder, digest and alert mail (GMime); send it through ipcased-send (smtp.h). */
#ifndef IPCASED_MAILER_H
#define IPCASED_MAILER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf.h"
#include "netreq.h"
#include "smtp.h"

enum reminder_kind {
	REMINDER_TASK,		/* a task's deadline approaches or has passed */
	REMINDER_ALERT,		/* phishing verdict or account-level warning: now */
	REMINDER_DIGEST,	/* all open cases by urgency */
	REMINDER_CONFIRM	/* what a mail command from the seller did (added by commands) */
};

/* One case as a reminder shows it.  All strings borrowed, UTF-8, untrusted (notice text). */
struct mail_case {
	int64_t		  id;			/* case number shown as #12 */
	const char	 *token;		/* per-case secret for reply commands */
	const char	 *kind;			/* "ip_notice", ... */
	const char	 *status;		/* "open", "retracted", ... */
	const char	 *complaint_id;
	const char	 *marketplace;
	const char	 *infringement_type;
	const char *const *asins;		/* NULL-terminated */
	const char	 *rights_owner_name;
	const char	 *rights_owner_email;
	time_t		  opened;
	const char	 *next_task;		/* the most urgent open task, NULL if none */
	time_t		  next_due;
	const char	 *correspondence;	/* "2024-09-12 you -> legal@...: subject" lines; may be NULL */
	const char	 *urgency;		/* "normal" | "high"; NULL = normal (added by mailer: digest order) */
};

struct reminder {
	enum reminder_kind	 kind;
	const struct mail_case	*c;		/* TASK and ALERT: the case */
	const char		*task;		/* TASK: PLAYBOOK.md id */
	time_t			 due;		/* TASK: the deadline */
	const char		*threshold;	/* TASK: "72h", "24h", "overdue" ... */
	const char		*alert_text;	/* ALERT: what happened, one paragraph;
						   CONFIRM: the subject's tail, a newline, then result lines */
	const struct mail_case	*cases;		/* DIGEST: array */
	size_t			 ncases;
	const char		*message_id;	/* stable, without <>: a resend after a crash reuses it */
	const char		*thread_id;	/* the case's first reminder id: In-Reply-To/References; NULL for the first */
	const char		*in_reply_to;	/* CONFIRM: the seller's command mail (without <>): In-Reply-To,
						   and References after thread_id; NULL when it had no id */
	const char		*timezone;	/* the seller's, for dates shown */
	time_t			 now;
};

/*
 * Builds the RFC 5322 message (LF line endings; mailer_send converts):
 * From conf->smtp.from, To the seller addresses (and counsel for `legal`),
 * RFC 2047 subject, text/plain + text/html, Auto-Submitted: auto-generated,
 * X-Ipcased-Kind (task, alert, digest, confirm: our own mail is known when it
 * comes back).  No untrusted byte can end a header.  Returns malloc'd text and its length.
 */
char	*mailer_compose(const struct conf *, const struct reminder *, size_t *len);

/* The subject line alone (UTF-8, one line), as mailer_compose() writes it; malloc'd. */
char	*mailer_subject(const struct reminder *);

/* Recipients of r: the seller's addresses, plus counsel for `legal`; NULL-terminated, borrowed from conf, malloc'd vector. */
const char **mailer_recipients(const struct conf *, const struct reminder *);


/*
 * Sends msg to rcpts over SMTP (smtps, or smtp with STARTTLS required; AUTH;
 * CA file; timeouts) through nr's ipcased-send, which keeps its connection
 * for the next message of the round.  Envelope addresses with controls,
 * spaces or <> are refused before any connection.  Returns R_OK, R_RETRY or
 * R_SKIP (see util.h).
 */
int	mailer_send_via(struct netreq *nr, const struct conf *, const char *const *rcpts,
	    const char *msg, size_t len, struct send_result *out);

#endif
