/*
 * test_safetensors.c - the safetensors reader and writer (host/load/safetensors.c) on crafted
 * buffers: one case per header rule (each must fail with -EINVAL and a one-line message naming
 * the file and the tensor or field), sorting and st_find, the writer round trip, and sharded
 * directories (missing shard, tensor listed in the index but not in its shard).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "load/safetensors.h"

static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/moecard_test_st.XXXXXX", t && *t ? t : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A file image: 8-byte length, header, data_len bytes of pattern data. */
static uint8_t *image(const char *hdr, size_t data_len, size_t *len)
{
	size_t h = strlen(hdr);
	uint8_t *b = malloc(8 + h + data_len + 1);
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)h >> (8 * i));
	memcpy(b + 8, hdr, h);
	for (size_t i = 0; i < data_len; i++)
		b[8 + h + i] = (uint8_t)(i * 7 + 1);
	*len = 8 + h + data_len;
	return b;
}

static int parse(const char *hdr, size_t data_len, struct st_model *m, char *err, size_t n)
{
	size_t len;
	uint8_t *b = image(hdr, data_len, &len);
	memset(m, 0, sizeof *m);
	err[0] = 0;
	int rc = st_parse_header(m, b, len, 0, "x.safetensors", err, n);
	free(b);
	return rc;
}

static void test_good(void **state)
{
	(void)state;
	struct st_model m;
	char err[256];
	size_t len;
	const char *hdr =
	    "{\"__metadata__\":{\"format\":\"pt\"},"
	    "\"z.w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
	    "\"a.w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4,4],\"data_offsets\":[24,40]},"
	    "\"m.b\":{\"dtype\":\"BF16\",\"shape\":[5],\"data_offsets\":[40,50]},"
	    "\"s\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[50,52]},"
	    "\"e\":{\"dtype\":\"I64\",\"shape\":[0,3],\"data_offsets\":[52,52]},"
	    "\"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[52,56]},"
	    "\"u\":{\"dtype\":\"U8\",\"shape\":[1,1,1,2],\"data_offsets\":[56,58]}}";
	uint8_t *b = image(hdr, 58, &len);
	memset(&m, 0, sizeof m);
	assert_int_equal(st_parse_header(&m, b, len, 0, "x.safetensors", err, sizeof err), 0);
	assert_int_equal(m.n_tensors, 7);
	for (int i = 1; i < m.n_tensors; i++)
		assert_true(strcmp(m.tensors[i - 1].name, m.tensors[i].name) < 0);
	const struct st_tensor *t = st_find(&m, "a.w");
	assert_non_null(t);
	assert_int_equal(t->dtype, ST_F8_E4M3);
	assert_int_equal(t->ndim, 2);
	assert_int_equal(t->nbytes, 16);
	assert_ptr_equal(t->data, b + 8 + strlen(hdr) + 24);
	t = st_find(&m, "s");
	assert_int_equal(t->ndim, 0);
	assert_int_equal(t->nbytes, 2);
	assert_int_equal(st_find(&m, "u")->ndim, 4);
	assert_null(st_find(&m, "b"));
	assert_null(st_find(&m, "zz"));
	assert_int_equal(st_dtype_size(ST_BF16), 2);
	assert_string_equal(st_dtype_name(ST_F8_E4M3), "F8_E4M3");
	/* A second file with a name already present: duplicate, names both files. */
	m.files = calloc(1, sizeof *m.files);
	m.files[0].path = strdup("first.safetensors");
	m.n_files = 1;
	size_t l2;
	uint8_t *b2 =
	    image("{\"m.b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2, &l2);
	assert_int_equal(st_parse_header(&m, b2, l2, 1, "second.safetensors", err, sizeof err),
			 -EINVAL);
	assert_string_equal(err, "second.safetensors: m.b: duplicate, also in first.safetensors");
	assert_int_equal(m.n_tensors, 7);
	st_close(&m);
	assert_int_equal(m.n_tensors, 0);
	st_close(&m); /* safe twice */
	free(b);
	free(b2);
}

struct bad_case {
	const char *hdr;
	size_t data_len;
	const char *want; /* prefix of the message after "x.safetensors: " */
};

static const struct bad_case bad_cases[] = {
    {"[1,2]", 0, "header: not a JSON object"},
    {"{\"a\":", 0, "header: invalid JSON"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     8, "header: invalid JSON"},
    {"{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "a: dtype \"F64\""},
    {"{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "a: dtype missing"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "a: shape[0] = -1"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "a: shape[0] is not"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,12]}}", 12, "a: shape missing"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
     "a: shape has 5"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
     "a: data_offsets [8, 0] ends"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
     "a: data_offsets [0, 8] beyond"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,-8]}}", 8,
     "a: data_offsets is not"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "a: data_offsets is not"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
     "a: data_offsets span 8 bytes"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     12, "b: data_offsets [4, 12] overlap a"},
    {"{\"a\":[1]}", 0, "a: expected an object"},
    {"{\"__metadata__\":5}", 0, "__metadata__: not an object"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,1]}}", 1,
     "a: shape is too large"},
};

static void test_bad_headers(void **state)
{
	(void)state;
	int fails = 0;
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		struct st_model m;
		char err[256], want[128];
		int rc = parse(bad_cases[i].hdr, bad_cases[i].data_len, &m, err, sizeof err);
		snprintf(want, sizeof want, "x.safetensors: %s", bad_cases[i].want);
		if (rc != -EINVAL || strncmp(err, want, strlen(want)) || strchr(err, '\n') ||
		    m.n_tensors != 0) {
			printf("case %zu: rc %d, %d tensors kept, err \"%s\", expected \"%s...\"\n",
			       i, rc, m.n_tensors, err, want);
			fails++;
		}
		st_close(&m);
	}
	printf("checked %zu bad headers, %d wrong\n", sizeof bad_cases / sizeof bad_cases[0],
	       fails);
	assert_int_equal(fails, 0);
}

static void test_bad_lengths(void **state)
{
	(void)state;
	struct st_model m;
	char err[256];
	uint8_t b[16] = {0};
	memset(&m, 0, sizeof m);
	assert_int_equal(st_parse_header(&m, b, 5, 0, "x.safetensors", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "x.safetensors: header: file is 5 bytes"));
	b[0] = 9; /* header length 9 > 16 - 8 */
	assert_int_equal(st_parse_header(&m, b, 16, 0, "x.safetensors", err, sizeof err), -EINVAL);
	assert_non_null(
	    strstr(err, "x.safetensors: header: length 9 is beyond the end of the file"));
	memset(b, 0xFF, 8); /* 2^64-1 */
	assert_int_equal(st_parse_header(&m, b, 16, 0, "x.safetensors", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "beyond the end"));
	st_close(&m);
}

static void write_file(const char *path, const void *d, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(d, 1, n, f), n);
	fclose(f);
}

static void test_writer_and_dirs(void **state)
{
	(void)state;
	struct st_writer w = {0};
	struct st_model m;
	char dir[512], path[600], err[512];
	float f[6] = {1, 2, 3, 4, 5, 6};
	uint8_t q[5] = {1, 2, 3, 4, 5};
	uint16_t h[3] = {0x3F80, 0x4000, 0x4040};
	int64_t s23[2] = {2, 3}, s5[1] = {5}, s3[1] = {3};

	snprintf(dir, sizeof dir, "%s/w", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	/* Two unsharded files, found by *.safetensors when there is no index. */
	assert_int_equal(st_writer_add(&w, "q", ST_F8_E4M3, 1, s5, q), 0);
	assert_int_equal(st_writer_add(&w, "f", ST_F32, 2, s23, f), 0);
	snprintf(path, sizeof path, "%s/a.safetensors", dir);
	assert_int_equal(st_writer_finish(&w, path, err, sizeof err), 0);
	st_writer_free(&w);
	assert_int_equal(st_writer_add(&w, "h", ST_BF16, 1, s3, h), 0);
	assert_int_equal(st_writer_add(&w, "bad", ST_BF16, 1, (int64_t[]){-1}, h), -EINVAL);
	snprintf(path, sizeof path, "%s/b.safetensors", dir);
	assert_int_equal(st_writer_finish(&w, path, err, sizeof err), 0);
	st_writer_free(&w);
	assert_int_equal(st_open_dir(dir, &m, err, sizeof err), 0);
	assert_int_equal(m.n_files, 2);
	assert_int_equal(m.n_tensors, 3);
	const struct st_tensor *t = st_find(&m, "f");
	assert_non_null(t);
	assert_int_equal(t->shape[1], 3);
	assert_memory_equal(t->data, f, sizeof f);
	assert_int_equal((uintptr_t)t->data % 4, 0);
	assert_memory_equal(st_find(&m, "q")->data, q, 5);
	assert_memory_equal(st_find(&m, "h")->data, h, 6);
	assert_int_equal(st_find(&m, "h")->file, 1);
	st_close(&m);

	/* Index: a tensor listed but absent from its shard. */
	snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
	const char *idx1 = "{\"weight_map\":{\"q\":\"a.safetensors\",\"f\":\"a.safetensors\","
			   "\"h\":\"a.safetensors\"}}";
	write_file(path, idx1, strlen(idx1));
	assert_int_equal(st_open_dir(dir, &m, err, sizeof err), -EINVAL);
	printf("listed-but-absent: %s\n", err);
	assert_non_null(strstr(err, "/a.safetensors: h: listed in model.safetensors.index.json"));
	assert_int_equal(m.n_files, 0);
	/* Index: a missing shard, named with a tensor mapped to it. */
	const char *idx2 = "{\"weight_map\":{\"q\":\"a.safetensors\",\"h\":\"c.safetensors\"}}";
	write_file(path, idx2, strlen(idx2));
	assert_int_equal(st_open_dir(dir, &m, err, sizeof err), -ENOENT);
	printf("missing shard: %s\n", err);
	assert_non_null(strstr(err, "/c.safetensors: missing shard"));
	assert_non_null(strstr(err, " h "));
	/* Index: good (b's tensors not listed are still readable). */
	const char *idx3 =
	    "{\"metadata\":{},\"weight_map\":{\"q\":\"a.safetensors\",\"h\":\"b.safetensors\"}}";
	write_file(path, idx3, strlen(idx3));
	assert_int_equal(st_open_dir(dir, &m, err, sizeof err), 0);
	assert_int_equal(m.n_files, 2);
	st_close(&m);
	const char *idx4 = "{\"weight_map\":{\"q\":\"../a.safetensors\"}}";
	write_file(path, idx4, strlen(idx4));
	assert_int_equal(st_open_dir(dir, &m, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "weight_map.q: not a plain shard file name"));
	write_file(path, "{\"weight_map\":", 14);
	assert_int_equal(st_open_dir(dir, &m, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "model.safetensors.index.json: json:"));
	/* Empty directory. */
	snprintf(dir, sizeof dir, "%s/empty", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(st_open_dir(dir, &m, err, sizeof err), -ENOENT);
	assert_non_null(strstr(err, "no model.safetensors.index.json"));
	/* A zero-byte shard. */
	snprintf(path, sizeof path, "%s/z.safetensors", dir);
	write_file(path, "", 0);
	assert_int_equal(st_open_dir(dir, &m, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "z.safetensors: header: file is 0 bytes"));
}

/* The Anonymous: kB of the mapping that holds p (/proc/self/smaps), or -1. */
static long vma_anon_kb(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0;
	long kb = -1;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, ' ') &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)p >= a && (uintptr_t)p < b;
			continue;
		}
		if (in && sscanf(line, "Anonymous: %ld kB", &kb) == 1)
			break;
	}
	if (f)
		fclose(f);
	return kb;
}

/* st_populate with a skip prefix: the 2 MiB ranges holding only skipped tensors keep their file
 * mapping (no anonymous copy), the rest is copied, and every tensor reads the same. */
static void test_populate_skip(void **state)
{
	(void)state;
	struct st_writer w = {0};
	struct st_model m;
	char dir[512], path[600], err[512];
	enum { MB = 1 << 20 };
	static uint8_t a[3 * MB], b[7 * MB], c[3 * MB];
	for (size_t i = 0; i < sizeof b; i++) {
		b[i] = (uint8_t)(i * 7 + 1);
		if (i < sizeof a) {
			a[i] = (uint8_t)(i * 3 + 5);
			c[i] = (uint8_t)(i * 5 + 3);
		}
	}
	snprintf(dir, sizeof dir, "%s/pop", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(st_writer_add(&w, "a", ST_U8, 1, (int64_t[]){sizeof a}, a), 0);
	assert_int_equal(st_writer_add(&w, "mtp.b", ST_U8, 1, (int64_t[]){sizeof b}, b), 0);
	assert_int_equal(st_writer_add(&w, "c", ST_U8, 1, (int64_t[]){sizeof c}, c), 0);
	snprintf(path, sizeof path, "%s/m.safetensors", dir);
	assert_int_equal(st_writer_finish(&w, path, err, sizeof err), 0);
	st_writer_free(&w);
	assert_int_equal(st_open_dir(dir, &m, err, sizeof err), 0);
	const struct st_tensor *tb = st_find(&m, "mtp.b");
	assert_non_null(tb);
	size_t made = st_populate(&m, (size_t)1 << 40, (const char *const[]){"mtp.", NULL}, 1, 2);
	/* b spans at least two whole 2 MiB units that hold nothing else */
	assert_true(made > 0 && made <= m.files[0].size - 4 * MB);
	const char *mid = (const char *)tb->data + 3 * MB;
	assert_int_equal(vma_anon_kb(mid), 0);
	long ka = vma_anon_kb(st_find(&m, "a")->data);
	printf("populate: %zu of %zu bytes copied; anon kB at a %ld, inside mtp.b %ld\n", made,
	       m.files[0].size, ka, vma_anon_kb(mid));
	assert_memory_equal(st_find(&m, "a")->data, a, sizeof a);
	assert_memory_equal(tb->data, b, sizeof b);
	assert_memory_equal(st_find(&m, "c")->data, c, sizeof c);
	/* the skipped tensor's whole units released: they read the same again (from the file) */
	st_release(tb->data, tb->nbytes);
	assert_memory_equal(tb->data, b, sizeof b);
	assert_memory_equal(st_find(&m, "a")->data, a, sizeof a);
	assert_memory_equal(st_find(&m, "c")->data, c, sizeof c);
	st_close(&m);
	/* without a skip the whole file is made resident */
	assert_int_equal(st_open_dir(dir, &m, err, sizeof err), 0);
	assert_int_equal(st_populate(&m, (size_t)1 << 40, NULL, 1, 2), m.files[0].size);
	assert_memory_equal(st_find(&m, "mtp.b")->data, b, sizeof b);
	st_close(&m);
	/* without huge: faulted in, no anonymous copy */
	assert_int_equal(st_open_dir(dir, &m, err, sizeof err), 0);
	assert_int_equal(st_populate(&m, (size_t)1 << 40, NULL, 0, 2), m.files[0].size);
	assert_int_equal(vma_anon_kb(st_find(&m, "a")->data), 0);
	assert_memory_equal(st_find(&m, "a")->data, a, sizeof a);
	assert_memory_equal(st_find(&m, "mtp.b")->data, b, sizeof b);
	st_close(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),	  cmocka_unit_test(test_bad_headers),
	    cmocka_unit_test(test_bad_lengths),	  cmocka_unit_test(test_writer_and_dirs),
	    cmocka_unit_test(test_populate_skip),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
