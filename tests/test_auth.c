/* test_auth.c — auth: trusted Authentication-Results, DKIM alignment, DMARC, look-alike senders and links, "none". */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "message.h"
#include "util.h"

static char *amazon[] = {
	"amazon.com", "amazon.de", "amazon.co.uk", "amazon.co.jp", "amazon.fr", NULL
};
static char *ours[] = { "mx.seller-mail.example", NULL };
static char *none[] = { NULL };
static char *no_addrs[] = { NULL };

#define AR_PASS_COM "mx.seller-mail.example;\n\tdkim=pass (2048-bit key) " \
	"header.d=amazon.com header.i=@amazon.com header.b=abc;\n\tdkim=pass " \
	"header.d=amazonses.com header.b=def;\n\tspf=pass (mx.seller-mail.example: " \
	"domain of x@amazonses.com designates 1.2.3.4 as permitted sender) " \
	"smtp.mailfrom=x@amazonses.com;\n\tdmarc=pass (p=QUARANTINE sp=QUARANTINE " \
	"dis=NONE) header.from=amazon.com"

/* A message with only the headers auth_check() reads. */
static void
msg_init(struct message *m, char *from, char *name, char **ar)
{
	memset(m, 0, sizeof(*m));
	m->from_addr = from;
	m->from_name = name;
	m->to_addrs = no_addrs;
	m->references = no_addrs;
	m->auth_results = ar;
}

static void
test_exact_pass(void **state)
{
	char			*ar[] = { AR_PASS_COM, NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "notice-dispute@amazon.com", NULL, ar);
	auth_check(&m, amazon, ours, &v);
	assert_true(v.amazon_from);
	assert_true(v.trusted_header);
	assert_true(v.dkim_aligned);
	assert_true(v.dmarc_pass);
	assert_false(v.dmarc_fail);
	assert_false(v.lookalike);
	assert_true(v.authentic);
	assert_string_equal(v.reason, "dmarc=pass dkim=amazon.com");
}

static void
test_subdomain_from_parent_dkim(void **state)
{
	char			*ar[] = { "mx.seller-mail.example; dkim=pass header.d=amazon.com; "
	    "dmarc=pass header.from=marketplace.amazon.com", NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "buyer@marketplace.amazon.com", NULL, ar);
	auth_check(&m, amazon, ours, &v);
	assert_true(v.dkim_aligned);
	assert_true(v.authentic);
}

static void
test_forged_below_trusted(void **state)
{
	/* The provider's header says fail; the sender wrote a "pass" one further down. */
	char			*ar[] = {
		"mx.seller-mail.example; dkim=none (message not signed); spf=fail "
		"smtp.mailfrom=notice-dispute@amazon.com; dmarc=fail (p=QUARANTINE) "
		"header.from=amazon.com",
		AR_PASS_COM, NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "notice-dispute@amazon.com", "Amazon", ar);
	auth_check(&m, amazon, ours, &v);
	assert_true(v.trusted_header);
	assert_true(v.dmarc_fail);
	assert_false(v.dmarc_pass);
	assert_false(v.dkim_aligned);
	assert_false(v.authentic);
	assert_non_null(strstr(v.reason, "dmarc=fail"));
}

static void
test_forged_below_foreign(void **state)
{
	/* A header of another receiver sits between ours and the forged one. */
	char			*ar[] = {
		"mx.seller-mail.example; dkim=none; dmarc=none header.from=amazon.com",
		"spamfilter.other.example; dkim=pass header.d=amazon.com",
		AR_PASS_COM, NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "notice-dispute@amazon.com", NULL, ar);
	auth_check(&m, amazon, ours, &v);
	assert_false(v.dkim_aligned);
	assert_false(v.dmarc_pass);
	assert_false(v.authentic);
}

static void
test_foreign_authserv_id(void **state)
{
	char			*ar[] = { "mx.relay-attacker.example; dkim=pass header.d=amazon.com; "
	    "dmarc=pass header.from=amazon.com", NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "seller-performance@amazon.com", "Amazon", ar);
	auth_check(&m, amazon, ours, &v);
	assert_false(v.trusted_header);
	assert_false(v.dmarc_pass);
	assert_false(v.authentic);
	assert_non_null(strstr(v.reason, "no trusted Authentication-Results"));
}

static void
test_no_ids_trusts_topmost_only(void **state)
{
	char			*top_pass[] = { AR_PASS_COM, "x.example; dmarc=fail", NULL };
	char			*top_fail[] = { "whatever.example; dmarc=fail header.from=amazon.com",
	    AR_PASS_COM, NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "notice-dispute@amazon.com", NULL, top_pass);
	auth_check(&m, amazon, none, &v);
	assert_true(v.authentic);
	msg_init(&m, "notice-dispute@amazon.com", NULL, top_fail);
	auth_check(&m, amazon, none, &v);
	assert_false(v.authentic);
	assert_true(v.dmarc_fail);
}

static void
test_no_auth_results(void **state)
{
	char			*ar[] = { NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "notice-dispute@amazon.com", NULL, ar);
	auth_check(&m, amazon, ours, &v);
	assert_false(v.trusted_header);
	assert_false(v.authentic);
	msg_init(&m, "notice-dispute@amazon.com", NULL, NULL);
	auth_check(&m, amazon, ours, &v);
	assert_false(v.authentic);
}

static void
test_dkim_fail(void **state)
{
	char			*ar[] = { "mx.seller-mail.example; dkim=fail (bad signature) "
	    "header.d=amazon.com; dkim=pass header.d=amazonses.com; "
	    "dmarc=pass header.from=amazon.com", NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "notice-dispute@amazon.com", NULL, ar);
	auth_check(&m, amazon, ours, &v);
	assert_true(v.dmarc_pass);
	assert_false(v.dkim_aligned);
	assert_false(v.authentic);
	assert_non_null(strstr(v.reason, "dkim"));
}

static void
test_dmarc_fail_amazon_from(void **state)
{
	char			*ar[] = { "mx.seller-mail.example; dkim=none (message not signed); "
	    "spf=fail smtp.mailfrom=notice-dispute@amazon.com; "
	    "dmarc=fail (p=QUARANTINE sp=QUARANTINE dis=QUARANTINE) header.from=amazon.com", NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "notice-dispute@amazon.com", "Amazon", ar);
	m.reply_to_addr = "case-team@amazon-notices.test";
	auth_check(&m, amazon, ours, &v);
	assert_true(v.amazon_from);
	assert_true(v.dmarc_fail);
	assert_false(v.authentic);
	assert_true(v.lookalike);	/* the foreign Reply-To */
	assert_string_equal(v.reason, "dmarc=fail for amazon.com");
}

static void
test_dmarc_pass_other_domain(void **state)
{
	/* dmarc=pass for another domain says nothing about amazon.com. */
	char			*ar[] = { "mx.seller-mail.example; dkim=pass header.d=amazon.com; "
	    "dmarc=pass header.from=evil.example", NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "notice-dispute@amazon.com", NULL, ar);
	auth_check(&m, amazon, ours, &v);
	assert_false(v.dmarc_pass);
	assert_false(v.authentic);
}

static void
test_syntax_variants(void **state)
{
	/* Quoted authserv-id, a version, nested comments, a method version, odd spacing. */
	char			*ar[] = { "\"mx.seller-mail.example\" 1 (our (nested) mx);\r\n"
	    " dkim/1 = pass (good \\) sig) reason=\"ok; fine\" header.d = amazon.de "
	    "header.b=aGVsbG8=;dmarc=pass\theader.from=amazon.de", NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "notice-dispute@amazon.de", NULL, ar);
	auth_check(&m, amazon, ours, &v);
	assert_true(v.trusted_header);
	assert_true(v.dkim_aligned);
	assert_true(v.dmarc_pass);
	assert_true(v.authentic);
}

static void
test_lookalike_domains(void **state)
{
	static const char *const fakes[] = {
		"amaz0n.com", "arnazon.com", "amazon-seller-support.com",
		"sellercentral-amazon.co", "sellercentral-amazon-support.test",
		"amzn-notices.net", "amazn.de", "amason-support.com",
		"xn--amazn-mye.com",		/* amazоn.com, Cyrillic o */
		"xn--mazon-seller-w9j.com",	/* аmazon-seller.com, Cyrillic a */
		"amazon.com.verify-account.example", "f3dven-amazon.com",
		"\xd0\xb0mazon.com",		/* UTF-8 Cyrillic a */
		NULL
	};
	static const char *const genuine[] = {
		"amazon.com", "marketplace.amazon.com", "amazon.co.jp", "shop.example",
		"example.com", "amazingdeals.example", "halvorsentools.example.com",
		"marketplacemonday.example.com", "xn--mller-kva.de", NULL
	};
	size_t	i;

	(void)state;
	for (i = 0; fakes[i] != NULL; i++) {
		if (!domain_is_lookalike(fakes[i], amazon))
			fail_msg("%s should be a look-alike", fakes[i]);
	}
	for (i = 0; genuine[i] != NULL; i++) {
		if (domain_is_lookalike(genuine[i], amazon))
			fail_msg("%s is no look-alike", genuine[i]);
	}
}

static void
test_lookalike_sender(void **state)
{
	char			*ar[] = { "mx.seller-mail.example; dkim=pass header.d=amazon-seller-notices.example; "
	    "spf=pass smtp.mailfrom=notice@amazon-seller-notices.example; "
	    "dmarc=pass header.from=amazon-seller-notices.example", NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	/* Everything passes, but for a domain that is not Amazon's. */
	msg_init(&m, "notice@amazon-seller-notices.example", "Amazon Seller Support", ar);
	auth_check(&m, amazon, ours, &v);
	assert_false(v.amazon_from);
	assert_true(v.lookalike);
	assert_false(v.authentic);
	assert_non_null(strstr(v.reason, "look-alike"));
}

static void
test_display_name_address(void **state)
{
	char			*ar[] = { "mx.seller-mail.example; dkim=pass header.d=mailer-x.example; "
	    "dmarc=pass header.from=mailer-x.example", NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "alerts@mailer-x.example", "notice-dispute@amazon.com", ar);
	auth_check(&m, amazon, ours, &v);
	assert_true(v.lookalike);
	assert_false(v.authentic);
	assert_non_null(strstr(v.reason, "display name"));

	/* A plain person's name over a plain domain is nothing. */
	msg_init(&m, "legal@halvorsentools.example.com", "Peter Lindahl", ar);
	auth_check(&m, amazon, ours, &v);
	assert_false(v.lookalike);
}

static void
test_domain_in_list(void **state)
{
	(void)state;
	assert_true(domain_in_list("amazon.com", amazon));
	assert_true(domain_in_list("sellercentral.amazon.co.uk", amazon));
	assert_false(domain_in_list("notamazon.com", amazon));
	assert_false(domain_in_list("amazon.com.evil.example", amazon));
	assert_false(domain_in_list(NULL, amazon));
	/* Compared from the end, as strcasecmp() of the tail compared it. */
	assert_true(domain_in_list("SellerCentral.AMAZON.de", amazon));
	assert_false(domain_in_list("amazon.d", amazon));
	assert_false(domain_in_list("xamazon.de", amazon));
	assert_false(domain_in_list("mazon.de", amazon));
	assert_false(domain_in_list("", amazon));
}

/* The brand-letter windows of the look-alike test, on names of every length around six. */
static void
test_lookalike_windows(void **state)
{
	static const char *const fakes[] = {
		"amazom.example", "x-amaz0n", "amaozn.co", "amazn", "mazon-amazon.example",
		"aaaaaaamazonnnnnn.example", "a.m.a.z.o.n.example", NULL
	};
	static const char *const genuine[] = {
		"a", "am", "amaz", "zoo.example", "moon.example", "nomad-zone.example",
		"amanda.example", "ozon.example", NULL
	};
	size_t	i;

	(void)state;
	for (i = 0; fakes[i] != NULL; i++)
		if (!domain_is_lookalike(fakes[i], amazon))
			fail_msg("%s should be a look-alike", fakes[i]);
	for (i = 0; genuine[i] != NULL; i++)
		if (domain_is_lookalike(genuine[i], amazon))
			fail_msg("%s is no look-alike", genuine[i]);
}

/*
 * Answers are remembered per text (auth.c claims_brand): many texts that
 * share the memo's slots, asked twice in another order, keep their answers.
 */
static void
test_lookalike_memo(void **state)
{
	char	name[96];
	int	i, round;
	bool	fake;

	(void)state;
	for (round = 0; round < 2; round++) {
		for (i = 0; i < 2000; i++) {
			int	k = round == 0 ? i : 1999 - i;

			fake = k % 3 == 0;
			snprintf(name, sizeof(name), fake ? "amaz0n-%d.example" : "shop%d.example", k);
			if (domain_is_lookalike(name, amazon) != fake)
				fail_msg("round %d: %s answered %d", round, name, !fake);
			/* Longer than a memo slot holds: judged afresh, same answers. */
			snprintf(name, sizeof(name), fake ? "%060d.amaz0n.example" : "%060d.example", k);
			if (domain_is_lookalike(name, amazon) != fake)
				fail_msg("round %d: %s answered %d", round, name, !fake);
		}
	}
}

static void
test_forged_above_own(void **state)
{
	/* A milter appends the real verdict at the end; the sender's "pass" sits above it. */
	char			*ar[] = { AR_PASS_COM,
		"mx.seller-mail.example; dkim=none (message not signed); spf=softfail "
		"smtp.mailfrom=notice-dispute@amazon.com; dmarc=fail (p=QUARANTINE) "
		"header.from=amazon.com", NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "notice-dispute@amazon.com", NULL, ar);
	auth_check(&m, amazon, ours, &v);
	assert_true(v.dmarc_fail);
	assert_true(v.conflict);
	assert_false(v.authentic);
	assert_string_equal(v.reason, "dmarc=fail for amazon.com");
	/* Without configured ids the same id further down still vetoes the topmost. */
	auth_check(&m, amazon, none, &v);
	assert_true(v.dmarc_fail);
	assert_false(v.authentic);
}

static void
test_authserv_none(void **state)
{
	/* A header claiming the id "none" is the sender's own writing. */
	char			*ar[] = { "none; dkim=pass header.d=amazon.com; "
	    "dmarc=pass header.from=amazon.com", AR_PASS_COM, NULL };
	char			*none_id[] = { "none", NULL };
	char			*mixed[] = { "mx.seller-mail.example", "none", NULL };
	char			*no_ar[] = { NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "notice-dispute@amazon.com", NULL, ar);
	auth_check(&m, amazon, none_id, &v);
	assert_false(v.trusted_header);
	assert_true(v.unverifiable);
	assert_false(v.authentic);
	assert_non_null(strstr(v.reason, "not verified"));

	/* With a real id beside it, a header of that id is judged as usual. */
	auth_check(&m, amazon, mixed, &v);
	assert_true(v.trusted_header);
	assert_false(v.unverifiable);
	assert_true(v.authentic);
	msg_init(&m, "notice-dispute@amazon.com", NULL, no_ar);
	auth_check(&m, amazon, mixed, &v);
	assert_true(v.unverifiable);

	/* A look-alike trait is still reported first. */
	msg_init(&m, "notice-dispute@amazon.com", NULL, no_ar);
	m.reply_to_addr = "appeals@amazon-case-review.test";
	auth_check(&m, amazon, none_id, &v);
	assert_true(v.unverifiable);
	assert_true(v.lookalike);
	assert_string_equal(v.reason, "Reply-To outside Amazon: amazon-case-review.test");
}

static bool
has_finding(const struct auth_verdict *v, const char *prefix)
{
	size_t	i;

	for (i = 0; i < v->nfindings; i++)
		if (strncmp(v->findings[i], prefix, strlen(prefix)) == 0)
			return true;
	return false;
}

static void
test_findings(void **state)
{
	char			*ar[] = { "mx.seller-mail.example; dkim=none; spf=fail "
	    "smtp.mailfrom=x@amazon.com; dmarc=fail header.from=amazon.com", NULL };
	char			*no_ar[] = { NULL };
	struct message		 m;
	struct auth_verdict	 v;

	(void)state;
	msg_init(&m, "notice-dispute@amazon.com", "Amazon", ar);
	m.reply_to_addr = "help@amazon-notices.test";
	auth_check(&m, amazon, ours, &v);
	assert_true(has_finding(&v, "Reply-To outside Amazon: amazon-notices.test"));
	assert_true(has_finding(&v, "dmarc=fail for amazon.com"));

	msg_init(&m, "d.marsh@webmail.example.com", "D. Marsh", no_ar);
	auth_check(&m, amazon, ours, &v);
	assert_true(has_finding(&v, "no trusted Authentication-Results"));
	assert_true(has_finding(&v, "sender domain is not Amazon's: webmail.example.com"));
}

static void
test_links(void **state)
{
	char			*ar[] = { AR_PASS_COM, NULL };
	struct message		 m;
	struct auth_verdict	 v;
	static const struct {
		const char	*text;
		bool		 foreign, lookalike, deceptive;
	} cases[] = {
		{ "Go to Account Health (https://sellercentral.amazon.com/performance/dashboard).",
		    false, false, false },
		{ "<https://m.media-amazon.com/images/G/01/logo.png> and https://amzn.to/3xYz",
		    false, false, false },
		{ "Appeal at https://sellercentral.amazon.com/appeal (https://appeal-center.example/x)",
		    true, false, true },
		{ "Sign in to sellercentral.amazon.co.uk (http://203.0.113.9/login)",
		    true, false, true },
		{ "Evidence: https://storage.googleapis.com/bkt/claim.zip", true, false, false },
		{ "Evidence: https://claims.s3.amazonaws.com/claim.html", true, false, false },
		{ "Verify: https://sellercentral-amazon-support.test/verify?id=1", false, true, false },
		{ "Login https://sellercentral.amazon.com@evil.example/", true, false, false },
		{ "See our shop (https://halvorsentools.example.com/about)", true, false, false },
		{ "no scheme: sellercentral.amazon.com/help, ftp://x.example/", false, false, false },
		{ "https://sellercentral.amazon.com/help (https://x1.r.us-east-1.awstrack.me/L0/"
		    "https:%2F%2Fsellercentral.amazon.com%2Fhelp/1/abc=)", false, false, false },
		{ "https://sellercentral.amazon.com/help (https://x1.r.us-east-1.awstrack.me/L0/"
		    "https:%2F%2Fevil.example%2Fhelp/1/abc=)", true, false, true },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		msg_init(&m, "notice-dispute@amazon.com", NULL, ar);
		m.text = (char *)cases[i].text;
		m.text_len = strlen(cases[i].text);
		auth_check(&m, amazon, ours, &v);
		if (v.link_foreign != cases[i].foreign || v.link_lookalike != cases[i].lookalike ||
		    v.link_deceptive != cases[i].deceptive)
			fail_msg("links of \"%s\": foreign %d lookalike %d deceptive %d",
			    cases[i].text, v.link_foreign, v.link_lookalike, v.link_deceptive);
		/* Links are judged apart: the sender's authentication still stands. */
		assert_true(v.authentic);
	}
	msg_init(&m, "notice-dispute@amazon.com", NULL, ar);
	m.text = "Appeal at https://sellercentral.amazon.com/appeal (https://appeal-center.example/x)";
	m.text_len = strlen(m.text);
	auth_check(&m, amazon, ours, &v);
	assert_true(has_finding(&v, "link text shows an Amazon host but the link goes to "
	    "appeal-center.example"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_pass),
		cmocka_unit_test(test_subdomain_from_parent_dkim),
		cmocka_unit_test(test_forged_below_trusted),
		cmocka_unit_test(test_forged_below_foreign),
		cmocka_unit_test(test_foreign_authserv_id),
		cmocka_unit_test(test_no_ids_trusts_topmost_only),
		cmocka_unit_test(test_no_auth_results),
		cmocka_unit_test(test_dkim_fail),
		cmocka_unit_test(test_dmarc_fail_amazon_from),
		cmocka_unit_test(test_dmarc_pass_other_domain),
		cmocka_unit_test(test_syntax_variants),
		cmocka_unit_test(test_lookalike_domains),
		cmocka_unit_test(test_lookalike_sender),
		cmocka_unit_test(test_display_name_address),
		cmocka_unit_test(test_domain_in_list),
		cmocka_unit_test(test_lookalike_windows),
		cmocka_unit_test(test_forged_above_own),
		cmocka_unit_test(test_authserv_none),
		cmocka_unit_test(test_findings),
		cmocka_unit_test(test_links),
		cmocka_unit_test(test_lookalike_memo),
	};

	return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
