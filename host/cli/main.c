/*
 * main.c - the moecard command-line tool: dispatches to the subcommands of cli.h and returns the
 * exit code the subcommand returns (docs/cli.md, Conventions). Library code never exits; the one
 * exit() call is `run|bench --help` in cli_run.c.
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "model/kernels.h"

#ifndef MOECARD_VERSION
#define MOECARD_VERSION "dev"
#endif
#ifndef MOECARD_COMMIT
#define MOECARD_COMMIT "unknown"
#endif
#ifndef MOECARD_CFLAGS
#define MOECARD_CFLAGS "unknown"
#endif

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} cmds[] = {
    {"run", cli_run, "run a model: --model DIR (--prompt TEXT | --tokens 1,2,3) [-n N] ..."},
    {"bench", cli_bench, "measure prefill/decode speed: --model DIR [--json] ..."},
    {"info", cli_info, "print a checkpoint's config, parameter and byte counts: --model DIR"},
    {"gen", cli_gen, "write a random checkpoint: --out DIR --preset tiny|mid [--seed S]"},
    {"tokenize", cli_tokenize, "tokenize text: --model DIR --text T [--json]"},
    {"chat", cli_chat, "interactive chat (stdin, streams; /reset /stats /quit): --model DIR"},
    {"perplexity", cli_perplexity,
     "perplexity of a text file: --model DIR --file F [--ctx N] [--backend cpu|emu]"},
    {"serve", cli_serve,
     "OpenAI-compatible HTTP server (streaming, queue, /metrics): --model DIR [--port N]"},
    {"profile", cli_profile,
     "where a token's time goes: trace, summary, HTML report, what-if sweeps, diff: --model DIR "
     "--out DIR"},
    {"devices", cli_devices, "the accelerator cards of this host, their shells and board trees"},
    {"cache-sim", cli_cache_sim,
     "replay an expert routing trace under every cache policy: --trace F"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: moecard <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\nmoecard <command> --help for the options of a command; moecard --version.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		const struct kern_isa *isa = kern_isa_get();
		char desc[256];
		kern_isa_describe(desc, sizeof desc);
		printf("moecard %s (commit %s)\nbuild: %s\nisa: %s (host kernels, chosen at start; "
		       "MOECARD_ISA=scalar|avx2|avx512|avx512bf16 forces one)\n%s\n",
		       MOECARD_VERSION, MOECARD_COMMIT, MOECARD_CFLAGS, isa ? isa->name : "none",
		       desc);
		return 0;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "moecard: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
