/* tls.h — the server certificate and host name check (GnuTLS): libetpan does none. */
#ifndef IPCASED_TLS_H
#define IPCASED_TLS_H

#include <stddef.h>

struct _mailstream;

/*
 * Verifies the chain the server presented on s (after the TLS handshake,
 * before any IMAP byte is parsed) against ca_file (PEM) or, when NULL, the
 * system trust, and that it is valid for host (DNS name or IP address).
 * Returns 0 when trusted, -1 with the reason in err ("certificate signed by an
 * unknown issuer", "name does not match 127.0.0.2", ...).
 */
int	tls_verify_stream(struct _mailstream *s, const char *host, const char *ca_file,
	    char *err, size_t errlen);

/* The same check for a DER chain (leaf first); used by the above and by tests. */
int	tls_verify_der_chain(const unsigned char *const *der, const size_t *lens, size_t n,
	    const char *host, const char *ca_file, char *err, size_t errlen);

#endif
