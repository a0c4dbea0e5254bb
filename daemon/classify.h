/* classify.h — `ipcase classify`: one JSON object per mail file, no store needed. */
#ifndef IPCASED_CLASSIFY_H
#define IPCASED_CLASSIFY_H

#include <stdio.h>

#include "conf.h"
#include "rules.h"

/*
 * Reads each file, decodes it, classifies it and prints one JSON line:
 * file, kind, complaint_id, asins[], infringement_type, rights_owner_name,
 * rights_owner_email, marketplace, deadline_days, authentic (null when
 * unverified), unverified, rule, auth_reason, reasons[] (the rule, every
 * authentication and link finding, the verdict), lawsuit, outcome.  Missing
 * fields are null.  An unreadable file prints a line
 * with "error" and counts as a failure.  Returns the number of failures.
 */
int	classify_files(const struct rules *, const struct conf *, char *const *files, int nfiles, FILE *out);

#endif
