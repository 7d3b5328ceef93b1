/*
 * serve_metrics.h - the counters of `moecard serve`, rendered as Prometheus text (GET /metrics):
 * requests by endpoint and status, queue depth, running sequences, KV slots in use, prompt and
 * generated tokens, the engine's busy time, and histograms of time to first token, inter-token
 * latency and request duration. Thread-safe (one mutex).
 */
#ifndef MOECARD_SERVE_METRICS_H
#define MOECARD_SERVE_METRICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define SERVE_HIST_BUCKETS 14

struct serve_hist {
	uint64_t n[SERVE_HIST_BUCKETS + 1]; /* per bucket, then +Inf */
	uint64_t count;
	double sum;
};

enum {
	SERVE_EP_CHAT,
	SERVE_EP_COMPLETIONS,
	SERVE_EP_MODELS,
	SERVE_EP_HEALTH,
	SERVE_EP_METRICS,
	SERVE_EP_OTHER,
	SERVE_EP_N
};
#define SERVE_N_STATUS 10 /* 200 400 401 404 405 413 429 500 503 other */

struct serve_metrics {
	pthread_mutex_t mu;
	uint64_t requests[SERVE_EP_N][SERVE_N_STATUS];
	uint64_t prompt_tokens, gen_tokens, cancelled, forwards;
	double engine_busy_s;
	int queue_depth, running, kv_slots, connections; /* running: also the slots in use */
	int kv_blocks, kv_blocks_used;			 /* the paged KV pool (cpu) */
	struct serve_hist ttft, itl, duration;
	/* a card backend (emu: modeled card time; xrt: the card's clock), from the scheduler */
	int card;
	double card_busy_s, card_clock_s;
	uint64_t card_cmds, card_lists, card_dma_bytes, card_link_bytes;
	double t_start; /* CLOCK_MONOTONIC seconds at init */
};

void serve_metrics_init(struct serve_metrics *m, int kv_slots);
void serve_metrics_destroy(struct serve_metrics *m);
/* Counts one answered request (status: the HTTP status sent). */
void serve_metrics_request(struct serve_metrics *m, int endpoint, int status);
/* Adds an observation in seconds (under m->mu: the caller holds it). */
void serve_hist_observe(struct serve_hist *h, double s);
/* The Prometheus text exposition (malloc'd, NUL-terminated) or NULL. */
char *serve_metrics_render(struct serve_metrics *m, const char *backend, const char *model);

#endif
