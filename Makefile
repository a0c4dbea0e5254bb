# ipcased — build, test, demo, install.  Plain make; see README.md.

PREFIX	?= /usr/local
DESTDIR	?=
SBINDIR	 = $(PREFIX)/sbin
BINDIR	 = $(PREFIX)/bin
# The helper programs; the daemon finds them from its own place: ../libexec/ipcased.
LIBEXECDIR = $(PREFIX)/libexec/ipcased
MANDIR	 = $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR	?= /lib/systemd/system
SYSUSERSDIR ?= /usr/lib/sysusers.d

CC	?= cc
VERSION	 = 0.1.0
PKGS	 = libconfig libcurl sqlite3 libsystemd libpcre2-8 gnutls gmime-3.0 json-c libxml-2.0
CFLAGS	?= -O2 -g
CFLAGS	+= -std=c11 -D_GNU_SOURCE -DVERSION=\"$(VERSION)\" -Wall -Wextra -Werror -Wshadow -Wformat=2 \
	   -Wstrict-prototypes -Wmissing-prototypes -Wno-deprecated-declarations \
	   $(shell pkg-config --cflags $(PKGS))
# Not `pkg-config --libs libetpan`: its -specs switches PIE off.
LDLIBS	+= -letpan $(shell pkg-config --libs $(PKGS)) -lm

ifeq ($(SANITIZE),1)
CFLAGS	+= -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS	+= -fsanitize=address,undefined
endif

# The daemon, its helper programs (spawn.h), the command-line tool.  Each is
# linked with what its objects use and no more (the linker's --as-needed):
# the daemon maps no TLS, IMAP or HTTP library, a fetcher no SQLite or curl.
HELPERS	 = daemon/ipcased-fetch daemon/ipcased-send
PROGS	 = daemon/ipcased daemon/ipcase $(HELPERS)
MAINS	 = $(PROGS:=.c)
# daemon/rules_default.c is generated from conf/rules.conf (the built-in rules).
GEN	 = daemon/rules_default.c
SRCS	 = $(sort $(filter-out $(MAINS), $(wildcard daemon/*.c)) $(GEN))
OBJS	 = $(SRCS:.c=.o)
LIB	 = daemon/libipcased.a

TESTS	 = $(patsubst %.c,%,$(wildcard tests/test_*.c))

all: $(PROGS)

# Objects remember the flags they were built with: `make check SANITIZE=1`
# after a plain build rebuilds everything instead of mixing the two.  The
# stamp is rewritten (and so newer than the objects) only when flags change.
FLAGS_STAMP = daemon/.build-flags
FLAGS_NOW := $(CC) $(CFLAGS) $(LDFLAGS)
ifneq ($(FLAGS_NOW),$(shell cat $(FLAGS_STAMP) 2>/dev/null))
$(shell printf '%s\n' '$(FLAGS_NOW)' > $(FLAGS_STAMP))
endif

$(LIB): $(OBJS)
	rm -f $@
	$(AR) rcs $@ $(OBJS)

daemon/%.o: daemon/%.c $(wildcard daemon/*.h) $(FLAGS_STAMP)
	$(CC) $(CFLAGS) -c -o $@ $<

# conf/rules.conf as a C array, for `ipcase classify` without a config file.
# od and sed only (xxd is not always installed); the same input gives the same file.
daemon/rules_default.c: conf/rules.conf Makefile
	{ echo '/* rules_default.c — generated from conf/rules.conf by the Makefile; do not edit. */'; \
	  echo '#include "rules.h"'; echo; \
	  echo 'const unsigned char rules_default_text[] = {'; \
	  od -An -v -tx1 conf/rules.conf | sed -e 's/[0-9a-f][0-9a-f]/0x&,/g' -e 's/^ *//'; \
	  echo '0x00 };'; echo; \
	  echo 'const size_t rules_default_len = sizeof(rules_default_text) - 1;'; } >$@.tmp
	mv $@.tmp $@

$(PROGS): %: %.o $(LIB)
	$(CC) $(LDFLAGS) -Wl,--as-needed -o $@ $^ $(LDLIBS)

tests/test_%: tests/test_%.c tests/testutil.h $(LIB) $(wildcard daemon/*.h) $(FLAGS_STAMP)
	$(CC) $(CFLAGS) -Idaemon $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcmocka

deps:
	@sh tests/deps.sh

check: deps all $(TESTS)
	@sh tests/run.sh $(TESTS)

demo: deps all
	@sh tests/demo.sh

# Fault injection: 100 SIGKILLs during ingestion, Dovecot restarts, SMTP down,
# database locked, disk full, clock steps (`make check` runs a short version).
torture: deps all
	@bash tests/torture.sh

FUZZ_SECONDS ?= 60
fuzz: deps
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS)

bench: deps all
	@bash bench/run.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/ipcased \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 daemon/ipcased $(DESTDIR)$(SBINDIR)/ipcased
	install -m 0755 daemon/ipcase $(DESTDIR)$(BINDIR)/ipcase
	install -d $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 $(HELPERS) $(DESTDIR)$(LIBEXECDIR)/
	test -e $(DESTDIR)$(SYSCONFDIR)/ipcased/ipcased.conf || \
		install -m 0640 conf/ipcased.conf $(DESTDIR)$(SYSCONFDIR)/ipcased/ipcased.conf
	test -e $(DESTDIR)$(SYSCONFDIR)/ipcased/rules.conf || \
		install -m 0640 conf/rules.conf $(DESTDIR)$(SYSCONFDIR)/ipcased/rules.conf
	install -m 0644 systemd/ipcased.service $(DESTDIR)$(UNITDIR)/ipcased.service
	install -d $(DESTDIR)$(SYSUSERSDIR)
	install -m 0644 systemd/ipcased.sysusers $(DESTDIR)$(SYSUSERSDIR)/ipcased.conf
	@echo "installed; as root: systemd-sysusers && chgrp ipcased $(SYSCONFDIR)/ipcased/*.conf"
	for m in doc/*.[158]; do [ -e "$$m" ] || continue; \
		s=$${m##*.}; install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/ipcased $(DESTDIR)$(BINDIR)/ipcase $(DESTDIR)$(UNITDIR)/ipcased.service \
		$(DESTDIR)$(SYSUSERSDIR)/ipcased.conf
	rm -f $(addprefix $(DESTDIR)$(LIBEXECDIR)/,$(notdir $(HELPERS)))
	-rmdir $(DESTDIR)$(LIBEXECDIR) 2>/dev/null
	for m in doc/*.[158]; do [ -e "$$m" ] || continue; \
		s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; done

clean:
	rm -f daemon/*.o $(LIB) $(PROGS) $(TESTS) $(FLAGS_STAMP) $(GEN)

# For building one module's test by hand: cc $$(make -s print-cflags) ... $$(make -s print-ldlibs)
print-cflags:
	@echo $(CFLAGS) -Idaemon
print-ldlibs:
	@echo $(LDLIBS) -lcmocka

.PHONY: all check torture demo bench fuzz deps install uninstall clean print-cflags print-ldlibs
