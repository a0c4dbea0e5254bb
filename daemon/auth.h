/* auth.h — is this mail really from Amazon?  Trusted Authentication-Results, DKIM alignment, look-alikes. */
#ifndef IPCASED_AUTH_H
#define IPCASED_AUTH_H

#include <stdbool.h>

#include "message.h"

/* authserv_ids = [ "none" ]: the account's server writes no Authentication-Results. */
#define AUTHSERV_NONE		"none"
#define AUTH_MAX_FINDINGS	10
#define AUTH_FINDING_MAX	160

struct auth_verdict {
	bool	 amazon_from;		/* From domain is, or is under, an Amazon domain */
	bool	 lookalike;		/* From/Reply-To/display name resemble Amazon without being it */
	bool	 trusted_header;	/* an Authentication-Results from a trusted authserv-id was found */
	bool	 dkim_aligned;		/* dkim=pass with header.d = From domain or its parent */
	bool	 dmarc_pass;
	bool	 dmarc_fail;		/* any header of a trusted authserv-id says dmarc=fail */
	bool	 conflict;		/* headers of a trusted authserv-id disagree: one is forged */
	bool	 unverifiable;		/* "none" configured and no trusted header: cannot be checked */
	bool	 link_foreign;		/* the text links to a host outside Amazon */
	bool	 link_lookalike;	/* ... to a host that resembles Amazon */
	bool	 link_deceptive;	/* link text shows an Amazon host, the link goes elsewhere */
	bool	 authentic;		/* amazon_from && trusted && dmarc_pass && dkim_aligned && !conflict */
	char	 reason[160];		/* one line for logs and `classify` */
	char	 findings[AUTH_MAX_FINDINGS][AUTH_FINDING_MAX];	/* every trait found, for `classify` */
	size_t	 nfindings;
};

/*
 * Judges m against amazon_domains (NULL-terminated, lower case) and the
 * trusted authserv-ids (NULL-terminated; when empty, only the topmost
 * Authentication-Results is trusted: the one our own provider prepended;
 * AUTHSERV_NONE: no header is trusted and the verdict is unverifiable when
 * no other listed id stamped the mail).  Links in m->text are checked too.
 */
void	auth_check(const struct message *m, char *const *amazon_domains,
	    char *const *authserv_ids, struct auth_verdict *out);

/*
 * The sender part of auth_check() alone, for the header pre-screen: is the
 * From domain Amazon's, or does the sender look like Amazon without being it?
 */
bool	auth_sender_suspect(const struct message *, char *const *amazon_domains);

/* Is domain (lower case) one of the list or a subdomain of one? */
bool	domain_in_list(const char *domain, char *const *list);

/*
 * Does domain resemble Amazon without being one of amazon_domains?  Punycode
 * labels are decoded, confusable letters and digits folded (amaz0n, arnazon,
 * Cyrillic a), and "amazon" give or take one letter or "amzn" anywhere in the
 * name counts (amazon-seller-support.com, sellercentral-amazon.example).
 */
bool	domain_is_lookalike(const char *domain, char *const *amazon_domains);

#endif
