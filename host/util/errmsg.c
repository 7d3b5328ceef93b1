/*
 * errmsg.c - errmsg_fail (errmsg.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include "util/errmsg.h"

int errmsg_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		errmsg_oneline(err);
	}
	return rc;
}

void errmsg_oneline(char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7F)
			*s = '?';
}
