/*
 * expert_trace.h - routing traces of the MoE layers (docs/expert-cache.md): which experts every
 * token chose in every MoE layer, with their router weights and the look-ahead predictions, for
 * offline study and for `moecard cache-sim`.
 *
 * Data flow: model_forward -> model.layer_hook after every decoder layer (cpu engine), or the emu
 * engine's layer step (the residual read back from the card before each layer, the route after
 * its host router) -> expert_trace_writer_record writes one record per (MoE layer, token) from
 * the engine's choice, and expert_trace_writer_predict runs the gates of the next one and two MoE
 * layers on the current residual stream (look-ahead prediction, with the model's router,
 * router.h, docs/model.md, Router) -> trace file -> expert_trace_load (validated) -> expert_cache.h
 * replay under every policy. Both engines write the same records; the MTP layer is not traced.
 *
 * File format (version 1, little-endian, no padding; field offsets below are bytes):
 *   header, EXPERT_TRACE_HDR_BYTES = 64:
 *     0 u32 magic EXPERT_TRACE_MAGIC ("MCXT")   4 u16 version   6 u16 header bytes (64)
 *     8 u32 num_hidden_layers  12 u32 first_k_dense_replace  16 u32 n_routed_experts
 *    20 u32 num_experts_per_tok (k)  24 u32 hidden_size  28 u32 moe_intermediate_size
 *    32 u64 expert_bytes (one routed expert: FP8 gate+up+down codes and their F32 scales)
 *    40 u64 layer_bytes (bytes one token reads per MoE layer besides its routed experts:
 *           attention projections, shared expert, router)
 *    48 u64 other_bytes (bytes one token reads outside the MoE layers: dense layers, lm_head)
 *    56 u32 record bytes (8 + 16 k)  60 u32 flags (0)
 *   then records of 8 + 16 k bytes:
 *     i32 layer, i32 token position, i32 expert[k], f32 weight[k] (routed_scaling_factor applied),
 *     i32 pred1[k] (layer's experts predicted from the residual stream after decoder layer
 *     layer-1: layer's post-attention norm and gate applied to it; -1 = none),
 *     i32 pred2[k] (the same from the residual stream after layer-2; -1 = none)
 */
#ifndef MOECARD_EXPERT_TRACE_H
#define MOECARD_EXPERT_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "load/config.h"

#define EXPERT_TRACE_MAGIC 0x5458434Du /* "MCXT" little-endian */
#define EXPERT_TRACE_VERSION 1
#define EXPERT_TRACE_HDR_BYTES 64
#define EXPERT_TRACE_MAX_K 64	     /* most experts per token the format accepts */
#define EXPERT_TRACE_MAX_E 65536     /* most routed experts per layer */
#define EXPERT_TRACE_MAX_LAYERS 4096 /* most decoder layers */

/* Model shape stored in the header. */
struct expert_trace_shape {
	uint32_t n_layers;     /* num_hidden_layers */
	uint32_t first_dense;  /* first_k_dense_replace: layers [0, first_dense) are dense */
	uint32_t n_experts;    /* n_routed_experts */
	uint32_t k;	       /* num_experts_per_tok */
	uint32_t hidden;       /* hidden_size */
	uint32_t moe_inter;    /* moe_intermediate_size */
	uint64_t expert_bytes; /* bytes of one routed expert (codes + scales) */
	uint64_t layer_bytes;  /* bytes per token per MoE layer besides routed experts */
	uint64_t other_bytes;  /* bytes per token outside the MoE layers */
};

/* A loaded trace: n records in file order. */
struct expert_trace {
	struct expert_trace_shape s;
	size_t n;	 /* records */
	int32_t *layer;	 /* [n] MoE layer index, first_dense <= layer < n_layers */
	int32_t *pos;	 /* [n] token position, >= 0 */
	int32_t *expert; /* [n][k] chosen experts, distinct, < n_experts */
	float *weight;	 /* [n][k] router weights, finite */
	int32_t *pred1;	 /* [n][k] prediction one layer ahead, -1 = none */
	int32_t *pred2;	 /* [n][k] prediction two layers ahead, -1 = none */
};

/*
 * expert_trace_shape_from_config - the header shape for config c (byte counts by formula,
 * FP8 weights with 128x128 F32 scales, BF16 router and lm_head). Returns 0, or -EINVAL when the
 * config has no MoE layers.
 */
int expert_trace_shape_from_config(const struct config *c, struct expert_trace_shape *s);

/*
 * expert_trace_parse - validates and loads a trace image buf[0..len); src names it in messages.
 * Errors (one line "<src>: <field>: <what>" in err): -EINVAL bad magic, version, header field,
 * size or record (record index and field named), -ENOMEM.
 */
int expert_trace_parse(const void *buf, size_t len, const char *src, struct expert_trace *t,
		       char *err, size_t errlen);

/* expert_trace_encode_header - the 64 header bytes for shape s (writers, tests, fuzz seeds). */
void expert_trace_encode_header(const struct expert_trace_shape *s,
				uint8_t out[EXPERT_TRACE_HDR_BYTES]);

/* expert_trace_encode_record - one record of 8 + 16 k bytes into out; pred1/pred2 may be NULL
 * (no prediction, -1). Returns the record size. */
size_t expert_trace_encode_record(uint32_t k, int32_t layer, int32_t pos, const int32_t *expert,
				  const float *weight, const int32_t *pred1, const int32_t *pred2,
				  uint8_t *out);

/* expert_trace_load - reads file path and expert_trace_parse's it; -errno of open/read too. */
int expert_trace_load(const char *path, struct expert_trace *t, char *err, size_t errlen);

/* expert_trace_free - frees a loaded trace (safe on a zeroed one). */
void expert_trace_free(struct expert_trace *t);

/* Prediction accuracy of a trace: mean fraction of the k chosen experts that were predicted. */
struct expert_trace_acc {
	size_t n1, n2;		 /* records with a distance-1 / distance-2 prediction */
	double recall1, recall2; /* mean |pred ∩ chosen| / k over those records */
	double exact1, exact2;	 /* fraction of those records predicted exactly (as a set) */
};
void expert_trace_accuracy(const struct expert_trace *t, struct expert_trace_acc *a);

struct model;
struct engine;
struct kern_ctx;
struct layer_weights;

/*
 * expert_trace_predict - the experts MoE layer lw's router would choose for rows x[T][hidden] of
 * the residual stream: lw's post_attention_layernorm, its gate (products in kc, as the engine's
 * router runs them), then the model's router (router.h). xn [T][hidden] and logit
 * [T][n_routed_experts] are scratch; out [T][k]. The look-ahead of the writer below (pred1/pred2)
 * for every engine. Returns 0 or kern_matmul's error.
 */
int expert_trace_predict(const struct config *c, const struct layer_weights *lw,
			 struct kern_ctx *kc, const float *x, int T, float *xn, float *logit,
			 int32_t *out);

/*
 * The trace writer. The cpu engine's model calls it from its layer_hook (expert_trace_writer_open);
 * an engine that routes the MoE layers on the host by itself (emu, xrt: engine_ops.expert_trace)
 * calls expert_trace_writer_predict / _record at the same points of its forward pass. Allocated at
 * open, nothing per token.
 */
struct expert_trace_writer {
	FILE *f;	  /* the open trace file */
	const char *path; /* for messages */
	const struct config *c;
	const struct layer_weights *layers; /* [num_hidden_layers] (gates, norms, biases) */
	struct model *m;  /* the hooked model (cpu), NULL when an engine calls the writer */
	struct engine *e; /* the engine writing through engine_ops.expert_trace, or NULL */
	struct expert_trace_shape s;
	int max_batch;		/* rows of the buffers */
	int32_t *pred;		/* [2][n_layers][max_batch][k] predictions waiting for their layer,
	                            -1 = none */
	float *xn;		/* [max_batch][hidden] normed residual for a look-ahead gate */
	float *logit;		/* [max_batch][n_experts] gate logits */
	int32_t *idx;		/* [max_batch][k] scratch */
	uint8_t *rec;		/* [8 + 16 k] record bytes */
	uint64_t records;	/* records written */
	uint64_t self_mismatch; /* tokens where re-running the layer's own gate on its normed input
	                            did not give the engine's choice (must stay 0) */
	int error;		/* first write error (negative errno), 0 = none */
	void (*prev_hook)(void *, struct model *, int, int, int); /* chained hook, may be NULL */
	void *prev_ctx;
};

/*
 * expert_trace_writer_init - opens path and writes the header for config c; layers are the
 * model's decoder layers, max_batch the most rows of one call. No hook is installed.
 * Errors: -errno of fopen/fwrite, -ENOMEM, -EINVAL (no MoE layers); one line naming the file in
 * err.
 */
int expert_trace_writer_init(struct expert_trace_writer *w, const struct config *c,
			     const struct layer_weights *layers, int max_batch, const char *path,
			     char *err, size_t errlen);

/*
 * expert_trace_writer_open - expert_trace_writer_init for model m, then installs the hook on m (a
 * previous hook keeps being called first): after every decoder layer of model_forward it records
 * a MoE layer's choice (m->ridx / m->rw) and predicts from m->x. The MTP layer is not traced
 * (model_mtp_forward calls no hook). Errors as expert_trace_writer_init.
 */
int expert_trace_writer_open(struct expert_trace_writer *w, struct model *m, const char *path,
			     char *err, size_t errlen);

/*
 * expert_trace_writer_record - rows t < T of MoE layer `layer` at positions pos0 + t chose
 * idx[t][k] with router weights rw[t][k] (routed_scaling_factor applied): one record each, with
 * the predictions made for them so far (then cleared). xn: NULL, or the layer's normed input
 * [T][hidden], on which the layer's gate is re-run (products in kc) to count self_mismatch.
 * Returns 0 or the writer's first error (also kept in w->error; later calls do nothing).
 */
int expert_trace_writer_record(struct expert_trace_writer *w, struct kern_ctx *kc, int layer,
			       int pos0, int T, const int *idx, const float *rw, const float *xn);

/*
 * expert_trace_writer_predict - x[T][hidden] is the residual stream after decoder layer `layer`:
 * predicts the next two MoE layers' experts from it (expert_trace_predict, products in kc) as
 * their pred1 / pred2. expert_trace_writer_wants tells whether that has anything to predict
 * (layer+1 or layer+2 is a MoE layer), so that an engine reads x back only then. Errors as
 * expert_trace_writer_record.
 */
int expert_trace_writer_predict(struct expert_trace_writer *w, struct kern_ctx *kc, int layer,
				const float *x, int T);
int expert_trace_writer_wants(const struct expert_trace_writer *w, int layer);

/* expert_trace_writer_close - restores the model's previous hook, flushes and closes. Returns 0,
 * or the first write error (negative errno). Safe on a zeroed writer. */
int expert_trace_writer_close(struct expert_trace_writer *w);

/*
 * expert_trace_attach - `--expert-trace F` for an engine: the cpu engine's host model gets the
 * hook (expert_trace_writer_open); an engine with engine_ops.expert_trace (emu, xrt) gets a writer
 * it calls itself. *out gets the writer, to be closed with expert_trace_detach before engine_free.
 * Errors: -ENOTSUP the engine does not route on the host, those of expert_trace_writer_init.
 */
int expert_trace_attach(struct engine *e, const char *path, struct expert_trace_writer **out,
			char *err, size_t errlen);
int expert_trace_detach(struct expert_trace_writer *w);

#endif
