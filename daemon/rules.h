/* rules.h — PCRE2 rules from the config -> a verdict: what kind of mail, and its fields. */
#ifndef IPCASED_RULES_H
#define IPCASED_RULES_H

#include <stdbool.h>

#include "conf.h"
#include "message.h"

enum kind {
	KIND_OTHER = 0,
	KIND_IP_NOTICE,
	KIND_RETRACTION,
	KIND_REINSTATEMENT,
	KIND_APEX,
	KIND_ACCOUNT_WARNING,
	KIND_REPORT_CONFIRMATION,
	KIND_APPEAL_DECISION,
	KIND_PHISHING
};

struct verdict {
	enum kind	  kind;
	char		 *rule;			/* name of the rule that decided, NULL for none */
	char		 *complaint_id;		/* the first one cited */
	char		**complaint_ids;	/* all cited, NULL-terminated, never NULL */
	char		**asins;		/* upper case, unique, in order of appearance; never NULL */
	char		 *infringement_type;	/* copyright trademark patent design_patent counterfeit */
	char		 *rights_owner_name;
	char		 *rights_owner_email;	/* lower case */
	char		 *marketplace;		/* us ca mx uk de fr it es jp in ... (lower case) */
	int		  deadline_days;	/* stated in the text; -1 when none */
	bool		  authentic;		/* passes auth_check() as Amazon mail */
	bool		  unverified;		/* no Authentication-Results to judge by (authserv_ids = [ "none" ]):
						   authentic is unknown; a notice keeps its kind */
	char		 *auth_reason;		/* why not authentic, or "dmarc=pass dkim=amazon.com" */
	char		**reasons;		/* the rule, every auth and link finding, the verdict; never NULL after classify */
	bool		  lawsuit;		/* words of a lawsuit or court */
	char		 *outcome;		/* appeal decision: "accepted" / "rejected"; else NULL */
};

struct rules;

/*
 * Compiles the "rules" section of conf (and the shipped defaults when the
 * section is absent).  Bad patterns, unknown keys and kinds are reported with
 * conf_error() (file:line and the PCRE2 message); returns NULL when any.
 */
struct rules	*rules_load(struct conf *);
void		 rules_free(struct rules *);		/* NULL is a no-op */

/*
 * Compiles rules from the text of a rules file (rules = ( ... ); and
 * rule_settings), named name in error messages, for conf's Amazon domains
 * and accounts.  NULL on errors (reported with conf_error()).
 */
struct rules	*rules_load_text(struct conf *, const char *name, const char *text, size_t len);

/* conf/rules.conf as it was at build time (daemon/rules_default.c, made by the Makefile). */
extern const unsigned char rules_default_text[];
extern const size_t	rules_default_len;

/*
 * The built-in rules: for `ipcase classify` without a config file.  Inline,
 * so that only programs that call it link the generated file.
 */
static inline struct rules *
rules_load_default(struct conf *conf)
{
	return rules_load_text(conf, "built-in rules.conf",
	    (const char *)rules_default_text,
	    rules_default_len);
}

/*
 * Header-only pre-screen: true when the body is worth fetching (an Amazon
 * sender domain or look-alike, a subject that matches a rule, a complaint id
 * in the subject).  Store-based checks (known threads and addresses) are the
 * caller's (cases_candidate_match()).
 */
bool		 rules_prescreen(const struct rules *, const struct message *headers);
/*
 * Its subject half: does prescreen_subject, a complaint_id field or a rule's
 * subject match?  Patterns none of whose literals is in the subject are not
 * run; one_by_one runs them all, as before (the same answer: for tests).
 */
bool		 rules_prescreen_subject(const struct rules *, const char *subject, bool one_by_one);

/*
 * Classifies a decoded message and extracts its fields.  Never fails; out is
 * cleared first.  Trusts the Authentication-Results of every account's
 * authserv_ids.
 */
void		 rules_classify(const struct rules *, const struct conf *, const struct message *, struct verdict *out);
/* The same, trusting only authserv_ids (NULL-terminated; empty = the topmost header): one account's. */
void		 rules_classify_ids(const struct rules *, char *const *authserv_ids,
		    const struct message *, struct verdict *out);

void		 verdict_clear(struct verdict *);
const char	*kind_name(enum kind);			/* "ip_notice", ... */
enum kind	 kind_from_name(const char *);		/* -1 cast to enum kind when unknown */

/* amazon.de -> "de", amazon.co.jp -> "jp", sell.amazon.com -> "us"; NULL when not an Amazon domain. */
const char	*marketplace_from_domain(const char *domain);

#endif
