/*
 * cli_tokenize.c - `moecard tokenize`: text to token ids with the checkpoint's tokenizer.json
 * (host/text/tokenizer.h), ids back to text, and a throughput benchmark.
 *
 *   moecard tokenize (--model DIR | --tokenizer FILE) (--text T | --file F) [--json] [--no-bos]
 *   moecard tokenize ... --decode 1,2,3
 *   moecard tokenize ... --bench FILE [--seconds S]
 *
 * Default output: the ids, comma-separated, on one line. --json: one object with "ids", "tokens"
 * (the strings as written in tokenizer.json) and "pieces" (each token's text, invalid UTF-8
 * replaced by U+FFFD).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "text/tokenizer.h"

static const struct cli_help_row tok_help[] = {
    {"--model", "DIR", "a model folder with tokenizer.json", "--model or --tokenizer"},
    {"--tokenizer", "FILE", "a tokenizer.json (its tokenizer_config.json beside it)",
     "--model or --tokenizer"},
    {"--text", "T", "encode T", "one of --text --file --decode --bench"},
    {"--file", "F", "encode the file F", "one of --text --file --decode --bench"},
    {"--decode", "ID,ID,...", "decode token ids to text", "one of --text --file --decode --bench"},
    {"--bench", "F", "encode F repeatedly on one thread and print MB/s",
     "one of --text --file --decode --bench"},
    {"--seconds", "S", "--bench: how long to measure", "2"},
    {"--json", "", "print {\"ids\", \"tokens\", \"pieces\"}", "off"},
    {"--no-bos", "", "no BOS/EOS from tokenizer_config.json", "off"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: moecard tokenize (--model DIR | --tokenizer FILE) (--text T | --file F) "
		   "[--json] [--no-bos]\n"
		   "       moecard tokenize (--model DIR | --tokenizer FILE) --decode ID,ID,...\n"
		   "       moecard tokenize (--model DIR | --tokenizer FILE) --bench FILE "
		   "[--seconds S]\n");
	cli_help_rows(f, tok_help, sizeof tok_help / sizeof tok_help[0]);
}

/* The whole file into a malloc'd buffer (cli_opts.h). */
int cli_read_file(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap);
	while (b) {
		size_t r = fread(b + n, 1, cap - n, f);
		n += r;
		if (n < cap)
			break;
		char *nb = realloc(b, cap * 2);
		if (!nb) {
			free(b);
			b = NULL;
			break;
		}
		b = nb;
		cap *= 2;
	}
	int bad = ferror(f);
	fclose(f);
	if (!b)
		return -ENOMEM;
	if (bad) {
		free(b);
		return -EIO;
	}
	*buf = b;
	*len = n;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench(struct tokenizer *tok, const char *path, double secs)
{
	char *text;
	size_t len;
	int rc = cli_read_file(path, &text, &len);
	if (rc) {
		fprintf(stderr, "moecard: %s: %s\n", path, strerror(-rc));
		return 1;
	}
	int32_t *ids;
	size_t n = 0, iters = 0;
	/* first pass on a cold word cache, then steady state */
	double c0 = now_s();
	rc = tokenizer_encode(tok, text, len, 0, &ids, &n);
	double cold = now_s() - c0;
	if (!rc)
		free(ids);
	double t0 = now_s(), t1;
	do {
		rc = tokenizer_encode(tok, text, len, 0, &ids, &n);
		if (rc) {
			fprintf(stderr, "moecard: %s: encode failed: %s\n", path, strerror(-rc));
			free(text);
			return 1;
		}
		free(ids);
		iters++;
		t1 = now_s();
	} while (t1 - t0 < secs);
	double mbs = (double)len * (double)iters / (t1 - t0) / 1e6;
	printf(
	    "tokenize bench: %s: %zu bytes -> %zu tokens (%.2f bytes/token); first pass %.2f MB/s; "
	    "%zu more runs in %.2f s: %.2f MB/s, %.0f tokens/s (one thread)\n",
	    path, len, n, n ? (double)len / (double)n : 0.0, (double)len / cold / 1e6, iters,
	    t1 - t0, mbs, (double)n * (double)iters / (t1 - t0));
	free(text);
	return 0;
}

static int print_ids(struct tokenizer *tok, const int32_t *ids, size_t n, int json)
{
	if (!json) {
		for (size_t i = 0; i < n; i++)
			printf("%s%d", i ? "," : "", ids[i]);
		printf("\n");
		return 0;
	}
	json_t *o = json_object(), *ji = json_array(), *jt = json_array(), *jp = json_array();
	if (!o || !ji || !jt || !jp)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char *piece;
		size_t pl;
		const char *s = tokenizer_token_str(tok, ids[i]);
		json_array_append_new(ji, json_integer(ids[i]));
		json_array_append_new(jt, s ? json_string(s) : json_null());
		if (tokenizer_decode(tok, ids + i, 1, 0, &piece, &pl))
			return -ENOMEM;
		json_array_append_new(jp, json_stringn(piece, pl));
		free(piece);
	}
	json_object_set_new(o, "ids", ji);
	json_object_set_new(o, "tokens", jt);
	json_object_set_new(o, "pieces", jp);
	char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (!s)
		return -ENOMEM;
	printf("%s\n", s);
	free(s);
	return 0;
}

int cli_tokenize(int argc, char **argv)
{
	const char *model = NULL, *text = NULL, *file = NULL, *bench_file = NULL, *decode = NULL;
	int json = 0, no_bos = 0;
	double secs = 2.0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int has = i + 1 < argc;
		if ((!strcmp(a, "--model") || !strcmp(a, "--tokenizer")) && has)
			model = argv[++i];
		else if (!strcmp(a, "--text") && has)
			text = argv[++i];
		else if (!strcmp(a, "--file") && has)
			file = argv[++i];
		else if (!strcmp(a, "--bench") && has)
			bench_file = argv[++i];
		else if (!strcmp(a, "--decode") && has)
			decode = argv[++i];
		else if (!strcmp(a, "--seconds") && has) {
			if (cli_number("tokenize", a, argv[++i], 0.01, 3600, &secs))
				return 2;
		} else if (!strcmp(a, "--json"))
			json = 1;
		else if (!strcmp(a, "--no-bos"))
			no_bos = 1;
		else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "moecard: tokenize: unknown or incomplete option '%s'\n",
				a);
			usage(stderr);
			return 2;
		}
	}
	if (!model || (!!text + !!file + !!bench_file + !!decode) != 1) {
		fprintf(stderr, "moecard: tokenize: need --model/--tokenizer and one of --text, "
				"--file, --bench, --decode\n");
		usage(stderr);
		return 2;
	}
	char err[512] = "";
	struct tokenizer *tok;
	int rc = tokenizer_load(model, &tok, err, sizeof err);
	if (rc) {
		fprintf(stderr, "moecard: %s\n", err);
		return 1;
	}
	int ret = 0;
	if (bench_file) {
		ret = bench(tok, bench_file, secs > 0 ? secs : 2.0);
	} else if (decode) {
		size_t cap = 16, n = 0;
		int32_t *ids = malloc(cap * sizeof *ids);
		const char *p = decode;
		while (ids && *p) {
			char *end;
			long v = strtol(p, &end, 10);
			if (end == p || (*end && *end != ',')) {
				fprintf(stderr,
					"moecard: tokenize: --decode: '%s' is not a list of ids\n",
					decode);
				ret = 2;
				break;
			}
			size_t tl;
			if (v < 0 || v >= tokenizer_n_vocab(tok) ||
			    !tokenizer_token_bytes(tok, (int32_t)v, &tl)) {
				fprintf(
				    stderr,
				    "moecard: tokenize: --decode: %ld is not a token id of this "
				    "tokenizer (0..%d)\n",
				    v, (int)tokenizer_n_vocab(tok) - 1);
				ret = 2;
				break;
			}
			if (n == cap) {
				int32_t *nv = realloc(ids, 2 * cap * sizeof *ids);
				if (!nv)
					break;
				ids = nv;
				cap *= 2;
			}
			// cppcheck-suppress nullPointerRedundantCheck ; the loop runs only while ids != NULL
			ids[n++] = (int32_t)v;
			p = *end ? end + 1 : end;
		}
		char *s = NULL;
		size_t sl;
		if (!ret && (!ids || tokenizer_decode(tok, ids, n, 0, &s, &sl))) {
			fprintf(stderr, "moecard: tokenize: out of memory\n");
			ret = 1;
		} else if (!ret) {
			fwrite(s, 1, sl, stdout);
			printf("\n");
		}
		free(s);
		free(ids);
	} else {
		char *buf = NULL;
		size_t len = 0;
		if (file) {
			rc = cli_read_file(file, &buf, &len);
			if (rc) {
				fprintf(stderr, "moecard: %s: %s\n", file, strerror(-rc));
				tokenizer_free(tok);
				return 1;
			}
		}
		int32_t *ids;
		size_t n;
		rc = tokenizer_encode(tok, file ? buf : text, file ? len : strlen(text),
				      no_bos ? 0 : TOKENIZER_ENC_ADD_SPECIAL, &ids, &n);
		if (rc) {
			fprintf(stderr, "moecard: tokenize: %s: %s\n", file ? file : "--text",
				strerror(-rc));
			ret = 1;
		} else {
			if (print_ids(tok, ids, n, json)) {
				fprintf(stderr, "moecard: tokenize: out of memory\n");
				ret = 1;
			}
			free(ids);
		}
		free(buf);
	}
	tokenizer_free(tok);
	return ret;
}
