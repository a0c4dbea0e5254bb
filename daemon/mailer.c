/* mailer.c — compose reminder, digest and alert mail with GMime; send it with libcurl SMTP. */
#include "mailer.h"

#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "log.h"
#include "netreq.h"
#include "util.h"

/* Longest untrusted field we put into a subject or a one-line body field. */
#define SUBJECT_FIELD_MAX	60
#define SUBJECT_MAX		300
#define BODY_FIELD_MAX		400
#define BODY_LINE_MAX		600
#define SUBJECT_ASINS_MAX	3
#define SMTP_LINE_MAX		998	/* RFC 5322 2.1.1, without CRLF */

struct task_info {
	const char	*id;
	const char	*title;		/* for the subject: "Appeal", "Stop selling" */
	const char	*what;		/* WHAT TO DO NOW */
	const char	*where;		/* where in Seller Central */
	const char	*keep;		/* what to keep as evidence */
};

static const struct task_info tasks[] = {
	{ "review", "Review the complaint",
	  "Read the complaint in full: which right is claimed (trademark, "
	  "copyright, patent, design, counterfeit), which ASINs, and who "
	  "complains. Compare it with your listing: is it your own brand, a "
	  "resale of genuine goods, or content (images, text) that could be "
	  "theirs? Check that the complaint is shown in Seller Central; a "
	  "notice you cannot find there is phishing.",
	  "Seller Central > Performance > Account Health > Product Policy "
	  "Compliance > Received Intellectual Property Complaints (look for "
	  "the complaint ID).",
	  "The notice mail (ipcased keeps it) and a dated screenshot of the "
	  "Account Health entry." },
	{ "stop_selling", "Stop selling",
	  "Stop selling the listed ASINs while the complaint stands, so that "
	  "no further complaints pile up against your account. Close the "
	  "listings; do not delete them, you need them to appeal and to "
	  "relist.",
	  "Seller Central > Inventory > Manage All Inventory: select the "
	  "ASINs > Action on selected > Close listings.",
	  "A dated screenshot of the closed listings and your stock count of "
	  "the affected units." },
	{ "evidence", "Gather evidence",
	  "Gather what shows you may sell these goods: supplier invoices "
	  "(your name and address, the supplier's, the product, quantities, "
	  "from the last 365 days), letters of authorisation, licences, your "
	  "own trademark registration, dated photos or design files of your "
	  "content.",
	  "Your own records. The documents go with the appeal in Account "
	  "Health, never to an address you have not checked.",
	  "Originals as PDF, unaltered (prices may be blacked out). ipcased "
	  "keeps every related mail of this case." },
	{ "contact_owner", "Contact the rights owner",
	  "Write to the rights owner at the address the notice gives: ask "
	  "what exactly they claim and, if the complaint is mistaken, ask "
	  "them to retract it through Amazon (a retraction is the fastest way "
	  "back). Stay factual and polite; do not admit an infringement you "
	  "have not checked.",
	  "Your own mail client. Keep the case's subject line so that ipcased "
	  "files your mail and the answers under this case.",
	  "Your mail and every reply (ipcased keeps those it sees)." },
	{ "follow_up", "Follow up with the rights owner",
	  "Follow up on the correspondence with the rights owner: if they "
	  "have not answered, write again; if they have, answer them. When "
	  "they agree to retract, ask them to send the retraction to Amazon "
	  "at notice-dispute@amazon.com, citing the complaint ID.",
	  "Your own mail client; then check Account Health for the "
	  "retraction.",
	  "Every mail in the thread." },
	{ "appeal", "Appeal",
	  "If the complaint is wrong (you sell genuine goods, or your listing "
	  "does not use their rights), appeal with your documents: invoices, "
	  "authorisation, or a short factual explanation citing the complaint "
	  "ID. If it is right, do not appeal: comply and plan how to prevent "
	  "a repeat.",
	  "Seller Central > Performance > Account Health > Product Policy "
	  "Compliance > Received Intellectual Property Complaints > the "
	  "complaint > Appeal.",
	  "A copy of what you submitted and Amazon's answer." },
	{ "legal", "Get legal advice",
	  "Get advice from an IP lawyer now: this case has a patent claim, a "
	  "repeated complaint from the same rights owner or on the same ASIN, "
	  "words of a lawsuit or court, or an account-level warning. Give the "
	  "lawyer the notice, your evidence and the correspondence.",
	  "Your counsel. `ipcase export <case> DIR` writes the case's mail and "
	  "notes into DIR.",
	  "The lawyer's advice in writing." },
	{ "comply", "Comply with the decision",
	  "Comply with the court or legal decision by the date entered: "
	  "remove or change the listings as ordered and stop the sales it "
	  "names.",
	  "Seller Central > Inventory > Manage All Inventory (close or edit "
	  "the listings).",
	  "The decision and dated screenshots that show you complied." },
	{ "resume", "Relist and check",
	  "The complaint was retracted or the listing reinstated. Relist, "
	  "then check that the live listing no longer infringes: title, brand "
	  "field, images, description.",
	  "Seller Central > Inventory > Manage All Inventory > the ASIN > "
	  "Relist; then open the live product page.",
	  "Amazon's reinstatement or retraction mail and a dated screenshot "
	  "of the live listing." },
	{ "prevent", "Prevent a repeat",
	  "Look back: why did it happen and what changes? Listing content "
	  "(only images and text you own or may use), suppliers (authorised "
	  "distributors only), a trademark search before listing a new "
	  "product.",
	  "Your listing and sourcing process; Brand Registry if you own a "
	  "brand.",
	  "A short note in the case: `ipcase note <case> TEXT`." },
	{ "await_decision", "Await Amazon's decision on your report",
	  "You reported a violation through Brand Registry and Amazon "
	  "confirmed it. Wait for the decision and answer Amazon's questions "
	  "quickly.",
	  "Brand Registry > Report a Violation > Submission History.",
	  "The confirmation mail and a copy of your submission." },
	{ "recheck_listing", "Recheck the reported listing",
	  "Check whether the listing you reported has been removed or "
	  "changed. If it is still up, add new dated screenshots to your "
	  "report or report it again.",
	  "The product page, and Brand Registry > Report a Violation > "
	  "Submission History.",
	  "Dated screenshots of the listing." },
};

/* Plain text and HTML written side by side, so the two parts say the same. */
struct doc {
	struct buf	text;
	struct buf	html;
};

static const struct task_info *
task_find(const char *id)
{
	size_t	i;

	for (i = 0; id != NULL && i < NELEM(tasks); i++)
		if (strcmp(tasks[i].id, id) == 0)
			return &tasks[i];
	return NULL;
}

/* Decodes one code point of valid UTF-8 (utf8_sanitize's output); returns its length. */
static size_t
utf8_decode(const unsigned char *s, unsigned *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] < 0xe0) {
		*cp = (s[0] & 0x1fu) << 6 | (s[1] & 0x3fu);
		return 2;
	}
	if (s[0] < 0xf0) {
		*cp = (s[0] & 0x0fu) << 12 | (s[1] & 0x3fu) << 6 | (s[2] & 0x3fu);
		return 3;
	}
	*cp = (s[0] & 0x07u) << 18 | (s[1] & 0x3fu) << 12 | (s[2] & 0x3fu) << 6 |
	    (s[3] & 0x3fu);
	return 4;
}

/*
 * Characters that end a line somewhere (CR, LF, NEL, LS, PS), other
 * controls, and bidi overrides that would let a name reorder what the
 * seller reads.  Each becomes a space.
 */
static bool
cp_is_breaking(unsigned cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
	    cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

/*
 * One line of untrusted text made safe for a header or a body line: valid
 * UTF-8, no control or line-breaking character, spaces collapsed, "=?"
 * split to "= ?", cut at max bytes on a character boundary with "…".
 * Malloc'd; NULL in, "" out.
 */
static char *
text_one_line(const char *s, size_t max)
{
	struct buf	 b = { 0 };
	char		*u;
	const unsigned char *p;
	unsigned	 cp;
	size_t		 n, keep;
	bool		 space = false;

	buf_append(&b, "", 0);
	if (s == NULL)
		return buf_steal(&b);
	u = utf8_sanitize(s, strlen(s));
	for (p = (const unsigned char *)u; *p != '\0'; p += n) {
		n = utf8_decode(p, &cp);
		if (cp_is_breaking(cp) || cp == ' ') {
			space = b.len > 0;
			continue;
		}
		/*
		 * GMime passes a word shaped like an encoded word through
		 * as it is, and readers decode such words even inside other
		 * words (into a CR LF, say): "=?" never survives as such.
		 */
		if (cp == '?' && b.len > 0 && b.data[b.len - 1] == '=')
			space = true;
		if (space)
			buf_append(&b, " ", 1);
		space = false;
		buf_append(&b, p, n);
	}
	free(u);
	if (b.len > max && max > 3) {
		keep = max - 3;
		while (keep > 0 && ((unsigned char)b.data[keep] & 0xc0) == 0x80)
			keep--;
		b.len = keep;
		buf_append(&b, "\xe2\x80\xa6", 3);
	}
	return buf_steal(&b);
}

static GTimeZone *
tz_open(const struct conf *conf, const struct reminder *r)
{
	const char	*name = r->timezone;
	GTimeZone	*tz = NULL;

	if ((name == NULL || *name == '\0') && conf != NULL)
		name = conf->reminders.timezone;
	if (name != NULL && *name != '\0')
		tz = g_time_zone_new_identifier(name);
	return tz != NULL ? tz : g_time_zone_new_utc();
}

/* "Thu 2024-09-12 17:00 CEST" in the seller's time zone; "unknown" for 0. */
static char *
time_show(GTimeZone *tz, time_t t)
{
	GDateTime	*utc, *local;
	char		*s, *ret;

	if (t == 0)
		return xstrdup("unknown");
	if ((utc = g_date_time_new_from_unix_utc((gint64)t)) == NULL)
		return xstrdup("unknown");
	local = g_date_time_to_timezone(utc, tz);
	s = g_date_time_format(local, "%a %Y-%m-%d %H:%M %Z");
	ret = xstrdup(s != NULL ? s : "unknown");
	g_free(s);
	g_date_time_unref(local);
	g_date_time_unref(utc);
	return ret;
}

/* "45m", "24h", "5d": the time left, coarse enough to read at a glance. */
static void
time_left(long sec, char *out, size_t len)
{
	if (sec < 3600)
		snprintf(out, len, "%ldm", sec / 60 > 0 ? sec / 60 : 1);
	else if (sec < 96 * 3600)
		snprintf(out, len, "%ldh", (sec + 1800) / 3600);
	else
		snprintf(out, len, "%ldd", (sec + 43200) / 86400);
}

static bool
reminder_overdue(const struct reminder *r)
{
	if (r->threshold != NULL && strncmp(r->threshold, "overdue", 7) == 0)
		return true;
	return r->due != 0 && r->now >= r->due;
}

/* "B0A, B0B, B0C +2 more", each ASIN cleaned and cut. */
static void
asins_join(struct buf *b, const char *const *asins, size_t show, size_t fieldmax)
{
	size_t	 i, n = 0;
	char	*s;

	for (i = 0; asins != NULL && asins[i] != NULL; i++) {
		if (i >= show)
			continue;
		s = text_one_line(asins[i], fieldmax);
		buf_printf(b, "%s%s", n++ ? ", " : "", s);
		free(s);
	}
	if (i > show)
		buf_printf(b, " +%zu more", i - show);
}

/* ", copyright, B0X, complaint 123": what identifies the case at a glance. */
static void
subject_case_tail(struct buf *b, const struct mail_case *c, const char *sep)
{
	char	*s;

	if (c == NULL)
		return;
	s = text_one_line(c->infringement_type, SUBJECT_FIELD_MAX);
	if (*s != '\0') {
		buf_printf(b, "%s%s", sep, s);
		sep = ", ";
	}
	free(s);
	if (c->asins != NULL && c->asins[0] != NULL) {
		buf_puts(b, sep);
		asins_join(b, c->asins, SUBJECT_ASINS_MAX, SUBJECT_FIELD_MAX);
		sep = ", ";
	}
	s = text_one_line(c->complaint_id, SUBJECT_FIELD_MAX);
	if (*s != '\0')
		buf_printf(b, "%scomplaint %s", sep, s);
	free(s);
}

static size_t
digest_overdue(const struct reminder *r)
{
	size_t	i, n = 0;

	for (i = 0; r->cases != NULL && i < r->ncases; i++)
		if (r->cases[i].next_due != 0 && r->cases[i].next_due <= r->now)
			n++;
	return n;
}

static bool
case_is_phishing(const struct mail_case *c)
{
	return c != NULL && c->kind != NULL && strcmp(c->kind, "phishing") == 0;
}

/* An alert about the daemon itself (a revoked grant, ...), not about a mail. */
static bool
alert_is_system(const struct reminder *r)
{
	return r->kind == REMINDER_ALERT && r->c == NULL && r->task != NULL &&
	    strcmp(r->task, "system") == 0;
}

char *
mailer_subject(const struct reminder *r)
{
	const struct task_info *ti;
	const struct mail_case *c = r->c;
	struct buf	 b = { 0 };
	char		 left[32], *s, *t, *ret;

	if (c != NULL && c->id > 0 && !case_is_phishing(c))
		buf_printf(&b, "[ipcased #%lld] ", (long long)c->id);
	else
		buf_puts(&b, "[ipcased] ");
	switch (r->kind) {
	case REMINDER_TASK:
		ti = task_find(r->task);
		s = ti != NULL ? xstrdup(ti->title) :
		    text_one_line(r->task, SUBJECT_FIELD_MAX);
		if (reminder_overdue(r)) {
			buf_printf(&b, "OVERDUE: %s", s);
		} else if (r->due != 0) {
			time_left((long)(r->due - r->now), left, sizeof(left));
			buf_printf(&b, "%s due in %s", s, left);
		} else
			buf_puts(&b, s);
		free(s);
		if (r->task != NULL && c != NULL && c->rights_owner_name != NULL &&
		    *c->rights_owner_name != '\0' &&
		    (strcmp(r->task, "contact_owner") == 0 ||
		    strcmp(r->task, "follow_up") == 0)) {
			s = text_one_line(c->rights_owner_name, SUBJECT_FIELD_MAX);
			buf_printf(&b, " (%s)", s);
			free(s);
		}
		subject_case_tail(&b, c, reminder_overdue(r) ? " \xe2\x80\x94 " : ": ");
		break;
	case REMINDER_ALERT:
		if (alert_is_system(r)) {
			/* The daemon's own trouble: the first line of alert_text says it. */
			s = xstrndup(r->alert_text != NULL ? r->alert_text : "",
			    r->alert_text != NULL ? strcspn(r->alert_text, "\n") : 0);
			t = text_one_line(s, SUBJECT_FIELD_MAX);
			buf_printf(&b, "Alert: %s", *t != '\0' ? t : "ipcased needs attention");
			free(t);
			free(s);
		} else if (c == NULL || case_is_phishing(c))
			buf_puts(&b, "Alert: phishing mail pretending to be Amazon");
		else if (c->kind != NULL && strcmp(c->kind, "account_warning") == 0)
			buf_puts(&b, "Alert: account health warning from Amazon");
		else {
			s = text_one_line(c->kind, SUBJECT_FIELD_MAX);
			buf_printf(&b, "Alert: %s", s);
			free(s);
			subject_case_tail(&b, c, ": ");
		}
		break;
	case REMINDER_DIGEST:
		buf_printf(&b, "Daily digest: %zu open case%s, %zu overdue",
		    r->ncases, r->ncases == 1 ? "" : "s", digest_overdue(r));
		break;
	case REMINDER_CONFIRM:
		/* The first line of alert_text says what the commands did. */
		s = xstrndup(r->alert_text != NULL ? r->alert_text : "",
		    r->alert_text != NULL ? strcspn(r->alert_text, "\n") : 0);
		buf_puts(&b, *s != '\0' ? s : "Your mail command");
		free(s);
		break;
	}
	buf_append(&b, "", 0);
	/* The pieces are clean already; this only bounds the length. */
	ret = text_one_line(b.data, SUBJECT_MAX);
	buf_free(&b);
	return ret;
}

static bool
addr_domain_in(const char *addr, char *const *domains)
{
	const char	*d = strrchr(addr, '@');
	size_t		 dl, l, i;

	if (d == NULL || domains == NULL)
		return false;
	d++;
	dl = strlen(d);
	for (i = 0; domains[i] != NULL; i++) {
		l = strlen(domains[i]);
		if (dl == l && strcasecmp(d, domains[i]) == 0)
			return true;
		if (dl > l && d[dl - l - 1] == '.' && strcasecmp(d + dl - l, domains[i]) == 0)
			return true;
	}
	return false;
}

const char **
mailer_recipients(const struct conf *conf, const struct reminder *r)
{
	const char	**v;
	const char	 *cand;
	size_t		  n = 0, i, j, nto = 0;
	bool		  dup;

	while (conf->smtp.to != NULL && conf->smtp.to[nto] != NULL)
		nto++;
	v = xcalloc(nto + 2, sizeof(*v));
	for (i = 0; i <= nto; i++) {
		if (i < nto)
			cand = conf->smtp.to[i];
		else if (r->kind == REMINDER_TASK && r->task != NULL &&
		    strcmp(r->task, "legal") == 0)
			cand = conf->smtp.counsel;
		else
			cand = NULL;
		if (cand == NULL || *cand == '\0')
			continue;
		/* Reminders carry the seller's own notes: never to Amazon. */
		if (addr_domain_in(cand, conf->amazon_domains)) {
			log_warnx("smtp: not sending reminders to %s: an Amazon domain", cand);
			continue;
		}
		for (dup = false, j = 0; j < n; j++)
			if (strcasecmp(v[j], cand) == 0)
				dup = true;
		if (!dup)
			v[n++] = cand;
	}
	v[n] = NULL;
	return v;
}

static void
doc_heading(struct doc *d, const char *title)
{
	char	*e = g_markup_escape_text(title, -1);
	size_t	 i, n = strlen(title);

	buf_printf(&d->text, "%s\n", title);
	for (i = 0; i < n; i++)
		if (((unsigned char)title[i] & 0xc0) != 0x80)
			buf_append(&d->text, "-", 1);
	buf_puts(&d->text, "\n\n");
	buf_printf(&d->html, "<h3>%s</h3>\n", e);
	g_free(e);
}

/*
 * A paragraph: our own words, or untrusted text already made one clean
 * line by text_one_line().  The text part is wrapped at 72 columns.
 */
static void
doc_para(struct doc *d, const char *text)
{
	char	*e = g_markup_escape_text(text, -1);
	size_t	 col = 0, wl;
	const char *p = text, *sp;

	while (*p != '\0') {
		sp = strchr(p, ' ');
		wl = sp != NULL ? (size_t)(sp - p) : strlen(p);
		if (col > 0 && col + 1 + wl > 72) {
			buf_append(&d->text, "\n", 1);
			col = 0;
		} else if (col > 0) {
			buf_append(&d->text, " ", 1);
			col++;
		}
		buf_append(&d->text, p, wl);
		col += wl;
		p += wl;
		while (*p == ' ')
			p++;
	}
	buf_puts(&d->text, "\n\n");
	buf_printf(&d->html, "<p>%s</p>\n", e);
	g_free(e);
}

static void
doc_table_open(struct doc *d)
{
	buf_puts(&d->html, "<table cellpadding=\"2\">\n");
}

static void
doc_table_close(struct doc *d)
{
	buf_puts(&d->html, "</table>\n");
	buf_puts(&d->text, "\n");
}

/* label: value, the value untrusted (cleaned to one line here). */
static void
doc_field(struct doc *d, const char *label, const char *value)
{
	char	*v = text_one_line(value, BODY_FIELD_MAX);
	char	*ev, *el;

	if (*v == '\0') {
		free(v);
		v = xstrdup("-");
	}
	ev = g_markup_escape_text(v, -1);
	el = g_markup_escape_text(label, -1);
	buf_printf(&d->text, "%-18s %s\n", label, v);
	buf_printf(&d->html, "<tr><th align=\"left\">%s</th><td>%s</td></tr>\n", el, ev);
	g_free(el);
	g_free(ev);
	free(v);
}

/* Untrusted multi-line text (the correspondence), one cleaned line each. */
static void
doc_lines(struct doc *d, const char *text)
{
	const char	*p = text, *nl;
	char		*raw, *line, *e;

	buf_puts(&d->html, "<ul>\n");
	while (p != NULL && *p != '\0') {
		nl = strchr(p, '\n');
		raw = xstrndup(p, nl != NULL ? (size_t)(nl - p) : strlen(p));
		line = text_one_line(raw, BODY_LINE_MAX);
		if (*line != '\0') {
			e = g_markup_escape_text(line, -1);
			buf_printf(&d->text, "  %s\n", line);
			buf_printf(&d->html, "<li>%s</li>\n", e);
			g_free(e);
		}
		free(line);
		free(raw);
		p = nl != NULL ? nl + 1 : NULL;
	}
	buf_puts(&d->html, "</ul>\n");
	buf_puts(&d->text, "\n");
}

static void
doc_case_summary(struct doc *d, const struct mail_case *c, GTimeZone *tz)
{
	struct buf	 b = { 0 };
	char		*s, *owner, *mail, *when;

	doc_table_open(d);
	s = xasprintf("#%lld (%s, %s)", (long long)c->id,
	    c->kind != NULL ? c->kind : "?", c->status != NULL ? c->status : "?");
	doc_field(d, "Case:", s);
	free(s);
	doc_field(d, "Marketplace:", c->marketplace);
	doc_field(d, "Complaint ID:", c->complaint_id);
	doc_field(d, "Right claimed:", c->infringement_type);
	buf_append(&b, "", 0);
	asins_join(&b, c->asins, 50, SUBJECT_FIELD_MAX);
	doc_field(d, "ASINs:", b.data);
	buf_free(&b);
	owner = text_one_line(c->rights_owner_name, BODY_FIELD_MAX);
	mail = text_one_line(c->rights_owner_email, BODY_FIELD_MAX);
	s = xasprintf("%s%s%s%s", owner, *mail ? " <" : "", mail, *mail ? ">" : "");
	doc_field(d, "Rights owner:", s);
	free(s);
	free(mail);
	free(owner);
	when = time_show(tz, c->opened);
	doc_field(d, "Opened:", when);
	free(when);
	if (c->next_task != NULL) {
		when = time_show(tz, c->next_due);
		s = xasprintf("%s, due %s", c->next_task, when);
		doc_field(d, "Next task:", s);
		free(s);
		free(when);
	}
	doc_table_close(d);
}

static void
doc_correspondence(struct doc *d, const struct mail_case *c)
{
	doc_heading(d, "Correspondence so far");
	if (c->correspondence == NULL || *c->correspondence == '\0')
		doc_para(d, "None yet.");
	else
		doc_lines(d, c->correspondence);
}

static void
doc_task(struct doc *d, const struct reminder *r, GTimeZone *tz)
{
	const struct task_info *ti = task_find(r->task);
	const struct mail_case *c = r->c;
	char	*when, *task, *s;
	char	 left[32];

	task = text_one_line(r->task, SUBJECT_FIELD_MAX);
	when = time_show(tz, r->due);
	if (reminder_overdue(r))
		s = xasprintf("Task \"%s\" of case #%lld was due %s. It is overdue.",
		    task, (long long)(c != NULL ? c->id : 0), when);
	else {
		time_left((long)(r->due - r->now), left, sizeof(left));
		s = xasprintf("Task \"%s\" of case #%lld is due %s (in %s).",
		    task, (long long)(c != NULL ? c->id : 0), when, left);
	}
	doc_para(d, s);
	free(s);
	free(when);
	if (c != NULL) {
		doc_heading(d, "The case");
		doc_case_summary(d, c, tz);
	}
	doc_heading(d, "What to do now");
	if (ti != NULL) {
		doc_para(d, ti->what);
		if (strcmp(ti->id, "contact_owner") == 0 && c != NULL &&
		    c->rights_owner_email != NULL && *c->rights_owner_email != '\0') {
			/* The address is shown as data, in the table, never as a link. */
			doc_table_open(d);
			doc_field(d, "Write to:", c->rights_owner_email);
			doc_table_close(d);
		}
		doc_heading(d, "Where");
		doc_para(d, ti->where);
		doc_heading(d, "Keep as evidence");
		doc_para(d, ti->keep);
	} else
		doc_para(d, "Open the case with `ipcase show` and follow the "
		    "task's instructions.");
	if (c != NULL)
		doc_correspondence(d, c);
	doc_heading(d, "When it is done");
	s = xasprintf("Reply to this mail with the line \"done\", or run "
	    "`ipcase done %lld %s` on the server. To be reminded later instead: "
	    "reply \"snooze 1d\", or `ipcase snooze %lld 1d`. Everything about "
	    "the case: `ipcase show %lld`.", (long long)(c != NULL ? c->id : 0),
	    task, (long long)(c != NULL ? c->id : 0),
	    (long long)(c != NULL ? c->id : 0));
	doc_para(d, s);
	free(s);
	free(task);
}

static void
doc_alert(struct doc *d, const struct reminder *r, GTimeZone *tz)
{
	const struct mail_case *c = r->c;
	char	*s;

	doc_heading(d, "What happened");
	s = text_one_line(r->alert_text != NULL ? r->alert_text :
	    "ipcased raised an alert.", 2000);
	doc_para(d, s);
	free(s);
	if (alert_is_system(r)) {
		doc_heading(d, "What to do");
		doc_para(d, "ipcased cannot do its job for this account until this "
		    "is fixed: see the text above and the daemon's log "
		    "(journalctl -u ipcased). Notices that arrive meanwhile are "
		    "read as soon as it works again; none is lost.");
	} else if (c == NULL || case_is_phishing(c)) {
		doc_heading(d, "What not to do");
		doc_para(d, "Do not click any link in that mail, do not sign in "
		    "from it, do not open its attachments and do not send "
		    "documents, invoices or passwords to its sender. Amazon "
		    "never asks for them by mail.");
		doc_heading(d, "What to do");
		doc_para(d, "Check your account only by typing "
		    "sellercentral.amazon.com yourself: Performance > Account "
		    "Health shows every real complaint. Forward the mail as an "
		    "attachment to stop-spoofing@amazon.com, then delete it.");
	} else {
		doc_heading(d, "What to do");
		doc_para(d, "Open Account Health yourself (type "
		    "sellercentral.amazon.com, do not follow links in mail), "
		    "read the warning and act before its deadline. Consider "
		    "legal advice now. Do not click links in the mail itself.");
	}
	if (c != NULL) {
		doc_heading(d, "The case");
		doc_case_summary(d, c, tz);
		doc_correspondence(d, c);
	}
}

/* What the seller's mail command did: the result lines after alert_text's first. */
static void
doc_confirm(struct doc *d, const struct reminder *r, GTimeZone *tz)
{
	const char	*nl = r->alert_text != NULL ? strchr(r->alert_text, '\n') : NULL;

	doc_heading(d, "What your mail did");
	if (nl != NULL && nl[1] != '\0')
		doc_lines(d, nl + 1);
	else
		doc_para(d, "Nothing was changed.");
	if (r->c != NULL) {
		doc_heading(d, "The case");
		doc_case_summary(d, r->c, tz);
	}
}

static const char *
reminder_kind_name(enum reminder_kind k)
{
	switch (k) {
	case REMINDER_TASK:
		return "task";
	case REMINDER_ALERT:
		return "alert";
	case REMINDER_DIGEST:
		return "digest";
	case REMINDER_CONFIRM:
		return "confirm";
	}
	return "other";
}

static bool
case_is_high(const struct mail_case *c)
{
	return c->urgency != NULL && strcmp(c->urgency, "high") == 0;
}

/* High urgency first, then the nearest due time; cases without one last. */
static int
digest_cmp(const void *a, const void *b)
{
	const struct mail_case *x = *(const struct mail_case *const *)a;
	const struct mail_case *y = *(const struct mail_case *const *)b;

	if (case_is_high(x) != case_is_high(y))
		return case_is_high(x) ? -1 : 1;
	if ((x->next_due == 0) != (y->next_due == 0))
		return x->next_due == 0 ? 1 : -1;
	if (x->next_due != y->next_due)
		return x->next_due < y->next_due ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static void
doc_digest(struct doc *d, const struct reminder *r, GTimeZone *tz)
{
	const struct mail_case **v;
	const struct mail_case *c;
	struct buf	 b = { 0 };
	char		*s, *when, *ctype, *cid, *task;
	size_t		 i;

	s = xasprintf("%zu open case%s, %zu overdue. Most urgent first.",
	    r->ncases, r->ncases == 1 ? "" : "s", digest_overdue(r));
	doc_para(d, s);
	free(s);
	if (r->ncases == 0)
		return;
	v = xcalloc(r->ncases, sizeof(*v));
	for (i = 0; i < r->ncases; i++)
		v[i] = &r->cases[i];
	qsort(v, r->ncases, sizeof(*v), digest_cmp);
	for (i = 0; i < r->ncases; i++) {
		c = v[i];
		ctype = text_one_line(c->infringement_type, SUBJECT_FIELD_MAX);
		cid = text_one_line(c->complaint_id, SUBJECT_FIELD_MAX);
		task = text_one_line(c->next_task, SUBJECT_FIELD_MAX);
		when = time_show(tz, c->next_due);
		buf_append(&b, "", 0);
		asins_join(&b, c->asins, 5, SUBJECT_FIELD_MAX);
		s = xasprintf("#%lld%s%s %s%s%s%s%s", (long long)c->id,
		    case_is_high(c) ? " HIGH" : "",
		    c->next_due != 0 && c->next_due <= r->now ? " OVERDUE" : "",
		    *task ? task : "no open task",
		    c->next_due != 0 ? ", due " : "", c->next_due != 0 ? when : "",
		    *ctype ? "; " : "", ctype);
		doc_heading(d, s);
		free(s);
		doc_table_open(d);
		doc_field(d, "Kind:", c->kind);
		doc_field(d, "Marketplace:", c->marketplace);
		doc_field(d, "Complaint ID:", cid);
		doc_field(d, "ASINs:", b.data);
		doc_field(d, "Rights owner:", c->rights_owner_name);
		doc_table_close(d);
		buf_free(&b);
		free(when);
		free(task);
		free(cid);
		free(ctype);
	}
	doc_para(d, "Details of a case: `ipcase show <case>`. Mark a task "
	    "done: `ipcase done <case> <task>`.");
	free(v);
}

/* A Message-ID of ours, without <>, reduced to the characters RFC 5322 allows in one. */
static char *
msgid_clean(const char *id)
{
	struct buf	 b = { 0 };
	const char	*p;

	buf_append(&b, "", 0);
	for (p = id; p != NULL && *p != '\0'; p++)
		if ((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f &&
		    strchr("<>()[]\\,;:\"", *p) == NULL)
			buf_append(&b, p, 1);
	if (b.len > 200)
		b.len = 200;
	b.data[b.len] = '\0';
	return buf_steal(&b);
}

static bool
token_is_plain(const char *t, size_t len)
{
	size_t	i;

	if (len > 70)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e ||
		    (t[i] == '=' && i + 1 < len && t[i + 1] == '?'))
			return false;
	return true;
}

/* Appends one piece to a folded header value: a space, or a fold when the line is full. */
static void
fold_append(struct buf *b, size_t *col, const char *piece, size_t len)
{
	if (*col + 1 + len > 78 && *col > 9) {
		buf_append(b, "\n", 1);
		*col = 0;
	}
	buf_append(b, " ", 1);
	buf_append(b, piece, len);
	*col += 1 + len;
}

/* One run of words that need encoding, as Q encoded-words of at most 75 characters. */
static void
encode_run(struct buf *b, size_t *col, const char *text, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)text;
	char		 word[80], ch[16];
	size_t		 i = 0, n, k, wl, cl;
	unsigned	 cp;

	while (i < len) {
		wl = (size_t)snprintf(word, sizeof(word), "=?UTF-8?Q?");
		while (i < len) {
			n = utf8_decode(p + i, &cp);
			for (cl = 0, k = 0; k < n; k++) {
				if (p[i + k] == ' ')
					ch[cl++] = '_';
				else if (isalnum(p[i + k]) || strchr("!*+-/", p[i + k]) != NULL)
					ch[cl++] = (char)p[i + k];
				else {
					ch[cl++] = '=';
					ch[cl++] = hex[p[i + k] >> 4];
					ch[cl++] = hex[p[i + k] & 0xf];
				}
			}
			if (wl + cl + 2 > 75)
				break;
			memcpy(word + wl, ch, cl);
			wl += cl;
			i += n;
		}
		memcpy(word + wl, "?=", 2);
		wl += 2;
		fold_append(b, col, word, wl);
	}
}

/*
 * The Subject's raw value, RFC 2047 Q-encoded and folded by us.  GMime
 * 3.2.13 (Debian 12) writes B-encoded words it cannot read back: its
 * decoder joins adjacent B words before decoding, so padding inside
 * ("...LA==?= =?UTF-8?B?IC4u...") loses the rest (GMime issue #133).
 * Q words join safely, so every reader, GMime included, gets our text.
 * The input is one clean line: single spaces, no "=?".
 */
static char *
subject_encode(const char *subject)
{
	struct buf	 b = { 0 };
	const char	*p = subject, *tok, *run = NULL, *run_end = NULL;
	size_t		 col = strlen("Subject:"), tl;

	buf_append(&b, "", 0);
	while (*p != '\0') {
		tok = p;
		tl = strcspn(p, " ");
		p += tl;
		if (*p == ' ')
			p++;
		if (!token_is_plain(tok, tl)) {
			if (run == NULL)
				run = tok;
			run_end = tok + tl;
			continue;
		}
		if (run != NULL) {
			encode_run(&b, &col, run, (size_t)(run_end - run));
			run = NULL;
		}
		fold_append(&b, &col, tok, tl);
	}
	if (run != NULL)
		encode_run(&b, &col, run, (size_t)(run_end - run));
	buf_append(&b, "\n", 1);
	return buf_steal(&b);
}

static GMimeTextPart *
text_part(const char *subtype, const char *text)
{
	GMimeTextPart	*part = g_mime_text_part_new_with_subtype(subtype);

	g_mime_text_part_set_text(part, text);
	g_mime_text_part_set_charset(part, "utf-8");
	g_mime_part_set_content_encoding(GMIME_PART(part),
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	return part;
}

static void
gmime_once(void)
{
	static bool	done;

	if (!done) {
		g_mime_init();
		done = true;
	}
}

char *
mailer_compose(const struct conf *conf, const struct reminder *r, size_t *len)
{
	GMimeMessage	*msg;
	GMimeMultipart	*alt;
	GMimeTextPart	*plain, *html;
	GMimeFormatOptions *fmt;
	GDateTime	*utc, *local;
	GTimeZone	*tz;
	struct doc	 d = { { 0 }, { 0 } };
	const char	**rcpts;
	char		*subject, *id, *thread, *s, *out, *esubj;
	size_t		 i;

	if (r->message_id == NULL || *r->message_id == '\0')
		fatalx("mailer_compose: reminder without a Message-ID");
	gmime_once();
	tz = tz_open(conf, r);
	subject = mailer_subject(r);

	esubj = g_markup_escape_text(subject, -1);
	buf_printf(&d.html, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	    "<title>%s</title></head>\n<body>\n<h2>%s</h2>\n", esubj, esubj);
	g_free(esubj);
	buf_printf(&d.text, "%s\n\n", subject);
	switch (r->kind) {
	case REMINDER_TASK:
		doc_task(&d, r, tz);
		break;
	case REMINDER_ALERT:
		doc_alert(&d, r, tz);
		break;
	case REMINDER_DIGEST:
		doc_digest(&d, r, tz);
		break;
	case REMINDER_CONFIRM:
		doc_confirm(&d, r, tz);
		break;
	}
	/* Mail about a case carries its token in the Message-ID: replies can be commands. */
	if (r->kind != REMINDER_DIGEST && r->c != NULL && r->c->id > 0 &&
	    r->c->token != NULL && *r->c->token != '\0')
		doc_para(&d, "-- ipcased watches your mailbox for Amazon IP "
		    "complaints. This mail was generated automatically. To act "
		    "on the case, reply with command lines at the top of your "
		    "answer: done TASK (or just done), snooze 2d, close REASON, "
		    "note TEXT. Other replies are not read.");
	else
		doc_para(&d, "-- ipcased watches your mailbox for Amazon IP "
		    "complaints. This mail was generated automatically; replies "
		    "are not read.");
	buf_puts(&d.html, "</body></html>\n");

	msg = g_mime_message_new(TRUE);
	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, "ipcased",
	    conf->smtp.from);
	rcpts = mailer_recipients(conf, r);
	for (i = 0; rcpts[i] != NULL; i++)
		g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, NULL, rcpts[i]);
	free(rcpts);
	g_mime_message_set_subject(msg, subject, "utf-8");
	s = subject_encode(subject);
	g_mime_header_set_raw_value(g_mime_header_list_get_header(
	    g_mime_object_get_header_list(GMIME_OBJECT(msg)), "Subject"), s);
	free(s);
	utc = g_date_time_new_from_unix_utc((gint64)(r->now != 0 ? r->now : now_wall()));
	local = g_date_time_to_timezone(utc, tz);
	g_mime_message_set_date(msg, local);
	g_date_time_unref(local);
	g_date_time_unref(utc);
	id = msgid_clean(r->message_id);
	g_mime_message_set_message_id(msg, id);
	if (r->kind == REMINDER_CONFIRM && r->in_reply_to != NULL &&
	    *r->in_reply_to != '\0') {
		/* Threaded under the seller's command, and through it under our reminders. */
		char	*reply = msgid_clean(r->in_reply_to);

		thread = msgid_clean(r->thread_id);
		s = xasprintf("<%s>", reply);
		g_mime_object_set_header(GMIME_OBJECT(msg), "In-Reply-To", s, NULL);
		free(s);
		s = *thread != '\0' ? xasprintf("<%s> <%s>", thread, reply) :
		    xasprintf("<%s>", reply);
		g_mime_object_set_header(GMIME_OBJECT(msg), "References", s, NULL);
		free(s);
		free(thread);
		free(reply);
	} else if (r->thread_id != NULL && *r->thread_id != '\0') {
		thread = msgid_clean(r->thread_id);
		s = xasprintf("<%s>", thread);
		g_mime_object_set_header(GMIME_OBJECT(msg), "In-Reply-To", s, NULL);
		g_mime_object_set_header(GMIME_OBJECT(msg), "References", s, NULL);
		free(s);
		free(thread);
	}
	/* RFC 3834: no vacation or auto-reply must answer a reminder. */
	g_mime_object_set_header(GMIME_OBJECT(msg), "Auto-Submitted", "auto-generated", NULL);
	g_mime_object_set_header(GMIME_OBJECT(msg), "X-Auto-Response-Suppress", "All", NULL);
	/* Marks all our mail, digests too, so that it is known when it comes back. */
	g_mime_object_set_header(GMIME_OBJECT(msg), "X-Ipcased-Kind",
	    reminder_kind_name(r->kind), NULL);
	if (r->kind != REMINDER_DIGEST && r->c != NULL && r->c->id > 0) {
		s = xasprintf("%lld", (long long)r->c->id);
		g_mime_object_set_header(GMIME_OBJECT(msg), "X-Ipcased-Case", s, NULL);
		free(s);
		if (r->c->token != NULL && *r->c->token != '\0') {
			/* Lets a later reply handler tie a reply to its case. */
			s = msgid_clean(r->c->token);
			if (*s != '\0')
				g_mime_object_set_header(GMIME_OBJECT(msg),
				    "X-Ipcased-Token", s, NULL);
			free(s);
		}
	}

	alt = g_mime_multipart_new_with_subtype("alternative");
	buf_append(&d.text, "", 0);
	plain = text_part("plain", d.text.data);
	html = text_part("html", d.html.data);
	g_mime_multipart_add(alt, GMIME_OBJECT(plain));
	g_mime_multipart_add(alt, GMIME_OBJECT(html));
	g_mime_message_set_mime_part(msg, GMIME_OBJECT(alt));
	g_object_unref(plain);
	g_object_unref(html);
	g_object_unref(alt);

	fmt = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fmt, GMIME_NEWLINE_FORMAT_UNIX);
	s = g_mime_object_to_string(GMIME_OBJECT(msg), fmt);
	out = xstrdup(s);
	*len = strlen(out);
	g_free(s);
	g_mime_format_options_free(fmt);
	g_object_unref(msg);
	g_time_zone_unref(tz);
	buf_free(&d.text);
	buf_free(&d.html);
	free(id);
	free(subject);
	return out;
}

/*
 * An envelope address as curl will put it between <> in MAIL FROM or RCPT
 * TO.  curl 7.88 copies CR and LF through (reliability.md 0.5), so
 * anything that could end or extend the command is refused here.
 */
static bool
envelope_valid(const char *a)
{
	const unsigned char *p;
	const char	*at;
	size_t		 len;

	if (a == NULL || (len = strlen(a)) < 3 || len > 254)
		return false;
	for (p = (const unsigned char *)a; *p != '\0'; p++)
		if (*p < 0x21 || *p == 0x7f || *p == '<' || *p == '>')
			return false;
	if (!utf8_valid(a, len))
		return false;
	if ((at = strchr(a, '@')) == NULL || strchr(at + 1, '@') != NULL)
		return false;
	return at != a && at[1] != '\0';
}

/* smtp://host:port[/ehlo]; without a path, EHLO names the From domain. */
static char *
smtp_url(const struct conf *conf)
{
	const char	*url = conf->smtp.url, *host, *dom;
	size_t		 i;

	host = strstr(url, "://");
	host = host != NULL ? host + 3 : url;
	if (strchr(host, '/') != NULL && strchr(host, '/')[1] != '\0')
		return xstrdup(url);
	dom = conf->smtp.from != NULL ? strrchr(conf->smtp.from, '@') : NULL;
	if (dom == NULL || dom[1] == '\0')
		return xstrdup(url);
	dom++;
	for (i = 0; dom[i] != '\0'; i++)
		if (!isalnum((unsigned char)dom[i]) && dom[i] != '.' && dom[i] != '-')
			return xstrdup(url);
	return xasprintf("%s%s%s", url, url[strlen(url) - 1] == '/' ? "" : "/", dom);
}

/* The message must be LF-only text with lines curl can send (CURLOPT_CRLF converts). */
static const char *
message_check(const char *msg, size_t len)
{
	size_t	i, col = 0;

	for (i = 0; i < len; i++) {
		if (msg[i] == '\r')
			return "message contains a CR (compose LF-only text)";
		if (msg[i] == '\0')
			return "message contains a NUL byte";
		if (msg[i] == '\n')
			col = 0;
		else if (++col > SMTP_LINE_MAX)
			return "message has a line longer than 998 bytes";
	}
	return NULL;
}

static int
send_refuse(struct send_result *out, const char *why)
{
	out->permanent = true;
	log_warnx("smtp: not sent: %s", why);
	smtp_reply_set(out, "not sent: %s", why);
	return R_SKIP;
}

int
mailer_send_via(struct netreq *nr, const struct conf *conf, const char *const *rcpts,
    const char *msg, size_t len, struct send_result *out)
{
	struct smtp_job	 job = { 0 };
	struct buf	 req = { 0 };
	struct reader	 r;
	char		 err[512], *logged, *fields;
	const char	*why;
	size_t		 i;
	int		 ret;

	memset(out, 0, sizeof(*out));
	if (conf->smtp.url == NULL || (strncasecmp(conf->smtp.url, "smtp://", 7) != 0 &&
	    strncasecmp(conf->smtp.url, "smtps://", 8) != 0))
		return send_refuse(out, "smtp.url must start with smtp:// or smtps://");
	if (!envelope_valid(conf->smtp.from))
		return send_refuse(out, "smtp.from is not a plain address");
	for (i = 0; rcpts != NULL && rcpts[i] != NULL; i++) {
		if (!envelope_valid(rcpts[i])) {
			logged = str_for_log(rcpts[i], 100);
			snprintf(err, sizeof(err), "refused envelope address %s "
			    "(control, space, <> or not one @)", logged);
			free(logged);
			return send_refuse(out, err);
		}
	}
	if (i == 0)
		return send_refuse(out, "no recipients");
	if ((why = message_check(msg, len)) != NULL)
		return send_refuse(out, why);
	if (conf->smtp.user != NULL) {
		if (conf->smtp.password != NULL)
			job.password = xstrdup(conf->smtp.password);
		else if (conf->smtp.password_file == NULL)
			return send_refuse(out, "smtp.user is set but smtp.password_file is not");
		else if (secret_read(conf->smtp.password_file, conf->dir, &job.password,
		    err, sizeof(err)) == -1)
			return send_refuse(out, err);
		job.user = xstrdup(conf->smtp.user);
	}
	job.url = smtp_url(conf);
	job.ca_file = conf_path(conf, conf->smtp.ca_file);
	job.from = xstrdup(conf->smtp.from);
	job.rcpts = xcalloc(i + 1, sizeof(*job.rcpts));
	for (i = 0; rcpts[i] != NULL; i++)
		job.rcpts[i] = xstrdup(rcpts[i]);
	job.timeout_sec = conf->smtp.timeout_sec > 0 ? conf->smtp.timeout_sec : 30;
	job.msg = xmalloc(len + 1);
	memcpy(job.msg, msg, len);
	job.msg[len] = '\0';
	job.len = len;
	smtp_job_put(&req, &job);
	if (netreq_ask(nr, F_SMTP, &req, F_SMTP_DONE, job.timeout_sec * 2, &fields, &r,
	    err, sizeof(err)) == -1) {
		/* Not the server's answer: try again later. */
		smtp_reply_set(out, "not sent: %s", err);
		log_warnx("smtp: %s: %s (will retry)", conf->smtp.url, out->reply);
		ret = R_RETRY;
	} else if ((ret = smtp_result_get(&r, out)) == -1) {
		smtp_reply_set(out, "not sent: a malformed answer from ipcased-send");
		log_warnx("smtp: %s (will retry)", out->reply);
		ret = R_RETRY;
	}
	free(fields);
	explicit_bzero(req.data, req.len);
	buf_free(&req);
	smtp_job_clear(&job);
	return ret;
}
