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
	CLI_INT,      /* int: atoi */
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
};

#define RUN CLI_SET_RUN
#define ALL (CLI_SET_RUN | CLI_SET_CHAT)
#define PPL CLI_SET_PPL
#define AT(f) offsetof(struct cli_opts, f)

static const struct cli_opt cli_opt_table[] = {
    {"--model", CLI_STR, ALL | PPL, AT(model)},
    {"--prompt", CLI_STR, RUN, AT(prompt)},
    {"--system", CLI_STR, ALL, AT(system)},
    {"--tokens", CLI_STR, RUN, AT(tokens)},
    {"-n", CLI_INT, ALL, AT(n)},
    {"--backend", CLI_STR, ALL | PPL, AT(backend)},
    {"--act", CLI_STR, ALL | PPL, AT(act)},
    {"--board", CLI_STR, RUN | PPL, AT(board)},
    {"--xclbin", CLI_STR, RUN | PPL, AT(xclbin)},
    {"--dump-logits", CLI_STR, RUN, AT(dump_logits)},
    {"--dump-mtp-logits", CLI_STR, RUN, AT(dump_mtp)},
    {"--profile", CLI_STR, RUN, AT(profile)},
    {"--expert-trace", CLI_STR, RUN, AT(expert_trace)},
    {"--expert-slots", CLI_SLOTS, RUN, 0},
    {"--expert-policy", CLI_STR, RUN, AT(ex.expert_policy)},
    {"--expert-prefetch", CLI_FLAG, RUN, AT(ex.expert_prefetch)},
    {"--expert-host", CLI_STR, RUN, AT(ex.expert_host)},
    {"--expert-host-gbps", CLI_DOUBLE, RUN, AT(ex.expert_host_gbps)},
    {"--expert-events", CLI_STR, RUN, AT(ex.expert_events)},
    {"--kv-format", CLI_STR, ALL | PPL, AT(ex.kv_format)},
    {"--attn-datapath", CLI_STR, ALL | PPL, AT(ex.attn_datapath)},
    {"--stop", CLI_STOP, ALL, 0},
    {"--spec", CLI_SPEC, ALL, 0},
    {"--spec-depth", CLI_DEPTH, ALL, 0},
    {"--threads", CLI_INT, ALL | PPL, AT(threads)},
    {"--ctx", CLI_INT, ALL | PPL, AT(ctx)},
    {"--attn", CLI_ATTN, RUN | PPL, 0},
    {"--prompt-len", CLI_INT, RUN, AT(prompt_len)},
    {"--gen", CLI_INT, RUN, AT(gen)},
    {"--json", CLI_FLAG, RUN | PPL, AT(json)},
    {"--file", CLI_STR, PPL, AT(file)},
    {"--limit", CLI_INT, PPL, AT(limit)},
    {"--chat", CLI_FLAG, RUN, AT(chat)},
    {"--stats", CLI_FLAG, RUN, AT(stats)},
    {"--temp", CLI_SAMPLING, ALL, 0},
    {"--top-k", CLI_SAMPLING, ALL, 0},
    {"--top-p", CLI_SAMPLING, ALL, 0},
    {"--min-p", CLI_SAMPLING, ALL, 0},
    {"--repeat-penalty", CLI_SAMPLING, ALL, 0},
    {"--seed", CLI_SAMPLING, ALL, 0},
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
			/* a lone dash word at the end gets the usage only */
			if (v || strncmp(o, "-", 1))
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
	if (a->act && strcmp(a->act, "fp8") && strcmp(a->act, "none")) {
		fprintf(stderr, "moecard: %s: --act: expected fp8 or none, got '%s'\n", cmd->name,
			a->act);
		return 2;
	}
	return 0;
}
