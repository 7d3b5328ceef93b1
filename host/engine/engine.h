/*
 * engine.h - one model on one backend, as the CLI and the generation loop see it: forward,
 * MTP forward, KV rollback and statistics behind an ops table. The cpu engine is model.h's
 * direct forward pass; the emu engine (emulated card) and the xrt engine (real card) lower the same
 * layers to firmware command lists through host/backend/backend.h. Everything above this header
 * (run, bench, chat, speculative decoding) is backend-independent.
 */
#ifndef MOECARD_ENGINE_H
#define MOECARD_ENGINE_H

#include <errno.h>
#include <stdio.h>
#include "decode/sample.h"
#include "load/ckpt.h"
#include "model/model.h"

struct engine;
struct expert_trace_writer;

struct engine_ops {
	const char *name;
	/* as model_forward / model_mtp_forward / model_truncate (model.h) */
	int (*forward)(struct engine *e, const int *tokens, int T, float *logits, int all_logits,
		       float *hidden);
	int (*mtp_forward)(struct engine *e, const int *next_tokens, const float *hidden, int T,
			   float *logits, int all_logits);
	void (*truncate)(struct engine *e, int pos, int mtp_pos);
	/* prints backend statistics (modeled card time, commands per token, ...); may be NULL */
	void (*stats)(struct engine *e, FILE *out, int json);
	void (*free)(struct engine *e);
	/* copies the MTP layer's post-norm state (shared_head.norm output) of row `row` (< T) of the
	 * last mtp_forward into hidden[hidden_size]: the input of a chained speculative draft step
	 * (host/decode/spec.c). May be NULL; --spec-depth above 1 then is unavailable. Returns 0. */
	int (*mtp_hidden)(struct engine *e, int row, float *hidden);
	/* --expert-trace on an engine that routes the MoE layers on the host itself (emu, xrt):
	 * from the next forward call on, the engine feeds writer w (expert_trace.h) the residual
	 * stream before each decoder layer and each MoE layer's route, exactly as the cpu engine's
	 * layer hook does; w == NULL stops it (before the writer is closed). May be NULL (cpu: the
	 * writer hooks the model). Returns 0 or -ENOMEM. */
	int (*expert_trace)(struct engine *e, struct expert_trace_writer *w);
	/* Rows of several sequences in one forward, each with its own paged KV cache and
	 * position, and the logits lg (MODEL_LG_*) as model_forward_rows (model.h); the
	 * engine's own cache and pos are untouched. May be NULL (the card engines: one sequence
	 * per engine). */
	int (*forward_rows)(struct engine *e, const int *tokens, int T,
			    const struct model_kv *const *kv, const int *pos, float *logits,
			    int lg);
	/* floats of one KV block of bs positions for forward_rows (NULL with it) */
	size_t (*kv_block_floats)(struct engine *e, int bs);
	/* Rows of several sequences whose KV caches the engine keeps itself (the card engines: a
	 * latent cache per sequence slot in card memory, engine.max_seqs of them; slot 0 is the
	 * engine's own sequence, so forward / truncate and this op should not both be in use):
	 * row i is token tokens[i] of slot seq[i] at position pos[i], each slot's rows at
	 * consecutive positions right after the ones it holds. Logits as lg (MODEL_LG_*, as
	 * model_forward_rows: every row's, the last row's, or each slot's last row's with each
	 * slot's rows consecutive). A sequence's logits are the same alone or batched. May be
	 * NULL. */
	int (*forward_seqs)(struct engine *e, const int *tokens, int T, const int *seq,
			    const int *pos, float *logits, int lg);
	/* The host SIMD path by name (kernels.h: scalar, avx2, avx512, avx512bf16) from the next
	 * forward on, and e->isa with it: 0, or -ENOTSUP when this CPU does not run it. May be NULL
	 * (the card engines). */
	int (*set_isa)(struct engine *e, const char *name);
	/* As forward with logits of the last row only, but the last row's greedy token (the
	 * index sampler_argmax gives on its logits) instead of the logits, picked where the
	 * logits are: the card engines with the head on the GEMV CU read back its 8-byte record
	 * (FP8_GEMV_ARGMAX) instead of the vocabulary's floats. -ENOTSUP when this engine cannot
	 * (then nothing ran); may be NULL. engine_forward_top1 falls back to forward +
	 * sampler_argmax. */
	int (*forward_top1)(struct engine *e, const int *tokens, int T, int *id);
	/* As forward_seqs, but the greedy token of each row lg selects (sampler_argmax on its
	 * logits) in ids, packed as the logits would be, picked where the logits are (the card
	 * engines: the head's 8-byte records). -ENOTSUP when this engine cannot (then nothing
	 * ran); may be NULL. */
	int (*forward_seqs_top1)(struct engine *e, const int *tokens, int T, const int *seq,
				 const int *pos, int *ids, int lg);
	/* As forward_rows, but the greedy token of each row lg selects in ids (the cpu engine's
	 * head screen, model_forward_rows_top1). -ENOTSUP when this engine cannot (then nothing
	 * ran); may be NULL. */
	int (*forward_rows_top1)(struct engine *e, const int *tokens, int T,
				 const struct model_kv *const *kv, const int *pos, int *ids,
				 int lg);
	/* The cpu engine's head screen (head_screen.h): on >= 0 switches it on (1) or off (0),
	 * -1 leaves it; its statistics in st when not NULL. 0, or -ENOTSUP when there is none. May
	 * be NULL. */
	int (*head_screen)(struct engine *e, int on, struct head_screen_stats *st);
};

/* Options beyond model_opts that some backends use. */
struct engine_extra {
	const char *board;	  /* --board FILE.dtb (emu: default board/emu.dts build) */
	const char *board_set;	  /* --set k=v,...: what-if board changes (board_set_list) */
	const char *xclbin;	  /* --xclbin FILE (xrt) */
	const char *backend;	  /* backend the card scheduler opens: NULL = "emu", "xrt" */
	const char *expert_trace; /* --expert-trace FILE: routing trace */
	/* expert cache on the card (emu and xrt engines): */
	int expert_slots;     /* --expert-slots N: card slots for routed experts, 0 = every
	                             routed expert resident (no cache), -1 (--expert-slots board)
	                             = as many as the card's memory holds after the resident set */
	int expert_slots_pct; /* --expert-slots P%: slots = P% of all routed experts (0 = off) */
	const char *expert_policy; /* --expert-policy lru|lfu|pin|belady (NULL = lru) */
	int expert_prefetch; /* --expert-prefetch: DMA the next layer's predicted experts early */
	const char *expert_host; /* --expert-host off|auto|always: misses run on the host CPU
	                             (NULL = off) */
	double expert_host_gbps; /* --expert-host-gbps G: modeled host expert rate, GB/s of weights
	                             (0 = measured at open) */
	const char *expert_events; /* --expert-events F.jsonl: every cache decision */
	const char *kv_format;	   /* --kv-format f32|bf16|fp8: the card's latent KV cache records
				      (NULL = f32; bf16 and fp8 need the striped attention CU) */
	const char *attn_datapath; /* --attn-datapath f32|fp8: the striped attention's arithmetic
				      (fp8: q and p as block integers, exact sums; needs the fp8 cache) */
	int no_mtp; /* the run never uses the MTP layer (--spec none, no --dump-mtp-logits): its
		       weights are not made resident at open (st_populate) */
	int seqs;   /* sequence slots for forward_seqs (serve: --max-batch; 0 or 1: one) */
	const char *huge_pages; /* --huge-pages on|off|auto (NULL = auto): the weights copied into
				   transparent huge pages at open (st_populate) */
	int long_run; /* auto: the engine runs long enough to repay the copy (bench, serve, chat,
			 perplexity over >= ENGINE_HUGE_MIN_SEQ tokens); engines opened for
			 >= ENGINE_HUGE_MIN_SEQ positions copy too */
};

/* --huge-pages auto copies the weights for engines opened for at least this many positions. */
#define ENGINE_HUGE_MIN_SEQ 512

struct engine {
	const struct engine_ops *ops;
	const struct config *c;
	const struct weights *w;
	int max_batch, max_seq; /* limits of forward calls */
	int max_seqs;		/* sequence slots of forward_seqs (0: none) */
	int pos, mtp_pos;	/* tokens in the main / MTP KV caches */
	int act_fp8;		/* numerics mode in use */
	const char *isa;	/* host SIMD path in use */
	int threads;
	void *impl; /* backend's own state */
};

/*
 * engine_open - builds the engine for backend "cpu", "emu" or "xrt". Returns 0, -ENODEV when the
 * backend is not available in this build or on this machine, or another negative errno; a
 * one-line message is in err.
 */
int engine_open(struct engine *e, const char *backend, const struct ckpt *ck,
		const struct model_opts *o, const struct engine_extra *x, char *err, size_t errlen);
void engine_free(struct engine *e);

static inline int engine_forward(struct engine *e, const int *t, int T, float *lg, int all,
				 float *hid)
{
	return e->ops->forward(e, t, T, lg, all, hid);
}
/* The greedy token after feeding t[0..T) (engine_ops.forward_top1, else forward into lg, a
 * [vocab] scratch, and sampler_argmax): the same token either way. */
static inline int engine_forward_top1(struct engine *e, const int *t, int T, int *id, float *lg)
{
	int r = e->ops->forward_top1 ? e->ops->forward_top1(e, t, T, id) : -ENOTSUP;
	if (r != -ENOTSUP)
		return r;
	if (!(r = e->ops->forward(e, t, T, lg, 0, NULL)))
		*id = sampler_argmax(lg, e->c->vocab_size);
	return r;
}
static inline int engine_mtp_forward(struct engine *e, const int *nt, const float *h, int T,
				     float *lg, int all)
{
	return e->ops->mtp_forward(e, nt, h, T, lg, all);
}
static inline void engine_truncate(struct engine *e, int pos, int mtp_pos)
{
	e->ops->truncate(e, pos, mtp_pos);
}

/* engine_cpu_model - the cpu engine's model (its packed head, for bench --kernels), or NULL for
 * another engine. */
const struct model *engine_cpu_model(const struct engine *e);

/* Backend constructors (engine.c dispatches on the name). */
int engine_cpu_open(struct engine *e, const struct ckpt *ck, const struct model_opts *o,
		    const struct engine_extra *x, char *err, size_t errlen);

#endif
