/*
 * cli_chat.c - `moecard chat --model DIR`: an interactive REPL in the DeepSeek-V3 chat format
 * (chat_template.h). Each line on stdin is a user turn; the reply streams to stdout as it is
 * generated (generate.h, MTP speculation by default). The KV cache is kept across turns: only the
 * new turn's tokens ("<｜User｜>" + text + "<｜Assistant｜>", after the previous reply's
 * "<｜end▁of▁sentence｜>") are prefilled. Commands: /help, /reset (forget the conversation),
 * /stats (context and speed figures), /quit (or end of input); any other /word is an error, not a
 * turn ("//text" sends "/text"). On a terminal: a banner, and Ctrl-C stops the reply being
 * written and returns to the prompt (Ctrl-C at the prompt, or Ctrl-D, exits). Control tokens
 * ("<｜User｜>" ...) are never printed (tokenizer_token_is_control).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "load/ckpt.h"
#include "cli/cli.h"
#include "cli/cli_line.h"
#include "cli/cli_opts.h"
#include "engine/engine.h"
#include "decode/generate.h"
#include "text/tokenizer.h"

/* Set by SIGINT (a terminal's Ctrl-C): the reply stops; at the prompt the REPL exits. */
static volatile sig_atomic_t chat_sigint;

static void chat_on_sigint(int sig)
{
	(void)sig;
	chat_sigint = 1;
}

static const char chat_help[] =
    "[commands] /help this list; /reset forget the conversation; /stats context and speed; "
    "/quit (or Ctrl-D) leave; //text sends /text. Ctrl-C stops a reply.\n";

static void chat_usage(FILE *f)
{
	fprintf(f, "usage: moecard chat --model DIR [options]\n"
		   "  stdin: one user turn per line; /help, /reset, /stats, /quit\n");
	cli_opts_help(f, CLI_SET_CHAT);
}

static int chat_check(const struct cli_opts *a)
{
	if (a->n < 1 || a->ctx < 16) {
		fprintf(stderr, "moecard: chat: -n must be >= 1 and --ctx >= 16\n");
		return 2;
	}
	return 0;
}

/* chat: its one flag is --ignore-eos (cli_opts.h). */
static const struct cli_cmd chat_cmd = {"chat", CLI_SET_CHAT, 0, chat_usage, chat_check};

/* The options of chat with their defaults: -n 256, --ctx 4096. 0, 1 after --help, 2 on a
 * usage error. */
static int chat_parse(int argc, char **argv, struct cli_opts *a)
{
	cli_opts_init(a);
	a->n = 256;
	a->ctx = 4096;
	return cli_opts_parse(argc, argv, &chat_cmd, a);
}

/* Appends the ids of text (no BOS; special tokens in the text stay plain text) to the history. */
static int chat_add_text(struct gen *g, struct tokenizer *tok, const char *text)
{
	int32_t *ids = NULL;
	size_t n = 0;
	int r = tokenizer_encode(tok, text, strlen(text), TOKENIZER_ENC_SPLIT_SPECIAL, &ids, &n);
	if (!r) {
		int *t = malloc(sizeof(int) * (n ? n : 1));
		if (!t)
			r = -ENOMEM;
		for (size_t i = 0; t && i < n; i++)
			t[i] = ids[i];
		if (t)
			r = gen_append(g, t, (int)n);
		free(t);
	}
	free(ids);
	return r;
}

static int chat_add_id(struct gen *g, struct tokenizer *tok, const char *s)
{
	int id = tokenizer_token_id(tok, s);
	return id < 0 ? -EINVAL : gen_append(g, &id, 1);
}

/* The conversation's opening: BOS and the system prompt. */
static int chat_start(struct gen *g, struct tokenizer *tok, const char *system)
{
	gen_rollback(g, 0);
	int bos = tokenizer_bos_id(tok), r = 0;
	if (bos >= 0)
		r = gen_append(g, &bos, 1);
	if (!r && system && *system)
		r = chat_add_text(g, tok, system);
	return r;
}

static void chat_stats(const struct gen *g, int turns)
{
	const struct gen_stats *st = &g->st;
	printf("[stats] context %d/%d tokens, %d turns; prefill %ld tokens %.1f tok/s; decode %ld "
	       "tokens %.1f tok/s, %ld main forwards",
	       g->n_hist, g->e->max_seq, turns, st->prefill_tokens,
	       st->prefill_s > 0 ? st->prefill_tokens / st->prefill_s : 0.0, st->decode_tokens,
	       st->decode_s > 0 ? st->decode_tokens / st->decode_s : 0.0, st->decode_forwards);
	if (g->depth > 0)
		printf("; spec mtp depth %d: accepted %ld/%ld (%.1f%%)", g->depth, st->accepted,
		       st->drafted, st->drafted ? 100.0 * st->accepted / st->drafted : 0.0);
	printf("\n");
	fflush(stdout);
}

/* The tokenizer beside the checkpoint, the checkpoint and the engine with a KV cache of --ctx
 * tokens. 0, or 1 with the message printed (nothing left open). */
static int chat_open(const struct cli_opts *a, struct tokenizer **tok, struct ckpt *ck,
		     struct engine *m)
{
	char err[512];
	if (tokenizer_load(a->model, tok, err, sizeof err)) {
		fprintf(stderr, "moecard: %s\n", err);
		return 1;
	}
	if (ckpt_open(a->model, ck, err, sizeof err)) {
		fprintf(stderr, "moecard: %s\n", err);
		tokenizer_free(*tok);
		return 1;
	}
	struct model_opts o = {0};
	o.act_fp8 = a->act ? !strcmp(a->act, "fp8")
			   : ck->w.fp8 && ck->cfg.quantization_config.present &&
				 ck->cfg.quantization_config.dynamic;
	o.head_fp8 = a->head && !strcmp(a->head, "fp8");
	o.head_screen = !a->head_screen || !strcmp(a->head_screen, "on");
	o.n_threads = a->threads;
	o.max_seq = a->ctx;
	/* a turn's prompt in forwards of up to 512 rows, as run's and bench's (the card's batched
	 * prefill takes a chunk whole; the cpu engine's GEMMs reuse each weight over its rows) */
	o.max_batch = 512;
	struct engine_extra x = a->ex;
	x.long_run = 1; /* a conversation: weights in huge pages unless --huge-pages off */
	if (engine_open(m, a->backend, ck, &o, &x, err, sizeof err)) {
		fprintf(stderr, "moecard: %s\n", err);
		ckpt_close(ck);
		tokenizer_free(*tok);
		return 1;
	}
	return 0;
}

/* Streams the reply to the turn just appended: at most -n tokens, until EOS, a --stop string or
 * a full context. The history then ends with EOS, as the template has it. 0 or a negative
 * errno. */
static int chat_reply(struct gen *g, struct gen_text *tx, const struct cli_opts *a, int eos)
{
	int r, made = 0, done = 0, ids[8], n, ended = 0;
	if ((r = gen_sync(g)))
		return r;
	while (!done) {
		if (made >= a->n || g->n_hist + g->depth + 2 > a->ctx) /* leave room for the EOS */
			break;
		if (chat_sigint) { /* Ctrl-C: the reply ends here, the history stays consistent */
			chat_sigint = 0;
			printf(" [stopped]");
			break;
		}
		if ((r = gen_step(g, ids, &n)))
			return r;
		for (int i = 0; i < n && !done; i++) {
			made++;
			if (ids[i] == eos) {
				ended = 1;
				done = 1;
			} else if (gen_text_push(tx, ids[i], stdout) == 1 || made >= a->n) {
				done = 1;
			}
			if (done) /* drop tokens of the step after the end of the reply */
				gen_rollback(g, g->n_hist - n + i + 1);
		}
	}
	gen_text_finish(tx, stdout);
	printf("\n");
	fflush(stdout);
	if (!ended && (r = gen_append(g, &eos, 1)))
		return r;
	return 0;
}

/* One user turn: only its tokens ("<｜User｜>" + line + "<｜Assistant｜>") are prefilled, the KV
 * cache holds the rest; then the reply. 0, 1 when the turn does not fit in the context (the
 * history is left as it was), or a negative errno. */
static int chat_turn(struct gen *g, struct gen_text *tx, struct tokenizer *tok,
		     const struct cli_opts *a, int eos, const char *line)
{
	int keep = g->n_hist, r;
	if ((r = chat_add_id(g, tok, "<｜User｜>")) || (r = chat_add_text(g, tok, line)) ||
	    (r = chat_add_id(g, tok, "<｜Assistant｜>"))) {
		gen_rollback(g, keep);
		if (r == -ENOSPC) {
			printf("[context full: /reset]\n");
			fflush(stdout);
			return 1;
		}
		return r;
	}
	return chat_reply(g, tx, a, eos);
}

int cli_chat(int argc, char **argv)
{
	struct cli_opts a;
	struct ckpt ck;
	struct engine m;
	struct gen g;
	struct gen_text tx;
	struct tokenizer *tok = NULL;
	struct cli_line *rd = NULL;
	int r = chat_parse(argc, argv, &a), rc = 1, turns = 0;
	if (r)
		return r == 1 ? 0 : r;
	if (chat_open(&a, &tok, &ck, &m))
		return 1;
	memset(&g, 0, sizeof g);
	memset(&tx, 0, sizeof tx);
	int can = ck.w.mtp && m.ops->mtp_forward;
	if (a.spec > 0 && !can) {
		fprintf(stderr, "moecard: %s: --spec mtp needs an MTP layer\n", a.model);
		goto out;
	}
	int eos = tokenizer_eos_id(tok);
	if (eos < 0)
		eos = ck.cfg.eos_token_id;
	struct gen_opts go = {.s = a.smp};
	go.s.ban = a.ignore_eos;
	go.s.ban_id = eos;
	go.spec_depth = a.spec == 0 || !can ? 0 : m.ops->mtp_hidden ? a.spec_depth : 1;
	if (isatty(2)) {
		go.progress = gen_progress_bar;
		go.progress_ctx = stderr;
	}
	if ((r = gen_init(&g, &m, &go, a.ctx)) ||
	    (r = gen_text_init(&tx, tok, a.stops, a.n_stops))) {
		fprintf(stderr, "moecard: chat: %s\n", strerror(-r));
		goto out;
	}
	if ((r = chat_start(&g, tok, a.system)))
		goto fail;
	int interactive = isatty(0);
	/* the editor only when both ends are a terminal (its prompt and echo go to stdout) */
	if (!(rd = cli_line_open("moecard", interactive && isatty(1)))) {
		r = -ENOMEM;
		goto fail;
	}
	if (interactive) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler =
		    chat_on_sigint; /* no SA_RESTART: Ctrl-C ends a read at the prompt */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		printf("moecard chat: %s%s, %d layers, vocab %d; backend %s, context %d tokens, "
		       "replies up to %d tokens%s\n%s",
		       a.model, ck.cfg.random_weights ? " (random weights: its text is noise)" : "",
		       ck.cfg.num_hidden_layers, ck.cfg.vocab_size, a.backend, a.ctx, a.n,
		       go.spec_depth ? ", MTP speculation" : "", chat_help);
	}
	for (;;) {
		chat_sigint = 0;
		const char *line = cli_line_get(rd, interactive ? "> " : NULL);
		if (!line) {
			if (interactive)
				printf("\n");
			break; /* Ctrl-D, end of input, or Ctrl-C at the prompt */
		}
		if (!*line)
			continue;
		cli_line_remember(rd, line);
		if (!strcmp(line, "/quit") || !strcmp(line, "/exit"))
			break;
		if (!strcmp(line, "/stats")) {
			chat_stats(&g, turns);
			continue;
		}
		if (!strcmp(line, "/reset")) {
			if ((r = chat_start(&g, tok, a.system)))
				goto fail;
			turns = 0;
			printf("[reset]\n");
			fflush(stdout);
			continue;
		}
		if (!strcmp(line, "/help")) {
			fputs(chat_help, stdout);
			fflush(stdout);
			continue;
		}
		const char *turn = line;
		if (line[0] == '/' && line[1] == '/') {
			turn = line + 1; /* "//text": the turn "/text" */
		} else if (line[0] == '/') {
			printf("[unknown command %.40s: /help lists them]\n", line);
			fflush(stdout);
			continue;
		}
		chat_sigint = 0;
		if ((r = chat_turn(&g, &tx, tok, &a, eos, turn)) < 0)
			goto fail;
		turns += r == 0;
	}
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "moecard: chat: %s\n", strerror(-r));
out:
	cli_line_close(rd);
	gen_text_free(&tx);
	gen_free(&g);
	engine_free(&m);
	ckpt_close(&ck);
	tokenizer_free(tok);
	return rc;
}
