/*
 * cli_info.c - `moecard info --model DIR [--board FILE.dtb]`: opens a checkpoint exactly as
 * `moecard run` does (ckpt_open: config.json, safetensors, binding with every check) and prints
 * the config summary, parameter and byte counts per part (ckpt_stats), the FP8 layout and the
 * KV-cache bytes per token. --board prints the board description (board/) and the resource
 * estimate of its CUs against the part (board/board_res.h).
 */
#include <errno.h>
#include <stdio.h>
#include <jansson.h>
#include <string.h>
#include <stdlib.h>
#include "board.h"
#include "board_res.h"
#include "load/ckpt.h"
#include "cli/cli.h"
#include "cli/cli_opts.h"

static const char *cli_info_scoring(enum config_scoring s)
{
	return s == CONFIG_SCORING_SIGMOID ? "sigmoid" : "softmax";
}

static const char *cli_info_topk(enum config_topk t)
{
	return t == CONFIG_TOPK_NOAUX_TC ? "noaux_tc"
	       : t == CONFIG_TOPK_GREEDY ? "greedy"
					 : "group_limited_greedy";
}

static void cli_info_row(const char *what, uint64_t params, uint64_t bytes)
{
	printf("  %-22s %14llu params %10.2f MiB\n", what, (unsigned long long)params,
	       (double)bytes / (1024.0 * 1024.0));
}

/* --board FILE.dtb: the card (board/), and with a model what fits on it. */
static int cli_info_board(const char *dtb, const struct ckpt *ck, const struct ckpt_stats *s,
			  uint64_t ctx)
{
	struct board_desc b;
	struct board_fit fit;
	char err[512];
	if (board_load(dtb, &b, err, sizeof err)) {
		fprintf(stderr, "moecard: %s\n", err);
		return 1;
	}
	board_info_print(&b, stdout);
	int rc = board_res_print(&b, NULL, stdout);
	if (rc) {
		fprintf(stderr, "moecard: %s: resource estimate: %s\n", dtb, board_strerror(rc));
		return 1;
	}
	if (!ck)
		return 0;
	/* resident: everything but the routed experts (the MTP layer stays for speculation) */
	uint64_t resident = s->bytes_total - s->bytes_routed;
	if (board_fit_compute(&b, resident, s->bytes_expert, s->kv_bytes_per_token, ctx, &fit)) {
		fprintf(stderr, "moecard: %s: cannot compute the fit for this model\n", dtb);
		return 1;
	}
	printf("fit of %s on this card (context %llu tokens):\n", ck->cfg.model_type,
	       (unsigned long long)ctx);
	board_fit_print(&fit, s->bytes_expert, ctx, stdout);
	unsigned long long n_exp = s->bytes_expert ? s->bytes_routed / s->bytes_expert : 0;
	double share = s->bytes_routed ? 100.0 * (double)fit.expert_slots *
					     (double)s->bytes_expert / (double)s->bytes_routed
				       : 0.0;
	if (share >= 100.0)
		printf("  routed experts: %d layers x %d = %llu; all resident (room for %llu "
		       "slots)\n",
		       ck->cfg.num_hidden_layers - ck->cfg.first_k_dense_replace,
		       ck->cfg.n_routed_experts, n_exp, (unsigned long long)fit.expert_slots);
	else
		printf("  routed experts: %d layers x %d = %llu; slots for %.1f%% of them\n",
		       ck->cfg.num_hidden_layers - ck->cfg.first_k_dense_replace,
		       ck->cfg.n_routed_experts, n_exp, share);
	return 0;
}

/* --json: one object with the model's shapes and its parameter and byte counts. */
static int cli_info_json(const char *dir, const struct ckpt *ck, const struct ckpt_stats *s,
			 int n_moe)
{
	const struct config *c = &ck->cfg;
	json_t *o = json_object(), *cnt = json_object();
	if (!o || !cnt) {
		json_decref(o);
		json_decref(cnt);
		fprintf(stderr, "moecard: info: out of memory\n");
		return 1;
	}
#define SI(k, v) json_object_set_new(o, k, json_integer(v))
	json_object_set_new(o, "model", json_string(dir));
	json_object_set_new(o, "model_type", json_string(c->model_type));
	json_object_set_new(o, "random_weights", json_boolean(c->random_weights));
	SI("tensors", ck->st.n_tensors);
	SI("files", ck->st.n_files);
	SI("hidden_size", c->hidden_size);
	SI("num_hidden_layers", c->num_hidden_layers);
	SI("moe_layers", n_moe);
	json_object_set_new(o, "mtp_layer", json_boolean(ck->w.mtp != NULL));
	SI("vocab_size", c->vocab_size);
	SI("num_attention_heads", c->num_attention_heads);
	SI("q_lora_rank", c->q_lora_rank);
	SI("kv_lora_rank", c->kv_lora_rank);
	SI("qk_nope_head_dim", c->qk_nope_head_dim);
	SI("qk_rope_head_dim", c->qk_rope_head_dim);
	SI("v_head_dim", c->v_head_dim);
	SI("intermediate_size", c->intermediate_size);
	SI("n_routed_experts", c->n_routed_experts);
	SI("n_shared_experts", c->n_shared_experts);
	SI("moe_intermediate_size", c->moe_intermediate_size);
	SI("num_experts_per_tok", c->num_experts_per_tok);
	SI("n_group", c->n_group);
	SI("topk_group", c->topk_group);
	SI("max_position_embeddings", c->max_position_embeddings);
	json_object_set_new(o, "fp8", json_boolean(c->quantization_config.present));
	SI("kv_bytes_per_token", (json_int_t)s->kv_bytes_per_token);
#undef SI
	static const char *const names[] = {"attention",	 "dense_ffn",	   "shared_experts",
					    "one_routed_expert", "routed_experts", "router",
					    "embed_head_norm",	 "mtp_layer",	   "total"};
	const uint64_t pv[] = {s->params_attn,	     s->params_dense,  s->params_shared,
			       s->params_expert,     s->params_routed, s->params_router,
			       s->params_embed_head, s->params_mtp,    s->params_total};
	const uint64_t bv[] = {s->bytes_attn,	    s->bytes_dense,  s->bytes_shared,
			       s->bytes_expert,	    s->bytes_routed, s->bytes_router,
			       s->bytes_embed_head, s->bytes_mtp,    s->bytes_total};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		json_t *row = json_object();
		json_object_set_new(row, "params", json_integer((json_int_t)pv[i]));
		json_object_set_new(row, "bytes", json_integer((json_int_t)bv[i]));
		json_object_set_new(cnt, names[i], row);
	}
	json_object_set_new(o, "counts", cnt);
	char *txt = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!txt) {
		fprintf(stderr, "moecard: info: out of memory\n");
		return 1;
	}
	printf("%s\n", txt);
	free(txt);
	return 0;
}

int cli_info(int argc, char **argv)
{
	const char *dir = NULL, *board = NULL;
	uint64_t ctx = 4096;
	struct ckpt ck;
	struct ckpt_stats s;
	char err[512] = "";

	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			static const struct cli_help_row rows[] = {
			    {"--model", "DIR", "the model's shapes, parameters and bytes", "none"},
			    {"--json", "", "--model: one JSON object", "off"},
			    {"--board", "FILE.dtb",
			     "the card: its memories, CUs, resource estimate and what fits",
			     "none"},
			    {"--ctx", "N", "--board: the context the fit is for", "4096"},
			};
			printf(
			    "usage: moecard info [--model DIR [--json]] [--board FILE.dtb [--ctx "
			    "N]]\n");
			cli_help_rows(stdout, rows, sizeof rows / sizeof rows[0]);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) {
			char *end;
			const char *v = argv[++i];
			errno = 0;
			unsigned long long n = strtoull(v, &end, 10);
			if (!*v || *end || errno || *v == '-' || n < 1 || n > (1ull << 24)) {
				fprintf(stderr,
					"moecard: info: --ctx: expected 1..%llu tokens, got '%s'\n",
					1ull << 24, v);
				return 2;
			}
			ctx = n;
		} else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(argv[i], "--board") && i + 1 < argc) {
			board = argv[++i];
		} else {
			fprintf(stderr, "moecard: info: unknown option or missing value: %s\n",
				argv[i]);
			return 2;
		}
	}
	if (!dir && board)
		return cli_info_board(board, NULL, NULL, ctx);
	if (!dir) {
		fprintf(stderr, "moecard: info: --model DIR (or --board FILE.dtb) is required\n");
		return 2;
	}
	if (ckpt_open(dir, &ck, err, sizeof err)) {
		fprintf(stderr, "moecard: %s\n", err);
		return 1;
	}
	const struct config *c = &ck.cfg;
	const struct config_quant *q = &c->quantization_config;
	const struct config_rope_scaling *r = &c->rope_scaling;
	int n_moe = 0;
	for (int l = 0; l < c->num_hidden_layers; l++)
		n_moe += config_layer_is_moe(c, l);
	ckpt_stats(&ck, &s);
	if (json) {
		if (board)
			fprintf(stderr, "moecard: info: --board is printed as text only; --json "
					"describes the model\n");
		int rc = cli_info_json(dir, &ck, &s, n_moe);
		ckpt_close(&ck);
		return rc;
	}

	printf("model %s: %s, %d tensors in %d file(s)%s\n", dir, c->model_type, ck.st.n_tensors,
	       ck.st.n_files,
	       c->random_weights ? "; random weights (moecard gen): its text is noise" : "");
	printf("  hidden %d, layers %d (%d dense, %d MoE)%s, vocab %d\n", c->hidden_size,
	       c->num_hidden_layers, c->num_hidden_layers - n_moe, n_moe,
	       ck.w.mtp ? " + MTP layer" : "", c->vocab_size);
	printf("  MLA: %d heads, q_lora %d%s, kv_lora %d, nope/rope/v %d/%d/%d\n",
	       c->num_attention_heads, c->q_lora_rank, c->q_lora_rank ? "" : " (plain q_proj)",
	       c->kv_lora_rank, c->qk_nope_head_dim, c->qk_rope_head_dim, c->v_head_dim);
	printf("  FFN: dense %d; MoE %d routed x %d + %d shared, top-%d of %d groups top-%d\n",
	       c->intermediate_size, c->n_routed_experts, c->moe_intermediate_size,
	       c->n_shared_experts, c->num_experts_per_tok, c->n_group, c->topk_group);
	printf("  router: %s, %s, norm_topk_prob %s, routed_scaling_factor %g\n",
	       cli_info_scoring(c->scoring_func), cli_info_topk(c->topk_method),
	       c->norm_topk_prob ? "true" : "false", c->routed_scaling_factor);
	if (r->yarn)
		printf("  rope: theta %g, yarn factor %g, L0 %d, beta %g/%g, mscale %g/%g\n",
		       c->rope_theta, r->factor, r->original_max_position_embeddings, r->beta_fast,
		       r->beta_slow, r->mscale, r->mscale_all_dim);
	else
		printf("  rope: theta %g, no scaling\n", c->rope_theta);
	printf("  rms_norm_eps %g, bos %d, eos %d, max_position_embeddings %d\n", c->rms_norm_eps,
	       c->bos_token_id, c->eos_token_id, c->max_position_embeddings);
	if (q->present)
		printf("weights: FP8 E4M3, block %dx%d, scale format %s, activation scheme %s\n",
		       q->weight_block_size[0], q->weight_block_size[1], q->ue8m0 ? "ue8m0" : "f32",
		       q->dynamic ? "dynamic" : "static");
	else
		printf("weights: %s (no quantization_config)\n",
		       ck.w.layers[0].o_proj.fmt == QMAT_BF16  ? "BF16"
		       : ck.w.layers[0].o_proj.fmt == QMAT_F16 ? "F16"
							       : "F32");
	printf("parameters and bytes (as stored):\n");
	cli_info_row("attention (MLA+norms)", s.params_attn, s.bytes_attn);
	cli_info_row("dense FFN", s.params_dense, s.bytes_dense);
	cli_info_row("shared experts", s.params_shared, s.bytes_shared);
	cli_info_row("one routed expert", s.params_expert, s.bytes_expert);
	cli_info_row("all routed experts", s.params_routed, s.bytes_routed);
	cli_info_row("router", s.params_router, s.bytes_router);
	cli_info_row("embed + head + norm", s.params_embed_head, s.bytes_embed_head);
	cli_info_row("MTP layer", s.params_mtp, s.bytes_mtp);
	cli_info_row("total", s.params_total, s.bytes_total);
	printf("kv cache: %llu bytes per token (%d+%d f32 x %d layers)\n",
	       (unsigned long long)s.kv_bytes_per_token, c->kv_lora_rank, c->qk_rope_head_dim,
	       c->num_hidden_layers + (ck.w.mtp ? 1 : 0));
	int rc = board ? cli_info_board(board, &ck, &s, ctx) : 0;
	ckpt_close(&ck);
	return rc;
}
