/*
 * prof_sum.c - the profile's summary: the timeline split into exclusive parts (every instant
 * belongs to one host part, one transfer, the commands running then (shared evenly when several
 * run at once), or the card's idle time inside a list), per op and per layer over the decode
 * steps, token latencies, each kernel against its roofline, bytes per pseudo-channel; written as
 * text and JSON.
 */
#include "prof/prof.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The q-quantile (0..1) of d[0..n) sorted, nearest rank. */
static double quantile(const double *d, size_t n, double q)
{
	if (!n)
		return 0;
	size_t i = (size_t)ceil(q * (double)n);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return d[i - 1];
}

static int stat_push(struct prof_stat *st, double d)
{
	if (st->nd == st->capd) {
		size_t cap = st->capd ? st->capd * 2 : 16;
		double *x = realloc(st->d, cap * sizeof *x);
		if (!x)
			return -ENOMEM;
		st->d = x;
		st->capd = cap;
	}
	st->d[st->nd++] = d;
	return 0;
}

static void stat_finish(struct prof_stat *st)
{
	if (!st->nd)
		return;
	qsort(st->d, st->nd, sizeof(double), cmp_double);
	st->mean_ns = st->total_ns / (double)st->nd;
	st->p50_ns = quantile(st->d, st->nd, 0.5);
	st->p99_ns = quantile(st->d, st->nd, 0.99);
	st->max_ns = st->d[st->nd - 1];
}

/* The row of key in *arr (added when new), keys compared as the rows keep them (a name longer
 * than a row's key is cut to it, so its events still share one row). NULL when out of memory. */
static struct prof_stat *stat_row(struct prof_stat **arr, size_t *n, size_t *cap, const char *key,
				  int layer)
{
	char k[PROF_KEY];
	snprintf(k, sizeof k, "%s", key);
	for (size_t i = 0; i < *n; i++)
		if ((*arr)[i].layer == layer && !strcmp((*arr)[i].key, k))
			return &(*arr)[i];
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 32;
		struct prof_stat *x = realloc(*arr, c * sizeof *x);
		if (!x)
			return NULL;
		*arr = x;
		*cap = c;
	}
	struct prof_stat *st = &(*arr)[(*n)++];
	memset(st, 0, sizeof *st);
	snprintf(st->key, sizeof st->key, "%s", k);
	st->layer = layer;
	return st;
}

static int cmp_excl(const void *a, const void *b)
{
	const struct prof_stat *x = a, *y = b;
	return (x->excl_ns < y->excl_ns) - (x->excl_ns > y->excl_ns);
}

static int cmp_layer(const void *a, const void *b)
{
	const struct prof_stat *x = a, *y = b;
	return (x->layer > y->layer) - (x->layer < y->layer);
}

struct edge {
	double t;
	int open; /* 1 start, 0 end */
	size_t ev;
};

static int cmp_edge(const void *a, const void *b)
{
	const struct edge *x = a, *y = b;
	if (x->t != y->t)
		return (x->t > y->t) - (x->t < y->t);
	return x->open - y->open; /* ends before starts at the same instant */
}

/* Exclusive time of every event into excl[]: host and link slices own their span; the commands
 * of the card share each instant evenly among those running; DMA transfers run beside and own
 * nothing. Returns the card time covered by some command per token into cov[tok]. */
static int exclusive(const struct prof *p, double *excl, double *cov, int ntok)
{
	size_t ne = 0;
	struct edge *ed = malloc(sizeof *ed * (p->n * 2 + 1));
	if (!ed)
		return -ENOMEM;
	for (size_t i = 0; i < p->n; i++) {
		const struct prof_ev *e = &p->ev[i];
		int kind = p->track[e->track].kind;
		excl[i] = 0;
		if (kind == PROF_HOST || kind == PROF_LINK)
			excl[i] = e->t1 - e->t0;
		else if (kind == PROF_CU && e->t1 > e->t0) {
			ed[ne++] = (struct edge){e->t0, 1, i};
			ed[ne++] = (struct edge){e->t1, 0, i};
		}
	}
	qsort(ed, ne, sizeof *ed, cmp_edge);
	size_t act[PROF_MAX_TRACKS * 4], na = 0;
	double last = 0;
	for (size_t j = 0; j < ne; j++) {
		double dt = ed[j].t - last;
		if (na && dt > 0) {
			for (size_t a = 0; a < na; a++)
				excl[act[a]] += dt / (double)na;
			int tk = p->ev[act[0]].token;
			if (tk >= 0 && tk < ntok)
				cov[tk] += dt;
		}
		last = ed[j].t;
		if (ed[j].open) {
			if (na < sizeof act / sizeof act[0])
				act[na++] = ed[j].ev;
		} else {
			for (size_t a = 0; a < na; a++)
				if (act[a] == ed[j].ev) {
					act[a] = act[--na];
					break;
				}
		}
	}
	free(ed);
	return 0;
}

/* The roof of an op's bytes: its banks' sustained rate, GB/s (0 unknown). */
static double bw_roof(const struct prof_card *c, int pc0, int pc1)
{
	double r = 0;
	for (int b = pc0; c->valid && b >= 0 && b <= pc1 && b < c->n_pcs; b++)
		r += c->pc_gbps[b] * c->eff;
	return r;
}

int prof_summarize(const struct prof *p, struct prof_summary *s)
{
	memset(s, 0, sizeof *s);
	s->card = p->card;
	s->wall_ns = p->cursor;
	s->events = p->n;
	s->lists = p->lists;
	s->self_ns = p->self_ns;
	int ntok = p->n_tok;
	double *excl = calloc(p->n + 1, sizeof(double));
	double *cov = calloc((size_t)ntok + 1, sizeof(double));
	double *lt = calloc((size_t)ntok + 1, sizeof(double)); /* list time per token */
	int r = -ENOMEM;
	if (!excl || !cov || !lt || exclusive(p, excl, cov, ntok))
		goto out;
	for (uint64_t i = 0; i < p->lists && p->lists_at; i++) {
		int tk = p->lists_at[i].token;
		if (tk >= 0 && tk < ntok)
			lt[tk] += p->lists_at[i].t1 - p->lists_at[i].t0;
	}
	if (ntok > 0)
		s->ttft_ns = p->tok_end[0];
	s->n_tok = ntok > 1 ? ntok - 1 : 0;
	s->tok_ns = calloc((size_t)s->n_tok + 1, sizeof(double));
	s->n_pcs = p->card.valid ? p->card.n_pcs : 0;
	s->pc_tok =
	    calloc(((size_t)s->n_tok + 1) * (size_t)(s->n_pcs ? s->n_pcs : 1), sizeof(double));
	s->fills_tok = calloc((size_t)s->n_tok + 1, sizeof(double));
	if (!s->tok_ns || !s->pc_tok || !s->fills_tok)
		goto out;
	for (int i = 1; i < ntok; i++) {
		s->tok_ns[i - 1] = p->tok_end[i] - p->tok_end[i - 1];
		s->idle_ns += lt[i] - cov[i];
		s->fills_tok[i - 1] = p->fill_tok[i];
		for (int b = 0; b < s->n_pcs; b++) {
			double v = p->pc_tok[(size_t)PROF_MAX_PCS * i + b];
			s->pc_tok[(size_t)(i - 1) * s->n_pcs + b] = v;
			s->pc_bytes[b] += v / (ntok - 1);
		}
	}
	if (s->n_tok) {
		s->decode_ns = p->tok_end[ntok - 1] - p->tok_end[0];
		s->tok_mean_ns = s->decode_ns / s->n_tok;
		double *d = malloc(sizeof(double) * (size_t)s->n_tok);
		if (!d)
			goto out;
		memcpy(d, s->tok_ns, sizeof(double) * (size_t)s->n_tok);
		qsort(d, (size_t)s->n_tok, sizeof(double), cmp_double);
		s->tok_p50_ns = quantile(d, (size_t)s->n_tok, 0.5);
		s->tok_p99_ns = quantile(d, (size_t)s->n_tok, 0.99);
		s->tok_max_ns = d[s->n_tok - 1];
		free(d);
	}
	/* per op and per layer over the decode steps */
	size_t cap_op = 0, cap_l = 0;
	double *lay_tok = NULL; /* [layer + 1][token]: exclusive ns, for the per-layer quantiles */
	int max_layer = -1;
	for (size_t i = 0; i < p->n; i++)
		if (p->ev[i].layer > max_layer)
			max_layer = p->ev[i].layer;
	size_t nl = (size_t)max_layer + 2;
	lay_tok = calloc(nl * ((size_t)s->n_tok + 1), sizeof(double));
	if (!lay_tok)
		goto out;
	for (size_t i = 0; i < p->n; i++) {
		const struct prof_ev *e = &p->ev[i];
		if (e->token < 1 || e->token >= ntok)
			continue;
		int kind = p->track[e->track].kind;
		double d = e->t1 - e->t0;
		struct prof_stat *st = stat_row(&s->op, &s->n_op, &cap_op, e->name, -2);
		if (!st || stat_push(st, d))
			goto out_lt;
		st->cat = e->cat;
		st->kind = kind;
		st->count++;
		st->total_ns += d;
		st->excl_ns += excl[i];
		st->bytes += (double)e->bytes;
		st->macs += e->macs;
		if (kind == PROF_CU && e->pc0 >= 0) {
			double roof = bw_roof(&p->card, e->pc0, e->pc1);
			/* the roof weighted by time: sum(roof * d) / total gives the mean roof */
			st->bw_frac += roof * d;
		}
		if (kind != PROF_DMA) {
			s->cls_ns[kind] += excl[i];
			lay_tok[(size_t)(e->layer + 1) * (size_t)(s->n_tok + 1) +
				(size_t)e->token] += excl[i];
		}
	}
	s->cls_ns[PROF_CU] += s->idle_ns; /* the lists' idle time is card time */
	for (size_t i = 0; i < s->n_op; i++) {
		struct prof_stat *st = &s->op[i];
		double roof = st->total_ns > 0 ? st->bw_frac / st->total_ns : 0; /* GB/s */
		st->bw_frac = roof > 0 && st->total_ns > 0 ? st->bytes / st->total_ns / roof : 0;
		if (!strcmp(st->cat ? st->cat : "", "MLA_ATTN_LANES") && p->card.valid &&
		    p->card.lanes && p->card.attn_lane_macs && st->total_ns > 0)
			st->mac_frac =
			    st->macs / st->total_ns /
			    (p->card.lanes * p->card.attn_lane_macs * p->card.clock_mhz / 1e3);
		stat_finish(st);
	}
	qsort(s->op, s->n_op, sizeof *s->op, cmp_excl);
	for (size_t l = 0; l < nl; l++) {
		int layer = (int)l - 1;
		double tot = 0;
		for (int t = 1; t < ntok; t++)
			tot += lay_tok[l * (size_t)(s->n_tok + 1) + (size_t)t];
		if (tot <= 0)
			continue;
		char key[PROF_KEY];
		if (layer < 0)
			snprintf(key, sizeof key, "outside layers");
		else
			snprintf(key, sizeof key, "layer %d", layer);
		struct prof_stat *st = stat_row(&s->layer, &s->n_layer, &cap_l, key, layer);
		if (!st)
			goto out_lt;
		for (int t = 1; t < ntok; t++) {
			double v = lay_tok[l * (size_t)(s->n_tok + 1) + (size_t)t];
			if (stat_push(st, v))
				goto out_lt;
			st->count++;
			st->total_ns += v;
		}
		st->excl_ns = st->total_ns;
		stat_finish(st);
	}
	qsort(s->layer, s->n_layer, sizeof *s->layer, cmp_layer);
	r = 0;
out_lt:
	free(lay_tok);
out:
	free(excl);
	free(cov);
	free(lt);
	return r;
}

void prof_summary_free(struct prof_summary *s)
{
	for (size_t i = 0; i < s->n_op; i++)
		free(s->op[i].d);
	for (size_t i = 0; i < s->n_layer; i++)
		free(s->layer[i].d);
	free(s->op);
	free(s->layer);
	free(s->tok_ns);
	free(s->pc_tok);
	free(s->fills_tok);
	memset(s, 0, sizeof *s);
}

static const char *const kind_name[4] = {"host", "link", "card", "dma"};

static void stat_json(FILE *f, const struct prof_stat *st, double tok)
{
	fputs("{\"name\":", f);
	prof_json_str(f, st->key);
	if (st->layer != -2)
		fprintf(f, ",\"layer\":%d", st->layer);
	else {
		fputs(",\"class\":", f);
		prof_json_str(f, st->cat ? st->cat : "");
		fprintf(f, ",\"where\":\"%s\"", kind_name[st->kind & 3]);
	}
	fprintf(f,
		",\"count\":%llu,\"total_us\":%.4f,\"excl_us\":%.4f,\"mean_us\":%.4f,"
		"\"p50_us\":%.4f,\"p99_us\":%.4f,\"max_us\":%.4f,\"share_of_token\":%.6f",
		(unsigned long long)st->count, st->total_ns / 1e3, st->excl_ns / 1e3,
		st->mean_ns / 1e3, st->p50_ns / 1e3, st->p99_ns / 1e3, st->max_ns / 1e3,
		tok > 0 ? st->excl_ns / tok : 0);
	if (st->layer == -2 && st->bytes > 0)
		fprintf(f, ",\"bytes\":%.0f,\"bw_roofline_frac\":%.4f", st->bytes, st->bw_frac);
	if (st->layer == -2 && st->macs > 0)
		fprintf(f, ",\"macs\":%.0f,\"mac_roofline_frac\":%.4f", st->macs, st->mac_frac);
	fputc('}', f);
}

int prof_write_summary_json(const struct prof_summary *s, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	double tok = s->decode_ns;
	fputs("{\"moecard_profile\":1,\"backend\":", f);
	prof_json_str(f, s->backend);
	fputs(",\"model\":", f);
	prof_json_str(f, s->model);
	fputs(",\"card\":", f);
	prof_json_str(f, s->card.valid ? s->card.model : "none");
	fprintf(f,
		",\"prompt_len\":%d,\"gen\":%d,\"seqs\":%d,\"events\":%llu,\"lists\":%llu,"
		"\"wall_us\":%.4f,\"ttft_us\":%.4f,\"decode_steps\":%d,\"decode_us\":%.4f,"
		"\"decode_idle_us\":%.4f,\"token_mean_us\":%.4f,\"token_p50_us\":%.4f,"
		"\"token_p99_us\":%.4f,\"token_max_us\":%.4f,\"decode_tok_s\":%.3f,"
		"\"recorder_us\":%.3f,\"overhead_on_s\":%.6f,\"overhead_off_s\":%.6f",
		s->prompt_len, s->gen, s->seqs, (unsigned long long)s->events,
		(unsigned long long)s->lists, s->wall_ns / 1e3, s->ttft_ns / 1e3, s->n_tok,
		s->decode_ns / 1e3, s->idle_ns / 1e3, s->tok_mean_ns / 1e3, s->tok_p50_ns / 1e3,
		s->tok_p99_ns / 1e3, s->tok_max_ns / 1e3,
		s->tok_mean_ns > 0 ? (s->seqs > 0 ? s->seqs : 1) * 1e9 / s->tok_mean_ns : 0,
		s->self_ns / 1e3, s->ovh_on_s, s->ovh_off_s);
	fprintf(f, ",\"decode_by_class_us\":{\"host\":%.4f,\"link\":%.4f,\"card\":%.4f}",
		s->cls_ns[PROF_HOST] / 1e3, s->cls_ns[PROF_LINK] / 1e3, s->cls_ns[PROF_CU] / 1e3);
	fputs(",\"token_us\":[", f);
	for (int i = 0; i < s->n_tok; i++)
		fprintf(f, "%s%.4f", i ? "," : "", s->tok_ns[i] / 1e3);
	fputs("],\"ops\":[", f);
	for (size_t i = 0; i < s->n_op; i++) {
		fputs(i ? ",\n" : "\n", f);
		stat_json(f, &s->op[i], tok);
	}
	fputs("],\"layers\":[", f);
	for (size_t i = 0; i < s->n_layer; i++) {
		fputs(i ? ",\n" : "\n", f);
		stat_json(f, &s->layer[i], tok);
	}
	fputs("],\"pc_bytes_per_token\":[", f);
	for (int b = 0; b < s->n_pcs; b++)
		fprintf(f, "%s%.0f", b ? "," : "", s->pc_bytes[b]);
	fputs("],\"expert_fills_per_token\":[", f);
	for (int i = 0; i < s->n_tok; i++)
		fprintf(f, "%s%.0f", i ? "," : "", s->fills_tok[i]);
	fputs("]}\n", f);
	return fclose(f) ? -EIO : 0;
}

int prof_write_summary_txt(const struct prof_summary *s, FILE *f)
{
	double tok = s->decode_ns;
	if (s->seqs > 0) /* B sequences a step: no TTFT, the rate counts every row */
		fprintf(f,
			"profile: %s, backend %s, card %s: %d sequences decoded together (%d "
			"prompt tokens each, prefilled before the timeline), %d decode steps\n"
			"  timeline %.3f ms: decode step mean %.3f ms (%.1f tok/s, %d a step), p50 "
			"%.3f, p99 %.3f, max %.3f ms\n",
			s->model, s->backend, s->card.valid ? s->card.model : "none", s->seqs,
			s->prompt_len, s->n_tok, s->wall_ns / 1e6, s->tok_mean_ns / 1e6,
			s->tok_mean_ns > 0 ? s->seqs * 1e9 / s->tok_mean_ns : 0, s->seqs,
			s->tok_p50_ns / 1e6, s->tok_p99_ns / 1e6, s->tok_max_ns / 1e6);
	else
		fprintf(f,
			"profile: %s, backend %s, card %s: prompt %d tokens, %d decode steps\n"
			"  timeline %.3f ms: TTFT %.3f ms; decode step mean %.3f ms (%.1f tok/s), "
			"p50 %.3f, p99 %.3f, max %.3f ms\n",
			s->model, s->backend, s->card.valid ? s->card.model : "none", s->prompt_len,
			s->n_tok, s->wall_ns / 1e6, s->ttft_ns / 1e6, s->tok_mean_ns / 1e6,
			s->tok_mean_ns > 0 ? 1e9 / s->tok_mean_ns : 0, s->tok_p50_ns / 1e6,
			s->tok_p99_ns / 1e6, s->tok_max_ns / 1e6);
	fprintf(f,
		"  a decode step: host %.1f%%, link %.1f%%, card %.1f%% (of it idle in lists: "
		"%.1f%% of the step)\n",
		tok > 0 ? 100 * s->cls_ns[PROF_HOST] / tok : 0,
		tok > 0 ? 100 * s->cls_ns[PROF_LINK] / tok : 0,
		tok > 0 ? 100 * s->cls_ns[PROF_CU] / tok : 0, tok > 0 ? 100 * s->idle_ns / tok : 0);
	fprintf(f,
		"\nper op, decode steps (exclusive time: overlapping commands share it)\n"
		"  %-50s %-6s %7s %10s %7s %9s %9s %9s %7s %8s %7s\n",
		"op", "where", "count", "excl us", "share", "mean us", "p50 us", "p99 us", "GB/s",
		"bw roof", "class");
	for (size_t i = 0; i < s->n_op; i++) {
		const struct prof_stat *st = &s->op[i];
		char bw[16] = "-", gb[16] = "-";
		if (st->bw_frac > 0)
			snprintf(bw, sizeof bw, "%.1f%%", 100 * st->bw_frac);
		if (st->bytes > 0 && st->total_ns > 0) /* bytes a ns: GB/s */
			snprintf(gb, sizeof gb, "%.1f", st->bytes / st->total_ns);
		fprintf(f, "  %-50.50s %-6s %7llu %10.2f %6.2f%% %9.3f %9.3f %9.3f %7s %8s %s\n",
			st->key, kind_name[st->kind & 3], (unsigned long long)st->count,
			st->excl_ns / 1e3, tok > 0 ? 100 * st->excl_ns / tok : 0, st->mean_ns / 1e3,
			st->p50_ns / 1e3, st->p99_ns / 1e3, gb, bw, st->cat ? st->cat : "");
	}
	if (s->idle_ns > 0)
		fprintf(f, "  %-50s %-6s %7s %10.2f %6.2f%%\n",
			"card idle in lists (firmware, waits)", "card", "", s->idle_ns / 1e3,
			tok > 0 ? 100 * s->idle_ns / tok : 0);
	fprintf(f,
		"\nper layer, decode steps (exclusive time per step)\n  %-16s %10s %7s %9s %9s\n",
		"layer", "mean us", "share", "p50 us", "p99 us");
	for (size_t i = 0; i < s->n_layer; i++) {
		const struct prof_stat *st = &s->layer[i];
		fprintf(f, "  %-16s %10.3f %6.2f%% %9.3f %9.3f\n", st->key, st->mean_ns / 1e3,
			tok > 0 ? 100 * st->excl_ns / tok : 0, st->p50_ns / 1e3, st->p99_ns / 1e3);
	}
	if (s->n_pcs) {
		double tot = 0, mx = 0;
		for (int b = 0; b < s->n_pcs; b++) {
			tot += s->pc_bytes[b];
			if (s->pc_bytes[b] > mx)
				mx = s->pc_bytes[b];
		}
		fprintf(f,
			"\nbytes per pseudo-channel and decode step: %.2f MB in all, the busiest "
			"PC %.2f MB (%.2fx the mean)\n ",
			tot / 1e6, mx / 1e6, tot > 0 ? mx * s->n_pcs / tot : 0);
		for (int b = 0; b < s->n_pcs; b++)
			fprintf(f, " %d:%.2f", b, s->pc_bytes[b] / 1e6);
		fputc('\n', f);
	}
	fprintf(f, "\nrecorder: %llu slices, %llu lists, %.3f ms of host time in the recorder\n",
		(unsigned long long)s->events, (unsigned long long)s->lists, s->self_ns / 1e6);
	if (s->ovh_off_s > 0)
		fprintf(
		    f,
		    "overhead: a pass (prompt + steps) takes %.2f ms of host wall time with the "
		    "profiler on, %.2f ms off (best of 3 each, in turn): %+.2f%%\n",
		    s->ovh_on_s * 1e3, s->ovh_off_s * 1e3, 100 * (s->ovh_on_s / s->ovh_off_s - 1));
	return ferror(f) ? -EIO : 0;
}
