/*
 * test_ckpt.c - `moecard gen` round trip through the loader stack (testckpt.c -> safetensors.c ->
 * ckpt.c): a tiny checkpoint binds with the right shapes; FP8 scales are finite, positive and
 * (ue8m0) powers of two; dequantized weights have the intended std; routing is not degenerate
 * (the bias changes some but not all top-k sets, every expert is picked, router logits spread);
 * lm_head logits are not flat; the V2/BF16/partial-block/sharded/no-MTP variants bind; gen is
 * deterministic and keeps unrelated files.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "load/ckpt.h"
#include "e4m3.h"

static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/moecard_test_ckpt.XXXXXX", t && *t ? t : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* testckpt_write into tmpdir/<sub> and open it. */
static void open_testckpt(const char *sub, uint64_t seed, const char **sets, int n, struct ckpt *ck)
{
	char dir[512], err[512] = "";
	snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
	int rc = testckpt_write(dir, "tiny", seed, sets, n, err, sizeof err);
	if (rc)
		printf("gen %s: %s\n", sub, err);
	assert_int_equal(rc, 0);
	rc = ckpt_open(dir, ck, err, sizeof err);
	if (rc)
		printf("open %s: %s\n", sub, err);
	assert_int_equal(rc, 0);
}

static float qmat_at(const struct qmat *q, int i, int j)
{
	size_t k = (size_t)i * q->cols + j;
	switch (q->fmt) {
	case QMAT_FP8: {
		// NOLINTNEXTLINE(clang-analyzer-core.NullDereference): an FP8 qmat has its scale
		float sc = q->scale[(i / 128) * q->scale_cols + j / 128];
		return e4m3_decode(((const uint8_t *)q->w)[k]) * sc;
	}
	case QMAT_BF16:
		return bf16_to_f32(((const uint16_t *)q->w)[k]);
	case QMAT_F16:
		return f16_to_f32(((const uint16_t *)q->w)[k]);
	default:
		return ((const float *)q->w)[k];
	}
}

static double qmat_std(const struct qmat *q)
{
	double s = 0, s2 = 0, n = (double)q->rows * q->cols;
	for (int i = 0; i < q->rows; i++)
		for (int j = 0; j < q->cols; j++) {
			double v = qmat_at(q, i, j);
			s += v;
			s2 += v * v;
		}
	return sqrt(s2 / n - (s / n) * (s / n));
}

/* Checks every FP8 scale of q: finite, > 0, and a power of two when pow2. Returns count. */
static int check_scales(const struct qmat *q, int pow2)
{
	int sr = (q->rows + 127) / 128, n = 0;
	assert_int_equal(q->fmt, QMAT_FP8);
	assert_int_equal(q->scale_cols, (q->cols + 127) / 128);
	for (int i = 0; i < sr * q->scale_cols; i++, n++) {
		float s = q->scale[i];
		assert_true(isfinite(s) && s > 0);
		if (pow2) {
			int e;
			assert_true(frexpf(s, &e) == 0.5f);
		}
	}
	return n;
}

static void test_tiny_shapes(void **state)
{
	(void)state;
	struct ckpt ck;
	open_testckpt("tiny", 1, NULL, 0, &ck);
	const struct config *c = &ck.cfg;
	const struct weights *w = &ck.w;
	assert_int_equal(c->hidden_size, 256);
	assert_int_equal(c->num_hidden_layers, 4);
	assert_int_equal(c->n_routed_experts, 16);
	assert_int_equal(c->vocab_size, 1024);
	assert_true(c->rope_scaling.yarn && c->rope_scaling.factor == 40);
	assert_int_equal(w->fp8, 1);
	assert_int_equal(w->embed_tokens.fmt, QMAT_BF16);
	assert_int_equal(w->embed_tokens.rows, 1024);
	assert_int_equal(w->layers[0].is_moe, 0);
	assert_int_equal(w->layers[0].mlp.gate.rows, 512);
	assert_int_equal(w->layers[1].is_moe, 1);
	const struct layer_weights *l1 = &w->layers[1];
	assert_int_equal(l1->q_a_proj.rows, 192);
	assert_int_equal(l1->q_b_proj.rows, 4 * 48);
	assert_int_equal(l1->kv_a_proj_with_mqa.rows, 144);
	assert_int_equal(l1->kv_b_proj.rows, 4 * 64);
	assert_int_equal(l1->o_proj.cols, 4 * 32);
	assert_int_equal(l1->gate.rows, 16);
	assert_int_equal(l1->gate.fmt, QMAT_BF16);
	assert_non_null(l1->e_score_correction_bias);
	assert_int_equal(l1->experts[15].down.rows, 256);
	assert_int_equal(l1->experts[15].down.cols, 128);
	assert_int_equal(l1->shared.gate.rows, 128);
	assert_non_null(w->mtp);
	assert_int_equal(w->mtp->eh_proj.cols, 512);
	assert_int_equal(w->mtp->eh_proj.fmt, QMAT_BF16);
	assert_int_equal(w->mtp->is_moe, 1);
	assert_int_equal(w->mtp->shared_head_head.rows, 1024);
	/* The MTP head and embedding repeat the main ones. */
	assert_memory_equal(w->mtp->embed_tokens.w, w->embed_tokens.w, 1024 * 256 * 2);
	assert_memory_equal(w->mtp->shared_head_head.w, w->lm_head.w, 1024 * 256 * 2);
	int ns = 0;
	for (int l = 0; l < 4; l++) {
		ns += check_scales(&w->layers[l].kv_a_proj_with_mqa, 0);
		ns += check_scales(&w->layers[l].o_proj, 0);
	}
	for (int e = 0; e < 16; e++)
		ns += check_scales(&l1->experts[e].down, 0);
	/* norms around 1 */
	double m = 0;
	for (int i = 0; i < 256; i++)
		m += l1->input_layernorm[i];
	m /= 256;
	printf("checked %d scales; input_layernorm mean %.3f\n", ns, m);
	assert_true(fabs(m - 1) < 0.05);
	/* Dequantized std ~ 1/sqrt(in). */
	double s_q = qmat_std(&l1->q_a_proj), s_d = qmat_std(&l1->experts[3].down);
	double s_e = qmat_std(&w->embed_tokens);
	printf(
	    "std: q_a_proj %.5f (want %.5f), expert down %.5f (want %.5f), embed %.4f (want 1)\n",
	    s_q, 1 / 16.0, s_d, 1 / sqrt(128.0), s_e);
	assert_true(fabs(s_q * 16 - 1) < 0.05);
	assert_true(fabs(s_d * sqrt(128.0) - 1) < 0.05);
	assert_true(fabs(s_e - 1) < 0.05);
	/* stats */
	struct ckpt_stats st;
	ckpt_stats(&ck, &st);
	assert_int_equal(st.params_expert, 3 * 128 * 256);
	assert_int_equal(st.params_routed, 3ull * 16 * 3 * 128 * 256);
	assert_int_equal(st.params_total, st.params_attn + st.params_dense + st.params_shared +
					      st.params_routed + st.params_router +
					      st.params_embed_head + st.params_mtp);
	assert_int_equal(st.kv_bytes_per_token, (128 + 16) * 4 * 5);
	ckpt_close(&ck);
}

/* Top-k of the noaux_tc router (docs/model.md, Router) with or without the bias; bitmask result. */
static uint32_t route(const struct config *c, const float *s, const float *bias)
{
	const int E = c->n_routed_experts, G = c->n_group, per = E / G;
	float sb[64] = {0}, gs[64] = {0};
	uint32_t chosen = 0;
	if (per < 1 || E > 32)
		return 0; /* config_validate: n_group divides E; at most 32 experts in the mask */
	for (int e = 0; e < E; e++)
		sb[e] = s[e] + (bias ? bias[e] : 0);
	for (int g = 0; g < G; g++) {
		float a = -INFINITY, b = -INFINITY;
		for (int e = g * per; e < (g + 1) * per; e++) {
			if (sb[e] > a) {
				b = a;
				a = sb[e];
			} else if (sb[e] > b) {
				b = sb[e];
			}
		}
		gs[g] = a + b;
	}
	uint32_t keep = 0;
	for (int k = 0; k < c->topk_group; k++) {
		int best = -1;
		for (int g = 0; g < G; g++)
			if (!(keep >> g & 1) && (best < 0 || gs[g] > gs[best]))
				best = g;
		assert_true(best >= 0);
		keep |= best >= 0 ? 1u << best : 0;
	}
	for (int k = 0; k < c->num_experts_per_tok; k++) {
		int best = -1;
		for (int e = 0; e < E; e++)
			if ((keep >> (e / per) & 1) && !(chosen >> e & 1) &&
			    (best < 0 || sb[e] > sb[best]))
				best = e;
		assert_true(best >= 0);
		chosen |= best >= 0 ? 1u << best : 0;
	}
	return chosen;
}

static void test_tiny_routing(void **state)
{
	(void)state;
	struct ckpt ck;
	open_testckpt("tiny_route", 7, NULL, 0, &ck);
	const struct config *c = &ck.cfg;
	const int h = c->hidden_size, E = c->n_routed_experts, N = 256;
	unsigned long long seed = 12345;
	float *x = calloc((size_t)h, sizeof(float));
	int total_differ = 0, layers = 0;
	double lsum2 = 0, lcount = 0;
	for (int l = 0; l < c->num_hidden_layers; l++) {
		const struct layer_weights *lw = &ck.w.layers[l];
		if (!lw->is_moe)
			continue;
		layers++;
		int differ = 0, picked[64] = {0};
		for (int n = 0; n < N; n++) {
			double r2 = 0;
			for (int i = 0; i < h; i++) { /* Box-Muller, unit RMS */
				seed = seed * 6364136223846793005ull + 1442695040888963407ull;
				double u1 = ((seed >> 11) + 1.0) / 9007199254740993.0;
				seed = seed * 6364136223846793005ull + 1442695040888963407ull;
				double u2 = (seed >> 11) / 9007199254740992.0;
				x[i] = (float)(sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
				r2 += x[i] * x[i];
			}
			for (int i = 0; i < h; i++)
				x[i] /= (float)sqrt(r2 / h);
			float s[64];
			for (int e = 0; e < E; e++) {
				double d = 0;
				for (int i = 0; i < h; i++)
					d += qmat_at(&lw->gate, e, i) * x[i];
				lsum2 += d * d;
				lcount++;
				s[e] = (float)(1 / (1 + exp(-d)));
			}
			uint32_t b = route(c, s, lw->e_score_correction_bias),
				 u = route(c, s, NULL);
			differ += b != u;
			for (int e = 0; e < E; e++)
				picked[e] += b >> e & 1;
		}
		int minp = N;
		for (int e = 0; e < E; e++)
			minp = picked[e] < minp ? picked[e] : minp;
		printf("layer %d: bias changes the top-%d set for %d of %d inputs; least-picked "
		       "expert "
		       "%d times\n",
		       l, c->num_experts_per_tok, differ, N, minp);
		assert_true(differ > 0 && differ < N);
		assert_true(minp > 0);
		total_differ += differ;
	}
	double lstd = sqrt(lsum2 / lcount);
	printf("router logit std %.3f over %d MoE layers; %d/%d top-k sets changed by the bias\n",
	       lstd, layers, total_differ, layers * N);
	assert_true(lstd > 1.0 && lstd < 2.0);
	/* lm_head: logits of a unit-RMS input are not flat. */
	double s = 0, s2 = 0;
	for (int v = 0; v < c->vocab_size; v++) {
		double d = 0;
		for (int i = 0; i < h; i++)
			d += qmat_at(&ck.w.lm_head, v, i) * x[i];
		s += d;
		s2 += d * d;
	}
	double hstd = sqrt(s2 / c->vocab_size - (s / c->vocab_size) * (s / c->vocab_size));
	printf("lm_head logit std %.3f\n", hstd);
	assert_true(hstd > 1.0);
	free(x);
	ckpt_close(&ck);
}

static void test_variants(void **state)
{
	(void)state;
	struct ckpt ck;
	const char *v2[] = {
	    "model_type=deepseek_v2", "scoring_func=softmax", "topk_method=group_limited_greedy",
	    "norm_topk_prob=false",   "q_lora_rank=null",     "rope_scaling=null"};
	open_testckpt("v2", 2, v2, 6, &ck);
	assert_int_equal(ck.cfg.q_lora_rank, 0);
	assert_int_equal(ck.w.layers[1].q_a_proj.rows, 0);
	assert_int_equal(ck.w.layers[1].q_proj.rows, 4 * 48);
	assert_int_equal(ck.w.layers[1].q_proj.cols, 256);
	assert_null(ck.w.layers[1].e_score_correction_bias);
	assert_null(st_find(&ck.st, "model.layers.1.mlp.gate.e_score_correction_bias"));
	assert_false(ck.cfg.rope_scaling.yarn);
	ckpt_close(&ck);

	const char *bf[] = {"dtype=bf16"};
	open_testckpt("bf16", 3, bf, 1, &ck);
	assert_int_equal(ck.w.fp8, 0);
	assert_false(ck.cfg.quantization_config.present);
	assert_int_equal(ck.w.layers[2].experts[1].up.fmt, QMAT_BF16);
	assert_null(ck.w.layers[2].experts[1].up.scale);
	double sd = qmat_std(&ck.w.layers[2].experts[1].up);
	assert_true(fabs(sd * 16 - 1) < 0.05);
	ckpt_close(&ck);

	const char *ue[] = {"scale_fmt=ue8m0"};
	open_testckpt("ue8m0", 4, ue, 1, &ck);
	assert_true(ck.cfg.quantization_config.ue8m0);
	int n = check_scales(&ck.w.layers[1].q_b_proj, 1) + check_scales(&ck.w.mtp->o_proj, 1);
	double sq = qmat_std(&ck.w.layers[1].q_a_proj);
	printf("ue8m0: %d power-of-two scales, q_a_proj std %.5f\n", n, sq);
	assert_true(fabs(sq * 16 - 1) < 0.05);
	ckpt_close(&ck);

	/* Partial blocks: hidden 320 -> 3 column blocks, the last 64 wide. */
	const char *pb[] = {"hidden_size=320", "vocab_size=1000"};
	open_testckpt("partial", 5, pb, 2, &ck);
	const struct qmat *kv = &ck.w.layers[2].kv_a_proj_with_mqa;
	assert_int_equal(kv->cols, 320);
	assert_int_equal(kv->scale_cols, 3);
	check_scales(kv, 0);
	check_scales(&ck.w.layers[2].experts[0].down, 0); /* [320,128]: 3 row blocks */
	assert_int_equal(ck.w.lm_head.rows, 1000);
	ckpt_close(&ck);

	/* Sharded, without MTP. */
	const char *sh[] = {"shard_bytes=2000000", "num_nextn_predict_layers=0"};
	open_testckpt("sharded", 6, sh, 2, &ck);
	printf("sharded: %d files, %d tensors\n", ck.st.n_files, ck.st.n_tensors);
	assert_true(ck.st.n_files >= 3);
	assert_non_null(ck.st.index_path);
	assert_null(ck.w.mtp);
	assert_null(st_find(&ck.st, "model.layers.4.eh_proj.weight"));
	ckpt_close(&ck);
}

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc(*n + 1);
	assert_int_equal(fread(b, 1, *n, f), *n);
	fclose(f);
	return b;
}

static void test_determinism_and_dir(void **state)
{
	(void)state;
	char a[512], b[512], p[600], err[512];
	snprintf(a, sizeof a, "%s/det_a", tmpdir);
	snprintf(b, sizeof b, "%s/det_b", tmpdir);
	assert_int_equal(mkdir(a, 0755), 0);
	snprintf(p, sizeof p, "%s/notes.txt", a);
	FILE *f = fopen(p, "w");
	fputs("keep me\n", f);
	fclose(f);
	assert_int_equal(testckpt_write(a, "tiny", 42, NULL, 0, err, sizeof err), 0);
	assert_int_equal(testckpt_write(b, "tiny", 42, NULL, 0, err, sizeof err), 0);
	assert_int_equal(access(p, F_OK), 0);
	size_t na, nb;
	char pa[600], pb[600];
	snprintf(pa, sizeof pa, "%s/model.safetensors", a);
	snprintf(pb, sizeof pb, "%s/model.safetensors", b);
	char *da = slurp(pa, &na), *db = slurp(pb, &nb);
	assert_int_equal(na, nb);
	assert_memory_equal(da, db, na);
	free(db);
	assert_int_equal(testckpt_write(b, "tiny", 43, NULL, 0, err, sizeof err), 0);
	db = slurp(pb, &nb);
	assert_int_equal(na, nb);
	assert_true(memcmp(da, db, na) != 0);
	free(da);
	free(db);
	/* no temp files left behind */
	char cmd[1100];
	snprintf(cmd, sizeof cmd, "ls '%s' '%s' | grep -q '[.]tmp[.]'", a, b);
	assert_int_not_equal(system(cmd), 0);
	/* Bad preset / override: -EINVAL, message names the option. */
	const char *bad[] = {"num_experts_per_tok=17"};
	assert_int_equal(testckpt_write(b, "huge", 1, NULL, 0, err, sizeof err), -EINVAL);
	assert_int_equal(testckpt_write(b, "tiny", 1, bad, 1, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "config.json: num_experts_per_tok:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tiny_shapes),
	    cmocka_unit_test(test_tiny_routing),
	    cmocka_unit_test(test_variants),
	    cmocka_unit_test(test_determinism_and_dir),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
