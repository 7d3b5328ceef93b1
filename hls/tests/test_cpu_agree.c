/*
 * test_cpu_agree.c - the host cpu backend (host/model/kernels.h kern_matmul_simple, f32 in-block
 * accumulation) against the card's fp8_gemm (exact in-block sums) on every FP8 projection of the
 * tiny and mid presets (docs/cli.md, gen), with dynamic FP8 activations (and ue8m0 scales on
 * some): they must agree to 1e-6 relative, measured as max|y_cpu - y_card| / max|y_card| per
 * matrix. Prints the worst agreement per preset.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "load/ckpt.h"
#include "model/kernels.h"
#include "e4m3.h"
#include "hls/fp8_gemm/fp8_gemm.h"

#define AGREE_TOL 1e-6

#define TEST_RNG_SEED 0xD1B54A32D192ED03ull
#include "test_rng.h"

struct proj {
	const char *name;
	int out, in;
};
static int passed, failed;

static double agree(const struct proj *p, int M, int ue8m0)
{
	int KB = (p->in + 127) / 128, NB = (p->out + 127) / 128;
	uint8_t *w = malloc((size_t)p->out * p->in);
	float *ws = malloc((size_t)NB * KB * 4), *x = malloc((size_t)M * p->in * 4);
	float *y1 = malloc((size_t)M * p->out * 4), *y2 = malloc((size_t)M * p->out * 4);
	for (size_t i = 0; i < (size_t)p->out * p->in; i++)
		w[i] = e4m3_encode(normal() * 100.0f);
	for (int i = 0; i < NB * KB; i++)
		ws[i] = (0.5f + unif()) * 2e-4f;
	for (size_t i = 0; i < (size_t)M * p->in; i++)
		x[i] = normal() * (i % 97 == 0 ? 20.0f : 1.0f);
	struct qmat W = {.rows = p->out,
			 .cols = p->in,
			 .fmt = QMAT_FP8,
			 .w = w,
			 .scale = ws,
			 .scale_cols = KB,
			 .name = p->name};
	int rc1 = kern_matmul_simple(&W, x, M, y1, 1, ue8m0);
	int rc2 = fp8_gemm(x, NULL, w, ws, NULL, NULL, y2, NULL, NULL, M, p->out, p->in,
			   FP8_GEMM_X_F32 | (ue8m0 ? FP8_GEMM_UE8M0 : 0), 0, 0);
	double dmax = 0, ymax = 0;
	for (size_t i = 0; i < (size_t)M * p->out; i++) {
		dmax = fmax(dmax, fabs((double)y1[i] - y2[i]));
		ymax = fmax(ymax, fabs((double)y2[i]));
	}
	double rel = rc1 || rc2 ? 1e9 : dmax / (ymax > 0 ? ymax : 1);
	if (rel <= AGREE_TOL) {
		passed++;
	} else {
		failed++;
		printf("FAIL %s [%d<-%d] M=%d ue8m0=%d: rc %d/%d, max diff %.3g of max |y| %.3g = "
		       "%.3g "
		       "relative (limit %.0e)\n",
		       p->name, p->out, p->in, M, ue8m0, rc1, rc2, dmax, ymax, rel, AGREE_TOL);
	}
	free(w);
	free(ws);
	free(x);
	free(y1);
	free(y2);
	return rel;
}

int main(void)
{
	static const struct proj tiny[] = {
	    {"q_a_proj", 192, 256},	      {"q_b_proj", 4 * 48, 192},
	    {"kv_a_proj_with_mqa", 144, 256}, {"kv_b_proj", 4 * 64, 128},
	    {"o_proj", 256, 4 * 32},	      {"dense gate/up", 512, 256},
	    {"dense down", 256, 512},	      {"expert gate/up", 128, 256},
	    {"expert down", 256, 128},
	};
	static const struct proj mid[] = {
	    {"q_a_proj", 384, 1024},	       {"q_b_proj", 16 * 96, 384},
	    {"kv_a_proj_with_mqa", 288, 1024}, {"kv_b_proj", 16 * 128, 256},
	    {"o_proj", 1024, 16 * 64},	       {"dense gate/up", 2816, 1024},
	    {"dense down", 1024, 2816},	       {"expert gate/up", 512, 1024},
	    {"expert down", 1024, 512},
	};
	const struct {
		const char *name;
		const struct proj *p;
		int n;
	} presets[] = {{"tiny", tiny, 9}, {"mid", mid, 9}};
	for (int s = 0; s < 2; s++) {
		double worst = 0;
		for (int i = 0; i < presets[s].n; i++)
			for (int M = 1; M <= 5; M += 4)
				worst = fmax(worst, agree(&presets[s].p[i], M, (i + M) % 3 == 0));
		printf("cpu backend vs fp8_gemm, %s preset (9 projections x M=1,5): worst relative "
		       "difference %.3g (limit %.0e)\n",
		       presets[s].name, worst, AGREE_TOL);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
