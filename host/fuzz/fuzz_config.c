/*
 * fuzz_config.c - libFuzzer target: config_parse (host/load/config.c) on arbitrary bytes. Any input
 * must either parse into a config that passes config_validate or fail with -EINVAL/-ENOMEM and
 * a one-line message; never crash, leak or read out of bounds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "load/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char err[256];
	err[0] = 0;
	int rc = config_parse((const char *)data, size, "config.json", &c, err, sizeof err);
	if (rc == 0) {
		if (config_validate(&c, "config.json", err, sizeof err))
			abort(); /* parse accepted what validate rejects */
	} else if ((rc != -EINVAL && rc != -ENOMEM) || strchr(err, '\n') ||
		   strncmp(err, "config.json: ", 13)) {
		abort();
	}
	return 0;
}
