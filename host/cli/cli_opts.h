/*
 * cli_opts.h - the command-line options of `moecard run`, `bench` and `chat` (docs/cli.md): one
 * table of options with the kind of value each takes, parsed into struct cli_opts before the
 * command loads the checkpoint and builds the engine. Messages are one line on stderr,
 * "moecard: <command>: <option>: <what>".
 */
#ifndef MOECARD_CLI_OPTS_H
#define MOECARD_CLI_OPTS_H

#include <stdio.h>
#include "decode/generate.h"
#include "engine/engine.h"

#define CLI_MAX_STOPS 16

/* Which commands take an option (struct cli_cmd.set). */
#define CLI_SET_RUN 1u /* run and bench */
#define CLI_SET_CHAT 2u
#define CLI_SET_PPL 4u /* perplexity */
#define CLI_SET_SERVE 8u
#define CLI_SET_PROF 16u

struct cli_opts {
	const char *model, *prompt, *tokens, *backend, *act, *board, *dump_logits, *dump_mtp;
	const char *profile, *expert_trace, *system, *xclbin;
	const char *file;	 /* perplexity --file */
	const char *head;	 /* --head fp8|bf16 (NULL: bf16, the checkpoint's) */
	const char *head_screen; /* --head-screen on|off (NULL: on) */
	int screen_ab;		 /* bench --screen-ab */
	int limit;		 /* perplexity --limit: most tokens scored (0: all) */
	int n;			 /* -n: tokens to generate (chat: most tokens per reply) */
	int threads, ctx, prompt_len, gen;
	int reps;		/* bench -r N: repetitions (0: one) */
	int seqs;		/* bench --seqs B: B sequences decoded together (0: off) */
	int kernels;		/* bench --kernels: the kernels side by side (cli_kernels.h) */
	const char *isa_ab;	/* bench --isa-ab PATH: decode tokens alternate with that path */
	int naive;		/* --attn naive */
	int json;		/* --json */
	int chat;		/* --chat: wrap the prompt in the DeepSeek-V3 chat format */
	int stats;		/* --stats: a summary line on stderr */
	int ignore_eos;		/* --ignore-eos: the EOS token is never sampled */
	int quiet;		/* --quiet: no progress, notices or terminal summary */
	struct engine_extra ex; /* --expert-* options (expert cache on the card) */
	int spec;		/* -1 default (mtp when available), 0 none, 1 mtp */
	int spec_depth;		/* --spec-depth N (default 1) */
	const char *stops[CLI_MAX_STOPS]; /* --stop STR... */
	int n_stops;
	struct gen_sampling smp; /* --temp --top-k --top-p --min-p --repeat-penalty --seed */
	/* serve */
	const char *host, *api_key, *name;
	int port, max_batch, max_queue, max_conns, timeout, drain, max_tokens, max_body_kb;
	int prefill_chunk; /* serve: prompt tokens of chunks a step (0: 64) */
	int kv_tokens;
	/* profile */
	const char *out;       /* --out DIR */
	const char *board_set; /* --set k=v,... (board keys; the engine's are applied) */
	const char *sweep;     /* --sweep k=v1,v2,... */
	int overhead;	       /* --overhead: the profiler's cost measured (passes off and on) */
	char set_buf[512];     /* the --set values joined */
};

/* A command that parses its options with cli_opts_parse. */
struct cli_cmd {
	const char *name; /* "run", "bench", "chat": the messages name it */
	unsigned set;	  /* CLI_SET_*: the options it takes */
	/* Every option is "--name value": the word after an option is taken as its value before
	 * the option is looked up, and an option at the end is "missing value or unknown option".
	 * Otherwise an option without a value (a flag) may stand at the end. */
	int pairs;
	void (*usage)(FILE *f);
	/* Checks the command's own values after --model; 0 or 2 (message printed). May be NULL. */
	int (*check)(const struct cli_opts *a);
};

/* cli_opts_init - the defaults: --backend cpu, --spec default, --spec-depth 1, sampling
 * defaults (gen_sampling_default), everything else 0 / NULL. */
void cli_opts_init(struct cli_opts *a);

/*
 * cli_opts_parse - parses argv[1..argc) into a (initialised by the caller). Then --model is
 * required, cmd->check runs and --act must be fp8 or none. Returns 0; 1 after -h/--help (usage
 * printed on stdout: the command exits 0); 2 on a usage error (message printed on stderr).
 */
int cli_opts_parse(int argc, char **argv, const struct cli_cmd *cmd, struct cli_opts *a);

/* cli_opts_help - every option of the commands in set (CLI_SET_*), one line each with its value,
 * what it does and its default [in brackets], from the same table the parser uses. */
void cli_opts_help(FILE *f, unsigned set);

/* A line of a command's --help that is not in the table above (gen, tokenize, info, cache-sim,
 * devices): the option, its value's form ("" for a flag), what it does, its default. */
struct cli_help_row {
	const char *opt, *arg, *help, *def;
};

/* cli_help_rows - "options:" and one line per row, in the layout of cli_opts_help. */
void cli_help_rows(FILE *f, const struct cli_help_row *rows, size_t n);

/* cli_number - the value v of option opt of command cmd as a decimal number in [lo, hi] (no
 * trailing junk, finite) into *out. 0, or 2 with "moecard: <cmd>: <opt>: ..." printed. */
int cli_number(const char *cmd, const char *opt, const char *v, double lo, double hi, double *out);

/* cli_read_file - the whole file path into *buf (malloc'd, not NUL-terminated), *len bytes.
 * 0, or -errno of fopen, -EIO on a read error, -ENOMEM. */
int cli_read_file(const char *path, char **buf, size_t *len);

struct ckpt;
struct engine;
/*
 * cli_open_model - loads a->model (a progress bar on a terminal) and builds the engine of
 * a->backend with room for need_seq positions (or --ctx) and batches of up to `batch` tokens.
 * Returns 0, or 1 (a runtime or input error) or 2 (more positions than the model's
 * max_position_embeddings) with the error printed, nothing left open.
 */
int cli_open_model(const struct cli_opts *a, struct ckpt *ck, struct engine *m, int need_seq,
		   int batch);

/* cli_load_ckpt - the first part of cli_open_model: opens and loads a->model (a progress bar on a
 * terminal, the random-weights notice). 0 or 1 (printed). */
int cli_load_ckpt(const struct cli_opts *a, struct ckpt *ck);

/* cli_engine_open - the engine part of cli_open_model on an open checkpoint: a->backend with
 * max_seq positions (at least need_seq, at most max_position_embeddings) and batches of `batch`.
 * 0, 1 or 2 as cli_open_model, the error printed. */
int cli_engine_open(const struct cli_opts *a, const struct ckpt *ck, struct engine *m, int max_seq,
		    int need_seq, int batch);

#endif
