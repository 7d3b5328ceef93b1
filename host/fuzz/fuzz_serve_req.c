/*
 * fuzz_serve_req.c - libFuzzer target: serve_params_parse (host/serve/serve_req.c), the body of a
 * request to `moecard serve`, on arbitrary bytes, as a chat and as a text completion. Any input
 * must parse into fields within their documented ranges or fail with -EINVAL (naming a field, a
 * one-line message) or -ENOMEM; never crash, leak or read out of bounds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "serve/serve_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int k = 0; k < 2; k++) {
		struct serve_params p;
		int rc = serve_params_parse((const char *)data, size,
					    k ? SERVE_COMPLETION : SERVE_CHAT, &p);
		if (rc == 0) {
			if ((k == 0 && (!p.n_msgs || !p.msgs)) || (k == 1 && !p.prompt) ||
			    p.temperature < 0 || p.temperature > 2 || !(p.top_p > 0) ||
			    p.top_p > 1 || p.n_stops > SERVE_MAX_STOPS ||
			    (p.max_tokens != -1 && p.max_tokens < 1))
				abort();
			for (size_t i = 0; i < p.n_msgs; i++)
				if (!p.msgs[i].role || !p.msgs[i].content)
					abort();
			serve_params_free(&p);
		} else if ((rc != -EINVAL && rc != -ENOMEM) ||
			   (rc == -EINVAL &&
			    (!p.err_param[0] || !p.err[0] || strchr(p.err, '\n')))) {
			abort();
		}
	}
	return 0;
}
