/*
 * cli_gen.c - `moecard gen --out DIR --preset tiny|mid [--seed S] [--set key=value]...`: writes a
 * random checkpoint in the official DeepSeek-V3 layout (testckpt_write, host/tools/testckpt.c). The entry
 * point for every test model (marked moecard_random_weights); tools/train/ takes its config and
 * cut tokenizer for the trained default model, models/tiny-brown.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "load/ckpt.h"
#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "text/tokenizer.h"

static const struct cli_help_row gen_help[] = {
    {"--out", "DIR", "the folder to write (created)", "required"},
    {"--preset", "tiny|mid", "the shapes: tiny (4 layers) or mid (12 layers, ~2.2 GB)", "required"},
    {"--seed", "S", "the weights' random seed", "0"},
    {"--set", "key=value", "edit config.json after the preset (repeatable)", "none"},
};

static void cli_gen_usage(FILE *f)
{
	fprintf(f,
		"usage: moecard gen --out DIR --preset tiny|mid [--seed S] [--set key=value]...\n");
	cli_help_rows(f, gen_help, sizeof gen_help / sizeof gen_help[0]);
	fprintf(
	    f, "--set takes ints, floats, strings, null, true/false; dotted keys reach into\n"
	       "objects (rope_scaling.factor=4). Pseudo-keys: dtype=bf16 (BF16 weights, no\n"
	       "quantization_config), scale_fmt=ue8m0, shard_bytes=N (split into files of at most\n"
	       "N bytes, with an index).\n");
}

/*
 * Puts a tokenizer beside the generated model: the DeepSeek-V3 tokenizer that `make deps` caches
 * ($MOECARD_TOKENIZER_DIR, else cache/deepseek_v3_tokenizer next to the program or one folder
 * up, i.e. build/cache/..., so gen works from any folder), cut to the model's vocab_size
 * (tokenizer_write_for_vocab). Without the cache the model is written without one, and gen says
 * so on stderr (`run --prompt` then cannot encode text; `--tokens` still works).
 */
static int cli_gen_tokenizer(const char *out)
{
	const char *dir = getenv("MOECARD_TOKENIZER_DIR");
	char src[4096], cfgp[4096], err[512];
	struct config c;
	if (dir) {
		snprintf(src, sizeof src, "%s/tokenizer.json", dir);
	} else {
		/* next to the program (build/moecard), one folder up (build/asan/moecard), or
		 * build/cache from the working folder */
		static const char *const rel[] = {"/cache/", "/../cache/"};
		const char *tj = "deepseek_v3_tokenizer/tokenizer.json";
		snprintf(src, sizeof src, "build/cache/%s", tj);
		char exe[3072];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		char *slash = n > 0 ? memrchr(exe, '/', (size_t)n) : NULL;
		for (int i = 0; slash && i < 2; i++) {
			char cand[4096];
			*slash = 0;
			snprintf(cand, sizeof cand, "%s%s%s", exe, rel[i], tj);
			if (!access(cand, R_OK)) {
				snprintf(src, sizeof src, "%s", cand);
				break;
			}
		}
	}
	snprintf(cfgp, sizeof cfgp, "%s/config.json", out);
	if (access(src, R_OK)) {
		fprintf(stderr,
			"moecard: gen: %s: %s: the model has no tokenizer (run `make deps`, or set "
			"MOECARD_TOKENIZER_DIR)\n",
			src, strerror(errno));
		return 0;
	}
	if (config_load(cfgp, &c, err, sizeof err)) {
		fprintf(stderr, "moecard: %s\n", err);
		return 1;
	}
	int r = tokenizer_write_for_vocab(src, c.vocab_size, out, err, sizeof err);
	if (r == -EINVAL) { /* a vocab too small for the bytes + added tokens: no tokenizer */
		fprintf(stderr, "moecard: gen: no tokenizer written: %s\n", err);
		return 0;
	}
	if (r) {
		fprintf(stderr, "moecard: %s\n", err);
		return 1;
	}
	printf("moecard: gen: tokenizer for vocab %d from %s\n", c.vocab_size, src);
	return 0;
}

/* A progress line on stderr while the shards are generated (a terminal only). */
static void gen_progress(void *ctx, int done, int total)
{
	fprintf(ctx, "\rgen: %d of %d shard(s) generated", done, total);
	fflush(ctx);
}

int cli_gen(int argc, char **argv)
{
	const char *out = NULL, *preset = NULL;
	const char **sets = calloc((size_t)argc + 1, sizeof *sets);
	unsigned long long seed = 0;
	int n_sets = 0, rc;
	char err[512] = "";

	if (!sets) {
		fprintf(stderr, "moecard: gen: out of memory\n");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			cli_gen_usage(stdout);
			free(sets);
			return 0;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "moecard: gen: %s: missing value or unknown option\n", a);
			free(sets);
			return 2;
		}
		if (!strcmp(a, "--out")) {
			out = argv[++i];
		} else if (!strcmp(a, "--preset")) {
			preset = argv[++i];
		} else if (!strcmp(a, "--seed")) {
			char *end;
			errno = 0;
			seed = strtoull(argv[++i], &end, 0);
			if (!*argv[i] || *end || errno || argv[i][0] == '-') {
				fprintf(stderr, "moecard: gen: --seed: \"%s\" is not a number\n",
					argv[i]);
				free(sets);
				return 2;
			}
		} else if (!strcmp(a, "--set")) {
			sets[n_sets++] = argv[++i];
		} else {
			fprintf(stderr, "moecard: gen: unknown option %s\n", a);
			free(sets);
			return 2;
		}
	}
	if (!out || !preset) {
		fprintf(stderr, "moecard: gen: --out and --preset are required\n");
		free(sets);
		return 2;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (isatty(2))
		testckpt_progress(gen_progress, stderr);
	rc = testckpt_write(out, preset, seed, sets, n_sets, err, sizeof err);
	testckpt_progress(NULL, NULL);
	if (isatty(2))
		fprintf(stderr, "\r%60s\r", "");
	free(sets);
	if (rc) {
		fprintf(stderr, "moecard: %s\n", err);
		return rc == -EINVAL ? 2 : 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("moecard: gen: wrote %s (preset %s, seed %llu) in %.1f s\n", out, preset, seed,
	       (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
	return cli_gen_tokenizer(out);
}
