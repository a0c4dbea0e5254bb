/* smtp.h — messages sent over SMTP with libcurl, one connection kept between them; runs in the sender program (ipcased-send), never in the daemon. */
#ifndef IPCASED_SMTP_H
#define IPCASED_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct send_result {
	long	 smtp_code;		/* last SMTP reply code, 0 if none */
	bool	 permanent;		/* 5xx, authentication or certificate failure: alert, keep, retry later */
	char	 reply[256];		/* curl's error text or "250 ok", for the outbox row and the log */
};

/* Everything one delivery needs, checked by the daemon (mailer.c) before it is sent here. */
struct smtp_job {
	char	 *url;			/* smtp[s]://host:port/ehlo-domain */
	char	 *ca_file;		/* NULL: system trust */
	char	 *user;			/* NULL: no AUTH */
	char	 *password;
	char	 *from;			/* envelope sender, a plain address */
	char	**rcpts;		/* plain addresses, NULL-terminated */
	long	  timeout_sec;
	char	 *msg;			/* LF-only text; curl sends CRLF and dot-stuffs */
	size_t	  len;
};

/*
 * Delivers job: R_OK, R_RETRY (try later) or R_SKIP (refused for good:
 * out->permanent); logged.  The connection stays open for the next job to
 * the same server until smtp_close().
 */
int	smtp_send(const struct smtp_job *, struct send_result *out);
/* Ends the connection smtp_send() kept (QUIT). */
void	smtp_close(void);

#endif
