/*
 * cli_line.h - the line reader of `moecard chat`. On a terminal it is libedit's editor (Debian
 * libedit: emacs keys, Left/Right, Home/End, Ctrl-W, and Up/Down through the lines entered this
 * session; ~/.editrc applies); anywhere else (a pipe, a file) it reads plain lines with getline.
 * A SIGINT handler installed without SA_RESTART ends a wait for input: cli_line_get then returns
 * NULL, as at the end of input.
 */
#ifndef MOECARD_CLI_LINE_H
#define MOECARD_CLI_LINE_H

struct cli_line;

/* A reader on stdin/stdout; edit != 0 selects the editor (the caller checks that stdin and stdout
 * are terminals). NULL when out of memory or the editor cannot start. */
struct cli_line *cli_line_open(const char *prog, int edit);
/* The next line without its line end, valid until the next call; prompt is shown first (by the
 * editor, or printed and flushed). NULL at the end of input, on Ctrl-D at an empty prompt, or
 * when a signal interrupted the wait. */
const char *cli_line_get(struct cli_line *l, const char *prompt);
/* Adds a line to the history that Up/Down walk (no-op without the editor). */
void cli_line_remember(struct cli_line *l, const char *line);
void cli_line_close(struct cli_line *l);

#endif
