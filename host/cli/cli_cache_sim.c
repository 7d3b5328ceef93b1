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
#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "dma.h"
#include "sched/expert_cache.h"
#include "sched/expert_trace.h"
#include "model/kernels.h"
#include "model/pool.h"

struct sim_policy {
	const char *name;
	enum expert_policy p;
	int lookahead;
};

/* Online policies first, then the offline optima (BELADY: eviction and admission by the true
 * next use) with the same look-ahead prefetches, which bound what each online row can reach. */
static const struct sim_policy policies[] = {
    {"lru", EXPERT_POLICY_LRU, 0},
    {"lfu", EXPERT_POLICY_LFU, 0},
    {"pin", EXPERT_POLICY_PIN, 0},
    {"lru+prefetch1", EXPERT_POLICY_LRU, 1},
    {"lfu+prefetch1", EXPERT_POLICY_LFU, 1},
    {"pin+prefetch1", EXPERT_POLICY_PIN, 1},
    {"lfu+prefetch2", EXPERT_POLICY_LFU, 2},
    {"belady", EXPERT_POLICY_BELADY, 0},
    {"belady+prefetch1", EXPERT_POLICY_BELADY, 1},
    {"belady+prefetch2", EXPERT_POLICY_BELADY, 2},
};
#define N_POLICIES (int)(sizeof policies / sizeof policies[0])

static const struct cli_help_row cs_help[] = {
    {"--trace", "F", "the routing trace (moecard run --expert-trace F)", "required"},
    {"--slots", "N|P%", "card slots for routed experts",
     "what the board holds after the resident set, else 25%"},
    {"--board", "FILE.dtb", "card memory bandwidth, size and link", "build/board/emu.dtb"},
    {"--policy", "NAME", "only this policy (below)", "all"},
    {"--host-gbps", "G", "the host's expert GEMV rate, GB/s", "measured at start"},
    {"--link-gbps", "G", "the PCIe link, GB/s", "from the board"},
    {"--cpu-tok-s", "T", "a measured cpu-backend rate to compare with", "none"},
    {"--sweep", "", "also 10%, 25% and 50% of the experts", "off"},
    {"--events", "F.jsonl", "every cache decision of the replay", "off"},
    {"--no-671b", "", "skip the 671B what-if", "off"},
    {"--json", "", "machine-readable output on stdout", "off"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: moecard cache-sim --trace F [options]\n");
	cli_help_rows(f, cs_help, sizeof cs_help / sizeof cs_help[0]);
	fprintf(f, "policies: lru lfu pin lru+prefetch1 lfu+prefetch1 pin+prefetch1 lfu+prefetch2\n"
		   "          belady belady+prefetch1 belady+prefetch2 (offline optima)\n"
		   "All times are modeled (card memory bandwidth from the board, PCIe link, host\n"
		   "GEMV rate), not measured.\n");
}

/*
 * Host FP8 expert GEMV rate, weight bytes/s, measured with the cpu kernels on all online cores:
 * 48 matrices of 1024 x 1024 E4M3 (48 MiB, more than the last-level cache, as experts streamed
 * from the checkpoint are), one decode row each, the way a host-run miss executes.
 */
static double measure_host_bw(void)
{
	enum { NM = 48, R = 1024, C = 1024, SC = C / 128 };
	uint8_t *w = malloc((size_t)NM * R * C);
	float *s = malloc(sizeof(float) * (R / 128) * SC);
	float *x = malloc(sizeof(float) * C), *y = malloc(sizeof(float) * R);
	struct pool *p = pool_create((int)sysconf(_SC_NPROCESSORS_ONLN));
	struct kern_ctx k;
	double bw = 0;
	if (w && s && x && y && p && !kern_ctx_init(&k, p, 1, 0, 4 * C, C)) {
		for (size_t i = 0; i < (size_t)NM * R * C; i++)
			w[i] = (uint8_t)((i * 2654435761u) >> 13) & 0x77;
		for (int i = 0; i < (R / 128) * SC; i++)
			s[i] = 0.01f;
		for (int i = 0; i < C; i++)
			x[i] = (float)((i % 7) - 3);
		struct timespec a, b;
		int reps = 4;
		for (int r = -1; r < reps; r++) { /* r = -1 warms up */
			if (r == 0)
				clock_gettime(CLOCK_MONOTONIC, &a);
			for (int m = 0; m < NM; m++) {
				struct qmat q = {R, C,	QMAT_FP8, w + (size_t)m * R * C,
						 s, SC, "probe"};
				kern_matmul(&k, &q, x, 1, y);
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		double dt = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
		bw = dt > 0 ? (double)reps * NM * R * C / dt : 0;
		kern_ctx_free(&k);
	}
	if (p)
		pool_free(p);
	free(w);
	free(s);
	free(x);
	free(y);
	return bw > 0 ? bw : 1e9;
}

static int moe_layers(const struct expert_trace_shape *s)
{
	return (int)(s->n_layers - s->first_dense);
}

static void print_row(const char *label, const char *mode, const struct expert_sim_result *r,
		      int json, const char *scope, int slots)
{
	double tk = r->tokens ? (double)r->tokens : 1;
	if (json) {
		printf("{\"scope\":\"%s\",\"policy\":\"%s\",\"mode\":\"%s\",\"slots\":%d,"
		       "\"hit_rate\":%.4f,\"ready_rate\":%.4f,\"dma_bytes_per_token\":%.0f,"
		       "\"dma_hidden\":%.4f,\"modeled_dma_wait_ms_per_token\":%.4f,"
		       "\"modeled_stall_ms_per_token\":%.4f,\"modeled_tok_s\":%.3f,"
		       "\"modeled_all_host_tok_s\":%.3f,\"modeled_all_resident_tok_s\":%.3f,"
		       "\"miss_dma\":%llu,\"miss_host\":%llu,\"late_host\":%llu,\"bg_fills\":%llu,"
		       "\"prefetch_issued\":%llu,\"prefetch_used\":%llu,\"prefetch_wasted\":%llu,"
		       "\"prefetch_skipped\":%llu}\n",
		       scope, label, mode, slots, r->hit_rate, r->ready_rate,
		       r->dma_bytes_per_token, r->dma_hidden, r->dma_wait_s / tk * 1e3,
		       r->stall_s / tk * 1e3, r->tok_s, r->host_tok_s, r->ideal_tok_s,
		       (unsigned long long)r->miss_dma, (unsigned long long)r->miss_host,
		       (unsigned long long)r->late_host, (unsigned long long)r->bg_fills,
		       (unsigned long long)r->prefetch_issued, (unsigned long long)r->prefetch_used,
		       (unsigned long long)r->prefetch_wasted, (unsigned long long)r->pf_skipped);
		return;
	}
	printf("  %-17s %-5s %6.1f%% %6.1f%%  %9.2f  %6.1f%%  %9.3f  %9.2f  %8.2f  %6llu/%-6llu\n",
	       label, mode, 100 * r->hit_rate, 100 * r->ready_rate, r->dma_bytes_per_token / 1e6,
	       100 * r->dma_hidden, r->stall_s / tk * 1e3, r->tok_s,
	       (double)(r->miss_host + r->late_host) / tk, (unsigned long long)r->prefetch_used,
	       (unsigned long long)r->prefetch_wasted);
}

static void print_head(int json)
{
	if (!json)
		printf("  %-17s %-5s %7s %7s  %9s  %7s  %9s  %9s  %8s  %s\n", "policy", "mode",
		       "hit", "ready", "DMA MB/t", "hidden", "stall ms", "tok/s", "host/tok",
		       "prefetch used/wasted");
}

/* Card-only (misses wait for their DMA) and hybrid (host execution of misses) per policy. */
struct scope_res {
	int ran[N_POLICIES];
	struct expert_sim_result card[N_POLICIES], hyb[N_POLICIES];
};

/* Runs every selected policy in both modes at slots; prints rows. 0 or the first error. */
static int run_policies(const struct expert_trace *t, struct expert_sim_cfg base, int slots,
			const char *only, int json, const char *scope, FILE *events,
			struct scope_res *sr)
{
	int has_pred = 0;
	for (size_t i = 0; i < t->n && !has_pred; i++)
		has_pred = t->pred1[i * t->s.k] >= 0;
	memset(sr, 0, sizeof *sr);
	print_head(json);
	for (int p = 0; p < N_POLICIES; p++) {
		if (only && strcmp(only, policies[p].name))
			continue;
		if (policies[p].lookahead && !has_pred)
			continue;
		struct expert_sim_cfg c = base;
		c.policy = policies[p].p;
		c.lookahead = policies[p].lookahead;
		c.n_slots = slots;
		c.events = events;
		int rc = expert_sim_run(t, &c, &sr->card[p]);
		c.events = NULL;
		c.host_exec = 1;
		if (!rc)
			rc = expert_sim_run(t, &c, &sr->hyb[p]);
		if (rc)
			return rc;
		sr->ran[p] = 1;
		print_row(policies[p].name, "card", &sr->card[p], json, scope, slots);
		print_row(policies[p].name, "+host", &sr->hyb[p], json, scope, slots);
		events = NULL; /* the decision trace is the first policy's */
	}
	return 0;
}

/*
 * The expert cache's three goals (docs/expert-cache.md) on one scope, from the rows just run:
 * (1) the best online policy's hit rate within 10 points of Belady's (MIN, and MIN given the same
 * look-ahead prefetches); (2) at least 80% of expert DMA time hidden (checked at 50% capacity);
 * (3) hybrid decode never slower than the all-host run (modeled, and measured when
 * cpu_tok_s > 0).
 */
static void print_goals(const struct scope_res *sr, int pct, double cpu_tok_s, int json,
			const char *scope)
{
	int best = -1, hid = -1, worst3 = -1, bel0 = -1, most = -1, dem = -1;
	for (int p = 0; p < N_POLICIES; p++) {
		if (!sr->ran[p])
			continue;
		if (policies[p].p == EXPERT_POLICY_BELADY) {
			if (!policies[p].lookahead)
				bel0 = p;
			continue;
		}
		if (best < 0 || sr->card[p].hit_rate > sr->card[best].hit_rate)
			best = p;
		if (!policies[p].lookahead &&
		    (dem < 0 || sr->card[p].hit_rate > sr->card[dem].hit_rate))
			dem = p;
		if (hid < 0 || sr->hyb[p].tok_s > sr->hyb[hid].tok_s)
			hid = p;
		if (most < 0 || sr->hyb[p].dma_hidden > sr->hyb[most].dma_hidden ||
		    (sr->hyb[p].dma_hidden == sr->hyb[most].dma_hidden &&
		     sr->hyb[p].tok_s > sr->hyb[most].tok_s))
			most = p;
		if (worst3 < 0 || sr->hyb[p].tok_s < sr->hyb[worst3].tok_s)
			worst3 = p;
	}
	if (best < 0 || bel0 < 0)
		return;
	int same = -1; /* Belady with the best policy's look-ahead */
	for (int p = 0; p < N_POLICIES; p++)
		if (sr->ran[p] && policies[p].p == EXPERT_POLICY_BELADY &&
		    policies[p].lookahead == policies[best].lookahead)
			same = p;
	double h = sr->card[best].hit_rate, hb = sr->card[bel0].hit_rate;
	double hs = same >= 0 ? sr->card[same].hit_rate : hb;
	const struct expert_sim_result *x = &sr->hyb[hid];
	double all_host = sr->hyb[worst3].host_tok_s, slow = sr->hyb[worst3].tok_s;
	const struct expert_sim_result *y = &sr->hyb[most];
	int g1 = h >= hb - 0.10 && h >= hs - 0.10, g2 = y->dma_hidden >= 0.80;
	int g3 = slow >= all_host && (cpu_tok_s <= 0 || slow >= cpu_tok_s);
	if (json) {
		printf("{\"scope\":\"%s\",\"goals\":%d,\"best_online\":\"%s\",\"best_online_hit\":%"
		       ".4f,"
		       "\"best_demand\":\"%s\",\"best_demand_hit\":%.4f,\"belady_hit\":%.4f,"
		       "\"belady_same_prefetch_hit\":%.4f,\"hit_goal_met\":%d,"
		       "\"fastest_hybrid\":\"%s\",\"fastest_hybrid_dma_hidden\":%.4f,"
		       "\"fastest_hybrid_tok_s\":%.3f,\"most_hidden_hybrid\":\"%s\","
		       "\"most_hidden_dma_hidden\":%.4f,\"most_hidden_tok_s\":%.3f,\"hidden_goal_"
		       "met\":%d,"
		       "\"slowest_hybrid_tok_s\":%.3f,\"all_host_tok_s\":%.3f,\"cpu_tok_s\":%.3f,"
		       "\"host_goal_met\":%d}\n",
		       scope, pct, policies[best].name, h, dem >= 0 ? policies[dem].name : "",
		       dem >= 0 ? sr->card[dem].hit_rate : 0, hb, hs, g1, policies[hid].name,
		       x->dma_hidden, x->tok_s, policies[most].name, y->dma_hidden, y->tok_s,
		       pct == 50 ? g2 : -1, slow, all_host, cpu_tok_s, g3);
		return;
	}
	printf("  hit rate: best online %s %.1f%% vs Belady %.1f%% (%+.1f points) and vs Belady "
	       "with the same prefetch %.1f%% (%+.1f)%s\n",
	       policies[best].name, 100 * h, 100 * hb, 100 * (h - hb), 100 * hs, 100 * (h - hs),
	       g1 ? "" : "; more than 10 points below Belady");
	if (dem >= 0)
		printf(
		    "    (without look-ahead the best is %s %.1f%%, %+.1f points from Belady: the "
		    "trace's next-token reuse is what only the future shows)\n",
		    policies[dem].name, 100 * sr->card[dem].hit_rate,
		    100 * (sr->card[dem].hit_rate - hb));
	printf("  DMA hidden: %s +host hides %.1f%% of its DMA time (%.2f tok/s); the fastest, "
	       "%s +host, %.1f%% (%.2f tok/s)%s\n",
	       policies[most].name, 100 * y->dma_hidden, y->tok_s, policies[hid].name,
	       100 * x->dma_hidden, x->tok_s,
	       pct == 50 && !g2 ? "; below 80% at half the experts" : "");
	printf("  hybrid vs all-host: slowest hybrid %s %.2f tok/s vs all-host modeled %.2f",
	       policies[worst3].name, slow, all_host);
	if (cpu_tok_s > 0)
		printf(", measured cpu backend %.2f", cpu_tok_s);
	printf("%s\n", g3 ? "" : "; the hybrid is slower than running every expert on the host");
}

/* The command line. */
struct cs_opts {
	const char *trace, *board_path, *slots_s, *only, *events_p;
	double host_gbps, link_gbps, cpu_tok_s;
	int json, sweep, what_if;
	int help; /* --help was printed */
};

/* Parses argv into o. Returns 0 (o->help set after --help), or -EINVAL on bad usage (said on
 * stderr). */
static int cs_parse(int argc, char **argv, struct cs_opts *o)
{
	*o = (struct cs_opts){.what_if = 1};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			o->help = 1;
			return 0;
		} else if (!strcmp(a, "--json")) {
			o->json = 1;
		} else if (!strcmp(a, "--sweep")) {
			o->sweep = 1;
		} else if (!strcmp(a, "--no-671b")) {
			o->what_if = 0;
		} else if (v && !strcmp(a, "--trace")) {
			o->trace = argv[++i];
		} else if (v && !strcmp(a, "--board")) {
			o->board_path = argv[++i];
		} else if (v && !strcmp(a, "--slots")) {
			o->slots_s = argv[++i];
		} else if (v && !strcmp(a, "--policy")) {
			o->only = argv[++i];
		} else if (v && !strcmp(a, "--events")) {
			o->events_p = argv[++i];
		} else if (v && !strcmp(a, "--host-gbps")) {
			if (cli_number("cache-sim", a, argv[++i], 0.001, 1e6, &o->host_gbps))
				return -EINVAL;
		} else if (v && !strcmp(a, "--cpu-tok-s")) {
			if (cli_number("cache-sim", a, argv[++i], 0, 1e9, &o->cpu_tok_s))
				return -EINVAL;
		} else if (v && !strcmp(a, "--link-gbps")) {
			if (cli_number("cache-sim", a, argv[++i], 0.001, 1e6, &o->link_gbps))
				return -EINVAL;
		} else {
			fprintf(stderr,
				"moecard: cache-sim: unknown option or missing value '%s'\n", a);
			usage(stderr);
			return -EINVAL;
		}
	}
	if (!o->trace) {
		fprintf(stderr, "moecard: cache-sim: --trace F is required\n");
		return -EINVAL;
	}
	if (o->only) {
		int ok = 0;
		for (int p = 0; p < N_POLICIES; p++)
			ok |= !strcmp(o->only, policies[p].name);
		if (!ok) {
			fprintf(stderr, "moecard: cache-sim: --policy: unknown policy '%s'\n",
				o->only);
			return -EINVAL;
		}
	}
	return 0;
}

/* One run of the command: the trace, the board and the modeled rates. */
struct cs_run {
	const struct cs_opts *o;
	struct expert_trace t;
	struct board_desc *b;
	const char *bp; /* board path */
	int have_board;
	int nmoe, total, slots; /* MoE layers, their experts, card slots */
	double card_bw, link_bw, host_bw;
	FILE *events;
	struct scope_res *sr;
};

/* The board (--board, else build/board/emu.dtb when present) and the modeled rates: card memory
 * and link from the board (or the options), host measured unless --host-gbps. 0 or
 * board_load's error. */
static int cs_rates(struct cs_run *x)
{
	const struct cs_opts *o = x->o;
	char err[512];
	x->bp = o->board_path ? o->board_path : "build/board/emu.dtb";
	if (o->board_path || access(x->bp, R_OK) == 0) {
		int r = board_load(x->bp, x->b, err, sizeof err);
		if (r) {
			fprintf(stderr, "moecard: %s\n", err);
			return r;
		}
		x->have_board = 1;
	}
	x->card_bw = x->have_board ? (double)x->b->mem_bw_mbps * 1e6 : 460e9;
	x->link_bw = o->link_gbps > 0 ? o->link_gbps * 1e9
		     : x->have_board  ? (double)x->b->pcie_bw_mbps * 1e6
				      : DMA_LINK_PCIE_GEN3_X16;
	x->host_bw = o->host_gbps > 0 ? o->host_gbps * 1e9 : measure_host_bw();
	return 0;
}

/* Card slots: --slots N or P% of the trace's experts, else what the board holds after the
 * resident set, else a quarter; at least 1, at most every expert. 0 or -EINVAL (bad --slots). */
static int cs_slots(struct cs_run *x)
{
	const char *ss = x->o->slots_s;
	int total = x->total;
	if (ss) {
		char *end;
		double v = strtod(ss, &end);
		if (end == ss || (*end && strcmp(end, "%")) || !(v > 0) || (*end && v > 100) ||
		    (!*end && v != (int)v)) {
			fprintf(stderr,
				"moecard: cache-sim: --slots: expected N >= 1 or P%% (0..100], "
				"got '%s'\n",
				ss);
			return -EINVAL;
		}
		x->slots = *end == '%' ? (int)(v / 100 * total + 0.5) : (int)v;
		if (x->slots < 1)
			x->slots = 1;
	} else if (x->have_board) {
		const struct expert_trace_shape *s = &x->t.s;
		struct board_fit fit;
		uint64_t resident = s->layer_bytes * (uint64_t)x->nmoe + s->other_bytes;
		struct expert_slot_layout lay;
		struct config cc = {0};
		cc.hidden_size = (int)s->hidden;
		cc.moe_intermediate_size = (int)s->moe_inter;
		expert_slot_layout_init(&cc, &lay);
		board_fit_compute(x->b, resident, lay.bytes, 1, 0, &fit);
		x->slots = fit.expert_slots > (uint64_t)total ? total : (int)fit.expert_slots;
		printf(
		    "slots from the board: %llu fit after the resident set (%.1f MB); using %d\n",
		    (unsigned long long)fit.expert_slots, resident / 1e6, x->slots);
	} else {
		x->slots = total / 4;
	}
	if (x->slots > total)
		x->slots = total;
	if (x->slots < 1)
		x->slots = 1;
	return 0;
}

/* The trace, its look-ahead accuracy and the modeled rates (text mode only). */
static void cs_print_header(const struct cs_run *x)
{
	const struct expert_trace *t = &x->t;
	struct expert_trace_acc acc;
	expert_trace_accuracy(t, &acc);
	size_t tokens = 0; /* records of the first MoE layer */
	for (size_t i = 0; i < t->n; i++)
		tokens += t->layer[i] == (int32_t)t->s.first_dense;
	if (x->o->json)
		return;
	printf("trace %s: %zu records, %zu tokens, %d MoE layers x %d experts top-%u, "
	       "expert %.2f MB\n",
	       x->o->trace, t->n, tokens, x->nmoe, (int)t->s.n_experts, t->s.k,
	       t->s.expert_bytes / 1e6);
	printf("look-ahead prediction (measured on the trace): distance 1 recall %.1f%% "
	       "(exact %.1f%%, %zu records), distance 2 recall %.1f%% (exact %.1f%%, %zu)\n",
	       100 * acc.recall1, 100 * acc.exact1, acc.n1, 100 * acc.recall2, 100 * acc.exact2,
	       acc.n2);
	printf("modeled: card memory %.1f GB/s, link %.1f GB/s, host expert GEMV %.1f GB/s%s\n",
	       x->card_bw / 1e9, x->link_bw / 1e9, x->host_bw / 1e9,
	       x->o->host_gbps > 0 ? ""
				   : " (measured: cpu kernels, all cores, 48 MiB of FP8 rows)");
	printf("\n%d slots of %d experts (%.0f%%), modeled:\n", x->slots, x->total,
	       100.0 * x->slots / x->total);
}

/* Every expert resident, and every expert on the host, under cfg (text mode only). */
static void cs_print_bounds(const struct expert_trace *t, struct expert_sim_cfg cfg, int total,
			    int json)
{
	struct expert_sim_result ri;
	cfg.n_slots = total;
	if (!expert_sim_run(t, &cfg, &ri) && !json)
		printf("  all resident: modeled %.2f tok/s; all on the host: modeled %.2f tok/s\n",
		       ri.ideal_tok_s, ri.host_tok_s);
}

static const int cs_pcts[] = {10, 25, 50}; /* --sweep: capacities, % of the experts */

/* The slots of sweep step q (-1: the chosen slots) and their capacity, percent. */
static int cs_step_slots(const struct cs_run *x, int q, int *pct)
{
	*pct = q < 0 ? (int)(100.0 * x->slots / x->total + 0.5) : cs_pcts[q];
	int s = q < 0 ? x->slots : (int)(*pct / 100.0 * x->total + 0.5);
	return s < 1 ? 1 : s;
}

/* The trace's own shapes: every policy at the chosen slots (and the sweep's capacities), with
 * the goals and the all-resident / all-host bounds. 0 or the replay's error. */
static int cs_trace_scope(struct cs_run *x, const struct expert_sim_cfg *base)
{
	const struct cs_opts *o = x->o;
	for (int q = -1; q < 3; q++) {
		int pct, s = cs_step_slots(x, q, &pct);
		if (q >= 0) {
			if (!o->sweep)
				break;
			if (!o->json)
				printf("\n%d%% capacity (%d slots), modeled:\n", pct, s);
		}
		int rc = run_policies(&x->t, *base, s, o->only, o->json, "trace",
				      q < 0 ? x->events : NULL, x->sr);
		if (rc) {
			fprintf(stderr, "moecard: cache-sim: %s: replay failed: %s\n", o->trace,
				strerror(-rc));
			return rc;
		}
		if (!o->only)
			print_goals(x->sr, pct, o->cpu_tok_s, o->json, "trace");
		if (q < 0)
			cs_print_bounds(&x->t, *base, x->total, o->json);
	}
	return 0;
}

/* What the 671B resident set leaves of the board for expert slots (text mode, with a board). */
static void cs_671b_fit(const struct cs_run *x, const struct config *c,
			const struct expert_trace_shape *sh)
{
	struct board_fit fit;
	uint32_t nmoe = sh->n_layers - sh->first_dense;
	uint64_t res = sh->layer_bytes * nmoe + sh->other_bytes;
	uint64_t kv_tok = (uint64_t)(c->kv_lora_rank + c->qk_rope_head_dim) * 4 *
			  (uint64_t)c->num_hidden_layers; /* f32 compressed KV */
	if (!board_fit_compute(x->b, res, sh->expert_bytes, kv_tok, 4096, &fit))
		printf(
		    "\n671B on %s (%s): resident set %.1f GB %s; with a 4096-token KV cache %llu "
		    "expert slots = %.2f%% of the %u routed experts\n",
		    x->bp, x->b->model, res / 1e9,
		    fit.resident_fits ? "fits" : "does NOT fit in its memory",
		    (unsigned long long)fit.expert_slots,
		    100.0 * (double)fit.expert_slots / ((double)sh->n_experts * nmoe),
		    sh->n_experts * nmoe);
}

/* The 671B what-if: the trace's routing on DeepSeek-V3 671B's shapes (each traced MoE layer
 * stands for several), over PCIe Gen3 and Gen4 x16, at the same slot fractions. 0 or the
 * replay's error. */
static int cs_whatif_671b(struct cs_run *x, const struct expert_sim_cfg *base)
{
	const struct cs_opts *o = x->o;
	static const double links[2] = {DMA_LINK_PCIE_GEN3_X16, DMA_LINK_PCIE_GEN4_X16};
	struct config c;
	config_deepseek_v3_671b(&c);
	struct expert_trace_shape sh;
	expert_trace_shape_from_config(&c, &sh);
	struct expert_sim_cfg w = *base;
	w.expert_bytes = sh.expert_bytes;
	w.layer_bytes = sh.layer_bytes;
	w.other_bytes = sh.other_bytes;
	w.layer_scale = (double)(sh.n_layers - sh.first_dense) / x->nmoe;
	if (x->have_board && !o->json)
		cs_671b_fit(x, &c, &sh);
	for (int q = o->sweep ? 0 : -1; q < 3; q++) {
		int pct, ws = cs_step_slots(x, q, &pct);
		for (int g = 0; g < 2; g++) {
			w.link_bw = links[g];
			const char *scope = g ? "671b_gen4" : "671b_gen3";
			if (!o->json)
				printf(
				    "\n671B what-if (modeled): %.1f MB experts, %.0f MB/layer "
				    "resident, %u MoE layers (trace routing, each traced layer "
				    "stands for %.2f),\n"
				    "  PCIe Gen%d x16 %.0f GB/s, card %.0f GB/s, host %.1f GB/s, "
				    "same slot fraction %d%%:\n",
				    sh.expert_bytes / 1e6, sh.layer_bytes / 1e6,
				    sh.n_layers - sh.first_dense, w.layer_scale, 3 + g,
				    links[g] / 1e9, x->card_bw / 1e9, x->host_bw / 1e9, pct);
			int rc = run_policies(&x->t, w, ws, o->only, o->json, scope, NULL, x->sr);
			if (rc)
				return rc;
			if (!o->only)
				print_goals(x->sr, pct, 0, o->json, scope);
			cs_print_bounds(&x->t, w, x->total, o->json);
		}
		if (q < 0)
			break;
	}
	return 0;
}

/* After the trace is loaded: board, rates, slots, then the trace scope and the what-if. Returns
 * the exit code: 0, 2 for a bad --slots, 1 for any other failure (said on stderr). */
static int cs_run(struct cs_run *x)
{
	const struct cs_opts *o = x->o;
	x->nmoe = moe_layers(&x->t.s);
	x->total = (int)x->t.s.n_experts * x->nmoe;
	if (!(x->b = calloc(1, sizeof *x->b)) || cs_rates(x))
		return 1;
	if (cs_slots(x))
		return 2;
	if (o->events_p && !(x->events = fopen(o->events_p, "w"))) {
		fprintf(stderr, "moecard: cache-sim: --events %s: %s\n", o->events_p,
			strerror(errno));
		return 1;
	}
	cs_print_header(x);
	struct expert_sim_cfg base = {.card_bw = x->card_bw,
				      .link_bw = x->link_bw,
				      .host_bw = x->host_bw,
				      .desc_lat = DMA_DESC_LATENCY_DEF_NS * 1e-9};
	if (!(x->sr = calloc(1, sizeof *x->sr)))
		return 1;
	if (cs_trace_scope(x, &base))
		return 1;
	if (o->what_if && cs_whatif_671b(x, &base))
		return 1;
	return 0;
}

int cli_cache_sim(int argc, char **argv)
{
	struct cs_opts o;
	if (cs_parse(argc, argv, &o))
		return 2;
	if (o.help)
		return 0;
	char err[512];
	struct cs_run x = {.o = &o};
	if (expert_trace_load(o.trace, &x.t, err, sizeof err)) {
		fprintf(stderr, "moecard: %s\n", err);
		return 1;
	}
	int rc = cs_run(&x);
	if (x.events)
		fclose(x.events);
	free(x.sr);
	free(x.b);
	expert_trace_free(&x.t);
	return rc;
}
