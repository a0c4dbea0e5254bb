/* tls.c — checks the server's certificate chain and host name with GnuTLS, since libetpan checks neither. */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <libetpan/libetpan.h>

#include "util.h"

/* A longer chain than this is no real server's; refuse it rather than parse it. */
#define TLS_CHAIN_MAX	16

static void
tls_status_text(unsigned int status, const char *host, char *err, size_t errlen)
{
	struct buf	 b = { 0 };
	gnutls_datum_t	 out = { NULL, 0 };
	unsigned int	 known = 0;

	/*
	 * Our own words for the common causes, so that an admin reading the
	 * log sees at once what to fix; GnuTLS's text for anything else.
	 */
	if (status & GNUTLS_CERT_SIGNER_NOT_FOUND) {
		buf_puts(&b, "certificate signed by an unknown issuer");
		known |= GNUTLS_CERT_SIGNER_NOT_FOUND;
	}
	if (status & GNUTLS_CERT_UNEXPECTED_OWNER) {
		buf_printf(&b, "%sname does not match %s", b.len ? "; " : "", host);
		known |= GNUTLS_CERT_UNEXPECTED_OWNER;
	}
	if (status & GNUTLS_CERT_EXPIRED) {
		buf_printf(&b, "%scertificate expired", b.len ? "; " : "");
		known |= GNUTLS_CERT_EXPIRED;
	}
	if (status & GNUTLS_CERT_NOT_ACTIVATED) {
		buf_printf(&b, "%scertificate not yet valid", b.len ? "; " : "");
		known |= GNUTLS_CERT_NOT_ACTIVATED;
	}
	if (status & GNUTLS_CERT_PURPOSE_MISMATCH) {
		buf_printf(&b, "%scertificate not meant for a TLS server", b.len ? "; " : "");
		known |= GNUTLS_CERT_PURPOSE_MISMATCH;
	}
	/* INVALID is set together with every other reason. */
	known |= GNUTLS_CERT_INVALID;
	if ((status & ~known) != 0 &&
	    gnutls_certificate_verification_status_print(status & ~known,
	    GNUTLS_CRT_X509, &out, 0) == 0) {
		buf_printf(&b, "%s%s", b.len ? "; " : "", (const char *)out.data);
		gnutls_free(out.data);
	}
	if (b.len == 0)
		buf_printf(&b, "certificate not trusted (status 0x%x)", status);
	snprintf(err, errlen, "%s", b.data);
	buf_free(&b);
}

int
tls_verify_der_chain(const unsigned char *const *der, const size_t *lens, size_t n,
    const char *host, const char *ca_file, char *err, size_t errlen)
{
	gnutls_x509_crt_t		 crts[TLS_CHAIN_MAX];
	gnutls_x509_trust_list_t	 tl = NULL;
	gnutls_typed_vdata_st		 vdata[2];
	gnutls_datum_t			 d;
	unsigned int			 status = 0;
	size_t				 ncrt = 0, i;
	int				 r, ret = -1;

	if (n == 0) {
		snprintf(err, errlen, "the server sent no certificate");
		return -1;
	}
	if (n > TLS_CHAIN_MAX) {
		snprintf(err, errlen, "certificate chain too long (%zu certificates)", n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((r = gnutls_x509_crt_init(&crts[i])) < 0) {
			snprintf(err, errlen, "gnutls: %s", gnutls_strerror(r));
			goto out;
		}
		ncrt++;
		d.data = (unsigned char *)der[i];
		d.size = (unsigned int)lens[i];
		if ((r = gnutls_x509_crt_import(crts[i], &d, GNUTLS_X509_FMT_DER)) < 0) {
			snprintf(err, errlen, "certificate %zu unreadable: %s", i,
			    gnutls_strerror(r));
			goto out;
		}
	}
	if ((r = gnutls_x509_trust_list_init(&tl, 0)) < 0) {
		snprintf(err, errlen, "gnutls: %s", gnutls_strerror(r));
		goto out;
	}
	if (ca_file != NULL) {
		r = gnutls_x509_trust_list_add_trust_file(tl, ca_file, NULL,
		    GNUTLS_X509_FMT_PEM, 0, 0);
		if (r <= 0) {
			snprintf(err, errlen, "no CA certificate loaded from %s%s%s", ca_file,
			    r < 0 ? ": " : "", r < 0 ? gnutls_strerror(r) : "");
			goto out;
		}
	} else {
		r = gnutls_x509_trust_list_add_system_trust(tl, 0, 0);
		if (r <= 0) {
			snprintf(err, errlen, "no system trust anchors%s%s",
			    r < 0 ? ": " : "", r < 0 ? gnutls_strerror(r) : "");
			goto out;
		}
	}

	/*
	 * GNUTLS_DT_DNS_HOSTNAME also matches an IP literal against the
	 * iPAddress SANs (gnutls_x509_crt_check_hostname2 detects the literal);
	 * the test suite checks this for 127.0.0.1.
	 */
	memset(vdata, 0, sizeof(vdata));
	vdata[0].type = GNUTLS_DT_DNS_HOSTNAME;
	vdata[0].data = (unsigned char *)host;
	vdata[1].type = GNUTLS_DT_KEY_PURPOSE_OID;
	vdata[1].data = (unsigned char *)GNUTLS_KP_TLS_WWW_SERVER;
	r = gnutls_x509_trust_list_verify_crt2(tl, crts, (unsigned int)ncrt, vdata, 2,
	    0, &status, NULL);
	/* r is 0 even for an untrusted chain: the verdict is in status. */
	if (r < 0) {
		snprintf(err, errlen, "verification failed: %s", gnutls_strerror(r));
		goto out;
	}
	if (status != 0) {
		tls_status_text(status, host, err, errlen);
		goto out;
	}
	ret = 0;
out:
	if (tl != NULL)
		gnutls_x509_trust_list_deinit(tl, 1);
	for (i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
	return ret;
}

int
tls_verify_stream(struct _mailstream *s, const char *host, const char *ca_file,
    char *err, size_t errlen)
{
	const unsigned char	*der[TLS_CHAIN_MAX];
	size_t			 lens[TLS_CHAIN_MAX];
	carray			*chain;
	MMAPString		*str;
	unsigned int		 i, n;
	int			 ret;

	/* Only valid after a completed handshake: 1.9.4 returns garbage otherwise. */
	if ((chain = mailstream_get_certificate_chain(s)) == NULL) {
		snprintf(err, errlen, "no TLS certificate on the connection");
		return -1;
	}
	n = carray_count(chain);
	if (n > TLS_CHAIN_MAX) {
		snprintf(err, errlen, "certificate chain too long (%u certificates)", n);
		ret = -1;
		goto out;
	}
	for (i = 0; i < n; i++) {
		str = carray_get(chain, i);
		der[i] = (const unsigned char *)str->str;
		lens[i] = str->len;
	}
	ret = tls_verify_der_chain(der, lens, n, host, ca_file, err, errlen);
out:
	mailstream_certificate_chain_free(chain);
	return ret;
}
