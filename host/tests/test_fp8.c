/*
 * test_fp8.c - the E4M3 codec (hls/include/e4m3.h) against the OCP definition: all 256 codes
 * decode to the right value; encoding rounds to nearest even at every midpoint between adjacent
 * codes, saturates to +-448 and maps NaN to NaN; the SIMD decode paths of every ISA this CPU runs
 * agree with the scalar codec; and dynamic activation quantization follows docs/numerics.md.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "e4m3.h"
#include "model/kernels.h"

/* Independent reference: value of a code from the OCP table definition. */
static double ocp_value(int c)
{
	int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
	double v;
	if (e == 15 && m == 7)
		return NAN;
	v = e == 0 ? ldexp(m / 8.0, -6) : ldexp(1 + m / 8.0, e - 7);
	return s ? -v : v;
}

static void test_decode_all_codes(void **st)
{
	(void)st;
	for (int c = 0; c < 256; c++) {
		double ref = ocp_value(c);
		float got = e4m3_decode((uint8_t)c);
		if (isnan(ref)) {
			assert_true(isnan(got));
			continue;
		}
		if ((double)got != ref)
			fail_msg("code 0x%02x: decoded %.9g, expected %.9g", c, got, ref);
		assert_int_equal((double)e4m3_decode_fixed((uint8_t)c), ref * 512);
	}
	assert_true(e4m3_decode(0x7E) == 448.0f && e4m3_decode(0xFE) == -448.0f);
	assert_true(e4m3_decode(0x01) == ldexpf(1, -9));
}

static void test_encode_roundtrip_and_ties(void **st)
{
	(void)st;
	int ties = 0;
	for (int c = 0; c < 256; c++) {
		if ((c & 0x7F) == 0x7F)
			continue;
		float v = e4m3_decode((uint8_t)c);
		uint8_t back = e4m3_encode(v);
		/* -0 encodes to 0x80, +0 to 0x00 */
		if (back != c)
			fail_msg("code 0x%02x (%g) re-encoded to 0x%02x", c, v, back);
	}
	/* midpoints between adjacent positive codes: ties go to the even code */
	for (int c = 0; c < 0x7E; c++) {
		double a = ocp_value(c), b = ocp_value(c + 1), mid = (a + b) / 2;
		int even = (c & 1) ? c + 1 : c;
		uint8_t got = e4m3_encode((float)mid);
		if ((double)(float)mid != mid)
			fail_msg("midpoint not representable in f32 at 0x%02x", c);
		if (got != even)
			fail_msg(
			    "tie %g between 0x%02x and 0x%02x encoded to 0x%02x, expected 0x%02x",
			    mid, c, c + 1, got, even);
		if (e4m3_encode((float)-mid) != (0x80 | even))
			fail_msg("negative tie at 0x%02x", c);
		/* just above / below the midpoint round to the nearer code */
		assert_int_equal(e4m3_encode(nextafterf((float)mid, INFINITY)), c + 1);
		assert_int_equal(e4m3_encode(nextafterf((float)mid, -INFINITY)), c);
		ties++;
	}
	assert_int_equal(ties, 126);
	/* saturation and specials */
	assert_int_equal(e4m3_encode(448.0f), 0x7E);
	assert_int_equal(e4m3_encode(464.0f), 0x7E);
	assert_int_equal(e4m3_encode(1e30f), 0x7E);
	assert_int_equal(e4m3_encode(INFINITY), 0x7E);
	assert_int_equal(e4m3_encode(-INFINITY), 0xFE);
	assert_int_equal(e4m3_encode(NAN) & 0x7F, 0x7F);
	assert_int_equal(e4m3_encode(ldexpf(1, -11)), 0x00); /* below half the smallest subnormal */
	assert_int_equal(e4m3_encode(ldexpf(3, -11)), 0x01); /* 0.75 quantum rounds up */
	printf("e4m3: 256 codes decoded, 254 re-encoded, %d ties to even, saturation ok\n", ties);
}

static void test_simd_matches_scalar(void **st)
{
	(void)st;
	const char *names[] = {"scalar", "avx2", "avx512"};
	const struct kern_isa *ref = kern_isa_by_name("scalar");
	uint8_t w[300];
	float x[4 * 300];
	srand(7);
	for (int i = 0; i < 300; i++)
		w[i] = (uint8_t)(i & 0x7F) == 0x7F ? 0 : (uint8_t)i; /* every finite code */
	for (int i = 0; i < 4 * 300; i++)
		x[i] = (float)rand() / RAND_MAX - 0.5f;
	int ran = 0;
	for (size_t n = 0; n < 3; n++) {
		const struct kern_isa *isa = kern_isa_by_name(names[n]);
		if (!isa) {
			printf("isa %s: not supported on this CPU, skipped\n", names[n]);
			continue;
		}
		ran++;
		/* the decode itself is exact: with scale 1 a row's dequantization is each code's value */
		for (int c = 0; c < 256; c++) {
			if ((c & 0x7F) == 0x7F)
				continue;
			uint8_t code = (uint8_t)c;
			float one = 1, d;
			isa->dec_fp8(&code, 1, &one, &d);
			if (d != e4m3_decode(code))
				fail_msg("%s decodes 0x%02x as %g", names[n], c, d);
		}
		/* a row's dequantization is the rounding of code * scale, bit for bit with the scalar
		 * path: scales that make subnormal results, ordinary ones, and ones past 2^8 */
		const float sws[][3] = {{1e-3f, 2.5f, 300.0f}, {1e-40f, 700.0f, 1.0f / 448}};
		for (int si = 0; si < 2; si++) {
			float d0[300], d1[300];
			static const int Ks[] = {1, 7, 8, 127, 128, 129, 200, 256, 300};
			for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
				int K = Ks[ki];
				ref->dec_fp8(w, K, sws[si], d0);
				isa->dec_fp8(w, K, sws[si], d1);
				if (memcmp(d0, d1, sizeof(float) * K))
					fail_msg("%s dec_fp8 K %d scales %d differ", names[n], K,
						 si);
			}
		}
		/* the prefill tile's dequantize-and-pack in one pass: the bits of dec_fp8 then
		 * pack_p16, for short row groups, partial blocks and scales past 2^8 */
		if (isa->decpack_fp8) {
			static uint8_t w8[8 * 300];
			static float p0[300 * KERN_PW], p1[300 * KERN_PW], rows[8 * 300];
			static const float sc[8][3] = {
			    {1e-3f, 2.5f, 300.0f},  {1e-40f, 0.5f, 1.0f}, {7.0f, 1e-3f, 1.0f / 448},
			    {255.0f, 256.0f, 2.0f}, {1.0f, 1.0f, 1.0f},	  {3e-5f, 3e-5f, 3e-5f},
			    {0.25f, 1e6f, 0.25f},   {1e-20f, 9.0f, 40.0f}};
			const float *swp[8];
			for (int i = 0; i < 8 * 300; i++)
				w8[i] = (uint8_t)((i * 7 + i / 300) & 0x7F) == 0x7F
					    ? 0
					    : (uint8_t)(i * 7 + i / 300);
			for (int r = 0; r < 8; r++)
				swp[r] = sc[r];
			static const int Ks[] = {8, 37, 128, 300}, nrs[] = {8, 5, 1};
			for (size_t ki = 0; ki < 4; ki++)
				for (size_t ni = 0; ni < 3; ni++)
					for (int i0 = 0; i0 < KERN_PW; i0 += 8) {
						int K = Ks[ki], nr = nrs[ni];
						memset(p0, 0, sizeof p0);
						memset(p1, 0, sizeof p1);
						for (int r = 0; r < nr; r++)
							ref->dec_fp8(w8 + r * K, K, sc[r],
								     rows + r * K);
						ref->pack_p16(rows, K, nr, i0, p0);
						isa->decpack_fp8(w8, K, nr, swp, i0, p1);
						if (memcmp(p0, p1, sizeof(float) * K * KERN_PW))
							fail_msg("%s decpack_fp8 K %d nr %d i0 %d "
								 "differs",
								 names[n], K, nr, i0);
					}
		}
		/* the absorbed attention's products on FP8 rows: the bits of dec_fp8 then axpy_f32 /
		 * dot_f32_rows, tails and scales past 2^8 included */
		if (isa->axpy_fp8s) {
			static const float asc[2][3] = {{1e-3f, 2.5f, 300.0f},
							{7.0f, 1e-40f, 0.5f}};
			float d0[300], d1[300], ya[300], yb[300], r0[2][KERN_MB], r1[2][KERN_MB];
			static const int Ks[] = {8, 37, 256, 299}; /* (row 1 starts at w + 1) */
			for (size_t ki = 0; ki < 4; ki++) {
				int K = Ks[ki];
				isa->dec_fp8(w, K, asc[0], d0);
				isa->dec_fp8(w + 1, K, asc[1], d1);
				memcpy(ya, x, sizeof ya);
				memcpy(yb, x, sizeof yb);
				isa->axpy_f32(ya, -1.75f, d0, K);
				isa->axpy_fp8s(yb, -1.75f, w, asc[0], K);
				if (memcmp(ya, yb, sizeof(float) * K))
					fail_msg("%s axpy_fp8s K %d differs", names[n], K);
				if (isa->axpy4_fp8s) { /* four rows: w, w + 1 and those again */
					static const float a4[4] = {-1.75f, 3.0f, 0.125f, -9.5f};
					const uint8_t *w4[4] = {w, w + 1, w, w + 1};
					const float *s4[4] = {asc[0], asc[1], asc[1], asc[0]};
					memcpy(ya, x, sizeof ya);
					memcpy(yb, x, sizeof yb);
					for (int i = 0; i < 4; i++)
						isa->axpy_fp8s(ya, a4[i], w4[i], s4[i], K);
					isa->axpy4_fp8s(yb, a4, w4, s4, K);
					if (memcmp(ya, yb, sizeof(float) * K))
						fail_msg("%s axpy4_fp8s K %d differs", names[n], K);
				}
				const float *fr[2] = {d0, d1};
				const uint8_t *cr[2] = {w, w + 1};
				const float *sr[2] = {asc[0], asc[1]};
				for (int P = 1; P <= 2; P++)
					for (int M = 1; M <= KERN_MB; M++) {
						isa->dot_f32_rows(fr, P, x, 300, M, K, r0[0],
								  KERN_MB);
						isa->dot_fp8s_rows(cr, sr, P, x, 300, M, K, r1[0],
								   KERN_MB);
						for (int p = 0; p < P; p++)
							if (memcmp(r0[p], r1[p], sizeof(float) * M))
								fail_msg("%s dot_fp8s_rows K %d P "
									 "%d M %d differs",
									 names[n], K, P, M);
					}
			}
		}
		uint16_t wb[300];
		for (int i = 0; i < 300; i++)
			wb[i] = f32_to_bf16(x[i] * 3);
		for (int len = 1; len <= 300; len += 37) {
			float a[KERN_MB], b[KERN_MB];
			ref->dot_bf16(wb, x, 300, 3, len, a);
			isa->dot_bf16(wb, x, 300, 3, len, b);
			for (int m = 0; m < 3; m++)
				if (fabsf(a[m] - b[m]) > 1e-5f * (1 + fabsf(a[m])))
					fail_msg("%s dot_bf16 len %d: %g vs %g", names[n], len,
						 b[m], a[m]);
		}
	}
	printf("simd: %d ISA paths agree with scalar (chosen: %s)\n", ran, kern_isa_get()->name);
}

/* Bit-exact comparison: tells NaN payloads and -0.0 from +0.0 apart, unlike ==. */
static int bits_differ(float a, float b)
{
	uint32_t ua, ub;
	memcpy(&ua, &a, sizeof ua);
	memcpy(&ub, &b, sizeof ub);
	return ua != ub;
}

/* The vectorized activation round trip is bit-identical to decode(encode(x/s))*s, including
 * every tie, subnormals, zeros of both signs and saturation. */
static void test_roundtrip_all_isas(void **st)
{
	(void)st;
	const char *names[] = {"scalar", "avx2", "avx512"};
	enum { N = 4096 };
	static float x[N], r[N];
	int k = 0;
	for (int c = 0; c < 0x7E && k < N - 8; c++) { /* codes, midpoints, and their neighbours */
		float a = e4m3_decode((uint8_t)c), b = e4m3_decode((uint8_t)(c + 1)),
		      mid = (a + b) / 2;
		x[k++] = mid;
		x[k++] = -mid;
		x[k++] = nextafterf(mid, INFINITY);
		x[k++] = nextafterf(mid, -INFINITY);
		x[k++] = a;
	}
	x[k++] = 448.0f;
	x[k++] = 460.0f;
	x[k++] = -470.0f;
	x[k++] = 0.0f;
	x[k++] = -0.0f;
	x[k++] = 1e-30f;
	uint32_t rs = 1;
	while (k < N) {
		rs = rs * 1664525u + 1013904223u;
		x[k++] = ldexpf((float)(int32_t)rs / 2147483648.0f, (int)(rs >> 27) - 16);
	}
	for (size_t n = 0; n < 3; n++) {
		const struct kern_isa *isa = kern_isa_by_name(names[n]);
		if (!isa)
			continue;
		for (int off = 0; off < N; off += 128) {
			int len = (off / 128) % 5 == 4 ? 77 : 128; /* partial blocks too */
			isa->roundtrip_fp8(x + off, len, 1.0f, r + off);
			for (int i = off; i < off + len; i++) {
				float want = e4m3_decode(e4m3_encode(x[i]));
				if (bits_differ(want, r[i]))
					fail_msg("%s roundtrip(%a) = %a, expected %a", names[n],
						 x[i], r[i], want);
			}
		}
		/* with a scale: y = e4m3(x/s)*s */
		isa->roundtrip_fp8(x, 128, 0.37f, r);
		for (int i = 0; i < 128; i++) {
			float want = e4m3_decode(e4m3_encode(x[i] / 0.37f)) * 0.37f;
			if (bits_differ(want, r[i]))
				fail_msg("%s scaled roundtrip at %d", names[n], i);
		}
	}
}

static void test_act_quant(void **st)
{
	(void)st;
	float x[300], xq[300], sa[3];
	for (int i = 0; i < 300; i++)
		x[i] = sinf(i * 0.37f) * (i < 128 ? 3.0f : i < 256 ? 1e-6f : 100.0f);
	x[5] = -7.5f; /* amax of block 0 */
	kern_act_quant(x, 300, 0, xq, sa);
	assert_true(sa[0] == 7.5f / 448.0f);
	assert_true(sa[1] == 1e-4f / 448.0f); /* amax below 1e-4 is clamped */
	for (int i = 0; i < 300; i++) {
		float s = sa[i / 128];
		uint8_t c = e4m3_encode(x[i] / s);
		assert_true(xq[i] == e4m3_decode(c));
	}
	assert_true(xq[5] == -448.0f);
	/* the partial last group (44 channels) uses its own amax */
	float amax = 0;
	for (int i = 256; i < 300; i++)
		amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
	assert_true(sa[2] == amax / 448.0f);
	/* ue8m0: scales are the next power of two up */
	kern_act_quant(x, 300, 1, xq, sa);
	for (int b = 0; b < 3; b++) {
		int e;
		float fr = frexpf(sa[b], &e);
		assert_true(fr == 0.5f);
	}
	assert_true(sa[0] == 1.0f / 32.0f); /* 7.5/448 = 0.01674 -> 2^-5 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_all_codes),
	    cmocka_unit_test(test_encode_roundtrip_and_ties),
	    cmocka_unit_test(test_simd_matches_scalar),
	    cmocka_unit_test(test_act_quant),
	    cmocka_unit_test(test_roundtrip_all_isas),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
