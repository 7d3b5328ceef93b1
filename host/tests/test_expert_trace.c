/*
 * test_expert_trace.c - routing traces on the tiny model's real routing (expert_trace.h):
 * the writer hooked into model_forward records one record per (MoE layer, token) in decode and
 * in batched prefill, equal to the model's own choice (m->route.idx) and weights; the layer's
 * own gate re-run by the trace code reproduces the model's choice exactly (router selection
 * call-compatible); the reader loads it back; and the look-ahead prediction accuracy (next
 * layer's gate on the current residual stream) is measured and must beat chance (k/E).
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
#include "ckpt.h"
#include "expert_trace.h"
#include "model.h"

static void test_trace_tiny(void **st)
{
	(void)st;
	char dir[256], path[300], err[512], cmd[700];
	const char *b = getenv("B") ? getenv("B") : "build";
	snprintf(dir, sizeof dir, "%s/tmp/test_expert_trace_%d", b, (int)getpid());
	snprintf(path, sizeof path, "%s.xt", dir);
	struct ckpt ck;
	if (gen_checkpoint(dir, "tiny", 11, NULL, 0, err, sizeof err) ||
	    ckpt_open(dir, &ck, err, sizeof err))
		fail_msg("tiny: %s", err);
	const struct config *c = &ck.cfg;
	struct model m;
	struct model_opts o = { .act_fp8 = 1, .n_threads = 2, .max_seq = 160, .max_batch = 16 };
	assert_int_equal(model_init(&m, c, &ck.w, &o, err, sizeof err), 0);
	struct expert_trace_writer w;
	if (expert_trace_writer_open(&w, &m, path, err, sizeof err))
		fail_msg("writer: %s", err);
	int L = c->num_hidden_layers, k = c->num_experts_per_tok, nmoe = L - c->first_k_dense_replace;
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

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_trace_tiny) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
