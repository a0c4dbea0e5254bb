/*
 * rules.c — PCRE2 rules from the config -> a verdict: what kind of mail, and
 * its fields.  The rules and the word lists they rely on (labels in each
 * language, type names, number words, time units) live in the config
 * (conf/rules.conf), so an admin can teach ipcased a new wording without a
 * rebuild; this file only knows how to apply them.
 */
#include "rules.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "auth.h"
#include "log.h"
#include "util.h"

/* Every pattern is UTF-8, Unicode-aware, caseless, and ^/$ match at lines. */
#define RULE_PCRE2_FLAGS (PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | \
	PCRE2_MATCH_INVALID_UTF | PCRE2_MULTILINE)

#define DEFAULT_MATCH_LIMIT	1000000
#define DEFAULT_DEPTH_LIMIT	10000
#define DEFAULT_HEAP_LIMIT_KB	(32 * 1024)
#define JIT_STACK_MAX		(1024 * 1024)
#define OVECTOR_PAIRS		64
#define COMPLAINT_MIN_DIGITS	7	/* amazon-notices.md §4: IDs of 7 to 12 digits */
#define COMPLAINT_MAX_DIGITS	12
#define DEADLINE_MAX_DAYS	3650
#define NAME_MAX_BYTES		200

enum field {
	F_COMPLAINT_ID,
	F_ASIN,
	F_TYPE,
	F_OWNER_NAME,
	F_OWNER_EMAIL,
	F_DEADLINE,
	NFIELDS
};

static const char *const field_names[NFIELDS + 1] = {
	"complaint_id", "asin", "infringement_type", "rights_owner_name",
	"rights_owner_email", "deadline", NULL
};

static const char *const type_names[] = {
	"copyright", "trademark", "patent", "design_patent", "counterfeit", NULL
};

static const char *const kind_names[] = {
	[KIND_OTHER] = "other",
	[KIND_IP_NOTICE] = "ip_notice",
	[KIND_RETRACTION] = "retraction",
	[KIND_REINSTATEMENT] = "reinstatement",
	[KIND_APEX] = "apex",
	[KIND_ACCOUNT_WARNING] = "account_warning",
	[KIND_REPORT_CONFIRMATION] = "report_confirmation",
	[KIND_APPEAL_DECISION] = "appeal_decision",
	[KIND_PHISHING] = "phishing",
};

static const char *const rule_keys[] = {
	"name", "kind", "priority", "from_domains", "from_not_amazon",
	"from_lookalike", "to_domains", "bulk", "headers_present", "subject",
	"not_subject", "body", "body_any", "not_body", "text_any", "fields",
	"extract", "require", "infringement_type", "owner_from_sender", "trust",
	"outcomes", NULL
};

static const char *const settings_keys[] = {
	"match_limit", "depth_limit", "heap_limit_kb", "jit", "fields", "lawsuit",
	"quote_markers", "ignore_lines", "marketplace_hints", "prescreen_subject", "types",
	"type_refine", "numbers", "units", NULL
};

struct pattern {
	pcre2_code	*re;
	char		*src;		/* the pattern as written, for screen_build() */
	int		 v;		/* capture group holding the value: "v", else 1, else 0 */
	int		 n;		/* deadline: the number group ("n"), or -1 */
	int		 unit;		/* deadline: the unit group ("unit"), or -1 */
};

struct patterns {
	struct pattern	*v;
	size_t		 n;
};

/* One entry of a word list: types, type_refine, numbers, units, outcomes. */
struct lexeme {
	pcre2_code	*re;
	char		*name;		/* types, type_refine and outcomes: the value */
	char		*from;		/* type_refine: the type it refines */
	int		 value;		/* numbers: the number; units: days */
};

struct lexicon {
	struct lexeme	*v;
	size_t		 n;
};

struct rule {
	char		*name;
	enum kind	 kind;
	int		 priority;
	size_t		 order;
	char	       **from_domains;		/* NULL: any sender; "@amazon" = Amazon or look-alike */
	bool		 from_not_amazon;
	bool		 from_lookalike;
	char	       **to_domains;		/* a recipient in one of these; "@amazon" = Amazon's */
	bool		 bulk;			/* also applies to list and bulk mail */
	bool		 trust_sender;		/* authentic = not a look-alike, no DMARC fail */
	bool		 owner_from_sender;	/* rights_owner_email defaults to From */
	char	       **headers_present;
	struct patterns	 subject, not_subject, body, body_any, not_body, text_any;
	struct patterns	 fields[NFIELDS];
	bool		 has_field[NFIELDS];
	unsigned	 extract;		/* bit per field */
	unsigned	 require;		/* bit per field */
	char		*default_type;
	struct lexicon	 outcomes;
};

/*
 * The subject half of rules_prescreen(), which runs for every new message of
 * a scan: prescreen_subject, the complaint_id fields and each rule's subject.
 * Without JIT (systemd's MemoryDenyWriteExecute) one long alternation of
 * words costs pcre2_match() ~100 steps per character, so each pattern has,
 * where its text allows, the literals one of which any match of it must
 * contain (screen_literals()); a subject without any of them cannot match
 * and is not asked.  One alternation of all patterns was tried: PCRE2 then
 * loses its start-of-match bitmap and gets slower, not faster.
 */
struct screen_literal {
	char			*text;		/* lower case ASCII */
	size_t			 len;
	size_t			 pattern;	/* index into v */
};

struct subject_screen {
	const pcre2_code	**v;		/* borrowed: every pattern, in the order tried */
	bool			*filtered;	/* v[i] needs one of its literals in an ASCII subject */
	bool			*seen;		/* scratch: a literal of v[i] is in the subject */
	size_t			 n;
	struct screen_literal	*lit;		/* sorted by first letter */
	size_t			 nlit;
	size_t			 first[128];	/* first lit[] with that first letter, nlit if none */
	pcre2_match_data	*md;		/* reused by each call (one thread) */
};

struct rules {
	struct rule		*v;
	size_t			 n;
	struct patterns		 fields[NFIELDS];
	struct patterns		 lawsuit, quote_markers, ignore_lines, marketplace_hints;
	struct patterns		 prescreen_subject;
	struct lexicon		 types, type_refine, numbers, units;
	char		       **amazon_domains;
	char		       **authserv_ids;	/* every account's, for rules_classify() */
	char		       **seller_addrs;	/* smtp.to and smtp.from, lower case */
	pcre2_match_context	*mctx;
	pcre2_jit_stack		*jit;
	bool			 jit_on;	/* rule_settings.jit: JIT-compile each pattern at its first
						   match; off to run under valgrind, blind to JIT code */
	struct subject_screen	 screen;
	config_t		*own_cfg;	/* the shipped rules.conf, when the config has no rules */
};

/* The text a message is judged on. */
struct doc {
	const char	*subject;
	size_t		 subject_len;
	char		*body;		/* the mail's own text: quotes and forwards cut off */
	size_t		 body_len;
	char		*text;		/* subject, a newline, body: what fields are taken from */
	size_t		 text_len;
	bool		 bulk;
};

/* A value found at an offset of the text, for "in order of appearance". */
struct hit {
	size_t	 off;
	char	*value;
};

struct hits {
	struct hit	*v;
	size_t		 n, cap;
};

/* ---- Small helpers --------------------------------------------------- */

static char **
strv_new(void)
{
	return xcalloc(1, sizeof(char *));
}

static void
strv_push(char ***v, const char *s)
{
	size_t	n = strv_len(*v);

	*v = xreallocarray(*v, n + 2, sizeof(char *));
	(*v)[n] = xstrdup(s);
	(*v)[n + 1] = NULL;
}

static bool
strv_has(char *const *v, const char *s)
{
	for (; v != NULL && *v != NULL; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

static char **
strv_dup(char *const *src)
{
	char	**v = strv_new();

	for (; src != NULL && *src != NULL; src++)
		strv_push(&v, *src);
	return v;
}

static void
hits_add(struct hits *h, size_t off, const char *value)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 8;
		h->v = xreallocarray(h->v, h->cap, sizeof(*h->v));
	}
	h->v[h->n].off = off;
	h->v[h->n].value = xstrdup(value);
	h->n++;
}

static int
hit_cmp(const void *a, const void *b)
{
	const struct hit	*x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return 0;
}

/* Sorted by offset, duplicates dropped, as a NULL-terminated vector; frees h. */
static char **
hits_steal(struct hits *h)
{
	char	**v = strv_new();
	size_t	  i;

	if (h->n > 0)
		qsort(h->v, h->n, sizeof(*h->v), hit_cmp);
	for (i = 0; i < h->n; i++) {
		if (!strv_has(v, h->v[i].value))
			strv_push(&v, h->v[i].value);
		free(h->v[i].value);
	}
	free(h->v);
	memset(h, 0, sizeof(*h));
	return v;
}

/* ---- Compiling ------------------------------------------------------- */

static pcre2_code *
compile(struct conf *conf, const config_setting_t *where, const char *what,
    const char *src, uint32_t extra)
{
	pcre2_code	*re;
	PCRE2_UCHAR	 msg[256];
	PCRE2_SIZE	 off;
	int		 code;

	re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED,
	    RULE_PCRE2_FLAGS | extra, &code, &off, NULL);
	if (re == NULL) {
		pcre2_get_error_message(code, msg, sizeof(msg));
		conf_error(conf, where, "%s: pattern error at offset %zu: %s (fix "
		    "the regular expression)", what, (size_t)off, (const char *)msg);
		return NULL;
	}
	/* JIT comes at the pattern's first match (re_match): most never run in a poll. */
	return re;
}

static int
group_number(const pcre2_code *re, const char *name)
{
	int	n = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);

	return n > 0 ? n : -1;
}

static void
pattern_init(struct pattern *p, pcre2_code *re)
{
	uint32_t	count = 0;

	p->re = re;
	pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &count);
	if ((p->v = group_number(re, "v")) < 0)
		p->v = count >= 1 ? 1 : 0;
	p->n = group_number(re, "n");
	p->unit = group_number(re, "unit");
}

/*
 * Reads group.key: a string or a list of strings, each a pattern.  Returns 0,
 * 1 when absent, -1 on an error (reported).
 */
static int
load_patterns(struct conf *conf, const config_setting_t *group, const char *key,
    const char *where, struct patterns *out)
{
	const config_setting_t	*s, *e;
	pcre2_code		*re;
	char			*what;
	int			 i, n, ret = 0;

	if (group == NULL || (s = config_setting_get_member(group, key)) == NULL)
		return 1;
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		n = 1;
	else if (config_setting_is_list(s) || config_setting_is_array(s))
		n = config_setting_length(s);
	else {
		conf_error(conf, s, "%s.%s: must be a pattern in double quotes or a "
		    "list of them [ \"...\", ... ]", where, key);
		return -1;
	}
	out->v = xcalloc((size_t)n + 1, sizeof(*out->v));
	for (i = 0; i < n; i++) {
		e = config_setting_type(s) == CONFIG_TYPE_STRING ? s :
		    config_setting_get_elem(s, (unsigned)i);
		what = config_setting_type(s) == CONFIG_TYPE_STRING ?
		    xasprintf("%s.%s", where, key) : xasprintf("%s.%s[%d]", where, key, i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			conf_error(conf, e, "%s: must be a pattern in double quotes", what);
			ret = -1;
		} else if ((re = compile(conf, config_setting_source_line(e) ? e : s,
		    what, config_setting_get_string(e), 0)) == NULL)
			ret = -1;
		else {
			out->v[out->n].src = xstrdup(config_setting_get_string(e));
			pattern_init(&out->v[out->n++], re);
		}
		free(what);
	}
	return ret;
}

static void
patterns_free(struct patterns *p)
{
	size_t	i;

	for (i = 0; i < p->n; i++) {
		pcre2_code_free(p->v[i].re);
		free(p->v[i].src);
	}
	free(p->v);
	memset(p, 0, sizeof(*p));
}

static bool
is_type_name(const char *s)
{
	size_t	i;

	for (i = 0; type_names[i] != NULL; i++)
		if (strcmp(type_names[i], s) == 0)
			return true;
	return false;
}

enum lexicon_kind { LEX_TYPES, LEX_REFINE, LEX_NUMBERS, LEX_UNITS, LEX_OUTCOMES };

/*
 * A word list: a list of groups { <value key> = ...; pattern = "..."; }.
 * Numbers and units must match a whole word (anchored at both ends); types
 * and outcomes are searched for.
 */
static int
load_lexicon(struct conf *conf, const config_setting_t *group, const char *key,
    const char *where, enum lexicon_kind lk, struct lexicon *out)
{
	static const char *const keys[][4] = {
		[LEX_TYPES] = { "type", "pattern", NULL },
		[LEX_REFINE] = { "from", "type", "pattern", NULL },
		[LEX_NUMBERS] = { "value", "pattern", NULL },
		[LEX_UNITS] = { "days", "pattern", NULL },
		[LEX_OUTCOMES] = { "outcome", "pattern", NULL },
	};
	const config_setting_t	*s, *g;
	struct lexeme		*x;
	char			*what, *pat;
	int			 i, n, ret = 0, min = 0, max = 0;
	const char		*vkey = NULL;

	if (group == NULL || (s = config_setting_get_member(group, key)) == NULL)
		return 1;
	if (!config_setting_is_list(s)) {
		conf_error(conf, s, "%s.%s: must be a list of groups ( { ... }, ... )",
		    where, key);
		return -1;
	}
	n = config_setting_length(s);
	out->v = xcalloc((size_t)n + 1, sizeof(*out->v));
	for (i = 0; i < n; i++) {
		g = config_setting_get_elem(s, (unsigned)i);
		what = xasprintf("%s.%s[%d]", where, key, i);
		x = &out->v[out->n];
		memset(x, 0, sizeof(*x));
		if (conf_check_keys(conf, g, keys[lk]) != 0) {
			ret = -1;
			free(what);
			continue;
		}
		switch (lk) {
		case LEX_TYPES:
		case LEX_REFINE:
			if (conf_get_string(conf, g, "type", true, &x->name) != 0)
				ret = -1;
			else if (!is_type_name(x->name)) {
				conf_error(conf, g, "%s: unknown type \"%s\" (use copyright, "
				    "trademark, patent, design_patent or counterfeit)", what,
				    x->name);
				ret = -1;
			}
			if (lk == LEX_REFINE) {
				if (conf_get_string(conf, g, "from", true, &x->from) != 0)
					ret = -1;
				else if (!is_type_name(x->from)) {
					conf_error(conf, g, "%s: unknown type \"%s\" in from",
					    what, x->from);
					ret = -1;
				}
			}
			break;
		case LEX_OUTCOMES:
			if (conf_get_string(conf, g, "outcome", true, &x->name) != 0)
				ret = -1;
			break;
		case LEX_NUMBERS:
			vkey = "value";
			min = 0;
			max = 1000;
			break;
		case LEX_UNITS:
			vkey = "days";
			min = 1;
			max = 366;
			break;
		}
		if (vkey != NULL && conf_get_int(conf, g, vkey, true, min, max,
		    &x->value) != 0)
			ret = -1;
		if (conf_get_string(conf, g, "pattern", true, &pat) != 0)
			ret = -1;
		else {
			x->re = compile(conf, config_setting_get_member(g, "pattern"), what,
			    pat, lk == LEX_NUMBERS || lk == LEX_UNITS ?
			    PCRE2_ANCHORED | PCRE2_ENDANCHORED : 0);
			free(pat);
			if (x->re == NULL)
				ret = -1;
		}
		if (x->re != NULL && ret == 0)
			out->n++;
		else {
			pcre2_code_free(x->re);
			free(x->name);
			free(x->from);
			memset(x, 0, sizeof(*x));
		}
		free(what);
	}
	return ret;
}

static void
lexicon_free(struct lexicon *l)
{
	size_t	i;

	for (i = 0; i < l->n; i++) {
		pcre2_code_free(l->v[i].re);
		free(l->v[i].name);
		free(l->v[i].from);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int
field_index(const char *name)
{
	int	i;

	for (i = 0; i < NFIELDS; i++)
		if (strcmp(field_names[i], name) == 0)
			return i;
	return -1;
}

/* fields = { complaint_id = [...]; asin = [...]; ... }: the patterns that fill each field. */
static int
load_fields(struct conf *conf, const config_setting_t *group, const char *where,
    struct patterns fields[NFIELDS], bool has[NFIELDS])
{
	const config_setting_t	*s;
	char			*w;
	int			 i, r, ret = 0;
	size_t			 j;

	if (group == NULL || (s = config_setting_get_member(group, "fields")) == NULL)
		return 1;
	w = xasprintf("%s.fields", where);
	if (conf_check_keys(conf, s, field_names) != 0)
		ret = -1;
	for (i = 0; i < NFIELDS; i++) {
		r = load_patterns(conf, s, field_names[i], w, &fields[i]);
		if (r < 0)
			ret = -1;
		if (r == 0 && has != NULL)
			has[i] = true;
		if (i != F_DEADLINE || r != 0)
			continue;
		for (j = 0; j < fields[i].n; j++)
			if (fields[i].v[j].n < 0 || fields[i].v[j].unit < 0) {
				conf_error(conf, config_setting_get_member(s, "deadline"),
				    "%s.deadline[%zu]: needs the groups (?<n>...) for the "
				    "number and (?<unit>...) for the unit", w, j);
				ret = -1;
			}
	}
	free(w);
	return ret;
}

/* A list of field names ("complaint_id", ...) as a bit set. */
static int
load_field_set(struct conf *conf, const config_setting_t *g, const char *key,
    const char *where, unsigned *out)
{
	char	**v = NULL;
	int	  r, i, ret = 0;
	size_t	  j;

	if ((r = conf_get_strings(conf, g, key, false, &v)) != 0)
		return r;
	*out = 0;
	for (j = 0; v[j] != NULL; j++) {
		if ((i = field_index(v[j])) < 0) {
			conf_error(conf, config_setting_get_member(g, key), "%s.%s: "
			    "unknown field \"%s\" (use complaint_id, asin, "
			    "infringement_type, rights_owner_name, rights_owner_email "
			    "or deadline)", where, key, v[j]);
			ret = -1;
		} else
			*out |= 1u << i;
	}
	strv_free(v);
	return ret;
}

static void
rule_clear(struct rule *r)
{
	int	i;

	free(r->name);
	strv_free(r->from_domains);
	strv_free(r->to_domains);
	strv_free(r->headers_present);
	patterns_free(&r->subject);
	patterns_free(&r->not_subject);
	patterns_free(&r->body);
	patterns_free(&r->body_any);
	patterns_free(&r->not_body);
	patterns_free(&r->text_any);
	for (i = 0; i < NFIELDS; i++)
		patterns_free(&r->fields[i]);
	free(r->default_type);
	lexicon_free(&r->outcomes);
}

static int
load_rule(struct conf *conf, const config_setting_t *g, size_t idx, struct rule *r)
{
	char	*where, *kind = NULL, *trust = NULL;
	int	 ret = 0, conditions = 0;
	size_t	 i;

	where = xasprintf("rules[%zu]", idx);
	if (!config_setting_is_group(g)) {
		conf_error(conf, g, "%s: must be a group { name = ...; kind = ...; ... }",
		    where);
		free(where);
		return -1;
	}
	if (conf_check_keys(conf, g, rule_keys) != 0)
		ret = -1;
	if (conf_get_string(conf, g, "name", true, &r->name) == 0) {
		free(where);
		where = xasprintf("rules[%zu] (%s)", idx, r->name);
	} else
		ret = -1;
	if (conf_get_string(conf, g, "kind", true, &kind) != 0)
		ret = -1;
	else if ((int)(r->kind = kind_from_name(kind)) < 0) {
		conf_error(conf, config_setting_get_member(g, "kind"), "%s: unknown kind "
		    "\"%s\" (use ip_notice, retraction, reinstatement, apex, "
		    "account_warning, report_confirmation, appeal_decision, phishing "
		    "or other)", where, kind);
		ret = -1;
	}
	free(kind);
	if (conf_get_int(conf, g, "priority", false, -1000, 1000, &r->priority) < 0)
		ret = -1;
	if (conf_get_strings(conf, g, "from_domains", false, &r->from_domains) < 0)
		ret = -1;
	if (conf_get_strings(conf, g, "to_domains", false, &r->to_domains) < 0)
		ret = -1;
	if (conf_get_strings(conf, g, "headers_present", false, &r->headers_present) < 0)
		ret = -1;
	for (i = 0; r->from_domains != NULL && r->from_domains[i] != NULL; i++)
		str_lower(r->from_domains[i]);
	for (i = 0; r->to_domains != NULL && r->to_domains[i] != NULL; i++)
		str_lower(r->to_domains[i]);
	ret |= conf_get_bool(conf, g, "from_not_amazon", false, &r->from_not_amazon) < 0 ? -1 : 0;
	ret |= conf_get_bool(conf, g, "from_lookalike", false, &r->from_lookalike) < 0 ? -1 : 0;
	ret |= conf_get_bool(conf, g, "owner_from_sender", false,
	    &r->owner_from_sender) < 0 ? -1 : 0;
	r->bulk = true;
	if (conf_get_bool(conf, g, "bulk", false, &r->bulk) < 0)
		ret = -1;
	if (conf_get_string(conf, g, "trust", false, &trust) < 0)
		ret = -1;
	else if (trust != NULL && strcmp(trust, "sender") == 0)
		r->trust_sender = true;
	else if (trust != NULL && strcmp(trust, "amazon") != 0) {
		conf_error(conf, config_setting_get_member(g, "trust"), "%s: trust must "
		    "be \"amazon\" (the mail must pass as Amazon's) or \"sender\" (a "
		    "rights owner's own mail: not a look-alike, no DMARC failure)", where);
		ret = -1;
	}
	free(trust);
	if (conf_get_string(conf, g, "infringement_type", false, &r->default_type) < 0)
		ret = -1;
	else if (r->default_type != NULL && !is_type_name(r->default_type)) {
		conf_error(conf, config_setting_get_member(g, "infringement_type"),
		    "%s: unknown type \"%s\" (use copyright, trademark, patent, "
		    "design_patent or counterfeit)", where, r->default_type);
		ret = -1;
	}
	ret |= load_patterns(conf, g, "subject", where, &r->subject) < 0 ? -1 : 0;
	ret |= load_patterns(conf, g, "not_subject", where, &r->not_subject) < 0 ? -1 : 0;
	ret |= load_patterns(conf, g, "body", where, &r->body) < 0 ? -1 : 0;
	ret |= load_patterns(conf, g, "body_any", where, &r->body_any) < 0 ? -1 : 0;
	ret |= load_patterns(conf, g, "not_body", where, &r->not_body) < 0 ? -1 : 0;
	ret |= load_patterns(conf, g, "text_any", where, &r->text_any) < 0 ? -1 : 0;
	if (load_fields(conf, g, where, r->fields, r->has_field) < 0)
		ret = -1;
	r->extract = (1u << NFIELDS) - 1;
	ret |= load_field_set(conf, g, "extract", where, &r->extract) < 0 ? -1 : 0;
	ret |= load_field_set(conf, g, "require", where, &r->require) < 0 ? -1 : 0;
	if (load_lexicon(conf, g, "outcomes", where, LEX_OUTCOMES, &r->outcomes) < 0)
		ret = -1;
	conditions = r->from_domains != NULL || r->from_not_amazon || r->from_lookalike ||
	    r->to_domains != NULL || r->headers_present != NULL || r->subject.n ||
	    r->body.n || r->body_any.n || r->text_any.n || r->require;
	if (ret == 0 && !conditions) {
		conf_error(conf, g, "%s: has no condition and would match every mail "
		    "(add from_domains, subject, body, ...)", where);
		ret = -1;
	}
	free(where);
	return ret;
}

static int
rule_cmp(const void *a, const void *b)
{
	const struct rule	*x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int
load_settings(struct conf *conf, struct rules *r, const config_setting_t *s)
{
	const char	*w = "rule_settings";
	int		 ret = 0, match_limit = DEFAULT_MATCH_LIMIT;
	int		 depth_limit = DEFAULT_DEPTH_LIMIT, heap_kb = DEFAULT_HEAP_LIMIT_KB;

	r->jit_on = true;
	if (s != NULL) {
		if (conf_check_keys(conf, s, settings_keys) != 0)
			ret = -1;
		ret |= conf_get_bool(conf, s, "jit", false, &r->jit_on) < 0 ? -1 : 0;
		ret |= conf_get_int(conf, s, "match_limit", false, 1000, 100000000,
		    &match_limit) < 0 ? -1 : 0;
		ret |= conf_get_int(conf, s, "depth_limit", false, 100, 10000000,
		    &depth_limit) < 0 ? -1 : 0;
		ret |= conf_get_int(conf, s, "heap_limit_kb", false, 1024, 1024 * 1024,
		    &heap_kb) < 0 ? -1 : 0;
		/* Each loaded on its own, so that every error is reported at once. */
		ret |= load_fields(conf, s, w, r->fields, NULL) < 0 ? -1 : 0;
		ret |= load_patterns(conf, s, "lawsuit", w, &r->lawsuit) < 0 ? -1 : 0;
		ret |= load_patterns(conf, s, "quote_markers", w, &r->quote_markers) < 0 ? -1 : 0;
		ret |= load_patterns(conf, s, "ignore_lines", w, &r->ignore_lines) < 0 ? -1 : 0;
		ret |= load_patterns(conf, s, "marketplace_hints", w,
		    &r->marketplace_hints) < 0 ? -1 : 0;
		ret |= load_patterns(conf, s, "prescreen_subject", w,
		    &r->prescreen_subject) < 0 ? -1 : 0;
		ret |= load_lexicon(conf, s, "types", w, LEX_TYPES, &r->types) < 0 ? -1 : 0;
		ret |= load_lexicon(conf, s, "type_refine", w, LEX_REFINE,
		    &r->type_refine) < 0 ? -1 : 0;
		ret |= load_lexicon(conf, s, "numbers", w, LEX_NUMBERS, &r->numbers) < 0 ? -1 : 0;
		ret |= load_lexicon(conf, s, "units", w, LEX_UNITS, &r->units) < 0 ? -1 : 0;
	}
	/* Bounds every match: a pathological pattern fails one match, not the daemon. */
	if ((r->mctx = pcre2_match_context_create(NULL)) == NULL)
		fatal("pcre2_match_context_create");
	pcre2_set_match_limit(r->mctx, (uint32_t)match_limit);
	pcre2_set_depth_limit(r->mctx, (uint32_t)depth_limit);
	pcre2_set_heap_limit(r->mctx, (uint32_t)heap_kb);
	if ((r->jit = pcre2_jit_stack_create(32 * 1024, JIT_STACK_MAX, NULL)) != NULL)
		pcre2_jit_stack_assign(r->mctx, NULL, r->jit);
	return ret;
}

/*
 * The config has no "rules": read the shipped rules.conf next to it, so a
 * minimal config still recognises notices.
 */
static config_t *
load_shipped(struct conf *conf)
{
	config_t	*cfg;
	char		*path = conf_path(conf, "rules.conf");
	struct stat	 st;

	if (stat(path, &st) != 0) {
		conf_error(conf, NULL, "no rules (add @include \"rules.conf\" with the "
		    "shipped rules, or rules = ( ... );)");
		free(path);
		return NULL;
	}
	cfg = xcalloc(1, sizeof(*cfg));
	config_init(cfg);
	config_set_include_dir(cfg, conf->dir);
	if (config_read_file(cfg, path) == CONFIG_FALSE) {
		conf_error(conf, NULL, "%s:%d: %s", config_error_file(cfg) ?
		    config_error_file(cfg) : path, config_error_line(cfg),
		    config_error_text(cfg) ? config_error_text(cfg) : "parse error");
		config_destroy(cfg);
		free(cfg);
		free(path);
		return NULL;
	}
	free(path);
	return cfg;
}

/* ---- The subject pre-screen ------------------------------------------ */

/* Decodes the UTF-8 character at s (the pattern compiled as UTF: valid); its length, 0 if not. */
static size_t
utf8_char(const unsigned char *s, size_t left, uint32_t *c)
{
	size_t	n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0, i;

	if (n == 0 || n > left)
		return 0;
	*c = s[0] & (0x7f >> n);
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*c = *c << 6 | (s[i] & 0x3f);
	}
	return n;
}

/* ASCII lower case, whatever the locale: PCRE2 folds ASCII the same way everywhere. */
static unsigned char
ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool
is_quantifier(char c)
{
	return c == '?' || c == '*' || c == '+' || c == '{';
}

/*
 * The end of the class that starts at p ('['), or NULL: unterminated, or a
 * POSIX class ([:alpha:]), whose ']' this does not follow.
 */
static const char *
class_end(const char *p, const char *end)
{
	p++;
	if (p < end && *p == '^')
		p++;
	if (p < end && *p == ']')	/* a ']' first is a literal */
		p++;
	for (; p < end; p++) {
		if (*p == '\\') {
			/* \cX: X is escaped too, even a ']'. */
			if (p + 1 < end && p[1] == 'c')
				p++;
			p++;
			continue;
		}
		if (*p == '[' && p + 1 < end && strchr(":.=", p[1]) != NULL)
			return NULL;
		if (*p == ']')
			return p;
	}
	return NULL;
}

/*
 * The end of the branch that starts at p: the '|' or ')' closing it at its
 * own depth, or end.  NULL when the text is beyond this reading.
 */
static const char *
branch_end(const char *p, const char *end)
{
	int	depth = 0;

	for (; p < end; p++) {
		if (*p == '\\') {
			/* \cX: X is escaped too, even a backslash. */
			if (p + 1 < end && p[1] == 'c')
				p++;
			if (++p >= end)
				return NULL;
		} else if (*p == '[') {
			if ((p = class_end(p, end)) == NULL)
				return NULL;
		} else if (*p == '(')
			depth++;
		else if (*p == ')') {
			if (depth == 0)
				return p;
			depth--;
		} else if (*p == '|' && depth == 0)
			return p;
	}
	return depth == 0 ? p : NULL;
}

/*
 * Can code point c, a literal of a caseless pattern, match an ASCII
 * character?  Unicode folds a few onto ASCII (U+017F long s, U+212A Kelvin
 * sign): PCRE2 itself is asked, with the rules' own flags.
 */
static bool
matches_ascii(uint32_t c)
{
	pcre2_code		*re;
	pcre2_match_data	*md;
	char			 src[32], ascii[128];
	PCRE2_SIZE		 off;
	int			 code, rc, i;

	snprintf(src, sizeof(src), "\\x{%x}", (unsigned)c);
	if ((re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED,
	    RULE_PCRE2_FLAGS, &code, &off, NULL)) == NULL)
		return true;
	if ((md = pcre2_match_data_create(1, NULL)) == NULL)
		fatal("pcre2_match_data_create");
	for (i = 1; i < 128; i++)
		ascii[i - 1] = (char)i;
	rc = pcre2_match(re, (PCRE2_SPTR)ascii, 127, 0, 0, md, NULL);
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	return rc != PCRE2_ERROR_NOMATCH;
}

static void
literal_add(struct subject_screen *sc, size_t pattern, const char *text, size_t len)
{
	struct screen_literal	*l;

	sc->lit = xreallocarray(sc->lit, sc->nlit + 1, sizeof(*sc->lit));
	l = &sc->lit[sc->nlit++];
	l->text = xstrndup(text, len);
	l->len = len;
	l->pattern = pattern;
}

/*
 * Adds to sc the literals of the branch p..end of pattern i: one of them is
 * in any ASCII text the branch matches.  None when the branch cannot match
 * ASCII text at all (it needs a character like "é").  False when its start
 * is beyond this reading (a class, an optional group, an escape...): then
 * pattern i runs on every subject.
 */
static bool
branch_literals(struct subject_screen *sc, size_t i, const char *p, const char *end)
{
	const char	*inner, *close, *q, *e;
	char		 run[256];
	size_t		 n = 0, clen;
	uint32_t	 c = 0;

	/* Assertions that take no text: \b, \B, ^ (a match starts at the next thing). */
	for (;;) {
		if (p + 1 < end && p[0] == '\\' && (p[1] == 'b' || p[1] == 'B'))
			p += 2;
		else if (p < end && p[0] == '^')
			p++;
		else
			break;
		if (p < end && is_quantifier(*p))
			return false;
	}
	if (p >= end)
		return false;
	if (*p == '(') {
		/* A group that must match: (...), (?:...), (?<name>...). */
		if (p + 1 < end && p[1] != '?')
			inner = p + 1;
		else if (p + 2 < end && p[2] == ':')
			inner = p + 3;
		else if (p + 3 < end && p[2] == '<' && isalpha((unsigned char)p[3])) {
			if ((inner = memchr(p, '>', (size_t)(end - p))) == NULL)
				return false;
			inner++;
		} else
			return false;
		for (q = inner;; q = e + 1) {
			if ((e = branch_end(q, end)) == NULL || e >= end)
				return false;
			if (!branch_literals(sc, i, q, e))
				return false;
			if (*e == ')')
				break;
		}
		close = e;
		return !(close + 1 < end && is_quantifier(close[1]));
	}
	/* A run of literal characters, each there exactly once. */
	for (q = p; q < end && n < sizeof(run); q += clen) {
		if ((unsigned char)*q < 0x80) {
			if (strchr("\\^$.|?*+()[]{}", *q) != NULL)
				break;
			clen = 1;
		} else
			clen = utf8_char((const unsigned char *)q, (size_t)(end - q), &c);
		if (clen == 0 || (q + clen < end && is_quantifier(q[clen])))
			break;
		if ((unsigned char)*q < 0x80)
			run[n++] = (char)ascii_lower((unsigned char)*q);
		else if (matches_ascii(c))
			break;
		else
			return true;	/* needs a character no ASCII text has */
	}
	if (n == 0)
		return false;
	literal_add(sc, i, run, n);
	return true;
}

/* The literals of pattern i (sc->v[i], written as src); false: it runs always. */
static bool
screen_literals(struct subject_screen *sc, size_t i, const char *src)
{
	const char	*end = src + strlen(src), *p, *e;
	size_t		 had = sc->nlit;

	/*
	 * Verbs and start options ((*...)), quoting (\Q...\E) and inline
	 * options ((?i), (?x): extended mode makes spaces and # mean other
	 * things) change how the rest reads: such a pattern always runs.
	 */
	for (p = src; (p = strchr(p, '(')) != NULL; p++)
		if (p[1] == '*' || (p[1] == '?' && strchr(":<=!", p[2]) == NULL))
			goto always;
	if (strstr(src, "\\Q") != NULL || strstr(src, "\\E") != NULL)
		goto always;
	for (p = src;; p = e + 1) {
		if ((e = branch_end(p, end)) == NULL || (e < end && *e != '|'))
			goto always;
		if (!branch_literals(sc, i, p, e))
			goto always;
		if (e == end)
			return true;
	}
always:
	while (sc->nlit > had)
		free(sc->lit[--sc->nlit].text);
	return false;
}

static void
screen_add(struct subject_screen *sc, const struct patterns *p)
{
	size_t	i;

	for (i = 0; i < p->n; i++) {
		sc->v = xreallocarray(sc->v, sc->n + 1, sizeof(*sc->v));
		sc->filtered = xreallocarray(sc->filtered, sc->n + 1, sizeof(*sc->filtered));
		sc->v[sc->n] = p->v[i].re;
		sc->filtered[sc->n] = screen_literals(sc, sc->n, p->v[i].src);
		sc->n++;
	}
}

static int
literal_cmp(const void *a, const void *b)
{
	const struct screen_literal	*x = a, *y = b;

	if (x->text[0] != y->text[0])
		return (unsigned char)x->text[0] < (unsigned char)y->text[0] ? -1 : 1;
	return x->pattern < y->pattern ? -1 : x->pattern > y->pattern;
}

/* The patterns rules_prescreen() runs on the subject, in the order the rules try them. */
static void
screen_build(struct rules *r)
{
	struct subject_screen	*sc = &r->screen;
	size_t			 i;

	screen_add(sc, &r->prescreen_subject);
	screen_add(sc, &r->fields[F_COMPLAINT_ID]);
	for (i = 0; i < r->n; i++)
		screen_add(sc, &r->v[i].subject);
	if (sc->nlit > 0)
		qsort(sc->lit, sc->nlit, sizeof(*sc->lit), literal_cmp);
	for (i = 0; i < NELEM(sc->first); i++)
		sc->first[i] = sc->nlit;
	for (i = sc->nlit; i > 0; i--)
		sc->first[(unsigned char)sc->lit[i - 1].text[0]] = i - 1;
	sc->seen = xcalloc(sc->n + 1, sizeof(*sc->seen));
	/* Whether a pattern matched is all the pre-screen asks: one pair. */
	if ((sc->md = pcre2_match_data_create(1, NULL)) == NULL)
		fatal("pcre2_match_data_create");
}

static void
screen_free(struct subject_screen *sc)
{
	size_t	i;

	for (i = 0; i < sc->nlit; i++)
		free(sc->lit[i].text);
	free(sc->lit);
	free(sc->v);
	free(sc->filtered);
	free(sc->seen);
	pcre2_match_data_free(sc->md);
	memset(sc, 0, sizeof(*sc));
}

/* Compiles list and settings into r, with conf's domains, accounts and seller addresses. */
static struct rules *
rules_compile(struct conf *conf, struct rules *r, const config_setting_t *list,
    const config_setting_t *settings)
{
	size_t			 i, j, n;
	int			 ret = 0;

	if (load_settings(conf, r, settings) < 0)
		ret = -1;
	if (!config_setting_is_list(list)) {
		conf_error(conf, list, "rules: must be a list of groups ( { name = ...; "
		    "kind = ...; ... }, ... )");
		rules_free(r);
		return NULL;
	}
	n = (size_t)config_setting_length(list);
	r->v = xcalloc(n + 1, sizeof(*r->v));
	for (i = 0; i < n; i++) {
		struct rule *rule = &r->v[r->n];

		if (load_rule(conf, config_setting_get_elem(list, (unsigned)i), i, rule) != 0) {
			rule_clear(rule);
			memset(rule, 0, sizeof(*rule));
			ret = -1;
			continue;
		}
		for (j = 0; j < r->n; j++)
			if (strcmp(r->v[j].name, rule->name) == 0) {
				conf_error(conf, config_setting_get_elem(list, (unsigned)i),
				    "rules[%zu]: the name \"%s\" is already used by an "
				    "earlier rule (names must be unique)", i, rule->name);
				ret = -1;
			}
		rule->order = i;
		r->n++;
	}
	qsort(r->v, r->n, sizeof(*r->v), rule_cmp);
	r->amazon_domains = strv_dup(conf->amazon_domains);
	r->authserv_ids = strv_new();
	for (i = 0; i < conf->naccounts; i++)
		for (j = 0; conf->accounts[i].authserv_ids != NULL &&
		    conf->accounts[i].authserv_ids[j] != NULL; j++)
			if (!strv_has(r->authserv_ids, conf->accounts[i].authserv_ids[j]))
				strv_push(&r->authserv_ids, conf->accounts[i].authserv_ids[j]);
	r->seller_addrs = strv_dup(conf->smtp.to);
	if (conf->smtp.from != NULL)
		strv_push(&r->seller_addrs, conf->smtp.from);
	for (i = 0; r->seller_addrs[i] != NULL; i++)
		str_lower(r->seller_addrs[i]);
	if (ret != 0) {
		rules_free(r);
		return NULL;
	}
	screen_build(r);
	return r;
}

struct rules *
rules_load(struct conf *conf)
{
	struct rules		*r = xcalloc(1, sizeof(*r));
	const config_setting_t	*list, *settings;

	list = conf_section(conf, "rules");
	settings = conf_section(conf, "rule_settings");
	if (list == NULL) {
		if ((r->own_cfg = load_shipped(conf)) == NULL) {
			rules_free(r);
			return NULL;
		}
		list = config_lookup(r->own_cfg, "rules");
		settings = config_lookup(r->own_cfg, "rule_settings");
		if (list == NULL) {
			conf_error(conf, NULL, "rules.conf has no rules = ( ... );");
			rules_free(r);
			return NULL;
		}
	}
	return rules_compile(conf, r, list, settings);
}

struct rules *
rules_load_text(struct conf *conf, const char *name, const char *text, size_t len)
{
	struct rules		*r = xcalloc(1, sizeof(*r));
	const config_setting_t	*list;
	char			*copy = xstrndup(text, len);

	r->own_cfg = xcalloc(1, sizeof(*r->own_cfg));
	config_init(r->own_cfg);
	if (config_read_string(r->own_cfg, copy) == CONFIG_FALSE) {
		conf_error(conf, NULL, "%s:%d: %s", name, config_error_line(r->own_cfg),
		    config_error_text(r->own_cfg) != NULL ?
		    config_error_text(r->own_cfg) : "parse error");
		free(copy);
		rules_free(r);
		return NULL;
	}
	free(copy);
	if ((list = config_lookup(r->own_cfg, "rules")) == NULL) {
		conf_error(conf, NULL, "%s has no rules = ( ... );", name);
		rules_free(r);
		return NULL;
	}
	return rules_compile(conf, r, list, config_lookup(r->own_cfg, "rule_settings"));
}

void
rules_free(struct rules *r)
{
	size_t	i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		rule_clear(&r->v[i]);
	free(r->v);
	for (i = 0; i < NFIELDS; i++)
		patterns_free(&r->fields[i]);
	patterns_free(&r->lawsuit);
	patterns_free(&r->quote_markers);
	patterns_free(&r->ignore_lines);
	patterns_free(&r->marketplace_hints);
	patterns_free(&r->prescreen_subject);
	screen_free(&r->screen);
	lexicon_free(&r->types);
	lexicon_free(&r->type_refine);
	lexicon_free(&r->numbers);
	lexicon_free(&r->units);
	strv_free(r->amazon_domains);
	strv_free(r->authserv_ids);
	strv_free(r->seller_addrs);
	pcre2_match_context_free(r->mctx);
	pcre2_jit_stack_free(r->jit);
	if (r->own_cfg != NULL) {
		config_destroy(r->own_cfg);
		free(r->own_cfg);
	}
	free(r);
}

/* ---- Matching -------------------------------------------------------- */

/*
 * Set when the system refuses JIT (systemd's MemoryDenyWriteExecute makes
 * every attempt fail): the patterns are interpreted, slower, same result.
 */
static bool	jit_refused;

/*
 * JIT-compiles re at its first match rather than at load: compiling every
 * pattern cost 12 ms at each start, and a poll with no new mail, or a scan
 * without a notice, runs few of them.
 */
static void
jit_on_first_use(const struct rules *r, const pcre2_code *re)
{
	size_t	size = 0;

	if (!r->jit_on || jit_refused ||
	    (pcre2_pattern_info(re, PCRE2_INFO_JITSIZE, &size) == 0 && size > 0))
		return;
	/* The code is ours (compile() made it); only its JIT part is added. */
	if (pcre2_jit_compile((pcre2_code *)(uintptr_t)re, PCRE2_JIT_COMPLETE) != 0) {
		log_debug("no JIT for patterns: they are interpreted");
		jit_refused = true;
	}
}

/*
 * Runs re on s from start.  A match error (a limit hit, a bad subject) counts
 * as no match: one bad pattern must not stall the daemon or hide other rules.
 */
static bool
re_match(const struct rules *r, const pcre2_code *re, const char *s, size_t len,
    size_t start, pcre2_match_data *md)
{
	int	rc;

	if (start > len)
		return false;
	jit_on_first_use(r, re);
	rc = pcre2_match(re, (PCRE2_SPTR)s, len, start, 0, md, r->mctx);
	if (rc >= 0)
		return true;
	if (rc != PCRE2_ERROR_NOMATCH)
		log_debug("pattern match failed (%d): treated as no match", rc);
	return false;
}

static bool
any_match(const struct rules *r, const struct patterns *p, const char *s, size_t len,
    pcre2_match_data *md)
{
	size_t	i;

	for (i = 0; i < p->n; i++)
		if (re_match(r, p->v[i].re, s, len, 0, md))
			return true;
	return false;
}

static bool
all_match(const struct rules *r, const struct patterns *p, const char *s, size_t len,
    pcre2_match_data *md)
{
	size_t	i;

	for (i = 0; i < p->n; i++)
		if (!re_match(r, p->v[i].re, s, len, 0, md))
			return false;
	return true;
}

/* The next offset to search from after a match, past empty matches and whole UTF-8 characters. */
static size_t
next_start(const char *s, size_t len, pcre2_match_data *md)
{
	PCRE2_SIZE	*ov = pcre2_get_ovector_pointer(md);
	size_t		 next = ov[1];

	if (ov[1] <= ov[0]) {
		next = ov[0] + 1;
		while (next < len && ((unsigned char)s[next] & 0xc0) == 0x80)
			next++;
	}
	return next;
}

/* The bounds of group g of the last match; false when it did not take part. */
static bool
group_span(pcre2_match_data *md, int g, size_t *b, size_t *e)
{
	PCRE2_SIZE	*ov = pcre2_get_ovector_pointer(md);

	if (g < 0 || (uint32_t)g >= pcre2_get_ovector_count(md))
		return false;
	if (ov[2 * g] == PCRE2_UNSET || ov[2 * g + 1] < ov[2 * g])
		return false;
	*b = ov[2 * g];
	*e = ov[2 * g + 1];
	return true;
}

/* ---- The text -------------------------------------------------------- */

static bool
is_bulk(const struct message *m)
{
	return m->has_list_id || (m->precedence != NULL &&
	    (strcmp(m->precedence, "bulk") == 0 || strcmp(m->precedence, "list") == 0 ||
	    strcmp(m->precedence, "junk") == 0));
}

/*
 * The mail's own words: the text up to the first quote marker ("-----Original
 * Message-----", "Am ... schrieb ...:"), without "> " quoted lines and
 * boilerplate lines (rule_settings.ignore_lines).  A
 * forwarded or quoted notice is someone else's mail, not a new notice.
 */
static void
doc_build(const struct rules *r, const struct message *m, pcre2_match_data *md,
    struct doc *d)
{
	const char	*text = m->text != NULL ? m->text : "";
	size_t		 len = m->text != NULL ? m->text_len : 0, cut = len, i;
	PCRE2_SIZE	*ov;
	const char	*p, *nl, *end, *q;
	struct buf	 body = { 0 }, all = { 0 };

	memset(d, 0, sizeof(*d));
	for (i = 0; i < r->quote_markers.n; i++)
		if (re_match(r, r->quote_markers.v[i].re, text, cut, 0, md)) {
			ov = pcre2_get_ovector_pointer(md);
			cut = ov[0];
		}
	end = text + cut;
	for (p = text; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		for (q = p; q < nl && (*q == ' ' || *q == '\t'); q++)
			;
		if (q < nl && *q == '>')
			continue;
		/* Boilerplate ("... are trademarks of Amazon.com") says nothing about the mail. */
		if (q < nl && any_match(r, &r->ignore_lines, p, (size_t)(nl - p), md))
			continue;
		buf_append(&body, p, (size_t)(nl - p));
		buf_append(&body, "\n", 1);
	}
	d->body_len = body.len;
	d->body = buf_steal(&body);
	d->subject = m->subject != NULL ? m->subject : "";
	d->subject_len = strlen(d->subject);
	buf_append(&all, d->subject, d->subject_len);
	buf_append(&all, "\n", 1);
	buf_append(&all, d->body, d->body_len);
	d->text_len = all.len;
	d->text = buf_steal(&all);
	d->bulk = is_bulk(m);
}

static void
doc_free(struct doc *d)
{
	free(d->body);
	free(d->text);
	memset(d, 0, sizeof(*d));
}

/* ---- Conditions ------------------------------------------------------ */

static bool
domain_matches(const char *domain, char *const *list, char *const *amazon,
    bool lookalike)
{
	char *const	*p;
	const char	*one[2] = { NULL, NULL };

	if (domain == NULL)
		return false;
	for (p = list; *p != NULL; p++) {
		if (strcmp(*p, "@amazon") == 0) {
			if (domain_in_list(domain, amazon) || lookalike)
				return true;
			continue;
		}
		one[0] = *p;
		if (domain_in_list(domain, (char *const *)one))
			return true;
	}
	return false;
}

static char *
lower_domain_of(const char *addr)
{
	const char	*d;
	char		*s;

	if (addr == NULL || (d = address_domain(addr)) == NULL)
		return NULL;
	s = xstrdup(d);
	str_lower(s);
	return s;
}

static bool
is_seller(const struct rules *r, const char *addr)
{
	char *const	*p;

	for (p = r->seller_addrs; p != NULL && *p != NULL; p++)
		if (strcasecmp(*p, addr) == 0)
			return true;
	return false;
}

static bool
rule_conditions(const struct rules *r, const struct rule *rule,
    const struct message *m, const struct auth_verdict *a, const struct doc *d,
    pcre2_match_data *md)
{
	char	*from = lower_domain_of(m->from_addr), *to, *h;
	bool	 ok = false, any;
	size_t	 i;

	if (!rule->bulk && d->bulk)
		goto out;
	/* The seller's own mail (an appeal, a reply) never is a notice of any kind. */
	if (rule->kind != KIND_OTHER && m->from_addr != NULL &&
	    is_seller(r, m->from_addr))
		goto out;
	if (rule->from_domains != NULL && !domain_matches(from, rule->from_domains,
	    r->amazon_domains, a->lookalike && !a->amazon_from))
		goto out;
	if (rule->from_not_amazon && (a->amazon_from || a->lookalike))
		goto out;
	if (rule->from_lookalike && (a->amazon_from || !a->lookalike))
		goto out;
	if (rule->to_domains != NULL) {
		any = false;
		for (i = 0; m->to_addrs != NULL && m->to_addrs[i] != NULL && !any; i++) {
			to = lower_domain_of(m->to_addrs[i]);
			any = domain_matches(to, rule->to_domains, r->amazon_domains, false);
			free(to);
		}
		if (!any)
			goto out;
	}
	for (i = 0; rule->headers_present != NULL && rule->headers_present[i] != NULL; i++) {
		if ((h = message_header(m, rule->headers_present[i])) == NULL)
			goto out;
		free(h);
	}
	if (rule->subject.n > 0 && !any_match(r, &rule->subject, d->subject,
	    d->subject_len, md))
		goto out;
	if (any_match(r, &rule->not_subject, d->subject, d->subject_len, md))
		goto out;
	if (!all_match(r, &rule->body, d->body, d->body_len, md))
		goto out;
	if (rule->body_any.n > 0 && !any_match(r, &rule->body_any, d->body,
	    d->body_len, md))
		goto out;
	if (any_match(r, &rule->not_body, d->body, d->body_len, md))
		goto out;
	if (rule->text_any.n > 0 && !any_match(r, &rule->text_any, d->text,
	    d->text_len, md))
		goto out;
	ok = true;
out:
	free(from);
	return ok;
}

/* ---- Fields ---------------------------------------------------------- */

static const struct patterns *
field_patterns(const struct rules *r, const struct rule *rule, enum field f)
{
	return rule != NULL && rule->has_field[f] ? &rule->fields[f] : &r->fields[f];
}

/* ASCII and full-width digits: the number, or -1 when s holds anything else. */
static long
parse_digits(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s, *e = p + len;
	long			 v = 0;
	int			 digit, n = 0;

	while (p < e) {
		if (*p >= '0' && *p <= '9') {
			digit = *p - '0';
			p++;
		} else if (e - p >= 3 && p[0] == 0xef && p[1] == 0xbc &&
		    p[2] >= 0x90 && p[2] <= 0x99) {
			digit = p[2] - 0x90;
			p += 3;
		} else
			return -1;
		if (++n > 15)
			return -1;
		v = v * 10 + digit;
	}
	return n > 0 ? v : -1;
}

/*
 * Splits s[b, e) into tokens of letters and digits (full-width digits read as
 * ASCII) and keeps those shaped like the field: complaint IDs are 7 to 12
 * digits; ASINs are "B0" and eight letters or digits, or an ISBN-10.
 */
static void
collect_tokens(const char *s, size_t b, size_t e, enum field f, struct hits *h)
{
	const unsigned char	*u = (const unsigned char *)s;
	size_t			 i = b, start, n, k;
	char			 tok[48];
	bool			 digits;

	while (i < e) {
		start = i;
		n = 0;
		while (i < e && n + 1 < sizeof(tok)) {
			if (isalnum(u[i]))
				tok[n++] = (char)toupper(u[i++]);
			else if (u[i] == 0xef && i + 2 < e && u[i + 1] == 0xbc &&
			    u[i + 2] >= 0x90 && u[i + 2] <= 0x99) {
				tok[n++] = (char)('0' + (u[i + 2] - 0x90));
				i += 3;
			} else
				break;
		}
		if (n == 0) {
			i++;
			continue;
		}
		tok[n] = '\0';
		for (digits = true, k = 0; k < n; k++)
			digits = digits && isdigit((unsigned char)tok[k]);
		if (f == F_COMPLAINT_ID && digits && n >= COMPLAINT_MIN_DIGITS &&
		    n <= COMPLAINT_MAX_DIGITS)
			hits_add(h, start, tok);
		else if (f == F_ASIN && n == 10 && ((tok[0] == 'B' && tok[1] == '0') ||
		    (strspn(tok, "0123456789") >= 9 &&
		    (isdigit((unsigned char)tok[9]) || tok[9] == 'X'))))
			hits_add(h, start, tok);
	}
}

/* Every match of every pattern: complaint IDs and ASINs, in order of appearance. */
static char **
extract_list(const struct rules *r, const struct patterns *p, const struct doc *d,
    enum field f, pcre2_match_data *md)
{
	struct hits	 h = { 0 };
	size_t		 i, start, b, e;

	for (i = 0; i < p->n; i++)
		for (start = 0; re_match(r, p->v[i].re, d->text, d->text_len, start, md);
		    start = next_start(d->text, d->text_len, md))
			if (group_span(md, p->v[i].v, &b, &e))
				collect_tokens(d->text, b, e, f, &h);
	return hits_steal(&h);
}

/* The first type whose pattern occurs in s[b, e), or NULL. */
static const char *
type_of(const struct rules *r, const char *s, size_t b, size_t e, pcre2_match_data *inner)
{
	size_t	i;

	for (i = 0; i < r->types.n; i++)
		if (re_match(r, r->types.v[i].re, s + b, e - b, 0, inner))
			return r->types.v[i].name;
	return NULL;
}

/*
 * The infringement type: the first pattern (labels before prose) whose
 * captured words map to a type through rule_settings.types.
 */
static const char *
extract_type(const struct rules *r, const struct rule *rule, const struct doc *d,
    pcre2_match_data *md, pcre2_match_data *inner)
{
	const struct patterns	*p = field_patterns(r, rule, F_TYPE);
	const char		*type = NULL;
	size_t			 i, start, b, e;

	for (i = 0; i < p->n && type == NULL; i++)
		for (start = 0; type == NULL && re_match(r, p->v[i].re, d->text,
		    d->text_len, start, md); start = next_start(d->text, d->text_len, md))
			if (group_span(md, p->v[i].v, &b, &e))
				type = type_of(r, d->text, b, e, inner);
	if (type == NULL && rule != NULL)
		type = rule->default_type;
	if (type == NULL)
		return NULL;
	/* A patent with a design number (US D945,612) is a design patent. */
	for (i = 0; i < r->type_refine.n; i++)
		if (strcmp(r->type_refine.v[i].from, type) == 0 &&
		    re_match(r, r->type_refine.v[i].re, d->text, d->text_len, 0, inner))
			return r->type_refine.v[i].name;
	return type;
}

/* Trims white space, quotes, brackets and list dashes; malloc'd, or NULL when nothing is left. */
static char *
clean_value(const char *s, size_t b, size_t e)
{
	static const char	trim[] = " \t\r\n\"'<>[]()*:;,";

	while (b < e && strchr(trim, s[b]) != NULL)
		b++;
	while (e > b && strchr(trim, s[e - 1]) != NULL)
		e--;
	return e > b ? xstrndup(s + b, e - b) : NULL;
}

/* The first acceptable value of the first pattern that has one. */
static char *
extract_one(const struct rules *r, const struct patterns *p, const struct doc *d,
    enum field f, pcre2_match_data *md)
{
	char	*v;
	size_t	 i, start, b, e;

	for (i = 0; i < p->n; i++)
		for (start = 0; re_match(r, p->v[i].re, d->text, d->text_len, start, md);
		    start = next_start(d->text, d->text_len, md)) {
			if (!group_span(md, p->v[i].v, &b, &e) ||
			    (v = clean_value(d->text, b, e)) == NULL)
				continue;
			if (f == F_OWNER_EMAIL) {
				str_lower(v);
				if (address_valid(v))
					return v;
			} else if (strlen(v) <= NAME_MAX_BYTES && strchr(v, '@') == NULL &&
			    strstr(v, "://") == NULL)
				return v;
			free(v);
		}
	return NULL;
}

/* The value of the first entry of l that matches all of s[b, e), or -1. */
static long
lexicon_value(const struct rules *r, const struct lexicon *l, const char *s,
    size_t b, size_t e, pcre2_match_data *inner)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		if (re_match(r, l->v[i].re, s + b, e - b, 0, inner))
			return l->v[i].value;
	return -1;
}

/*
 * "within 90 days", "innerhalb von drei Wochen", "90日以内": the deadline
 * stated first in the text, in days; -1 when none.  A match whose number or
 * unit is not in the word lists ("within 12 hours") does not count.
 */
static int
extract_deadline(const struct rules *r, const struct rule *rule, const struct doc *d,
    pcre2_match_data *md, pcre2_match_data *inner)
{
	const struct patterns	*p = field_patterns(r, rule, F_DEADLINE);
	size_t			 i, start, nb, ne, ub, ue, best_off = SIZE_MAX;
	long			 n, unit;
	int			 best = -1;

	for (i = 0; i < p->n; i++)
		for (start = 0; re_match(r, p->v[i].re, d->text, d->text_len, start, md);
		    start = next_start(d->text, d->text_len, md)) {
			if (pcre2_get_ovector_pointer(md)[0] >= best_off)
				break;
			if (!group_span(md, p->v[i].n, &nb, &ne) ||
			    !group_span(md, p->v[i].unit, &ub, &ue))
				continue;
			if ((n = parse_digits(d->text + nb, ne - nb)) < 0)
				n = lexicon_value(r, &r->numbers, d->text, nb, ne, inner);
			unit = lexicon_value(r, &r->units, d->text, ub, ue, inner);
			if (n > 0 && unit > 0 && n * unit <= DEADLINE_MAX_DAYS) {
				best = (int)(n * unit);
				best_off = pcre2_get_ovector_pointer(md)[0];
				break;
			}
		}
	return best;
}

/* ---- Marketplace ----------------------------------------------------- */

const char *
marketplace_from_domain(const char *domain)
{
	static const struct { const char *domain, *code; } map[] = {
		{ "amazon.com", "us" }, { "amazon.ca", "ca" }, { "amazon.com.mx", "mx" },
		{ "amazon.co.uk", "uk" }, { "amazon.de", "de" }, { "amazon.fr", "fr" },
		{ "amazon.it", "it" }, { "amazon.es", "es" }, { "amazon.co.jp", "jp" },
		{ "amazon.in", "in" }, { "amazon.com.au", "au" }, { "amazon.com.br", "br" },
		{ "amazon.nl", "nl" }, { "amazon.se", "se" }, { "amazon.pl", "pl" },
		{ "amazon.com.tr", "tr" }, { "amazon.ae", "ae" }, { "amazon.sa", "sa" },
		{ "amazon.sg", "sg" }, { "amazon.eg", "eg" }, { "amazon.com.be", "be" },
		{ "amazon.cn", "cn" }, { "amazon.co.za", "za" }, { "amazon.ie", "ie" },
	};
	char	 d[256];
	size_t	 i, dl, ml;

	if (domain == NULL)
		return NULL;
	snprintf(d, sizeof(d), "%s", domain);
	str_lower(d);
	dl = strlen(d);
	while (dl > 0 && d[dl - 1] == '.')
		d[--dl] = '\0';
	/* Seller Central Europe serves several marketplaces: it names none. */
	if (strcmp(d, "sellercentral-europe.amazon.com") == 0)
		return NULL;
	for (i = 0; i < NELEM(map); i++) {
		ml = strlen(map[i].domain);
		if (ml > dl || strcmp(d + dl - ml, map[i].domain) != 0)
			continue;
		if (ml == dl || d[dl - ml - 1] == '.')
			return map[i].code;
	}
	return NULL;
}

/*
 * A look-alike's pretended marketplace: an "amazon.<tld>" written in the name
 * ("Amazon.de Seller Support"), else a country code as its TLD or one of its
 * words (amazon-de-support.com); NULL when it points nowhere in particular.
 */
static const char *
lookalike_marketplace(const char *name)
{
	static const struct { const char *token, *code; } cc[] = {
		{ "uk", "uk" }, { "gb", "uk" }, { "de", "de" }, { "fr", "fr" },
		{ "it", "it" }, { "es", "es" }, { "jp", "jp" }, { "ca", "ca" },
		{ "mx", "mx" }, { "au", "au" }, { "br", "br" }, { "nl", "nl" },
		{ "se", "se" }, { "pl", "pl" }, { "tr", "tr" }, { "ae", "ae" },
		{ "sg", "sg" }, { "in", "in" },
	};
	char		 buf[256], dom[64], *p, *tok, *save = NULL;
	const char	*code;
	size_t		 i, n;

	if (name == NULL)
		return NULL;
	snprintf(buf, sizeof(buf), "%s", name);
	str_lower(buf);
	for (p = buf; (p = strstr(p, "amazon.")) != NULL; p++) {
		n = strspn(p, "abcdefghijklmnopqrstuvwxyz.");
		snprintf(dom, sizeof(dom), "%.*s", (int)n, p);
		if ((code = marketplace_from_domain(dom)) != NULL)
			return code;
	}
	if ((p = strrchr(buf, '.')) != NULL)
		for (i = 0; i < NELEM(cc); i++)
			if (strcmp(p + 1, cc[i].token) == 0)
				return cc[i].code;
	for (tok = strtok_r(buf, ".-_ @<>\"()", &save); tok != NULL;
	    tok = strtok_r(NULL, ".-_ @<>\"()", &save))
		for (i = 0; i < NELEM(cc); i++)
			/* "in" is a word too often (sign-in) to mean India here. */
			if (strcmp(tok, cc[i].token) == 0 && strcmp(tok, "in") != 0)
				return cc[i].code;
	return NULL;
}

static char *
marketplace_guess(const struct rules *r, const struct message *m,
    const struct auth_verdict *a, const struct doc *d, pcre2_match_data *md)
{
	const char	*texts[3], *code;
	size_t		 lens[3], i, j, start, b, e;
	char		*from = lower_domain_of(m->from_addr), *v;

	if ((code = marketplace_from_domain(from)) != NULL)
		goto out;
	/* A fake points where the brand points: amazon.com, unless it names another. */
	if (a->lookalike && !a->amazon_from) {
		if ((code = lookalike_marketplace(m->from_name)) == NULL &&
		    (from == NULL || !domain_is_lookalike(from, r->amazon_domains) ||
		    (code = lookalike_marketplace(from)) == NULL))
			code = "us";
		goto out;
	}
	/* A rights owner writing to Amazon (a retraction) writes to its marketplace. */
	for (i = 0; m->to_addrs != NULL && m->to_addrs[i] != NULL && code == NULL; i++) {
		v = lower_domain_of(m->to_addrs[i]);
		if (v != NULL && domain_in_list(v, r->amazon_domains))
			code = marketplace_from_domain(v);
		free(v);
	}
	if (code != NULL)
		goto out;
	/* Newsletters name marketplaces in passing: only a real mail's mention counts. */
	if (d->bulk)
		goto out;
	texts[0] = d->subject;
	lens[0] = d->subject_len;
	texts[1] = m->text != NULL ? m->text : "";
	lens[1] = m->text != NULL ? m->text_len : 0;
	texts[2] = m->forwarded_text != NULL ? m->forwarded_text : "";
	lens[2] = m->forwarded_text != NULL ? m->forwarded_len : 0;
	for (j = 0; j < 3 && code == NULL; j++)
		for (i = 0; i < r->marketplace_hints.n && code == NULL; i++)
			for (start = 0; code == NULL && re_match(r,
			    r->marketplace_hints.v[i].re, texts[j], lens[j], start, md);
			    start = next_start(texts[j], lens[j], md)) {
				if (!group_span(md, r->marketplace_hints.v[i].v, &b, &e))
					continue;
				v = xstrndup(texts[j] + b, e - b);
				code = marketplace_from_domain(v);
				free(v);
			}
out:
	free(from);
	return code != NULL ? xstrdup(code) : NULL;
}

/* ---- Classification -------------------------------------------------- */

static void
verdict_init(struct verdict *out)
{
	memset(out, 0, sizeof(*out));
	out->complaint_ids = strv_new();
	out->asins = strv_new();
	out->reasons = strv_new();
	out->deadline_days = -1;
}

/* Fills out's fields from the text as rule says. */
static void
extract_fields(const struct rules *r, const struct rule *rule, const struct message *m,
    const struct doc *d, pcre2_match_data *md, pcre2_match_data *inner,
    struct verdict *out)
{
	unsigned	x = rule->extract;
	const char	*type;
	size_t		i;

	if (x & (1u << F_COMPLAINT_ID)) {
		strv_free(out->complaint_ids);
		out->complaint_ids = extract_list(r, field_patterns(r, rule,
		    F_COMPLAINT_ID), d, F_COMPLAINT_ID, md);
		out->complaint_id = xstrdup(out->complaint_ids[0]);
	}
	if (x & (1u << F_ASIN)) {
		strv_free(out->asins);
		out->asins = extract_list(r, field_patterns(r, rule, F_ASIN), d, F_ASIN, md);
	}
	if ((x & (1u << F_TYPE)) && (type = extract_type(r, rule, d, md, inner)) != NULL)
		out->infringement_type = xstrdup(type);
	if (x & (1u << F_OWNER_NAME))
		out->rights_owner_name = extract_one(r, field_patterns(r, rule,
		    F_OWNER_NAME), d, F_OWNER_NAME, md);
	if (x & (1u << F_OWNER_EMAIL)) {
		out->rights_owner_email = extract_one(r, field_patterns(r, rule,
		    F_OWNER_EMAIL), d, F_OWNER_EMAIL, md);
		if (out->rights_owner_email == NULL && rule->owner_from_sender &&
		    m->from_addr != NULL && address_valid(m->from_addr)) {
			out->rights_owner_email = xstrdup(m->from_addr);
			str_lower(out->rights_owner_email);
		}
	}
	if (x & (1u << F_DEADLINE))
		out->deadline_days = extract_deadline(r, rule, d, md, inner);
	out->lawsuit = any_match(r, &r->lawsuit, d->text, d->text_len, md);
	for (i = 0; i < rule->outcomes.n && out->outcome == NULL; i++)
		if (re_match(r, rule->outcomes.v[i].re, d->text, d->text_len, 0, md))
			out->outcome = xstrdup(rule->outcomes.v[i].name);
}

static bool
has_required(const struct rule *rule, const struct verdict *v)
{
	unsigned	q = rule->require;

	return !((q & (1u << F_COMPLAINT_ID)) && v->complaint_id == NULL) &&
	    !((q & (1u << F_ASIN)) && v->asins[0] == NULL) &&
	    !((q & (1u << F_TYPE)) && v->infringement_type == NULL) &&
	    !((q & (1u << F_OWNER_NAME)) && v->rights_owner_name == NULL) &&
	    !((q & (1u << F_OWNER_EMAIL)) && v->rights_owner_email == NULL) &&
	    !((q & (1u << F_DEADLINE)) && v->deadline_days < 0);
}

static void
reason_add(struct verdict *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
reason_add(struct verdict *out, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	if (!strv_has(out->reasons, s))
		strv_push(&out->reasons, s);
	free(s);
}

/*
 * Whether the mail is what it claims, and the reasons.  A notice-shaped mail
 * must prove it is Amazon's; one that cannot is phishing.  A rights owner's
 * own mail (trust = "sender") only has to be what it says: not a look-alike,
 * not failing its own DMARC.  Where the account declares that its server
 * writes no Authentication-Results, a notice from an Amazon domain with no
 * look-alike trait and no link outside Amazon stays a notice, unverified.
 */
static void
judge(const struct rule *rule, const struct message *m, const struct auth_verdict *a,
    struct verdict *out)
{
	bool	ok, notice, unverified_notice = false;
	size_t	i;

	if (rule != NULL)
		reason_add(out, "rule %s matched (kind %s)", rule->name, kind_name(rule->kind));
	else
		reason_add(out, "no rule matched");
	for (i = 0; i < a->nfindings; i++)
		reason_add(out, "%s", a->findings[i]);
	notice = out->kind != KIND_OTHER && out->kind != KIND_PHISHING;
	if (!notice) {
		out->authentic = out->kind == KIND_PHISHING ? false : a->authentic;
		out->auth_reason = xstrdup(a->reason);
	} else if (rule->trust_sender && !a->amazon_from) {
		ok = !a->lookalike && !a->dmarc_fail && m->from_addr != NULL;
		out->authentic = ok;
		if (ok)
			out->auth_reason = xstrdup(a->dmarc_pass ? "rights owner's own "
			    "mail: dmarc=pass, not a look-alike" : "rights owner's own "
			    "mail: not a look-alike");
		else if (a->lookalike)
			out->auth_reason = xstrdup(a->reason);
		else
			out->auth_reason = xstrdup("dmarc=fail for the sender's domain");
		if (ok && a->unverifiable)
			reason_add(out, "unverified: the receiving server writes no "
			    "Authentication-Results (authserv_ids = [\"none\"]); the "
			    "rights owner's own mail is taken as it says (no look-alike "
			    "trait)");
	} else if (a->unverifiable && a->amazon_from && !a->lookalike &&
	    !a->link_foreign && !a->link_lookalike && !a->link_deceptive) {
		unverified_notice = true;
		out->authentic = false;
		out->auth_reason = xstrdup("unverified: no Authentication-Results to "
		    "check (authserv_ids = [\"none\"]); confirm it in Seller Central");
		reason_add(out, "unverified: the receiving server writes no "
		    "Authentication-Results (authserv_ids = [\"none\"]); sender, "
		    "Reply-To and links show no look-alike trait; confirm the notice "
		    "in Seller Central (Account Health, Performance Notifications)");
	} else {
		out->authentic = a->authentic;
		out->auth_reason = xstrdup(a->reason);
	}
	/* Even Amazon's own mail never hides a foreign host behind an Amazon one. */
	if (notice && (a->link_lookalike || a->link_deceptive) && out->authentic) {
		out->authentic = false;
		free(out->auth_reason);
		out->auth_reason = xstrdup(a->link_deceptive ? "a link shows an Amazon "
		    "host and goes elsewhere" : "a link goes to a look-alike domain");
	}
	if (notice && !out->authentic && !unverified_notice) {
		out->kind = KIND_PHISHING;
		reason_add(out, "phishing: shaped like %s but does not pass as %s "
		    "mail (%s)", kind_name(rule->kind), rule->trust_sender && !a->amazon_from ?
		    "the sender's own" : "Amazon's", out->auth_reason);
	} else if (notice && a->link_foreign && out->authentic)
		reason_add(out, "a link goes outside Amazon: check it before "
		    "following it");
	out->unverified = a->unverifiable && out->kind != KIND_PHISHING;
}

void
rules_classify_ids(const struct rules *r, char *const *authserv_ids,
    const struct message *m, struct verdict *out)
{
	struct auth_verdict	 a;
	struct doc		 d;
	const struct rule	*rule = NULL;
	pcre2_match_data	*md, *inner;
	size_t			 i;

	verdict_clear(out);
	verdict_init(out);
	if ((md = pcre2_match_data_create(OVECTOR_PAIRS, NULL)) == NULL ||
	    (inner = pcre2_match_data_create(OVECTOR_PAIRS, NULL)) == NULL)
		fatal("pcre2_match_data_create");
	auth_check(m, r->amazon_domains, authserv_ids, &a);
	doc_build(r, m, md, &d);
	for (i = 0; i < r->n; i++) {
		if (!rule_conditions(r, &r->v[i], m, &a, &d, md))
			continue;
		extract_fields(r, &r->v[i], m, &d, md, inner, out);
		if (has_required(&r->v[i], out)) {
			rule = &r->v[i];
			break;
		}
		verdict_clear(out);
		verdict_init(out);
	}
	if (rule != NULL) {
		out->kind = rule->kind;
		out->rule = xstrdup(rule->name);
	}
	out->marketplace = marketplace_guess(r, m, &a, &d, md);

	judge(rule, m, &a, out);
	doc_free(&d);
	pcre2_match_data_free(md);
	pcre2_match_data_free(inner);
}

void
rules_classify(const struct rules *r, const struct conf *conf, const struct message *m,
    struct verdict *out)
{
	(void)conf;
	rules_classify_ids(r, r->authserv_ids, m, out);
}

bool
rules_prescreen_subject(const struct rules *r, const char *subject, bool one_by_one)
{
	const struct subject_screen *sc = &r->screen;
	const struct screen_literal *l;
	size_t		 len = strlen(subject), i, j, k;
	bool		 ascii = true;
	unsigned char	 c;

	for (i = 0; i < len && ascii; i++)
		ascii = (unsigned char)subject[i] < 0x80;
	/* Text other than ASCII: every pattern runs (folds, "é"...). */
	if (ascii && !one_by_one) {
		memset(sc->seen, 0, sc->n * sizeof(*sc->seen));
		for (i = 0; i < len; i++) {
			c = ascii_lower((unsigned char)subject[i]);
			for (j = sc->first[c]; j < sc->nlit; j++) {
				l = &sc->lit[j];
				if ((unsigned char)l->text[0] != c)
					break;
				if (sc->seen[l->pattern] || l->len > len - i)
					continue;
				for (k = 1; k < l->len; k++)
					if (ascii_lower((unsigned char)subject[i + k]) !=
					    (unsigned char)l->text[k])
						break;
				if (k == l->len)
					sc->seen[l->pattern] = true;
			}
		}
	}
	for (i = 0; i < sc->n; i++) {
		if (ascii && !one_by_one && sc->filtered[i] && !sc->seen[i])
			continue;
		if (re_match(r, sc->v[i], subject, len, 0, sc->md))
			return true;
	}
	return false;
}

bool
rules_prescreen(const struct rules *r, const struct message *headers)
{
	size_t	 i;
	char	*to;
	bool	 yes = false;

	if (auth_sender_suspect(headers, r->amazon_domains))
		return true;
	for (i = 0; headers->to_addrs != NULL && headers->to_addrs[i] != NULL && !yes; i++) {
		to = lower_domain_of(headers->to_addrs[i]);
		yes = to != NULL && domain_in_list(to, r->amazon_domains);
		free(to);
	}
	if (yes)
		return true;
	return rules_prescreen_subject(r, headers->subject != NULL ?
	    headers->subject : "", false);
}

void
verdict_clear(struct verdict *v)
{
	free(v->rule);
	free(v->complaint_id);
	strv_free(v->complaint_ids);
	strv_free(v->asins);
	free(v->infringement_type);
	free(v->rights_owner_name);
	free(v->rights_owner_email);
	free(v->marketplace);
	free(v->auth_reason);
	free(v->outcome);
	strv_free(v->reasons);
	memset(v, 0, sizeof(*v));
	v->deadline_days = -1;
}

const char *
kind_name(enum kind k)
{
	if ((unsigned)k >= NELEM(kind_names) || kind_names[k] == NULL)
		return "other";
	return kind_names[k];
}

enum kind
kind_from_name(const char *name)
{
	size_t	i;

	for (i = 0; name != NULL && i < NELEM(kind_names); i++)
		if (kind_names[i] != NULL && strcmp(kind_names[i], name) == 0)
			return (enum kind)i;
	return (enum kind)-1;
}
