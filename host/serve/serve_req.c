/*
 * serve_req.c - OpenAI-style request bodies for `moecard serve` (serve_req.h), with jansson.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "serve/serve_req.h"
#include "util/errmsg.h"

static int bad(struct serve_params *p, const char *param, const char *fmt, ...)
{
	va_list ap;
	snprintf(p->err_param, sizeof p->err_param, "%s", param);
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof p->err, fmt, ap);
	va_end(ap);
	errmsg_oneline(p->err); /* (the JSON parser's excerpt of the body may hold a newline) */
	errmsg_oneline(p->err_param);
	return -EINVAL;
}

/* A message's content: a string, null (""), or an array of {"type": "text", "text": ...} parts,
 * joined. NULL with p->err set on anything else. */
static char *content_text(json_t *c, struct serve_params *p, size_t i)
{
	char param[40];
	snprintf(param, sizeof param, "messages[%zu].content", i);
	if (!c || json_is_null(c))
		return strdup("");
	if (json_is_string(c))
		return strndup(json_string_value(c), json_string_length(c));
	if (!json_is_array(c)) {
		bad(p, param, "expected a string or an array of text parts");
		return NULL;
	}
	size_t n = 0, k;
	json_t *part;
	json_array_foreach(c, k, part)
	{
		json_t *ty = json_object_get(part, "type"), *tx = json_object_get(part, "text");
		if (!json_is_string(ty) || strcmp(json_string_value(ty), "text") ||
		    !json_is_string(tx)) {
			bad(p, param,
			    "only parts {\"type\": \"text\", \"text\": ...} are supported");
			return NULL;
		}
		n += json_string_length(tx);
	}
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	n = 0;
	json_array_foreach(c, k, part)
	{
		json_t *tx = json_object_get(part, "text");
		memcpy(s + n, json_string_value(tx), json_string_length(tx));
		n += json_string_length(tx);
	}
	s[n] = 0;
	return s;
}

static int parse_messages(json_t *m, struct serve_params *p)
{
	if (!json_is_array(m) || json_array_size(m) == 0)
		return bad(p, "messages", "expected a non-empty array of messages");
	if (json_array_size(m) > SERVE_MAX_MSGS)
		return bad(p, "messages", "more than %d messages", SERVE_MAX_MSGS);
	p->msgs = calloc(json_array_size(m), sizeof *p->msgs);
	if (!p->msgs)
		return -ENOMEM;
	size_t i;
	json_t *msg;
	json_array_foreach(m, i, msg)
	{
		char param[40];
		snprintf(param, sizeof param, "messages[%zu].role", i);
		json_t *role = json_object_get(msg, "role");
		if (!json_is_object(msg) || !json_is_string(role))
			return bad(p, param, "each message needs a role");
		const char *r = json_string_value(role);
		if (!strcmp(r, "developer"))
			r = "system"; /* OpenAI's newer name for the system prompt */
		if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant") &&
		    strcmp(r, "tool"))
			return bad(p, param, "unknown role '%.40s'", r);
		char *role_s = strdup(r);
		char *text = role_s ? content_text(json_object_get(msg, "content"), p, i) : NULL;
		if (!text) {
			free(role_s);
			return p->err[0] ? -EINVAL : -ENOMEM;
		}
		p->msgs[i].role = role_s;
		p->msgs[i].content = text;
		p->n_msgs = i + 1;
	}
	return 0;
}

static int parse_stop(json_t *s, struct serve_params *p)
{
	if (!s || json_is_null(s))
		return 0;
	if (json_is_string(s)) {
		if (!json_string_length(s))
			return bad(p, "stop", "an empty stop string");
		if (!(p->stops[0] = strndup(json_string_value(s), json_string_length(s))))
			return -ENOMEM;
		p->n_stops = 1;
		return 0;
	}
	if (!json_is_array(s) || json_array_size(s) > SERVE_MAX_STOPS)
		return bad(p, "stop", "expected a string or an array of up to %d strings",
			   SERVE_MAX_STOPS);
	size_t i;
	json_t *v;
	json_array_foreach(s, i, v)
	{
		if (!json_is_string(v) || !json_string_length(v))
			return bad(p, "stop", "stop[%zu]: expected a non-empty string", i);
		if (!(p->stops[i] = strndup(json_string_value(v), json_string_length(v))))
			return -ENOMEM;
		p->n_stops = (int)i + 1;
	}
	return 0;
}

/* A number field within [lo, hi] into *out (left alone when absent or null). */
static int get_num(json_t *o, const char *key, double lo, double hi, double *out,
		   struct serve_params *p)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v))
		return bad(p, key, "expected a number");
	double x = json_number_value(v);
	if (!isfinite(x) || x < lo || x > hi)
		return bad(p, key, "%g is outside [%g, %g]", x, lo, hi);
	*out = x;
	return 0;
}

static int get_bool(json_t *o, const char *key, int *out, struct serve_params *p)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return bad(p, key, "expected true or false");
	*out = json_is_true(v);
	return 0;
}

static int parse_fields(json_t *o, struct serve_params *p)
{
	int r;
	json_t *v = json_object_get(o, "model");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v))
			return bad(p, "model", "expected a string");
		if (!(p->model = strdup(json_string_value(v))))
			return -ENOMEM;
	}
	if (p->kind == SERVE_CHAT) {
		if ((r = parse_messages(json_object_get(o, "messages"), p)))
			return r;
	} else {
		v = json_object_get(o, "prompt");
		if (json_is_array(v) && json_array_size(v) == 1)
			v = json_array_get(v, 0);
		if (!json_is_string(v))
			return bad(p, "prompt", "expected a string (or an array of one string)");
		if (!(p->prompt = strndup(json_string_value(v), json_string_length(v))))
			return -ENOMEM;
	}
	const char *mt =
	    json_object_get(o, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
	v = json_object_get(o, mt);
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 1000000000)
			return bad(p, mt, "expected an integer >= 1");
		p->max_tokens = (int)json_integer_value(v);
	}
	if ((r = get_num(o, "temperature", 0, 2, &p->temperature, p)) ||
	    (r = get_num(o, "top_p", 1e-6, 1, &p->top_p, p)) ||
	    (r = get_bool(o, "stream", &p->stream, p)) ||
	    (r = get_bool(o, "ignore_eos", &p->ignore_eos, p)) ||
	    (r = parse_stop(json_object_get(o, "stop"), p)))
		return r;
	v = json_object_get(o, "seed");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v))
			return bad(p, "seed", "expected an integer");
		p->has_seed = 1;
		p->seed = (uint64_t)json_integer_value(v);
	}
	v = json_object_get(o, "n");
	if (v && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) != 1))
		return bad(p, "n", "only n = 1 is supported");
	v = json_object_get(o, "logprobs");
	if (v && !json_is_null(v) && !json_is_false(v) &&
	    !(json_is_integer(v) && json_integer_value(v) == 0))
		return bad(p, "logprobs", "log probabilities are not supported");
	v = json_object_get(o, "stream_options");
	if (v && !json_is_null(v)) {
		if (!json_is_object(v))
			return bad(p, "stream_options", "expected an object");
		if ((r = get_bool(v, "include_usage", &p->include_usage, p)))
			return r;
	}
	return 0;
}

int serve_params_parse(const char *body, size_t len, enum serve_kind kind, struct serve_params *p)
{
	memset(p, 0, sizeof *p);
	p->kind = kind;
	p->max_tokens = -1;
	p->temperature = 1.0;
	p->top_p = 1.0;
	json_error_t je;
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	int r;
	if (!o)
		r = bad(p, "body", "not JSON: %s (line %d, column %d)", je.text, je.line,
			je.column);
	else if (!json_is_object(o))
		r = bad(p, "body", "expected a JSON object");
	else
		r = parse_fields(o, p);
	json_decref(o);
	if (r) {
		char ep[sizeof p->err_param], e[sizeof p->err];
		memcpy(ep, p->err_param, sizeof ep);
		memcpy(e, p->err, sizeof e);
		serve_params_free(p);
		memcpy(p->err_param, ep, sizeof ep);
		memcpy(p->err, e, sizeof e);
	}
	return r;
}

void serve_params_free(struct serve_params *p)
{
	for (size_t i = 0; i < p->n_msgs; i++) {
		free((char *)p->msgs[i].role);
		free((char *)p->msgs[i].content);
	}
	free(p->msgs);
	free(p->model);
	free(p->prompt);
	for (int i = 0; i < p->n_stops; i++)
		free(p->stops[i]);
	memset(p, 0, sizeof *p);
}
