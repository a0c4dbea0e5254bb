/* test_msgid.c — msgid.c: the junk real Message-ID, In-Reply-To and References headers carry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "msgid.h"
#include "util.h"

static void
check_norm(const char *raw, const char *want)
{
	char	*got = msgid_normalize(raw), *again;

	if (want == NULL) {
		if (got != NULL)
			fail_msg("\"%s\" -> \"%s\", expected NULL", raw, got);
		return;
	}
	if (got == NULL)
		fail_msg("\"%s\" -> NULL, expected \"%s\"", raw, want);
	assert_string_equal(got, want);
	/* A normalised id normalises to itself (keys must be stable). */
	again = msgid_normalize(got);
	assert_non_null(again);
	assert_string_equal(again, got);
	free(again);
	free(got);
}

static void
test_normalize(void **state)
{
	(void)state;
	check_norm("<Local@Example.COM>", "Local@example.com");
	check_norm("  (a comment (nested)) <a@b.example> (trailing)", "a@b.example");
	check_norm("\r\n <a@b.example>", "a@b.example");
	/* Leniencies libetpan's mailimf_msg_id_parse shows, and what we make of them. */
	check_norm("a@b.example", "a@b.example");		/* no brackets */
	check_norm("<a b@c.example>", NULL);			/* a space inside */
	check_norm("<@>", NULL);
	check_norm("<a@>", NULL);
	check_norm("<@b.example>", NULL);
	check_norm("<\"q\"@c.example>", "\"q\"@c.example");	/* quotes kept */
	check_norm("<\"a@b\"@C.example>", "\"a@b\"@c.example");
	check_norm("< a@b.example >", "a@b.example");		/* CFWS inside the brackets */
	check_norm("<abc@de\r\n f.example>", "abc@def.example");	/* folded inside */
	check_norm("<a@[192.0.2.1]>", "a@[192.0.2.1]");
	check_norm("<a@b.example", "a@b.example");		/* no closing bracket */
	check_norm("<a\x01@b.example>", NULL);
	check_norm("<a\x7f@b.example>", NULL);
	check_norm("<a(b@c.example>", NULL);
	check_norm("<ab\xff@c.example>", NULL);		/* not UTF-8 */
	check_norm("<caf\xc3\xa9@c.example>", "caf\xc3\xa9@c.example");
	check_norm("no-at-sign", NULL);
	check_norm("two words@x.example", NULL);
	check_norm("", NULL);
	check_norm("<>", NULL);
	check_norm("(unclosed comment <a@b.example>", NULL);
	assert_null(msgid_normalize(NULL));
}

static void
test_normalize_length_limit(void **state)
{
	struct buf	 b = { 0 };
	char		*id;
	size_t		 i;

	(void)state;
	buf_puts(&b, "<");
	for (i = 0; i < MSGID_MAX_LEN - 10; i++)
		buf_puts(&b, "x");
	buf_puts(&b, "@a.example");		/* exactly MSGID_MAX_LEN */
	buf_puts(&b, ">");
	id = msgid_normalize(b.data);
	assert_non_null(id);
	assert_int_equal(strlen(id), MSGID_MAX_LEN);
	free(id);
	b.len--;
	buf_puts(&b, "x>");			/* one more */
	assert_null(msgid_normalize(b.data));
	buf_free(&b);
}

static void
test_parse_list(void **state)
{
	char	**v;

	(void)state;
	v = msgid_parse_list("<a@x.example> junk <b@Y.example>\r\n <c@z.example>");
	assert_int_equal(strv_len(v), 3);
	assert_string_equal(v[0], "a@x.example");
	assert_string_equal(v[1], "b@y.example");
	assert_string_equal(v[2], "c@z.example");
	strv_free(v);

	/* Missing brackets everywhere: bare words with an @ are the ids. */
	v = msgid_parse_list("a@x.example b@y.example,plain");
	assert_int_equal(strv_len(v), 2);
	assert_string_equal(v[0], "a@x.example");
	assert_string_equal(v[1], "b@y.example");
	strv_free(v);

	/* Old In-Reply-To: a phrase with an address next to the real id. */
	v = msgid_parse_list("Your message of \"Mon, 1 Jan\" from joe@example.com <id1@x.example>");
	assert_int_equal(strv_len(v), 1);
	assert_string_equal(v[0], "id1@x.example");
	strv_free(v);

	/* Ids inside comments and quoted strings do not count. */
	v = msgid_parse_list("(<c@x.example>) \"<fake@x.example>\" <real@y.example>");
	assert_int_equal(strv_len(v), 1);
	assert_string_equal(v[0], "real@y.example");
	strv_free(v);

	/* Duplicates once; invalid ids dropped; an unclosed last one kept. */
	v = msgid_parse_list("<a@x.example> <a@x.example> <bad id@x> <@> <last@x.example");
	assert_int_equal(strv_len(v), 2);
	assert_string_equal(v[0], "a@x.example");
	assert_string_equal(v[1], "last@x.example");
	strv_free(v);

	/* Ids run together without spaces. */
	v = msgid_parse_list("<a@x.example><b@x.example>");
	assert_int_equal(strv_len(v), 2);
	strv_free(v);

	v = msgid_parse_list(NULL);
	assert_non_null(v);
	assert_null(v[0]);
	strv_free(v);
	v = msgid_parse_list("   ");
	assert_null(v[0]);
	strv_free(v);
}

static void
test_parse_list_keeps_newest(void **state)
{
	struct buf	  b = { 0 };
	char		**v;
	size_t		  i;

	(void)state;
	for (i = 0; i < 10000; i++)
		buf_printf(&b, "<id%zu@x.example>%s", i, i % 3 == 0 ? "\r\n\t" : " ");
	v = msgid_parse_list(b.data);
	assert_int_equal(strv_len(v), MSGID_MAX_REFS);
	assert_string_equal(v[0], "id9900@x.example");
	assert_string_equal(v[MSGID_MAX_REFS - 1], "id9999@x.example");
	strv_free(v);
	buf_free(&b);
}

static void
test_generate(void **state)
{
	char	*a, *b, *n;
	size_t	 i;

	(void)state;
	a = msgid_generate("r12-review-72h", "Shop.Example");
	b = msgid_generate("r12-review-72h", "Shop.Example");
	assert_string_not_equal(a, b);
	assert_int_equal(strlen(a), 32 + strlen(".r12-review-72h@shop.example"));
	for (i = 0; i < 32; i++)
		assert_non_null(strchr("0123456789abcdef", a[i]));
	assert_string_equal(a + 32, ".r12-review-72h@shop.example");
	n = msgid_normalize(a);
	assert_string_equal(n, a);
	free(n);
	free(a);
	free(b);

	/* Whatever the caller passes, the result is a valid id: no header injection. */
	a = msgid_generate("x\r\nBcc: evil@x>", "shop.example\r\n");
	assert_null(strpbrk(a, "\r\n <>"));
	n = msgid_normalize(a);
	assert_non_null(n);
	free(n);
	free(a);

	a = msgid_generate(NULL, "shop.example");
	assert_int_equal(strlen(a), 32 + strlen("@shop.example"));
	free(a);
	a = msgid_generate("t", NULL);
	assert_string_equal(a + 32, ".t@localhost");
	free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_normalize_length_limit),
		cmocka_unit_test(test_parse_list),
		cmocka_unit_test(test_parse_list_keeps_newest),
		cmocka_unit_test(test_generate),
	};

	return cmocka_run_group_tests_name("msgid", tests, NULL, NULL);
}
