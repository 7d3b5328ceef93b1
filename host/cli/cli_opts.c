/*
 * cli_opts.c - the option table and parser `moecard run`, `bench` and `chat` share (cli_opts.h,
 * docs/cli.md). The parsed options go to the engine (engine.h: model options, engine_extra) and
 * to the generation loop (generate.h: sampling, speculation depth, stop strings).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli_opts.h"

/* The kind of value an option takes, and how it is stored. */
enum cli_kind {
	CLI_FLAG,     /* no value: the int is set to 1 */
	CLI_STR,      /* const char *: the value as given */
	CLI_INT,      /* int: a whole decimal number >= the option's lo */
	CLI_DOUBLE,   /* double: atof */
	CLI_SAMPLING, /* --temp --top-k ...: gen_sampling_flag parses it into smp */
	CLI_SLOTS,    /* --expert-slots N|P%|board */
	CLI_STOP,     /* --stop STR: appended to stops[] */
	CLI_SPEC,     /* --spec mtp|none */
	CLI_DEPTH,    /* --spec-depth 1..6 */
	CLI_ATTN,     /* --attn absorbed|naive */
	CLI_SETKV,    /* --set KEY=VALUE: a what-if change (board keys joined in set_buf) */
};

struct cli_opt {
	const char *name;
	enum cli_kind kind;
	unsigned set; /* CLI_SET_*: the commands that take it */
	size_t off;   /* where the value goes in struct cli_opts (FLAG STR INT DOUBLE) */
	int lo;	      /* CLI_INT: the smallest value accepted */
	const char *arg, *help, *def; /* --help: the value's form, what it does, its default */
};

#define RUN CLI_SET_RUN
#define ALL (CLI_SET_RUN | CLI_SET_CHAT)
#define PPL CLI_SET_PPL
#define SRV CLI_SET_SERVE
#define PRF CLI_SET_PROF
#define AT(f) offsetof(struct cli_opts, f)

static const struct cli_opt cli_opt_table[] = {
    {"--model", CLI_STR, ALL | PPL | SRV | PRF, AT(model), 0, "DIR",
     "the checkpoint folder (config.json, safetensors, tokenizer)", "required"},
    {"--prompt", CLI_STR, RUN, AT(prompt), 0, "TEXT",
     "the input text (BOS as tokenizer_config.json says)", "--prompt or --tokens"},
    {"--system", CLI_STR, ALL, AT(system), 0, "TEXT", "system prompt of the chat format", "none"},
    {"--tokens", CLI_STR, RUN, AT(tokens), 0, "1,2,3", "the input as token ids",
     "--prompt or --tokens"},
    {"-n", CLI_INT, ALL, AT(n), 0, "N", "tokens to generate (chat: per reply; 0 = only the dumps)",
     "run 16, chat 256"},
    {"--backend", CLI_STR, ALL | PPL | SRV | PRF, AT(backend), 0, "cpu|emu|xrt",
     "the engine: host CPU, emulated card, real card", "cpu"},
    {"--act", CLI_STR, ALL | PPL | SRV | PRF, AT(act), 0, "fp8|none",
     "FP8 activations or the f32 reference (emu/xrt: fp8)", "fp8 for dynamic FP8 checkpoints"},
    {"--board", CLI_STR, RUN | PPL | SRV | PRF, AT(board), 0, "FILE.dtb",
     "the card's board tree (emu, xrt)", "$MOECARD_BOARD, else board/emu.dtb"},
    {"--xclbin", CLI_STR, RUN | PPL | SRV | PRF, AT(xclbin), 0, "F", "the FPGA image (xrt)",
     "$MOECARD_XCLBIN, else from the board"},
    {"--dump-logits", CLI_STR, RUN, AT(dump_logits), 0, "F.npy",
     "float32 logits, one row per prompt token", "off"},
    {"--dump-mtp-logits", CLI_STR, RUN, AT(dump_mtp), 0, "F.npy",
     "the MTP layer's logits per prompt token", "off"},
    {"--profile", CLI_STR, RUN | SRV, AT(profile), 0, "F.json",
     "the run's timeline as a Chrome trace (serve: every thread, written at exit)", "off"},
    {"--expert-trace", CLI_STR, RUN, AT(expert_trace), 0, "F",
     "the routing trace for moecard cache-sim", "off"},
    {"--expert-slots", CLI_SLOTS, RUN | PRF, 0, 0, "N|P%|board",
     "expert cache on the card: slots for routed experts", "every expert resident"},
    {"--expert-policy", CLI_STR, RUN | PRF, AT(ex.expert_policy), 0, "lru|lfu|pin",
     "expert slot replacement", "lru"},
    {"--expert-prefetch", CLI_FLAG, RUN | PRF, AT(ex.expert_prefetch), 0, "",
     "fill the next layer's predicted experts ahead", "off"},
    {"--expert-host", CLI_STR, RUN | PRF, AT(ex.expert_host), 0, "off|auto|always",
     "run expert misses on the host CPU", "off"},
    {"--expert-host-gbps", CLI_DOUBLE, RUN, AT(ex.expert_host_gbps), 0, "G",
     "the modeled host expert rate, GB/s", "measured at open"},
    {"--expert-events", CLI_STR, RUN, AT(ex.expert_events), 0, "F.jsonl",
     "every expert-cache decision", "off"},
    {"--kv-format", CLI_STR, ALL | PPL | SRV | PRF, AT(ex.kv_format), 0, "f32|bf16|fp8",
     "the card's KV cache format", "f32"},
    {"--head", CLI_STR, ALL | PPL | SRV | PRF, AT(head), 0, "fp8|bf16",
     "cpu engine: lm_head as FP8 (128x128 block scales, half the bytes) or as stored", "bf16"},
    {"--head-screen", CLI_STR, ALL | PPL | SRV | PRF, AT(head_screen), 0, "on|off",
     "cpu engine, BF16 head: greedy tokens from an 8-bit copy of lm_head with an error bound, "
     "recomputing exactly only the rows that could be the largest (the same tokens; half the "
     "head's bytes a greedy step, one more copy of it in memory at half its size)",
     "on"},
    {"--huge-pages", CLI_STR, ALL | PPL | SRV | PRF, AT(ex.huge_pages), 0, "on|off|auto",
     "copy the weights into transparent huge pages at open (faster decode; the copy's page "
     "zeroing costs load time)",
     "auto: bench, chat, serve, perplexity over >= 512 tokens, runs of >= 512 positions"},
    {"--attn-datapath", CLI_STR, ALL | PPL | SRV | PRF, AT(ex.attn_datapath), 0, "f32|fp8",
     "the card attention's datapath", "f32"},
    {"--ignore-eos", CLI_FLAG, ALL, AT(ignore_eos), 0, "",
     "never sample the EOS token: the text runs to -n (or --stop)", "off"},
    {"--stop", CLI_STOP, ALL, 0, 0, "STR", "stop when the text contains STR (up to 16)", "none"},
    {"--spec", CLI_SPEC, ALL | PRF, 0, 0, "mtp|none",
     "MTP speculative decoding (greedy output unchanged)", "mtp with an MTP layer"},
    {"--spec-depth", CLI_DEPTH, ALL, 0, 0, "N", "chained MTP drafts per verify, 1..6", "1"},
    {"--threads", CLI_INT, ALL | PPL | SRV | PRF, AT(threads), 0, "N",
     "host threads (0 = all online CPUs)", "all"},
    {"--ctx", CLI_INT, ALL | PPL | SRV | PRF, AT(ctx), 1, "N",
     "KV capacity in tokens (perplexity: the window)",
     "run: what it needs; chat 4096; perplexity 256; serve 4096 or the model's limit"},
    {"--attn", CLI_ATTN, RUN | PPL | SRV, 0, 0, "absorbed|naive", "MLA form on the cpu engine",
     "absorbed"},
    {"--prompt-len", CLI_INT, RUN | PRF, AT(prompt_len), 1, "N", "bench: prompt tokens", "64"},
    {"--gen", CLI_INT, RUN | PRF, AT(gen), 0, "N", "bench: decoded tokens", "32"},
    {"-r", CLI_INT, RUN, AT(reps), 1, "N", "bench: repetitions, 1..100 (mean +- sd)", "1"},
    {"--seqs", CLI_INT, RUN | PRF, AT(seqs), 1, "B",
     "bench, profile: B sequences decoded together (as serve --max-batch B)", "off"},
    {"--screen-ab", CLI_FLAG, RUN, AT(screen_ab), 0, "",
     "bench, cpu engine: decode tokens (--seqs: steps) alternate between the head's 8-bit "
     "screen and the full BF16 head, and the two rates are printed side by side",
     "off"},
    {"--isa-ab", CLI_STR, RUN, AT(isa_ab), 0, "PATH",
     "bench (cpu): decode tokens alternate between the engine's SIMD path and PATH", "off"},
    {"--kernels", CLI_FLAG, RUN, AT(kernels), 0, "",
     "bench (cpu): the decode products on every SIMD path side by side, no prompt", "off"},
    {"--json", CLI_FLAG, RUN | PPL, AT(json), 0, "", "machine-readable output on stdout", "off"},
    {"--file", CLI_STR, PPL, AT(file), 0, "F", "perplexity: the text file", "required"},
    {"--limit", CLI_INT, PPL, AT(limit), 0, "N",
     "perplexity: score only the first N tokens (0 = all)", "all"},
    {"--chat", CLI_FLAG, RUN, AT(chat), 0, "", "wrap --prompt in the DeepSeek-V3 chat format",
     "off"},
    {"--stats", CLI_FLAG, RUN, AT(stats), 0, "", "summary line and the engine's figures on stderr",
     "off"},
    {"--quiet", CLI_FLAG, RUN | PPL | SRV | PRF, AT(quiet), 0, "",
     "no progress bars, notices or terminal summary (serve: no access log)", "off"},
    {"--temp", CLI_SAMPLING, ALL, 0, 0, "T", "sampling temperature (0 = greedy)", "0"},
    {"--top-k", CLI_SAMPLING, ALL, 0, 0, "K", "keep the K most likely tokens (0 = off)", "off"},
    {"--top-p", CLI_SAMPLING, ALL, 0, 0, "P", "nucleus filter (1 = off)", "off"},
    {"--min-p", CLI_SAMPLING, ALL, 0, 0, "P", "drop tokens below P x the best (0 = off)", "off"},
    {"--repeat-penalty", CLI_SAMPLING, ALL, 0, 0, "R",
     "penalize tokens among the last 64 (1 = off)", "off"},
    {"--seed", CLI_SAMPLING, ALL | PRF, 0, 0, "S", "sampler seed", "1"},
    {"--host", CLI_STR, SRV, AT(host), 0, "ADDR", "serve: the IPv4 address to listen on",
     "127.0.0.1"},
    {"--port", CLI_INT, SRV, AT(port), 0, "N", "serve: the TCP port (0 = any free one)", "8080"},
    {"--api-key", CLI_STR, SRV, AT(api_key), 0, "KEY",
     "serve: require Authorization: Bearer KEY on /v1/", "$MOECARD_API_KEY, else none"},
    {"--name", CLI_STR, SRV, AT(name), 0, "ID", "serve: the model id clients send",
     "the model folder's name"},
    {"--max-batch", CLI_INT, SRV, AT(max_batch), 1, "B",
     "serve: sequences running at once (KV slots), decoded together", "4"},
    {"--kv-tokens", CLI_INT, SRV, AT(kv_tokens), 1, "N",
     "serve (cpu): the paged KV pool in positions; a request reserves prompt + max_tokens",
     "--max-batch x the context"},
    {"--max-queue", CLI_INT, SRV, AT(max_queue), 0, "Q", "serve: waiting requests before 429",
     "64"},
    {"--max-conns", CLI_INT, SRV, AT(max_conns), 1, "N", "serve: open connections", "256"},
    {"--prefill-chunk", CLI_INT, SRV, AT(prefill_chunk), 1, "N",
     "serve: a prompt's chunk length, and the prompt tokens of chunks a step (1..256)", "64"},
    {"--max-tokens", CLI_INT, SRV, AT(max_tokens), 1, "N",
     "serve: the most tokens a request may generate", "the context"},
    {"--max-body-kb", CLI_INT, SRV, AT(max_body_kb), 1, "KB",
     "serve: request bodies larger are refused (413)", "1024"},
    {"--timeout", CLI_INT, SRV, AT(timeout), 1, "S", "serve: close a connection idle this long",
     "30"},
    {"--out", CLI_STR, PRF, AT(out), 0, "DIR",
     "profile: the folder for trace.json, summary.txt/json, report.html", "required"},
    {"--set", CLI_SETKV, RUN | PRF, 0, 0, "KEY=V",
     "emu: a what-if board change: hbm_gbps mem_eff_pct pcie_gen pcie_lanes clock_mhz fw_mhz "
     "lanes gemv_rows gemv_f32 dispatch=engine|preload|firmware expert_slots kv_format "
     "(repeatable)",
     "the board as built"},
    {"--overhead", CLI_FLAG, PRF, AT(overhead), 0, "",
     "profile: measure the profiler's cost (3 passes off, 3 on, in turn)", "off"},
    {"--sweep", CLI_STR, PRF, AT(sweep), 0, "KEY=V1,V2",
     "profile: modeled decode and TTFT against one board key (mid and 671B shapes)", "off"},
    {"--drain", CLI_INT, SRV, AT(drain), 0, "S",
     "serve: on SIGTERM, seconds to finish running requests", "10"},
};

#undef RUN
#undef ALL
#undef PPL
#undef SRV
#undef AT

void cli_opts_init(struct cli_opts *a)
{
	memset(a, 0, sizeof *a);
	a->backend = "cpu";
	a->spec = -1;
	a->spec_depth = 1;
	gen_sampling_default(&a->smp);
}

static const struct cli_opt *opt_find(const char *name, unsigned set)
{
	for (size_t i = 0; i < sizeof cli_opt_table / sizeof cli_opt_table[0]; i++)
		if ((cli_opt_table[i].set & set) && !strcmp(cli_opt_table[i].name, name))
			return &cli_opt_table[i];
	return NULL;
}

/* --expert-slots N (>= 1), P% (1..100) or board (-1: as many as the card's memory holds). */
static int opt_slots(const struct cli_cmd *cmd, const char *v, struct engine_extra *ex)
{
	if (!strcmp(v, "board")) {
		ex->expert_slots = -1;
		return 0;
	}
	char *end;
	long n = strtol(v, &end, 10);
	if (n < 1 || n > 1000000 || (*end && strcmp(end, "%")) || (*end && n > 100)) {
		fprintf(stderr,
			"moecard: %s: --expert-slots: expected N >= 1, P%% (1..100) or "
			"board, got '%s'\n",
			cmd->name, v);
		return 2;
	}
	if (*end)
		ex->expert_slots_pct = (int)n;
	else
		ex->expert_slots = (int)n;
	return 0;
}

/* Stores the value v of option op (o as given). 0, or 2 with the message printed. */
static int opt_value(const struct cli_cmd *cmd, const struct cli_opt *op, const char *o,
		     const char *v, struct cli_opts *a)
{
	void *field = (char *)a + op->off; /* the member at offset op->off, of op->kind's type */
	switch (op->kind) {
	case CLI_FLAG:
		*(int *)field = 1;
		return 0;
	case CLI_STR:
		*(const char **)field = v;
		return 0;
	case CLI_INT: {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (!*v || *end || errno || n < INT_MIN || n > INT_MAX) {
			fprintf(stderr, "moecard: %s: %s: expected an integer, got '%s'\n",
				cmd->name, o, v);
			return 2;
		}
		if (n < op->lo) {
			fprintf(stderr, "moecard: %s: %s: must be >= %d, got %ld\n", cmd->name, o,
				op->lo, n);
			return 2;
		}
		*(int *)field = (int)n;
		return 0;
	}
	case CLI_DOUBLE:
		return cli_number(cmd->name, o, v, 0, 1e9, (double *)field);
	case CLI_SAMPLING:
		if (gen_sampling_flag(&a->smp, o, v) < 0) {
			fprintf(stderr, "moecard: %s: %s: bad value '%s'\n", cmd->name, o, v);
			return 2;
		}
		return 0;
	case CLI_SLOTS:
		return opt_slots(cmd, v, &a->ex);
	case CLI_STOP:
		if (a->n_stops == CLI_MAX_STOPS || !*v) {
			fprintf(stderr, "moecard: %s: --stop: empty or more than %d stop strings\n",
				cmd->name, CLI_MAX_STOPS);
			return 2;
		}
		a->stops[a->n_stops++] = v;
		return 0;
	case CLI_SPEC:
		if (strcmp(v, "mtp") && strcmp(v, "none")) {
			fprintf(stderr, "moecard: %s: --spec: expected mtp or none, got '%s'\n",
				cmd->name, v);
			return 2;
		}
		a->spec = !strcmp(v, "mtp");
		return 0;
	case CLI_DEPTH:
		a->spec_depth = atoi(v);
		if (a->spec_depth < 1 || a->spec_depth > 6) {
			fprintf(stderr, "moecard: %s: --spec-depth: expected 1..6, got '%s'\n",
				cmd->name, v);
			return 2;
		}
		return 0;
	case CLI_SETKV: {
		const char *eq = strchr(v, '=');
		if (!eq || eq == v || !eq[1]) {
			fprintf(stderr, "moecard: %s: --set: expected KEY=VALUE, got '%s'\n",
				cmd->name, v);
			return 2;
		}
		if (!strncmp(v, "kv_format=", 10)) {
			a->ex.kv_format = eq + 1;
			return 0;
		}
		if (!strncmp(v, "expert_slots=", 13))
			return opt_slots(cmd, eq + 1, &a->ex);
		size_t n = strlen(a->set_buf), l = strlen(v);
		if (n + l + 2 > sizeof a->set_buf) {
			fprintf(stderr, "moecard: %s: --set: too many changes\n", cmd->name);
			return 2;
		}
		snprintf(a->set_buf + n, sizeof a->set_buf - n, "%s%s", n ? "," : "", v);
		a->board_set = a->set_buf;
		return 0;
	}
	case CLI_ATTN:
		if (strcmp(v, "naive") && strcmp(v, "absorbed")) {
			fprintf(stderr,
				"moecard: %s: --attn: expected absorbed or naive, got '%s'\n",
				cmd->name, v);
			return 2;
		}
		a->naive = !strcmp(v, "naive");
		return 0;
	}
	return 0;
}

int cli_number(const char *cmd, const char *opt, const char *v, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (!*v || *end || errno || !isfinite(x)) {
		fprintf(stderr, "moecard: %s: %s: expected a number, got '%s'\n", cmd, opt, v);
		return 2;
	}
	if (x < lo || x > hi) {
		fprintf(stderr, "moecard: %s: %s: expected %g..%g, got '%s'\n", cmd, opt, lo, hi,
			v);
		return 2;
	}
	*out = x;
	return 0;
}

static void help_line(FILE *f, const char *opt, const char *arg, const char *help, const char *def)
{
	char lhs[64];
	snprintf(lhs, sizeof lhs, "%s%s%s", opt, arg[0] ? " " : "", arg);
	fprintf(f, "  %-30s %s [%s]\n", lhs, help, def);
}

void cli_help_rows(FILE *f, const struct cli_help_row *rows, size_t n)
{
	fprintf(f, "options:\n");
	for (size_t i = 0; i < n; i++)
		help_line(f, rows[i].opt, rows[i].arg, rows[i].help, rows[i].def);
}

void cli_opts_help(FILE *f, unsigned set)
{
	fprintf(f, "options:\n");
	for (size_t i = 0; i < sizeof cli_opt_table / sizeof cli_opt_table[0]; i++) {
		const struct cli_opt *o = &cli_opt_table[i];
		if (o->set & set)
			help_line(f, o->name, o->arg, o->help, o->def);
	}
}

int cli_opts_parse(int argc, char **argv, const struct cli_cmd *cmd, struct cli_opts *a)
{
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			cmd->usage(stdout);
			return 1;
		}
		if (cmd->pairs && !v) {
			fprintf(stderr, "moecard: %s: %s: missing value or unknown option\n",
				cmd->name, o);
			return 2;
		}
		const struct cli_opt *op = opt_find(o, cmd->set);
		if (!op) {
			fprintf(stderr, "moecard: %s: unknown option '%s'\n", cmd->name, o);
			cmd->usage(stderr);
			return 2;
		}
		if (op->kind != CLI_FLAG) {
			if (!v) {
				fprintf(stderr, "moecard: %s: %s needs a value\n", cmd->name, o);
				cmd->usage(stderr);
				return 2;
			}
			i++;
		}
		int r = opt_value(cmd, op, o, v, a);
		if (r)
			return r;
	}
	if (!a->model) {
		fprintf(stderr, "moecard: %s: --model DIR is required\n", cmd->name);
		return 2;
	}
	if (cmd->check) {
		int r = cmd->check(a);
		if (r)
			return r;
	}
	if (strcmp(a->backend, "cpu") && strcmp(a->backend, "emu") && strcmp(a->backend, "xrt")) {
		fprintf(stderr, "moecard: %s: --backend: expected cpu, emu or xrt, got '%s'\n",
			cmd->name, a->backend);
		return 2;
	}
	if (!strcmp(a->backend, "cpu") && (a->ex.expert_slots || a->ex.expert_slots_pct)) {
		fprintf(
		    stderr,
		    "moecard: %s: --expert-slots: needs --backend emu or xrt (the expert cache is "
		    "on the card)\n",
		    cmd->name);
		return 2;
	}
	if (a->head && strcmp(a->head, "fp8") && strcmp(a->head, "bf16")) {
		fprintf(stderr, "moecard: %s: --head: expected fp8 or bf16, got '%s'\n", cmd->name,
			a->head);
		return 2;
	}
	if (a->head && !strcmp(a->head, "fp8") && strcmp(a->backend, "cpu")) {
		fprintf(stderr,
			"moecard: %s: --head fp8: needs --backend cpu (the card's head is a bf16 "
			"GEMV)\n",
			cmd->name);
		return 2;
	}
	if (a->screen_ab && a->isa_ab) {
		fprintf(stderr, "moecard: %s: --screen-ab and --isa-ab: one comparison at a time\n",
			cmd->name);
		return 2;
	}
	if (a->head_screen && strcmp(a->head_screen, "on") && strcmp(a->head_screen, "off")) {
		fprintf(stderr, "moecard: %s: --head-screen: expected on or off, got '%s'\n",
			cmd->name, a->head_screen);
		return 2;
	}
	if (a->act && strcmp(a->act, "fp8") && strcmp(a->act, "none")) {
		fprintf(stderr, "moecard: %s: --act: expected fp8 or none, got '%s'\n", cmd->name,
			a->act);
		return 2;
	}
	return 0;
}
