/*
 * test_expert_cache.c - the expert cache (expert_cache.h) on inputs with known answers:
 * LRU / LFU / Belady eviction order, pinning of the hottest experts, locking within a layer step,
 * prefetch used / wasted accounting; the modeled replay on synthetic traces (a cyclic pattern one
 * larger than the cache: LRU hits nothing, Belady hits (slots-1)/(slots) of the warm accesses;
 * perfect predictions make look-ahead prefetch hit everything; host execution never slower than
 * the all-host run); the trace reader's validation (each corruption names its field); the slot
 * layout (44 MB for the 671B expert); and the
 * data path: tiny-model experts DMA'd by the emul engine into card slots run through the cpu
 * kernels bit-identically to the same experts read from the checkpoint.
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
#include "dma.h"
#include "sched/expert_cache.h"
#include "sched/expert_trace.h"
#include "model/kernels.h"

static void test_lru_order(void **st)
{
	(void)st;
	struct expert_cache c;
	assert_int_equal(expert_cache_init(&c, 1, 8, 2, EXPERT_POLICY_LRU), 0);
	int v;
	assert_int_equal(expert_cache_access(&c, 0, 1, 0), -1);
	int s1 = expert_cache_fill(&c, 0, 1, 0, 0, &v);
	assert_int_equal(v, -1);
	expert_cache_unlock(&c);
	assert_int_equal(expert_cache_access(&c, 0, 2, 0), -1);
	expert_cache_fill(&c, 0, 2, 0, 0, NULL);
	expert_cache_unlock(&c);
	assert_int_equal(expert_cache_access(&c, 0, 1, 0), s1); /* 1 is now the most recent */
	expert_cache_unlock(&c);
	assert_int_equal(expert_cache_access(&c, 0, 3, 0), -1);
	expert_cache_fill(&c, 0, 3, 0, 0, &v);
	if (v != 2)
		fail_msg("LRU evicted key %d, expected expert 2 (least recently used)", v);
	assert_int_equal(expert_cache_lookup(&c, 0, 1), s1);
	assert_int_equal(expert_cache_lookup(&c, 0, 2), -1);
	assert_int_equal(c.st.hits, 1);
	assert_int_equal(c.st.evictions, 1);
	print_message("LRU: evicted expert 2 after 1,2,1,3\n");
	expert_cache_free(&c);
}

static void test_lfu_order(void **st)
{
	(void)st;
	struct expert_cache c;
	assert_int_equal(expert_cache_init(&c, 2, 4, 2, EXPERT_POLICY_LFU), 0);
	int v;
	/* (1,0) used three times, (1,1) once but more recently: LFU evicts (1,1) */
	for (int i = 0; i < 3; i++) {
		if (expert_cache_access(&c, 1, 0, 0) < 0)
			expert_cache_fill(&c, 1, 0, 0, 0, NULL);
		expert_cache_unlock(&c);
	}
	if (expert_cache_access(&c, 1, 1, 0) < 0)
		expert_cache_fill(&c, 1, 1, 0, 0, NULL);
	expert_cache_unlock(&c);
	expert_cache_access(&c, 0, 3, 0);
	expert_cache_fill(&c, 0, 3, 0, 0, &v);
	if (v != 1 * 4 + 1)
		fail_msg("LFU evicted key %d, expected %d (layer 1 expert 1, one use)", v, 5);
	/* the same sequence under LRU evicts (1,0) */
	struct expert_cache l;
	assert_int_equal(expert_cache_init(&l, 2, 4, 2, EXPERT_POLICY_LRU), 0);
	for (int i = 0; i < 3; i++) {
		if (expert_cache_access(&l, 1, 0, 0) < 0)
			expert_cache_fill(&l, 1, 0, 0, 0, NULL);
		expert_cache_unlock(&l);
	}
	if (expert_cache_access(&l, 1, 1, 0) < 0)
		expert_cache_fill(&l, 1, 1, 0, 0, NULL);
	expert_cache_unlock(&l);
	expert_cache_fill(&l, 0, 3, 0, 0, &v);
	assert_int_equal(v, 4);
	print_message("LFU evicts the once-used expert, LRU the thrice-used older one\n");
	expert_cache_free(&c);
	expert_cache_free(&l);
}

static void test_belady_order(void **st)
{
	(void)st;
	struct expert_cache c;
	assert_int_equal(expert_cache_init(&c, 1, 8, 2, EXPERT_POLICY_BELADY), 0);
	int v;
	expert_cache_fill(&c, 0, 1, 10, 0, NULL); /* next used at access 10 */
	expert_cache_fill(&c, 0, 2, 5, 0, NULL);  /* next used at access 5 */
	expert_cache_unlock(&c);
	expert_cache_fill(&c, 0, 3, 7, 0, &v);
	if (v != 1)
		fail_msg("Belady evicted %d, expected expert 1 (used furthest in the future)", v);
	expert_cache_free(&c);
}

static void test_pin_and_lock(void **st)
{
	(void)st;
	struct expert_cache c;
	assert_int_equal(expert_cache_init(&c, 1, 16, 3, EXPERT_POLICY_PIN), 0);
	/* measured load: expert 7 hot */
	for (int i = 0; i < 10; i++) {
		if (expert_cache_access(&c, 0, 7, 0) < 0)
			expert_cache_fill(&c, 0, 7, 0, 0, NULL);
		expert_cache_unlock(&c);
	}
	for (int e = 0; e < 3; e++) {
		if (expert_cache_access(&c, 0, e, 0) < 0)
			expert_cache_fill(&c, 0, e, 0, 0, NULL);
		expert_cache_unlock(&c);
	}
	/* 7 was evicted by LRU meanwhile; re-pinning brings it back and keeps it */
	assert_int_equal(expert_cache_lookup(&c, 0, 7), -1);
	assert_int_equal(expert_cache_repin(&c, 1), 1);
	int s7 = expert_cache_lookup(&c, 0, 7);
	assert_true(s7 >= 0);
	for (int e = 8; e < 15; e++) {
		if (expert_cache_access(&c, 0, e, 0) < 0)
			assert_true(expert_cache_fill(&c, 0, e, 0, 0, NULL) >= 0);
		expert_cache_unlock(&c);
	}
	assert_int_equal(expert_cache_lookup(&c, 0, 7), s7);
	/* locking: the two unpinned slots are locked by this step, a third fill has no room */
	expert_cache_fill(&c, 0, 3, 0, 0, NULL);
	expert_cache_fill(&c, 0, 4, 0, 0, NULL);
	assert_int_equal(expert_cache_fill(&c, 0, 5, 0, 0, NULL), -ENOSPC);
	expert_cache_unlock(&c);
	assert_true(expert_cache_fill(&c, 0, 5, 0, 0, NULL) >= 0);
	assert_int_equal(expert_cache_repin(&c, 3), -ENOSPC);
	print_message("PIN: hottest expert survives 7 distinct misses; locked slots not evicted\n");
	expert_cache_free(&c);
}

static void test_prefetch_accounting(void **st)
{
	(void)st;
	struct expert_cache c;
	char *buf = NULL;
	size_t len = 0;
	FILE *ev = open_memstream(&buf, &len);
	assert_non_null(ev);
	assert_int_equal(expert_cache_init(&c, 1, 8, 2, EXPERT_POLICY_LRU), 0);
	c.events = ev;
	expert_cache_fill(&c, 0, 1, 0, 1, NULL);	    /* prefetch 1 */
	expert_cache_fill(&c, 0, 2, 0, 1, NULL);	    /* prefetch 2 */
	assert_true(expert_cache_access(&c, 0, 1, 0) >= 0); /* used */
	expert_cache_unlock(&c);
	expert_cache_fill(&c, 0, 3, 0, 0, NULL); /* evicts 2 unused: wasted */
	assert_int_equal(c.st.prefetch_issued, 2);
	assert_int_equal(c.st.prefetch_used, 1);
	assert_int_equal(c.st.prefetch_wasted, 1);
	fclose(ev);
	if (!strstr(buf, "\"ev\":\"prefetch_used\"") ||
	    !strstr(buf, "\"ev\":\"prefetch_wasted\"") || !strstr(buf, "\"ev\":\"miss_dma\""))
		fail_msg("event trace lacks a decision: %s", buf);
	free(buf);
	expert_cache_free(&c);
}

/* A synthetic trace: 1 MoE layer (layer 1 of 2), E experts, k = 1, tokens pick experts[t]. */
static uint8_t *synth(int E, int n, const int *experts, int with_pred, size_t *len)
{
	struct expert_trace_shape s = {2, 1, (uint32_t)E, 1, 256, 128, 1000000, 2000000, 500000};
	size_t rb = 8 + 16;
	uint8_t *b = malloc(EXPERT_TRACE_HDR_BYTES + rb * (size_t)n);
	expert_trace_encode_header(&s, b);
	for (int t = 0; t < n; t++) {
		int32_t e = experts[t];
		expert_trace_encode_record(1, 1, t, &e, NULL, with_pred ? &e : NULL, NULL,
					   b + EXPERT_TRACE_HDR_BYTES + rb * (size_t)t);
	}
	*len = EXPERT_TRACE_HDR_BYTES + rb * (size_t)n;
	return b;
}

static void test_sim_known(void **st)
{
	(void)st;
	enum { E = 8, N = 400, S = 4 };
	int ex[N];
	for (int t = 0; t < N; t++)
		ex[t] = t % (S + 1); /* cyclic over 5 experts with 4 slots */
	size_t len;
	uint8_t *b = synth(E, N, ex, 1, &len);
	struct expert_trace t;
	char err[256];
	assert_int_equal(expert_trace_parse(b, len, "synth", &t, err, sizeof err), 0);
	struct expert_sim_cfg cfg = {
	    .n_slots = S, .card_bw = 100e9, .link_bw = 10e9, .host_bw = 5e9, .desc_lat = 1e-6};
	struct expert_sim_result lru, bel, pf, host;
	cfg.policy = EXPERT_POLICY_LRU;
	assert_int_equal(expert_sim_run(&t, &cfg, &lru), 0);
	cfg.policy = EXPERT_POLICY_BELADY;
	assert_int_equal(expert_sim_run(&t, &cfg, &bel), 0);
	cfg.policy = EXPERT_POLICY_LRU;
	cfg.lookahead = 1;
	assert_int_equal(expert_sim_run(&t, &cfg, &pf), 0);
	cfg.lookahead = 0;
	cfg.host_exec = 1;
	assert_int_equal(expert_sim_run(&t, &cfg, &host), 0);
	/* LRU on a cycle one longer than the cache never hits */
	if (lru.hits != 0)
		fail_msg("LRU hits %llu on the cyclic trace, expected 0",
			 (unsigned long long)lru.hits);
	/* Belady: after the 5 cold misses, one miss per 4 accesses (S-1 of S hit) */
	double want = (double)(N - (S + 1)) * (S - 1) / S / N;
	if (fabs(bel.hit_rate - want) > 0.01)
		fail_msg("Belady hit rate %.4f, expected %.4f", bel.hit_rate, want);
	/* perfect predictions: every demand access is a prefetched hit */
	if (pf.hit_rate < 0.999 || pf.prefetch_used != N)
		fail_msg("prefetch with perfect prediction: hit %.4f, used %llu of %d", pf.hit_rate,
			 (unsigned long long)pf.prefetch_used, N);
	if (host.tok_s + 1e-9 < host.host_tok_s || host.tok_s + 1e-9 < lru.tok_s)
		fail_msg("host execution: %.1f tok/s modeled, all-host %.1f, no host exec %.1f",
			 host.tok_s, host.host_tok_s, lru.tok_s);
	/* ideal: every token 2 MB resident + 1 MB expert + 0.5 MB other at 100 GB/s */
	if (fabs(lru.ideal_s - N * 3.5e6 / 100e9) > 1e-9)
		fail_msg("ideal time %.9f s, expected %.9f", lru.ideal_s, N * 3.5e6 / 100e9);
	if (lru.miss_dma != N || fabs(lru.dma_bytes - N * 1e6) > 1)
		fail_msg("LRU DMA'd %llu experts / %.0f bytes, expected %d / %d",
			 (unsigned long long)lru.miss_dma, lru.dma_bytes, N, N * 1000000);
	print_message("cyclic trace: LRU %.3f, Belady %.3f (expected %.3f), prefetch %.3f; "
		      "modeled tok/s %.0f, +host %.0f, all-host %.0f\n",
		      lru.hit_rate, bel.hit_rate, want, pf.hit_rate, lru.tok_s, host.tok_s,
		      host.host_tok_s);
	/* hybrid with a host faster than the link: no miss waits for a DMA (all DMA time hidden),
	 * misses are filled behind the card's work, and Belady's admission keeps the hit rate */
	struct expert_sim_cfg hc = {.n_slots = S,
				    .card_bw = 100e9,
				    .link_bw = 100e9,
				    .host_bw = 200e9,
				    .desc_lat = 1e-6,
				    .host_exec = 1,
				    .policy = EXPERT_POLICY_BELADY};
	struct expert_sim_result hy, bpf;
	assert_int_equal(expert_sim_run(&t, &hc, &hy), 0);
	if (hy.miss_dma != 0 || hy.dma_wait_s != 0 || hy.dma_hidden != 1 || hy.bg_fills == 0 ||
	    hy.miss_host + hy.hits != N)
		fail_msg(
		    "hybrid: %llu DMA misses, wait %.9f s, hidden %.3f, %llu background fills, "
		    "%llu host + %llu hits of %d",
		    (unsigned long long)hy.miss_dma, hy.dma_wait_s, hy.dma_hidden,
		    (unsigned long long)hy.bg_fills, (unsigned long long)hy.miss_host,
		    (unsigned long long)hy.hits, N);
	if (hy.tok_s < lru.tok_s || hy.hit_rate < bel.hit_rate - 0.01)
		fail_msg(
		    "hybrid Belady: %.1f tok/s (card-only LRU %.1f), hit %.3f (card-only %.3f)",
		    hy.tok_s, lru.tok_s, hy.hit_rate, bel.hit_rate);
	/* Belady with perfect look-ahead: every access lands prefetched, nothing is wasted */
	cfg.host_exec = 0;
	cfg.policy = EXPERT_POLICY_BELADY;
	cfg.lookahead = 1;
	assert_int_equal(expert_sim_run(&t, &cfg, &bpf), 0);
	if (bpf.hit_rate < 0.999 || bpf.prefetch_wasted != 0 || bpf.miss_dma != 0)
		fail_msg("Belady+prefetch: hit %.4f, wasted %llu, DMA misses %llu", bpf.hit_rate,
			 (unsigned long long)bpf.prefetch_wasted, (unsigned long long)bpf.miss_dma);
	cfg.policy = EXPERT_POLICY_LRU;
	/* a trace without predictions cannot run look-ahead */
	expert_trace_free(&t);
	free(b);
	b = synth(E, N, ex, 0, &len);
	assert_int_equal(expert_trace_parse(b, len, "synth", &t, err, sizeof err), 0);
	cfg.lookahead = 1;
	assert_int_equal(expert_sim_run(&t, &cfg, &pf), -EINVAL);
	expert_trace_free(&t);
	free(b);
}

static void put32le(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void test_reader_rejects(void **st)
{
	(void)st;
	int ex[4] = {0, 1, 2, 3};
	size_t len;
	uint8_t *good = synth(8, 4, ex, 1, &len);
	struct {
		size_t off;
		uint32_t val;
		long cut;
		const char *field;
	} cases[] = {
	    {0, 0x12345678, 0, "magic"},	   {4, 2, 0, "version"},
	    {8, 0, 0, "num_hidden_layers"},	   {12, 2, 0, "first_k_dense_replace"},
	    {16, 0, 0, "n_routed_experts"},	   {20, 9, 0, "num_experts_per_tok"},
	    {56, 40, 0, "record_bytes"},	   {60, 1, 0, "flags"},
	    {64, 0, 0, "record 0: layer"},	   {64 + 24 + 4, (uint32_t)-3, 0, "record 1: pos"},
	    {64 + 8, 8, 0, "record 0: expert[0]"}, {0, 0, 5, "records"},
	    {0, 0, (long)len - 10, "header"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t *b = malloc(len);
		memcpy(b, good, len);
		size_t n = len;
		if (cases[i].cut)
			n = len - (size_t)cases[i].cut;
		else
			put32le(b + cases[i].off, cases[i].val);
		struct expert_trace t;
		char err[256] = "";
		int r = expert_trace_parse(b, n, "f.xt", &t, err, sizeof err);
		if (r != -EINVAL || strncmp(err, "f.xt: ", 6) || !strstr(err, cases[i].field))
			fail_msg("case %zu (%s): rc %d, message '%s'", i, cases[i].field, r, err);
		free(b);
	}
	/* a duplicated expert within one record */
	struct expert_trace_shape s = {2, 1, 8, 2, 256, 128, 1000, 0, 0};
	uint8_t b[EXPERT_TRACE_HDR_BYTES + 40];
	int32_t dup[2] = {3, 3};
	expert_trace_encode_header(&s, b);
	expert_trace_encode_record(2, 1, 0, dup, NULL, NULL, NULL, b + EXPERT_TRACE_HDR_BYTES);
	struct expert_trace t;
	char err[256] = "";
	assert_int_equal(expert_trace_parse(b, sizeof b, "d.xt", &t, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "chosen twice"));
	print_message("%zu corruptions rejected with the field named\n",
		      sizeof cases / sizeof cases[0] + 1);
	free(good);
}

static void test_layout_671b(void **st)
{
	(void)st;
	struct config c = {0};
	c.hidden_size = 7168;
	c.moe_intermediate_size = 2048;
	struct expert_slot_layout l;
	assert_int_equal(expert_slot_layout_init(&c, &l), 0);
	/* 3 x 7168 x 2048 codes + 3 x 16 x 56 f32 scales */
	uint64_t want = 3ull * 7168 * 2048 + 3ull * 16 * 56 * 4;
	assert_int_equal(l.payload, want);
	assert_int_equal(l.bytes % EXPERT_SLOT_PAGE, 0);
	for (int p = 0; p < EXPERT_SLOT_PARTS; p++) {
		if (p != 1 && p != 4)
			assert_int_equal(l.off[p] % EXPERT_SLOT_ALIGN, 0);
		if (p && l.off[p] < l.off[p - 1] + l.len[p - 1])
			fail_msg("part %d overlaps part %d", p, p - 1);
	}
	/* the SiLU*up operand pair is contiguous (fp8_gemm w2 = w + N*K) */
	assert_int_equal(l.off[1], l.off[0] + l.len[0]);
	assert_int_equal(l.off[4], l.off[3] + l.len[3]);
	assert_true(l.off[5] + l.len[5] <= l.bytes);
	print_message("671B expert slot: %.2f MB payload, %llu bytes per slot\n", l.payload / 1e6,
		      (unsigned long long)l.bytes);
}

/* Tiny model experts: DMA into card slots (emul), then the cpu kernels on the slot view. */
static void test_dma_slots_tiny(void **st)
{
	(void)st;
	char dir[256], err[512], cmd[300];
	const char *b = getenv("B") ? getenv("B") : "build";
	snprintf(dir, sizeof dir, "%s/tmp/test_expert_cache_%d", b, (int)getpid());
	struct ckpt ck;
	if (testckpt_write(dir, "tiny", 21, NULL, 0, err, sizeof err) ||
	    ckpt_open(dir, &ck, err, sizeof err))
		fail_msg("tiny: %s", err);
	const struct config *c = &ck.cfg;
	struct expert_slot_layout l;
	assert_int_equal(expert_slot_layout_init(c, &l), 0);
	enum { NB = 4, SLOTS = 6 };
	struct dma_bank banks[NB];
	for (int i = 0; i < NB; i++)
		banks[i] = (struct dma_bank){
		    .base = (uint64_t)i << 28, .size = 2 * l.bytes, .mem_group = -1, .name = "HBM"};
	struct dma_config dc = {.banks = banks, .n_banks = NB, .n_channels = 2};
	struct dma_dev *dev;
	if (dma_dev_open(&dma_emul_i, &dc, &dev, err, sizeof err))
		fail_msg("dma: %s", err);
	/* a cache of 6 slots over 4 banks; stream 24 (layer, expert) accesses through it */
	struct expert_cache cache;
	int L = c->num_hidden_layers, E = c->n_routed_experts, D = c->hidden_size;
	assert_int_equal(expert_cache_init(&cache, L, E, SLOTS, EXPERT_POLICY_LRU), 0);
	float *x = malloc(sizeof(float) * D), *y0 = calloc(D, sizeof(float)),
	      *y1 = calloc(D, sizeof(float));
	int I = c->moe_intermediate_size;
	float *g0 = malloc(sizeof(float) * I), *u0 = malloc(sizeof(float) * I);
	for (int i = 0; i < D; i++)
		x[i] = sinf(0.37f * i) * 2.0f;
	int dmas = 0, hits = 0;
	for (int a = 0; a < 24; a++) {
		int layer = c->first_k_dense_replace + a % (L - c->first_k_dense_replace);
		int e = a % 2 ? (a * 7) % E : 0; /* expert 0 of each layer is hot */
		const struct ffn_weights *f = &ck.w.layers[layer].experts[e];
		int s = expert_cache_access(&cache, layer, e, 0);
		if (s < 0) {
			s = expert_cache_fill(&cache, layer, e, 0, 0, NULL);
			assert_true(s >= 0);
			struct dma_sg sg[EXPERT_SLOT_PARTS];
			uint32_t bank = (uint32_t)(s % NB);
			uint64_t off = (uint64_t)(s / NB) * l.bytes;
			assert_int_equal(expert_slot_sg(f, &l, bank, off, sg), EXPERT_SLOT_PARTS);
			struct dma_xfer xf = {.dir = DMA_DIR_H2C,
					      .sg = sg,
					      .n_sg = EXPERT_SLOT_PARTS,
					      .cookie = (uint64_t)a};
			struct dma_cpl cpl;
			int r = dma_copy_sync(dev, (unsigned)(s % 2), &xf, 0, 2000000000LL, &cpl);
			if (r)
				fail_msg("DMA of layer %d expert %d: %d (%s)", layer, e, r,
					 dma_status_str(cpl.status));
			assert_int_equal(cpl.bytes, l.payload);
			dmas++;
		} else {
			hits++;
		}
		expert_cache_unlock(&cache);
		const uint8_t *base = (const uint8_t *)dma_dev_bank_ptr(dev, (unsigned)(s % NB)) +
				      (uint64_t)(s / NB) * l.bytes;
		if (memcmp(base + l.off[0], f->gate.w, l.len[0]) ||
		    memcmp(base + l.off[5], f->down.scale, l.len[5]))
			fail_msg("slot %d does not hold layer %d expert %d", s, layer, e);
		struct ffn_weights v;
		assert_int_equal(expert_slot_view(&l, base, f, &v), 0);
		/* the expert FFN from the checkpoint and from the slot: identical bits */
		const struct ffn_weights *src[2] = {f, &v};
		float *out[2] = {y0, y1};
		for (int q = 0; q < 2; q++) {
			assert_int_equal(kern_matmul_simple(&src[q]->gate, x, 1, g0, 1, 0), 0);
			assert_int_equal(kern_matmul_simple(&src[q]->up, x, 1, u0, 1, 0), 0);
			for (int i = 0; i < I; i++)
				g0[i] = g0[i] / (1.0f + expf(-g0[i])) * u0[i];
			assert_int_equal(kern_matmul_simple(&src[q]->down, g0, 1, out[q], 1, 0), 0);
		}
		if (memcmp(y0, y1, sizeof(float) * D))
			fail_msg("layer %d expert %d: slot output differs from the checkpoint's",
				 layer, e);
	}
	print_message("24 accesses through 6 slots: %d DMAs (%.1f KB each), %d hits, outputs "
		      "bit-identical\n",
		      dmas, l.payload / 1e3, hits);
	assert_int_equal(dmas + hits, 24);
	assert_true(hits > 0 && dmas > SLOTS);
	free(x);
	free(y0);
	free(y1);
	free(g0);
	free(u0);
	expert_cache_free(&cache);
	dma_dev_close(dev);
	ckpt_close(&ck);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lru_order),		cmocka_unit_test(test_lfu_order),
	    cmocka_unit_test(test_belady_order),	cmocka_unit_test(test_pin_and_lock),
	    cmocka_unit_test(test_prefetch_accounting), cmocka_unit_test(test_sim_known),
	    cmocka_unit_test(test_reader_rejects),	cmocka_unit_test(test_layout_671b),
	    cmocka_unit_test(test_dma_slots_tiny),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
