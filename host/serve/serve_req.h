/*
 * serve_req.h - the body of an OpenAI-style request to `moecard serve` (POST /v1/chat/completions
 * and /v1/completions) parsed into what the scheduler needs. Outside bytes: every field is checked
 * and a bad one is named (err_param) with a one-line message, as OpenAI's error JSON reports it.
 * Fields the server does not use (user, presence_penalty, ...) are accepted and ignored; fields it
 * cannot honour (n > 1, logprobs) are refused.
 */
#ifndef MOECARD_SERVE_REQ_H
#define MOECARD_SERVE_REQ_H

#include <stddef.h>
#include <stdint.h>
#include "text/chat_template.h"

#define SERVE_MAX_STOPS 4   /* as OpenAI's API: a string or up to 4 */
#define SERVE_MAX_MSGS 1024 /* messages in one chat request */

enum serve_kind { SERVE_CHAT, SERVE_COMPLETION };

struct serve_params {
	enum serve_kind kind;
	char *model;	       /* "model" as sent, or NULL */
	struct chat_msg *msgs; /* chat: [n_msgs], role and content strings malloc'd */
	size_t n_msgs;
	char *prompt;	    /* completion: the prompt text */
	int max_tokens;	    /* max_tokens / max_completion_tokens, -1 when not given */
	double temperature; /* 0..2, default 1 (OpenAI's) */
	double top_p;	    /* (0, 1], default 1 */
	int has_seed;
	uint64_t seed;
	char *stops[SERVE_MAX_STOPS];
	int n_stops;
	int stream;	    /* "stream": true */
	int include_usage;  /* "stream_options": {"include_usage": true} */
	int ignore_eos;	    /* "ignore_eos": true (vLLM's extension): the EOS is never sampled */
	char err_param[40]; /* the offending field on an error */
	char err[200];	    /* what is wrong with it */
};

/* Parses len bytes of JSON for a request of kind. 0, or -EINVAL with err/err_param set (p is
 * then already freed), -ENOMEM. */
int serve_params_parse(const char *body, size_t len, enum serve_kind kind, struct serve_params *p);
void serve_params_free(struct serve_params *p);

#endif
