/*
 * test_expert_trace.c - routing traces on the tiny model's real routing (expert_trace.h):
 * the writer hooked into model_forward records one record per (MoE layer, token) in decode and
 * in batched prefill, equal to the model's own choice (m->route.idx) and weights; the layer's
 * own gate re-run by the trace code reproduces the model's choice exactly (router selection
 * call-compatible); the reader loads it back; and the look-ahead prediction accuracy (next
 * layer's gate on the current residual stream) is measured and must beat chance (k/E).
 * The emu engine (emulated card, engine_ops.expert_trace) writes the same trace: same header,
 * one record per (MoE layer, token) in the same order, and on the tokens where the card and the
 * cpu engine (--act fp8) still compute the same numbers the same experts, weights and
 * predictions; detaching stops it; an unwritable file fails with a message naming it.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "load/ckpt.h"
#include "engine/engine.h"
#include "sched/expert_trace.h"
#include "model/model.h"

static void test_trace_tiny(void **st)
{
	(void)st;
	char dir[256], path[300], err[512], cmd[700];
	const char *b = getenv("B") ? getenv("B") : "build";
	snprintf(dir, sizeof dir, "%s/tmp/test_expert_trace_%d", b, (int)getpid());
	snprintf(path, sizeof path, "%s.xt", dir);
	struct ckpt ck;
	if (testckpt_write(dir, "tiny", 11, NULL, 0, err, sizeof err) ||
	    ckpt_open(dir, &ck, err, sizeof err))
		fail_msg("tiny: %s", err);
	const struct config *c = &ck.cfg;
	struct model m;
	struct model_opts o = {.act_fp8 = 1, .n_threads = 2, .max_seq = 160, .max_batch = 16};
	assert_int_equal(model_init(&m, c, &ck.w, &o, err, sizeof err), 0);
	struct expert_trace_writer w;
	if (expert_trace_writer_open(&w, &m, path, err, sizeof err))
		fail_msg("writer: %s", err);
	int L = c->num_hidden_layers, k = c->num_experts_per_tok,
	    nmoe = L - c->first_k_dense_replace;
	int n_dec = 128, n_pre = 16;
	int *want = malloc(sizeof(int) * (size_t)(n_pre + n_dec) * L * k);
	float *logits = malloc(sizeof(float) * c->vocab_size);
	/* prefill a batch of 16, then decode 128 tokens one by one */
	int toks[16];
	for (int i = 0; i < n_pre; i++)
		toks[i] = (i * 131 + 7) % c->vocab_size;
	assert_int_equal(model_forward(&m, toks, n_pre, logits, 0, NULL), 0);
	for (int t = 0; t < n_pre; t++)
		for (int l = 0; l < L; l++)
			memcpy(want + ((size_t)t * L + l) * k,
			       m.route.idx + ((size_t)t * (L + 1) + l) * k, sizeof(int) * k);
	for (int i = 0; i < n_dec; i++) {
		int tok = (i * 389 + 11) % c->vocab_size;
		assert_int_equal(model_forward(&m, &tok, 1, logits, 0, NULL), 0);
		memcpy(want + (size_t)(n_pre + i) * L * k, m.route.idx, sizeof(int) * L * k);
	}
	uint64_t mism = w.self_mismatch;
	assert_int_equal(expert_trace_writer_close(&w), 0);
	assert_null(m.layer_hook);
	if (mism)
		fail_msg("%llu tokens: the trace's router selection differs from the model's",
			 (unsigned long long)mism);
	struct expert_trace t;
	if (expert_trace_load(path, &t, err, sizeof err))
		fail_msg("load: %s", err);
	size_t nrec = (size_t)(n_pre + n_dec) * nmoe;
	if (t.n != nrec)
		fail_msg("%zu records, expected %zu (%d tokens x %d MoE layers)", t.n, nrec,
			 n_pre + n_dec, nmoe);
	assert_int_equal(t.s.n_experts, c->n_routed_experts);
	assert_int_equal(t.s.k, k);
	size_t bad = 0;
	double wsum_err = 0;
	for (size_t i = 0; i < t.n; i++) {
		int pos = t.pos[i], l = t.layer[i];
		const int *ref = want + ((size_t)pos * L + l) * k;
		double ws = 0;
		for (int j = 0; j < k; j++) {
			bad += t.expert[i * k + j] != ref[j];
			ws += t.weight[i * k + j];
		}
		/* norm_topk_prob: weights sum to routed_scaling_factor */
		wsum_err = fmax(wsum_err, fabs(ws - c->routed_scaling_factor));
	}
	if (bad)
		fail_msg("%zu trace experts differ from model route.idx", bad);
	if (wsum_err > 1e-5)
		fail_msg("router weights sum off by %.3g from routed_scaling_factor", wsum_err);
	struct expert_trace_acc a;
	expert_trace_accuracy(&t, &a);
	double chance = (double)k / c->n_routed_experts;
	print_message("tiny, %zu records: look-ahead recall distance 1 %.1f%% (exact %.1f%%), "
		      "distance 2 %.1f%% (exact %.1f%%), chance %.1f%%\n",
		      t.n, 100 * a.recall1, 100 * a.exact1, 100 * a.recall2, 100 * a.exact2,
		      100 * chance);
	/* every MoE layer after the first has a distance-1 prediction, after the second a
	 * distance-2 one (the first MoE layer follows a dense layer: predicted too) */
	assert_int_equal(a.n1, t.n);
	assert_int_equal(a.n2, (size_t)(n_pre + n_dec) * (nmoe - (c->first_k_dense_replace < 2)));
	if (!(a.recall1 > chance + 0.1))
		fail_msg("distance-1 prediction recall %.3f is not above chance %.3f", a.recall1,
			 chance);
	expert_trace_free(&t);
	free(want);
	free(logits);
	model_free(&m);
	ckpt_close(&ck);
	snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir, path);
	assert_int_equal(system(cmd), 0);
}

/* Largest |a - b| over n floats. */
static double max_abs_diff(const float *a, const float *b, size_t n)
{
	double d = 0;
	for (size_t i = 0; i < n; i++)
		d = fmax(d, fabs((double)a[i] - b[i]));
	return d;
}

static void test_trace_emu(void **st)
{
	(void)st;
	char dir[256], pc[300], pe[300], err[512], cmd[1024], bd[300];
	const char *b = getenv("B") ? getenv("B") : "build";
	snprintf(dir, sizeof dir, "%s/tmp/test_expert_trace_emu_%d", b, (int)getpid());
	snprintf(pc, sizeof pc, "%s.cpu.xt", dir);
	snprintf(pe, sizeof pe, "%s.emu.xt", dir);
	snprintf(bd, sizeof bd, "%s/board/emu.dtb", b);
	setenv("MOECARD_BOARD", bd, 1);
	struct ckpt ck;
	if (testckpt_write(dir, "tiny", 11, NULL, 0, err, sizeof err) ||
	    ckpt_open(dir, &ck, err, sizeof err))
		fail_msg("tiny: %s", err);
	const struct config *c = &ck.cfg;
	struct model_opts o = {.act_fp8 = 1, .n_threads = 2, .max_seq = 64, .max_batch = 4};
	struct engine ec, ee;
	if (engine_open(&ec, "cpu", &ck, &o, NULL, err, sizeof err) ||
	    engine_open(&ee, "emu", &ck, &o, NULL, err, sizeof err))
		fail_msg("engine_open: %s", err);
	/* a file that cannot be created: -errno, one message naming it */
	struct expert_trace_writer *wc, *we;
	int r = expert_trace_attach(&ee, "/nonexistent-moecard-dir/t.xt", &we, err, sizeof err);
	assert_int_equal(r, -ENOENT);
	assert_null(we);
	assert_non_null(strstr(err, "/nonexistent-moecard-dir/t.xt"));
	assert_null(strchr(err, '\n'));
	if (expert_trace_attach(&ec, pc, &wc, err, sizeof err) ||
	    expert_trace_attach(&ee, pe, &we, err, sizeof err))
		fail_msg("attach: %s", err);
	// NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign): fail_msg does not return
	int N = 32, V = c->vocab_size, L = c->num_hidden_layers, k = c->num_experts_per_tok;
	int nmoe = L - c->first_k_dense_replace, clean = N;
	float *lc = malloc(sizeof(float) * V), *le = malloc(sizeof(float) * V);
	for (int i = 0; i < N; i++) {
		int tok = (i * 389 + 11) % V;
		assert_int_equal(engine_forward(&ec, &tok, 1, lc, 0, NULL), 0);
		assert_int_equal(engine_forward(&ee, &tok, 1, le, 0, NULL), 0);
		/* the first row where the card's logits leave f32 summation-order noise: an
		 * FP8 activation rounded differently (test_emu_model.sh); routes may differ from
		 * there on */
		if (clean == N && max_abs_diff(lc, le, (size_t)V) > 1e-4)
			clean = i;
	}
	uint64_t mism = we->self_mismatch, recs = we->records;
	assert_int_equal(expert_trace_detach(wc), 0);
	assert_int_equal(expert_trace_detach(we), 0);
	/* detached: the engine no longer writes (the writer is freed; ASan would see a use) */
	int tok = 5;
	assert_int_equal(engine_forward(&ee, &tok, 1, le, 0, NULL), 0);
	if (mism)
		fail_msg("emu: %llu tokens: the trace's router selection differs from the engine's",
			 (unsigned long long)mism);
	assert_int_equal(recs, (uint64_t)N * nmoe);
	struct expert_trace tc, te;
	if (expert_trace_load(pc, &tc, err, sizeof err) ||
	    expert_trace_load(pe, &te, err, sizeof err))
		fail_msg("load: %s", err);
	assert_memory_equal(&tc.s, &te.s, sizeof tc.s);
	assert_int_equal(te.n, (size_t)N * nmoe);
	assert_int_equal(tc.n, te.n);
	size_t cmp = 0, diff_after = 0;
	for (size_t i = 0; i < te.n; i++) {
		/* decode order on both: token by token, MoE layers in order */
		assert_int_equal(te.pos[i], (int)(i / nmoe));
		assert_int_equal(te.layer[i], c->first_k_dense_replace + (int)(i % nmoe));
		assert_int_equal(tc.pos[i], te.pos[i]);
		assert_int_equal(tc.layer[i], te.layer[i]);
		/* a prediction exists where a decoder layer lies one (pred1) / two (pred2) ahead */
		assert_int_equal(te.pred1[i * k] < 0, te.layer[i] < 1);
		assert_int_equal(te.pred2[i * k] < 0, te.layer[i] < 2);
		if (te.pos[i] >= clean) {
			diff_after +=
			    memcmp(te.expert + i * k, tc.expert + i * k, sizeof(int32_t) * k) != 0;
			continue;
		}
		cmp++;
		for (int j = 0; j < k; j++) {
			size_t q = i * k + j;
			if (te.expert[q] != tc.expert[q] || te.pred1[q] != tc.pred1[q] ||
			    te.pred2[q] != tc.pred2[q] ||
			    fabsf(te.weight[q] - tc.weight[q]) > 1e-5f)
				fail_msg("record %zu (layer %d, pos %d) rank %d: emu expert %d "
					 "w %.7f pred %d/%d, cpu expert %d w %.7f pred %d/%d",
					 i, te.layer[i], te.pos[i], j, te.expert[q], te.weight[q],
					 te.pred1[q], te.pred2[q], tc.expert[q], tc.weight[q],
					 tc.pred1[q], tc.pred2[q]);
		}
	}
	print_message("emu vs cpu traces: %zu records identical (tokens 0..%d, before the first "
		      "FP8 divergence of the logits); after it %zu of %zu records route "
		      "differently\n",
		      cmp, clean - 1, diff_after, te.n - cmp);
	/* (how long the two stay FP8-identical depends on the tokens and on the SIMD path's
	 * summation order; at least the first token) */
	if (clean < 1)
		fail_msg("the card's logits left the cpu engine's at the first token already");
	if (diff_after * 3 > te.n - cmp) /* FP8 noise flips near-ties only: most still agree */
		fail_msg("%zu of %zu records after the divergence route differently", diff_after,
			 te.n - cmp);
	expert_trace_free(&tc);
	expert_trace_free(&te);
	/* a write error surfaces when the writer closes (/dev/full: buffered records, ENOSPC) */
	if (access("/dev/full", W_OK) == 0) {
		engine_truncate(&ee, 0, 0);
		if (expert_trace_attach(&ee, "/dev/full", &we, err, sizeof err))
			fail_msg("attach /dev/full: %s", err);
		assert_int_equal(engine_forward(&ee, &tok, 1, le, 0, NULL), 0);
		assert_int_equal(expert_trace_detach(we), -ENOSPC);
	}
	free(lc);
	free(le);
	engine_free(&ec);
	engine_free(&ee);
	ckpt_close(&ck);
	snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", dir, pc, pe);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_trace_tiny),
					   cmocka_unit_test(test_trace_emu)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
