/*
 * cli_line.c - the line reader of `moecard chat` (cli_line.h): libedit's editor on a terminal,
 * getline elsewhere.
 */
#include <histedit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include "cli/cli_line.h"

enum { CLI_LINE_HISTORY = 500 }; /* lines Up/Down can reach */

struct cli_line {
	EditLine *el; /* NULL: plain getline */
	History *hist;
	const char *prompt;
	char *buf; /* the line handed out */
	size_t cap;
};

static char *cli_line_prompt(EditLine *el)
{
	struct cli_line *l = NULL;
	el_get(el, EL_CLIENTDATA, &l);
	return (char *)(l && l->prompt ? l->prompt : "");
}

struct cli_line *cli_line_open(const char *prog, int edit)
{
	struct cli_line *l = calloc(1, sizeof *l);
	if (!l || !edit)
		return l;
	HistEvent ev;
	l->el = el_init(prog, stdin, stdout, stderr);
	l->hist = history_init();
	if (!l->el || !l->hist) {
		cli_line_close(l);
		return NULL;
	}
	history(l->hist, &ev, H_SETSIZE, CLI_LINE_HISTORY);
	history(l->hist, &ev, H_SETUNIQUE, 1);
	el_set(l->el, EL_CLIENTDATA, l);
	el_set(l->el, EL_EDITOR, "emacs");
	el_set(l->el, EL_PROMPT, cli_line_prompt);
	el_set(l->el, EL_HIST, history, l->hist);
	el_source(l->el, NULL); /* the user's ~/.editrc, if any */
	return l;
}

/* The length of s[0..n) without its trailing line end. */
static size_t cli_line_trim(const char *s, size_t n)
{
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	return n;
}

/* Copies n bytes of s into l->buf without the trailing line end. */
static const char *cli_line_keep(struct cli_line *l, const char *s, size_t n)
{
	n = cli_line_trim(s, n);
	if (n + 1 > l->cap) {
		char *b = realloc(l->buf, n + 1);
		if (!b)
			return NULL;
		l->buf = b;
		l->cap = n + 1;
	}
	memcpy(l->buf, s, n);
	l->buf[n] = 0;
	return l->buf;
}

const char *cli_line_get(struct cli_line *l, const char *prompt)
{
	if (l->el) {
		int n = 0;
		l->prompt = prompt;
		const char *s = el_gets(l->el, &n);
		if (!s || n <= 0)
			return NULL;
		return cli_line_keep(l, s, (size_t)n);
	}
	if (prompt && *prompt) {
		fputs(prompt, stdout);
		fflush(stdout);
	}
	ssize_t n = getline(&l->buf, &l->cap, stdin);
	if (n < 0)
		return NULL;
	l->buf[cli_line_trim(l->buf, (size_t)n)] = 0;
	return l->buf;
}

void cli_line_remember(struct cli_line *l, const char *line)
{
	HistEvent ev;
	if (l->hist && line && *line)
		history(l->hist, &ev, H_ENTER, line);
}

void cli_line_close(struct cli_line *l)
{
	if (!l)
		return;
	if (l->el)
		el_end(l->el);
	if (l->hist)
		history_end(l->hist);
	free(l->buf);
	free(l);
}
