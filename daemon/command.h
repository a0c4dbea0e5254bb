/* command.h — mail commands: the lines of the seller's reply to a reminder ("done appeal", "snooze 2d") read into commands. */
#ifndef IPCASED_COMMAND_H
#define IPCASED_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

#define COMMAND_MAX		10		/* commands obeyed from one mail */
#define COMMAND_TEXT_MAX	500		/* bytes of a note or a close reason kept */
#define COMMAND_LINES_MAX	200		/* lines of the reply's own text read */
#define COMMAND_LINE_MAX	4000		/* a longer line is prose, never a command */
#define COMMAND_TASK_MAX	40		/* bytes of a task id */
#define COMMAND_TOKEN_LEN	16		/* hex digits of a case's token (cases.token) */
#define COMMAND_SNOOZE_MIN	60L
#define COMMAND_SNOOZE_MAX	(365L * 86400)	/* beyond a year is a typo */

enum command_verb {
	COMMAND_DONE,		/* done [TASK]: a task is done; no TASK = the reminder's own task */
	COMMAND_SNOOZE,		/* snooze DURATION: no reminders for the case until then */
	COMMAND_CLOSE,		/* close REASON: the seller ends the case */
	COMMAND_NOTE		/* note TEXT: a note on the case */
};

struct command {
	enum command_verb verb;
	char		*arg;		/* owned, one line of valid UTF-8; DONE: the task id
					   (lower case, "stop selling" -> "stop_selling") or NULL;
					   SNOOZE: the duration as written, lower case; CLOSE: the
					   reason; NOTE: the text (both cut at COMMAND_TEXT_MAX) */
	long		 seconds;	/* SNOOZE: the duration */
};

struct command_list {
	struct command	 cmds[COMMAND_MAX];
	size_t		 n;
	char		*bad[COMMAND_MAX];	/* owned: lines that start with a verb but cannot be
						   obeyed ("snooze forever"), made one safe line of at
						   most 80 bytes; NULL past nbad */
	size_t		 nbad;
	size_t		 dropped;		/* command lines past COMMAND_MAX (good or bad): not obeyed */
};

/*
 * Reads the reply's own text (len bytes, may hold NULs): the lines before the
 * first quoted part (a "> " line, an "On ... wrote:" line, an Outlook
 * "-----Original Message-----" or "From:" block) or signature ("-- "), at most
 * COMMAND_LINES_MAX of them.  A line whose first word is a verb (done, snooze,
 * close, note; any case) is a command; other lines are prose and ignored.
 * out is cleared first.  Returns the number of command lines seen (obeyable,
 * bad and dropped): 0 means the reply holds no command at all.
 */
size_t		 command_parse(const char *text, size_t len, struct command_list *out);
void		 command_list_clear(struct command_list *);	/* frees what parse allocated */

/* "done", "snooze", "close", "note". */
const char	*command_verb_name(enum command_verb);

/*
 * The case token one of our Message-IDs carries: ids of mail about a case end
 * their local part with ".<token>" (16 lower-case hex digits), e.g.
 * "3f...9a.r12.review.24h.0123456789abcdef@shop.example".  Copies it into
 * token (at least COMMAND_TOKEN_LEN + 1 bytes).  false when the id has none.
 */
bool		 command_msgid_token(const char *msgid, char *token, size_t len);

#endif
