/*
 * card_engine.h - what the card scheduler (card_engine.c) exposes beyond engine.h: the backend an emu
 * engine runs on (tests arm faults and read statistics through it) and the what-if timing of the
 * same command lists for any model shape (no weights, no card memory).
 */
#ifndef MOECARD_CARD_ENGINE_H
#define MOECARD_CARD_ENGINE_H

#include "backend/backend.h"
#include "load/config.h"
#include "engine/engine.h"

/* The backend under an engine opened with "emu" (NULL for other engines). */
struct backend *card_engine_backend(struct engine *e);

/*
 * card_engine_whatif - modeled card ns of one decode token of config c at context position pos on
 * be's board (the scheduler's lists in dry mode, timed with the kernels' timing models and the
 * firmware cost; all routed experts resident) and the bytes an ideal decode reads from HBM.
 * gemv 1: through the board's GEMV CU when it has one (as the engine runs), 0: the fp8_gemm CUs.
 * Returns 0 or -ENOMEM / -E2BIG.
 */
/* A modeled token end to end: card, link and host parts (ms). */
struct card_e2e {
	double card_ms, link_ms, host_router_ms, host_head_ms, host_sample_ms, e2e_ms;
	double gemv_ms, attn_ms; /* card time of the weight GEMVs / GEMMs and of attention */
	double gemv_bytes_ms;	 /* the weights' bytes at the board's full HBM rate */
	double side_ms;		 /* of those, the time the GEMV CU and the attention ran at once */
	int fp8_attn; /* in: the what-if with the FP8 cache and the attention's FP8 datapath */
};
void card_host_model(const struct config *c, const struct board_desc *bd, int route_on_card,
		     int head_on_card, int greedy, struct card_e2e *m);
/* card_engine_whatif with the end-to-end parts into *m (may be NULL). */
int card_engine_whatif2(const struct config *c, const struct backend *be, int pos, int gemv,
			double *card_ns, double *hbm_bytes, struct card_e2e *m);
int card_engine_whatif(const struct config *c, const struct backend *be, int pos, int gemv,
		       double *card_ns, double *hbm_bytes);

/* A modeled prompt of T tokens from position 0, end to end (ms), through the batched prefill
 * (the same lists as the engine's, dry) and, for comparison, through the token loop (the decode
 * what-if at positions 0 and T - 1, the attention's cost being linear in the position between). */
struct card_pf_whatif {
	double card_ms, link_ms, host_ms, e2e_ms, tok_s; /* the batched path */
	double gemm_ms, attn_ms;			 /* card time of the GEMMs, attention */
	double pe_frac;	    /* the GEMMs' MACs against the PE array's peak over their time */
	double gv_ms;	    /* card time of the GEMV commands */
	double gv_pe_frac;  /* their MACs against the GEMV CU's peak over their time */
	double loop_e2e_ms; /* the token loop's end to end ms for the same prompt */
	double loop_tok_s;  /* its tok/s */
	int absorbed;	    /* the attention form the rule chose (pf_mha_rule): 1 absorbed */
	int rows_big;	    /* the figures above put the GEMM work on the GEMV CU (the rows path
			       in blocks of 16 rows), not on the GEMM CUs: the faster of the two */
	double
	    gemm_tok_s; /* the batched path's tok/s with the GEMM work on the GEMM CUs (0: n/a) */
	double rows_tok_s; /* ... on the GEMV CU (0: n/a) */
};
/* 0, -ENOTSUP when be's board cannot run the batched path, or another negative errno. */
int card_engine_whatif_prefill(const struct config *c, const struct backend *be, int T,
			       struct card_pf_whatif *w);
/* The 671B prefill what-if at T = 128, 512 and 2048 on every board of dir (emu, u55c, u280,
 * v80: DIR/board/<name>.dtb), as JSON members (json) or lines of text. */
void card_engine_whatif_prefill_boards(const char *dir, FILE *out, int json);

#endif
