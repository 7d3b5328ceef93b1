/*
 * cli_cache_sim.c - `moecard cache-sim`: replays a routing trace (moecard run --expert-trace F,
 * expert_trace.h) under every expert-cache policy (expert_cache.h) and prints hit rate, bytes
 * DMA'd, modeled stall time and modeled decode tokens/s, with and without host execution of
 * misses, against Belady's MIN; then the same for the 671B shapes (44 MB experts over PCIe Gen3
 * and Gen4 x16). Card and link figures come from the board dts; all times are modeled.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "board.h"
#include "cli.h"
#include "dma.h"
#include "expert_cache.h"
#include "expert_trace.h"
#include "kernels.h"

struct sim_policy {
	const char *name;
	enum expert_policy p;
	int lookahead;
};

static const struct sim_policy policies[] = {
	{ "lru", EXPERT_POLICY_LRU, 0 },      { "lfu", EXPERT_POLICY_LFU, 0 },
	{ "pin", EXPERT_POLICY_PIN, 0 },      { "lru+prefetch1", EXPERT_POLICY_LRU, 1 },
	{ "lru+prefetch2", EXPERT_POLICY_LRU, 2 }, { "pin+prefetch1", EXPERT_POLICY_PIN, 1 },
	{ "belady", EXPERT_POLICY_BELADY, 0 },
};
#define N_POLICIES (int)(sizeof policies / sizeof policies[0])

static void usage(FILE *f)
{
	fprintf(f, "usage: moecard cache-sim --trace F [--slots N|P%%] [--board FILE.dtb]\n"
		   "         [--policy NAME] [--host-gbps G] [--link-gbps G] [--sweep] [--json]\n"
		   "         [--events F.jsonl] [--no-671b]\n"
		   "policies: lru lfu pin lru+prefetch1 lru+prefetch2 pin+prefetch1 belady\n"
		   "All times are modeled (card memory bandwidth from the board, PCIe link, host\n"
		   "GEMV rate), not measured.\n");
}

/* Host FP8 expert GEMV rate, weight bytes/s, measured with the cpu kernels on one thread. */
static double measure_host_bw(void)
{
	int rows = 1024, cols = 2048, sc = cols / 128;
	uint8_t *w = malloc((size_t)rows * cols);
	float *s = malloc(sizeof(float) * (size_t)(rows / 128) * sc);
	float *x = malloc(sizeof(float) * (size_t)cols), *y = malloc(sizeof(float) * (size_t)rows);
	double bw = 0;
	if (w && s && x && y) {
		for (size_t i = 0; i < (size_t)rows * cols; i++)
			w[i] = (uint8_t)((i * 2654435761u) >> 13) & 0x77;
		for (int i = 0; i < (rows / 128) * sc; i++)
			s[i] = 0.01f;
		for (int i = 0; i < cols; i++)
			x[i] = (float)((i % 7) - 3);
		struct qmat q = { rows, cols, QMAT_FP8, w, s, sc, "probe" };
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		int reps = 16;
		for (int r = 0; r < reps; r++)
			kern_matmul_simple(&q, x, 1, y, 1, 0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		double dt = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
		bw = dt > 0 ? (double)reps * rows * cols / dt : 0;
	}
	free(w);
	free(s);
	free(x);
	free(y);
	return bw > 0 ? bw : 1e9;
}

static int moe_layers(const struct expert_trace_shape *s) { return (int)(s->n_layers - s->first_dense); }

static void print_row(const char *label, const struct expert_sim_result *r,
		      const struct expert_sim_result *rh, int json, const char *scope, int slots)
{
	if (json) {
		printf("{\"scope\":\"%s\",\"policy\":\"%s\",\"slots\":%d,\"hit_rate\":%.4f,"
		       "\"dma_bytes_per_token\":%.0f,\"dma_hidden\":%.4f,"
		       "\"modeled_stall_ms_per_token\":%.4f,\"modeled_tok_s\":%.3f,"
		       "\"modeled_tok_s_host_exec\":%.3f,\"modeled_all_host_tok_s\":%.3f,"
		       "\"modeled_all_resident_tok_s\":%.3f,\"host_misses\":%llu,"
		       "\"prefetch_used\":%llu,\"prefetch_wasted\":%llu}\n",
		       scope, label, slots, r->hit_rate, r->dma_bytes_per_token, r->dma_hidden,
		       r->tokens ? r->stall_s / (double)r->tokens * 1e3 : 0, r->tok_s, rh->tok_s,
		       rh->host_tok_s, r->ideal_tok_s, (unsigned long long)rh->miss_host, (unsigned long long)r->prefetch_used,
		       (unsigned long long)r->prefetch_wasted);
		return;
	}
	printf("  %-14s %6.1f%%  %10.2f  %6.1f%%  %10.3f  %10.2f  %10.2f  %5llu/%-5llu\n", label,
	       100 * r->hit_rate, r->dma_bytes_per_token / 1e6, 100 * r->dma_hidden,
	       r->tokens ? r->stall_s / (double)r->tokens * 1e3 : 0, r->tok_s, rh->tok_s,
	       (unsigned long long)r->prefetch_used, (unsigned long long)r->prefetch_wasted);
}

static void print_head(int json)
{
	if (!json)
		printf("  %-14s %7s  %10s  %7s  %10s  %10s  %10s  %s\n", "policy", "hit", "DMA MB/tok",
		       "hidden", "stall ms/t", "tok/s", "+host tok/s", "prefetch used/wasted");
}

/* Runs every selected policy (with and without host execution) at slots; prints rows.
 * Returns 0 or the first error. hit[] gets the hit rate per policy. */
static int run_policies(const struct expert_trace *t, struct expert_sim_cfg base, int slots,
			const char *only, int json, const char *scope, FILE *events, double *hit)
{
	int has_pred = 0;
	for (size_t i = 0; i < t->n && !has_pred; i++)
		has_pred = t->pred1[i * t->s.k] >= 0;
	print_head(json);
	for (int p = 0; p < N_POLICIES; p++) {
		if (only && strcmp(only, policies[p].name))
			continue;
		if (policies[p].lookahead && !has_pred)
			continue;
		struct expert_sim_cfg c = base;
		struct expert_sim_result r, rh;
		c.policy = policies[p].p;
		c.lookahead = policies[p].lookahead;
		c.n_slots = slots;
		c.events = events;
		int rc = expert_sim_run(t, &c, &r);
		c.events = NULL;
		c.host_exec = 1;
		if (!rc)
			rc = expert_sim_run(t, &c, &rh);
		if (rc)
			return rc;
		if (hit)
			hit[p] = r.hit_rate;
		print_row(policies[p].name, &r, &rh, json, scope, slots);
		events = NULL; /* the decision trace is the first policy's */
	}
	return 0;
}

int cli_cache_sim(int argc, char **argv)
{
	const char *trace = NULL, *board_path = NULL, *slots_s = NULL, *only = NULL, *events_p = NULL;
	double host_gbps = 0, link_gbps = 0;
	int json = 0, sweep = 0, what_if = 1;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(o, "--json")) {
			json = 1;
		} else if (!strcmp(o, "--sweep")) {
			sweep = 1;
		} else if (!strcmp(o, "--no-671b")) {
			what_if = 0;
		} else if (v && !strcmp(o, "--trace")) {
			trace = argv[++i];
		} else if (v && !strcmp(o, "--board")) {
			board_path = argv[++i];
		} else if (v && !strcmp(o, "--slots")) {
			slots_s = argv[++i];
		} else if (v && !strcmp(o, "--policy")) {
			only = argv[++i];
		} else if (v && !strcmp(o, "--events")) {
			events_p = argv[++i];
		} else if (v && !strcmp(o, "--host-gbps")) {
			host_gbps = strtod(argv[++i], NULL);
		} else if (v && !strcmp(o, "--link-gbps")) {
			link_gbps = strtod(argv[++i], NULL);
		} else {
			fprintf(stderr, "moecard: cache-sim: unknown option or missing value '%s'\n", o);
			usage(stderr);
			return 2;
		}
	}
	if (!trace) {
		fprintf(stderr, "moecard: cache-sim: --trace F is required\n");
		return 2;
	}
	if (only) {
		int ok = 0;
		for (int p = 0; p < N_POLICIES; p++)
			ok |= !strcmp(only, policies[p].name);
		if (!ok) {
			fprintf(stderr, "moecard: cache-sim: --policy: unknown policy '%s'\n", only);
			return 2;
		}
	}
	char err[512];
	struct expert_trace t;
	if (expert_trace_load(trace, &t, err, sizeof err)) {
		fprintf(stderr, "moecard: %s\n", err);
		return 1;
	}
	int rc = 1, E = (int)t.s.n_experts, nmoe = moe_layers(&t.s);
	int total = E * nmoe, slots = 0;
	FILE *events = NULL;
	struct board_desc *b = calloc(1, sizeof *b);
	if (!b)
		goto out;
	const char *bp = board_path ? board_path : "build/board/emu.dtb";
	int have_board = 0;
	if (board_path || access(bp, R_OK) == 0) {
		int r = board_load(bp, b, err, sizeof err);
		if (r) {
			fprintf(stderr, "moecard: %s\n", err);
			goto out;
		}
		have_board = 1;
	}
	double card_bw = have_board ? (double)b->mem_bw_mbps * 1e6 : 460e9;
	double link_bw = link_gbps > 0	? link_gbps * 1e9
			 : have_board	? (double)b->pcie_bw_mbps * 1e6
					: DMA_LINK_PCIE_GEN3_X16;
	double host_bw = host_gbps > 0 ? host_gbps * 1e9
				       : measure_host_bw() * (double)sysconf(_SC_NPROCESSORS_ONLN);
	if (slots_s) {
		char *end;
		double v = strtod(slots_s, &end);
		if (end == slots_s || (*end && strcmp(end, "%")) || !(v > 0)) {
			fprintf(stderr, "moecard: cache-sim: --slots: expected N or P%%, got '%s'\n",
				slots_s);
			rc = 2;
			goto out;
		}
		slots = *end == '%' ? (int)(v / 100 * total + 0.5) : (int)v;
		if (slots < 1)
			slots = 1;
	} else if (have_board) {
		struct board_fit fit;
		uint64_t resident = t.s.layer_bytes * (uint64_t)nmoe + t.s.other_bytes;
		struct expert_slot_layout lay;
		struct config cc = { 0 };
		cc.hidden_size = (int)t.s.hidden;
		cc.moe_intermediate_size = (int)t.s.moe_inter;
		expert_slot_layout_init(&cc, &lay);
		board_fit_compute(b, resident, lay.bytes, 1, 0, &fit);
		slots = fit.expert_slots > (uint64_t)total ? total : (int)fit.expert_slots;
		printf("slots from the board: %llu fit after the resident set (%.1f MB); using %d\n",
		       (unsigned long long)fit.expert_slots, resident / 1e6, slots);
	} else {
		slots = total / 4;
	}
	if (slots > total)
		slots = total;
	if (slots < 1)
		slots = 1;
	if (events_p && !(events = fopen(events_p, "w"))) {
		fprintf(stderr, "moecard: cache-sim: --events %s: %s\n", events_p, strerror(errno));
		goto out;
	}
	struct expert_trace_acc acc;
	expert_trace_accuracy(&t, &acc);
	size_t tokens = 0; /* records of the first MoE layer */
	for (size_t i = 0; i < t.n; i++)
		tokens += t.layer[i] == (int32_t)t.s.first_dense;
	if (!json) {
		printf("trace %s: %zu records, %zu tokens, %d MoE layers x %d experts top-%u, "
		       "expert %.2f MB\n",
		       trace, t.n, tokens, nmoe, E, t.s.k, t.s.expert_bytes / 1e6);
		printf("look-ahead prediction (measured on the trace): distance 1 recall %.1f%% "
		       "(exact %.1f%%, %zu records), distance 2 recall %.1f%% (exact %.1f%%, %zu)\n",
		       100 * acc.recall1, 100 * acc.exact1, acc.n1, 100 * acc.recall2,
		       100 * acc.exact2, acc.n2);
		printf("modeled: card memory %.1f GB/s, link %.1f GB/s, host expert GEMV %.1f GB/s%s\n",
		       card_bw / 1e9, link_bw / 1e9, host_bw / 1e9,
		       host_gbps > 0 ? "" : " (measured 1 thread x online cores)");
		printf("\n%d slots of %d experts (%.0f%%), modeled:\n", slots, total,
		       100.0 * slots / total);
	}
	struct expert_sim_cfg base = { .card_bw = card_bw, .link_bw = link_bw, .host_bw = host_bw,
				       .desc_lat = DMA_DESC_LATENCY_DEF_NS * 1e-9 };
	double hit[N_POLICIES];
	if ((rc = run_policies(&t, base, slots, only, json, "trace", events, hit))) {
		fprintf(stderr, "moecard: cache-sim: %s: replay failed: %s\n", trace, strerror(-rc));
		rc = 1;
		goto out;
	}
	{
		struct expert_sim_result ri;
		struct expert_sim_cfg ci = base;
		ci.n_slots = total;
		if (!expert_sim_run(&t, &ci, &ri) && !json)
			printf("  all resident: modeled %.2f tok/s; all on the host: modeled %.2f tok/s\n",
			       ri.ideal_tok_s, ri.host_tok_s);
	}
	if (sweep) {
		static const int pct[] = { 10, 25, 50 };
		for (int q = 0; q < 3; q++) {
			int s = (int)(pct[q] / 100.0 * total + 0.5);
			s = s < 1 ? 1 : s;
			if (!json)
				printf("\n%d%% capacity (%d slots), modeled:\n", pct[q], s);
			double h[N_POLICIES] = { 0 };
			if (run_policies(&t, base, s, only, json, "trace", NULL, h))
				goto out;
			double best = 0;
			for (int p = 0; p + 1 < N_POLICIES; p++)
				best = h[p] > best ? h[p] : best;
			if (!json && !only)
				printf("  best online hit %.1f%% vs Belady %.1f%%: %.1f points\n",
				       100 * best, 100 * h[N_POLICIES - 1],
				       100 * (h[N_POLICIES - 1] - best));
		}
	}
	if (what_if) {
		struct config c = { 0 };
		c.hidden_size = 7168;
		c.intermediate_size = 18432;
		c.moe_intermediate_size = 2048;
		c.num_hidden_layers = 61;
		c.first_k_dense_replace = 3;
		c.num_attention_heads = 128;
		c.q_lora_rank = 1536;
		c.kv_lora_rank = 512;
		c.qk_nope_head_dim = 128;
		c.qk_rope_head_dim = 64;
		c.v_head_dim = 128;
		c.n_routed_experts = 256;
		c.num_experts_per_tok = 8;
		c.n_shared_experts = 1;
		c.vocab_size = 129280;
		struct expert_trace_shape s;
		expert_trace_shape_from_config(&c, &s);
		struct expert_sim_cfg w = base;
		w.expert_bytes = s.expert_bytes;
		w.layer_bytes = s.layer_bytes;
		w.other_bytes = s.other_bytes;
		w.layer_scale = (double)(s.n_layers - s.first_dense) / nmoe;
		static const double links[2] = { DMA_LINK_PCIE_GEN3_X16, DMA_LINK_PCIE_GEN4_X16 };
		for (int g = 0; g < 2; g++) {
			w.link_bw = links[g];
			if (!json)
				printf("\n671B what-if (modeled): %.1f MB experts, %.0f MB/layer resident, "
				       "58 MoE layers (trace routing, each traced layer stands for %.2f),\n"
				       "  PCIe Gen%d x16 %.0f GB/s, card %.0f GB/s, host %.1f GB/s, same "
				       "slot fraction %.0f%%:\n",
				       s.expert_bytes / 1e6, s.layer_bytes / 1e6, w.layer_scale, 3 + g,
				       links[g] / 1e9, card_bw / 1e9, host_bw / 1e9, 100.0 * slots / total);
			if (run_policies(&t, w, slots, only, json, g ? "671b_gen4" : "671b_gen3", NULL,
					 NULL))
				goto out;
			struct expert_sim_result ri;
			w.n_slots = total;
			if (!expert_sim_run(&t, &w, &ri) && !json)
				printf("  all resident: modeled %.2f tok/s; all on the host: modeled "
				       "%.2f tok/s\n",
				       ri.ideal_tok_s, ri.host_tok_s);
		}
	}
	rc = 0;
out:
	if (events)
		fclose(events);
	free(b);
	expert_trace_free(&t);
	return rc;
}
