/*
 * imap.c — one account's IMAP session over libetpan.  The certificate is
 * checked before a single IMAP byte is parsed (libetpan 1.9.4 checks none and
 * crashes on some greetings), the stream is guarded against its EOF spin, and
 * only read-only commands are ever sent: EXAMINE, never SELECT; BODY.PEEK,
 * never a FETCH that sets \Seen; no STORE, EXPUNGE, APPEND, COPY or MOVE.
 */
#include "imap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libetpan/libetpan.h>

#include "log.h"
#include "tls.h"

struct imap_session {
	const struct conf_account *acct;	/* borrowed, outlives this */
	char		*secret;		/* owned; wiped before free */
	mailimap	*imap;			/* owned; NULL until imap_connect() */
	bool		 broken;		/* connection error seen: no LOGOUT */
	bool		 idling;
	uint64_t	 bytes_received;	/* over every connection of this session */
};

/*
 * What a first scan fetches of every message: exactly what the pre-screen
 * reads (rules_prescreen: sender, Reply-To, recipients, subject) and what the
 * cases' index looks up (the thread's ids, the addresses, the subject).  A
 * candidate's whole message is fetched anyway, so Authentication-Results,
 * List-* or Content-Type here would be bytes to send, decrypt, parse and pass
 * on for nothing, 50,000 times.  bench/floor.py fetches the same list.
 */
const char *const imap_header_fields[] = {
	"From", "Reply-To", "To", "Cc", "Subject", "In-Reply-To", "References", NULL
};

/* libetpan has no strerror; indexed by MAILIMAP_* codes (mailimap_types.h). */
static const char *const imap_errors[] = {
	[MAILIMAP_NO_ERROR] = "no error",
	[MAILIMAP_NO_ERROR_AUTHENTICATED] = "connected, pre-authenticated",
	[MAILIMAP_NO_ERROR_NON_AUTHENTICATED] = "connected",
	[MAILIMAP_ERROR_BAD_STATE] = "command not allowed in this state",
	[MAILIMAP_ERROR_STREAM] = "connection lost or timed out",
	[MAILIMAP_ERROR_PARSE] = "unparsable server response",
	[MAILIMAP_ERROR_CONNECTION_REFUSED] = "connection refused",
	[MAILIMAP_ERROR_MEMORY] = "out of memory",
	[MAILIMAP_ERROR_FATAL] = "server closed the session (BYE)",
	[MAILIMAP_ERROR_PROTOCOL] = "protocol error",
	[MAILIMAP_ERROR_DONT_ACCEPT_CONNECTION] = "server refuses connections",
	[MAILIMAP_ERROR_APPEND] = "APPEND failed",
	[MAILIMAP_ERROR_NOOP] = "NOOP failed",
	[MAILIMAP_ERROR_LOGOUT] = "LOGOUT failed",
	[MAILIMAP_ERROR_CAPABILITY] = "CAPABILITY failed",
	[MAILIMAP_ERROR_CHECK] = "CHECK failed",
	[MAILIMAP_ERROR_CLOSE] = "CLOSE failed",
	[MAILIMAP_ERROR_EXPUNGE] = "EXPUNGE failed",
	[MAILIMAP_ERROR_COPY] = "COPY failed",
	[MAILIMAP_ERROR_UID_COPY] = "UID COPY failed",
	[MAILIMAP_ERROR_MOVE] = "MOVE failed",
	[MAILIMAP_ERROR_UID_MOVE] = "UID MOVE failed",
	[MAILIMAP_ERROR_CREATE] = "CREATE failed",
	[MAILIMAP_ERROR_DELETE] = "DELETE failed",
	[MAILIMAP_ERROR_EXAMINE] = "EXAMINE refused",
	[MAILIMAP_ERROR_FETCH] = "FETCH refused",
	[MAILIMAP_ERROR_UID_FETCH] = "UID FETCH refused",
	[MAILIMAP_ERROR_LIST] = "LIST refused",
	[MAILIMAP_ERROR_LOGIN] = "login refused",
	[MAILIMAP_ERROR_LSUB] = "LSUB refused",
	[MAILIMAP_ERROR_RENAME] = "RENAME failed",
	[MAILIMAP_ERROR_SEARCH] = "SEARCH refused",
	[MAILIMAP_ERROR_UID_SEARCH] = "UID SEARCH refused",
	[MAILIMAP_ERROR_SELECT] = "SELECT refused",
	[MAILIMAP_ERROR_STATUS] = "STATUS refused",
	[MAILIMAP_ERROR_STORE] = "STORE failed",
	[MAILIMAP_ERROR_UID_STORE] = "UID STORE failed",
	[MAILIMAP_ERROR_SUBSCRIBE] = "SUBSCRIBE failed",
	[MAILIMAP_ERROR_UNSUBSCRIBE] = "UNSUBSCRIBE failed",
	[MAILIMAP_ERROR_STARTTLS] = "STARTTLS failed",
	[MAILIMAP_ERROR_INVAL] = "invalid argument",
	[MAILIMAP_ERROR_EXTENSION] = "extension command failed",
	[MAILIMAP_ERROR_SASL] = "SASL authentication failed",
	[MAILIMAP_ERROR_SSL] = "TLS error",
	[MAILIMAP_ERROR_NEEDS_MORE_DATA] = "incomplete server response",
	[MAILIMAP_ERROR_CUSTOM_COMMAND] = "custom command failed",
	[MAILIMAP_ERROR_CLIENTID] = "ID command failed",
};

static const char *
imap_strerror(int r)
{
	if (r < 0 || (size_t)r >= NELEM(imap_errors) || imap_errors[r] == NULL)
		return "unknown libetpan error";
	return imap_errors[r];
}

/* Errors after which the connection cannot be trusted to be in step. */
static bool
imap_is_connection_error(int r)
{
	switch (r) {
	case MAILIMAP_ERROR_BAD_STATE:
	case MAILIMAP_ERROR_STREAM:
	case MAILIMAP_ERROR_PARSE:
	case MAILIMAP_ERROR_CONNECTION_REFUSED:
	case MAILIMAP_ERROR_MEMORY:
	case MAILIMAP_ERROR_FATAL:
	case MAILIMAP_ERROR_PROTOCOL:
	case MAILIMAP_ERROR_DONT_ACCEPT_CONNECTION:
	case MAILIMAP_ERROR_SSL:
	case MAILIMAP_ERROR_NEEDS_MORE_DATA:
		return true;
	default:
		return false;
	}
}

/* The server's text of the last tagged reply, safe for a log line; malloc'd. */
static char *
imap_response_text(const struct imap_session *s)
{
	const char *text = NULL;

	if (s->imap != NULL)
		text = s->imap->imap_response;
	return str_for_log(text != NULL ? text : "", 200);
}

/*
 * Logs a failed command and says what to do: R_RETRY for connection
 * trouble (and the session is marked broken), else skip_result.
 */
static enum result
imap_fail(struct imap_session *s, const char *what, int r, enum result skip_result)
{
	char	*text;

	if (imap_is_connection_error(r)) {
		s->broken = true;
		log_warnx("%s: %s: %s", s->acct->name, what, imap_strerror(r));
		return R_RETRY;
	}
	text = imap_response_text(s);
	log_warnx("%s: %s: %s: %s", s->acct->name, what, imap_strerror(r), text);
	free(text);
	return skip_result;
}

/*
 * The EOF guard (libs-brief §1.10): libetpan 1.9.4's literal reader treats
 * only -1 as an error and spins at full CPU when read() returns 0 inside a
 * literal.  This driver wraps the real low stream and turns 0 into -1.  It
 * also counts the bytes received.
 */
struct guard {
	mailstream_low		*inner;		/* owned */
	struct imap_session	*session;	/* borrowed: the stream dies first */
};

static ssize_t
guard_read(mailstream_low *low, void *buf, size_t count)
{
	struct guard	*g = low->data;
	ssize_t		 r;

	r = mailstream_low_read(g->inner, buf, count);
	if (r == 0)
		return -1;
	if (r > 0)
		g->session->bytes_received += (uint64_t)r;
	return r;
}

static ssize_t
guard_write(mailstream_low *low, const void *buf, size_t count)
{
	struct guard	*g = low->data;

	return mailstream_low_write(g->inner, buf, count);
}

static int
guard_close(mailstream_low *low)
{
	struct guard	*g = low->data;

	return mailstream_low_close(g->inner);
}

static int
guard_get_fd(mailstream_low *low)
{
	struct guard	*g = low->data;

	return mailstream_low_get_fd(g->inner);
}

static void
guard_free(mailstream_low *low)
{
	struct guard	*g = low->data;

	mailstream_low_free(g->inner);
	free(g);
	free(low);
}

static void
guard_cancel(mailstream_low *low)
{
	struct guard	*g = low->data;

	mailstream_low_cancel(g->inner);
}

static struct mailstream_cancel *
guard_get_cancel(mailstream_low *low)
{
	struct guard	*g = low->data;

	return mailstream_low_get_cancel(g->inner);
}

static carray *
guard_get_certificate_chain(mailstream_low *low)
{
	struct guard	*g = low->data;

	return mailstream_low_get_certificate_chain(g->inner);
}

static mailstream_low_driver guard_driver = {
	.mailstream_read = guard_read,
	.mailstream_write = guard_write,
	.mailstream_close = guard_close,
	.mailstream_get_fd = guard_get_fd,
	.mailstream_free = guard_free,
	.mailstream_cancel = guard_cancel,
	.mailstream_get_cancel = guard_get_cancel,
	.mailstream_get_certificate_chain = guard_get_certificate_chain,
	.mailstream_setup_idle = NULL,
	.mailstream_unsetup_idle = NULL,
	.mailstream_interrupt_idle = NULL,
};

static void
guard_install(struct imap_session *s, mailstream *stream)
{
	mailstream_low	*inner = mailstream_get_low(stream), *low;
	struct guard	*g;

	g = xmalloc(sizeof(*g));
	g->inner = inner;
	g->session = s;
	if ((low = mailstream_low_new(g, &guard_driver)) == NULL)
		fatal("mailstream_low_new");
	mailstream_low_set_timeout(low, mailstream_low_get_timeout(inner));
	mailstream_set_low(stream, low);
}

struct imap_session *
imap_new(const struct conf_account *acct, const char *secret)
{
	struct imap_session *s;

	s = xcalloc(1, sizeof(*s));
	s->acct = acct;
	s->secret = xstrdup(secret != NULL ? secret : "");
	return s;
}

/* Drops the connection; a broken or idling one is closed without LOGOUT. */
static void
imap_disconnect(struct imap_session *s)
{
	if (s->imap == NULL)
		return;
	if ((s->broken || s->idling) && s->imap->imap_stream != NULL) {
		mailstream_close(s->imap->imap_stream);
		s->imap->imap_stream = NULL;
	}
	/* mailimap_free() sends LOGOUT when the stream is still there. */
	mailimap_free(s->imap);
	s->imap = NULL;
	s->broken = false;
	s->idling = false;
}

void
imap_free(struct imap_session *s)
{
	if (s == NULL)
		return;
	imap_disconnect(s);
	explicit_bzero(s->secret, strlen(s->secret));
	free(s->secret);
	free(s);
}

static bool
host_is_ip_literal(const char *host)
{
	unsigned char	addr[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

static bool
addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}

/* SNI for a host name; RFC 6066 forbids an IP literal there. */
static void
imap_sni_cb(struct mailstream_ssl_context *ctx, void *arg)
{
	const char	*host = arg;

	if (!host_is_ip_literal(host))
		mailstream_ssl_set_server_name(ctx, (char *)host);
}

/* Half-open connections (a NAT forgot us during IDLE) die within ~2 min. */
static void
tcp_keepalive(const struct imap_session *s, int fd)
{
	int	on = 1, idle = 60, intvl = 15, cnt = 4;

	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) == -1)
		log_warn("%s: TCP keepalive", s->acct->name);
}

/* Waits for a non-blocking connect(); 0 or -1 with errno set. */
static int
tcp_wait_connect(int fd, int timeout_ms)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLOUT };
	int64_t		deadline = now_mono_ms() + timeout_ms, left;
	socklen_t	len = sizeof(int);
	int		r, soerr = 0;

	for (;;) {
		left = deadline - now_mono_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		r = poll(&pfd, 1, (int)left);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		break;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
		return -1;
	if (soerr != 0) {
		errno = soerr;
		return -1;
	}
	return 0;
}

/*
 * TCP connect to every address of the host in turn, each bounded by the
 * account's timeout.  Returns R_OK with *fdp (blocking, keepalive on),
 * R_RETRY, or R_FATAL when tls = none would leave the loopback.
 */
static enum result
tcp_connect(struct imap_session *s, int *fdp)
{
	const struct conf_account *a = s->acct;
	struct addrinfo	 hints, *res = NULL, *ai;
	char		 port[16];
	int		 fd = -1, r, flags, err = 0;
	bool		 refused_clear = false;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", a->port);
	if ((r = getaddrinfo(a->host, port, &hints, &res)) != 0) {
		log_warnx("%s: %s: %s", a->name, a->host,
		    r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return R_RETRY;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (a->tls == TLS_NONE && !addr_is_loopback(ai->ai_addr)) {
			refused_clear = true;
			continue;
		}
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
		if (fd == -1) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS &&
		    tcp_wait_connect(fd, a->timeout_sec * 1000) == 0))
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		if (refused_clear && err == 0) {
			log_warnx("%s: tls = none, but %s is not a loopback address: "
			    "refusing to send credentials in clear text", a->name, a->host);
			return R_FATAL;
		}
		log_warnx("%s: connect to %s port %d: %s", a->name, a->host, a->port,
		    strerror(err != 0 ? err : EHOSTUNREACH));
		return R_RETRY;
	}
	/* libetpan's streams want a blocking descriptor (mailstream_socket.c). */
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		log_warn("%s: fcntl", a->name);
		close(fd);
		return R_RETRY;
	}
	tcp_keepalive(s, fd);
	*fdp = fd;
	return R_OK;
}

/* Checks the certificate on the session's stream; R_OK or R_FATAL (logged). */
static enum result
imap_check_certificate(struct imap_session *s, mailstream *stream)
{
	char	err[512];

	if (tls_verify_stream(stream, s->acct->host, s->acct->ca_file, err, sizeof(err)) == 0)
		return R_OK;
	log_warnx("%s: certificate of %s refused: %s", s->acct->name, s->acct->host, err);
	return R_FATAL;
}

/* Refreshes the capability list (the cache in imap_connection_info). */
static enum result
imap_refresh_capability(struct imap_session *s)
{
	struct mailimap_capability_data *caps = NULL;
	int	r;

	if ((r = mailimap_capability(s->imap, &caps)) != MAILIMAP_NO_ERROR)
		return imap_fail(s, "CAPABILITY", r, R_RETRY);
	mailimap_capability_data_free(caps);
	return R_OK;
}

/*
 * STARTTLS on the plain, greeted connection.  The greeting was parsed in
 * clear; that is why this is an opt-in.  Never continues without TLS.
 */
static enum result
imap_starttls(struct imap_session *s)
{
	const struct conf_account *a = s->acct;
	struct timeval	saved = mailstream_network_delay;
	mailstream_low	*low;
	enum result	ret;
	int		r;

	if ((ret = imap_refresh_capability(s)) != R_OK)
		return ret;
	if (!mailimap_has_extension(s->imap, "STARTTLS")) {
		log_warnx("%s: %s does not offer STARTTLS: refusing to continue "
		    "without TLS", a->name, a->host);
		return R_FATAL;
	}
	/*
	 * libetpan's STARTTLS handshake takes its timeout from this global,
	 * not from the session; the fetcher is one process per account.
	 */
	mailstream_network_delay.tv_sec = a->timeout_sec;
	mailstream_network_delay.tv_usec = 0;
	r = mailimap_socket_starttls_with_callback(s->imap, imap_sni_cb, a->host);
	mailstream_network_delay = saved;
	if (r != MAILIMAP_NO_ERROR) {
		/* The old low stream may be half freed: never send on it again. */
		s->broken = true;
		log_warnx("%s: STARTTLS with %s: %s", a->name, a->host, imap_strerror(r));
		return r == MAILIMAP_ERROR_STREAM ? R_RETRY : R_FATAL;
	}
	low = mailstream_get_low(s->imap->imap_stream);
	mailstream_low_set_timeout(low, a->timeout_sec);
	if ((ret = imap_check_certificate(s, s->imap->imap_stream)) != R_OK) {
		s->broken = true;
		return ret;
	}
	guard_install(s, s->imap->imap_stream);
	/* Capabilities seen before TLS may have been forged: ask again. */
	return imap_refresh_capability(s);
}

static enum result
imap_login(struct imap_session *s)
{
	const struct conf_account *a = s->acct;
	const char	*what;
	char		*text;
	int		 r;

	switch (a->auth) {
	case AUTH_LOGIN:
		what = "LOGIN";
		if (mailimap_has_extension(s->imap, "LOGINDISABLED")) {
			log_warnx("%s: %s disables LOGIN (LOGINDISABLED)", a->name, a->host);
			return R_FATAL;
		}
		r = mailimap_login(s->imap, a->user, s->secret);
		break;
	case AUTH_PLAIN:
		what = "AUTHENTICATE PLAIN";
		r = mailimap_authenticate(s->imap, "PLAIN", a->host, NULL, NULL,
		    a->user, a->user, s->secret, NULL);
		break;
	case AUTH_XOAUTH2:
		what = "AUTHENTICATE XOAUTH2";
		if (!mailimap_has_xoauth2(s->imap)) {
			log_warnx("%s: %s does not offer AUTH=XOAUTH2", a->name, a->host);
			return R_FATAL;
		}
		r = mailimap_oauth2_authenticate(s->imap, a->user, s->secret);
		break;
	default:
		fatalx("%s: unknown auth mechanism %d", a->name, (int)a->auth);
	}
	if (r == MAILIMAP_NO_ERROR)
		return R_OK;
	if (imap_is_connection_error(r))
		return imap_fail(s, what, r, R_RETRY);
	text = imap_response_text(s);
	/* RFC 5530: [UNAVAILABLE] is the server's trouble, not ours. */
	if (s->imap->imap_response_info != NULL &&
	    s->imap->imap_response_info->rsp_atom != NULL &&
	    strcasecmp(s->imap->imap_response_info->rsp_atom, "UNAVAILABLE") == 0) {
		log_warnx("%s: %s as %s: server unavailable: %s", a->name, what,
		    a->user, text);
		free(text);
		return R_RETRY;
	}
	log_warnx("%s: %s as %s refused by %s: %s", a->name, what, a->user, a->host, text);
	free(text);
	return R_FATAL;
}

enum result
imap_connect(struct imap_session *s)
{
	const struct conf_account *a = s->acct;
	mailstream	*stream = NULL;
	enum result	 ret;
	int		 fd = -1, r;

	imap_disconnect(s);
	if ((s->imap = mailimap_new(0, NULL)) == NULL)
		fatal("mailimap_new");
	mailimap_set_timeout(s->imap, a->timeout_sec);

	if ((ret = tcp_connect(s, &fd)) != R_OK)
		return ret;
	if (a->tls == TLS_IMPLICIT) {
		stream = mailstream_ssl_open_with_callback_timeout(fd, a->timeout_sec,
		    imap_sni_cb, a->host);
		if (stream == NULL) {
			log_warnx("%s: TLS handshake with %s port %d failed", a->name,
			    a->host, a->port);
			close(fd);
			return R_RETRY;
		}
		/* Before the greeting: libetpan must parse nothing unverified. */
		if ((ret = imap_check_certificate(s, stream)) != R_OK) {
			mailstream_close(stream);
			return ret;
		}
	} else {
		if ((stream = mailstream_socket_open_timeout(fd, a->timeout_sec)) == NULL)
			fatal("mailstream_socket_open_timeout");
	}
	guard_install(s, stream);

	r = mailimap_connect(s->imap, stream);
	if (r != MAILIMAP_NO_ERROR_AUTHENTICATED && r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
		s->broken = true;
		log_warnx("%s: greeting from %s: %s", a->name, a->host, imap_strerror(r));
		return R_RETRY;
	}
	if (a->tls == TLS_STARTTLS) {
		if (r == MAILIMAP_NO_ERROR_AUTHENTICATED) {
			/* RFC 3501: no STARTTLS after PREAUTH; we will not go on in clear. */
			log_warnx("%s: %s sent PREAUTH before STARTTLS: refusing to "
			    "continue without TLS", a->name, a->host);
			s->broken = true;
			return R_FATAL;
		}
		if ((ret = imap_starttls(s)) != R_OK)
			return ret;
	} else if ((ret = imap_refresh_capability(s)) != R_OK)
		return ret;

	if (r == MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
		if ((ret = imap_login(s)) != R_OK)
			return ret;
		/* The list before login is often shorter (no IDLE, no CONDSTORE). */
		if ((ret = imap_refresh_capability(s)) != R_OK)
			return ret;
	}
	log_debug("%s: logged in to %s as %s", a->name, a->host, a->user);
	return R_OK;
}

static bool
imap_usable(struct imap_session *s, const char *what)
{
	if (s->imap == NULL || s->imap->imap_stream == NULL || s->broken) {
		log_warnx("%s: %s: not connected", s->acct->name, what);
		return false;
	}
	if (s->idling)
		fatalx("%s: %s while in IDLE", s->acct->name, what);
	return true;
}

enum result
imap_examine(struct imap_session *s, const char *folder, struct imap_folder *out)
{
	struct mailimap_selection_info *sel;
	uint64_t	 modseq = 0;
	char		*what, *name;
	enum result	 ret;
	int		 r;

	memset(out, 0, sizeof(*out));
	if (!imap_usable(s, "EXAMINE"))
		return R_RETRY;
	if (mailimap_has_condstore(s->imap))
		r = mailimap_examine_condstore(s->imap, folder, &modseq);
	else
		r = mailimap_examine(s->imap, folder);
	if (r != MAILIMAP_NO_ERROR) {
		name = str_for_log(folder, 100);
		what = xasprintf("EXAMINE %s", name);
		ret = imap_fail(s, what, r, R_SKIP);
		free(what);
		free(name);
		return ret;
	}
	if ((sel = s->imap->imap_selection_info) == NULL)
		fatalx("%s: EXAMINE succeeded without selection info", s->acct->name);
	out->uidvalidity = sel->sel_uidvalidity;
	out->uidnext = sel->sel_uidnext;
	out->exists = sel->sel_exists;
	out->highestmodseq = modseq;
	return R_OK;
}

static int
uid_cmp(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

enum result
imap_search(struct imap_session *s, uint32_t after_uid, time_t since,
    uint32_t **uids, size_t *n)
{
	struct mailimap_search_key *key = NULL, *k;
	struct tm	 tm;
	clist		*res = NULL;
	clistiter	*it;
	uint32_t	*v = NULL, uid;
	size_t		 nv = 0, i, j;
	enum result	 ret;
	int		 r;

	*uids = NULL;
	*n = 0;
	if (!imap_usable(s, "UID SEARCH"))
		return R_RETRY;
	if (after_uid == UINT32_MAX)
		return R_OK;
	/* Interval end 0 is "*". */
	k = mailimap_search_key_new_uid(mailimap_set_new_interval(after_uid + 1, 0));
	if (since > 0) {
		if (gmtime_r(&since, &tm) == NULL)
			fatalx("gmtime_r");
		key = mailimap_search_key_new_multiple_empty();
		if (mailimap_search_key_multiple_add(key, k) != MAILIMAP_NO_ERROR)
			fatal("mailimap_search_key_multiple_add");
		k = mailimap_search_key_new_since(mailimap_date_new(tm.tm_mday,
		    tm.tm_mon + 1, tm.tm_year + 1900));
		if (mailimap_search_key_multiple_add(key, k) != MAILIMAP_NO_ERROR)
			fatal("mailimap_search_key_multiple_add");
	} else
		key = k;

	if ((r = mailimap_uid_search(s->imap, NULL, key, &res)) != MAILIMAP_NO_ERROR) {
		ret = imap_fail(s, "UID SEARCH", r, R_RETRY);
		goto out;
	}
	v = xreallocarray(NULL, clist_count(res) + 1, sizeof(*v));
	for (it = clist_begin(res); it != NULL; it = clist_next(it)) {
		uid = *(uint32_t *)clist_content(it);
		/* n:* matches the highest UID even when it is below n (RFC 3501). */
		if (uid > after_uid)
			v[nv++] = uid;
	}
	qsort(v, nv, sizeof(*v), uid_cmp);
	for (i = j = 0; i < nv; i++)
		if (j == 0 || v[j - 1] != v[i])
			v[j++] = v[i];
	*uids = v;
	*n = j;
	ret = R_OK;
out:
	if (res != NULL)
		mailimap_search_result_free(res);
	mailimap_search_key_free(key);
	return ret;
}

/* A UID set of uids[0..n), consecutive runs as intervals (uids ascending). */
static struct mailimap_set *
uid_set_new(const uint32_t *uids, size_t n)
{
	struct mailimap_set *set;
	size_t	 i = 0, j;

	if ((set = mailimap_set_new_empty()) == NULL)
		fatal("mailimap_set_new_empty");
	while (i < n) {
		for (j = i; j + 1 < n && uids[j + 1] == uids[j] + 1; j++)
			;
		if (mailimap_set_add_interval(set, uids[i], uids[j]) != MAILIMAP_NO_ERROR)
			fatal("mailimap_set_add_interval");
		i = j + 1;
	}
	return set;
}

static struct mailimap_fetch_type *
headers_fetch_type(void)
{
	struct mailimap_fetch_type *ft;
	struct mailimap_section *section;
	clist	*fields;
	size_t	 i;

	if ((fields = clist_new()) == NULL)
		fatal("clist_new");
	for (i = 0; imap_header_fields[i] != NULL; i++)
		if (clist_append(fields, xstrdup(imap_header_fields[i])) != 0)
			fatal("clist_append");
	/* Each constructor takes ownership of its argument. */
	section = mailimap_section_new_header_fields(mailimap_header_list_new(fields));
	ft = mailimap_fetch_type_new_fetch_att_list_empty();
	if (ft == NULL || section == NULL)
		fatal("mailimap_fetch_type");
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_rfc822_size());
	mailimap_fetch_type_new_fetch_att_list_add(ft,
	    mailimap_fetch_att_new_body_peek_section(section));
	return ft;
}

/* What one FETCH response carried. */
struct fetched {
	uint32_t	 uid;		/* 0 when absent */
	uint32_t	 size;
	const char	*body;		/* borrowed from the response; NULL when absent */
	size_t		 len;
};

static void
fetched_parse(const struct mailimap_msg_att *att, struct fetched *f)
{
	struct mailimap_msg_att_item *item;
	struct mailimap_msg_att_static *st;
	clistiter	*it;

	memset(f, 0, sizeof(*f));
	for (it = clist_begin(att->att_list); it != NULL; it = clist_next(it)) {
		item = clist_content(it);
		if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
			continue;
		st = item->att_data.att_static;
		switch (st->att_type) {
		case MAILIMAP_MSG_ATT_UID:
			f->uid = st->att_data.att_uid;
			break;
		case MAILIMAP_MSG_ATT_RFC822_SIZE:
			f->size = st->att_data.att_rfc822_size;
			break;
		case MAILIMAP_MSG_ATT_BODY_SECTION:
			if (st->att_data.att_body_section != NULL) {
				f->body = st->att_data.att_body_section->sec_body_part;
				f->len = st->att_data.att_body_section->sec_length;
			}
			break;
		default:
			break;
		}
	}
}

/* One FETCH's headers, handed on as the parser meets them (header_att_seen). */
struct header_stream {
	const uint32_t	*uids;		/* the UIDs asked for, ascending; NULL: lo..hi */
	size_t		 n;
	uint32_t	 lo, hi;
	imap_header_cb	*cb;
	void		*arg;
};

/* Did this FETCH ask for uid?  Anything else the server sends is not ours to pass on. */
static bool
header_asked(const struct header_stream *hs, uint32_t uid)
{
	if (hs->uids == NULL)
		return uid >= hs->lo && uid <= hs->hi;
	return bsearch(&uid, hs->uids, hs->n, sizeof(*hs->uids), uid_cmp) != NULL;
}

static void
header_att_seen(struct mailimap_msg_att *att, void *arg)
{
	struct header_stream	*hs = arg;
	struct fetched		 f;

	fetched_parse(att, &f);
	/* Unsolicited FETCH (flag changes) carry no header block. */
	if (f.uid == 0 || f.body == NULL || !header_asked(hs, f.uid))
		return;
	hs->cb(f.uid, f.size, f.body, f.len, hs->arg);
}

/* libetpan calls its msg_att handler only while a progress callback is set: this one. */
static void
no_progress(size_t current, size_t maximum, void *arg)
{
	(void)current;
	(void)maximum;
	(void)arg;
}

/* One UID FETCH of the header fields for set; each message to hs->cb as it is parsed. */
static enum result
fetch_header_set(struct imap_session *s, struct mailimap_fetch_type *ft,
    struct mailimap_set *set, struct header_stream *hs)
{
	clist	*res = NULL;
	int	 r;

	/*
	 * Each message goes to header_att_seen() as soon as it is parsed,
	 * and libetpan frees it after: res stays empty, no batch-long list.
	 */
	mailimap_set_progress_callback(s->imap, NULL, no_progress, NULL);
	mailimap_set_msg_att_handler(s->imap, header_att_seen, hs);
	r = mailimap_uid_fetch(s->imap, set, ft, &res);
	mailimap_set_msg_att_handler(s->imap, NULL, NULL);
	mailimap_set_progress_callback(s->imap, NULL, NULL, NULL);
	if (res != NULL)
		mailimap_fetch_list_free(res);
	return r == MAILIMAP_NO_ERROR ? R_OK : imap_fail(s, "UID FETCH headers", r, R_RETRY);
}

enum result
imap_fetch_headers(struct imap_session *s, const uint32_t *uids, size_t n,
    imap_header_cb *cb, void *arg)
{
	struct mailimap_fetch_type *ft;
	struct mailimap_set *set;
	struct header_stream hs;
	size_t		 off, batch;
	enum result	 ret = R_OK;

	if (n == 0)
		return R_OK;
	if (!imap_usable(s, "UID FETCH"))
		return R_RETRY;
	ft = headers_fetch_type();
	for (off = 0; off < n && ret == R_OK; off += batch) {
		batch = n - off < IMAP_FETCH_BATCH ? n - off : IMAP_FETCH_BATCH;
		set = uid_set_new(uids + off, batch);
		hs = (struct header_stream){ uids + off, batch, 0, 0, cb, arg };
		ret = fetch_header_set(s, ft, set, &hs);
		mailimap_set_free(set);
	}
	mailimap_fetch_type_free(ft);
	return ret;
}

enum result
imap_fetch_header_range(struct imap_session *s, uint32_t lo, uint32_t hi,
    imap_header_cb *cb, void *arg)
{
	struct mailimap_fetch_type *ft;
	struct mailimap_set *set;
	struct header_stream hs;
	enum result	 ret;

	/* UID 0 does not exist, and an interval ending in 0 would be "lo:*". */
	if (lo == 0)
		lo = 1;
	if (hi < lo)
		return R_OK;
	hs = (struct header_stream){ NULL, 0, lo, hi, cb, arg };
	if (!imap_usable(s, "UID FETCH"))
		return R_RETRY;
	if ((set = mailimap_set_new_interval(lo, hi)) == NULL)
		fatal("mailimap_set_new_interval");
	ft = headers_fetch_type();
	ret = fetch_header_set(s, ft, set, &hs);
	mailimap_set_free(set);
	mailimap_fetch_type_free(ft);
	return ret;
}

enum result
imap_fetch_messages(struct imap_session *s, const uint32_t *uids, size_t n, size_t max,
    bool small, imap_message_cb *cb, void *arg)
{
	struct mailimap_fetch_type *ft;
	struct mailimap_fetch_att *fa;
	struct mailimap_section *section;
	struct mailimap_set *set;
	struct fetched	 f;
	clist		*res = NULL;
	clistiter	*it;
	enum result	 ret = R_OK;
	size_t		 i, got = 0;
	bool		*seen;
	int		 r;

	if (n == 0)
		return R_OK;
	if (!imap_usable(s, "UID FETCH"))
		return R_RETRY;
	if ((section = mailimap_section_new(NULL)) == NULL)
		fatal("mailimap_section_new");
	/* BODY.PEEK[]<0.max>: never sets \Seen, never more than max bytes. */
	if (max > 0 && !small)
		fa = mailimap_fetch_att_new_body_peek_section_partial(section, 0,
		    max > UINT32_MAX ? UINT32_MAX : (uint32_t)max);
	else
		fa = mailimap_fetch_att_new_body_peek_section(section);
	ft = mailimap_fetch_type_new_fetch_att_list_empty();
	if (fa == NULL || ft == NULL)
		fatal("mailimap_fetch_type");
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(ft, fa);
	set = uid_set_new(uids, n);
	seen = xcalloc(n, sizeof(*seen));

	if ((r = mailimap_uid_fetch(s->imap, set, ft, &res)) != MAILIMAP_NO_ERROR) {
		ret = imap_fail(s, "UID FETCH bodies", r, R_RETRY);
		goto out;
	}
	for (it = clist_begin(res); it != NULL; it = clist_next(it)) {
		uint32_t	*u;

		fetched_parse(clist_content(it), &f);
		if (f.uid == 0 || f.body == NULL ||
		    (u = bsearch(&f.uid, uids, n, sizeof(*uids), uid_cmp)) == NULL ||
		    seen[u - uids])
			continue;	/* unsolicited, not asked for, or sent twice */
		seen[u - uids] = true;
		got++;
		cb(f.uid, f.body, max > 0 && f.len > max ? max : f.len, arg);
	}
	for (i = 0; i < n && got < n; i++)
		if (!seen[i])
			log_warnx("%s: UID %u: no such message (expunged?)", s->acct->name,
			    uids[i]);
out:
	free(seen);
	if (res != NULL)
		mailimap_fetch_list_free(res);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	return ret;
}

/* For imap_fetch_message(): a copy of the one message. */
struct one_message {
	char	*raw;
	size_t	 len;
};

static void
keep_one(uint32_t uid, const char *raw, size_t len, void *arg)
{
	struct one_message	*om = arg;

	(void)uid;
	om->raw = xmalloc(len + 1);
	memcpy(om->raw, raw, len);
	om->raw[len] = '\0';
	om->len = len;
}

enum result
imap_fetch_message(struct imap_session *s, uint32_t uid, size_t max,
    char **raw, size_t *len)
{
	struct one_message	om = { NULL, 0 };
	enum result		ret;

	ret = imap_fetch_messages(s, &uid, 1, max, false, keep_one, &om);
	*raw = om.raw;
	*len = om.len;
	if (ret == R_OK && om.raw == NULL)
		ret = R_SKIP;
	return ret;
}

/* true when a LIST entry carries the \Sent attribute (RFC 6154). */
static bool
mailbox_is_sent(const struct mailimap_mailbox_list *mb)
{
	struct mailimap_mbx_list_oflag *of;
	const char	*flag;
	clistiter	*it;

	if (mb->mb_flag == NULL || mb->mb_flag->mbf_oflags == NULL)
		return false;
	for (it = clist_begin(mb->mb_flag->mbf_oflags); it != NULL; it = clist_next(it)) {
		of = clist_content(it);
		if (of->of_type != MAILIMAP_MBX_LIST_OFLAG_FLAG_EXT || of->of_flag_ext == NULL)
			continue;
		flag = of->of_flag_ext;
		if (flag[0] == '\\')
			flag++;
		if (strcasecmp(flag, "Sent") == 0)
			return true;
	}
	return false;
}

char *
imap_find_sent(struct imap_session *s)
{
	clist		*res = NULL;
	clistiter	*it;
	char		*found = NULL;
	int		 r;

	if (!imap_usable(s, "LIST"))
		return NULL;
	/*
	 * libetpan 1.9.4 cannot send LIST-EXTENDED RETURN (SPECIAL-USE), but
	 * RFC 6154 servers (Dovecot, Gmail, Exchange) put the special-use
	 * attributes on a plain LIST; pre-6154 Gmail only on XLIST.
	 */
	if (!mailimap_has_extension(s->imap, "SPECIAL-USE") && mailimap_has_xlist(s->imap))
		r = mailimap_xlist(s->imap, "", "*", &res);
	else
		r = mailimap_list(s->imap, "", "*", &res);
	if (r != MAILIMAP_NO_ERROR) {
		imap_fail(s, "LIST", r, R_SKIP);
		return NULL;
	}
	for (it = clist_begin(res); it != NULL; it = clist_next(it)) {
		struct mailimap_mailbox_list *mb = clist_content(it);

		if (mailbox_is_sent(mb)) {
			found = xstrdup(mb->mb_name);
			break;
		}
	}
	mailimap_list_result_free(res);
	return found;
}

bool
imap_has_idle(const struct imap_session *s)
{
	if (s->imap == NULL || s->broken)
		return false;
	return mailimap_has_idle(s->imap) != 0;
}

enum result
imap_idle_start(struct imap_session *s)
{
	int	r;

	if (!imap_usable(s, "IDLE"))
		return R_RETRY;
	if (s->imap->imap_selection_info != NULL)
		s->imap->imap_selection_info->sel_has_exists = 0;
	/* 1.9.4 fails when untagged data precede "+ idling": treat any error as a reconnect. */
	if ((r = mailimap_idle(s->imap)) != MAILIMAP_NO_ERROR) {
		s->broken = true;
		log_warnx("%s: IDLE: %s", s->acct->name, imap_strerror(r));
		return R_RETRY;
	}
	s->idling = true;
	return R_OK;
}

int
imap_idle_fd(const struct imap_session *s)
{
	if (s->imap == NULL || s->imap->imap_stream == NULL)
		return -1;
	return mailimap_idle_get_fd(s->imap);
}

bool
imap_idle_pending(const struct imap_session *s)
{
	if (s->imap == NULL || s->imap->imap_stream == NULL)
		return false;
	return s->imap->imap_stream->read_buffer_len > 0;
}

enum result
imap_idle_done(struct imap_session *s, bool *new_mail)
{
	int	r;

	*new_mail = false;
	if (!s->idling)
		fatalx("%s: IDLE done without IDLE", s->acct->name);
	s->idling = false;
	if ((r = mailimap_idle_done(s->imap)) != MAILIMAP_NO_ERROR) {
		s->broken = true;
		log_warnx("%s: IDLE DONE: %s", s->acct->name, imap_strerror(r));
		return R_RETRY;
	}
	/* Any EXISTS (also after an expunge) is worth a UID SEARCH. */
	if (s->imap->imap_selection_info != NULL)
		*new_mail = s->imap->imap_selection_info->sel_has_exists != 0;
	return R_OK;
}

uint64_t
imap_bytes_received(const struct imap_session *s)
{
	return s->bytes_received;
}
