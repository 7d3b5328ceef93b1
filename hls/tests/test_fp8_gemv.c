/*
 * test_fp8_gemv.c - C simulation of fp8_gemv: every valid flag combination on random shapes,
 * lane counts and x rows, striped with fp8_gemv_stripe and compared bit for bit with fp8_gemm on
 * the unstriped matrix (W_BF16: with a scalar C reference of fp8_gemv.h's formula); multi-group
 * commands (9 ACCUM groups into one y, a table mixing shapes and modes); NaN/inf codes, inputs
 * and scales; every error detail, with proof that a failed command writes nothing.
 */
#include <math.h>
#include <stdio.h>
#include "tests/harness.h"
#include "gemv_check.h"
#include "hls_math.h"
#include "hls/fp8_gemm/fp8_gemm.h"
#include "hls/vec_ops/vec_ops.h"
#include "host/decode/sample.h"

/* data kinds */
enum { K_RANDOM, K_NANCODES, K_NANX, K_INFX, K_INFSCALE, K_N };
static const char *kind_name[K_N] = {"random", "nan-codes", "nan-x", "inf-x", "inf-scale"};

/* One matrix with its data (unstriped), as fp8_gemm takes it. */
struct mat {
	int N, K;
	uint32_t flags;
	uint8_t *w, *w2; /* [N][K] codes, or [N][K] bf16 (2 bytes each) */
	float *ws, *ws2; /* [ceil(N/128)][ceil(K/128)] */
};

static void mat_make(struct mat *a, int N, int K, uint32_t flags, int kind)
{
	int bf = (flags & FP8_GEMV_W_BF16) != 0, sc = ((N + 127) / 128) * ((K + 127) / 128);
	size_t nk = (size_t)N * K * (bf ? 2 : 1);
	a->N = N;
	a->K = K;
	a->flags = flags;
	a->w = malloc(nk);
	a->w2 = malloc(nk);
	a->ws = malloc((size_t)sc * 4);
	a->ws2 = malloc((size_t)sc * 4);
	for (size_t i = 0; i < (size_t)N * K; i++) {
		if (bf) {
			uint16_t h = f32_to_bf16(gv_sym(0.5f));
			if (kind == K_NANCODES && gv_next() % 29 == 0)
				h = gv_next() & 1 ? 0x7FC0 : 0x7F80; /* NaN or +inf weight */
			memcpy(a->w + 2 * i, &h, 2);
			continue;
		}
		a->w[i] = e4m3_encode(gv_sym(300.0f) * gv_unif());
		a->w2[i] = e4m3_encode(gv_sym(300.0f) * gv_unif());
		if (kind == K_NANCODES && gv_next() % 13 == 0)
			a->w[i] = gv_next() & 1 ? 0xFF : 0x7F;
		if (kind == K_NANCODES && gv_next() % 13 == 0)
			a->w2[i] = 0x7F;
	}
	for (int i = 0; i < sc; i++) {
		a->ws[i] = 1e-3f * (0.5f + gv_unif());
		a->ws2[i] = 1e-3f * (0.5f + gv_unif());
	}
	if (kind == K_INFSCALE) {
		a->ws[gv_next() % (uint64_t)sc] = INFINITY;
		a->ws2[gv_next() % (uint64_t)sc] = NAN;
	}
}

static void mat_free(struct mat *a)
{
	free(a->w);
	free(a->w2);
	free(a->ws);
	free(a->ws2);
}

static void fill_x(float *x, size_t n, int kind)
{
	for (size_t i = 0; i < n; i++) {
		x[i] = gv_sym(4.0f);
		if (kind == K_NANX && gv_next() % 11 == 0)
			x[i] = NAN;
		if (kind == K_INFX && gv_next() % 97 == 0)
			x[i] = gv_next() & 1 ? INFINITY : -INFINITY;
	}
}

static uint32_t gemm_flags(uint32_t f)
{
	uint32_t g = FP8_GEMM_X_F32;
	g |= (f & FP8_GEMV_ACT_F32) ? FP8_GEMM_ACT_F32 : 0;
	g |= (f & FP8_GEMV_SILU_MUL) ? FP8_GEMM_SILU_MUL : 0;
	g |= (f & FP8_GEMV_ACCUM) ? FP8_GEMM_ACCUM : 0;
	g |= (f & FP8_GEMV_RESIDUAL) ? FP8_GEMM_RESIDUAL : 0;
	g |= (f & FP8_GEMV_UE8M0) ? FP8_GEMM_UE8M0 : 0;
	return g;
}

/* W_BF16 reference, fp8_gemv.h written out: per 128-block, 8 strided f32 partial sums of
 * x * bf16(w), the halving tree, t = P, acc += t; then the epilogue. y holds y_old (ACCUM). */
static void ref_bf16(const float *x, const struct mat *a, float *y, const float *res,
		     const float *rw, int m)
{
	int N = a->N, K = a->K;
	for (int i = 0; i < m; i++)
		for (int n = 0; n < N; n++) {
			float acc = 0.0f;
			for (int k0 = 0; k0 < K; k0 += 128) {
				float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
				for (int j = 0; j < 128 && k0 + j < K; j++) {
					uint16_t h;
					memcpy(&h, a->w + 2 * ((size_t)n * K + k0 + j), 2);
					s[j % 8] =
					    s[j % 8] + x[(size_t)i * K + k0 + j] * bf16_to_f32(h);
				}
				float P = ((s[0] + s[4]) + (s[2] + s[6])) +
					  ((s[1] + s[5]) + (s[3] + s[7]));
				acc = acc + P;
			}
			float v = acc;
			if (a->flags & FP8_GEMV_ACCUM)
				v = y[(size_t)i * N + n] + rw[i] * v;
			if (a->flags & FP8_GEMV_RESIDUAL)
				v = v + res[(size_t)i * N + n];
			y[(size_t)i * N + n] = v;
		}
}

/* The expected y of one group (contiguous [m][N]); yref holds y_old on entry. */
static int ref_group(const float *x, const struct mat *a, float *yref, const float *res,
		     const float *rw, int m)
{
	if (a->flags & FP8_GEMV_W_BF16) {
		ref_bf16(x, a, yref, res, rw, m);
		return 0;
	}
	return fp8_gemm(x, NULL, a->w, a->ws, a->w2, a->ws2, yref, res, rw, m, a->N, a->K,
			gemm_flags(a->flags), 0, 0);
}

/* y rows [m][ldy] at act + y_off against want [m][N] bit for bit, and the row padding against
 * its old contents. Returns the number of differing words. nan_any: any NaN matches any NaN
 * (the scalar W_BF16 reference is compiled separately, and IEEE leaves the sign and payload of
 * a NaN from inf - inf or from two NaN operands to the compiler's operand order); the
 * comparisons with fp8_gemm are strict. */
static int nan_any;
static long cmp_y(const struct gv_act *act, uint64_t y_off, const float *want, const float *old_pad,
		  int m, int N, int ldy)
{
	long bad = 0;
	for (int i = 0; i < m; i++) {
		const uint8_t *row = act->p + y_off + (uint64_t)i * ldy * 4;
		for (int n = 0; n < N; n++) {
			int d = memcmp(row + (size_t)n * 4, want + (size_t)i * N + n, 4) != 0;
			float gf;
			memcpy(&gf, row + (size_t)n * 4, 4);
			if (d && nan_any && isnan(gf) && isnan(want[(size_t)i * N + n]))
				d = 0;
			if (d && !bad) {
				uint32_t gu, wu;
				memcpy(&gu, row + (size_t)n * 4, 4);
				memcpy(&wu, want + (size_t)i * N + n, 4);
				printf("  first difference at m=%d n=%d: got 0x%08x want 0x%08x\n",
				       i, n, gu, wu);
			}
			bad += d;
		}
		if (i < m - 1 && old_pad)
			bad += memcmp(row + (size_t)N * 4, old_pad + (size_t)i * ldy + N,
				      (size_t)(ldy - N) * 4) != 0;
	}
	return bad;
}

/* One single-group command vs the reference. */
static void one_case(int N, int K, int L, int m, uint32_t flags, int kind)
{
	struct mat a;
	struct gv_act act = {0};
	struct gv_lanes ln;
	int ldx = m > 1 ? K + 3 : K, ldy = m > 1 ? N + 5 : N;
	size_t mk = (size_t)m * K, mn = (size_t)m * N, ys = (size_t)(m - 1) * ldy + N;
	mat_make(&a, N, K, flags, kind);
	float *x = malloc(mk * 4), *yold = malloc(ys * 4), *res = malloc(ys * 4);
	float *yref = malloc(mn * 4), *resc = malloc(mn * 4), rw[FP8_GEMV_MAX_M];
	fill_x(x, mk, kind);
	for (size_t i = 0; i < ys; i++) {
		yold[i] = gv_sym(2.0f);
		res[i] = gv_sym(2.0f);
	}
	for (int i = 0; i < m; i++)
		rw[i] = gv_unif() * 2.5f;
	for (int i = 0; i < m; i++)
		for (int n = 0; n < N; n++) {
			yref[(size_t)i * N + n] = yold[(size_t)i * ldy + n];
			resc[(size_t)i * N + n] = res[(size_t)i * ldy + n];
		}
	/* bank layout: table, x (strided, garbage in the padding), y, res, rw */
	uint64_t tab = gv_alloc(&act, 64);
	uint64_t xo = gv_alloc(&act, (uint64_t)((m - 1) * ldx + K) * 4);
	for (int i = 0; i < m; i++)
		gv_put_f32(&act, xo + (uint64_t)i * ldx * 4, x + (size_t)i * K, (size_t)K);
	for (int i = 0; i + 1 < m; i++)
		for (int p = K; p < ldx; p++) {
			float nan = NAN;
			memcpy(act.p + xo + ((uint64_t)i * ldx + p) * 4, &nan, 4);
		}
	uint64_t yo = gv_alloc(&act, ys * 4);
	gv_put_f32(&act, yo, yold, ys);
	uint64_t ro = gv_alloc(&act, ys * 4);
	gv_put_f32(&act, ro, res, ys);
	uint64_t rwo = gv_alloc(&act, (uint64_t)m * 4);
	gv_put_f32(&act, rwo, rw, (size_t)m);
	gv_lanes_init(&ln, L, 192 + fp8_gemv_stripe_bytes(N, K, L, flags));
	ln.used = 150;	/* a stripe set not at offset 0 */
	gv_rot = N + K; /* rotated stripe sets: tile 0 on lane (N + K) % L */
	uint64_t wo = gv_add_matrix(&ln, a.w, a.ws, a.w2, a.ws2, N, K, flags);
	gv_rot = 0;
	struct fp8_gemv_grp g = gv_grp(wo, xo, yo, ro, rwo, N, K, ldx, ldy, flags);
	memcpy(act.p + tab, &g, 64);
	int rrc = ref_group(x, &a, yref, resc, rw, m);
	uint32_t rc =
	    fp8_gemv_run(act.p, act.size, (const uint8_t *const *)ln.p, ln.size, L, tab, 1, m);
	nan_any = (flags & FP8_GEMV_W_BF16) != 0;
	long bad = rc || rrc ? -1 : cmp_y(&act, yo, yref, yold, m, N, ldy);
	CHECK(bad == 0, "N=%d K=%d L=%d m=%d flags=0x%x data=%s: rc=%u ref rc=%d, %ld words differ",
	      N, K, L, m, flags, kind_name[kind], rc, rrc, bad);
	gv_lanes_free(&ln);
	mat_free(&a);
	free(act.p);
	free(x);
	free(yold);
	free(res);
	free(yref);
	free(resc);
}

static void suite(void)
{
	static const int shapes[][2] = {{1, 1},	    {5, 130},	 {37, 300}, {200, 129},
					{130, 256}, {301, 1000}, {8, 2049}, {1000, 64}};
	static const int Ls[] = {1, 3, 8, 32};
	uint32_t combos[64];
	int nc = 0;
	/* every valid combination: FP8 x {quantized, UE8M0, ACT_F32} x SILU x ACCUM x RESIDUAL,
	 * and W_BF16 (with or without ACT_F32) x ACCUM x RESIDUAL */
	static const uint32_t base[] = {0, FP8_GEMV_UE8M0, FP8_GEMV_ACT_F32, FP8_GEMV_W_BF16,
					FP8_GEMV_W_BF16 | FP8_GEMV_ACT_F32};
	for (int b = 0; b < 5; b++)
		for (uint32_t e = 0; e < 8; e++) {
			uint32_t f = base[b] | ((e & 1) ? FP8_GEMV_SILU_MUL : 0) |
				     ((e & 2) ? FP8_GEMV_ACCUM : 0) |
				     ((e & 4) ? FP8_GEMV_RESIDUAL : 0);
			if ((f & FP8_GEMV_W_BF16) && (f & FP8_GEMV_SILU_MUL))
				continue;
			combos[nc++] = f;
		}
	int before = harness_fail, cases = 0;
	for (int c = 0; c < nc; c++)
		for (int s = 0; s < 8; s++) {
			int L = Ls[(c + s) % 4], m = 1 + (c * 3 + s) % 4;
			one_case(shapes[s][0], shapes[s][1], L, m, combos[c], (c + s) % K_N);
			cases++;
		}
	/* larger: every lane holds many tiles, N not a multiple of R or 128 */
	one_case(1003, 2048, 32, 2, 0, K_RANDOM);
	one_case(1003, 2048, 32, 1, FP8_GEMV_SILU_MUL | FP8_GEMV_ACCUM, K_RANDOM);
	one_case(777, 1100, 8, 4, FP8_GEMV_ACT_F32 | FP8_GEMV_RESIDUAL, K_RANDOM);
	one_case(515, 900, 32, 3, FP8_GEMV_W_BF16 | FP8_GEMV_ACCUM, K_RANDOM);
	cases += 4;
	printf("single-group commands: %d flag combinations, %d cases, %d bit-identical\n", nc,
	       cases, cases - (harness_fail - before));
}

/* 9 groups (8 routed experts + 1 shared) accumulating into one y with their route weights must
 * equal 9 sequential fp8_gemm ACCUM calls in table order; the first also adds the residual. */
static void moe_downs(int L, int m, uint32_t mode, int res_out)
{
	enum { E = 9 };
	int N = 300, K = 256;
	struct mat a[E];
	struct gv_act act = {0};
	struct gv_lanes ln;
	struct fp8_gemv_grp g[E];
	float *x = malloc((size_t)m * K * 4), *y = malloc((size_t)m * N * 4);
	float *res = malloc((size_t)m * N * 4), rw[E][FP8_GEMV_MAX_M];
	fill_x(x, (size_t)m * K, K_RANDOM);
	for (int i = 0; i < m * N; i++) {
		y[i] = gv_sym(1.0f);
		res[i] = gv_sym(1.0f);
	}
	uint64_t tab = gv_alloc(&act, 64 * E), xo = gv_alloc(&act, (uint64_t)m * K * 4);
	uint64_t yo = gv_alloc(&act, (uint64_t)m * N * 4), ro = gv_alloc(&act, (uint64_t)m * N * 4);
	gv_put_f32(&act, xo, x, (size_t)m * K);
	gv_put_f32(&act, yo, y, (size_t)m * N);
	gv_put_f32(&act, ro, res, (size_t)m * N);
	gv_lanes_init(&ln, L, E * (64 + fp8_gemv_stripe_bytes(N, K, L, mode)));
	int rrc = 0;
	/* res_out: the card's MoE downs: no residual on the first, the last writes res = y + res
	 * (RES_OUT) and leaves y as the groups before it left it */
	float *yprev = malloc((size_t)m * N * 4);
	for (int e = 0; e < E; e++) {
		uint32_t f = mode | FP8_GEMV_ACCUM | (e == 0 && !res_out ? FP8_GEMV_RESIDUAL : 0);
		mat_make(&a[e], N, K, f, K_RANDOM);
		for (int i = 0; i < m; i++)
			rw[e][i] = e == E - 1 ? 1.0f : gv_unif();
		uint64_t rwo = gv_alloc(&act, (uint64_t)m * 4);
		gv_put_f32(&act, rwo, rw[e], (size_t)m);
		uint64_t wo = gv_add_matrix(&ln, a[e].w, a[e].ws, NULL, NULL, N, K, f);
		uint32_t fk =
		    f | (res_out && e == E - 1 ? FP8_GEMV_RESIDUAL | FP8_GEMV_RES_OUT : 0);
		g[e] = gv_grp(wo, xo, yo, ro, rwo, N, K, K, N, fk);
		if (e == E - 1)
			memcpy(yprev, y, (size_t)m * N * 4);
		rrc |= ref_group(x, &a[e], y, res, rw[e], m);
	}
	if (res_out)
		for (int i = 0; i < m * N; i++)
			res[i] = y[i] + res[i];
	memcpy(act.p + tab, g, sizeof g);
	uint32_t rc =
	    fp8_gemv_run(act.p, act.size, (const uint8_t *const *)ln.p, ln.size, L, tab, E, m);
	nan_any = 0;
	long bad = rc || rrc ? -1 : cmp_y(&act, yo, res_out ? yprev : y, NULL, m, N, N);
	if (!bad && res_out)
		bad = cmp_y(&act, ro, res, NULL, m, N, N);
	CHECK(bad == 0,
	      "9 ACCUM groups into one y%s (L=%d m=%d mode=0x%x) vs 9 sequential fp8_gemm: rc=%u, "
	      "%ld words differ",
	      res_out ? ", the last adding it into res (RES_OUT)" : "", L, m, mode, rc, bad);
	free(yprev);
	for (int e = 0; e < E; e++)
		mat_free(&a[e]);
	gv_lanes_free(&ln);
	free(act.p);
	free(x);
	free(y);
	free(res);
}

/* One command with a q_a-like and a kv_a-like group on the same x, plus an ACT_F32 group, a
 * SiLU-pair group and a bf16 group on other x rows: each output equals its own reference. */
static void mixed_table(int L, int m)
{
	enum { G = 5 };
	static const int NK[G][2] = {{1536, 7168}, {576, 7168}, {512, 128}, {256, 700}, {333, 256}};
	static const uint32_t fl[G] = {0, 0, FP8_GEMV_ACT_F32, FP8_GEMV_SILU_MUL | FP8_GEMV_UE8M0,
				       FP8_GEMV_W_BF16 | FP8_GEMV_RESIDUAL};
	struct mat a[G];
	struct gv_act act = {0};
	struct gv_lanes ln;
	struct fp8_gemv_grp g[G];
	float *yref[G], *x[G], *res[G], rw[FP8_GEMV_MAX_M] = {0};
	uint64_t lb = 0, xo[G] = {0}, yo[G] = {0};
	for (int i = 0; i < G; i++)
		lb += 64 + fp8_gemv_stripe_bytes(NK[i][0], NK[i][1], L, fl[i]);
	gv_lanes_init(&ln, L, lb);
	uint64_t tab = gv_alloc(&act, 64 * G);
	int rrc = 0;
	for (int i = 0; i < G; i++) {
		int N = NK[i][0], K = NK[i][1];
		mat_make(&a[i], N, K, fl[i], K_RANDOM);
		x[i] = malloc((size_t)m * K * 4);
		yref[i] = calloc((size_t)m * N, 4);
		res[i] = malloc((size_t)m * N * 4);
		if (i == 1) /* kv_a reads q_a's x */
			memcpy(x[i], x[0], (size_t)m * K * 4);
		else
			fill_x(x[i], (size_t)m * K, K_RANDOM);
		for (int j = 0; j < m * N; j++)
			res[i][j] = gv_sym(1.0f);
		xo[i] = i == 1 ? xo[0] : gv_alloc(&act, (uint64_t)m * K * 4);
		gv_put_f32(&act, xo[i], x[i], (size_t)m * K);
		yo[i] = gv_alloc(&act, (uint64_t)m * N * 4);
		uint64_t ro = gv_alloc(&act, (uint64_t)m * N * 4);
		gv_put_f32(&act, ro, res[i], (size_t)m * N);
		gv_rot = 7 * i + 3; /* each matrix of the mixed table on its own rotation */
		uint64_t wo = gv_add_matrix(&ln, a[i].w, a[i].ws, a[i].w2, a[i].ws2, N, K, fl[i]);
		gv_rot = 0;
		g[i] = gv_grp(wo, xo[i], yo[i], ro, 0, N, K, K, N, fl[i]);
		rrc |= ref_group(x[i], &a[i], yref[i], res[i], rw, m);
	}
	memcpy(act.p + tab, g, sizeof g);
	uint32_t rc =
	    fp8_gemv_run(act.p, act.size, (const uint8_t *const *)ln.p, ln.size, L, tab, G, m);
	for (int i = 0; i < G; i++) {
		nan_any = (fl[i] & FP8_GEMV_W_BF16) != 0;
		long bad =
		    rc || rrc ? -1 : cmp_y(&act, yo[i], yref[i], NULL, m, NK[i][0], NK[i][0]);
		CHECK(bad == 0,
		      "mixed table (L=%d m=%d) group %d N=%d K=%d flags=0x%x: rc=%u, %ld differ", L,
		      m, i, NK[i][0], NK[i][1], fl[i], rc, bad);
		mat_free(&a[i]);
		free(x[i]);
		free(yref[i]);
		free(res[i]);
	}
	gv_lanes_free(&ln);
	free(act.p);
}

/* Error details: a 4-group table whose group 2 is bad; the detail names the group and the
 * activation bank (y included) is unchanged. */
static void errors(void)
{
	enum { N = 40, K = 200, L = 3, M = 2 };
	struct mat a;
	struct gv_act act = {0};
	struct gv_lanes ln;
	mat_make(&a, N, K, FP8_GEMV_SILU_MUL, K_RANDOM);
	gv_lanes_init(&ln, L, 64 + fp8_gemv_stripe_bytes(N, K, L, FP8_GEMV_SILU_MUL));
	uint64_t wo = gv_add_matrix(&ln, a.w, a.ws, a.w2, a.ws2, N, K, FP8_GEMV_SILU_MUL);
	uint64_t tab = gv_alloc(&act, 64 * 4), xo = gv_alloc(&act, M * K * 4);
	uint64_t yo = gv_alloc(&act, M * N * 4), ro = gv_alloc(&act, M * N * 4),
		 rwo = gv_alloc(&act, M * 4);
	for (uint64_t i = 0; i < act.used; i++)
		act.p[i] = (uint8_t)(gv_next() & 0x3F); /* finite floats */
	struct fp8_gemv_grp ok =
	    gv_grp(wo, xo, yo, ro, rwo, N, K, K, N, FP8_GEMV_SILU_MUL | FP8_GEMV_ACCUM);
	const uint8_t *const *lanes = (const uint8_t *const *)ln.p;
	struct {
		const char *what;
		uint32_t want;
		int field; /* which field to break */
		uint64_t val;
	} bad[] = {
	    {"unknown flag", FP8_GEMV_E_FLAGS, 0, FP8_GEMV_FLAGS_ALL + 1},
	    {"RMSNORM with ACCUM", FP8_GEMV_E_FLAGS, 0, FP8_GEMV_RMSNORM | FP8_GEMV_ACCUM},
	    {"RMSNORM with RESIDUAL", FP8_GEMV_E_FLAGS, 0, FP8_GEMV_RMSNORM | FP8_GEMV_RESIDUAL},
	    {"RES_OUT without RESIDUAL", FP8_GEMV_E_FLAGS, 0, FP8_GEMV_RES_OUT},
	    {"UE8M0 with ACT_F32", FP8_GEMV_E_FLAGS, 0, FP8_GEMV_UE8M0 | FP8_GEMV_ACT_F32},
	    {"UE8M0 with W_BF16", FP8_GEMV_E_FLAGS, 0, FP8_GEMV_UE8M0 | FP8_GEMV_W_BF16},
	    {"W_BF16 with SILU_MUL", FP8_GEMV_E_FLAGS, 0, FP8_GEMV_W_BF16 | FP8_GEMV_SILU_MUL},
	    {"lane0 >= L", FP8_GEMV_E_FLAGS, 1, 64},
	    {"n = 0", FP8_GEMV_E_SHAPE, 2, 0},
	    {"n > MAX_N", FP8_GEMV_E_SHAPE, 2, FP8_GEMV_MAX_N + 1},
	    {"k = 0", FP8_GEMV_E_SHAPE, 3, 0},
	    {"k > MAX_K", FP8_GEMV_E_SHAPE, 3, FP8_GEMV_MAX_K + 1},
	    {"ldx < k", FP8_GEMV_E_SHAPE, 4, K - 1},
	    {"ldy < n", FP8_GEMV_E_SHAPE, 5, N - 1},
	    {"x outside", FP8_GEMV_E_BOUNDS, 6, 0},
	    {"y outside", FP8_GEMV_E_BOUNDS, 7, 0},
	    {"res outside (RESIDUAL)", FP8_GEMV_E_BOUNDS, 8, 0},
	    {"rw outside (ACCUM)", FP8_GEMV_E_BOUNDS, 9, 0},
	    {"stripe set past lane_bytes", FP8_GEMV_E_BOUNDS, 10, 0},
	    {"offset overflow", FP8_GEMV_E_BOUNDS, 11, 0},
	};
	uint8_t *snap = malloc(act.size);
	for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
		struct fp8_gemv_grp t[4] = {ok, ok, ok, ok}, *b = &t[2];
		switch (bad[c].field) {
		case 0:
			b->flags = (uint32_t)bad[c].val;
			break;
		case 1:
			b->lane0 = (uint32_t)bad[c].val;
			break;
		case 2:
			b->n = (uint32_t)bad[c].val;
			break;
		case 3:
			b->k = (uint32_t)bad[c].val;
			break;
		case 4:
			b->ldx = (uint32_t)bad[c].val;
			break;
		case 5:
			b->ldy = (uint32_t)bad[c].val;
			break;
		case 6:
			b->x_off = act.size - M * K * 4 + 4;
			break;
		case 7:
			b->y_off = act.size - 4;
			break;
		case 8:
			b->flags |= FP8_GEMV_RESIDUAL;
			b->res_off = act.size;
			break;
		case 9:
			b->rw_off = act.size - 4;
			break;
		case 10:
			b->w_off = 128;
			break;
		case 11:
			b->y_off = ~(uint64_t)0 - 8;
			break;
		}
		memcpy(act.p + tab, t, sizeof t);
		memcpy(snap, act.p, act.size);
		uint32_t rc = fp8_gemv_run(act.p, act.size, lanes, ln.size, L, tab, 4, M);
		CHECK_EQ(rc, bad[c].want | 2u << 8, "%s: detail = code | group 2 << 8",
			 bad[c].what);
		CHECK(!memcmp(snap, act.p, act.size), "%s: the failed command wrote nothing",
		      bad[c].what);
	}
	/* command-level arguments: FP8_GEMV_E_ARGS, group index 0 */
	struct fp8_gemv_grp t[4] = {ok, ok, ok, ok};
	memcpy(act.p + tab, t, sizeof t);
	memcpy(snap, act.p, act.size);
	const uint8_t *nul[L] = {ln.p[0], NULL, ln.p[2]};
	struct {
		const char *what;
		int L, ng, m;
		uint64_t tab;
		const uint8_t *const *lanes;
	} args[] = {{"L = 0", 0, 4, M, tab, lanes},
		    {"L > MAX_LANES", FP8_GEMV_MAX_LANES + 1, 4, M, tab, lanes},
		    {"m = 0", L, 4, 0, tab, lanes},
		    {"m > MAX_M", L, 4, FP8_GEMV_MAX_M + 1, tab, lanes},
		    {"ng = 0", L, 0, M, tab, lanes},
		    {"ng > MAX_GROUPS", L, FP8_GEMV_MAX_GROUPS + 1, M, tab, lanes},
		    {"table outside", L, 4, M, act.size - 64 * 3, lanes},
		    {"table offset overflow", L, 4, M, ~(uint64_t)0 - 16, lanes},
		    {"NULL lane", L, 4, M, tab, nul}};
	for (size_t c = 0; c < sizeof args / sizeof args[0]; c++) {
		uint32_t rc = fp8_gemv_run(act.p, act.size, args[c].lanes, ln.size, args[c].L,
					   args[c].tab, args[c].ng, args[c].m);
		CHECK_EQ(rc, FP8_GEMV_E_ARGS, "%s", args[c].what);
		CHECK(!memcmp(snap, act.p, act.size), "%s: nothing written", args[c].what);
	}
	/* ldx < k and ldy < n are fine with m = 1 (unused) */
	t[0].ldx = t[0].ldy = 0;
	memcpy(act.p + tab, t, 64);
	CHECK_EQ(fp8_gemv_run(act.p, act.size, lanes, ln.size, L, tab, 1, 1), 0,
		 "m = 1 ignores ldx/ldy");
	/* outputs of groups with another lane0, m = 2 rows at one ldy: rows that interleave
	 * without meeting are fine (the heads of a rows command), a row on a row is not */
	struct fp8_gemv_grp h[2] = {ok, ok};
	h[0].n = h[1].n = N / 2;
	h[1].y_off = yo + 4 * (N / 2);
	h[1].lane0 = 1;
	memcpy(act.p + tab, h, sizeof h);
	CHECK_EQ(fp8_gemv_run(act.p, act.size, lanes, ln.size, L, tab, 2, M), 0,
		 "m = 2: interleaved rows of two lane0s");
	h[1].y_off = yo + 4 * (N / 4); /* row 0 of group 1 on row 0 of group 0 */
	memcpy(act.p + tab, h, sizeof h);
	CHECK_EQ(fp8_gemv_run(act.p, act.size, lanes, ln.size, L, tab, 2, M),
		 FP8_GEMV_E_FLAGS | 1u << 8, "m = 2: rows that meet, two lane0s");
	h[1].y_off = yo + 4 * (N + N / 4); /* its row 0 on row 1 of group 0 */
	memcpy(act.p + tab, h, sizeof h);
	CHECK_EQ(fp8_gemv_run(act.p, act.size, lanes, ln.size, L, tab, 2, M),
		 FP8_GEMV_E_FLAGS | 1u << 8, "m = 2: a row on the other group's next row");
	free(snap);
	mat_free(&a);
	gv_lanes_free(&ln);
	free(act.p);
}

/* RMSNORM in the x loader: a group on x with the flag writes the same y, bit for bit, as an
 * RMSNORM command (vec_ops) writing xn followed by the same group on xn without it; and a group
 * that puts eps out of its word, or its norm weight outside the bank, is refused. */
static void norm_fold(int N, int K, int L, int m, uint32_t flags)
{
	struct mat a;
	struct gv_act act = {0};
	struct gv_lanes ln;
	int ld = K + 3;
	float eps = 1e-6f, *x = malloc((size_t)m * ld * 4), *xn = malloc((size_t)m * ld * 4);
	float *w = malloc((size_t)K * 4);
	mat_make(&a, N, K, flags, K_RANDOM);
	for (int i = 0; i < m * ld; i++) /* rows of different sizes; xn's padding stays 0 */
		x[i] = gv_sym(i % 7 == 0 ? 40.0f : 3.0f) * (float)(1 + i / ld);
	memset(xn, 0, (size_t)m * ld * 4);
	for (int k = 0; k < K; k++)
		w[k] = 0.5f + gv_unif();
	CHECK_EQ(vec_ops(VEC_OP_RMSNORM, x, w, xn, NULL, NULL, NULL, m, K, ld, ld, eps, 0, 0, 0), 0,
		 "vec_ops RMSNORM");
	uint64_t tab = gv_alloc(&act, 192), xo = gv_alloc(&act, (uint64_t)m * ld * 4);
	uint64_t xno = gv_alloc(&act, (uint64_t)m * ld * 4), wo_n = gv_alloc(&act, (uint64_t)K * 4);
	uint64_t y1 = gv_alloc(&act, (uint64_t)m * N * 4), y2 = gv_alloc(&act, (uint64_t)m * N * 4);
	uint64_t y3 = gv_alloc(&act, (uint64_t)m * N * 4);
	gv_put_f32(&act, xo, x, (size_t)m * ld);
	gv_put_f32(&act, xno, xn, (size_t)m * ld);
	gv_put_f32(&act, wo_n, w, (size_t)K);
	gv_lanes_init(&ln, L, 128 + fp8_gemv_stripe_bytes(N, K, L, flags));
	uint64_t wo = gv_add_matrix(&ln, a.w, a.ws, a.w2, a.ws2, N, K, flags);
	uint32_t eb;
	memcpy(&eb, &eps, 4);
	struct fp8_gemv_grp g[3];
	g[0] = gv_grp(wo, xno, y1, 0, 0, N, K, ld, N, flags);
	g[1] = gv_grp(wo, xo, y2, wo_n, eb, N, K, ld, N, flags | FP8_GEMV_RMSNORM);
	g[2] = g[1]; /* the same x: the loader does not run again */
	g[2].y_off = y3;
	memcpy(act.p + tab, g, sizeof g);
	const uint8_t *const *lanes = (const uint8_t *const *)ln.p;
	uint32_t rc = fp8_gemv_run(act.p, act.size, lanes, ln.size, L, tab, 3, m);
	CHECK(rc == 0 && !memcmp(act.p + y1, act.p + y2, (size_t)m * N * 4) &&
		  !memcmp(act.p + y1, act.p + y3, (size_t)m * N * 4),
	      "RMSNORM folded: N=%d K=%d L=%d m=%d flags=0x%x: rc %u, y %s", N, K, L, m, flags, rc,
	      rc ? "-" : "differs from RMSNORM then GEMV");
	struct fp8_gemv_grp bad = g[1];
	bad.rw_off |= 1ull << 32;
	memcpy(act.p + tab, &bad, sizeof bad);
	CHECK_EQ(fp8_gemv_run(act.p, act.size, lanes, ln.size, L, tab, 1, m), FP8_GEMV_E_FLAGS,
		 "RMSNORM: rw_off's high word must be 0");
	bad = g[1];
	bad.res_off = act.size - (uint64_t)K * 4 + 4;
	memcpy(act.p + tab, &bad, sizeof bad);
	CHECK_EQ(fp8_gemv_run(act.p, act.size, lanes, ln.size, L, tab, 1, m), FP8_GEMV_E_BOUNDS,
		 "RMSNORM: the norm weight outside the bank");
	gv_lanes_free(&ln);
	mat_free(&a);
	free(act.p);
	free(x);
	free(xn);
	free(w);
}

/* FP8_GEMV_ARGMAX: the record of each x row is sampler_argmax over the row of y the command
 * wrote (index; value bits of y there), on constructed outputs: bf16 weights of few distinct
 * values (ties across lanes and tiles), NaN at output 0, NaN elsewhere, every output -inf or
 * NaN, +inf twice; x rows of either sign (the order reversed). The final norm in the loader
 * (RMSNORM: eps in rw_off's low word, the record at its high word) as the lm_head runs it. A
 * record outside the bank, or ARGMAX with ACCUM, is refused. */
static void argmax_case(int N, int L, int m, int pat, int norm)
{
	struct mat a;
	struct gv_act act = {0};
	struct gv_lanes ln;
	int K = 3;
	uint32_t flags = FP8_GEMV_W_BF16 | FP8_GEMV_ARGMAX | (norm ? FP8_GEMV_RMSNORM : 0);
	mat_make(&a, N, K, FP8_GEMV_W_BF16, K_RANDOM);
	for (int n = 0; n < N; n++) {
		float v = (float)((int)(gv_next() % 7) - 3); /* ties everywhere */
		if (pat == 1 && n == 0)
			v = NAN;
		if (pat == 2 && gv_next() % 5 == 0)
			v = NAN;
		if (pat == 3)
			v = gv_next() % 3 ? -INFINITY : NAN;
		if (pat == 4 && (n == N / 3 || n == N - 1))
			v = INFINITY;
		for (int k = 0; k < K; k++) { /* w[n][k] = v: y = v * (x0 + x1 + x2) */
			uint16_t h = f32_to_bf16(v);
			memcpy(a.w + 2 * ((size_t)n * K + k), &h, 2);
		}
	}
	float x[FP8_GEMV_MAX_M * 3] = {0}, w[3] = {1, 1, 1};
	for (int i = 0; i < m; i++)
		for (int k = 0; k < K; k++)
			x[i * K + k] = (i % 2 ? -0.25f : 0.5f) * (float)(1 + i);
	uint64_t tab = gv_alloc(&act, 64), xo = gv_alloc(&act, (uint64_t)m * K * 4);
	uint64_t yo = gv_alloc(&act, (uint64_t)m * N * 4), wo_n = gv_alloc(&act, 16);
	uint64_t ro = gv_alloc(&act, (uint64_t)m * 8);
	gv_put_f32(&act, xo, x, (size_t)m * K);
	gv_put_f32(&act, wo_n, w, 3);
	gv_lanes_init(&ln, L, 128 + fp8_gemv_stripe_bytes(N, K, L, flags));
	uint64_t wo = gv_add_matrix(&ln, a.w, a.ws, a.w2, a.ws2, N, K, FP8_GEMV_W_BF16);
	float eps = 1e-6f;
	uint32_t eb;
	memcpy(&eb, &eps, 4);
	struct fp8_gemv_grp g =
	    gv_grp(wo, xo, yo, norm ? wo_n : 0, (norm ? eb : 0) | ro << 32, N, K, K, N, flags);
	memcpy(act.p + tab, &g, sizeof g);
	const uint8_t *const *lanes = (const uint8_t *const *)ln.p;
	uint32_t rc = fp8_gemv_run(act.p, act.size, lanes, ln.size, L, tab, 1, m);
	CHECK_EQ(rc, 0, "argmax N=%d L=%d m=%d pattern %d norm %d", N, L, m, pat, norm);
	for (int i = 0; i < m && !rc; i++) {
		float y[4096];
		uint32_t id, vb, yb;
		memcpy(y, act.p + yo + (uint64_t)i * N * 4, (size_t)N * 4);
		memcpy(&id, act.p + ro + 8u * i, 4);
		memcpy(&vb, act.p + ro + 8u * i + 4, 4);
		int want = sampler_argmax(y, N);
		memcpy(&yb, &y[want], 4);
		CHECK(id == (uint32_t)want && vb == yb,
		      "argmax N=%d L=%d row %d pattern %d: record %u (0x%08x), sampler_argmax %d "
		      "(0x%08x)",
		      N, L, i, pat, id, vb, want, yb);
	}
	if (pat == 0 && !norm) {
		struct fp8_gemv_grp bad = g;
		bad.rw_off = (act.size - 4) << 32;
		memcpy(act.p + tab, &bad, sizeof bad);
		CHECK_EQ(fp8_gemv_run(act.p, act.size, lanes, ln.size, L, tab, 1, m),
			 FP8_GEMV_E_BOUNDS, "ARGMAX: the record outside the bank");
		bad = g;
		bad.flags = FP8_GEMV_ARGMAX | FP8_GEMV_ACCUM | FP8_GEMV_W_BF16;
		memcpy(act.p + tab, &bad, sizeof bad);
		CHECK_EQ(fp8_gemv_run(act.p, act.size, lanes, ln.size, L, tab, 1, m),
			 FP8_GEMV_E_FLAGS, "ARGMAX with ACCUM");
	}
	gv_lanes_free(&ln);
	mat_free(&a);
	free(act.p);
}

/* FP8_GEMV_XIDX: m rows picked out of a larger x by an index list (repeats and any order), with
 * the loader's norm or not, give the bits of the same GEMV over those rows copied together; two
 * groups over one x with different lists each read their own rows (no x reuse between them); an
 * index past the bank, a list outside it, or XIDX with ARGMAX or ACCUM fail the command. */
static void xidx_case(int N, int K, int L, int m, uint32_t flags)
{
	struct mat a;
	struct gv_act act = {0};
	struct gv_lanes ln;
	int R = 9; /* rows of the big x */
	mat_make(&a, N, K, flags & FP8_GEMV_SILU_MUL, K_RANDOM);
	float *xb = malloc(sizeof(float) * (size_t)R * K),
	      *xs = malloc(sizeof(float) * (size_t)m * K);
	fill_x(xb, (size_t)R * K, K_RANDOM);
	uint32_t idx[2][FP8_GEMV_MAX_M];
	for (int i = 0; i < m; i++) {
		idx[0][i] = (uint32_t)((7 * i + 3) % R); /* (repeats once m > R) */
		idx[1][i] = (uint32_t)(R - 1 - i % R);
	}
	int nh = N; /* outputs per row (a SiLU pair: of one half) */
	uint64_t tab = gv_alloc(&act, 3 * 64), xo = gv_alloc(&act, (uint64_t)R * K * 4);
	uint64_t xso = gv_alloc(&act, (uint64_t)m * K * 4), wn = gv_alloc(&act, (uint64_t)K * 4);
	uint64_t io = gv_alloc(&act, 2 * FP8_GEMV_MAX_M * 4);
	uint64_t y0 = gv_alloc(&act, (uint64_t)m * nh * 4),
		 y1 = gv_alloc(&act, (uint64_t)m * nh * 4);
	uint64_t y2 = gv_alloc(&act, (uint64_t)m * nh * 4);
	gv_put_f32(&act, xo, xb, (size_t)R * K);
	float *nw = malloc(sizeof(float) * (size_t)K);
	fill_x(nw, (size_t)K, K_RANDOM);
	gv_put_f32(&act, wn, nw, (size_t)K);
	memcpy(act.p + io, idx, sizeof idx);
	gv_lanes_init(&ln, L, 128 + fp8_gemv_stripe_bytes(N, K, L, flags));
	uint64_t wo = gv_add_matrix(&ln, a.w, a.ws, a.w2, a.ws2, N, K, flags & FP8_GEMV_SILU_MUL);
	const uint8_t *const *lanes = (const uint8_t *const *)ln.p;
	int norm = (flags & FP8_GEMV_RMSNORM) != 0;
	float eps = 1e-6f;
	uint32_t eb;
	memcpy(&eb, &eps, 4);
	uint64_t lo = norm ? eb : 0;
	struct fp8_gemv_grp g[3];
	for (int v = 0; v < 2; v++) /* the two lists over one x */
		g[v] = gv_grp(wo, xo, v ? y1 : y0, norm ? wn : 0,
			      lo | (io + (uint64_t)v * FP8_GEMV_MAX_M * 4) << 32, N, K, K, nh,
			      flags | FP8_GEMV_XIDX);
	memcpy(act.p + tab, g, 2 * sizeof g[0]);
	uint32_t rc = fp8_gemv_run(act.p, act.size, lanes, ln.size, L, tab, 2, m);
	CHECK_EQ(rc, 0, "xidx N=%d K=%d L=%d m=%d flags 0x%x", N, K, L, m, flags);
	for (int v = 0; v < 2 && !rc; v++) { /* against the rows copied together */
		for (int i = 0; i < m; i++)
			memcpy(xs + (size_t)i * K, xb + (size_t)idx[v][i] * K, sizeof(float) * K);
		gv_put_f32(&act, xso, xs, (size_t)m * K);
		g[2] = gv_grp(wo, xso, y2, norm ? wn : 0, lo, N, K, K, nh, flags);
		memcpy(act.p + tab + 128, &g[2], sizeof g[2]);
		uint32_t r2 = fp8_gemv_run(act.p, act.size, lanes, ln.size, L, tab + 128, 1, m);
		CHECK(r2 == 0 && !memcmp(act.p + (v ? y1 : y0), act.p + y2, (size_t)m * nh * 4),
		      "xidx N=%d K=%d L=%d m=%d flags 0x%x list %d: the bits of the gathered rows "
		      "(rc "
		      "%u)",
		      N, K, L, m, flags, v, r2);
	}
	/* refused: a row past the bank, the list outside it, XIDX with ACCUM (one group each) */
	uint32_t far = (uint32_t)(act.size / 4 / K + 1);
	memcpy(act.p + io + 4 * (uint64_t)(m - 1), &far, 4);
	struct fp8_gemv_grp bad[3] = {g[0], g[0], g[0]};
	bad[1].rw_off = lo | (act.size - 2) << 32;
	bad[2].flags = (bad[2].flags | FP8_GEMV_ACCUM) & ~FP8_GEMV_RMSNORM;
	static const uint32_t want[3] = {FP8_GEMV_E_BOUNDS, FP8_GEMV_E_BOUNDS, FP8_GEMV_E_FLAGS};
	for (int b = 0; b < 3; b++) {
		memcpy(act.p + tab, &bad[b], sizeof bad[b]);
		CHECK_EQ(fp8_gemv_run(act.p, act.size, lanes, ln.size, L, tab, 1, m), want[b],
			 "xidx: bad group %d (a row past the bank, the list outside it, ACCUM)", b);
	}
	gv_lanes_free(&ln);
	mat_free(&a);
	free(act.p);
	free(xb);
	free(xs);
	free(nw);
}

/* CONT: one matrix's K in slices (k0 at multiples of 128), each slice its own stripe set on the
 * matrix's rotation; slice 0 writes a scratch y, each later one continues from it (CONT), the
 * last adding the residual into y. In one command (groups in table order) and as one command a
 * slice, the outputs equal one group over the whole K bit for bit (sep: commands a slice). */
static void cont_chain(int N, int L, int m, uint32_t mode, int sep)
{
	enum { S = 3 };
	static const int ks[S + 1] = {0, 256, 384, 896}; /* slices of 256, 128 and 512 */
	int K = ks[S], bf = (mode & FP8_GEMV_W_BF16) != 0, ldy = m > 1 ? N + 3 : N;
	int kbn = (N + 127) / 128, kbk = K / 128;
	struct mat a;
	struct gv_act act = {0};
	struct gv_lanes ln;
	mat_make(&a, N, K, mode, K_RANDOM);
	size_t ys = (size_t)(m - 1) * ldy + N;
	float *x = malloc((size_t)m * K * 4), *res = malloc(ys * 4), *junk = malloc(ys * 4);
	fill_x(x, (size_t)m * K, K_RANDOM);
	for (size_t i = 0; i < ys; i++) {
		res[i] = gv_sym(2.0f);
		junk[i] = gv_sym(9.0f); /* what the scratch held before (overwritten by slice 0) */
	}
	uint64_t tab = gv_alloc(&act, 64 * (S + 1)), xo = gv_alloc(&act, (uint64_t)m * K * 4);
	uint64_t yw = gv_alloc(&act, ys * 4), yc = gv_alloc(&act, ys * 4);
	uint64_t so = gv_alloc(&act, ys * 4);
	gv_put_f32(&act, xo, x, (size_t)m * K);
	gv_put_f32(&act, yw, res, ys);
	gv_put_f32(&act, yc, res, ys);
	gv_put_f32(&act, so, junk, ys);
	gv_lanes_init(&ln, L, 2 * (64 * (S + 2) + fp8_gemv_stripe_bytes(N, K, L, mode)));
	gv_rot = N; /* every slice on the whole matrix's rotation */
	uint64_t wo = gv_add_matrix(&ln, a.w, a.ws, NULL, NULL, N, K, mode);
	struct fp8_gemv_grp whole =
				gv_grp(wo, xo, yw, yw, 0, N, K, K, ldy, mode | FP8_GEMV_RESIDUAL),
			    g[S];
	for (int s = 0; s < S; s++) {
		int k0 = ks[s], kn = ks[s + 1] - k0, last = s == S - 1;
		size_t eb = bf ? 2 : 1;
		uint8_t *w = malloc((size_t)N * kn * eb);
		float *ws = malloc((size_t)kbn * (kn / 128) * 4);
		for (int n = 0; n < N; n++)
			memcpy(w + (size_t)n * kn * eb, a.w + ((size_t)n * K + k0) * eb,
			       (size_t)kn * eb);
		for (int b = 0; b < kbn; b++)
			for (int j = 0; j < kn / 128; j++)
				ws[b * (kn / 128) + j] = a.ws[b * kbk + k0 / 128 + j];
		uint64_t so_w = gv_add_matrix(&ln, w, bf ? NULL : ws, NULL, NULL, N, kn, mode);
		uint32_t f = mode | (s ? FP8_GEMV_CONT : 0) | (last ? FP8_GEMV_RESIDUAL : 0);
		g[s] = gv_grp(so_w, xo + 4 * (uint64_t)k0, last ? yc : so, last ? yc : 0,
			      s ? so : 0, N, kn, K, ldy, f);
		free(w);
		free(ws);
	}
	gv_rot = 0;
	memcpy(act.p + tab, &whole, 64);
	uint32_t rc =
	    fp8_gemv_run(act.p, act.size, (const uint8_t *const *)ln.p, ln.size, L, tab, 1, m);
	memcpy(act.p + tab + 64, g, sizeof g);
	for (int s = 0; s < (sep ? S : 1) && !rc; s++)
		rc = fp8_gemv_run(act.p, act.size, (const uint8_t *const *)ln.p, ln.size, L,
				  tab + 64 * (uint64_t)(1 + s), sep ? 1 : S, m);
	long bad = 0;
	for (int i = 0; i < m && !rc; i++)
		bad += memcmp(act.p + yw + (uint64_t)i * ldy * 4,
			      act.p + yc + (uint64_t)i * ldy * 4, (size_t)N * 4) != 0;
	CHECK(!rc && !bad,
	      "CONT: K = 896 in slices of 256, 128, 512 (%s, N=%d L=%d m=%d mode=0x%x) vs one "
	      "group: rc=%u, %ld rows differ",
	      sep ? "a command each" : "one command", N, L, m, mode, rc, bad);
	/* the start must be exactly an earlier output on its lanes: a start one row off fails */
	if (!sep) {
		struct fp8_gemv_grp t[S];
		memcpy(t, g, sizeof t);
		t[1].rw_off -= 4;
		memcpy(act.p + tab + 64, t, sizeof t);
		rc = fp8_gemv_run(act.p, act.size, (const uint8_t *const *)ln.p, ln.size, L,
				  tab + 64, S, m);
		CHECK_EQ(rc, FP8_GEMV_E_FLAGS | 1u << 8,
			 "CONT: a start that meets slice 0's output one row off is refused");
		memcpy(t, g, sizeof t);
		t[2].flags |= FP8_GEMV_ACCUM;
		memcpy(act.p + tab + 64, t, sizeof t);
		rc = fp8_gemv_run(act.p, act.size, (const uint8_t *const *)ln.p, ln.size, L,
				  tab + 64, S, m);
		CHECK_EQ(rc, FP8_GEMV_E_FLAGS | 2u << 8, "CONT with ACCUM is refused");
	}
	mat_free(&a);
	gv_lanes_free(&ln);
	free(act.p);
	free(x);
	free(res);
	free(junk);
}

int main(void)
{
	xidx_case(40, 300, 8, 3, 0);
	xidx_case(64, 1024, 32, 16, FP8_GEMV_SILU_MUL | FP8_GEMV_RMSNORM);
	xidx_case(24, 129, 3, 5, FP8_GEMV_RMSNORM | FP8_GEMV_UE8M0);
	xidx_case(16, 256, 4, 1, FP8_GEMV_ACT_F32);
	for (int pat = 0; pat < 5; pat++) {
		argmax_case(1000, 32, 1, pat, 1);
		argmax_case(777, 3, 3, pat, 0);
		argmax_case(4096, 8, 2, pat, 1);
	}
	argmax_case(1, 4, 1, 0, 0);
	norm_fold(64, 1024, 32, 1, 0);
	norm_fold(37, 300, 8, 3, 0);
	norm_fold(37, 300, 8, 2, FP8_GEMV_UE8M0);
	norm_fold(100, 129, 3, 4, FP8_GEMV_ACT_F32);
	norm_fold(50, 2049, 32, 1, FP8_GEMV_SILU_MUL);
	norm_fold(20, 512, 4, 2, FP8_GEMV_W_BF16);
	suite();
	moe_downs(32, 1, 0, 0);
	moe_downs(32, 1, 0, 1);
	moe_downs(3, 4, FP8_GEMV_ACT_F32, 1);
	moe_downs(8, 2, FP8_GEMV_UE8M0, 0);
	moe_downs(8, 2, FP8_GEMV_UE8M0, 1);
	mixed_table(32, 1);
	mixed_table(8, 3);
	for (int sep = 0; sep < 2; sep++) {
		cont_chain(7168 / 16, 32, 1, 0, sep);
		cont_chain(300, 8, 3, FP8_GEMV_ACT_F32, sep);
		cont_chain(129, 3, 2, FP8_GEMV_UE8M0, sep);
		cont_chain(64, 4, 1, FP8_GEMV_W_BF16, sep);
	}
	errors();
	CHECK_EQ(fp8_gemv_stripe_bytes(0, 1, 1, 0), 0, "stripe_bytes rejects N = 0");
	CHECK_EQ(fp8_gemv_stripe_bytes(9, 1, 1, FP8_GEMV_W_BF16), 2 * 8 * 2,
		 "bf16: 2 tiles of 8 rows x 1 x 2 bytes, no scales");
	CHECK_EQ(fp8_gemv_stripe_bytes(9, 200, 2, FP8_GEMV_SILU_MUL), 3200 + 2 * 2 * 4,
		 "SiLU pair: 1 tile of 2x8x200 codes (64-aligned), then 2 scale rows of 2");
	return harness_done();
}
