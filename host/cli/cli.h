/*
 * cli.h - the moecard subcommands. main.c dispatches argv[1] to one of these; each parses its own
 * options, prints one-line errors as "moecard: <file>: <field>: <what>" on stderr and returns the
 * process exit code (0 ok, 1 runtime/input error, 2 usage error; docs/cli.md), which main()
 * returns. Only `run|bench --help` calls exit() (cli_run.c).
 */
#ifndef MOECARD_CLI_H
#define MOECARD_CLI_H

int cli_run(int argc, char **argv);	   /* moecard run      (host/cli/cli_run.c) */
int cli_bench(int argc, char **argv);	   /* moecard bench    (host/cli/cli_run.c) */
int cli_info(int argc, char **argv);	   /* moecard info     (host/cli/cli_info.c) */
int cli_gen(int argc, char **argv);	   /* moecard gen      (host/cli/cli_gen.c) */
int cli_tokenize(int argc, char **argv);   /* moecard tokenize (host/cli/cli_tokenize.c) */
int cli_chat(int argc, char **argv);	   /* moecard chat     (host/cli/cli_chat.c) */
int cli_cache_sim(int argc, char **argv);  /* moecard cache-sim (host/cli/cli_cache_sim.c) */
int cli_devices(int argc, char **argv);	   /* moecard devices (host/cli/cli_devices.c) */
int cli_perplexity(int argc, char **argv); /* moecard perplexity (host/cli/cli_perplexity.c) */
int cli_profile(int argc, char **argv);	   /* moecard profile (host/cli/cli_profile.c) */
int cli_serve(int argc, char **argv);	   /* moecard serve (host/cli/cli_serve.c) */

#endif
