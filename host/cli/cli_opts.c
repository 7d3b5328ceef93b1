/*
 * cli_opts.c - the option table and parser `moecard run`, `bench` and `chat` share (cli_opts.h,
 * docs/cli.md). The parsed options go to the engine (engine.h: model options, engine_extra) and
 * to the generation loop (generate.h: sampling, speculation depth, stop strings).
 */
#include <errno.h>
#include <limits.h>
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
};

struct cli_opt {
	const char *name;
	enum cli_kind kind;
	unsigned set; /* CLI_SET_*: the commands that take it */
	size_t off;   /* where the value goes in struct cli_opts (FLAG STR INT DOUBLE) */
	int lo;	      /* CLI_INT: the smallest value accepted */
};

#define RUN CLI_SET_RUN
#define ALL (CLI_SET_RUN | CLI_SET_CHAT)
#define PPL CLI_SET_PPL
#define AT(f) offsetof(struct cli_opts, f)

static const struct cli_opt cli_opt_table[] = {
    {"--model", CLI_STR, ALL | PPL, AT(model), 0},
    {"--prompt", CLI_STR, RUN, AT(prompt), 0},
    {"--system", CLI_STR, ALL, AT(system), 0},
    {"--tokens", CLI_STR, RUN, AT(tokens), 0},
    {"-n", CLI_INT, ALL, AT(n), 0},
    {"--backend", CLI_STR, ALL | PPL, AT(backend), 0},
    {"--act", CLI_STR, ALL | PPL, AT(act), 0},
    {"--board", CLI_STR, RUN | PPL, AT(board), 0},
    {"--xclbin", CLI_STR, RUN | PPL, AT(xclbin), 0},
    {"--dump-logits", CLI_STR, RUN, AT(dump_logits), 0},
    {"--dump-mtp-logits", CLI_STR, RUN, AT(dump_mtp), 0},
    {"--profile", CLI_STR, RUN, AT(profile), 0},
    {"--expert-trace", CLI_STR, RUN, AT(expert_trace), 0},
    {"--expert-slots", CLI_SLOTS, RUN, 0, 0},
    {"--expert-policy", CLI_STR, RUN, AT(ex.expert_policy), 0},
    {"--expert-prefetch", CLI_FLAG, RUN, AT(ex.expert_prefetch), 0},
    {"--expert-host", CLI_STR, RUN, AT(ex.expert_host), 0},
    {"--expert-host-gbps", CLI_DOUBLE, RUN, AT(ex.expert_host_gbps), 0},
    {"--expert-events", CLI_STR, RUN, AT(ex.expert_events), 0},
    {"--kv-format", CLI_STR, ALL | PPL, AT(ex.kv_format), 0},
    {"--attn-datapath", CLI_STR, ALL | PPL, AT(ex.attn_datapath), 0},
    {"--stop", CLI_STOP, ALL, 0, 0},
    {"--spec", CLI_SPEC, ALL, 0, 0},
    {"--spec-depth", CLI_DEPTH, ALL, 0, 0},
    {"--threads", CLI_INT, ALL | PPL, AT(threads), 0},
    {"--ctx", CLI_INT, ALL | PPL, AT(ctx), 1},
    {"--attn", CLI_ATTN, RUN | PPL, 0, 0},
    {"--prompt-len", CLI_INT, RUN, AT(prompt_len), 1},
    {"--gen", CLI_INT, RUN, AT(gen), 0},
    {"-r", CLI_INT, RUN, AT(reps), 1},
    {"--json", CLI_FLAG, RUN | PPL, AT(json), 0},
    {"--file", CLI_STR, PPL, AT(file), 0},
    {"--limit", CLI_INT, PPL, AT(limit), 0},
    {"--chat", CLI_FLAG, RUN, AT(chat), 0},
    {"--stats", CLI_FLAG, RUN, AT(stats), 0},
    {"--quiet", CLI_FLAG, RUN | PPL, AT(quiet), 0},
    {"--temp", CLI_SAMPLING, ALL, 0, 0},
    {"--top-k", CLI_SAMPLING, ALL, 0, 0},
    {"--top-p", CLI_SAMPLING, ALL, 0, 0},
    {"--min-p", CLI_SAMPLING, ALL, 0, 0},
    {"--repeat-penalty", CLI_SAMPLING, ALL, 0, 0},
    {"--seed", CLI_SAMPLING, ALL, 0, 0},
};

#undef RUN
#undef ALL
#undef PPL
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
		*(double *)field = atof(v);
		return 0;
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
	if (!strcmp(a->backend, "cpu") &&
	    (a->ex.expert_slots || a->ex.expert_slots_pct || a->profile)) {
		fprintf(stderr, "moecard: %s: %s: needs --backend emu or xrt (%s)\n", cmd->name,
			a->profile ? "--profile" : "--expert-slots",
			a->profile ? "it traces the card's commands"
				   : "the expert cache is on the card");
		return 2;
	}
	if (a->act && strcmp(a->act, "fp8") && strcmp(a->act, "none")) {
		fprintf(stderr, "moecard: %s: --act: expected fp8 or none, got '%s'\n", cmd->name,
			a->act);
		return 2;
	}
	return 0;
}
