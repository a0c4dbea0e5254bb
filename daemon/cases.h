/* cases.h — the case model: open or merge cases, playbook tasks, correspondence linking, evidence. */
#ifndef IPCASED_CASES_H
#define IPCASED_CASES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "conf.h"
#include "message.h"
#include "rules.h"
#include "store.h"
#include "util.h"

/* Where a message was found. */
struct msg_origin {
	const char	*account;
	const char	*folder;
	uint32_t	 uidvalidity;
	uint32_t	 uid;
	bool		 sent;		/* the seller's Sent folder: the seller wrote it */
};

/* What cases_ingest() did, for the log and the tests. */
struct ingest_report {
	int64_t		 case_id;	/* the case opened or touched; 0 for none */
	bool		 opened;	/* a new case */
	bool		 duplicate;	/* the same message was already recorded (another folder, a rescan) */
	bool		 alert;		/* phishing or account-level: alert the seller now */
	char		 what[120];	/* "opened case 3 (ip_notice 12904418236)", "linked to case 3", "ignored" */
};

/*
 * Records one fetched message and its verdict, inside the caller's
 * transaction: opens or merges the case, creates playbook tasks with due
 * times from conf, links correspondence, keeps the raw bytes as evidence.
 * A message already recorded (same dedupe key) changes nothing.  Returns R_OK,
 * or R_RETRY on a database error (the caller rolls back and retries later).
 */
enum result	 cases_ingest(struct store *, const struct conf *, const struct msg_origin *,
		    const struct message *, const struct verdict *, time_t now, struct ingest_report *out);

/*
 * Header-only: does this message belong to something the store knows (a
 * case thread, a rights owner, a complaint id)?  For many messages in a
 * row the index is brought up to date once (cases_candidates(), NULL on a
 * database error, which every message then passes), valid until the store
 * is next written.
 */
struct cand_index;
const struct cand_index *cases_candidates(struct store *);
bool		 cases_candidate_match(const struct cand_index *, const struct message *headers);

/* The seller's commands (ipcase).  case_ref is a case number.  0, or -1 with a message printed to stderr. */
int		 cases_print_list(struct store *, bool all, bool json, FILE *);
int		 cases_print_show(struct store *, const char *case_ref, bool json, FILE *);
int		 cases_task_done(struct store *, const char *case_ref, const char *task, time_t now);
int		 cases_snooze(struct store *, const char *case_ref, long seconds, time_t now);
int		 cases_close(struct store *, const char *case_ref, const char *reason, time_t now);
int		 cases_note(struct store *, const char *case_ref, const char *text, time_t now);
int		 cases_export(struct store *, const char *case_ref, const char *dir);

/* Counts for status lines: open cases and the next due time (0 when none). */
int		 cases_summary(struct store *, int *open_cases, time_t *next_due);

#endif
