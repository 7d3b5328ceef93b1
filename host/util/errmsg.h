/*
 * errmsg.h - the host's one-line error messages: library functions write "<file>: <field>: <what>"
 * into a caller's buffer and return a negative errno; only the CLI prints it.
 */
#ifndef MOECARD_ERRMSG_H
#define MOECARD_ERRMSG_H

#include <stddef.h>

/* errmsg_fail - formats the message into err (errlen bytes; err may be NULL) and returns rc. */
int errmsg_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* errmsg_oneline - keeps a message on one line: each control byte of s (below 0x20, and 0x7F),
 * as a parser's excerpt of bad input may hold, becomes '?'. errmsg_fail does it. */
void errmsg_oneline(char *s);

#endif
