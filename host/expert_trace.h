/*
 * expert_trace.h - routing traces of the MoE layers (issue 7): which experts every token chose in
 * every MoE layer, with their router weights and the look-ahead predictions, for offline study and
 * for `moecard cache-sim`.
 *
 * Data flow: model_forward -> model.layer_hook after every decoder layer -> expert_trace_hook
 * writes one record per (MoE layer, token) from m->ridx / m->rw, and runs the gates of the next
 * one and two MoE layers on the current residual stream (look-ahead prediction, with the model's
 * router, router.h, MODEL.md section 7) -> trace file -> expert_trace_load (validated) ->
 * expert_cache.h replay under every policy.
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
#include "config.h"

#define EXPERT_TRACE_MAGIC 0x5458434Du /* "MCXT" little-endian */
#define EXPERT_TRACE_VERSION 1
#define EXPERT_TRACE_HDR_BYTES 64
#define EXPERT_TRACE_MAX_K 64        /* most experts per token the format accepts */
#define EXPERT_TRACE_MAX_E 65536     /* most routed experts per layer */
#define EXPERT_TRACE_MAX_LAYERS 4096 /* most decoder layers */

/* Model shape stored in the header. */
struct expert_trace_shape {
	uint32_t n_layers;       /* num_hidden_layers */
	uint32_t first_dense;    /* first_k_dense_replace: layers [0, first_dense) are dense */
	uint32_t n_experts;      /* n_routed_experts */
	uint32_t k;              /* num_experts_per_tok */
	uint32_t hidden;         /* hidden_size */
	uint32_t moe_inter;      /* moe_intermediate_size */
	uint64_t expert_bytes;   /* bytes of one routed expert (codes + scales) */
	uint64_t layer_bytes;    /* bytes per token per MoE layer besides routed experts */
	uint64_t other_bytes;    /* bytes per token outside the MoE layers */
};

/* A loaded trace: n records in file order. */
struct expert_trace {
	struct expert_trace_shape s;
	size_t n;                /* records */
	int32_t *layer;          /* [n] MoE layer index, first_dense <= layer < n_layers */
	int32_t *pos;            /* [n] token position, >= 0 */
	int32_t *expert;         /* [n][k] chosen experts, distinct, < n_experts */
	float *weight;           /* [n][k] router weights, finite */
	int32_t *pred1;          /* [n][k] prediction one layer ahead, -1 = none */
	int32_t *pred2;          /* [n][k] prediction two layers ahead, -1 = none */
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
	size_t n1, n2;           /* records with a distance-1 / distance-2 prediction */
	double recall1, recall2; /* mean |pred ∩ chosen| / k over those records */
	double exact1, exact2;   /* fraction of those records predicted exactly (as a set) */
};
void expert_trace_accuracy(const struct expert_trace *t, struct expert_trace_acc *a);

struct model;
struct engine;

/* The trace writer, hooked into a model's layer_hook. Allocated at attach, nothing per token. */
struct expert_trace_writer {
	FILE *f;                 /* the open trace file */
	const char *path;        /* for messages */
	struct model *m;         /* the hooked model */
	struct expert_trace_shape s;
	int max_batch;           /* rows of the buffers */
	int32_t *pred;           /* [2][n_layers][max_batch][k] predictions waiting for their layer,
	                            -1 = none */
	float *xn;               /* [max_batch][hidden] normed residual for a look-ahead gate */
	float *logit;            /* [max_batch][n_experts] gate logits */
	int32_t *idx;            /* [k] scratch */
	uint8_t *rec;            /* [8 + 16 k] record bytes */
	uint64_t records;        /* records written */
	uint64_t self_mismatch;  /* tokens where re-running the layer's own gate on its normed input
	                            did not give the model's choice (must stay 0) */
	int error;               /* first write error (negative errno), 0 = none */
	void (*prev_hook)(void *, struct model *, int, int, int); /* chained hook, may be NULL */
	void *prev_ctx;
};

/*
 * expert_trace_writer_open - opens path, writes the header for m's config and installs the hook
 * on m (a previous hook keeps being called first). Errors: -errno of fopen/fwrite, -ENOMEM,
 * -EINVAL (no MoE layers); message in err.
 */
int expert_trace_writer_open(struct expert_trace_writer *w, struct model *m, const char *path,
			     char *err, size_t errlen);

/* expert_trace_writer_close - restores the model's previous hook, flushes and closes. Returns 0,
 * or the first write error (negative errno). Safe on a zeroed writer. */
int expert_trace_writer_close(struct expert_trace_writer *w);

/*
 * expert_trace_attach - `--expert-trace F` for an engine: opens a writer on the engine's host
 * model (the cpu engine; an engine that routes on the host exposes its model the same way).
 * *out gets the writer, to be closed with expert_trace_detach before engine_free.
 * Errors: -ENOTSUP the engine has no host model, those of expert_trace_writer_open.
 */
int expert_trace_attach(struct engine *e, const char *path, struct expert_trace_writer **out,
			char *err, size_t errlen);
int expert_trace_detach(struct expert_trace_writer *w);

#endif
