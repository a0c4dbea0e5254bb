/* test_message.c — message.c: the sample corpus, charsets, HTML, hostile mail, limits and the fetcher-socket record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gmime/gmime.h>
#include <libxml/parser.h>

#include "conf.h"
#include "mime.h"
#include "msgid.h"
#include "util.h"

#define MIME_DIR	"tests/mime"
#define SAMPLE_DIR	MIME_DIR "/samples"

/* Every hostile input must be dealt with in about this much time (sanitizers slow everything down). */
#ifdef __SANITIZE_ADDRESS__
#define HOSTILE_MAX_MS	10000
#else
#define HOSTILE_MAX_MS	2000
#endif

static struct message *
parse_file(const char *path, bool keep_raw)
{
	struct message	*m;
	size_t		 len;
	char		*raw = file_read(path, 64 * 1024 * 1024, &len);

	if (raw == NULL)
		fail_msg("cannot read %s", path);
	m = message_parse(raw, len, false, keep_raw);
	free(raw);
	return m;
}

static struct message *
sample(const char *name)
{
	char		 path[512];
	struct dirent	*de;
	DIR		*d = opendir(SAMPLE_DIR);

	assert_non_null(d);
	path[0] = '\0';
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, name, strlen(name)) == 0)
			snprintf(path, sizeof(path), "%s/%s", SAMPLE_DIR, de->d_name);
	closedir(d);
	if (path[0] == '\0')
		fail_msg("no sample %s", name);
	return parse_file(path, true);
}

static struct message *
parse_str(const char *s)
{
	return message_parse(s, strlen(s), false, true);
}

static void
assert_contains(const char *hay, const char *needle)
{
	if (hay == NULL || strstr(hay, needle) == NULL)
		fail_msg("\"%s\" not found in:\n%s", needle, hay ? hay : "(null)");
}

static void
assert_not_contains(const char *hay, const char *needle)
{
	if (hay != NULL && strstr(hay, needle) != NULL)
		fail_msg("\"%s\" unexpectedly found in:\n%s", needle, hay);
}

/* What must hold for any parse result, hostile or not. */
static void
assert_sane(const struct message *m)
{
	size_t	i;

	assert_non_null(m);
	assert_non_null(m->dedupe_key);
	assert_non_null(m->to_addrs);
	assert_non_null(m->references);
	assert_non_null(m->auth_results);
	assert_non_null(m->content_type);
	if (m->text != NULL) {
		assert_int_equal(strlen(m->text), m->text_len);
		assert_true(utf8_valid(m->text, m->text_len));
		assert_true(m->text_len <= MESSAGE_MAX_TEXT);
	} else
		assert_true(m->flags & MSG_NO_BODY);
	if (m->forwarded_text != NULL) {
		assert_int_equal(strlen(m->forwarded_text), m->forwarded_len);
		assert_true(utf8_valid(m->forwarded_text, m->forwarded_len));
	}
	if (m->subject != NULL) {
		assert_null(strpbrk(m->subject, "\r\n\t"));
		assert_true(utf8_valid(m->subject, strlen(m->subject)));
	}
	for (i = 0; m->auth_results[i] != NULL; i++)
		assert_null(strpbrk(m->auth_results[i], "\r\n"));
}

static int64_t
elapsed_ms(const struct timespec *t0)
{
	struct timespec	t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (int64_t)(t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* message_parse, timed: adds the milliseconds it took to *ms. */
static struct message *
timed_parse(const char *raw, size_t len, bool headers_only, int64_t *ms)
{
	struct timespec	 t0;
	struct message	*m;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	m = message_parse(raw, len, headers_only, false);
	*ms += elapsed_ms(&t0);
	return m;
}

static void
test_samples_all_parse(void **state)
{
	DIR		*d = opendir(SAMPLE_DIR);
	struct dirent	*de;
	struct message	*m;
	char		 path[512];
	int		 n = 0;

	(void)state;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ".eml") == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", SAMPLE_DIR, de->d_name);
		m = parse_file(path, true);
		assert_sane(m);
		if (m->from_addr == NULL || !address_valid(m->from_addr))
			fail_msg("%s: from %s", de->d_name, m->from_addr ? m->from_addr : "(null)");
		assert_non_null(m->subject);
		assert_true(m->date > 1700000000);
		assert_non_null(m->message_id);
		assert_string_equal(m->dedupe_key, m->message_id);
		assert_non_null(m->to_addrs[0]);
		assert_non_null(m->text);
		if (m->text_len < 20)
			fail_msg("%s: text too short: %s", de->d_name, m->text);
		if (m->flags != 0)
			fail_msg("%s: flags %#x", de->d_name, m->flags);
		message_free(m);
		n++;
	}
	closedir(d);
	assert_int_equal(n, 25);
}

static void
test_s01(void **state)
{
	struct message	*m = sample("s01_");
	char		*v;

	(void)state;
	assert_string_equal(m->from_addr, "notice-dispute@amazon.com");
	assert_null(m->from_name);
	assert_string_equal(m->subject, "Notice: Policy Warning");
	assert_string_equal(m->message_id,
	    "01000191dc97d018-3cede2dc-7ef0-f1e5-6d4e-4e9cdf5d8030-000000@email.amazonses.com");
	assert_string_equal(m->return_path,
	    "01000191dc97d018-3cede2dc-7ef0-f1e5-6d4e-4e9cdf5d8030-000000@amazonses.com");
	assert_int_equal(m->date, 1725982822);
	assert_string_equal(m->to_addrs[0], "ops@shop.example");
	assert_null(m->to_addrs[1]);
	assert_string_equal(m->content_type, "multipart/alternative");
	assert_contains(m->text, "ASIN: B0CR3M8W5T");
	assert_contains(m->text, "ASIN: B0CR3P2KXD");
	/* Soft line breaks of quoted-printable are joined. */
	assert_contains(m->text, "if you want to understand the rules better");
	/* The plain alternative was taken, not the HTML one. */
	assert_not_contains(m->text, "<p>");
	assert_null(m->forwarded_text);
	assert_non_null(m->auth_results[0]);
	assert_null(m->auth_results[1]);
	assert_true(strncmp(m->auth_results[0], "mx.seller-mail.example;", 23) == 0);
	assert_contains(m->auth_results[0], "dmarc=pass (p=QUARANTINE sp=QUARANTINE dis=NONE) header.from=amazon.com");
	assert_null(m->auto_submitted);
	assert_false(m->has_list_id);
	assert_null(m->in_reply_to);
	assert_null(m->references[0]);
	v = message_header(m, "x-ses-outgoing");
	assert_string_equal(v, "2024.09.10-54.240.93.100");
	free(v);
	v = message_header(m, "Content-Type");
	assert_string_equal(v, "multipart/alternative; boundary=\"----=_Part_344142_258225443.1096459419206\"");
	free(v);
	assert_null(message_header(m, "X-Not-There"));
	message_free(m);
}

static void
test_s04_base64(void **state)
{
	struct message	*m = sample("s04_");

	(void)state;
	assert_string_equal(m->from_addr, "notice-dispute@amazon.co.uk");
	assert_string_equal(m->from_name, "Amazon.co.uk");
	assert_contains(m->text, "Complaint ID: 13877120954");
	assert_contains(m->text, "ASIN: B0CF8N1QWX");
	assert_contains(m->text, "ASIN: B0CF8Q7HZM");
	assert_contains(m->text, "ASIN: B0CF8S3LJV");
	message_free(m);
}

static void
test_s05_s07_latin1_qp(void **state)
{
	struct message	*m = sample("s05_");

	(void)state;
	assert_contains(m->text, "Beschwerdenummer: 11563309481");
	assert_contains(m->text, "unten aufgeführten Angebots");
	assert_contains(m->text, "Urheberrecht verletzen könnten");
	assert_contains(m->text, "Rücknahme");
	assert_int_equal(m->flags & MSG_BAD_CHARSET, 0);
	message_free(m);

	m = sample("s07_");
	assert_string_equal(m->subject, "Avis : avertissement relatif aux politiques");
	assert_contains(m->text, "-- Érablière Saint-Aubin inc.");
	assert_contains(m->text, "Nous avons retiré certaines de vos offres");
	assert_contains(m->text, "Bonbons à l'érable, boîte de 24");
	assert_contains(m->text, "ID de la réclamation : 12660394105");
	message_free(m);
}

static void
test_s06_rfc2047_subject(void **state)
{
	struct message	*m = sample("s06_");

	(void)state;
	assert_string_equal(m->subject, "Avis : avertissement relatif aux règles");
	assert_string_equal(m->from_name, "Amazon.fr");
	assert_contains(m->text, "ID de la réclamation : 14408812576");
	assert_contains(m->text, "-- Orfèvrerie Castelnau");
	message_free(m);
}

static void
test_s08_iso2022jp(void **state)
{
	struct message	*m = sample("s08_");

	(void)state;
	assert_string_equal(m->subject, "【Amazon.co.jp】ポリシー違反の警告");
	assert_contains(m->text, "申し立て番号: 16340077215");
	assert_contains(m->text, "- 株式会社ハルカ写真事務所");
	assert_contains(m->text, "侵害の種類: 著作権(画像)");
	assert_int_equal(m->flags & MSG_BAD_CHARSET, 0);
	message_free(m);
}

static void
test_s24_inline_forward(void **state)
{
	struct message	*m = sample("s24_");

	(void)state;
	assert_string_equal(m->from_name, "Jonas Berg");
	assert_contains(m->text, "FYI - see below, forwarded from the UK account inbox.");
	assert_contains(m->text, "Jonas");
	assert_not_contains(m->text, "13877120954");
	assert_not_contains(m->text, "Original Message");
	assert_non_null(m->forwarded_text);
	assert_contains(m->forwarded_text, "-------- Original Message --------");
	assert_contains(m->forwarded_text, "Complaint ID: 13877120954");
	assert_contains(m->forwarded_text, "ASIN: B0CF8N1QWX");
	message_free(m);
}

/* An Outlook reply quotes with "-----Original Message-----" too: that is not a forward. */
static void
test_s16_reply_quote_stays(void **state)
{
	struct message	*m = sample("s16_");

	(void)state;
	assert_contains(m->text, "we will review them within 5 business days");
	assert_contains(m->text, "-----Original Message-----");
	assert_null(m->forwarded_text);
	assert_string_equal(m->in_reply_to, "3e7f1a90-2b6c-4d8e-a1f0-9c2d4e6b8a13@shop.example");
	assert_string_equal(m->references[0], "3e7f1a90-2b6c-4d8e-a1f0-9c2d4e6b8a13@shop.example");
	message_free(m);
}

static void
test_attached_rfc822(void **state)
{
	struct message	*m;

	(void)state;
	m = parse_str(
	    "From: Jonas <jonas@shop.example>\r\n"
	    "To: ops@shop.example\r\n"
	    "Subject: see attached\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
	    "\r\n"
	    "--outer\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "\r\n"
	    "See the attached notice.\r\n"
	    "--outer\r\n"
	    "Content-Type: message/rfc822\r\n"
	    "Content-Disposition: attachment\r\n"
	    "\r\n"
	    "From: \"Amazon.com\" <notice-dispute@amazon.com>\r\n"
	    "Subject: Notice: Policy Warning\r\n"
	    "Date: Tue, 10 Sep 2024 15:40:22 +0000\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "\r\n"
	    "Complaint ID: 99999999999\r\n"
	    "--outer--\r\n");
	assert_sane(m);
	assert_string_equal(m->content_type, "multipart/mixed");
	assert_string_equal(m->text, "See the attached notice.");
	assert_non_null(m->forwarded_text);
	assert_contains(m->forwarded_text, "Subject: Notice: Policy Warning");
	assert_contains(m->forwarded_text, "notice-dispute@amazon.com");
	assert_contains(m->forwarded_text, "Complaint ID: 99999999999");
	assert_int_equal(m->flags, 0);
	message_free(m);
}

static void
test_html_only(void **state)
{
	struct message	*m = parse_file(MIME_DIR "/html_only.eml", false);

	(void)state;
	assert_sane(m);
	assert_string_equal(m->content_type, "text/html");
	assert_string_equal(m->from_addr, "Notice-Dispute@amazon.com");
	assert_string_equal(m->from_name, "Amazon Seller Central – Notices");
	assert_string_equal(m->return_path, "notice@amazon.com");
	assert_string_equal(m->message_id, "html-only-1@email.amazonses.com");
	assert_contains(m->text, "Hello,\n\nWe removed your listing. Café & Fish & Chips <ok>\n");
	assert_contains(m->text, "\nASIN: B0HTML1234\n");
	assert_contains(m->text, "\nComplaint ID: 12345678901\n");
	assert_contains(m->text, "Line one\nLine two\n\nLine three");
	assert_contains(m->text, "first item\nsecond item");
	assert_contains(m->text, "See Seller Help (https://sellercentral.amazon.com/help).");
	assert_not_contains(m->text, "script text");
	assert_not_contains(m->text, "color");
	assert_not_contains(m->text, "Ignored title");
	assert_not_contains(m->text, "comment");
	assert_not_contains(m->text, "\n\n\n");
	assert_int_equal(m->flags, 0);
	message_free(m);
}

static void
test_alternative_without_plain(void **state)
{
	struct message	*m;

	(void)state;
	m = parse_str(
	    "From: a@b.example\r\nSubject: alt\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/alternative; boundary=b1\r\n\r\n"
	    "--b1\r\nContent-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\r\n"
	    "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
	    "<p>ASIN: B0ALT00001</p><p>second</p>\r\n"
	    "--b1--\r\n");
	assert_sane(m);
	assert_string_equal(m->text, "ASIN: B0ALT00001\n\nsecond");
	assert_not_contains(m->text, "VCALENDAR");
	message_free(m);
}

static void
test_html_to_text_direct(void **state)
{
	size_t	 len;
	char	*t;

	(void)state;
	t = html_to_text("<table><tr><td>ASIN:</td><td>B0X</td></tr><tr><td>Title:</td>"
	    "<td>Thing &eacute;</td></tr></table>", 94, &len);
	assert_string_equal(t, "ASIN: B0X\nTitle: Thing é");
	assert_int_equal(len, strlen(t));
	free(t);
	t = html_to_text("<pre>a\n  b</pre>x", 17, &len);
	assert_string_equal(t, "a\n  b\n\nx");
	free(t);
	t = html_to_text("", 0, &len);
	assert_string_equal(t, "");
	assert_int_equal(len, 0);
	free(t);
}

static void
test_html_bomb(void **state)
{
	const size_t	 n = 100000;
	struct buf	 b = { 0 };
	struct timespec	 t0;
	struct message	*m;
	size_t		 i, len;
	char		*t, *mail;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	buf_puts(&b, "<p>before</p>");
	for (i = 0; i < n; i++)
		buf_puts(&b, "<div>");
	buf_puts(&b, "deep");
	for (i = 0; i < n; i++)
		buf_puts(&b, "</div>");
	t = html_to_text(b.data, b.len, &len);
	assert_true(utf8_valid(t, len));
	assert_contains(t, "before");
	free(t);

	mail = xasprintf("From: a@b.example\r\nSubject: bomb\r\nContent-Type: text/html\r\n\r\n%s",
	    b.data);
	m = parse_str(mail);
	assert_sane(m);
	assert_contains(m->text, "before");
	message_free(m);
	free(mail);
	buf_free(&b);

	/* Output is bounded, whatever the input. */
	for (i = 0; i < 300000; i++)
		buf_puts(&b, "0123456789 ");
	t = html_to_text(b.data, b.len, &len);
	assert_true(len <= MESSAGE_MAX_TEXT);
	assert_true(len > MESSAGE_MAX_TEXT / 2);
	free(t);
	buf_free(&b);
	assert_true(elapsed_ms(&t0) < HOSTILE_MAX_MS);
}

/* Converts UTF-8 to a charset with iconv, as a mailer in that charset would have written it. */
static char *
encode_as(const char *utf8, const char *charset, size_t *len)
{
	iconv_t	 cd = iconv_open(charset, "UTF-8");
	char	*in = (char *)(uintptr_t)utf8, *out, *op;
	size_t	 il = strlen(utf8), ol = il * 4 + 16;

	if (cd == (iconv_t)-1)
		fail_msg("iconv_open %s", charset);
	out = op = xmalloc(ol);
	if (iconv(cd, &in, &il, &op, &ol) == (size_t)-1 ||
	    iconv(cd, NULL, NULL, &op, &ol) == (size_t)-1)
		fail_msg("cannot encode test text as %s", charset);
	iconv_close(cd);
	*len = (size_t)(op - out);
	return out;
}

static void
test_charsets(void **state)
{
	static const struct {
		const char	*label;		/* as written in the mail */
		const char	*iconv;		/* how the test produces the bytes */
		const char	*text;
	} cases[] = {
		{ "utf-8", "UTF-8", "Beschwerde Nr. 1 – “ok” € 😀" },
		{ "us-ascii", "ASCII", "Complaint ID: 12345678901" },
		{ "iso-8859-1", "ISO-8859-1", "Müller, café, ½, Beschwerdenummer" },
		{ "ISO-8859-2", "ISO-8859-2", "Zażółć gęślą jaźń" },
		{ "iso-8859-15", "ISO-8859-15", "€ œ Ÿ Ž, coût" },
		{ "windows-1250", "WINDOWS-1250", "Příliš žluťoučký kůň" },
		{ "Windows-1252", "WINDOWS-1252", "“quotes” – € … Beschwerde" },
		{ "Shift_JIS", "SHIFT_JIS", "申し立て番号: 16340077215 株式会社" },
		{ "ISO-2022-JP", "ISO-2022-JP", "申し立て番号: 16340077215 株式会社" },
		{ "euc-jp", "EUC-JP", "申し立て番号: 16340077215 株式会社" },
		{ "gb2312", "GB2312", "投诉编号：12345 知识产权" },
		{ "gbk", "GBK", "投诉编号：12345 知识产权 镕" },
		{ "GB18030", "GB18030", "投诉编号：12345 知识产权 😀" },
		{ "big5", "BIG5", "投訴編號：12345 智慧財產權" },
		{ "euc-kr", "EUC-KR", "신고 번호: 12345 지식재산권" },
	};
	struct message	*m;
	struct buf	 b = { 0 };
	size_t		 i, len;
	char		*bytes, *want;
	gchar		*b64;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		bytes = encode_as(cases[i].text, cases[i].iconv, &len);
		b64 = g_base64_encode((const guchar *)bytes, len);
		buf_printf(&b, "From: a@b.example\r\nSubject: =?%s?B?%s?=\r\n"
		    "Content-Type: text/plain; charset=%s\r\n"
		    "Content-Transfer-Encoding: 8bit\r\n\r\n", cases[i].label, b64, cases[i].label);
		buf_append(&b, bytes, len);
		buf_puts(&b, "\r\n");
		m = message_parse(b.data, b.len, false, false);
		assert_sane(m);
		want = xasprintf("%s\n", cases[i].text);
		if (strcmp(m->text, want) != 0)
			fail_msg("%s body: got \"%s\"", cases[i].label, m->text);
		if (m->subject == NULL || strcmp(m->subject, cases[i].text) != 0)
			fail_msg("%s subject: got \"%s\"", cases[i].label,
			    m->subject ? m->subject : "(null)");
		if (m->flags != 0)
			fail_msg("%s: flags %#x", cases[i].label, m->flags);
		free(want);
		g_free(b64);
		free(bytes);
		buf_free(&b);
		message_free(m);
	}
}

static void
test_bad_charsets(void **state)
{
	struct message	*m;

	(void)state;
	/* Unknown charset: read as windows-1252, flagged. */
	m = parse_str("From: a@b.example\r\nContent-Type: text/plain; charset=x-unknown-42\r\n\r\ncaf\xe9\r\n");
	assert_sane(m);
	assert_string_equal(m->text, "café\n");
	assert_true(m->flags & MSG_BAD_CHARSET);
	message_free(m);

	/* A hostile charset name. */
	m = parse_str("From: a@b.example\r\nContent-Type: text/plain; charset=\"x-\xff\xfe\"\r\n\r\nabc\r\n");
	assert_sane(m);
	assert_string_equal(m->text, "abc\n");
	message_free(m);

	/* Invalid UTF-8 under a UTF-8 label: replaced, flagged. */
	m = parse_str("From: a@b.example\r\nSubject: bad \xff\xfe subject\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n\r\nabc\xff\xfe" "def\r\n");
	assert_sane(m);
	assert_string_equal(m->text, "abc\xef\xbf\xbd\xef\xbf\xbd" "def\n");
	assert_true(m->flags & MSG_BAD_CHARSET);
	assert_true(utf8_valid(m->subject, strlen(m->subject)));
	assert_contains(m->subject, "bad");
	message_free(m);

	/* Undeclared 8-bit text that is not UTF-8: windows-1252, flagged. */
	m = parse_str("From: a@b.example\r\n\r\nna\xefve\r\n");
	assert_string_equal(m->text, "naïve\n");
	assert_true(m->flags & MSG_BAD_CHARSET);
	message_free(m);

	/* Truncated multibyte sequence at the end of a Shift_JIS part. */
	m = parse_str("From: a@b.example\r\nContent-Type: text/plain; charset=shift_jis\r\n\r\nok\x82");
	assert_sane(m);
	assert_contains(m->text, "ok");
	assert_true(m->flags & MSG_BAD_CHARSET);
	message_free(m);
}

static void
test_nul_bytes(void **state)
{
	static const char raw[] = "From: a@b.example\r\nSubject: a\0b\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n\r\nx\0y\r\n";
	struct message	*m;

	(void)state;
	m = message_parse(raw, sizeof(raw) - 1, false, true);
	assert_sane(m);
	assert_string_equal(m->subject, "a b");
	assert_string_equal(m->text, "x y\n");
	assert_int_equal(m->raw_len, sizeof(raw) - 1);
	assert_memory_equal(m->raw, raw, sizeof(raw) - 1);
	message_free(m);
}

static void
test_broken_encodings(void **state)
{
	struct message	*m;

	(void)state;
	m = parse_str("From: a@b.example\r\nContent-Type: text/plain\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8g!!!d29y\r\nbGQ=====garbage*\r\n");
	assert_sane(m);
	assert_contains(m->text, "Hello");
	message_free(m);

	m = parse_str("From: a@b.example\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 =ZZ =\r\nend=4\r\n=");
	assert_sane(m);
	assert_contains(m->text, "café");
	assert_contains(m->text, "end");
	message_free(m);

	m = parse_str("From: a@b.example\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nplain\r\n");
	assert_sane(m);
	assert_contains(m->text, "plain");
	message_free(m);
}

/* boundary="\"" crashes libetpan's MIME parser (heap overflow). */
static void
test_boundary_quote(void **state)
{
	struct message	*m;

	(void)state;
	m = parse_str("From: a@b.example\r\nSubject: q\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"\\\"\"\r\n\r\n"
	    "--\"\r\nContent-Type: text/plain\r\n\r\ninside\r\n--\"--\r\n");
	assert_sane(m);
	assert_string_equal(m->subject, "q");
	assert_contains(m->text, "inside");
	message_free(m);

	m = parse_str("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n\r\nx\r\n");
	assert_sane(m);
	message_free(m);
	m = parse_str("From: a@b.example\r\nContent-Type: multipart/mixed\r\n\r\nno boundary\r\n");
	assert_sane(m);
	message_free(m);
}

static char *
nested_mail(size_t levels, bool rfc822, size_t *len)
{
	struct buf	b = { 0 };
	size_t		i;

	buf_puts(&b, "From: a@b.example\r\nSubject: deep\r\nMIME-Version: 1.0\r\n");
	for (i = 0; i < levels; i++) {
		if (rfc822)
			buf_printf(&b, "Content-Type: message/rfc822\r\n\r\nSubject: %zu\r\n", i);
		else
			buf_printf(&b, "Content-Type: multipart/mixed; boundary=\"b%zu\"\r\n\r\n"
			    "--b%zu\r\nContent-Type: text/plain\r\n\r\nlevel %zu\r\n--b%zu\r\n",
			    i, i, i, i);
	}
	buf_puts(&b, "Content-Type: text/plain\r\n\r\ndeep leaf\r\n");
	if (!rfc822)
		for (i = levels; i-- > 0;)
			buf_printf(&b, "--b%zu--\r\n", i);
	*len = b.len;
	return buf_steal(&b);
}

static void
test_nesting(void **state)
{
	int64_t		 ms = 0;
	struct message	*m;
	size_t		 len;
	char		*raw;

	(void)state;
	/* Within the limit: everything is read. */
	raw = nested_mail(20, false, &len);
	m = timed_parse(raw, len, false, &ms);
	assert_sane(m);
	assert_contains(m->text, "level 0");
	assert_contains(m->text, "level 19");
	assert_contains(m->text, "deep leaf");
	assert_int_equal(m->flags, 0);
	message_free(m);
	free(raw);

	/* 10,000 levels: cut at the limit, flagged, the shallow text kept. */
	raw = nested_mail(10000, false, &len);
	m = timed_parse(raw, len, false, &ms);
	assert_sane(m);
	assert_true(m->flags & MSG_TOO_DEEP);
	assert_string_equal(m->subject, "deep");
	assert_contains(m->text, "level 0");
	assert_contains(m->text, "level 30");
	assert_not_contains(m->text, "level 40");
	assert_not_contains(m->text, "deep leaf");
	message_free(m);
	free(raw);

	raw = nested_mail(10000, true, &len);
	m = timed_parse(raw, len, false, &ms);
	assert_sane(m);
	assert_true(m->flags & MSG_TOO_DEEP);
	assert_string_equal(m->subject, "deep");
	assert_not_contains(m->text, "deep leaf");
	message_free(m);
	free(raw);
	assert_true(ms < HOSTILE_MAX_MS);
}

static void
test_too_many_parts(void **state)
{
	int64_t		 ms = 0;
	struct message	*m;
	struct buf	 b = { 0 };
	size_t		 i;

	(void)state;
	buf_puts(&b, "From: a@b.example\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (i = 0; i < 100000; i++)
		buf_printf(&b, "--p\r\nContent-Type: text/plain\r\n\r\npart %zu\r\n", i);
	buf_puts(&b, "--p--\r\n");
	m = timed_parse(b.data, b.len, false, &ms);
	assert_sane(m);
	assert_true(m->flags & MSG_TOO_MANY_PARTS);
	assert_contains(m->text, "part 0\n");
	assert_contains(m->text, "part 100\n");
	assert_not_contains(m->text, "part 9999\n");
	message_free(m);
	buf_free(&b);
	assert_true(ms < HOSTILE_MAX_MS);
}

static void
test_many_header_lines(void **state)
{
	int64_t		 ms = 0;
	struct message	*m;
	struct buf	 b = { 0 };
	size_t		 i;

	(void)state;
	buf_puts(&b, "From: a@b.example\r\nSubject: many headers\r\n");
	for (i = 0; i < 100000; i++)
		buf_printf(&b, "X-Junk-%zu: %zu\r\n", i, i);
	buf_puts(&b, "Message-ID: <late@x.example>\r\n\r\nbody text\r\n");
	m = timed_parse(b.data, b.len, false, &ms);
	assert_sane(m);
	assert_true(m->flags & MSG_TOO_MANY_HEADERS);
	assert_string_equal(m->subject, "many headers");
	assert_null(m->message_id);
	assert_string_equal(m->text, "body text\n");
	assert_true(m->headers_len < b.len / 10);
	message_free(m);
	buf_free(&b);

	/* The same in a header block alone, as the fetcher's header pass sends it. */
	buf_puts(&b, "Subject: hdr\r\n");
	for (i = 0; i < 100000; i++)
		buf_puts(&b, " folded continuation\r\n");
	m = timed_parse(b.data, b.len, true, &ms);
	assert_sane(m);
	assert_true(m->flags & MSG_TOO_MANY_HEADERS);
	assert_true(m->flags & MSG_NO_BODY);
	message_free(m);
	buf_free(&b);
	assert_true(ms < HOSTILE_MAX_MS);
}

static void
test_huge_part(void **state)
{
	const size_t	 size = 50u * 1024 * 1024;
	static const char head[] = "From: a@b.example\r\nSubject: huge\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n\r\n";
	struct timespec	 t0;
	struct message	*m;
	char		*raw;
	size_t		 i;

	(void)state;
	raw = xmalloc(size);
	memcpy(raw, head, sizeof(head) - 1);
	for (i = sizeof(head) - 1; i < size; i++)
		raw[i] = (i % 64) == 63 ? '\n' : 'a';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	m = message_parse(raw, size, false, true);
	assert_true(elapsed_ms(&t0) < HOSTILE_MAX_MS);
	assert_sane(m);
	assert_true(m->flags & MSG_TRUNCATED);
	assert_string_equal(m->subject, "huge");
	assert_int_equal(m->raw_len, size);
	assert_true(m->text_len > 0 && m->text_len <= MESSAGE_MAX_TEXT);
	message_free(m);
	free(raw);
}

static void
test_long_ids(void **state)
{
	int64_t		 ms = 0;
	struct message	*m;
	struct buf	 b = { 0 };
	size_t		 i;

	(void)state;
	buf_puts(&b, "From: a@b.example\r\nMessage-ID: <");
	for (i = 0; i < 100 * 1024; i++)
		buf_puts(&b, "x");
	buf_puts(&b, "@long.example>\r\nReferences:");
	/* Ten ids a line keeps the block under MESSAGE_MAX_HEADER_LINES. */
	for (i = 0; i < 10000; i++)
		buf_printf(&b, " <id%zu@X.example>%s", i, i % 10 == 9 ? "\r\n" : "");
	buf_puts(&b, "\r\nbody\r\n");
	m = timed_parse(b.data, b.len, false, &ms);
	assert_sane(m);
	assert_null(m->message_id);
	assert_true(strncmp(m->dedupe_key, "sha256:", 7) == 0);
	assert_int_equal(strlen(m->dedupe_key), 7 + 64);
	assert_int_equal(strv_len(m->references), MSGID_MAX_REFS);
	assert_string_equal(m->references[0], "id9900@x.example");
	assert_string_equal(m->references[MSGID_MAX_REFS - 1], "id9999@x.example");
	message_free(m);
	buf_free(&b);
	assert_true(ms < HOSTILE_MAX_MS);
}

static void
test_garbage(void **state)
{
	static const char junk[] = "\x00\x01\x02 not a mail at all \xff\xfe\r\n\r\n\r\n--";
	struct message	*m;

	(void)state;
	m = message_parse(junk, sizeof(junk) - 1, false, true);
	assert_sane(m);
	message_free(m);
	m = message_parse("", 0, false, false);
	assert_sane(m);
	assert_non_null(m->text);
	message_free(m);
	m = message_parse(NULL, 0, true, false);
	assert_sane(m);
	message_free(m);
	m = parse_str("\r\n\r\nbody only");
	assert_sane(m);
	assert_contains(m->text, "body only");
	message_free(m);
}

static void
test_headers_decoded(void **state)
{
	struct message	*m;
	char		*v;

	(void)state;
	m = parse_str(
	    "Authentication-Results: mx.seller-mail.example;\r\n"
	    "\tdkim=pass header.d=amazon.com;\r\n"
	    "\tdmarc=pass header.from=amazon.com\r\n"
	    "Return-Path: <>\r\n"
	    "Authentication-Results: forged.example; dmarc=pass\r\n"
	    "From: =?UTF-8?B?w4lyYWJsacOocmU=?= <Legal@Saint-Aubin.TEST>\r\n"
	    "Reply-To: \"Help\" <Help@Look-Alike.Example>\r\n"
	    "To: undisclosed: one@a.example, Two@B.Example;, three@c.example\r\n"
	    "Cc: four@d.example\r\n"
	    "Subject: line one\r\n\tline\x01two =?ISO-8859-1?Q?caf=E9?=\r\n"
	    "Date: Tue, 10 Sep 2024 17:40:22 +0200\r\n"
	    "Message-ID: <ABC@Example.COM>\r\n"
	    "In-Reply-To: <first@x.example> <second@x.example>\r\n"
	    "Auto-Submitted: Auto-Replied\r\n"
	    "Precedence: Bulk\r\n"
	    "List-Unsubscribe: <mailto:u@x.example>\r\n"
	    "X-Folded: =?UTF-8?Q?r=C3=A8gle?=\r\n   continued\r\n"
	    "\r\nbody\r\n");
	assert_sane(m);
	assert_string_equal(m->from_addr, "Legal@saint-aubin.test");
	assert_string_equal(m->from_name, "Érablière");
	assert_string_equal(m->reply_to_addr, "Help@look-alike.example");
	assert_string_equal(m->return_path, "");
	assert_int_equal(strv_len(m->to_addrs), 4);
	assert_string_equal(m->to_addrs[0], "one@a.example");
	assert_string_equal(m->to_addrs[1], "Two@b.example");
	assert_string_equal(m->to_addrs[2], "three@c.example");
	assert_string_equal(m->to_addrs[3], "four@d.example");
	assert_string_equal(m->subject, "line one line two café");
	assert_int_equal(m->date, 1725982822);
	assert_string_equal(m->message_id, "ABC@example.com");
	assert_string_equal(m->dedupe_key, "ABC@example.com");
	assert_string_equal(m->in_reply_to, "first@x.example");
	assert_string_equal(m->auto_submitted, "auto-replied");
	assert_string_equal(m->precedence, "bulk");
	assert_true(m->has_list_id);
	assert_int_equal(strv_len(m->auth_results), 2);
	assert_string_equal(m->auth_results[0], "mx.seller-mail.example; dkim=pass "
	    "header.d=amazon.com; dmarc=pass header.from=amazon.com");
	assert_string_equal(m->auth_results[1], "forged.example; dmarc=pass");
	v = message_header(m, "x-folded");
	assert_string_equal(v, "règle continued");
	free(v);
	message_free(m);

	m = parse_str("From: a@b.example\r\nDate: not a date\r\n\r\nx");
	assert_int_equal(m->date, 0);
	assert_null(m->subject);
	message_free(m);
}

static void
test_headers_only(void **state)
{
	static const char hdr[] = "From: notice-dispute@amazon.com\r\nSubject: Notice\r\n"
	    "Content-Type: text/plain\r\n\r\n";
	struct message	*m;

	(void)state;
	m = message_parse(hdr, sizeof(hdr) - 1, true, false);
	assert_sane(m);
	assert_true(m->flags & MSG_NO_BODY);
	assert_null(m->text);
	assert_null(m->raw);
	assert_string_equal(m->subject, "Notice");
	assert_string_equal(m->from_addr, "notice-dispute@amazon.com");
	assert_string_equal(m->content_type, "text/plain");
	message_free(m);

	/* Given a whole message with headers_only, the body is ignored. */
	m = message_parse("Subject: s\r\n\r\nbody", 17, true, false);
	assert_null(m->text);
	message_free(m);
}

static void
test_rfc2231_and_attachments(void **state)
{
	struct message	*m;

	(void)state;
	m = parse_str("From: a@b.example\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n"
	    "--mix\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nthe body\r\n"
	    "--mix\r\nContent-Type: text/plain; name*=UTF-8''%E2%82%AC%20rates.txt\r\n"
	    "Content-Disposition: attachment; filename*0*=UTF-8''%E2%82%AC%20;\r\n"
	    " filename*1=\"rates.txt\"\r\n\r\nattached file text\r\n"
	    "--mix\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n"
	    "--mix--\r\n");
	assert_sane(m);
	/* The line break before a boundary belongs to the boundary (RFC 2046). */
	assert_string_equal(m->text, "the body");
	assert_int_equal(m->flags, 0);
	message_free(m);
}

static void
test_dedupe_without_message_id(void **state)
{
	static const char a[] = "From: a@b.example\r\nTo: c@d.example\r\nSubject: s\r\n"
	    "Date: Tue, 10 Sep 2024 15:40:22 +0000\r\n\r\nbody one\r\n";
	static const char b[] = "From: a@b.example\r\nTo: c@d.example\r\nSubject: s\r\n"
	    "Date: Tue, 10 Sep 2024 15:40:22 +0000\r\n\r\nbody two\r\n";
	struct message	*m1 = parse_str(a), *m2 = parse_str(a), *m3 = parse_str(b);

	(void)state;
	assert_true(strncmp(m1->dedupe_key, "sha256:", 7) == 0);
	assert_string_equal(m1->dedupe_key, m2->dedupe_key);
	assert_string_not_equal(m1->dedupe_key, m3->dedupe_key);
	message_free(m1);
	message_free(m2);
	message_free(m3);
}

static void
test_address_helpers(void **state)
{
	(void)state;
	assert_true(address_valid("user@Example.COM"));
	assert_true(address_valid("a.b+c@sub.example.co.uk"));
	assert_false(address_valid("user@example"));
	assert_false(address_valid("user example@x.com"));
	assert_false(address_valid("@x.com"));
	assert_false(address_valid("a@b@x.com"));
	assert_false(address_valid("a@x.com\r\nRCPT TO:<b@y.com>"));
	assert_false(address_valid("<a@x.com>"));
	assert_false(address_valid("a@.x.com"));
	assert_false(address_valid("a@x.com."));
	assert_false(address_valid(""));
	assert_false(address_valid(NULL));
	assert_string_equal(address_domain("user@Example.COM"), "Example.COM");
	assert_null(address_domain("nodomain"));
	assert_null(address_domain("x@"));
	assert_null(address_domain(NULL));
}

static void
assert_strv_equal(char **a, char **b)
{
	size_t	i;

	for (i = 0; a[i] != NULL || b[i] != NULL; i++) {
		assert_non_null(a[i]);
		assert_non_null(b[i]);
		assert_string_equal(a[i], b[i]);
	}
}

static void
assert_opt_str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void
assert_messages_equal(const struct message *a, const struct message *b)
{
	assert_opt_str_equal(a->from_addr, b->from_addr);
	assert_opt_str_equal(a->from_name, b->from_name);
	assert_opt_str_equal(a->reply_to_addr, b->reply_to_addr);
	assert_opt_str_equal(a->return_path, b->return_path);
	assert_strv_equal(a->to_addrs, b->to_addrs);
	assert_opt_str_equal(a->subject, b->subject);
	assert_int_equal(a->date, b->date);
	assert_opt_str_equal(a->message_id, b->message_id);
	assert_opt_str_equal(a->in_reply_to, b->in_reply_to);
	assert_strv_equal(a->references, b->references);
	assert_strv_equal(a->auth_results, b->auth_results);
	assert_opt_str_equal(a->auto_submitted, b->auto_submitted);
	assert_opt_str_equal(a->precedence, b->precedence);
	assert_int_equal(a->has_list_id, b->has_list_id);
	assert_opt_str_equal(a->content_type, b->content_type);
	assert_opt_str_equal(a->dedupe_key, b->dedupe_key);
	assert_int_equal(a->text_len, b->text_len);
	assert_opt_str_equal(a->text, b->text);
	assert_int_equal(a->forwarded_len, b->forwarded_len);
	assert_opt_str_equal(a->forwarded_text, b->forwarded_text);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->raw_len, b->raw_len);
	assert_true((a->raw == NULL) == (b->raw == NULL));
	if (a->raw != NULL)
		assert_memory_equal(a->raw, b->raw, a->raw_len);
	assert_int_equal(a->headers_len, b->headers_len);
	if (a->headers != NULL)
		assert_memory_equal(a->headers, b->headers, a->headers_len);
}

static struct message *
round_trip(const struct message *m, struct buf *b)
{
	struct reader	r;

	message_serialize(m, b);
	r.p = (const unsigned char *)b->data;
	r.left = b->len;
	r.bad = false;
	return message_deserialize(&r);
}

static void
test_serialize_round_trip(void **state)
{
	static const char nul_raw[] = "From: a@b.example\r\nSubject: a\0b\r\n\r\nx\0y\r\n";
	struct message	*ms[4], *back;
	struct buf	 b = { 0 };
	size_t		 i;
	char		*v;

	(void)state;
	ms[0] = sample("s01_");
	ms[1] = sample("s24_");
	ms[2] = message_parse(nul_raw, sizeof(nul_raw) - 1, false, true);
	ms[3] = message_parse("Subject: h\r\nX-A: 1\r\n", 20, true, false);
	for (i = 0; i < NELEM(ms); i++) {
		back = round_trip(ms[i], &b);
		assert_non_null(back);
		assert_messages_equal(ms[i], back);
		v = message_header(back, "Subject");
		assert_non_null(v);
		free(v);
		message_free(back);
		buf_free(&b);
		message_free(ms[i]);
	}
}

static void
test_serialize_truncated_and_corrupt(void **state)
{
	struct message	*m = sample("s01_"), *back;
	struct buf	 b = { 0 };
	struct reader	 r;
	size_t		 len, off;
	char		*copy;

	(void)state;
	message_serialize(m, &b);
	for (len = 0; len < b.len; len++) {
		r.p = (const unsigned char *)b.data;
		r.left = len;
		r.bad = false;
		back = message_deserialize(&r);
		if (back != NULL)
			fail_msg("a record cut to %zu of %zu bytes was accepted", len, b.len);
		assert_true(r.bad);
	}
	/* Wrong magic. */
	copy = xmalloc(b.len);
	memcpy(copy, b.data, b.len);
	copy[0] ^= 0x55;
	r.p = (const unsigned char *)copy;
	r.left = b.len;
	r.bad = false;
	assert_null(message_deserialize(&r));
	/* A NUL inside the from_addr string (right after magic and its length). */
	memcpy(copy, b.data, b.len);
	off = 4 + 4;
	copy[off + 3] = '\0';
	r.p = (const unsigned char *)copy;
	r.left = b.len;
	r.bad = false;
	assert_null(message_deserialize(&r));
	/* A huge length. */
	memcpy(copy, b.data, b.len);
	memset(copy + 4, 0xfe, 4);
	r.p = (const unsigned char *)copy;
	r.left = b.len;
	r.bad = false;
	assert_null(message_deserialize(&r));
	free(copy);
	buf_free(&b);
	message_free(m);
}

/*
 * The header fast paths of mime.c (simple address lists, subjects, dates,
 * content types) must decode exactly what GMime decodes.  Each input is
 * parsed twice, with and without them, and every field compared.
 */
static void
str_same(const char *what, const char *field, const char *a, const char *b, const char *in, size_t len)
{
	char	*shown;

	if ((a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0))
		return;
	shown = xstrndup(in, len);
	fail_msg("%s: %s: fast \"%s\" != GMime \"%s\" for input:\n%s", what, field,
	    a != NULL ? a : "(null)", b != NULL ? b : "(null)", shown);
}

static void
strv_same(const char *what, const char *field, char **a, char **b, const char *in, size_t len)
{
	size_t	i;

	for (i = 0; a[i] != NULL || b[i] != NULL; i++) {
		str_same(what, field, a[i], b[i], in, len);
		if (a[i] == NULL || b[i] == NULL)
			break;
	}
}

static void
parse_both(const char *what, const char *in, size_t len, bool headers_only)
{
	struct message	*f, *g;

	mime_set_fast_paths(true);
	f = message_parse(in, len, headers_only, true);
	mime_set_fast_paths(false);
	g = message_parse(in, len, headers_only, true);
	mime_set_fast_paths(true);
	str_same(what, "from_addr", f->from_addr, g->from_addr, in, len);
	str_same(what, "from_name", f->from_name, g->from_name, in, len);
	str_same(what, "reply_to_addr", f->reply_to_addr, g->reply_to_addr, in, len);
	str_same(what, "return_path", f->return_path, g->return_path, in, len);
	strv_same(what, "to_addrs", f->to_addrs, g->to_addrs, in, len);
	str_same(what, "subject", f->subject, g->subject, in, len);
	if (f->date != g->date)
		fail_msg("%s: date: fast %lld != GMime %lld for input:\n%.*s", what,
		    (long long)f->date, (long long)g->date, (int)len, in);
	str_same(what, "message_id", f->message_id, g->message_id, in, len);
	str_same(what, "in_reply_to", f->in_reply_to, g->in_reply_to, in, len);
	strv_same(what, "references", f->references, g->references, in, len);
	strv_same(what, "auth_results", f->auth_results, g->auth_results, in, len);
	str_same(what, "auto_submitted", f->auto_submitted, g->auto_submitted, in, len);
	str_same(what, "precedence", f->precedence, g->precedence, in, len);
	assert_int_equal(f->has_list_id, g->has_list_id);
	str_same(what, "content_type", f->content_type, g->content_type, in, len);
	str_same(what, "dedupe_key", f->dedupe_key, g->dedupe_key, in, len);
	str_same(what, "text", f->text, g->text, in, len);
	str_same(what, "forwarded_text", f->forwarded_text, g->forwarded_text, in, len);
	assert_int_equal(f->text_len, g->text_len);
	assert_int_equal(f->forwarded_len, g->forwarded_len);
	if (f->flags != g->flags)
		fail_msg("%s: flags: fast %#x != GMime %#x for input:\n%.*s", what,
		    f->flags, g->flags, (int)len, in);
	assert_int_equal(f->headers_len, g->headers_len);
	assert_memory_equal(f->headers, g->headers, f->headers_len);
	message_free(f);
	message_free(g);
}

/* Every value of every header field of a file, as each decoded field in turn. */
static void
values_as_fields(const char *path, const char *raw, size_t len)
{
	static const char *const names[] = { "From", "To", "Cc", "Reply-To", "Subject", "Date",
	    "Content-Type" };
	struct header_field	 hf;
	struct buf		 b = { 0 };
	size_t			 pos = 0, i;

	while (header_field_next(raw, len, &pos, &hf)) {
		buf_free(&b);
		for (i = 0; i < NELEM(names); i++) {
			buf_printf(&b, "%s:", names[i]);
			buf_append(&b, hf.value, hf.value_len);
			buf_puts(&b, "\r\n");
		}
		buf_puts(&b, "\r\n");
		parse_both(path, b.data, b.len, true);
	}
	buf_free(&b);
}

static void
diff_dir(const char *dir)
{
	struct dirent	*de;
	DIR		*d = opendir(dir);
	char		*path, *raw;
	size_t		 len, n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if ((raw = file_read(path, 64 * 1024 * 1024, &len)) != NULL) {
			parse_both(path, raw, len, true);
			parse_both(path, raw, len, false);
			values_as_fields(path, raw, len);
			free(raw);
			n++;
		}
		free(path);
	}
	closedir(d);
	assert_true(n > 0);
}

/* A small deterministic generator (xorshift64*). */
static uint64_t gen_state = 0x9e3779b97f4a7c15ULL;

static unsigned
gen(unsigned n)
{
	gen_state ^= gen_state >> 12;
	gen_state ^= gen_state << 25;
	gen_state ^= gen_state >> 27;
	return (unsigned)((gen_state * 0x2545f4914f6cdd1dULL) >> 33) % n;
}

#define PICK(a)	((a)[gen(NELEM(a))])

static const char *const gen_addrs[] = {
	"a@b.example", "John.Doe@Example.COM", "<x@y.example>", "Name <n@d.example>",
	"\"Last, First\" <lf@d.example>", "\"\" <e@d.example>", "John  Doe <jd@d.example>",
	"J. Doe <j@d.example>", "Amazon.com <seller@amazon.com>", "(comment) a@b.example",
	"a@b.example (comment)", "group: a@b.example, c@d.example;", "undisclosed-recipients:;",
	"=?UTF-8?B?w4RsZg==?= <e@d.example>", "\"=?utf-8?q?J=C3=B6rg?=\" <j@d.example>",
	"\"Quoted \\\" pair\" <q@d.example>", "\"a b\"@d.example", "user@[1.2.3.4]",
	"a..b@d.example", ".a@d.example", "a.@d.example", "a@d..example", "a@", "@d.example",
	"a", "<>", "<a@b.example", "a@b.example>", "Name <a@b.example> trailing",
	"Name<a@b.example>", "\"Name\"<a@b.example>", "Name\t<a@b.example>",
	"<a@xn--mnchen-3ya.de>", "xn--80ak6aa92e@xn--80ak6aa92e.com", "\xc3\x9cn\xc3\xaf <u@d.example>",
	"\xff\xfe <x@d.example>", "Name <a@B.EXAMPLE>", "MiXeD@CaSe.Example",
	"\"(not a comment)\" <p@d.example>", "\"tab\there\" <t@d.example>",
	"x!#$%&'*+-/=?^_`{|}~@d.example", "Name =?x <a@b.example>", "a=?b@c.example",
	"<@route.example:a@b.example>", "Name <<a@b.example>>", "\"unterminated <a@b.example>",
	"\"Seller Central\" <seller-notification@amazon.com>", "Amazon <no-reply@amazon.de>",
	"< a@b.example >", "<a @b.example>", "a@b", "a@-b.example", "1@2", "Dr. Who <w@d.example>",
	"\"a@b.example\" <c@d.example>", "'quoted' <q@d.example>", "\"x\" \"y\" <z@d.example>",
	"x \"y\" <z@d.example>", "A B C D <abcd@d.example>", "\"  spaced  \" <s@d.example>",
	"\"ctl\x01\" <c@d.example>", "\"del\x7f\" <c@d.example>", "name <A@B.C>", "<a@b.example>, ",
	"\"back\\\\slash\" <b@d.example>", "\"a\\b\" <c@d.example>", "A.B. Name <x@d.example>",
	"Name. <x@d.example>", "Mr.. X <x@d.example>", "Amazon.com Services <x@d.example>",
	".Name <x@d.example>", "Name .x <x@d.example>", "a.b <c@d.example>", "Name . <x@d.example>",
	"a@b.example.", "a@b.example(c)", "\"x\"@d.example", "Na\"me <x@d.example>",
};

static const char *const gen_seps[] = { ", ", ",", " , ", ",\r\n ", ",\r\n\t", ";", " ", ",,", "\t,\t" };

static const char *const gen_words[] = {
	"Notice", "policy", "warning", " ", "  ", "\t", "=?", "?=", "=?utf-8?q?", "=?UTF-8?B?w4RsZg==?=",
	"=?utf-8?q?a_b?=", "=?iso-8859-1?q?caf=E9?=", "\xc3\xa9", "\xe2\x80\xa8", "\xc2\xa0", "\x80",
	"\xff", "\x01", "\x7f", "Re:", "Fwd:", "[ipcased #3]", "(paren)", "\"q\"", "\\", "~", "\r\n ",
	"=?utf-8?q?x?= =?utf-8?q?y?=", "a=?b", "100%", "=", "?",
};

static const char *const gen_weekdays[] = { "", "Mon, ", "Tue, ", "Sun, ", "mon, ", "MON, ",
	"Fri,", "Thu , ", "Xyz, ", "Monday, ", "Sat, " };
static const char *const gen_months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
	"Sep", "Oct", "Nov", "Dec", "sep", "SEP", "Sept", "Foo", "Sep." };
static const char *const gen_zones[] = { "+0000", "-0000", "+0100", "-0700", "+0530", "+1400",
	"-1200", "+2359", "+2400", "+9999", "+0060", "-0099", "GMT", "UT", "EST", "Z", "+000", "+00000",
	"+0000 (UTC)", "0000", "", "+01:00", "-2300", "+1260" };

static void
gen_date(struct buf *b)
{
	int	year, day;

	if (gen(20) == 0) {
		buf_puts(b, PICK(gen_words));
		return;
	}
	buf_puts(b, gen(3) == 0 ? PICK(gen_weekdays) : gen_weekdays[1 + gen(3)]);
	day = gen(4) == 0 ? (int)gen(40) : 1 + (int)gen(28);
	if (gen(2))
		buf_printf(b, "%d", day);
	else
		buf_printf(b, "%02d", day);
	buf_printf(b, "%s%s%s", gen(20) == 0 ? "  " : " ",
	    gen(3) == 0 ? PICK(gen_months) : gen_months[gen(12)], gen(30) == 0 ? "\t" : " ");
	switch (gen(8)) {
	case 0:
		year = (int)gen(100);
		buf_printf(b, "%02d", year);
		break;
	case 1:
		year = 1960 + (int)gen(20);
		buf_printf(b, "%d", year);
		break;
	case 2:
		year = (int)gen(10000);
		buf_printf(b, "%04d", year);
		break;
	default:
		year = 1995 + (int)gen(50);
		buf_printf(b, "%d", year);
		break;
	}
	if (gen(4) == 0)
		buf_printf(b, " %d:%d:%d", (int)gen(26), (int)gen(62), (int)gen(62));
	else if (gen(10) == 0)
		buf_printf(b, " %02d:%02d", (int)gen(24), (int)gen(60));
	else
		buf_printf(b, " %02d:%02d:%02d", (int)gen(24), (int)gen(60), (int)gen(60));
	if (gen(5) == 0) {
		const char *z = PICK(gen_zones);

		buf_printf(b, "%s%s", *z != '\0' ? " " : "", z);
	} else
		buf_printf(b, " %c%02d%02d", gen(2) ? '+' : '-', (int)gen(15), gen(3) ? 0 : (int)gen(60));
	if (gen(30) == 0)
		buf_puts(b, PICK(gen_words));
}

static void
gen_addr_list(struct buf *b)
{
	unsigned	n = 1 + gen(4), i, j;

	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_puts(b, gen(4) == 0 ? PICK(gen_seps) : ", ");
		if (gen(8) == 0) {
			/* character soup from the address alphabet */
			static const char *const soup[] = { "a", "B", ".", "@", "<", ">", "\"", ",",
			    " ", "\t", "(", ")", "\\", ":", ";", "=?", "?=", "[", "]", "\xc3\xa9", "\x80",
			    "x.example", "'", "!", "\r\n " };

			for (j = gen(12); j > 0; j--)
				buf_puts(b, PICK(soup));
		} else
			buf_puts(b, PICK(gen_addrs));
	}
}

static void
gen_text(struct buf *b)
{
	unsigned	n = gen(8), i;

	for (i = 0; i < n; i++)
		buf_puts(b, gen(2) ? PICK(gen_words) : (gen(2) ? "word" : " "));
}

static const char *const gen_ctypes[] = {
	"text/plain", "TEXT/HTML; charset=utf-8", "multipart/mixed; boundary=\"b\"", "text/plain;",
	"text/plain ;", "text", "text/", "/plain", "text/plain garbage", "text/plain; charset",
	"application/vnd.ms-excel", "text/plain (comment)", "text/plain\t;x=y", "\"text/plain\"",
	"text/pl@in", "x-foo/x-bar", "text/plain; charset=\"unterminated", "text/plain;;;",
	"text/ plain", "text /plain", "text/plain/extra", "multipart/alternative; boundary=",
	"Message/RFC822", "text/plain; charset=\xc3\xa9", "text/x+y.z_w", "", ";", "text/plain,",
	"image/png; name=\"a;b\"", "text/\xc3\xa9", "(c) text/plain", "text/plain=", "*/*",
};

/* Dates at the edges of the canonical form's fast path. */
static const char *const edge_dates[] = {
	"Thu, 29 Feb 2024 12:00:00 +0000", "29 Feb 2100 12:00:00 +0000", "29 Feb 2000 12:00:00 +0000",
	"29 Feb 1900 12:00:00 +0000", "31 Apr 2024 00:00:00 +0000", "31 Dec 9999 23:59:59 -2359",
	"1 Jan 1970 00:00:00 +0000", "01 Jan 1970 00:59:59 +0100", "1 Jan 1970 00:00:01 +0000",
	"1 Jan 1970 00:00:01 -0000", "19 Jan 2038 03:14:08 +0000", "00 Jan 2024 00:00:00 +0000",
	"Mon, 2 Sep 2024 24:00:00 +0000", "Mon, 2 Sep 2024 23:60:00 +0000",
	"Mon, 2 Sep 2024 23:59:60 +0000", "Mon, 2 Sep 2024 23:59:59 +2400", "Mon, 2 Sep 2024 23:59:59 -0060",
	"Mon, 2 Sep 2024 23:59:59 +0000 (UTC)", "Mon, 2 Sep 2024 23:59:59 GMT", "Mon, 2 Sep 2024 23:59:59",
	"Mon, 2 Sep 2024", "Mon, 2 Sep", "Mon, ", "Mon", "2", "02 Sep 2024 11:00:00 +0000 ",
	"Mon,  2 Sep 2024 11:00:00 +0000", "Mon 2 Sep 2024 11:00:00 +0000", "2 Sep 1969 11:00:00 +0000",
	"2 Sep 69 11:00:00 +0000", "2 Sep 0069 11:00:00 +0000", "2 Sep 1970 11:00:00 +1400",
	"31 Dec 1969 23:00:00 -0100", "123 Sep 2024 11:00:00 +0000", "2 Sep 20245 11:00:00 +0000",
	"2 Sep 2024 1:00:00 +0000", "2 Sep 2024 11:0:00 +0000", "2 Sep 2024 11:00:00 +00000",
	"Sun, 31 Dec 2023 23:59:59 -1200", "Wed, 1 Mar 2023 00:00:00 +0000", "1 Mar 2400 00:00:00 +0000",
};

static void
test_fast_paths_match_gmime(void **state)
{
	struct buf	 b = { 0 };
	size_t		 j;
	int		 i;

	(void)state;
	for (j = 0; j < NELEM(edge_dates); j++) {
		buf_free(&b);
		buf_printf(&b, "Date: %s\r\n\r\n", edge_dates[j]);
		parse_both("edge date", b.data, b.len, true);
	}
	diff_dir("tests/samples");
	diff_dir("tests/corpus");
	diff_dir(SAMPLE_DIR);
	for (i = 0; i < 4000; i++) {
		buf_free(&b);
		buf_puts(&b, "From: ");
		gen_addr_list(&b);
		buf_puts(&b, "\r\nTo: ");
		gen_addr_list(&b);
		if (gen(2)) {
			buf_puts(&b, "\r\nCc: ");
			gen_addr_list(&b);
		}
		if (gen(3) == 0) {
			buf_puts(&b, "\r\nReply-To: ");
			gen_addr_list(&b);
		}
		buf_puts(&b, "\r\nSubject: ");
		gen_text(&b);
		buf_puts(&b, "\r\nDate: ");
		gen_date(&b);
		buf_puts(&b, "\r\nContent-Type: ");
		buf_puts(&b, PICK(gen_ctypes));
		if (gen(10) == 0)
			buf_append(&b, "\r\nX-Nul: a\0b", 12);
		buf_puts(&b, "\r\n\r\nbody\r\n");
		parse_both("generated", b.data, b.len, true);
		if (i % 8 == 0)
			parse_both("generated", b.data, b.len, false);
	}
	buf_free(&b);
}

/*
 * text_one_line(), utf8_sanitize(), header_field_unfold() and
 * header_field_next() were rewritten to write their result once; the
 * byte-by-byte versions they replaced are kept here as the reference.
 */
static char *
ref_sanitize(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	struct buf	b = { 0 };
	size_t		i = 0, n;

	buf_append(&b, "", 0);
	while (i < len) {
		if (p[i] == '\0') {
			buf_append(&b, " ", 1);
			i++;
		} else if ((n = utf8_char_len(s + i, len - i)) == 0) {
			buf_append(&b, "\xef\xbf\xbd", 3);
			i++;
		} else {
			buf_append(&b, p + i, n);
			i += n;
		}
	}
	return buf_steal(&b);
}

static char *
ref_one_line(const char *s, size_t len)
{
	char		*clean = ref_sanitize(s, len);
	struct buf	 b = { 0 };
	const unsigned char *p;
	bool		 space = false;

	buf_append(&b, "", 0);
	for (p = (const unsigned char *)clean; *p != '\0'; p++) {
		size_t	skip = 0;

		if (*p < 0x20 || *p == 0x7f)
			skip = 1;
		else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0xa0)
			skip = 2;
		else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
			skip = 3;
		if (skip > 0 || *p == ' ') {
			space = true;
			p += skip > 0 ? skip - 1 : 0;
			continue;
		}
		if (space && b.len > 0)
			buf_append(&b, " ", 1);
		space = false;
		buf_append(&b, p, 1);
	}
	free(clean);
	return buf_steal(&b);
}

static char *
ref_unfold(const struct header_field *f)
{
	char	*s = xmalloc(f->value_len + 1), *t;
	size_t	 i, n = 0;

	for (i = 0; i < f->value_len; i++)
		if (f->value[i] != '\r' && f->value[i] != '\n')
			s[n++] = f->value[i] == '\0' ? ' ' : f->value[i];
	s[n] = '\0';
	t = str_trim(s);
	memmove(s, t, strlen(t) + 1);
	return s;
}

static bool
ref_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool
ref_field_next(const char *block, size_t len, size_t *pos, struct header_field *f)
{
	size_t	i, eol, colon;

	while (*pos < len) {
		i = *pos;
		if (block[i] == '\r' || block[i] == '\n')
			return false;
		eol = i;
		while (eol < len && block[eol] != '\n')
			eol++;
		while (eol < len && eol + 1 < len && ref_wsp(block[eol + 1])) {
			eol++;
			while (eol < len && block[eol] != '\n')
				eol++;
		}
		*pos = eol < len ? eol + 1 : len;
		if (ref_wsp(block[i]))
			continue;
		for (colon = i; colon < eol && block[colon] != ':'; colon++)
			;
		if (colon == eol)
			continue;
		f->name = block + i;
		f->name_len = colon - i;
		while (f->name_len > 0 && ref_wsp(f->name[f->name_len - 1]))
			f->name_len--;
		f->value = block + colon + 1;
		f->value_len = eol - colon - 1;
		return true;
	}
	return false;
}

static void
test_text_helpers_match_reference(void **state)
{
	static const char *const bits[] = { "a", "Z", " ", "  ", "\t", "\r", "\n", "\r\n", "\r\n ",
	    "\n\t", ":", "\0", "\x01", "\x7f", "\x80", "\xbf", "\xc2\x80", "\xc2\xa0", "\xc2\xa1",
	    "\xc2", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80", "\xe2\x82\xac", "\xed\xa0\x80",
	    "\xf0\x9f\x98\x80", "\xf4\x90\x80\x80", "\xf0\x9f", "\xc0\xaf", "\xff", "\x0b", "\x0c",
	    "From", "Subject", "word", "x: y" };
	static const size_t bit_len[] = { 1, 1, 1, 2, 1, 1, 1, 2, 3, 2, 1, 1, 1, 1, 1, 1, 2, 2, 2,
	    1, 3, 3, 2, 3, 3, 4, 4, 2, 2, 1, 1, 1, 4, 7, 4, 4 };
	struct header_field	 fa = { 0 }, fb = { 0 };
	struct buf		 b = { 0 };
	char			*x, *y;
	size_t			 pa, pb, j;
	int			 i;
	bool			 na, nb;

	(void)state;
	assert_int_equal(NELEM(bits), NELEM(bit_len));
	for (i = 0; i < 20000; i++) {
		buf_free(&b);
		buf_append(&b, "", 0);
		for (j = gen(24); j > 0; j--) {
			size_t k = gen(NELEM(bits));

			buf_append(&b, bits[k], bit_len[k]);
		}
		x = text_one_line(b.data, b.len);
		y = ref_one_line(b.data, b.len);
		assert_string_equal(x, y);
		free(x);
		free(y);
		x = utf8_sanitize(b.data, b.len);
		y = ref_sanitize(b.data, b.len);
		assert_string_equal(x, y);
		free(x);
		free(y);
		pa = pb = 0;
		do {
			na = header_field_next(b.data, b.len, &pa, &fa);
			nb = ref_field_next(b.data, b.len, &pb, &fb);
			assert_int_equal(na, nb);
			assert_int_equal(pa, pb);
			if (!na)
				break;
			assert_ptr_equal(fa.name, fb.name);
			assert_int_equal(fa.name_len, fb.name_len);
			assert_ptr_equal(fa.value, fb.value);
			assert_int_equal(fa.value_len, fb.value_len);
			x = header_field_unfold(&fa);
			y = ref_unfold(&fb);
			assert_string_equal(x, y);
			free(x);
			free(y);
		} while (na);
	}
	buf_free(&b);
}

static int
teardown_group(void **state)
{
	(void)state;
	g_mime_shutdown();
	xmlCleanupParser();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples_all_parse),
		cmocka_unit_test(test_s01),
		cmocka_unit_test(test_s04_base64),
		cmocka_unit_test(test_s05_s07_latin1_qp),
		cmocka_unit_test(test_s06_rfc2047_subject),
		cmocka_unit_test(test_s08_iso2022jp),
		cmocka_unit_test(test_s24_inline_forward),
		cmocka_unit_test(test_s16_reply_quote_stays),
		cmocka_unit_test(test_attached_rfc822),
		cmocka_unit_test(test_html_only),
		cmocka_unit_test(test_alternative_without_plain),
		cmocka_unit_test(test_html_to_text_direct),
		cmocka_unit_test(test_html_bomb),
		cmocka_unit_test(test_charsets),
		cmocka_unit_test(test_bad_charsets),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_broken_encodings),
		cmocka_unit_test(test_boundary_quote),
		cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_too_many_parts),
		cmocka_unit_test(test_many_header_lines),
		cmocka_unit_test(test_huge_part),
		cmocka_unit_test(test_long_ids),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_headers_decoded),
		cmocka_unit_test(test_headers_only),
		cmocka_unit_test(test_rfc2231_and_attachments),
		cmocka_unit_test(test_dedupe_without_message_id),
		cmocka_unit_test(test_address_helpers),
		cmocka_unit_test(test_serialize_round_trip),
		cmocka_unit_test(test_serialize_truncated_and_corrupt),
		cmocka_unit_test(test_fast_paths_match_gmime),
		cmocka_unit_test(test_text_helpers_match_reference),
	};

	return cmocka_run_group_tests_name("message", tests, NULL, teardown_group);
}
