/* fuzz_command.c — libFuzzer target: a reply's text -> command_parse(); the bytes as a Message-ID -> command_msgid_token(). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* One line of valid UTF-8 without controls: what may reach the store and a mail. */
static void
check_text(const char *s, size_t max)
{
	size_t	i, len;

	if (s == NULL)
		return;
	len = strlen(s);
	if (len > max || !utf8_valid(s, len))
		abort();
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct command_list l;
	char		 tok[COMMAND_TOKEN_LEN + 1], *id;
	const char	*p;
	size_t		 seen, i;

	seen = command_parse((const char *)data, size, &l);
	if (l.n + l.nbad > COMMAND_MAX || seen != l.n + l.nbad + l.dropped)
		abort();
	for (i = 0; i < l.n; i++) {
		switch (l.cmds[i].verb) {
		case COMMAND_DONE:
			check_text(l.cmds[i].arg, COMMAND_TASK_MAX);
			for (p = l.cmds[i].arg; p != NULL && *p != '\0'; p++)
				if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
				    *p == '_'))
					abort();
			break;
		case COMMAND_SNOOZE:
			if (l.cmds[i].seconds < COMMAND_SNOOZE_MIN ||
			    l.cmds[i].seconds > COMMAND_SNOOZE_MAX || l.cmds[i].arg == NULL)
				abort();
			check_text(l.cmds[i].arg, 32);
			break;
		case COMMAND_CLOSE:
		case COMMAND_NOTE:
			if (l.cmds[i].arg == NULL || *l.cmds[i].arg == '\0')
				abort();
			check_text(l.cmds[i].arg, COMMAND_TEXT_MAX);
			break;
		default:
			abort();
		}
	}
	for (i = 0; i < l.nbad; i++) {
		if (l.bad[i] == NULL)
			abort();
		check_text(l.bad[i], 80);
	}
	command_list_clear(&l);

	id = xstrndup((const char *)data, size);
	if (command_msgid_token(id, tok, sizeof(tok))) {
		if (strlen(tok) != COMMAND_TOKEN_LEN || strstr(id, tok) == NULL)
			abort();
	}
	free(id);
	return 0;
}
