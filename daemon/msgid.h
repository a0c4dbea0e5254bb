/* msgid.h — Message-ID / In-Reply-To / References: validated and normalised for use as keys. */
#ifndef IPCASED_MSGID_H
#define IPCASED_MSGID_H

#include <stddef.h>

#define MSGID_MAX_LEN	998	/* longer ids are refused (RFC 5322 line limit) */
#define MSGID_MAX_REFS	100	/* the newest are kept when References is longer */

/*
 * "<Local@Example.COM>" -> "Local@example.com": angle brackets and CFWS
 * removed, domain lower-cased, local part kept.  Returns malloc'd, or NULL
 * when the value holds no valid id (no @, controls, too long).
 */
char	*msgid_normalize(const char *raw);

/*
 * Every id of an In-Reply-To or References value, oldest first, at most
 * MSGID_MAX_REFS (the newest kept).  Returns a NULL-terminated malloc'd
 * vector (free with strv_free), never NULL.
 */
char	**msgid_parse_list(const char *raw);

/* A fresh id for mail we send: "<random>.<tag>@domain" without brackets; malloc'd. */
char	*msgid_generate(const char *tag, const char *domain);

#endif
