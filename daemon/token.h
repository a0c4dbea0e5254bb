/* token.h — one OAuth 2.0 refresh-token grant over HTTPS (libcurl, json-c); runs in ipcased-send, never in the daemon. */
#ifndef IPCASED_TOKEN_H
#define IPCASED_TOKEN_H

#include <stdbool.h>

#include "util.h"

struct token_job {
	char	*url;			/* the provider's token endpoint */
	long	 timeout_sec;
	char	*refresh_token;
	char	*client_id;
	char	*client_secret;		/* may be NULL */
	char	*scope;			/* may be NULL */
};

struct token_reply {
	int	 result;		/* R_OK, R_RETRY (network, 5xx) or R_FATAL (grant revoked, client refused) */
	char	 err[256];		/* why, one printable line, without secrets */
	char	*access_token;		/* R_OK: no CR, LF or space */
	long	 expires_in;		/* seconds */
	char	*new_refresh_token;	/* the provider rotated it; NULL if not */
};

/* POSTs the grant and reads the answer into a zeroed reply. */
void	token_request(const struct token_job *, struct token_reply *);

#endif
