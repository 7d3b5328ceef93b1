/* cli_tokenize.c - moecard tokenize (placeholder until its owner lands it). */
#include <stdio.h>
#include "cli.h"

int cli_tokenize(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "moecard: tokenize: not built yet\n");
	return 2;
}
