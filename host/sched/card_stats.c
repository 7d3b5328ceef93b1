/*
 * card_stats.c - what the card scheduler reports: the modeled card, link and host figures per
 * token and the expert cache's (engine_ops.stats), the --profile trace of every command on the
 * card clock, and the what-if of a model shape without weights (card_engine.h): the same command
 * lists built in dry mode and timed here like the firmware and the kernels' timing models would
 * run them (docs/architecture.md, Emulated card and timing model).
 * Data flow: card_flush (card_engine.c) -> backend statistics and completions -> this file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/backend.h"
#include "backend/backend_impl.h"
#include "firmware/fw_config.h"
#include "load/config.h"
#include "sched/card_engine.h"
#include "sched/card_engine_impl.h"
#include "sched/expert_cache.h"

/* Dry mode: time the list like the card would: one firmware CPU takes (decodes) the commands in
 * order, ahead of the CUs; it starts each in order on the earliest free CU of its kind (its start
 * work before the CU runs) once the CU's previous completion was handled (its done work after the
 * kernel) and the fence it waits for was signalled; a barrier waits for everything before it.
 * The firmware's work never overlaps itself: the list takes at least the sum of it. With a
 * dispatch engine (board_dispatch_ns) the CPU only takes each command, on its own
 * timeline (t_cpu: a command is not started before it was taken), and the engine does the start,
 * done and sync work in place of the firmware; neither's work overlaps itself. */
/* The list's first command before command i that signals the fence i waits for a value at or
 * past the one it waits for; -1 when none does (met before the list). */
static int dry_fence_signaller(const struct ee *e, uint32_t i)
{
	const struct abi_cmd *c = &e->list.cmd[i];
	uint32_t id = ABI_W3_WAIT(c->hdr.word3);
	for (uint32_t j = 0; j < i; j++) {
		const struct abi_cmd *s = &e->list.cmd[j];
		if ((ABI_W2_FLAGS(s->hdr.word2) & ABI_CMD_F_SIGNAL) &&
		    ABI_W3_SIGNAL(s->hdr.word3) == id &&
		    (int32_t)(s->hdr.signal_value - c->hdr.wait_value) >= 0)
			return (int)j;
	}
	return -1;
}

/* When the wait of command i is met: its signaller's completion (done_t: completion times so
 * far, by command); 0 when none signals it (met before the list). */
static uint64_t dry_fence_t(const struct ee *e, uint32_t i, const uint64_t *done_t)
{
	int j = dry_fence_signaller(e, i);
	return j >= 0 ? done_t[j] : 0;
}

void card_dry_rates(const struct ee *e, uint32_t *bw_mbps, uint32_t *clk_khz)
{
	const struct abi_board *blk = backend_abi_board(e->be);
	uint32_t eff = backend_board(e->be)->mem_eff_pct;
	*bw_mbps = (uint32_t)((uint64_t)blk->banks[0].bw_mbps * (eff ? eff : 100) / 100);
	*clk_khz = blk->cu_clk_khz;
}

int64_t card_cmd_cycles(const struct ee *e, uint32_t i, int cu)
{
	const struct abi_cmd *c = &e->list.cmd[i];
	uint32_t op = ABI_W0_OP(c->hdr.word0), bw = 0, kclk = 0;
	card_dry_rates(e, &bw, &kclk);
	return op == ABI_OP_GEMV ? card_gemv_cycles(e, e->list.gt[i], bw, kclk)
	       : op == ABI_OP_MLA_ATTN_LANES
		   ? card_attn_lanes_cycles(e, c, bw, kclk)
		   : backend_cmd_cycles(c, bw, kclk,
					backend_blk_cu(backend_board(e->be), (uint32_t)cu));
}

void card_proj_run(const struct ee *e, struct card_proj *p)
{
	const struct abi_board *blk = backend_abi_board(e->be);
	const struct board_desc *bd = backend_board(e->be);
	uint32_t nc = ABI_BOARD_N_CUS(blk->counts), bw = 0, kclk = 0;
	int cpu;
	double go = (double)board_dispatch_ns(bd, BOARD_FW_START, &cpu);
	card_dry_rates(e, &bw, &kclk);
	if (p->n > e->list.n)
		memset(p, 0, sizeof *p);
	for (; p->n < e->list.n; p->n++) {
		uint32_t i = p->n;
		const struct abi_cmd *c = &e->list.cmd[i];
		uint32_t op = ABI_W0_OP(c->hdr.word0);
		double t = p->t + (double)board_fw_take_ns(bd, op);
		int j =
		    ABI_W2_FLAGS(c->hdr.word2) & ABI_CMD_F_WAIT ? dry_fence_signaller(e, i) : -1;
		if (j >= 0 && p->end[j] > t)
			t = p->end[j];
		int best = -1;
		for (uint32_t k = 0; k < nc; k++)
			if ((blk->cus[k].ops_mask >> op & 1) &&
			    (best < 0 || p->cu[k] < p->cu[best]))
				best = (int)k;
		if (best < 0) { /* (a barrier: after every CU) */
			for (uint32_t k = 0; k < nc; k++)
				t = p->cu[k] > t ? p->cu[k] : t;
			p->t = p->end[i] = t;
			continue;
		}
		t = (t > p->cu[best] ? t : p->cu[best]) + go;
		int64_t cyc = card_cmd_cycles(e, i, best);
		p->t = t;
		p->end[i] = p->cu[best] = t + (cyc > 0 && kclk ? (double)cyc * 1e6 / kclk : 0);
	}
}

double card_proj_start(const struct ee *e, const struct card_proj *p, uint32_t op, double dep)
{
	const struct abi_board *blk = backend_abi_board(e->be);
	double t = p->t + (double)board_fw_take_ns(backend_board(e->be), op), free = -1;
	for (uint32_t k = 0; k < ABI_BOARD_N_CUS(blk->counts); k++)
		if ((blk->cus[k].ops_mask >> op & 1) && (free < 0 || p->cu[k] < free))
			free = p->cu[k]; /* (the one free first) */
	t = free > t ? free : t;
	return dep > t ? dep : t;
}

/* The time both kinds of intervals cover (each kind's in start order, not overlapping each
 * other: one CU's commands). */
static uint64_t dry_both(const uint64_t (*a)[2], uint32_t na, const uint64_t (*b)[2], uint32_t nb)
{
	uint64_t s = 0;
	for (uint32_t i = 0, j = 0; i < na && j < nb;) {
		uint64_t lo = a[i][0] > b[j][0] ? a[i][0] : b[j][0];
		uint64_t hi = a[i][1] < b[j][1] ? a[i][1] : b[j][1];
		s += hi > lo ? hi - lo : 0;
		if (a[i][1] < b[j][1])
			i++;
		else
			j++;
	}
	return s;
}

void card_dry_time(struct ee *e)
{
	/* the GEMV CU's and the striped attention's commands (their side-by-side time) */
	static uint64_t iv_gv[BACKEND_MAX_LIST][2], iv_at[BACKEND_MAX_LIST][2];
	uint32_t n_gv = 0, n_at = 0;
	const struct abi_board *blk = backend_abi_board(e->be);
	const struct board_desc *bd = backend_board(e->be);
	uint64_t cu_free[ABI_MAX_CUS] = {0}, t_fw = 0, t_all = 0, fw_work = 0;
	uint64_t t_cpu = 0; /* the CPU's decode time line (dispatch engine): also its work */
	static uint64_t sig_t[BACKEND_MAX_LIST]; /* when each command signalling a fence did */
	static uint64_t st_t[BACKEND_MAX_LIST];	 /* when each command left the pending queue */
	int cpu, eng = board_has_dispatch_engine(bd);
	uint64_t start = board_dispatch_ns(bd, BOARD_FW_START, &cpu);
	uint64_t done = board_dispatch_ns(bd, BOARD_FW_DONE, &cpu),
		 sync = board_dispatch_ns(bd, BOARD_FW_SYNC, &cpu);
	/* the engine's argument preload (fw_port_start_cu): the start cycles on its writer, once
	 * a command is taken and its CU latched the arguments before; then go on the path */
	uint64_t go = board_dispatch_go_ns(bd), args_until = 0, latched[ABI_MAX_CUS] = {0};
	uint32_t nc = ABI_BOARD_N_CUS(blk->counts), kclk = 0, bw = 0;
	card_dry_rates(e, &bw, &kclk);
	for (uint32_t i = 0; i < e->list.n; i++) {
		const struct abi_cmd *c = &e->list.cmd[i];
		uint32_t op = ABI_W0_OP(c->hdr.word0);
		uint32_t fl = ABI_W2_FLAGS(c->hdr.word2);
		int fw_sync = backend_op_fw_sync(op);
		/* the CPU's take: the opcode's own count when the tree has it */
		uint64_t take = board_fw_take_ns(bd, op);
		if (eng) { /* the CPU has taken it at t_cpu; the engine goes on */
			/* the firmware decodes at most FW_CFG_PENDING commands ahead of the ring's
			 * head: the take waits for the command that many before it to start */
			if (i >= FW_CFG_PENDING && st_t[i - FW_CFG_PENDING] > t_cpu)
				t_cpu = st_t[i - FW_CFG_PENDING];
			t_cpu += take;
			fw_work += fw_sync ? sync : (go ? go : start) + done;
			t_fw = t_fw > t_cpu ? t_fw : t_cpu;
		} else {
			fw_work += take + (fw_sync ? sync : start + done); /* backend_fw_cmd_ns */
			t_fw += take;
		}
		if (fl & ABI_CMD_F_WAIT) { /* the ring's head waits */
			uint64_t tw = dry_fence_t(e, i, sig_t);
			t_fw = tw > t_fw ? tw : t_fw;
		}
		if ((fl & ABI_CMD_F_DRAIN) && t_all > t_fw)
			t_fw = t_all; /* a barrier folded into the command */
		if (fw_sync) {
			if (op == ABI_OP_BARRIER)
				t_fw = t_fw > t_all ? t_fw : t_all;
			t_fw += sync;
			sig_t[i] = st_t[i] = t_fw;
			continue;
		}
		int best = -1;
		for (uint32_t k = 0; k < nc; k++)
			if ((blk->cus[k].ops_mask >> op & 1) &&
			    (best < 0 || cu_free[k] < cu_free[best]))
				best = (int)k;
		st_t[i] = t_fw;
		if (best < 0)
			continue;
		int64_t cyc = card_cmd_cycles(e, i, best);
		uint64_t t0 = t_fw > cu_free[best] ? t_fw : cu_free[best];
		if (go) {
			uint64_t a = t_cpu > latched[best] ? t_cpu : latched[best];
			args_until = (a > args_until ? a : args_until) + start;
			t0 = (t0 > args_until ? t0 : args_until) + go;
			latched[best] = t0;
		} else {
			t0 += start;
		}
		t_fw = st_t[i] = t0;
		if (cyc < 0)
			e->dry_bad = 1; /* the list holds a command its kernel would reject */
		if (cyc < 0 && getenv("MOECARD_DRY_DEBUG"))
			fprintf(stderr, "dry: %s rejected (%lld)\n", e->list.what[i],
				(long long)cyc);
		uint64_t t1 = t0 + (uint64_t)(cyc > 0 ? cyc : 0) * 1000000ull / kclk;
		e->dry_op_ns[op] += (double)(t1 - t0);
		if (op == ABI_OP_GEMV) {
			iv_gv[n_gv][0] = t0;
			iv_gv[n_gv++][1] = t1;
		} else if (op == ABI_OP_MLA_ATTN_LANES) {
			iv_at[n_at][0] = t0;
			iv_at[n_at++][1] = t1;
		}
		if (e->pf.active && getenv("MOECARD_DRY_TRACE"))
			fprintf(stderr, "TR %u %s cu%d %.1f %.1f %.1f\n", i, e->list.what[i], best,
				t0 / 1e3, t1 / 1e3, st_t[i] / 1e3);
		if (e->pf.active)
			card_pf_count(e, i, op, (double)(t1 - t0));
		cu_free[best] = t1 + done;
		t_all = t1 + done > t_all ? t1 + done : t_all;
		sig_t[i] = t1 + done;
	}
	uint64_t t = t_all > t_fw ? t_all : t_fw;
	t = t > fw_work ? t : fw_work;
	e->dry_ns += (double)(t > t_cpu ? t : t_cpu);
	e->dry_side_ns +=
	    (double)dry_both((const uint64_t(*)[2])iv_gv, n_gv, (const uint64_t(*)[2])iv_at, n_at);
}

/* Expert-cache figures of card_stats: per main-model token (n), card ms/token card, link ms. */
static void ee_xc_stats(struct ee *e, FILE *out, int json, double n, double card, double link)
{
	struct ee_xc *xc = e->xc;
	double acc = xc->accesses ? (double)xc->accesses : 1;
	double hidden = xc->dma_busy_ns > 0 ? 1 - xc->dma_exposed_ns / xc->dma_busy_ns : 1;
	double host_ms = xc->host_exposed_ns / n / 1e6;
	double tok_s = 1e3 / (card + link + host_ms + xc->drain_ns / n / 1e6);
	double pred = xc->pf_pred ? (double)xc->pf_pred_hit / (double)xc->pf_pred : 0;
	const char *hm[] = {"off", "auto", "always"};
	if (json) {
		fprintf(
		    out,
		    ",\"expert_slots\":%d,\"expert_policy\":\"%s\",\"expert_prefetch\":%d,"
		    "\"expert_host\":\"%s\",\"expert_accesses\":%llu,\"expert_hit_rate\":%.4f,"
		    "\"expert_miss_dma\":%llu,\"expert_miss_host\":%llu,\"expert_bg_fills\":%llu,"
		    "\"expert_prefetch_issued\":%llu,\"expert_prefetch_used\":%llu,"
		    "\"expert_prefetch_wasted\":%llu,\"expert_pin_fills\":%llu,\"expert_"
		    "evictions\":%llu,"
		    "\"expert_prediction_recall\":%.4f,"
		    "\"expert_dma_bytes_per_tok\":%.0f,\"modeled_expert_dma_hidden\":%.4f,"
		    "\"modeled_expert_dma_ms_per_tok\":%.4f,"
		    "\"modeled_host_expert_exposed_ms_per_tok\":%.4f,"
		    "\"modeled_expert_decode_tok_s\":%.2f,\"expert_detached\":%d,"
		    "\"expert_detached_fills\":%llu,\"expert_detached_failed\":%llu,"
		    "\"expert_detached_busy_steps\":%llu,"
		    "\"modeled_expert_drain_ms_per_tok\":%.4f",
		    xc->cache.n_slots, expert_policy_name(xc->cache.policy), xc->prefetch,
		    hm[xc->host_mode], (unsigned long long)xc->accesses, xc->hits / acc,
		    (unsigned long long)xc->miss_dma, (unsigned long long)xc->miss_host,
		    (unsigned long long)xc->bg_fills, (unsigned long long)xc->pf_issued,
		    (unsigned long long)xc->pf_used, (unsigned long long)xc->pf_wasted,
		    (unsigned long long)xc->pin_fills, (unsigned long long)xc->evictions, pred,
		    xc->dma_bytes / n, hidden, xc->dma_busy_ns / n / 1e6, host_ms, tok_s, xc->async,
		    (unsigned long long)xc->df_fills, (unsigned long long)xc->df_failed,
		    (unsigned long long)xc->df_busy_steps, xc->drain_ns / n / 1e6);
		return;
	}
	fprintf(
	    out,
	    "  expert cache   %d slots of %.2f MB (%s%s, host execution %s): hit rate %.1f%% of "
	    "%llu accesses\n"
	    "                 misses: %llu DMA'd, %llu run on the host (%llu filled behind the "
	    "card); prefetch %llu issued, %llu "
	    "used, %llu wasted (prediction recall %.1f%%)\n"
	    "                 DMA %.2f MB/token, modeled %.4f ms/token of fills, %.1f%% of it "
	    "hidden "
	    "behind card compute\n"
	    "                 modeled host expert time not hidden %.4f ms/token; modeled decode "
	    "%.2f "
	    "tok/s\n",
	    xc->cache.n_slots, xc->lay.bytes / 1e6, expert_policy_name(xc->cache.policy),
	    xc->prefetch ? "+prefetch" : "", hm[xc->host_mode], 100 * xc->hits / acc,
	    (unsigned long long)xc->accesses, (unsigned long long)xc->miss_dma,
	    (unsigned long long)xc->miss_host, (unsigned long long)xc->bg_fills,
	    (unsigned long long)xc->pf_issued, (unsigned long long)xc->pf_used,
	    (unsigned long long)xc->pf_wasted, 100 * pred, xc->dma_bytes / n / 1e6,
	    xc->dma_busy_ns / n / 1e6, 100 * hidden, host_ms, tok_s);
	if (xc->async)
		fprintf(out,
			"                 detached fills (ring %u, across layers): %llu issued, "
			"%llu failed (slot emptied), %llu steps skipped while the list was busy\n",
			EE_XC_RING, (unsigned long long)xc->df_fills,
			(unsigned long long)xc->df_failed, (unsigned long long)xc->df_busy_steps);
}

/* Bytes an ideal decode step must read from HBM: every weight it uses once (attention, dense or
 * shared + top-k routed experts with scales, the router's gate, lm_head) plus the f32 KV cache of
 * pos tokens per layer. */
static double ee_decode_bytes(const struct config *c, int pos, int with_mtp)
{
	double head = (double)c->vocab_size * c->hidden_size * 2; /* lm_head, bf16 */
	double D = c->hidden_size, H = c->num_attention_heads, nope = c->qk_nope_head_dim;
	double rope = c->qk_rope_head_dim, vd = c->v_head_dim, kvl = c->kv_lora_rank;
	double ql = c->q_lora_rank, qd = nope + rope;
	double attn = ql > 0 ? D * ql + ql * H * qd : D * H * qd;
	attn += D * (kvl + rope) + H * (nope + vd) * kvl + H * vd * D;
	double moe =
	    3.0 * D * c->moe_intermediate_size * (c->num_experts_per_tok + c->n_shared_experts);
	double gate = (double)c->n_routed_experts * D * 2; /* the router's gate, bf16 */
	double dense = 3.0 * D * c->intermediate_size;
	int L = c->num_hidden_layers + (with_mtp ? 1 : 0);
	double b = 0;
	for (int l = 0; l < L; l++)
		b +=
		    attn * (1 + 4.0 / (128 * 128)) +
		    (config_layer_is_moe(c, l < c->num_hidden_layers ? l : c->num_hidden_layers - 1)
			 ? moe
			 : dense) *
			(1 + 4.0 / (128 * 128)) +
		    (config_layer_is_moe(c, l < c->num_hidden_layers ? l : c->num_hidden_layers - 1)
			 ? gate
			 : 0) +
		    (double)pos * (kvl + rope) * 4;
	return b + head;
}

/* Bytes of the weights a decode step reads (ee_decode_bytes without the cache). */
static double ee_weight_bytes(const struct config *c)
{
	return ee_decode_bytes(c, 0, 0);
}

/* A layer of config c with every matrix at card address 0 (dry mode reads no memory): only the
 * shapes the timing models need. L->ex_gu / ex_down hold n_routed_experts entries. */
static void ee_dry_layer(const struct config *c, struct ee_layer *L)
{
	int E = c->n_routed_experts;
	int D = c->hidden_size, I = c->moe_intermediate_size, H = c->num_attention_heads;
	int qd = c->qk_nope_head_dim + c->qk_rope_head_dim;
	L->q_a = (struct cmat){0, 0, c->q_lora_rank, D};
	L->q_b = c->q_lora_rank > 0 ? (struct cmat){0, 0, H * qd, c->q_lora_rank}
				    : (struct cmat){0, 0, H * qd, D};
	L->kv_a = (struct cmat){0, 0, c->kv_lora_rank + c->qk_rope_head_dim, D};
	L->kv_b = (struct cmat){0, 0, H * (c->qk_nope_head_dim + c->v_head_dim), c->kv_lora_rank};
	L->o = (struct cmat){0, 0, D, H * c->v_head_dim};
	L->gu = (struct cmat){0, 0, c->intermediate_size, D};
	L->down = (struct cmat){0, 0, D, c->intermediate_size};
	for (int x = 0; x < E; x++) {
		L->ex_gu[x] = (struct cmat){0, 0, I, D};
		L->ex_down[x] = (struct cmat){0, 0, D, I};
	}
	L->sh_gu = (struct cmat){0, 0, I * c->n_shared_experts, D};
	L->sh_down = (struct cmat){0, 0, D, I * c->n_shared_experts};
}

/* card_engine.h */
/* Modeled host and link parts of one decode token that the card's lists do not contain: the
 * host's router and lm_head when they stay on the host (bytes at EE_HOST_MODEL_GBPS), sampling
 * over the logits and the embedding row; the link's transfers (the embedding row in, the logits
 * or the final state out, the router's round trip per MoE layer) at the board's PCIe rate plus
 * a per-transfer latency. A greedy token with the head on the card (greedy) comes back as the
 * head's 8-byte record: no logits over the link, no sampling pass on the host. */
void card_host_model(const struct config *c, const struct board_desc *bd, int route_on_card,
		     int head_on_card, int greedy, struct card_e2e *m)
{
	double D = c->hidden_size, V = c->vocab_size, E = c->n_routed_experts;
	double k = c->num_experts_per_tok, gbps = EE_HOST_MODEL_GBPS * 1e9;
	double pcie = (bd->pcie_bw_mbps ? bd->pcie_bw_mbps : 12000) * 1e6, lat = 1e-6;
	int nmoe = 0;
	for (int l = 0; l < c->num_hidden_layers; l++)
		nmoe += config_layer_is_moe(c, l);
	memset(m, 0, sizeof *m);
	m->host_router_ms = route_on_card ? 0 : nmoe * E * D * 2 / gbps * 1e3;
	m->host_head_ms = head_on_card ? 0 : V * D * 2 / gbps * 1e3;
	int top1 = greedy && head_on_card;
	m->host_sample_ms = ((top1 ? 0 : V * 4) + D * 2) / gbps * 1e3;
	m->link_ms = (2 * lat + (D * 4 + (top1 ? 8 : head_on_card ? V * 4 : D * 4)) / pcie) * 1e3;
	if (!route_on_card) /* per MoE layer: read xn, write the weights, one more list */
		m->link_ms += nmoe * (3 * lat + (D * 4 + k * 4) / pcie) * 1e3;
}

int card_engine_whatif(const struct config *c, const struct backend *be, int pos, int gemv,
		       double *card_ns, double *hbm_bytes)
{
	return card_engine_whatif2(c, be, pos, gemv, card_ns, hbm_bytes, NULL);
}

int card_engine_whatif2(const struct config *c, const struct backend *be, int pos, int gemv,
			double *card_ns, double *hbm_bytes, struct card_e2e *m)
{
	struct ee *e = calloc(1, sizeof *e);
	int r = -ENOMEM;
	if (!e)
		return r;
	e->dry = 1;
	e->chain_off = card_chain_off();
	e->c = c;
	e->be = (struct backend *)be;
	e->max_seq = pos + 1;
	int k = c->num_experts_per_tok, E = c->n_routed_experts;
	struct ee_layer L = {0};
	e->hb = calloc((size_t)k + 1, sizeof *e->hb);
	L.ex_gu = calloc((size_t)(E > 0 ? E : 1), sizeof *L.ex_gu);
	L.ex_down = calloc((size_t)(E > 0 ? E : 1), sizeof *L.ex_down);
	int *idx = calloc((size_t)k + 1, sizeof *idx);
	if (!e->hb || !L.ex_gu || !L.ex_down || !idx)
		goto out;
	ee_dry_layer(c, &L);
	if ((r = card_place_acts(e))) /* distinct activation ranges, as the tables need */
		goto out;
	char err[160] = "";
	if (gemv && ((r = card_gemv_init(e, 0, m && m->fp8_attn ? "fp8" : NULL, m && m->fp8_attn,
					 err, sizeof err)) ||
		     (e->gv && ((r = card_gemv_layer(e, &L, NULL, err, sizeof err)) ||
				(r = card_gemv_heads(e, NULL, err, sizeof err))))))
		goto out;
	e->softmax_scale = 0.1f;
	for (int j = 0; j < k; j++)
		idx[j] = j;
	for (int l = 0; l < c->num_hidden_layers; l++) {
		L.moe = config_layer_is_moe(c, l);
		if ((r = card_mla(e, &L, pos)))
			goto out;
		if (L.moe) {
			if (!e->gv_route) /* the host routes between two lists */
				card_flush(e);
			r = card_moe(e, &L, e->gv_route ? NULL : idx);
		} else {
			r = card_dense(e, &L);
		}
		if (r)
			goto out;
	}
	e->top1 = 1; /* a greedy decode: the head's record (card_head_gemv) */
	r = e->gv_head ? card_head_gemv(e, 0) : 0; /* the head normalizes in its loader */
	e->top1 = 0;
	if (r)
		goto out;
	card_flush(e);
	if (e->dry_bad) {
		r = -EINVAL;
		goto out;
	}
	*card_ns = e->dry_ns;
	*hbm_bytes = ee_decode_bytes(c, pos, 0);
	if (m) {
		card_host_model(c, backend_board(be), e->gv && e->gv_route, e->gv && e->gv_head, 1,
				m);
		m->card_ms = e->dry_ns / 1e6;
		m->gemv_ms = (e->dry_op_ns[ABI_OP_GEMV] + e->dry_op_ns[ABI_OP_GEMM_FP8]) / 1e6;
		m->attn_ms =
		    (e->dry_op_ns[ABI_OP_MLA_ATTN] + e->dry_op_ns[ABI_OP_MLA_ATTN_LANES]) / 1e6;
		m->side_ms = e->dry_side_ns / 1e6;
		m->gemv_bytes_ms =
		    ee_weight_bytes(c) / (backend_board(be)->mem_bw_mbps * 1e6) * 1e3;
		m->e2e_ms = m->card_ms + m->link_ms + m->host_router_ms + m->host_head_ms +
			    m->host_sample_ms;
	}
	r = 0;
out:
	card_gemv_layer_free(&L);
	card_gemv_free(e);
	free(idx);
	free(L.ex_gu);
	free(L.ex_down);
	free(e->hb);
	free(e);
	return r;
}

/* The what-if of one choice of the GEMM work's CU: rows_big 1 puts every row on the GEMV CU in
 * blocks of 16 (the rows path), 0 more than 16 rows on the GEMM CUs. */
static int whatif_prefill_once(const struct config *c, const struct backend *be, int T,
			       int rows_big, struct card_pf_whatif *w)
{
	struct ee *e = calloc(1, sizeof *e);
	int r = -ENOMEM;
	if (!e)
		return r;
	memset(w, 0, sizeof *w);
	e->dry = 1;
	e->chain_off = card_chain_off();
	e->c = c;
	e->be = (struct backend *)be;
	e->max_seq = T + 1;
	int k = c->num_experts_per_tok, E = c->n_routed_experts;
	int D = c->hidden_size, V = c->vocab_size, nmoe = 0;
	struct ee_layer L = {0};
	e->hb = calloc((size_t)k + 1, sizeof *e->hb);
	L.ex_gu = calloc((size_t)(E > 0 ? E : 1), sizeof *L.ex_gu);
	L.ex_down = calloc((size_t)(E > 0 ? E : 1), sizeof *L.ex_down);
	if (!e->hb || !L.ex_gu || !L.ex_down)
		goto out;
	ee_dry_layer(c, &L);
	char err[160] = "";
	if ((r = card_place_acts(e)) || (r = card_gemv_init(e, 0, NULL, 0, err, sizeof err)) ||
	    (e->gv && ((r = card_gemv_layer(e, &L, NULL, err, sizeof err)) ||
		       (r = card_gemv_heads(e, NULL, err, sizeof err)))))
		goto out;
	e->pf.chunk = T;
	if ((r = card_pf_init(e, 0)))
		goto out;
	r = -ENOTSUP;
	if (!e->pf_on || e->pf.chunk != T)
		goto out;
	r = -ENOTSUP;
	if (rows_big && !e->gv)
		goto out;
	e->pf.rows_big = rows_big;
	e->softmax_scale = 0.1f;
	e->pf.active = 1;
	for (int t = 0; t < T; t++)
		e->pf.hpos[t] = t;
	if ((r = card_pf_attn_rows(e, T)))
		goto out;
	for (int l = 0; l < c->num_hidden_layers; l++) {
		L.moe = config_layer_is_moe(c, l);
		nmoe += L.moe;
		/* (one layer's tables serve every layer: the next layer is this one) */
		e->pf.next_L = l + 1 < c->num_hidden_layers ? &L : NULL;
		/* (the last layer's MoE over the row whose logits the prompt wants: pf_forward) */
		e->pf.sub[0] = T - 1;
		e->pf.nsub = l + 1 == c->num_hidden_layers && !e->pf.sub_off && T > 1;
		r = card_pf_layer(e, &L, T);
		e->pf.nsub = 0;
		if (r)
			goto out;
	}
	if ((r = card_vecop(e, ABI_OP_RMSNORM, "final norm (rows)", e->pf.x, 0, 0, e->pf.xn,
			    (uint32_t)T, (uint32_t)D, 0, 0, 0, 1e-6f, 0)))
		goto out;
	if (e->gv && e->gv_head &&
	    ((r = card_barrier(e)) ||
	     (r = card_gemv_rows(e, "lm_head (gemv)", &e->head, e->pf.xn, e->pf.logits, 1,
				 &e->pf.t_head, NULL, 0))))
		goto out;
	card_flush(e);
	r = -EINVAL;
	if (e->dry_bad)
		goto out;
	/* the link: embeddings in, per MoE layer the routes (card router: idx and w of every row;
	 * host router: the normed rows) out and the three index tables in, the logits out; the host:
	 * the router and lm_head when they run there, the embedding rows, sampling */
	const struct board_desc *bd = backend_board(be);
	double pcie = (bd->pcie_bw_mbps ? bd->pcie_bw_mbps : 12000) * 1e6, lat = 1e-6;
	int route_card = e->gv && e->gv_route, head_card = e->gv && e->gv_head;
	double link_b = (double)T * D * 4 + (head_card ? (double)V * 4 : (double)D * 4) +
			nmoe * (route_card ? (double)T * k * 8 : (double)T * D * 4) +
			nmoe * (double)T * k * 12;
	w->link_ms = (link_b / pcie + (2 + 3.0 * nmoe) * lat) * 1e3;
	double host_b = (route_card ? 0 : (double)nmoe * T * E * D * 2) +
			(head_card ? 0 : (double)V * D * 2) + (double)T * D * 2 + (double)V * 4;
	w->host_ms = host_b / (EE_HOST_MODEL_GBPS * 1e9) * 1e3;
	w->card_ms = e->dry_ns / 1e6;
	w->e2e_ms = w->card_ms + w->link_ms + w->host_ms;
	w->tok_s = T / w->e2e_ms * 1e3;
	w->gemm_ms = e->dry_op_ns[ABI_OP_GEMM_FP8] / 1e6;
	w->attn_ms = (e->dry_op_ns[ABI_OP_MLA_ATTN] + e->dry_op_ns[ABI_OP_MLA_ATTN_LANES]) / 1e6;
	w->pe_frac = e->pf.gemm_ns > 0 ? e->pf.macs / (e->pf.gemm_ns * e->pf.peak) : 0;
	w->gv_ms = e->dry_op_ns[ABI_OP_GEMV] / 1e6;
	w->gv_pe_frac = e->pf.gv_ns > 0 ? e->pf.gv_macs / (e->pf.gv_ns * card_gemv_peak(e)) : 0;
	w->absorbed = !e->pf.mha;
	if (getenv("MOECARD_DRY_DEBUG"))
		for (int op = 0; op < ABI_OP_COUNT; op++)
			if (e->dry_op_ns[op] > 0)
				fprintf(stderr, "dry prefill T=%d: %s %.3f ms (summed)\n", T,
					abi_op_name((uint32_t)op), e->dry_op_ns[op] / 1e6);
	/* the token loop: every token a decode step, its cost linear in the position */
	double ns0, nsT, hb;
	struct card_e2e m0 = {0}, mT = {0};
	if ((r = card_engine_whatif2(c, be, 0, 1, &ns0, &hb, &m0)) ||
	    (r = card_engine_whatif2(c, be, T - 1, 1, &nsT, &hb, &mT)))
		goto out;
	w->loop_e2e_ms = T * (m0.e2e_ms + mT.e2e_ms) / 2;
	w->loop_tok_s = T / w->loop_e2e_ms * 1e3;
	r = 0;
out:
	card_gemv_layer_free(&L);
	card_gemv_free(e);
	card_pf_free(e);
	free(L.ex_gu);
	free(L.ex_down);
	free(e->hb);
	free(e);
	return r;
}

int card_engine_whatif_prefill(const struct config *c, const struct backend *be, int T,
			       struct card_pf_whatif *w)
{
	/* both placements of the GEMM work (MOECARD_PF_ROWS=0 / 1: only that one), the faster
	 * end to end kept */
	const char *v = getenv("MOECARD_PF_ROWS");
	int only = v && !strcmp(v, "0") ? 0 : v && !strcmp(v, "1") ? 1 : -1;
	struct card_pf_whatif g = {0}, rw = {0};
	int rg = only == 1 ? -ENOTSUP : whatif_prefill_once(c, be, T, 0, &g);
	int rr = only == 0 ? -ENOTSUP : whatif_prefill_once(c, be, T, 1, &rw);
	if (rg && rr)
		return rg != -ENOTSUP ? rg : rr;
	if (rg && rg != -ENOTSUP)
		return rg;
	if (rr && rr != -ENOTSUP)
		return rr;
	*w = !rr && (rg || rw.e2e_ms < g.e2e_ms) ? rw : g;
	w->rows_big = !rr && (rg || rw.e2e_ms < g.e2e_ms);
	w->gemm_tok_s = rg ? 0 : g.tok_s;
	w->rows_tok_s = rr ? 0 : rw.tok_s;
	return 0;
}

/* Where a prefill what-if put its matrices, and at what share of that CU's peak. */
static const char *pf_where(const struct card_pf_whatif *w)
{
	static __thread char b[256];
	if (w->rows_big && w->gemm_ms > 0) /* the experts split between the two */
		snprintf(
		    b, sizeof b,
		    "matrices on the GEMV CU %.1f ms at %.1f%% of its peak, beside them routed "
		    "experts on the GEMM CUs %.1f ms (summed) at %.1f%% of their PE arrays' peak "
		    "(GEMM "
		    "CUs alone: %.1f tok/s)",
		    w->gv_ms, 100 * w->gv_pe_frac, w->gemm_ms, 100 * w->pe_frac, w->gemm_tok_s);
	else if (w->rows_big)
		snprintf(b, sizeof b,
			 "matrices on the GEMV CU %.1f ms at %.1f%% of its peak (GEMM CUs: %.1f "
			 "tok/s)",
			 w->gv_ms, 100 * w->gv_pe_frac, w->gemm_tok_s);
	else
		snprintf(b, sizeof b,
			 "GEMMs %.1f ms at %.1f%% of the PE array's peak (GEMV CU: %.1f tok/s)",
			 w->gemm_ms, 100 * w->pe_frac, w->rows_tok_s);
	return b;
}

void card_engine_whatif_prefill_boards(const char *dir, FILE *out, int json)
{
	static const char *const boards[] = {"emu", "u55c", "u280", "v80"};
	static const int Ts[] = {128, 512, 2048};
	struct config c;
	config_deepseek_v3_671b(&c);
	for (size_t b = 0; b < sizeof boards / sizeof boards[0]; b++) {
		char path[1024], err[256];
		snprintf(path, sizeof path, "%s/board/%s.dtb", dir, boards[b]);
		struct board_desc *bd = malloc(sizeof *bd);
		struct backend *be = NULL;
		if (!bd || board_load(path, bd, err, sizeof err) ||
		    backend_ref_open(&be, bd, err, sizeof err)) {
			free(bd);
			continue;
		}
		for (size_t i = 0; i < sizeof Ts / sizeof Ts[0]; i++) {
			struct card_pf_whatif w;
			if (card_engine_whatif_prefill(&c, be, Ts[i], &w))
				continue;
			if (json)
				fprintf(
				    out,
				    ",\"whatif_671b_prefill_%s_T%d\":{\"e2e_ms\":%.1f,"
				    "\"tok_s\":%.2f,\"card_ms\":%.1f,\"gemm_ms\":%.1f,"
				    "\"attn_ms\":%.1f,\"pe_frac\":%.4f,\"token_loop_tok_s\":%.3f,"
				    "\"speedup\":%.2f,\"on_gemv\":%d,\"gemv_ms\":%.1f,"
				    "\"gemv_pe_frac\":%.4f,\"gemm_cus_tok_s\":%.2f,"
				    "\"gemv_cu_tok_s\":%.2f}",
				    boards[b], Ts[i], w.e2e_ms, w.tok_s, w.card_ms, w.gemm_ms,
				    w.attn_ms, w.pe_frac, w.loop_tok_s, w.loop_e2e_ms / w.e2e_ms,
				    w.rows_big, w.gv_ms, w.gv_pe_frac, w.gemm_tok_s, w.rows_tok_s);
			else
				fprintf(out,
					"what-if 671B prefill, %-5s T=%-4d: %9.1f ms end to end "
					"(%7.2f tok/s; token loop %6.3f tok/s, %.1fx): %s, "
					"attention %.1f ms\n",
					boards[b], Ts[i], w.e2e_ms, w.tok_s, w.loop_tok_s,
					w.loop_e2e_ms / w.e2e_ms, pf_where(&w), w.attn_ms);
		}
		backend_close(be);
		free(bd);
	}
}

/* The what-if line of the statistics: DeepSeek-V3 671B decode at context 4096 on be's board,
 * end to end (card + link + host parts), through the GEMV CU (when the board has one) and
 * through the fp8_gemm CUs alone. */
static void ee_whatif_671b(const struct backend *be, FILE *out, int json)
{
	struct config c;
	config_deepseek_v3_671b(&c);
	double ns, ns0, ns8, bytes;
	struct card_e2e m = {0}, m0 = {0}, m8 = {.fp8_attn = 1};
	if (card_engine_whatif2(&c, be, 4096, 1, &ns, &bytes, &m) ||
	    card_engine_whatif2(&c, be, 4096, 0, &ns0, &bytes, &m0))
		return;
	int has8 = !card_engine_whatif2(&c, be, 4096, 1, &ns8, &bytes, &m8) && m8.attn_ms > 0;
	/* is the board's striped attention built with the FP8 datapath? (else the line is a
	 * what-if of a datapath the tree leaves out) */
	const struct board_desc *bd = backend_board(be);
	int built8 = 1;
	for (uint32_t i = 0; i < bd->n_cus; i++)
		if (!strcmp(bd->cu[i].kernel, "mla_attn_lanes") && bd->cu[i].no_fp8)
			built8 = 0;
	double roof = bytes / (backend_board(be)->mem_bw_mbps * 1e6) * 1e3; /* ms */
	if (json) {
		fprintf(out,
			",\"whatif_671b_modeled_card_ms_per_tok\":%.3f,"
			"\"whatif_671b_modeled_e2e_ms_per_tok\":%.3f,"
			"\"whatif_671b_modeled_link_ms_per_tok\":%.4f,"
			"\"whatif_671b_modeled_host_ms_per_tok\":%.4f,"
			"\"whatif_671b_hbm_roofline_ms\":%.3f,"
			"\"whatif_671b_modeled_hbm_roofline_frac\":%.4f,"
			"\"whatif_671b_gemm_cus_modeled_e2e_ms_per_tok\":%.3f,"
			"\"whatif_671b_gemm_cus_modeled_hbm_roofline_frac\":%.4f,"
			"\"whatif_671b_gemv_ms\":%.3f,\"whatif_671b_attn_ms\":%.3f,"
			"\"whatif_671b_side_by_side_ms\":%.3f",
			m.card_ms, m.e2e_ms, m.link_ms,
			m.host_router_ms + m.host_head_ms + m.host_sample_ms, roof, roof / m.e2e_ms,
			m0.e2e_ms, roof / m0.e2e_ms, m.gemv_ms, m.attn_ms, m.side_ms);
		if (has8)
			fprintf(out,
				",\"whatif_671b_fp8attn_modeled_e2e_ms_per_tok\":%.3f,"
				"\"whatif_671b_fp8attn_modeled_hbm_roofline_frac\":%.4f,"
				"\"whatif_671b_fp8attn_attn_ms\":%.3f,"
				"\"whatif_671b_fp8attn_built\":%d",
				m8.e2e_ms, roof / m8.e2e_ms, m8.attn_ms, built8);
		return;
	}
	fprintf(
	    out,
	    "what-if 671B (%d layers, %d experts resident, ctx 4096), modeled end to end %.2f "
	    "ms/token (%.1f tok/s): card %.2f + link %.3f + host %.3f (router %.3f, lm_head "
	    "%.3f, sampling %.3f); HBM roofline %.2f ms (%.0f MB/token at %.0f GB/s): %.1f%% of "
	    "it (fp8_gemm CUs alone, router and lm_head on the host: %.2f ms, %.1f%%)\n"
	    "  where the card time goes: weight GEMVs %.2f ms (their bytes alone at the full "
	    "HBM rate: %.2f ms), attention %.2f ms, %.2f ms of them side by side (a head "
	    "group's attention beside the GEMV CU's q_b, W_UK^T, W_UV and o_proj slices of the "
	    "groups around it), the rest %.2f ms\n",
	    c.num_hidden_layers, c.n_routed_experts, m.e2e_ms, 1e3 / m.e2e_ms, m.card_ms, m.link_ms,
	    m.host_router_ms + m.host_head_ms + m.host_sample_ms, m.host_router_ms, m.host_head_ms,
	    m.host_sample_ms, roof, bytes / 1e6, backend_board(be)->mem_bw_mbps / 1e3,
	    100 * roof / m.e2e_ms, m0.e2e_ms, 100 * roof / m0.e2e_ms, m.gemv_ms, m.gemv_bytes_ms,
	    m.attn_ms, m.side_ms, m.card_ms - m.gemv_ms - m.attn_ms + m.side_ms);
	if (has8)
		fprintf(
		    out,
		    "  with --kv-format fp8 --attn-datapath fp8 (q and p as 12-bit block integers "
		    "on the E4M3 cache; its error: docs/numerics.md)%s: end to end %.2f ms/token "
		    "(%.1f tok/s), %.1f%% of the "
		    "roofline; attention %.2f ms (%.2f side by side with GEMVs)\n",
		    built8 ? ""
			   : ", a datapath this board is built without (moecard info --board: "
			     "what it would add)",
		    m8.e2e_ms, 1e3 / m8.e2e_ms, 100 * roof / m8.e2e_ms, m8.attn_ms, m8.side_ms);
}

/* The prompt length of this model's prefill what-if: 512, or MOECARD_WHATIF_T (16..8192);
 * anything else is named on stderr once and 512 used. */
static int card_whatif_t(void)
{
	static int warned;
	const char *v = getenv("MOECARD_WHATIF_T");
	if (!v || !*v)
		return 512;
	char *end = NULL;
	long t = strtol(v, &end, 10);
	if (*end || t < 16 || t > 8192) {
		if (!warned++)
			fprintf(stderr,
				"moecard: MOECARD_WHATIF_T=%s: not a prompt length of 16..8192; "
				"the what-if takes 512\n",
				v);
		return 512;
	}
	return (int)t;
}

/* The prompt figures of card_stats: forwards of more than one token since the restart, end to
 * end (card + link + the modeled host parts), and the batched path's GEMMs against the PE
 * array's peak. */
static void ee_prefill_stats(const struct ee *e, FILE *out, int json)
{
	const struct ee_pf *pf = &e->pf;
	double n = pf->tokens ? (double)pf->tokens : 1;
	double host_ms = pf->host_b / (EE_HOST_MODEL_GBPS * 1e9) * 1e3;
	double ms = (pf->card_ns + pf->link_ns) / 1e6 + host_ms;
	double frac = pf->gemm_ns > 0 && pf->peak > 0 ? pf->macs / (pf->gemm_ns * pf->peak) : 0;
	double gfrac = pf->gv_ns > 0 ? pf->gv_macs / (pf->gv_ns * card_gemv_peak(e)) : 0;
	/* the dry what-if of a prompt of 512 tokens of this model (the same lists, no weights;
	 * MOECARD_WHATIF_T another length) */
	struct card_pf_whatif w = {0};
	int wt = card_whatif_t();
	int hw = 0;
	if (e->pf_on && e->pf_rule_T == wt) { /* the prefill rule's, at open */
		w = e->pf_rule_w;
		hw = 1;
	} else if (e->pf_on) {
		hw = !card_engine_whatif_prefill(e->c, e->be, wt, &w);
	}
	if (json) {
		if (hw)
			fprintf(out,
				",\"whatif_prefill_T\":%d,\"whatif_prefill_e2e_ms\":%.3f,"
				"\"whatif_prefill_tok_s\":%.2f,\"whatif_prefill_pe_frac\":%.4f,"
				"\"whatif_prefill_token_loop_tok_s\":%.2f,"
				"\"whatif_prefill_speedup\":%.3f,\"whatif_prefill_gemm_ms\":%.3f,"
				"\"whatif_prefill_attn_ms\":%.3f,\"whatif_prefill_on_gemv\":%d,"
				"\"whatif_prefill_gemv_ms\":%.3f,"
				"\"whatif_prefill_gemv_pe_frac\":%.4f,"
				"\"whatif_prefill_gemm_cus_tok_s\":%.2f,"
				"\"whatif_prefill_gemv_cu_tok_s\":%.2f,"
				"\"whatif_prefill_attn_form\":\"%s\"",
				wt, w.e2e_ms, w.tok_s, w.pe_frac, w.loop_tok_s,
				w.loop_e2e_ms / w.e2e_ms, w.gemm_ms, w.attn_ms, w.rows_big, w.gv_ms,
				w.gv_pe_frac, w.gemm_tok_s, w.rows_tok_s,
				w.absorbed ? "absorbed" : "non-absorbed");
		fprintf(out,
			",\"prefill_path\":\"%s\",\"prefill_tokens\":%llu,"
			"\"prefill_batched_tokens\":%llu,\"prefill_mha_tokens\":%llu,"
			"\"prefill_chunk\":%d,\"modeled_prefill_card_ms\":%.4f,"
			"\"modeled_prefill_link_ms\":%.4f,\"modeled_prefill_host_ms\":%.4f,"
			"\"modeled_prefill_ms\":%.4f,\"modeled_prefill_tok_s\":%.2f,"
			"\"prefill_gemm_pe_frac\":%.4f,\"prefill_gemv_pe_frac\":%.4f,"
			"\"prefill_gemm_experts\":%llu,\"prefill_handovers\":%llu,"
			"\"prefill_ffn_gemm_ranges\":%llu",
			!e->pf_on    ? "token loop"
			: e->pf_loop ? "token loop (rule)"
				     : "batched",
			(unsigned long long)pf->tokens, (unsigned long long)pf->batched,
			(unsigned long long)pf->mha_tokens, e->pf_on ? pf->chunk : 0,
			pf->card_ns / 1e6, pf->link_ns / 1e6, host_ms, ms,
			pf->tokens && ms > 0 ? n / ms * 1e3 : 0, frac, gfrac,
			(unsigned long long)pf->hyb_experts, (unsigned long long)pf->handovers,
			(unsigned long long)pf->ffn_gemm);
		return;
	}
	if (hw)
		fprintf(
		    out,
		    "  prefill what-if (dry, this model, %d tokens from position 0): %.3f ms end "
		    "to end, %.1f tok/s vs %.1f tok/s token by token (%.2fx); %s, attention "
		    "%.3f ms (CU time, summed; the %s form)\n",
		    wt, w.e2e_ms, w.tok_s, w.loop_tok_s, w.loop_e2e_ms / w.e2e_ms, pf_where(&w),
		    w.attn_ms, w.absorbed ? "absorbed" : "non-absorbed");
	if (e->pf_loop)
		fprintf(
		    out,
		    "  prefill rule   prompts past %d rows run token by token: a %d-token prompt "
		    "models %.1f tok/s batched, %.1f tok/s token by token on this board "
		    "(MOECARD_CARD_PREFILL=1 keeps the batched path)\n",
		    FP8_GEMV_MAX_M, pf->chunk, e->pf_rule_w.tok_s, e->pf_rule_w.loop_tok_s);
	if (!pf->tokens)
		return;
	char gemms[192];
	if (pf->gemm_ns > 0 && pf->gv_ns > 0) /* the rows path with experts on the GEMM CUs */
		snprintf(gemms, sizeof gemms,
			 "the rows on the GEMV CU at %.1f%% of its peak, %llu experts' rows on the "
			 "GEMM CUs at %.1f%% of the PE array's peak",
			 100 * gfrac, (unsigned long long)pf->hyb_experts, 100 * frac);
	else if (pf->gemm_ns > 0)
		snprintf(gemms, sizeof gemms, "the GEMMs at %.1f%% of the PE array's peak",
			 100 * frac);
	else /* every forward took the rows path (short prompts, MTP verification; pf.rows_big) */
		snprintf(gemms, sizeof gemms,
			 "no GEMM: the rows ran on the GEMV CU, at %.1f%% of its peak",
			 100 * gfrac);
	fprintf(out,
		"  prefill        %llu prompt tokens (%llu batched, %llu of them in the "
		"non-absorbed form; chunks of %d): modeled %.3f ms end to end (%.1f tok/s): card "
		"%.3f + link %.3f + host %.3f ms; %s\n",
		(unsigned long long)pf->tokens, (unsigned long long)pf->batched,
		(unsigned long long)pf->mha_tokens, e->pf_on ? pf->chunk : 0, ms, n / ms * 1e3,
		pf->card_ns / 1e6, pf->link_ns / 1e6, host_ms, gemms);
}

/* The DMA driver under the card's fills (drivers/dma.h, since the backend opened): transfers,
 * fences, errors, bytes; and the DMA_FILL commands the card completed, which it carried. */
static void ee_dma_stats(const struct backend_stats *s, FILE *out, int json)
{
	if (!s->dma_engine)
		return;
	const struct dma_stats *d = &s->dma;
	if (json) {
		fprintf(out,
			",\"dma_driver\":\"%s\",\"dma_xfers\":%llu,\"dma_xfers_failed\":%llu,"
			"\"dma_descs\":%llu,\"dma_bytes\":%llu,\"dma_fences\":%llu,"
			"\"dma_faults\":%llu,\"card_fills\":%llu,"
			"\"card_fill_bytes\":%llu",
			s->dma_engine, (unsigned long long)d->xfers,
			(unsigned long long)d->xfers_bad, (unsigned long long)d->descs,
			(unsigned long long)d->bytes, (unsigned long long)d->fences,
			(unsigned long long)d->faults, (unsigned long long)s->fills,
			(unsigned long long)s->fill_bytes);
		return;
	}
	fprintf(out,
		"  DMA driver     %s: %llu transfers (%llu failed, %llu faults injected), %llu "
		"descriptors, %.2f MB, fences to %llu; card fills %llu (%.2f MB)\n",
		s->dma_engine, (unsigned long long)d->xfers, (unsigned long long)d->xfers_bad,
		(unsigned long long)d->faults, (unsigned long long)d->descs, d->bytes / 1e6,
		(unsigned long long)d->fences, (unsigned long long)s->fills, s->fill_bytes / 1e6);
}

/* The prefill what-if of every board runs when MOECARD_WHATIF_PREFILL names the build directory
 * (B: the board trees in B/board/; `moecard bench` sets it, beside the program): 1 and dir. */
static int ee_whatif_dir(const struct ee *e, char *dir, size_t n)
{
	const char *d = getenv("MOECARD_WHATIF_PREFILL");
	(void)e;
	if (!d || !*d || !strcmp(d, "0"))
		return 0;
	snprintf(dir, n, "%s", d);
	return 1;
}

void card_stats(struct engine *en, FILE *out, int json)
{
	struct ee *e = ee_of(en);
	char dir[1024];
	struct backend_stats s;
	backend_stats(e->be, &s);
	if (!(backend_caps(e->be) & BACKEND_CAP_CARD_CLOCK))
		return; /* no card clock to report */
	/* per decode token: the prompt's forwards (ee_pf.in_prompt) apart, unless there was nothing
	 * else */
	const struct ee_pf *pf = &e->pf;
	int dec = e->tokens > pf->p_tokens;
	double n = dec ? (double)(e->tokens - pf->p_tokens) : e->tokens ? (double)e->tokens : 1;
	double card = ((double)(s.busy_ns - e->card0) - (dec ? pf->p_card_ns : 0)) / n / 1e6;
	double link =
	    ((double)(s.h2c_ns + s.c2h_ns - e->link0) - (dec ? pf->p_link_ns : 0)) / n / 1e6;
	double cmds = ((double)(s.cmds - e->cmds0) - (dec ? (double)pf->p_cmds : 0)) / n;
	double subs = ((double)(s.submits - e->subs0) - (dec ? (double)pf->p_subs : 0)) / n;
	/* the expert cache's figures count every token (its fills serve the prompt too) */
	double n_all = e->tokens ? (double)e->tokens : 1;
	double card_all = (double)(s.busy_ns - e->card0) / n_all / 1e6;
	double link_all = (double)(s.h2c_ns + s.c2h_ns - e->link0) / n_all / 1e6;
	double bytes = ee_decode_bytes(e->c, en->pos / 2, 0);
	double roof = bytes / (backend_board(e->be)->mem_bw_mbps * 1e6) * 1e3; /* ms */
	/* modeled host parts: what the host read for the router and lm_head, and sampling */
	double gbps = EE_HOST_MODEL_GBPS * 1e9;
	double h_route = (e->host_route_b - (dec ? pf->p_route_b : 0)) / n / gbps * 1e3;
	double h_head = (e->host_head_b - (dec ? pf->p_head_b : 0)) / n / gbps * 1e3;
	/* sampling reads the logits of the tokens whose logits came back (not forward_top1's) */
	double lg_tok = n - (double)e->top1_tokens > 0 ? (n - (double)e->top1_tokens) / n : 0;
	double h_sample =
	    ((double)e->c->vocab_size * 4 * lg_tok + e->c->hidden_size * 2) / gbps * 1e3;
	double host = h_route + h_head + h_sample, e2e = card + link + host;
	char design[160];
	static const char *const kvf[] = {"f32", "bf16", "fp8"};
	if (e->gv)
		snprintf(design, sizeof design, "GEMV CU (%u lanes)%s%s%s", e->gv_lanes,
			 e->gv_route ? ", router on the card" : "",
			 e->gv_head ? ", lm_head on the card" : "",
			 e->gv_attn
			     ? (e->kv_fmt == ABI_KV_BF16 ? ", striped attention (bf16 cache)"
				: e->attn_fp8 ? ", striped attention (fp8 cache, fp8 datapath)"
				: e->kv_fmt == ABI_KV_FP8 ? ", striped attention (fp8 cache)"
							  : ", striped attention (f32 cache)")
			     : "");
	else if (e->gv_attn)
		snprintf(design, sizeof design,
			 "fp8_gemm CUs, striped attention (%u lanes, %s cache%s)", e->gv_lanes,
			 kvf[e->kv_fmt < 3 ? e->kv_fmt : 0], e->attn_fp8 ? ", fp8 datapath" : "");
	else
		snprintf(design, sizeof design, "fp8_gemm CUs, %s cache", kvf[0]);
	if (json) {
		fprintf(out,
			"{\"backend\":\"emu\",\"tokens\":%llu,\"modeled_card_ms_per_tok\":%.4f,"
			"\"modeled_link_ms_per_tok\":%.4f,\"cmds_per_tok\":%.1f,"
			"\"submits_per_tok\":%.2f,\"host_sched_us_per_tok\":%.1f,"
			"\"host_compute_us_per_tok\":%.1f,\"host_wall_ms_per_tok\":%.3f,"
			"\"modeled_hbm_roofline_frac\":%.4f,\"modeled_e2e_ms_per_token\":%.4f,"
			"\"modeled_host_router_ms_per_tok\":%.4f,\"modeled_host_lm_head_ms_per_"
			"tok\":%.4f,"
			"\"modeled_host_sample_ms_per_tok\":%.4f,\"modeled_e2e_hbm_roofline_frac\":"
			"%.4f,"
			"\"card_design\":\"%s\",\"gemv_lanes\":%u,\"route_checked\":%llu,"
			"\"route_diff\":%llu",
			(unsigned long long)e->tokens, card, link, cmds, subs, e->t_sched / n * 1e6,
			e->t_host / n * 1e6, e->t_wall / n * 1e3, roof / card, e2e, h_route, h_head,
			h_sample, roof / e2e, design, e->gv ? e->gv_lanes : 0,
			(unsigned long long)e->route_checked, (unsigned long long)e->route_diff);
		if (e->xc)
			ee_xc_stats(e, out, 1, n_all, card_all, link_all);
		ee_prefill_stats(e, out, 1);
		ee_dma_stats(&s, out, 1);
		ee_whatif_671b(e->be, out, 1);
		if (ee_whatif_dir(e, dir, sizeof dir))
			card_engine_whatif_prefill_boards(dir, out, 1);
		fprintf(out, "}\n");
		return;
	}
	fprintf(out,
		"emu card (%s): %llu tokens through the main model (per token below: the %llu "
		"after the prompt)\n"
		"  modeled card   %.4f ms/token (kernels + firmware, card clock)\n"
		"  modeled link   %.4f ms/token (host<->card transfers over PCIe)\n"
		"  commands       %.1f per token, %.2f submissions per token\n"
		"  host           %.1f us/token scheduling, %.1f us/token router + lm_head, "
		"%.3f ms/token wall (emulation included)\n"
		"  modeled e2e    %.4f ms/token (%.1f tok/s): card + link + host parts (router "
		"%.4f, lm_head %.4f, sampling %.4f ms, host memory traffic modeled at %.0f GB/s)\n"
		"  HBM roofline   %.4f ms/token for %.2f MB/token: card alone %.1f%% of it, end to "
		"end %.1f%%\n"
		"  design         %s\n",
		backend_board(e->be)->model, (unsigned long long)e->tokens,
		(unsigned long long)(dec ? e->tokens - pf->p_tokens : e->tokens), card, link, cmds,
		subs, e->t_sched / n * 1e6, e->t_host / n * 1e6, e->t_wall / n * 1e3, e2e,
		1e3 / e2e, h_route, h_head, h_sample, EE_HOST_MODEL_GBPS, roof, bytes / 1e6,
		100 * roof / card, 100 * roof / e2e, design);
	if (e->route_check)
		fprintf(out,
			"  router check   %llu card routings re-run on the host: %llu differ\n",
			(unsigned long long)e->route_checked, (unsigned long long)e->route_diff);
	if (e->xc)
		ee_xc_stats(e, out, 0, n_all, card_all, link_all);
	ee_prefill_stats(e, out, 0);
	ee_dma_stats(&s, out, 0);
	ee_whatif_671b(e->be, out, 0);
	if (ee_whatif_dir(e, dir, sizeof dir))
		card_engine_whatif_prefill_boards(dir, out, 0);
}

/* One bank (the operand's) for the profiler, or -1 for none. */
static int ee_prof_bank(uint64_t a)
{
	return a ? (int)ABI_ADDR_BANK(a) : -1;
}

void card_prof_cmd(const struct ee *e, uint32_t i, struct prof_cmd *pc, uint64_t *lane)
{
	const struct abi_cmd *c = &e->list.cmd[i];
	uint32_t op = ABI_W0_OP(c->hdr.word0), L = e->gv_lanes ? e->gv_lanes : 1;
	memset(pc, 0, sizeof *pc);
	pc->pc0 = pc->pc1 = -1;
	pc->expert = -1;
	switch (op) {
	case ABI_OP_GEMV: {
		/* each group's tiles of FP8_GEMV_R rows, tile t on lane (lane0 + t) % L */
		const struct gvtab *t = e->list.gt[i];
		uint32_t m = c->u.gemv.m ? c->u.gemv.m : 1;
		memset(lane, 0, sizeof(uint64_t) * L);
		for (int g = 0; t && t->g && g < t->ng && g < (int)c->u.gemv.ng; g++) {
			const struct fp8_gemv_grp *gr = &t->g[g];
			uint32_t rows = gr->n * ((gr->flags & FP8_GEMV_SILU_MUL) ? 2u : 1u);
			uint64_t es = (gr->flags & FP8_GEMV_W_BF16) ? 2 : 1;
			uint64_t tb = (uint64_t)FP8_GEMV_R * gr->k * es;
			uint32_t tiles = (rows + FP8_GEMV_R - 1) / FP8_GEMV_R;
			for (uint32_t k = 0; k < tiles; k++)
				lane[(gr->lane0 + k) % L] += tb;
			pc->bytes += (uint64_t)tiles * tb;
			pc->macs += (double)m * rows * gr->k;
		}
		pc->pc0 = 0;
		pc->pc1 = (int)L - 1;
		pc->pc_bytes = lane;
		break;
	}
	case ABI_OP_MLA_ATTN_LANES: {
		const struct abi_mla_lanes *a = &c->u.mlal;
		uint64_t rec = abi_kv_record_bytes(ABI_KV_FMT(a->word), a->kv_lora, a->rope);
		memset(lane, 0, sizeof(uint64_t) * L);
		pc->bytes = 0;
		pc->macs = 0;
		/* each row's context (rows: the host copy of the table the forward wrote) */
		for (uint32_t r = 0; r < (a->rows > 1 ? a->rows : 1); r++) {
			uint32_t nc =
			    a->rows > 1 ? card_pf_atab_host(e, a->tab)[2 * r + 1] : a->n_ctx;
			for (uint32_t b = 0; b * 32 < nc; b++) {
				uint32_t n = nc - b * 32 < 32 ? nc - b * 32 : 32;
				lane[b % L] += rec * n;
			}
			pc->bytes += rec * nc;
			pc->macs += (double)a->n_heads * nc * (2.0 * a->kv_lora + a->rope);
		}
		pc->pc0 = 0;
		pc->pc1 = (int)L - 1;
		pc->pc_bytes = lane;
		break;
	}
	case ABI_OP_MLA_ATTN: {
		const struct abi_mla *a = &c->u.mla;
		pc->bytes = (uint64_t)a->n_ctx * (a->kv_lora + a->rope) * 4;
		pc->macs = (double)a->n_heads * a->n_ctx * (2.0 * a->kv_lora + a->rope);
		pc->pc0 = pc->pc1 = ee_prof_bank(a->kv);
		break;
	}
	case ABI_OP_GEMM_FP8: {
		const struct abi_gemm *g = &c->u.gemm;
		uint64_t rows = (uint64_t)g->n * ((g->flags & ABI_GEMM_F_SILU_MUL) ? 2 : 1);
		pc->bytes = rows * g->k + (uint64_t)g->m * g->k;
		pc->macs = card_gemm_macs(c);
		pc->pc0 = pc->pc1 = ee_prof_bank(g->w);
		break;
	}
	case ABI_OP_MOE_ROUTE:
		pc->bytes = (uint64_t)c->u.route.e * (c->u.route.bias ? 8 : 4);
		pc->pc0 = pc->pc1 = ee_prof_bank(c->u.route.logit);
		break;
	case ABI_OP_KV_APPEND:
		pc->bytes = (uint64_t)(c->u.kv.rows > 1 ? c->u.kv.rows : 1) * c->u.kv.row * 4;
		pc->pc0 = pc->pc1 = ee_prof_bank(c->u.kv.src);
		break;
	case ABI_OP_DMA_FILL:
		pc->bytes = c->u.dma.bytes;
		pc->expert = (int)ABI_DMA_WORD_SLOT(c->u.dma.word);
		break;
	case ABI_OP_BARRIER:
	case ABI_OP_FENCE:
	case ABI_OP_NOP:
	case ABI_OP_TIMESTAMP:
		break;
	default: { /* vector ops: x (and x2) read, f32 */
		const struct abi_vec *v = &c->u.vec;
		pc->bytes = (uint64_t)v->rows * v->cols * 4 * (v->x2 ? 2 : 1);
		pc->pc0 = pc->pc1 = ee_prof_bank(v->x);
	}
	}
}

void card_prof_other(void *ctx, FILE *f)
{
	struct ee *e = ctx;
	struct backend_stats s;
	backend_stats(e->be, &s);
	ee_dma_stats(&s, f, 1);
}
