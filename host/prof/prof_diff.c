/*
 * prof_diff.c - `moecard profile diff A B`: two summary.json files side by side, per op and per
 * layer (exclusive time per decode step), the largest differences first.
 */
#include "prof/prof.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"

struct drow {
	char name[PROF_KEY + 8];
	double a, b; /* exclusive us per decode step; NAN when absent */
};

static int cmp_drow(const void *x, const void *y)
{
	const struct drow *p = x, *q = y;
	double dp = fabs((isnan(p->b) ? 0 : p->b) - (isnan(p->a) ? 0 : p->a));
	double dq = fabs((isnan(q->b) ? 0 : q->b) - (isnan(q->a) ? 0 : q->a));
	return (dp < dq) - (dp > dq);
}

/* Loads one summary (from buf[0..len) when buf is given, else from the file path) and checks its
 * decode step count and arrays. */
static json_t *load(const char *path, const char *buf, size_t len, char *err, size_t errlen,
		    int *rc)
{
	json_error_t je;
	json_t *j = buf ? json_loadb(buf, len, 0, &je) : json_load_file(path, 0, &je);
	if (!j) {
		if (je.line < 1)
			*rc = errmsg_fail(err, errlen, -ENOENT, "%s: cannot read it", path);
		else
			*rc = errmsg_fail(err, errlen, -EINVAL, "%s: line %d: %s", path, je.line,
					  je.text);
		return NULL;
	}
	const char *need[] = {"moecard_profile", "decode_steps", "ops", "layers"};
	for (int i = 0; i < 4; i++) {
		json_t *v = json_object_get(j, need[i]);
		if (!v || (i < 2 && !json_is_integer(v)) || (i >= 2 && !json_is_array(v))) {
			*rc = errmsg_fail(err, errlen, -EINVAL, "%s: %s: missing or the wrong type",
					  path, need[i]);
			json_decref(j);
			return NULL;
		}
	}
	return j;
}

/* Adds the rows of array key of j (column col) to rows; -EINVAL on a bad entry. */
static int add_rows(json_t *j, const char *path, const char *key, int col, const char *only,
		    struct drow **rows, size_t *n, size_t *cap, char *err, size_t errlen)
{
	json_t *arr = json_object_get(j, key);
	double steps = (double)json_integer_value(json_object_get(j, "decode_steps"));
	if (steps < 1)
		steps = 1;
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e)
	{
		json_t *nm = json_object_get(e, "name"), *ex = json_object_get(e, "excl_us");
		if (!json_is_string(nm) || !json_is_number(ex))
			return errmsg_fail(err, errlen, -EINVAL,
					   "%s: %s[%zu]: name or excl_us missing", path, key, i);
		json_t *wh = json_object_get(e, "where");
		if (only && (!json_is_string(wh) || strcmp(json_string_value(wh), only)))
			continue;
		char name[PROF_KEY + 8];
		snprintf(name, sizeof name, "%s%s", key[0] == 'l' ? "" : "op ",
			 json_string_value(nm));
		size_t r = 0;
		while (r < *n && strcmp((*rows)[r].name, name))
			r++;
		if (r == *n) {
			if (*n == *cap) {
				size_t c = *cap ? *cap * 2 : 64;
				struct drow *x = realloc(*rows, c * sizeof *x);
				if (!x)
					return -ENOMEM;
				*rows = x;
				*cap = c;
			}
			snprintf((*rows)[r].name, sizeof(*rows)[r].name, "%s", name);
			(*rows)[r].a = (*rows)[r].b = NAN;
			(*n)++;
		}
		double v = json_number_value(ex) / steps;
		if (col)
			(*rows)[r].b = isnan((*rows)[r].b) ? v : (*rows)[r].b + v;
		else
			(*rows)[r].a = isnan((*rows)[r].a) ? v : (*rows)[r].a + v;
	}
	return 0;
}

int prof_diff(const char *a, const char *b, const char *only, FILE *out, double min_ns,
	      double *worst, char *err, size_t errlen)
{
	return prof_diff_buf(a, NULL, 0, b, NULL, 0, only, out, min_ns, worst, err, errlen);
}

int prof_diff_buf(const char *a, const char *abuf, size_t alen, const char *b, const char *bbuf,
		  size_t blen, const char *only, FILE *out, double min_ns, double *worst, char *err,
		  size_t errlen)
{
	int rc = 0;
	*worst = 0;
	json_t *ja = load(a, abuf, alen, err, errlen, &rc),
	       *jb = ja ? load(b, bbuf, blen, err, errlen, &rc) : NULL;
	struct drow *rows = NULL;
	size_t n = 0, cap = 0;
	if (!ja || !jb)
		goto out;
	if ((rc = add_rows(ja, a, "ops", 0, only, &rows, &n, &cap, err, errlen)) ||
	    (rc = add_rows(jb, b, "ops", 1, only, &rows, &n, &cap, err, errlen)) ||
	    (!only && (rc = add_rows(ja, a, "layers", 0, NULL, &rows, &n, &cap, err, errlen))) ||
	    (!only && (rc = add_rows(jb, b, "layers", 1, NULL, &rows, &n, &cap, err, errlen))))
		goto out;
	if (n)
		qsort(rows, n, sizeof *rows, cmp_drow);
	json_t *ta = json_object_get(ja, "token_mean_us"),
	       *tb = json_object_get(jb, "token_mean_us");
	fprintf(out, "profile diff: A %s, B %s\n  decode step mean: A %.3f us, B %.3f us\n", a, b,
		json_number_value(ta), json_number_value(tb));
	fprintf(out, "  %-44s %12s %12s %12s %9s\n", "op / layer (us per decode step)", "A", "B",
		"B - A", "change");
	for (size_t i = 0; i < n; i++) {
		const struct drow *r = &rows[i];
		double va = isnan(r->a) ? 0 : r->a, vb = isnan(r->b) ? 0 : r->b, d = vb - va;
		double rel = va > 0 ? fabs(d) / va : (vb > 0 ? INFINITY : 0);
		if (fmax(va, vb) * 1e3 >= min_ns && rel > *worst)
			*worst = rel;
		if (d == 0 && i >= 10)
			continue;
		char ch[24];
		if (isnan(r->a))
			snprintf(ch, sizeof ch, "only B");
		else if (isnan(r->b))
			snprintf(ch, sizeof ch, "only A");
		else
			snprintf(ch, sizeof ch, "%+.2f%%", va > 0 ? 100 * d / va : 0);
		fprintf(out, "  %-44.44s %12.3f %12.3f %+12.3f %9s\n", r->name, va, vb, d, ch);
	}
	if (isinf(*worst))
		*worst = 1e9;
out:
	free(rows);
	json_decref(ja);
	json_decref(jb);
	return rc;
}
