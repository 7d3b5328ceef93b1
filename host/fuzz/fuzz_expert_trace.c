/*
 * fuzz_expert_trace.c - libFuzzer target: expert_trace_parse (host/sched/expert_trace.c) on arbitrary
 * bytes. Any input must either load into a trace whose every record passes the documented bounds
 * (MoE layer, distinct experts below n_routed_experts, finite weights, predictions -1 or in range)
 * or fail with -EINVAL/-ENOMEM and one line naming the source; never crash or read out of bounds.
 * Accepted traces are also replayed by the cache model (expert_cache.h) at a few slot counts.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "sched/expert_cache.h"
#include "sched/expert_trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct expert_trace t;
	char err[256];
	err[0] = 0;
	int rc = expert_trace_parse(data, size, "f.xt", &t, err, sizeof err);
	if (rc) {
		if ((rc != -EINVAL && rc != -ENOMEM) || strchr(err, '\n') ||
		    strncmp(err, "f.xt: ", 6))
			abort();
		return 0;
	}
	size_t k = t.s.k;
	for (size_t i = 0; i < t.n; i++) {
		if (t.layer[i] < (int32_t)t.s.first_dense || t.layer[i] >= (int32_t)t.s.n_layers ||
		    t.pos[i] < 0)
			abort();
		for (size_t j = 0; j < k; j++) {
			int32_t e = t.expert[i * k + j];
			if (e < 0 || e >= (int32_t)t.s.n_experts || !isfinite(t.weight[i * k + j]))
				abort();
			for (size_t q = 0; q < j; q++)
				if (t.expert[i * k + q] == e)
					abort();
		}
	}
	/* bounded replay: small key spaces only, to keep the fuzzer fast */
	if ((uint64_t)t.s.n_layers * t.s.n_experts <= 4096 && t.n <= 4096) {
		struct expert_sim_cfg c = {.card_bw = 1e11, .link_bw = 1e10, .host_bw = 1e10};
		struct expert_sim_result r;
		for (int v = 0; v < EXPERT_POLICY_N * 6; v++) {
			int p = v % EXPERT_POLICY_N;
			c.policy = (enum expert_policy)p;
			c.n_slots = 1 + p * 3;
			c.lookahead = v / EXPERT_POLICY_N % 3;
			c.host_exec = v / EXPERT_POLICY_N / 3;
			rc = expert_sim_run(&t, &c, &r);
			if (rc && rc != -EINVAL)
				abort();
			/* every access is a hit, a DMA'd miss or a host-run miss; ready hits are hits */
			if (!rc &&
			    (r.hits > r.accesses || r.accesses != t.n * k || r.ready > r.hits ||
			     r.hits + r.miss_dma + r.miss_host != r.accesses ||
			     !(r.dma_hidden >= 0 && r.dma_hidden <= 1) || !isfinite(r.time_s)))
				abort();
		}
	}
	expert_trace_free(&t);
	return 0;
}
