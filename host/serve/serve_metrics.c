/*
 * serve_metrics.c - Prometheus text for `moecard serve` (serve_metrics.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "serve/serve_metrics.h"

/* latency bucket bounds, seconds */
static const double hist_le[SERVE_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
						   0.25,  0.5,	  1,	 2.5,  5,     10,   30};
static const int status_codes[SERVE_N_STATUS] = {200, 400, 401, 404, 405, 413, 429, 500, 503, 0};
static const char *const ep_names[SERVE_EP_N] = {
    "/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "other"};

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void serve_metrics_init(struct serve_metrics *m, int kv_slots)
{
	memset(m, 0, sizeof *m);
	pthread_mutex_init(&m->mu, NULL);
	m->kv_slots = kv_slots;
	m->t_start = mono_s();
}

void serve_metrics_destroy(struct serve_metrics *m)
{
	pthread_mutex_destroy(&m->mu);
}

void serve_metrics_request(struct serve_metrics *m, int endpoint, int status)
{
	int s = SERVE_N_STATUS - 1;
	for (int i = 0; i < SERVE_N_STATUS - 1; i++)
		if (status_codes[i] == status)
			s = i;
	if (endpoint < 0 || endpoint >= SERVE_EP_N)
		endpoint = SERVE_EP_OTHER;
	pthread_mutex_lock(&m->mu);
	m->requests[endpoint][s]++;
	pthread_mutex_unlock(&m->mu);
}

void serve_hist_observe(struct serve_hist *h, double s)
{
	int b = SERVE_HIST_BUCKETS;
	for (int i = 0; i < SERVE_HIST_BUCKETS; i++)
		if (s <= hist_le[i]) {
			b = i;
			break;
		}
	h->n[b]++;
	h->count++;
	h->sum += s;
}

/* A growing text buffer. */
struct sbuf {
	char *s;
	size_t len, cap;
	int oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = b->oom ? 0 : vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (b->oom || n < 0)
			return;
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t nc = (b->cap + (size_t)n + 1) * 2;
		char *ns = realloc(b->s, nc);
		if (!ns) {
			b->oom = 1;
			return;
		}
		b->s = ns;
		b->cap = nc;
	}
}

static void sb_hist(struct sbuf *b, const char *name, const char *help, const struct serve_hist *h)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	uint64_t cum = 0;
	for (int i = 0; i < SERVE_HIST_BUCKETS; i++) {
		cum += h->n[i];
		sb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, hist_le[i],
			  (unsigned long long)cum);
	}
	cum += h->n[SERVE_HIST_BUCKETS];
	sb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
		  (unsigned long long)cum, name, h->sum, name, (unsigned long long)h->count);
}

char *serve_metrics_render(struct serve_metrics *m, const char *backend, const char *model)
{
	struct sbuf b = {0};
	b.cap = 8192;
	b.s = malloc(b.cap);
	if (!b.s)
		return NULL;
	b.s[0] = 0;
	pthread_mutex_lock(&m->mu);
	double up = mono_s() - m->t_start;
	sb_printf(&b,
		  "# HELP moecard_info The served model and backend.\n# TYPE moecard_info gauge\n"
		  "moecard_info{model=\"%s\",backend=\"%s\"} 1\n",
		  model, backend);
	sb_printf(&b, "# HELP moecard_requests_total Answered HTTP requests by endpoint and "
		      "status.\n# TYPE moecard_requests_total counter\n");
	for (int e = 0; e < SERVE_EP_N; e++)
		for (int s = 0; s < SERVE_N_STATUS; s++)
			if (m->requests[e][s])
				sb_printf(&b,
					  "moecard_requests_total{endpoint=\"%s\",status=\"%s%d\"} "
					  "%llu\n",
					  ep_names[e], status_codes[s] ? "" : "other",
					  status_codes[s], (unsigned long long)m->requests[e][s]);
	sb_printf(&b,
		  "# HELP moecard_queue_depth Requests waiting for a sequence slot.\n"
		  "# TYPE moecard_queue_depth gauge\nmoecard_queue_depth %d\n"
		  "# HELP moecard_running_sequences Sequences being prefilled or decoded.\n"
		  "# TYPE moecard_running_sequences gauge\nmoecard_running_sequences %d\n"
		  "# HELP moecard_kv_slots KV cache slots (one sequence each).\n"
		  "# TYPE moecard_kv_slots gauge\nmoecard_kv_slots %d\n"
		  "# HELP moecard_kv_slots_used KV cache slots held by a sequence.\n"
		  "# TYPE moecard_kv_slots_used gauge\nmoecard_kv_slots_used %d\n"
		  "# HELP moecard_kv_blocks KV cache blocks in the pool (16 positions each).\n"
		  "# TYPE moecard_kv_blocks gauge\nmoecard_kv_blocks %d\n"
		  "# HELP moecard_kv_blocks_used KV cache blocks reserved by running sequences.\n"
		  "# TYPE moecard_kv_blocks_used gauge\nmoecard_kv_blocks_used %d\n"
		  "# HELP moecard_connections Open HTTP connections.\n"
		  "# TYPE moecard_connections gauge\nmoecard_connections %d\n",
		  m->queue_depth, m->running, m->kv_slots, m->running /* a slot per sequence */,
		  m->kv_blocks, m->kv_blocks_used, m->connections);
	sb_printf(
	    &b,
	    "# HELP moecard_prompt_tokens_total Prompt tokens prefilled.\n"
	    "# TYPE moecard_prompt_tokens_total counter\nmoecard_prompt_tokens_total %llu\n"
	    "# HELP moecard_generation_tokens_total Tokens generated.\n"
	    "# TYPE moecard_generation_tokens_total counter\n"
	    "moecard_generation_tokens_total %llu\n"
	    "# HELP moecard_requests_cancelled_total Sequences ended by a client that left or "
	    "by shutdown.\n# TYPE moecard_requests_cancelled_total counter\n"
	    "moecard_requests_cancelled_total %llu\n"
	    "# HELP moecard_engine_forwards_total Engine forward calls.\n"
	    "# TYPE moecard_engine_forwards_total counter\nmoecard_engine_forwards_total %llu\n"
	    "# HELP moecard_engine_busy_seconds_total Host wall time inside engine calls.\n"
	    "# TYPE moecard_engine_busy_seconds_total counter\n"
	    "moecard_engine_busy_seconds_total %.6f\n"
	    "# HELP moecard_engine_utilization Engine busy time over uptime.\n"
	    "# TYPE moecard_engine_utilization gauge\nmoecard_engine_utilization %.4f\n"
	    "# HELP moecard_uptime_seconds Seconds since the server started.\n"
	    "# TYPE moecard_uptime_seconds gauge\nmoecard_uptime_seconds %.3f\n",
	    (unsigned long long)m->prompt_tokens, (unsigned long long)m->gen_tokens,
	    (unsigned long long)m->cancelled, (unsigned long long)m->forwards, m->engine_busy_s,
	    up > 0 ? m->engine_busy_s / up : 0.0, up);
	if (m->card)
		sb_printf(
		    &b,
		    "# HELP moecard_card_busy_seconds_total Card time inside command lists "
		    "(modeled on the emulated card).\n"
		    "# TYPE moecard_card_busy_seconds_total counter\n"
		    "moecard_card_busy_seconds_total %.6f\n"
		    "# HELP moecard_card_clock_seconds The card's clock (modeled on the emulated "
		    "card, where it moves only while the card works).\n"
		    "# TYPE moecard_card_clock_seconds gauge\nmoecard_card_clock_seconds %.6f\n"
		    "# HELP moecard_card_commands_total Commands the firmware ran.\n"
		    "# TYPE moecard_card_commands_total counter\nmoecard_card_commands_total %llu\n"
		    "# HELP moecard_card_lists_total Command lists submitted.\n"
		    "# TYPE moecard_card_lists_total counter\nmoecard_card_lists_total %llu\n"
		    "# HELP moecard_card_dma_bytes_total Bytes the card's DMA fills moved.\n"
		    "# TYPE moecard_card_dma_bytes_total counter\n"
		    "moecard_card_dma_bytes_total %llu\n"
		    "# HELP moecard_card_link_bytes_total Bytes over the host link, both ways.\n"
		    "# TYPE moecard_card_link_bytes_total counter\n"
		    "moecard_card_link_bytes_total %llu\n",
		    m->card_busy_s, m->card_clock_s, (unsigned long long)m->card_cmds,
		    (unsigned long long)m->card_lists, (unsigned long long)m->card_dma_bytes,
		    (unsigned long long)m->card_link_bytes);
	sb_hist(&b, "moecard_time_to_first_token_seconds",
		"From the request's arrival to its first generated token.", &m->ttft);
	sb_hist(&b, "moecard_inter_token_latency_seconds", "Between consecutive generated tokens.",
		&m->itl);
	sb_hist(&b, "moecard_request_duration_seconds",
		"From arrival to the last token of a generation request.", &m->duration);
	pthread_mutex_unlock(&m->mu);
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}
