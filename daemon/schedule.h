/* schedule.h — deadlines and reminder times: thresholds before due, overdue repeats, time zone, quiet hours. */
#ifndef IPCASED_SCHEDULE_H
#define IPCASED_SCHEDULE_H

#include <time.h>

#include "conf.h"
#include "store.h"

/*
 * Turns open tasks whose reminder time has come into outbox rows, one per
 * (case, task, threshold), created once, each with its own stable
 * Message-ID.  Runs in its own transaction.  Returns the rows created, -1 on error.
 */
int	schedule_plan(struct store *, const struct conf *, time_t now);

/*
 * Sends the outbox rows that are due (new, or failed and past their back-off)
 * through mailer_send(), recording the server's reply on each row.  Returns
 * the number sent, -1 when the database failed.
 */
int	schedule_send_due(struct store *, const struct conf *, time_t now);

/* When something will next be due (a threshold, a retry); 0 when nothing is pending. */
time_t	schedule_next_wakeup(struct store *, const struct conf *, time_t now);

/*
 * from + days business days in the seller's time zone: Saturdays, Sundays
 * and reminders.holidays do not count; the local time of day is kept.
 * days <= 0 returns from.  For deadlines given as "Nbd".
 */
time_t	schedule_add_business_days(const struct conf *, time_t from, int days);

#endif
