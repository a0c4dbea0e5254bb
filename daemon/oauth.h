/* oauth.h — XOAUTH2 access tokens for Gmail and Microsoft 365: refresh-token exchange, rotation, expiry. */
#ifndef IPCASED_OAUTH_H
#define IPCASED_OAUTH_H

#include <stddef.h>
#include <time.h>

#include "conf.h"
#include "util.h"

/* An access token is renewed when it has less than this left. */
#define OAUTH_RENEW_BEFORE_SEC	300

/*
 * Exchanges the account's refresh token for an access token at its
 * oauth_token_url (libcurl, HTTPS; plain HTTP only to loopback, for tests).
 * The refresh token is read from the rotated copy kept beside the state
 * database when there is one, else from oauth_refresh_token_file; a new
 * refresh token returned by the provider is stored there (mode 0600,
 * atomically).  Returns R_OK with *token malloc'd and *expires set, R_RETRY
 * (network, 5xx: try later) or R_FATAL (the grant is revoked or the client
 * refused: the seller must authorise again), with the reason in err.
 * Tokens are never logged.
 */
enum result	oauth_refresh(const struct conf *, const struct conf_account *, char **token,
		    time_t *expires, char *err, size_t errlen);

/* Where a rotated refresh token of acct is kept; malloc'd. */
char	       *oauth_rotated_path(const struct conf *, const struct conf_account *);

#endif
