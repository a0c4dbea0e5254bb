/* fetcher.h — the child process of one account: it alone talks IMAP and parses what the server sends. */
#ifndef IPCASED_FETCHER_H
#define IPCASED_FETCHER_H

/*
 * Runs a fetcher on the socket fd (the parent's end is in sync.c): waits
 * for F_SETUP, connects, answers F_SYNC and F_IDLE frames until F_QUIT or
 * the end of the socket, then exits.  Never returns.  It is its own program
 * (ipcased-fetch), so it maps none of the daemon's database, SMTP or HTTP
 * libraries and holds none of their secrets.
 */
void	fetcher_run(int fd) __attribute__((noreturn));

#endif
