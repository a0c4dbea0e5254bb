/* test_rules.c — rules: config errors, deadlines in each language, ASIN layouts, types, marketplaces, match limits, reasons, unverified mail, links, built-in defaults. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "mime.h"
#include "rules.h"
#include "util.h"
#include "testutil.h"

/* The shipped rules, loaded once through the corpus test config. */
static struct conf	*samples_conf;
static struct rules	*samples_rules;

static char *no_addrs[] = { NULL };

static const char base_conf[] =
    "accounts = ( { name = \"shop\"; host = \"127.0.0.1\"; tls = \"none\"; port = 143;\n"
    "  user = \"u\"; password_file = \"p\"; authserv_ids = [ \"mx.seller-mail.example\" ]; } );\n"
    "smtp = { url = \"smtp://127.0.0.1:2525\"; from = \"ipcased@shop.example\"; to = [ \"ops@shop.example\" ]; };\n"
    "amazon_domains = [ \"amazon.com\", \"amazon.de\" ];\n"
    "@include \"r.conf\"\n";

static int
group_setup(void **state)
{
	(void)state;
	if ((samples_conf = conf_load("tests/samples.conf")) == NULL)
		return -1;
	if ((samples_rules = rules_load(samples_conf)) == NULL)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	rules_free(samples_rules);
	conf_free(samples_conf);
	return 0;
}

/* A decoded mail from from_addr whose trusted Authentication-Results pass for its domain. */
struct fake {
	struct message	 m;
	char		*ar[2];
};

static void
fake_init(struct fake *f, const char *from_addr, const char *subject, const char *text)
{
	const char	*domain = strchr(from_addr, '@') + 1;

	memset(f, 0, sizeof(*f));
	f->ar[0] = xasprintf("mx.seller-mail.example; dkim=pass header.d=%s; "
	    "dmarc=pass header.from=%s", domain, domain);
	f->m.from_addr = (char *)from_addr;
	f->m.subject = (char *)subject;
	f->m.text = (char *)text;
	f->m.text_len = strlen(text);
	f->m.to_addrs = no_addrs;
	f->m.references = no_addrs;
	f->m.auth_results = f->ar;
}

static void
fake_free(struct fake *f)
{
	free(f->ar[0]);
}

static void
classify_text(const char *from, const char *subject, const char *text, struct verdict *v)
{
	struct fake	f;

	fake_init(&f, from, subject, text);
	rules_classify(samples_rules, samples_conf, &f.m, v);
	fake_free(&f);
}

static char *
join(char **v)
{
	struct buf	b = { 0 };

	for (; *v != NULL; v++)
		buf_printf(&b, "%s%s", b.len ? "," : "", *v);
	return buf_steal(&b);
}

/* ---- Config errors --------------------------------------------------- */

/* A scratch dir (filled in) with r.conf holding rules_text and main.conf including it; returns main.conf's path. */
static char *
write_rules_conf(char *dir, const char *rules_text)
{
	char	*path;
	FILE	*f;

	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/r.conf", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs(rules_text, f);
	fclose(f);
	free(path);
	path = xasprintf("%s/main.conf", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs(base_conf, f);
	fclose(f);
	return path;
}

/*
 * Loads a config whose rules file is rules_text and returns what was printed
 * on stderr; *ok is whether rules_load() succeeded.
 */
static char *
load_errors(const char *rules_text, bool *ok)
{
	char		 dir[] = "/tmp/test_rules.XXXXXX", *path, *out;
	struct conf	*conf;
	struct rules	*r;
	int		 saved, fd;
	size_t		 len;

	path = write_rules_conf(dir, rules_text);
	out = xasprintf("%s/stderr", dir);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	conf = conf_load(path);
	r = conf != NULL ? rules_load(conf) : NULL;
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	*ok = r != NULL;
	rules_free(r);
	conf_free(conf);
	free(path);
	path = out;
	out = file_read(path, 1 << 20, &len);
	assert_non_null(out);
	unlink(path);
	free(path);
	path = xasprintf("%s/r.conf", dir);
	unlink(path);
	free(path);
	path = xasprintf("%s/main.conf", dir);
	unlink(path);
	free(path);
	rmdir(dir);
	return out;
}

static void
test_bad_pattern_file_line(void **state)
{
	char	*err;
	bool	 ok;

	(void)state;
	err = load_errors(
	    "# a rules file with one broken pattern\n"
	    "rules = (\n"
	    "  { name = \"good\"; kind = \"ip_notice\"; subject = \"notice\"; },\n"
	    "  { name = \"broken\"; kind = \"ip_notice\";\n"
	    "    body = [ \"fine\", \"(unclosed\" ];\n"
	    "  }\n"
	    ");\n", &ok);
	assert_false(ok);
	/* file:line of the pattern itself, the offset and PCRE2's own words. */
	assert_non_null(strstr(err, "r.conf:5: rules[1] (broken).body[1]: pattern error at offset 9"));
	assert_non_null(strstr(err, "missing closing parenthesis"));
	free(err);
}

static void
test_config_errors(void **state)
{
	char	*err;
	bool	 ok;

	(void)state;
	err = load_errors(
	    "rules = (\n"
	    "  { name = \"a\"; kind = \"notice\"; subject = \"x\"; },\n"
	    "  { name = \"b\"; kind = \"ip_notice\"; subjet = \"x\"; body = \"y\"; },\n"
	    "  { name = \"c\"; kind = \"other\"; },\n"
	    "  { name = \"d\"; kind = \"apex\"; body = \"y\"; fields = { deadline = \"within (\\\\d+)\"; }; },\n"
	    "  { name = \"e\"; kind = \"apex\"; body = \"z\"; },\n"
	    "  { name = \"e\"; kind = \"apex\"; body = \"z\"; },\n"
	    "  { name = \"f\"; kind = \"apex\"; body = \"z\"; require = [ \"colour\" ]; }\n"
	    ");\n", &ok);
	assert_false(ok);
	assert_non_null(strstr(err, "r.conf:2: rules[0] (a): unknown kind \"notice\""));
	assert_non_null(strstr(err, "r.conf:3: "));
	assert_non_null(strstr(err, "unknown setting \"subjet\""));
	assert_non_null(strstr(err, "r.conf:4: rules[2] (c): has no condition"));
	assert_non_null(strstr(err, "needs the groups (?<n>...)"));
	assert_non_null(strstr(err, "unknown field \"colour\""));
	assert_non_null(strstr(err, "r.conf:7: rules[5]: the name \"e\" is already used"));
	free(err);

	err = load_errors(
	    "rule_settings = { types = ( { type = \"trademarks\"; pattern = \"tm\"; } );\n"
	    "  numbers = ( { value = 3; pattern = \"[three\"; } ); };\n"
	    "rules = ( { name = \"a\"; kind = \"ip_notice\"; subject = \"x\"; } );\n", &ok);
	assert_false(ok);
	assert_non_null(strstr(err, "r.conf:1: rule_settings.types[0]: unknown type \"trademarks\""));
	assert_non_null(strstr(err, "r.conf:2: rule_settings.numbers[0]: pattern error"));
	free(err);

	err = load_errors("rules = ( { name = \"a\"; kind = \"ip_notice\"; subject = \"x\"; } );\n", &ok);
	assert_true(ok);
	free(err);
}

/* ---- Deadlines ------------------------------------------------------- */

static int
deadline_of(const char *from, const char *sentence)
{
	struct verdict	 v = { 0 };
	char		*text;
	int		 d;

	text = xasprintf("A rights owner reported that your listing may infringe "
	    "their trademark.\n\n%s\n\nASIN: B0TESTAS1N\nComplaint ID: 12345678901\n",
	    sentence);
	classify_text(from, "Notice: Policy Warning", text, &v);
	if (v.kind != KIND_IP_NOTICE)
		fail_msg("\"%s\" classified as %s", sentence, kind_name(v.kind));
	d = v.deadline_days;
	verdict_clear(&v);
	free(text);
	return d;
}

static void
test_deadlines(void **state)
{
	static const struct { const char *text; int days; } cases[] = {
		{ "If we do not receive this information within 90 days, ...", 90 },
		{ "Within three weeks of this email, you can opt in.", 21 },
		{ "Reply within 3 weeks.", 21 },
		{ "within seventeen (17) days", 17 },
		{ "Please answer within a week.", 7 },
		{ "we will review them within 5 business days", 5 },
		{ "within 12 hours", -1 },
		{ "Invoices issued in the last 90 days. Send them within 17 days.", 17 },
		{ "Wenn wir innerhalb von 90 Tagen nichts hören ...", 90 },
		{ "Bitte reagieren Sie innerhalb von drei Wochen.", 21 },
		{ "binnen zehn Werktagen", 10 },
		{ "dans un délai de 90 jours", 90 },
		{ "Sans réponse de votre part dans les 90 jours", 90 },
		{ "dans un délai de trois semaines", 21 },
		{ "sous dix-sept jours", 17 },
		{ "entro 90 giorni", 90 },
		{ "entro i prossimi quindici giorni", 15 },
		{ "entro tre settimane", 21 },
		{ "en un plazo de 90 días", 90 },
		{ "en un plazo de tres semanas", 21 },
		{ "dentro de diecisiete días", 17 },
		{ "90日以内にご対応ください。", 90 },
		{ "３週間以内にご提出ください。", 21 },
		{ "十四日以内に請求書をご提出ください。", 14 },
		{ "No day count is given here.", -1 },
	};
	size_t	i;
	int	d;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		d = deadline_of("notice-dispute@amazon.com", cases[i].text);
		if (d != cases[i].days)
			fail_msg("\"%s\": %d days, want %d", cases[i].text, d, cases[i].days);
	}
}

/* ---- ASINs and complaint IDs ----------------------------------------- */

static void
check_ids(const char *text, const char *want_asins, const char *want_ids)
{
	struct verdict	 v = { 0 };
	char		*a, *c;

	classify_text("notice-dispute@amazon.com", "Notice: Policy Warning", text, &v);
	a = join(v.asins);
	c = join(v.complaint_ids);
	if (strcmp(a, want_asins) != 0 || strcmp(c, want_ids) != 0)
		fail_msg("asins %s (want %s), ids %s (want %s) in:\n%s", a, want_asins,
		    c, want_ids, text);
	free(a);
	free(c);
	verdict_clear(&v);
}

static void
test_multi_asin_layouts(void **state)
{
	(void)state;
	/* Modern: one block per ASIN sharing one complaint ID. */
	check_ids("A rights owner reported that they may infringe the rights owner's copyright.\n"
	    "ASIN: B0CF8N1QWX\nTitle: Paper\nInfringement type: Copyright\nComplaint ID: 13877120954\n\n"
	    "ASIN: B0CF8Q7HZM\nTitle: Tags\nInfringement type: Copyright\nComplaint ID: 13877120954\n",
	    "B0CF8N1QWX,B0CF8Q7HZM", "13877120954");
	/* Old format: a list on one line, older ASINs and an ISBN-10. */
	check_ids("We received a report from a rights owner that the items infringe their trademark.\n"
	    "ASIN: B00QMK4R2A, B00QMK5T7C, 0316769487\nInfringement type: Trademark\nComplaint ID: 6405512983\n",
	    "B00QMK4R2A,B00QMK5T7C,0316769487", "6405512983");
	/* Space separated after a quoted brand. */
	check_ids("Items may be inauthentic and infringe the rights owner's trademark; removed:\n"
	    "\"LUMALOOM\" \xe2\x80\x93 ASIN B0CW9X2KFP B0CW9Z5TQR B0CWA1M7HD\n",
	    "B0CW9X2KFP,B0CW9Z5TQR,B0CWA1M7HD", "");
	/* One "ASIN: X - title" line per item (utility patent). */
	check_ids("The rights owner claims the items infringe their utility patent rights; removed.\n"
	    "ASIN: B07HZ3XK5M - Folding stove, 1234567890 BTU\nASIN: B07HZ4QW8P - Windscreen\n"
	    "Complaint ID: 7702291845\n",
	    "B07HZ3XK5M,B07HZ4QW8P", "7702291845");
	/* Bullets with several complaint IDs; a 10-digit complaint ID is no ASIN. */
	check_ids("Your account was deactivated: rights owner complaints about infringement.\n"
	    "-- ASIN: B0DD1E2F3G, Complaint ID: 1550112233\n-- ASIN: B0DD4H5J6K, Complaint ID: 15501122389\n",
	    "B0DD1E2F3G,B0DD4H5J6K", "1550112233,15501122389");
	/* Several complaint IDs in one phrase; duplicates kept once, in order. */
	check_ids("The rights owner reported infringement of their trademark. Complaint IDs: "
	    "12904418236, 12904418237 and 12904418238. ASIN B0CR3M8W5T, ASIN B0CR3M8W5T.\n",
	    "B0CR3M8W5T", "12904418236,12904418237,12904418238");
}

/* ---- Types ----------------------------------------------------------- */

static void
check_type(const char *from, const char *label_text, const char *want)
{
	struct verdict	 v = { 0 };
	char		*text;

	text = xasprintf("A rights owner reported an infringement; we removed the listing.\n"
	    "ASIN: B0TESTAS1N\n%s\nComplaint ID: 12345678901\n", label_text);
	classify_text(from, "Notice: Policy Warning", text, &v);
	if (v.infringement_type == NULL || strcmp(v.infringement_type, want) != 0)
		fail_msg("\"%s\": type %s, want %s", label_text,
		    v.infringement_type ? v.infringement_type : "null", want);
	verdict_clear(&v);
	free(text);
}

static void
test_type_mapping(void **state)
{
	static const struct { const char *text, *type; } cases[] = {
		{ "Infringement type: Trademark", "trademark" },
		{ "Infringement type: Counterfeit", "counterfeit" },
		{ "Infringement type: Copyright Image", "copyright" },
		{ "Infringement type: Design Patent", "design_patent" },
		{ "Infringement type: Patent", "patent" },
		{ "Infringement type: Patent\nPatent number: US D945,612", "design_patent" },
		{ "Art der Verletzung: Marke", "trademark" },
		{ "Art der Verletzung: Urheberrecht", "copyright" },
		{ "Art der Verletzung: Geschmacksmuster", "design_patent" },
		{ "Art der Verletzung: nicht authentisch", "counterfeit" },
		{ "Type de violation : Marque de commerce", "trademark" },
		{ "Type de violation : Droit d'auteur", "copyright" },
		{ "Type de violation : Dessin ou modèle", "design_patent" },
		{ "Type de violation : Contrefaçon", "counterfeit" },
		{ "Tipo di violazione: Marchio", "trademark" },
		{ "Tipo di violazione: Diritto d'autore", "copyright" },
		{ "Tipo di violazione: Brevetto", "patent" },
		{ "Tipo di violazione: Contraffazione", "counterfeit" },
		{ "Tipo de infracción: Marca", "trademark" },
		{ "Tipo de infracción: Derechos de autor", "copyright" },
		{ "Tipo de infracción: Diseño industrial", "design_patent" },
		{ "Tipo de infracción: Falsificación", "counterfeit" },
		{ "侵害の種類: 商標", "trademark" },
		{ "侵害の種類: 著作権(画像)", "copyright" },
		{ "侵害の種類: 意匠", "design_patent" },
		{ "侵害の種類: 特許", "patent" },
		{ "侵害の種類: 偽造品", "counterfeit" },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		check_type("notice-dispute@amazon.de", cases[i].text, cases[i].type);
}

/* ---- Marketplaces ---------------------------------------------------- */

static void
test_marketplace_mapping(void **state)
{
	static const struct { const char *domain, *code; } cases[] = {
		{ "amazon.com", "us" }, { "sell.amazon.com", "us" }, { "amazon.ca", "ca" },
		{ "amazon.com.mx", "mx" }, { "amazon.co.uk", "uk" }, { "amazon.de", "de" },
		{ "amazon.fr", "fr" }, { "amazon.it", "it" }, { "amazon.es", "es" },
		{ "amazon.co.jp", "jp" }, { "amazon.in", "in" }, { "AMAZON.DE", "de" },
		{ "sellercentral.amazon.co.uk", "uk" }, { "amazon.com.au", "au" },
		{ "amazon.com.evil.example", NULL }, { "notamazon.com", NULL },
		{ "amazonses.com", NULL }, { "sellercentral-europe.amazon.com", NULL },
		{ "example.com", NULL },
	};
	const char	*got;
	size_t		 i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		got = marketplace_from_domain(cases[i].domain);
		if ((got == NULL) != (cases[i].code == NULL) ||
		    (got != NULL && strcmp(got, cases[i].code) != 0))
			fail_msg("%s: %s, want %s", cases[i].domain, got ? got : "NULL",
			    cases[i].code ? cases[i].code : "NULL");
	}
	assert_null(marketplace_from_domain(NULL));
}

static void
test_marketplace_of_mail(void **state)
{
	struct verdict	 v = { 0 };
	struct fake	 f;

	(void)state;
	classify_text("notice-dispute@amazon.co.jp", "x", "hello", &v);
	assert_string_equal(v.marketplace, "jp");
	verdict_clear(&v);

	/* A forward: the marketplace of the forwarded From line. */
	fake_init(&f, "jonas@shop.example", "Fwd: Notice", "FYI\n");
	f.m.forwarded_text = "From: Amazon.co.uk <notice-dispute@amazon.co.uk>\nASIN: B0CF8N1QWX\n";
	f.m.forwarded_len = strlen(f.m.forwarded_text);
	rules_classify(samples_rules, samples_conf, &f.m, &v);
	assert_int_equal(v.kind, KIND_OTHER);
	assert_string_equal(v.marketplace, "uk");
	verdict_clear(&v);
	fake_free(&f);

	/* A look-alike points at the marketplace it names, else amazon.com. */
	fake_init(&f, "support@amazon-de-verify.example", "x", "hello");
	rules_classify(samples_rules, samples_conf, &f.m, &v);
	assert_string_equal(v.marketplace, "de");
	verdict_clear(&v);
	fake_free(&f);
	fake_init(&f, "support@sellercentral-amazon-support.test", "x", "hello");
	rules_classify(samples_rules, samples_conf, &f.m, &v);
	assert_string_equal(v.marketplace, "us");
	verdict_clear(&v);
	fake_free(&f);

	/* Someone else's mail without an Amazon domain names no marketplace. */
	classify_text("lucia@example.com", "Cena", "Hola, ¿cena el sábado en Amazonas?", &v);
	assert_null(v.marketplace);
	verdict_clear(&v);
}

/* ---- Kinds ----------------------------------------------------------- */

static void
test_kinds(void **state)
{
	struct verdict	 v = { 0 };
	struct fake	 f;

	(void)state;
	classify_text("notice-dispute@amazon.de", "Ihr Angebot wurde reaktiviert",
	    "Wir haben Ihr Angebot wieder aktiviert.\nASIN: B0CJT5Q8NM\nBeschwerdenummer: 11563309481\n", &v);
	assert_int_equal(v.kind, KIND_REINSTATEMENT);
	verdict_clear(&v);

	classify_text("notice-dispute@amazon.com", "RE: appeal",
	    "We cannot accept your appeal because it does not address the report we "
	    "received from the rights owner.\nASIN: B0CR3M8W5T\nComplaint ID: 12904418236\n", &v);
	assert_int_equal(v.kind, KIND_APPEAL_DECISION);
	assert_string_equal(v.outcome, "rejected");
	verdict_clear(&v);

	/* The seller's own mail is never a notice, whatever it quotes. */
	fake_init(&f, "ops@shop.example", "Appeal",
	    "Please reinstate: the rights owner retracted the trademark complaint.\n"
	    "ASIN: B0CR3M8W5T\nComplaint ID: 12904418236\n");
	f.m.to_addrs = (char *[]){ "notice-dispute@amazon.com", NULL };
	rules_classify(samples_rules, samples_conf, &f.m, &v);
	assert_int_equal(v.kind, KIND_OTHER);
	verdict_clear(&v);
	fake_free(&f);

	/* A forwarded notice inline is a copy: the marker ends the mail's own text. */
	fake_init(&f, "jonas@shop.example", "Fwd: Notice: Policy Warning",
	    "see below\n\n---------- Forwarded message ---------\nFrom: notice-dispute@amazon.com\n"
	    "A rights owner reported that your listing may infringe their trademark.\n"
	    "ASIN: B0CR3M8W5T\nComplaint ID: 12904418236\n");
	rules_classify(samples_rules, samples_conf, &f.m, &v);
	assert_int_equal(v.kind, KIND_OTHER);
	assert_null(v.complaint_id);
	verdict_clear(&v);
	fake_free(&f);

	/* Notice-shaped but failing authentication: phishing, fields still filled. */
	fake_init(&f, "notice-dispute@amazon.com", "Notice: Policy Warning",
	    "A rights owner reported that your listing may infringe their trademark.\n"
	    "ASIN: B0CR3M8W5T\nComplaint ID: 3390117458\n");
	f.ar[0][0] = 'X';	/* no longer our authserv-id */
	rules_classify(samples_rules, samples_conf, &f.m, &v);
	assert_int_equal(v.kind, KIND_PHISHING);
	assert_false(v.authentic);
	assert_string_equal(v.complaint_id, "3390117458");
	assert_string_equal(v.infringement_type, "trademark");
	verdict_clear(&v);
	fake_free(&f);

	assert_string_equal(kind_name(KIND_APEX), "apex");
	assert_int_equal(kind_from_name("account_warning"), KIND_ACCOUNT_WARNING);
	assert_int_equal((int)kind_from_name("nonsense"), -1);
}

static void
test_prescreen(void **state)
{
	struct fake	f;

	(void)state;
	fake_init(&f, "notice-dispute@amazon.com", "anything", "");
	assert_true(rules_prescreen(samples_rules, &f.m));
	fake_free(&f);
	fake_init(&f, "noreply@amaz0n-support.example", "Hi", "");
	assert_true(rules_prescreen(samples_rules, &f.m));
	fake_free(&f);
	fake_init(&f, "legal@owner.example", "Re: complaint 12904418236", "");
	assert_true(rules_prescreen(samples_rules, &f.m));
	fake_free(&f);
	fake_init(&f, "lucia@example.com", "Dinner on Saturday?", "");
	assert_false(rules_prescreen(samples_rules, &f.m));
	fake_free(&f);
}

/*
 * The subject pre-screen skips patterns none of whose literals is in the
 * subject: it must answer exactly as running every pattern does.
 */
static void
assert_screen_same(const struct rules *r, const char *subject)
{
	bool	fast = rules_prescreen_subject(r, subject, false);
	bool	slow = rules_prescreen_subject(r, subject, true);

	if (fast != slow)
		fail_msg("pre-screen of \"%s\": %d with literals, %d pattern by pattern",
		    subject, fast, slow);
}

/* subject, and the same in lower and in upper case. */
static size_t
assert_screen_cases(const struct rules *r, const char *subject)
{
	char	*s = xstrdup(subject), *p;

	assert_screen_same(r, s);
	for (p = s; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	assert_screen_same(r, s);
	for (p = s; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	assert_screen_same(r, s);
	free(s);
	return 3;
}

static size_t
screen_corpus_dir(const char *dir)
{
	struct message	*m;
	struct dirent	*de;
	DIR		*d;
	char		*path, *raw;
	size_t		 len, n = 0;

	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ".eml") == NULL)
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		raw = file_read(path, 1 << 22, &len);
		free(path);
		assert_non_null(raw);
		m = message_parse(raw, len, true, false);
		n += assert_screen_cases(samples_rules, m->subject != NULL ? m->subject : "");
		message_free(m);
		free(raw);
	}
	closedir(d);
	return n;
}

static void
test_prescreen_literals(void **state)
{
	static const char *const subjects[] = {
		"", "Hi", "Dinner on Saturday?", "refund invoice #4242",
		"order shipment weekly report 12345678", "Notice: Policy Warning",
		"Re: complaint 12904418236", "Complaint ID: 1234567", "complaints",
		"Submission ID 12345678", "Beschwerdenummer: 12345678",
		"Meldung-ID 1234567", "id de la réclamation 1234567",
		"n° de réclamation 1234567", "no de plainte 1234567",
		"Réclamation n° 1234567", "numero del reclamo 1234567",
		"N.º de reclamación 1234567", "segnalazione n. 1234567",
		"klacht-id 1234567", "Reklamacja nr 1234567", "Şikayet 1234567",
		"申し立て番号 1234567", "申立番号: 1234567", "Your APEX claim",
		"apex", "selling privileges removed", "SELLING\tPRIVILEGES",
		"trade mark", "trademark", "Infringement notice", "intellectual property complaint",
		"propriété intellectuelle", "proprietà intellettuale", "intrång",
		"klagomål", "violação", "ſubmission 12345678", "\xe2\x84\xaaLACHT 1234567",
		"desactivado", "réactivé", "avviso", "ADVERTENCIA", "ポリシー違反",
		"知的財産", "id", "no", "n", "numer", "identyfikator 1234567",
		"caf\xc3", "bad \xff utf-8 complaint 1234567",
	};
	size_t	i, n = 0;

	(void)state;
	for (i = 0; i < NELEM(subjects); i++)
		n += assert_screen_cases(samples_rules, subjects[i]);
	n += screen_corpus_dir("tests/samples");
	n += screen_corpus_dir("tests/corpus");
	assert_true(n > 200);
	/* A few answers, to see that both ways do say something. */
	assert_true(rules_prescreen_subject(samples_rules, "Re: complaint 12904418236", false));
	assert_true(rules_prescreen_subject(samples_rules, "Notice: Policy Warning", false));
	assert_false(rules_prescreen_subject(samples_rules, "Dinner on Saturday?", false));
}

/* Patterns the literals cannot be read from, or only in part: the same answers. */
static void
test_prescreen_literals_odd_patterns(void **state)
{
	static const char rules_text[] =
	    "rule_settings = { prescreen_subject = [\n"
	    "  \"(?x) a b c\", \"x(?:yz)?w\", \"(?:ab|)q\", \"[[:alpha:]|]z\",\n"
	    "  \"\\\\Qm|n\\\\E\", \"(*UCP)abc\", \"ab+c\", \"(?i)Foo|bar\",\n"
	    "  \"\\\\bword\\\\b|(?<g>grp)x\", \"ſtop\", \"é+x\", \"(?=look)l\", \"^start|\\\\.dot\",\n"
	    "  \"(ab)\\\\1|zz\", \"(?:u|v)?t\", \"kelvin|(?-i:Case)\", \"(?<=y)es\", \"\\\\x41\\\\x42\"\n"
	    "]; };\n"
	    "rules = ( { name = \"r\"; kind = \"ip_notice\"; subject = \"héllo|(?:hi|ho)there\"; } );\n";
	static const char *const subjects[] = {
		"", "abc", "a b c", "xw", "xyzw", "w", "q", "abq", "|z", "az", "m|n",
		"mn", "ABC", "abbbc", "ac", "FOO", "bar", "word", "grpx", "stop",
		"\xc5\xbftop", "STOP", "\xc3\xa9x", "ex", "lookl", "look", "start",
		"a\nstart", "x.dot", "abab", "zz", "t", "ut", "KELVIN",
		"\xe2\x84\xaa" "elvin", "case", "Case", "yes", "es", "AB", "ab",
		"hello", "h\xc3\xa9llo", "H\xc3\x89LLO", "hithere", "HOTHERE", "there",
	};
	char		 dir[] = "/tmp/test_rules.XXXXXX", *path;
	struct conf	*conf;
	struct rules	*r;
	size_t		 i;

	(void)state;
	path = write_rules_conf(dir, rules_text);
	assert_non_null(conf = conf_load(path));
	assert_non_null(r = rules_load(conf));
	for (i = 0; i < NELEM(subjects); i++)
		assert_screen_cases(r, subjects[i]);
	assert_true(rules_prescreen_subject(r, "xw", false));
	assert_true(rules_prescreen_subject(r, "q", false));
	assert_true(rules_prescreen_subject(r, "abc", false));
	assert_true(rules_prescreen_subject(r, "\xc5\xbftop", false));
	assert_true(rules_prescreen_subject(r, "HOTHERE", false));
	assert_false(rules_prescreen_subject(r, "ex", false));
	rules_free(r);
	conf_free(conf);
	free(path);
	testutil_rm_tree(dir);
}

/* ---- Match limits ---------------------------------------------------- */

static void
test_match_limit(void **state)
{
	char		 dir[] = "/tmp/test_rules.XXXXXX", *path, *text;
	struct conf	*conf;
	struct rules	*r;
	struct verdict	 v = { 0 };
	struct fake	 f;
	struct timespec	 t0, t1;
	FILE		*fp;
	size_t		 n = 20000;
	double		 secs;

	(void)state;
	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/r.conf", dir);
	assert_non_null(fp = fopen(path, "w"));
	/* Nested quantifiers: exponential backtracking on "aaa...ab". */
	fputs("rule_settings = { match_limit = 100000; };\n"
	    "rules = ( { name = \"slow\"; kind = \"ip_notice\"; body = \"^(a+)+$\"; },\n"
	    "  { name = \"fine\"; kind = \"other\"; body = \"b$\"; } );\n", fp);
	fclose(fp);
	free(path);
	path = xasprintf("%s/main.conf", dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs(base_conf, fp);
	fclose(fp);
	conf = conf_load(path);
	assert_non_null(conf);
	r = rules_load(conf);
	assert_non_null(r);

	text = xmalloc(n + 2);
	memset(text, 'a', n);
	text[n] = 'b';
	text[n + 1] = '\0';
	fake_init(&f, "notice-dispute@amazon.com", "x", text);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rules_classify(r, conf, &f.m, &v);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* The runaway pattern gave up (no match); the next rule still ran. */
	assert_string_equal(v.rule, "fine");
	assert_int_equal(v.kind, KIND_OTHER);
	if (secs > 5.0)
		fail_msg("the match limit did not stop the pattern: %.1f s", secs);
	verdict_clear(&v);
	fake_free(&f);
	free(text);
	rules_free(r);
	conf_free(conf);
	free(path);
	testutil_rm_tree(dir);
}

/* ---- Reasons, unverified mail, links, built-in defaults ---------------- */

static const char notice_text[] =
    "We removed some of your listings because we received a report from a "
    "rights owner that they may infringe the rights owner's trademark.\n"
    "Go to Account Health (https://sellercentral.amazon.com/performance/dashboard).\n"
    "These are the rights owner's contact details:\n"
    "-- Halvorsen Tool Co.\n-- legal@halvorsentools.example.com\n"
    "ASIN: B0CR3M8W5T\nInfringement type: Trademark\nComplaint ID: 12904418236\n";

static bool
has_reason(const struct verdict *v, const char *prefix)
{
	char *const	*p;

	for (p = v->reasons; p != NULL && *p != NULL; p++)
		if (strncmp(*p, prefix, strlen(prefix)) == 0)
			return true;
	return false;
}

static void
test_reasons(void **state)
{
	struct verdict	 v = { 0 };
	struct fake	 f;

	(void)state;
	classify_text("notice-dispute@amazon.com", "Notice: Policy Warning", notice_text, &v);
	assert_int_equal(v.kind, KIND_IP_NOTICE);
	assert_true(v.authentic);
	assert_false(v.unverified);
	assert_string_equal(v.reasons[0], "rule ip_notice matched (kind ip_notice)");
	assert_true(has_reason(&v, "dmarc=pass dkim=amazon.com"));
	verdict_clear(&v);

	/* A spoof: the reasons say which rule and every trait. */
	fake_init(&f, "notice-dispute@amazon.com", "Notice: Policy Warning", notice_text);
	free(f.ar[0]);
	f.ar[0] = xstrdup("mx.seller-mail.example; dkim=none; dmarc=fail header.from=amazon.com");
	f.m.reply_to_addr = "appeals@amazon-case-review.test";
	rules_classify(samples_rules, samples_conf, &f.m, &v);
	assert_int_equal(v.kind, KIND_PHISHING);
	assert_true(has_reason(&v, "rule ip_notice matched"));
	assert_true(has_reason(&v, "Reply-To outside Amazon: amazon-case-review.test"));
	assert_true(has_reason(&v, "dmarc=fail for amazon.com"));
	assert_true(has_reason(&v, "phishing: shaped like ip_notice"));
	verdict_clear(&v);
	fake_free(&f);

	/* Mail no rule matches says so. */
	classify_text("lucia@example.com", "Cena", "Hola", &v);
	assert_true(has_reason(&v, "no rule matched"));
	verdict_clear(&v);
}

static void
test_unverified(void **state)
{
	char		*none_ids[] = { "none", NULL };
	struct verdict	 v = { 0 };
	struct fake	 f;
	char		*text;

	(void)state;
	/* No Authentication-Results at all: a notice from Amazon's domain stays one. */
	fake_init(&f, "notice-dispute@amazon.com", "Notice: Policy Warning", notice_text);
	f.ar[1] = NULL;
	free(f.ar[0]);
	f.ar[0] = NULL;
	rules_classify_ids(samples_rules, none_ids, &f.m, &v);
	assert_int_equal(v.kind, KIND_IP_NOTICE);
	assert_true(v.unverified);
	assert_false(v.authentic);
	assert_string_equal(v.complaint_id, "12904418236");
	assert_true(has_reason(&v, "unverified:"));
	verdict_clear(&v);

	/* A header the sender wrote proves nothing, even one claiming the id "none". */
	f.ar[0] = xstrdup("none; dkim=pass header.d=amazon.com; dmarc=pass header.from=amazon.com");
	rules_classify_ids(samples_rules, none_ids, &f.m, &v);
	assert_int_equal(v.kind, KIND_IP_NOTICE);
	assert_true(v.unverified);
	verdict_clear(&v);

	/* A foreign Reply-To is still phishing. */
	f.m.reply_to_addr = "appeals@case-review.example";
	rules_classify_ids(samples_rules, none_ids, &f.m, &v);
	assert_int_equal(v.kind, KIND_PHISHING);
	assert_false(v.unverified);
	verdict_clear(&v);
	f.m.reply_to_addr = NULL;

	/* So is a link outside Amazon. */
	text = xasprintf("%sDownload the evidence: https://storage.googleapis.com/c/12904418236.zip\n",
	    notice_text);
	f.m.text = text;
	f.m.text_len = strlen(text);
	rules_classify_ids(samples_rules, none_ids, &f.m, &v);
	assert_int_equal(v.kind, KIND_PHISHING);
	assert_true(has_reason(&v, "link to a host outside Amazon: storage.googleapis.com"));
	verdict_clear(&v);
	fake_free(&f);
	free(text);

	/* And a look-alike sender. */
	fake_init(&f, "notice@amazon-seller-notices.example", "Notice: Policy Warning", notice_text);
	rules_classify_ids(samples_rules, none_ids, &f.m, &v);
	assert_int_equal(v.kind, KIND_PHISHING);
	verdict_clear(&v);
	fake_free(&f);

	/* Ordinary mail is merely unverified, never phishing. */
	fake_init(&f, "lucia@example.com", "Cena", "Hola");
	rules_classify_ids(samples_rules, none_ids, &f.m, &v);
	assert_int_equal(v.kind, KIND_OTHER);
	assert_true(v.unverified);
	verdict_clear(&v);
	fake_free(&f);
}

static void
test_links_in_notices(void **state)
{
	struct verdict	 v = { 0 };
	char		*text;

	(void)state;
	/* Authenticated, but the link text shows Amazon and the link goes elsewhere. */
	text = xasprintf("%sAppeal here: https://sellercentral.amazon.com/appeal "
	    "(https://seller-appeals.example.net/login)\n", notice_text);
	classify_text("notice-dispute@amazon.com", "Notice: Policy Warning", text, &v);
	assert_int_equal(v.kind, KIND_PHISHING);
	assert_false(v.authentic);
	assert_true(has_reason(&v, "link text shows an Amazon host but the link goes to "
	    "seller-appeals.example.net"));
	verdict_clear(&v);
	free(text);

	/* A plain foreign link in an authenticated notice is a reason, not a verdict. */
	text = xasprintf("%sOur guide: https://help.example.org/ip\n", notice_text);
	classify_text("notice-dispute@amazon.com", "Notice: Policy Warning", text, &v);
	assert_int_equal(v.kind, KIND_IP_NOTICE);
	assert_true(v.authentic);
	assert_true(has_reason(&v, "link to a host outside Amazon: help.example.org"));
	verdict_clear(&v);
	free(text);

	/* Links in mail that is no notice change nothing. */
	classify_text("news@marketplacemonday.example.com", "Weekly",
	    "Read https://sellercentral.amazon.com/news (https://track.example.com/c/1)\n", &v);
	assert_int_equal(v.kind, KIND_OTHER);
	verdict_clear(&v);
}

static void
test_builtin_defaults(void **state)
{
	struct conf	*conf;
	struct rules	*r;
	struct verdict	 v = { 0 };
	struct fake	 f;
	char		*shipped;
	size_t		 len;

	(void)state;
	/* The embedded copy is the shipped file as it is now. */
	shipped = file_read("conf/rules.conf", 1 << 22, &len);
	assert_non_null(shipped);
	assert_int_equal(len, rules_default_len);
	assert_memory_equal(shipped, rules_default_text, len);
	free(shipped);

	conf = conf_builtin();
	assert_non_null(conf);
	assert_int_equal(conf->nerrors, 0);
	assert_int_equal(conf->naccounts, 0);
	assert_non_null(conf->amazon_domains);
	r = rules_load_default(conf);
	assert_non_null(r);
	fake_init(&f, "notice-dispute@amazon.co.uk", "Notice: Policy Warning", notice_text);
	rules_classify(r, conf, &f.m, &v);
	assert_int_equal(v.kind, KIND_IP_NOTICE);
	assert_true(v.authentic);
	assert_string_equal(v.marketplace, "uk");
	assert_string_equal(v.rights_owner_email, "legal@halvorsentools.example.com");
	verdict_clear(&v);
	fake_free(&f);
	rules_free(r);

	/* Broken text is reported, not crashed on. */
	assert_null(rules_load_text(conf, "broken.conf", "rules = ( {", 11));
	assert_true(conf->nerrors > 0);
	conf_free(conf);
}

static void
test_authserv_none_alone(void **state)
{
	static const char bad[] =
	    "accounts = ( { name = \"shop\"; host = \"127.0.0.1\"; tls = \"none\"; port = 143;\n"
	    "  user = \"u\"; password_file = \"p\"; authserv_ids = [ \"mx.example\", \"none\" ]; } );\n"
	    "smtp = { url = \"smtp://127.0.0.1:2525\"; from = \"a@shop.example\"; to = \"b@shop.example\"; };\n";
	char		 path[] = "/tmp/test_rules_none.XXXXXX";
	struct conf	*conf;
	int		 fd, saved, devnull;

	(void)state;
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, bad, sizeof(bad) - 1), (ssize_t)(sizeof(bad) - 1));
	close(fd);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	devnull = open("/dev/null", O_WRONLY);
	dup2(devnull, STDERR_FILENO);
	close(devnull);
	conf = conf_load(path);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	assert_non_null(conf);
	assert_int_equal(conf->nerrors, 1);
	conf_free(conf);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_pattern_file_line),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_multi_asin_layouts),
		cmocka_unit_test(test_type_mapping),
		cmocka_unit_test(test_marketplace_mapping),
		cmocka_unit_test(test_marketplace_of_mail),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_prescreen),
		cmocka_unit_test(test_prescreen_literals),
		cmocka_unit_test(test_prescreen_literals_odd_patterns),
		cmocka_unit_test(test_match_limit),
		cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_unverified),
		cmocka_unit_test(test_links_in_notices),
		cmocka_unit_test(test_builtin_defaults),
		cmocka_unit_test(test_authserv_none_alone),
	};

	return cmocka_run_group_tests_name("rules", tests, group_setup, group_teardown);
}
