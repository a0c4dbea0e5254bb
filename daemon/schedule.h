/* schedule.h — deadlines and reminder times: thresholds before due, overdue repeats, time zone, quiet hours. */
#ifndef IPCASED_SCHEDULE_H
#define IPCASED_SCHEDULE_H

#include <time.h>

#include "conf.h"
#include "netreq.h"
#include "store.h"

/*
 * Turns open tasks whose reminder time has come into outbox rows, one per
 * (case, task, threshold), created once, each with its own stable
 * Message-ID.  Runs in its own transaction.  Returns the rows created, -1 on error.
 */
int	schedule_plan(struct store *, const struct conf *, time_t now);

/*
 * Sends the outbox rows that are due (new, or failed and past their back-off)
 * through mailer_send_via(), recording the server's reply on each row: all
 * through nr's sender (started when needed; the caller ends it with
 * netreq_end()), or, nr NULL, through one of its own for the round.  Returns
 * the number sent, -1 when the database failed.
 */
int	schedule_send_due(struct store *, const struct conf *, time_t now, struct netreq *nr);

/*
 * Queues an alert about the daemon itself (no case), e.g. key
 * "oauth-refused:shop": one outbox row per key however often the condition
 * is met again, sent by schedule_send_due like any alert.  Uses the open
 * transaction if there is one, else its own.  Returns 1 when queued, 0 when
 * the key already has a row, -1 on a database error (logged).
 */
int	schedule_alert(struct store *, const struct conf *, const char *key, const char *text,
	    time_t now);

/*
 * The condition of key is over (the grant works again): its alert row is
 * kept, renamed "key@<created>", so that the next occurrence alerts again.
 * Returns the rows renamed, -1 on a database error (logged).
 */
int	schedule_alert_rearm(struct store *, const char *key);

/* When something will next be due (a threshold, a retry); 0 when nothing is pending. */
time_t	schedule_next_wakeup(struct store *, const struct conf *, time_t now);

/*
 * from + days business days in the seller's time zone: Saturdays, Sundays
 * and reminders.holidays do not count; the local time of day is kept.
 * days <= 0 returns from.  For deadlines given as "Nbd".
 */
time_t	schedule_add_business_days(const struct conf *, time_t from, int days);

#endif
