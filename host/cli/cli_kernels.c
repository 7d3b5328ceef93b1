/*
 * cli_kernels.c - `moecard bench --kernels`: the cpu engine's decode products (kernels.h) on the
 * checkpoint's own matrices, as a decode step runs them (rows_only, every layer in turn, so the
 * weights stream from memory as they do in decode), for 1, 4 and 8 input rows, on every SIMD path
 * this CPU runs and beside a plain read of the same bytes by the same threads. Each round runs
 * every path once, in an order that rotates from round to round, so a machine whose speed drifts
 * (a shared VM) moves all of them alike: the ratios are the figures to quote.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli/cli_kernels.h"
#include "load/ckpt.h"
#include "model/kernels.h"
#include "model/model.h"
#include "model/pool.h"

/* the matrices' products, then (when the engine packed it) the BF16 head's */
enum { KB_SETS = 4, KB_HEAD = 3, KB_MAXJ = 64, KB_NROWS = 3, KB_MAXP = 4 };
static const int kb_rows[KB_NROWS] = {1, 4, 8};
static const char *const kb_set_name[KB_SETS] = {"attention projections", "FFN gate|up", "FFN down",
						 "lm_head (packed BF16)"};
static const char *const kb_set_key[KB_SETS] = {"attention", "ffn_gate_up", "ffn_down", "lm_head"};

/* One parallel region of a decode step: jobs on one input (its columns in), their bytes. */
struct kb_region {
	int set; /* which figure it counts towards */
	int nj;
	const struct qmat *w[KB_MAXJ];
	double bytes;
};

struct kb_state {
	struct kb_region *reg;
	int nreg, capreg;
	float *x, *y; /* inputs [8][max cols], outputs [8][max rows of a region] */
	int max_cols, max_rows;
	const uint16_t *head; /* the packed BF16 head (kern_bf16p_pack) [hn][hk], or NULL */
	int hn, hk;
	float *hy; /* its outputs [8][hn] */
};

static double kb_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Appends a region of n matrices (skipping empty ones); 0 or -ENOMEM. */
static int kb_add(struct kb_state *s, int set, const struct qmat *const *w, int n)
{
	if (s->nreg == s->capreg) {
		int cap = s->capreg ? 2 * s->capreg : 64;
		struct kb_region *r = realloc(s->reg, sizeof(*r) * (size_t)cap);
		if (!r)
			return -ENOMEM;
		s->reg = r;
		s->capreg = cap;
	}
	struct kb_region *r = &s->reg[s->nreg];
	memset(r, 0, sizeof(*r));
	r->set = set;
	int rows = 0;
	for (int i = 0; i < n && r->nj < KB_MAXJ; i++) {
		if (!w[i] || w[i]->rows <= 0 || !w[i]->w)
			continue;
		r->w[r->nj++] = w[i];
		r->bytes += qmat_bytes(w[i]);
		rows += w[i]->rows;
		s->max_cols = w[i]->cols > s->max_cols ? w[i]->cols : s->max_cols;
	}
	s->max_rows = rows > s->max_rows ? rows : s->max_rows;
	if (r->nj)
		s->nreg++;
	return 0;
}

/* A decode step's regions over every layer: q_a (or q) with kv_a, q_b, o_proj; then the FFN's
 * gate|up and down (a MoE layer: experts_per_tok routed experts spread over the layer's experts,
 * and the shared experts). */
static int kb_build(struct kb_state *s, const struct config *c, const struct weights *w)
{
	int E = c->n_routed_experts, k = c->num_experts_per_tok;
	for (int l = 0; l < c->num_hidden_layers; l++) {
		const struct layer_weights *lw = &w->layers[l];
		const struct qmat *a[KB_MAXJ];
		int r;
		a[0] = lw->q_a_proj.rows ? &lw->q_a_proj : &lw->q_proj;
		a[1] = &lw->kv_a_proj_with_mqa;
		if ((r = kb_add(s, 0, a, 2)))
			return r;
		a[0] = lw->q_a_proj.rows ? &lw->q_b_proj : NULL;
		if ((r = kb_add(s, 0, a, 1)))
			return r;
		a[0] = &lw->o_proj;
		if ((r = kb_add(s, 0, a, 1)))
			return r;
		const struct qmat *d[KB_MAXJ];
		int n = 0, nd = 0;
		if (!lw->is_moe) {
			a[n++] = &lw->mlp.gate;
			a[n++] = &lw->mlp.up;
			d[nd++] = &lw->mlp.down;
		} else {
			for (int j = 0; j < k && j < E && n + 2 < KB_MAXJ - 2; j++) {
				/* distinct experts, a different spread on every layer */
				int e =
				    (int)(((long)l * 13 + (long)j * (E / k > 1 ? E / k : 1) + 1) %
					  E);
				a[n++] = &lw->experts[e].gate;
				a[n++] = &lw->experts[e].up;
				d[nd++] = &lw->experts[e].down;
			}
			a[n++] = &lw->shared.gate;
			a[n++] = &lw->shared.up;
			d[nd++] = &lw->shared.down;
		}
		if ((r = kb_add(s, 1, a, n)) || (r = kb_add(s, 2, d, nd)))
			return r;
	}
	return 0;
}

/* One region with M input rows: a job a matrix, each its own output columns. */
static int kb_run(struct kern_ctx *kc, const struct kb_state *s, const struct kb_region *r, int M)
{
	struct kern_job jobs[KB_MAXJ];
	int off = 0;
	for (int j = 0; j < r->nj; j++) {
		jobs[j] = (struct kern_job){.W = r->w[j],
					    .x = s->x,
					    .ldx = s->max_cols,
					    .M = M,
					    .y = s->y + off,
					    .ldy = s->max_rows};
		off += r->w[j]->rows;
	}
	return kern_matmul_jobs(kc, jobs, r->nj);
}

uint64_t bench_sum_words(const void *p, size_t n)
{
	const uint64_t *q = p;
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	for (size_t i = 0; i + 4 <= n / 8; i += 4) {
		s0 += q[i];
		s1 += q[i + 1];
		s2 += q[i + 2];
		s3 += q[i + 3];
	}
	return s0 + s1 + s2 + s3;
}

/* The plain read: spans of bytes (a region's matrices' codes and scales, or the packed head) in
 * 64 KiB pieces over the pool's threads, summed as 64-bit words. */
#define KB_PIECE 65536
#define KB_SPANS (2 * KB_MAXJ)
struct kb_read {
	const unsigned char *p[KB_SPANS];
	size_t n[KB_SPANS];
	int ns, piece0[KB_SPANS + 1]; /* span i's pieces are [piece0[i], piece0[i + 1]) */
	uint64_t sum[64];
};

static void kb_span(struct kb_read *rd, const void *p, size_t n)
{
	if (n && rd->ns < KB_SPANS) {
		rd->p[rd->ns] = p;
		rd->n[rd->ns] = n;
		rd->piece0[rd->ns + 1] = rd->piece0[rd->ns] + (int)((n + KB_PIECE - 1) / KB_PIECE);
		rd->ns++;
	}
}

static void kb_read_task(void *vc, int b, int e, int tid)
{
	struct kb_read *rd = vc;
	for (int i = b, sp = 0; i < e; i++) {
		while (rd->piece0[sp + 1] <= i)
			sp++;
		size_t o = (size_t)(i - rd->piece0[sp]) * KB_PIECE;
		size_t len = rd->n[sp] - o < KB_PIECE ? rd->n[sp] - o : KB_PIECE;
		rd->sum[tid & 63] += bench_sum_words(rd->p[sp] + o, len);
	}
}

static void kb_read(struct pool *p, struct kb_read *rd)
{
	pool_for(p, rd->piece0[rd->ns], 1, kb_read_task, rd);
	uint64_t s = 0;
	for (int i = 0; i < 64; i++)
		s += rd->sum[i];
	__asm__ volatile("" : : "r"(s));
}

static void kb_read_region(struct pool *p, const struct kb_region *r)
{
	struct kb_read rd = {.ns = 0};
	for (int j = 0; j < r->nj; j++) {
		kb_span(&rd, r->w[j]->w, qmat_code_bytes(r->w[j]));
		kb_span(&rd, r->w[j]->scale, qmat_scale_bytes(r->w[j]));
	}
	kb_read(p, &rd);
}

static void kb_read_head(struct pool *p, const struct kb_state *s)
{
	struct kb_read rd = {.ns = 0};
	kb_span(&rd, s->head, (size_t)kern_bf16p_panels(s->hn) * (size_t)s->hk * KERN_PW * 2);
	kb_read(p, &rd);
}

int bench_kernels(const struct cli_opts *a, const struct engine *m)
{
	static const char *const names[] = {"avx2", "avx512", "avx512bf16"};
	const struct kern_isa *isa[KB_MAXP];
	const char *pname[KB_MAXP];
	int np = 1; /* path 0 is the plain read */
	pname[0] = "read";
	isa[0] = NULL;
	for (size_t i = 0; i < sizeof names / sizeof names[0] && np < KB_MAXP; i++)
		if ((isa[np] = kern_isa_by_name(names[i])))
			pname[np++] = names[i];
	if (np == 1) { /* a CPU without AVX2: the scalar path alone */
		isa[np] = kern_isa_by_name("scalar");
		pname[np++] = "scalar";
	}
	int rounds = a->reps > 0 ? a->reps : 10, rc = 1;
	struct kb_state s = {0};
	struct kern_ctx kc[KB_MAXP];
	int nkc = 0;
	struct pool *pool = pool_create(m->threads);
	double t[KB_MAXP][KB_NROWS][KB_SETS] = {{{0}}}, by[KB_SETS] = {0};
	if (!pool || kb_build(&s, m->c, m->w))
		goto oom;
	if (!s.nreg || s.max_cols < 1 || s.max_rows < 1) {
		fprintf(stderr, "moecard: bench --kernels: %s: no projection matrices\n", a->model);
		goto out;
	}
	s.x = malloc(sizeof(float) * 8 * (size_t)s.max_cols);
	s.y = malloc(sizeof(float) * 8 * (size_t)s.max_rows);
	if (!s.x || !s.y)
		goto oom;
	uint64_t q = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < 8 * (size_t)s.max_cols; i++) {
		q ^= q << 13, q ^= q >> 7, q ^= q << 17;
		s.x[i] = (float)((double)(q >> 11) / 9007199254740992.0 - 0.5) * 4.0f;
	}
	for (int p = 1; p < np; p++, nkc++) {
		if (kern_ctx_init(&kc[p], pool, m->act_fp8, m->c->quantization_config.ue8m0,
				  8 * (size_t)s.max_cols * 4, s.max_cols))
			goto oom;
		kc[p].isa = isa[p];
		kc[p].rows_only = 1; /* as a decode step: a row's result is its own */
	}
	for (int i = 0; i < s.nreg; i++)
		by[s.reg[i].set] += s.reg[i].bytes;
	const struct model *md = engine_cpu_model(m);
	if (md && md->headp) {
		s.head = md->headp;
		s.hn = md->w->lm_head.rows;
		s.hk = md->w->lm_head.cols;
		by[KB_HEAD] = (double)kern_bf16p_panels(s.hn) * s.hk * KERN_PW * 2;
		if (!(s.hy = malloc(sizeof(float) * 8 * (size_t)s.hn)))
			goto oom;
	}
	/* round 0 warms up (page faults, first-touch scratch) and is not counted */
	for (int rd = 0; rd <= rounds; rd++)
		for (int pi = 0; pi < np; pi++) {
			int p = (pi + rd) % np;
			for (int mi = 0; mi < KB_NROWS; mi++) {
				if (p == 0 && mi > 0)
					continue; /* the read does not depend on rows */
				for (int i = 0; i < s.nreg; i++) {
					double t0 = kb_now();
					if (p == 0)
						kb_read_region(pool, &s.reg[i]);
					else if (kb_run(&kc[p], &s, &s.reg[i], kb_rows[mi]))
						goto oom;
					if (rd > 0)
						t[p][mi][s.reg[i].set] += kb_now() - t0;
				}
				if (s.head) {
					double t0 = kb_now();
					if (p == 0)
						kb_read_head(pool, &s);
					else
						kern_matmul_bf16p(&kc[p], s.head, s.hn, s.hk, s.x,
								  kb_rows[mi], s.hy);
					if (rd > 0)
						t[p][mi][KB_HEAD] += kb_now() - t0;
				}
			}
		}
	const char *name = strrchr(a->model, '/');
	name = name && name[1] ? name + 1 : a->model;
	if (a->json) {
		printf("{\"kernels\":{\"model\":\"%s\",\"threads\":%d,\"act\":\"%s\",\"rounds\":%d,"
		       "\"results\":[",
		       name, pool_nthreads(pool), m->act_fp8 ? "fp8" : "none", rounds);
		int first = 1;
		for (int st = 0; st < KB_SETS; st++)
			for (int mi = 0; mi < KB_NROWS && by[st] > 0; mi++) {
				double rd = by[st] * rounds / t[0][0][st] / 1e9;
				printf("%s{\"products\":\"%s\",\"rows\":%d,\"bytes\":%.0f,"
				       "\"read_gbps\":%.2f",
				       first ? "" : ",", kb_set_key[st], kb_rows[mi], by[st], rd);
				first = 0;
				for (int p = 1; p < np; p++) {
					double g = by[st] * rounds / t[p][mi][st] / 1e9;
					printf(",\"%s_gbps\":%.2f,\"%s_vs_read\":%.4f,\"%s_vs_%s\":"
					       "%.4f",
					       pname[p], g, pname[p], g / rd, pname[p], pname[1],
					       t[1][mi][st] / t[p][mi][st]);
				}
				printf("}");
			}
		printf("]}}\n");
	} else {
		printf(
		    "kernels: %s, %d threads, act %s; decode products on the checkpoint's "
		    "matrices, every layer in turn (rows_only), %d rounds alternating the paths\n"
		    "GB/s of weights read (in brackets: the fraction of the plain read of the same "
		    "bytes in the same rounds; x: against %s)\n\n",
		    name, pool_nthreads(pool), m->act_fp8 ? "fp8" : "none", rounds, pname[1]);
		printf("| products | MB | rows | read |");
		for (int p = 1; p < np; p++)
			printf(" %s |", pname[p]);
		printf("\n| --- | --: | --: | --: |");
		for (int p = 1; p < np; p++)
			printf(" --: |");
		printf("\n");
		for (int st = 0; st < KB_SETS; st++)
			for (int mi = 0; mi < KB_NROWS && by[st] > 0; mi++) {
				double rd = by[st] * rounds / t[0][0][st] / 1e9;
				printf("| %s | %.1f | %d | %.1f |", kb_set_name[st], by[st] / 1e6,
				       kb_rows[mi], rd);
				for (int p = 1; p < np; p++) {
					double g = by[st] * rounds / t[p][mi][st] / 1e9;
					printf(" %.1f (%.0f%%) %.2fx |", g, 100 * g / rd,
					       t[1][mi][st] / t[p][mi][st]);
				}
				printf("\n");
			}
	}
	rc = 0;
	goto out;
oom:
	fprintf(stderr, "moecard: bench --kernels: out of memory\n");
out:
	for (int p = 1; p <= nkc && p < np; p++)
		kern_ctx_free(&kc[p]);
	if (pool)
		pool_free(pool);
	free(s.reg);
	free(s.x);
	free(s.y);
	free(s.hy);
	return rc;
}
