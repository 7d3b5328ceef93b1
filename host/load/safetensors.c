/*
 * safetensors.c - mmap reader and atomic writer for Hugging Face safetensors files
 * (safetensors.h). Second stage of the host data flow: config.json -> [these tensors, pointing
 * into read-only mappings] -> ckpt_bind -> model. Nothing is copied or converted here.
 *
 * The header is untrusted input: every length, offset, dtype and shape is checked before a
 * tensor is exposed, and every error is one line "<file>: <tensor or field>: <what>".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "util/errmsg.h"
#include "load/safetensors.h"

#define ST_HEADER_MAX (100u << 20) /* the reference implementation's header limit */
#define ST_INDEX_NAME "model.safetensors.index.json"

static const struct {
	const char *name;
	size_t size;
} st_dtypes[ST_DTYPE_COUNT] = {
    [ST_F32] = {"F32", 4},	   [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
    [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4},
    [ST_U8] = {"U8", 1},
};

size_t st_dtype_size(enum st_dtype t)
{
	return (unsigned)t < ST_DTYPE_COUNT ? st_dtypes[t].size : 0;
}

const char *st_dtype_name(enum st_dtype t)
{
	return (unsigned)t < ST_DTYPE_COUNT ? st_dtypes[t].name : "?";
}

#define st_fail errmsg_fail

static void *st_map_aligned(int fd, size_t size);

static int st_tensor_cmp(const void *a, const void *b)
{
	return strcmp(((const struct st_tensor *)a)->name, ((const struct st_tensor *)b)->name);
}

/* Byte ranges of one file's tensors, for the overlap check. */
struct st_range {
	uint64_t begin, end; /* data_offsets */
	int idx;	     /* index into the file's new tensors */
};

static int st_range_cmp(const void *a, const void *b)
{
	const struct st_range *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

/* Reads a non-negative JSON integer (at most 2^62). */
static int st_json_u64(json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > (1ull << 62))
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* Parses one tensor entry of the header into *t (data and file filled by the caller). */
static int st_parse_entry(const char *fname, const char *name, json_t *e, uint64_t data_len,
			  struct st_tensor *t, uint64_t *begin, uint64_t *end, char *err,
			  size_t errlen)
{
	json_t *dt, *sh, *off;
	size_t i;
	uint64_t numel = 1, b, en;

	memset(t, 0, sizeof *t);
	if (strlen(name) >= ST_NAME_MAX)
		return st_fail(err, errlen, -EINVAL,
			       "%s: %.64s...: tensor name longer than %d bytes", fname, name,
			       ST_NAME_MAX - 1);
	if (!*name)
		return st_fail(err, errlen, -EINVAL, "%s: header: empty tensor name", fname);
	memcpy(t->name, name, strlen(name) + 1);
	if (!json_is_object(e))
		return st_fail(err, errlen, -EINVAL,
			       "%s: %s: expected an object with dtype, shape and data_offsets",
			       fname, name);
	dt = json_object_get(e, "dtype");
	if (!json_is_string(dt))
		return st_fail(err, errlen, -EINVAL, "%s: %s: dtype missing or not a string", fname,
			       name);
	for (i = 0; i < ST_DTYPE_COUNT; i++)
		if (!strcmp(json_string_value(dt), st_dtypes[i].name))
			break;
	if (i == ST_DTYPE_COUNT)
		return st_fail(err, errlen, -EINVAL, "%s: %s: dtype \"%.16s\" is not supported",
			       fname, name, json_string_value(dt));
	t->dtype = (enum st_dtype)i;
	sh = json_object_get(e, "shape");
	if (!json_is_array(sh))
		return st_fail(err, errlen, -EINVAL, "%s: %s: shape missing or not an array", fname,
			       name);
	if (json_array_size(sh) > ST_MAX_DIMS)
		return st_fail(err, errlen, -EINVAL, "%s: %s: shape has %zu dims, at most %d",
			       fname, name, json_array_size(sh), ST_MAX_DIMS);
	t->ndim = (int)json_array_size(sh);
	for (i = 0; i < json_array_size(sh); i++) {
		json_t *d = json_array_get(sh, i);
		if (!json_is_integer(d))
			return st_fail(err, errlen, -EINVAL, "%s: %s: shape[%zu] is not an integer",
				       fname, name, i);
		json_int_t v = json_integer_value(d);
		if (v < 0)
			return st_fail(err, errlen, -EINVAL,
				       "%s: %s: shape[%zu] = %lld is negative", fname, name, i,
				       (long long)v);
		if (v > (1ll << 40) || __builtin_mul_overflow(numel, (uint64_t)v, &numel) ||
		    numel > (1ull << 56))
			return st_fail(err, errlen, -EINVAL, "%s: %s: shape is too large", fname,
				       name);
		t->shape[i] = v;
	}
	off = json_object_get(e, "data_offsets");
	if (!json_is_array(off) || json_array_size(off) != 2 ||
	    st_json_u64(json_array_get(off, 0), &b) || st_json_u64(json_array_get(off, 1), &en))
		return st_fail(err, errlen, -EINVAL,
			       "%s: %s: data_offsets is not an array of two non-negative integers",
			       fname, name);
	if (en < b)
		return st_fail(err, errlen, -EINVAL,
			       "%s: %s: data_offsets [%llu, %llu] ends before it "
			       "begins",
			       fname, name, (unsigned long long)b, (unsigned long long)en);
	if (en > data_len)
		return st_fail(
		    err, errlen, -EINVAL,
		    "%s: %s: data_offsets [%llu, %llu] beyond the data section (%llu bytes; "
		    "file truncated?)",
		    fname, name, (unsigned long long)b, (unsigned long long)en,
		    (unsigned long long)data_len);
	if (numel * st_dtypes[t->dtype].size != en - b)
		return st_fail(err, errlen, -EINVAL,
			       "%s: %s: data_offsets span %llu bytes, but %s shape needs %llu",
			       fname, name, (unsigned long long)(en - b), st_dtypes[t->dtype].name,
			       (unsigned long long)(numel * st_dtypes[t->dtype].size));
	t->nbytes = (size_t)(en - b);
	*begin = b;
	*end = en;
	return 0;
}

int st_parse_header(struct st_model *m, const uint8_t *buf, size_t len, int file, const char *fname,
		    char *err, size_t errlen)
{
	uint64_t hlen = 0, data_len;
	json_error_t je;
	json_t *root, *e;
	const char *key;
	struct st_tensor *nt = NULL;
	struct st_range *rg = NULL;
	size_t n = 0, cap;
	int rc = 0;

	if (!fname)
		fname = "(buffer)";
	if (len < 8)
		return st_fail(
		    err, errlen, -EINVAL,
		    "%s: header: file is %zu bytes, shorter than the 8-byte header length", fname,
		    len);
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | buf[i];
	if (hlen > len - 8)
		return st_fail(err, errlen, -EINVAL,
			       "%s: header: length %llu is beyond the end of the file (%zu bytes)",
			       fname, (unsigned long long)hlen, len);
	if (hlen > ST_HEADER_MAX)
		return st_fail(err, errlen, -EINVAL, "%s: header: length %llu is larger than %u",
			       fname, (unsigned long long)hlen, ST_HEADER_MAX);
	data_len = len - 8 - hlen;
	root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return st_fail(err, errlen, -EINVAL, "%s: header: invalid JSON at byte %d: %s",
			       fname, je.position, je.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return st_fail(err, errlen, -EINVAL, "%s: header: not a JSON object", fname);
	}
	cap = json_object_size(root);
	nt = calloc(cap ? cap : 1, sizeof *nt);
	rg = calloc(cap ? cap : 1, sizeof *rg);
	if (!nt || !rg) {
		rc = st_fail(err, errlen, -ENOMEM, "%s: header: out of memory", fname);
		goto out;
	}
	json_object_foreach(root, key, e)
	{
		if (!strcmp(key, "__metadata__")) {
			if (!json_is_object(e)) {
				rc = st_fail(err, errlen, -EINVAL,
					     "%s: __metadata__: not an object", fname);
				goto out;
			}
			continue;
		}
		rc = st_parse_entry(fname, key, e, data_len, &nt[n], &rg[n].begin, &rg[n].end, err,
				    errlen);
		if (rc)
			goto out;
		nt[n].data = buf + 8 + hlen + rg[n].begin;
		nt[n].file = file;
		rg[n].idx = (int)n;
		n++;
	}
	/* Non-empty tensors must not share bytes. */
	qsort(rg, n, sizeof *rg, st_range_cmp);
	{
		const struct st_range *prev = NULL;
		for (size_t i = 0; i < n; i++) {
			if (rg[i].begin == rg[i].end)
				continue;
			if (prev && rg[i].begin < prev->end) {
				rc = st_fail(
				    err, errlen, -EINVAL,
				    "%s: %s: data_offsets [%llu, %llu] overlap %s [%llu, %llu]",
				    fname, nt[rg[i].idx].name, (unsigned long long)rg[i].begin,
				    (unsigned long long)rg[i].end, nt[prev->idx].name,
				    (unsigned long long)prev->begin, (unsigned long long)prev->end);
				goto out;
			}
			prev = &rg[i];
		}
	}
	/* Names must be unique across the files of a model. */
	for (size_t i = 0; i < n; i++) {
		const struct st_tensor *o = st_find(m, nt[i].name);
		if (o) {
			rc = st_fail(err, errlen, -EINVAL, "%s: %s: duplicate, also in %s", fname,
				     nt[i].name,
				     o->file >= 0 && o->file < m->n_files && m->files[o->file].path
					 ? m->files[o->file].path
					 : "an earlier file");
			goto out;
		}
	}
	if (m->n_tensors + n > (size_t)m->cap_tensors) {
		size_t nc = (size_t)m->n_tensors + n + 256;
		struct st_tensor *t = realloc(m->tensors, nc * sizeof *t);
		if (!t) {
			rc = st_fail(err, errlen, -ENOMEM, "%s: header: out of memory", fname);
			goto out;
		}
		m->tensors = t;
		m->cap_tensors = (int)nc;
	}
	if (n)
		memcpy(m->tensors + m->n_tensors, nt, n * sizeof *nt);
	m->n_tensors += (int)n;
	if (m->n_tensors > 1)
		qsort(m->tensors, (size_t)m->n_tensors, sizeof *m->tensors, st_tensor_cmp);
out:
	free(nt);
	free(rg);
	json_decref(root);
	return rc;
}

const struct st_tensor *st_find(const struct st_model *m, const char *name)
{
	int lo = 0, hi = m->n_tensors - 1;
	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2, c = strcmp(m->tensors[mid].name, name);
		if (!c)
			return &m->tensors[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

void st_close(struct st_model *m)
{
	for (int i = 0; i < m->n_files; i++) {
		if (m->files[i].map)
			munmap(m->files[i].map, m->files[i].size);
		free(m->files[i].path);
	}
	free(m->files);
	free(m->tensors);
	free(m->index_path);
	free(m->dir);
	memset(m, 0, sizeof *m);
}

/* Maps path read-only and appends it to m->files; *idx is its index. */
static int st_map_file(struct st_model *m, const char *path, int *idx, char *err, size_t errlen)
{
	struct st_file *f = realloc(m->files, ((size_t)m->n_files + 1) * sizeof *f);
	struct stat sb;
	int fd, rc;

	if (!f)
		return st_fail(err, errlen, -ENOMEM, "%s: open: out of memory", path);
	m->files = f;
	f = &m->files[m->n_files];
	memset(f, 0, sizeof *f);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb)) {
		rc = -errno;
		close(fd);
		return st_fail(err, errlen, rc, "%s: stat: %s", path, strerror(-rc));
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return st_fail(err, errlen, -EINVAL, "%s: open: not a regular file", path);
	}
	f->size = (size_t)sb.st_size;
	if (f->size) {
		f->map = st_map_aligned(fd, f->size);
		if (f->map == MAP_FAILED) {
			rc = -errno;
			close(fd);
			f->map = NULL;
			return st_fail(err, errlen, rc, "%s: mmap: %s", path, strerror(-rc));
		}
	}
	close(fd);
	f->path = strdup(path);
	if (!f->path) {
		if (f->map)
			munmap(f->map, f->size);
		return st_fail(err, errlen, -ENOMEM, "%s: open: out of memory", path);
	}
	*idx = m->n_files++;
	return 0;
}

static char *st_join(const char *dir, const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* Maps and parses one shard. */
static int st_open_file(struct st_model *m, const char *path, char *err, size_t errlen)
{
	int idx = -1, rc = st_map_file(m, path, &idx, err, errlen);
	if (rc == -ENOENT || rc == -EACCES)
		return st_fail(err, errlen, rc, "%s: open: %s", path, strerror(-rc));
	if (rc < 0 && (!err || !*err))
		return st_fail(err, errlen, rc, "%s: open: %s", path, strerror(-rc));
	if (rc)
		return rc;
	return st_parse_header(m, m->files[idx].map, m->files[idx].size, idx, path, err, errlen);
}

static int st_is_safetensors(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 12 && !strcmp(d->d_name + n - 12, ".safetensors");
}

static int st_open_index(const char *dir, struct st_model *m, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root, *wm, *v;
	const char *name;
	const char **shards = NULL, **first = NULL;
	size_t ns = 0;
	int rc = 0;

	root = json_load_file(m->index_path, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return st_fail(err, errlen, -EINVAL, "%s: json: line %d column %d: %s",
			       m->index_path, je.line, je.column, je.text);
	wm = json_object_get(root, "weight_map");
	if (!json_is_object(wm)) {
		rc = st_fail(err, errlen, -EINVAL, "%s: weight_map: missing or not an object",
			     m->index_path);
		goto out;
	}
	shards = calloc(json_object_size(wm) + 1, sizeof *shards);
	first = calloc(json_object_size(wm) + 1, sizeof *first);
	if (!shards || !first) {
		rc = st_fail(err, errlen, -ENOMEM, "%s: weight_map: out of memory", m->index_path);
		goto out;
	}
	json_object_foreach(wm, name, v)
	{
		const char *s = json_string_value(v);
		size_t i;
		if (!s || !*s || strchr(s, '/') || !strcmp(s, "..") || strlen(s) > 255) {
			rc = st_fail(err, errlen, -EINVAL,
				     "%s: weight_map.%.*s: not a plain shard file name",
				     m->index_path, ST_NAME_MAX, name);
			goto out;
		}
		for (i = 0; i < ns; i++)
			if (!strcmp(shards[i], s))
				break;
		if (i == ns) {
			shards[ns] = s;
			first[ns++] = name;
		}
	}
	for (size_t i = 0; i < ns; i++) {
		char *p = st_join(dir, shards[i]);
		if (!p) {
			rc = st_fail(err, errlen, -ENOMEM, "%s: out of memory", m->index_path);
			goto out;
		}
		if (err && errlen)
			err[0] = 0;
		rc = st_open_file(m, p, err, errlen);
		if (rc == -ENOENT)
			st_fail(err, errlen, rc,
				"%s: missing shard (model.safetensors.index.json maps %.*s to it)",
				p, ST_NAME_MAX, first[i]);
		free(p);
		if (rc)
			goto out;
	}
	json_object_foreach(wm, name, v)
	{
		const struct st_tensor *t = st_find(m, name);
		const char *s = json_string_value(v);
		const char *fp = t ? m->files[t->file].path : NULL;
		size_t fl = fp ? strlen(fp) : 0, sl = strlen(s);
		if (!t || fl < sl + 1 || strcmp(fp + fl - sl, s) || fp[fl - sl - 1] != '/') {
			char *p = st_join(dir, s);
			rc = st_fail(err, errlen, -EINVAL,
				     "%s: %.*s: listed in model.safetensors.index.json but not in "
				     "this shard",
				     p ? p : s, ST_NAME_MAX, name);
			free(p);
			goto out;
		}
	}
out:
	free(shards);
	free(first);
	json_decref(root);
	return rc;
}

int st_open_dir(const char *dir, struct st_model *m, char *err, size_t errlen)
{
	struct stat sb;
	int rc = 0;

	memset(m, 0, sizeof *m);
	if (err && errlen)
		err[0] = 0;
	m->dir = strdup(dir);
	m->index_path = st_join(dir, ST_INDEX_NAME);
	if (!m->dir || !m->index_path) {
		st_close(m);
		return st_fail(err, errlen, -ENOMEM, "%s: out of memory", dir);
	}
	if (stat(m->index_path, &sb) == 0) {
		rc = st_open_index(dir, m, err, errlen);
	} else {
		struct dirent **list = NULL;
		int n = scandir(dir, &list, st_is_safetensors, alphasort);
		free(m->index_path);
		m->index_path = NULL;
		if (n < 0) {
			rc = -errno;
			st_fail(err, errlen, rc, "%s: cannot read directory: %s", dir,
				strerror(-rc));
		} else if (n == 0) {
			rc = st_fail(err, errlen, -ENOENT,
				     "%s: no " ST_INDEX_NAME " and no .safetensors file", dir);
		}
		for (int i = 0; i < n; i++) {
			if (!rc) {
				char *p = st_join(dir, list[i]->d_name);
				rc = p ? st_open_file(m, p, err, errlen)
				       : st_fail(err, errlen, -ENOMEM, "%s: out of memory", dir);
				free(p);
			}
			free(list[i]);
		}
		free(list);
	}
	if (rc)
		st_close(m);
	return rc;
}

/* ---- writer ---- */

int st_writer_add(struct st_writer *w, const char *name, enum st_dtype dtype, int ndim,
		  const int64_t *shape, const void *data)
{
	struct st_writer_entry *e;
	uint64_t numel = 1;

	if (strlen(name) >= ST_NAME_MAX || (unsigned)dtype >= ST_DTYPE_COUNT || ndim < 0 ||
	    ndim > ST_MAX_DIMS)
		return -EINVAL;
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0 || __builtin_mul_overflow(numel, (uint64_t)shape[i], &numel))
			return -EINVAL;
	}
	if (w->n == w->cap) {
		int nc = w->cap ? w->cap * 2 : 64;
		e = realloc(w->e, (size_t)nc * sizeof *e);
		if (!e)
			return -ENOMEM;
		w->e = e;
		w->cap = nc;
	}
	e = &w->e[w->n++];
	memset(e, 0, sizeof *e);
	memcpy(e->name, name, strlen(name) + 1);
	e->dtype = dtype;
	e->ndim = ndim;
	for (int i = 0; i < ndim; i++)
		e->shape[i] = shape[i];
	e->data = data;
	e->nbytes = (size_t)numel * st_dtype_size(dtype);
	return 0;
}

/* Larger elements first so every tensor stays aligned to its element size; then by name. */
static int st_writer_cmp(const void *a, const void *b)
{
	const struct st_writer_entry *x = a, *y = b;
	size_t sx = st_dtype_size(x->dtype), sy = st_dtype_size(y->dtype);
	if (sx != sy)
		return sx > sy ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int st_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t r = write(fd, b, n > (1u << 30) ? (1u << 30) : n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

int st_writer_finish(struct st_writer *w, const char *path, char *err, size_t errlen)
{
	json_t *root = json_object(), *meta = json_object();
	char *hdr = NULL, *tmp = NULL;
	uint64_t off = 0;
	int rc = 0, fd = -1;

	if (!root || !meta)
		goto oom;
	if (w->n > 1)
		qsort(w->e, (size_t)w->n, sizeof *w->e, st_writer_cmp);
	json_object_set_new(meta, "format", json_string("pt"));
	json_object_set_new(root, "__metadata__", meta);
	meta = NULL;
	for (int i = 0; i < w->n; i++) {
		const struct st_writer_entry *e = &w->e[i];
		json_t *t = json_object(), *sh = json_array(), *of = json_array();
		if (!t || !sh || !of) {
			json_decref(t);
			json_decref(sh);
			json_decref(of);
			goto oom;
		}
		for (int d = 0; d < e->ndim; d++)
			json_array_append_new(sh, json_integer(e->shape[d]));
		uint64_t end = off + e->nbytes;
		json_array_append_new(of, json_integer((json_int_t)off));
		json_array_append_new(of, json_integer((json_int_t)end));
		json_object_set_new(t, "dtype", json_string(st_dtype_name(e->dtype)));
		json_object_set_new(t, "shape", sh);
		json_object_set_new(t, "data_offsets", of);
		if (json_object_set_new(root, e->name, t)) {
			rc = st_fail(err, errlen, -EINVAL, "%s: %s: cannot add to header", path,
				     e->name);
			goto out;
		}
		off += e->nbytes;
	}
	hdr = json_dumps(root, JSON_COMPACT);
	if (!hdr)
		goto oom;
	size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7;
	char *h2 = realloc(hdr, padded + 8);
	if (!h2)
		goto oom;
	hdr = h2;
	memmove(hdr + 8, hdr, hl);
	memset(hdr + 8 + hl, ' ', padded - hl);
	for (int i = 0; i < 8; i++)
		hdr[i] = (char)(((uint64_t)padded >> (8 * i)) & 0xFF);
	if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0) {
		tmp = NULL;
		goto oom;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = st_fail(err, errlen, -errno, "%s: create: %s", tmp, strerror(errno));
		goto out;
	}
	rc = st_write_all(fd, hdr, padded + 8);
	for (int i = 0; !rc && i < w->n; i++)
		rc = st_write_all(fd, w->e[i].data, w->e[i].nbytes);
	if (!rc && close(fd))
		rc = -errno;
	fd = -1;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc) {
		unlink(tmp);
		st_fail(err, errlen, rc, "%s: write: %s", path, strerror(-rc));
	}
	goto out;
oom:
	rc = st_fail(err, errlen, -ENOMEM, "%s: out of memory", path);
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	json_decref(meta);
	json_decref(root);
	free(hdr);
	free(tmp);
	return rc;
}

void st_writer_free(struct st_writer *w)
{
	free(w->e);
	memset(w, 0, sizeof *w);
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#define ST_HUGE (2ul << 20) /* transparent huge page size on x86-64 */

/* A range of size bytes at a 2 MiB-aligned address: the slack of a larger reservation is given
 * back. MAP_FAILED on error. */
static void *st_reserve_aligned(size_t size, int prot, int flags, int fd)
{
	size_t len = size + ST_HUGE;
	char *r = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return MAP_FAILED;
	char *a = (char *)(((uintptr_t)r + ST_HUGE - 1) & ~(uintptr_t)(ST_HUGE - 1));
	if (a > r)
		munmap(r, (size_t)(a - r));
	size_t tail = (size_t)(r + len - (a + size));
	if (tail)
		munmap(a + size, tail);
	void *m = mmap(a, size, prot, flags | MAP_FIXED, fd, 0);
	if (m == MAP_FAILED)
		munmap(a, size);
	return m;
}

/* The file mapping starts on a huge-page boundary, so st_populate can later swap in a copy
 * backed by huge pages at the same address. */
static void *st_map_aligned(int fd, size_t size)
{
	void *m = st_reserve_aligned(size, PROT_READ, MAP_PRIVATE, fd);
	return m != MAP_FAILED ? m : mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
}

/* Replaces the part [off, off + len) of the file mapping of f (off 2 MiB-aligned, len too unless
 * it ends the file) by an anonymous copy in transparent huge pages, at the same address (every
 * tensor pointer stays valid). 4 KiB page-cache pages stop the hardware prefetchers at every page
 * and cost a TLB walk each; a decode step streams the weights, so huge pages are worth their
 * copy. Returns 0, or -errno with the file mapping untouched. */
static int st_to_huge(const struct st_file *f, size_t off, size_t len)
{
	char *dst = (char *)f->map + off;
	if (((uintptr_t)f->map & (ST_HUGE - 1)) || len < ST_HUGE)
		return -EINVAL;
	void *a = st_reserve_aligned(len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (a == MAP_FAILED)
		return -errno;
	madvise(a, len, MADV_HUGEPAGE);
	memcpy(a, dst, len);
	if (mprotect(a, len, PROT_READ) ||
	    mremap(a, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == MAP_FAILED) {
		int e = errno;
		munmap(a, len);
		return -e;
	}
	return 0;
}

/* Faults in [off, off + len) of the file mapping of f (4 KiB pages). */
static void st_fault_in(const struct st_file *f, size_t off, size_t len)
{
	char *p = (char *)f->map + off;
	if (madvise(p, len, MADV_POPULATE_READ)) {
		/* older kernels: touch one byte per page */
		volatile const unsigned char *q = (volatile const unsigned char *)p;
		unsigned sum = 0;
		for (size_t o = 0; o < len; o += 4096)
			sum += q[o];
		(void)sum;
	}
}

/* 1 when the 2 MiB unit u of file fi holds a byte of a tensor that is not skipped (the header
 * and anything between tensors count as used). */
static int st_skipped(const char *name, const char *const *skip)
{
	for (; skip && *skip; skip++)
		if (!strncmp(name, *skip, strlen(*skip)))
			return 1;
	return 0;
}

static void st_used_units(const struct st_model *m, int fi, const char *const *skip,
			  unsigned char *used, size_t nu)
{
	const struct st_file *f = &m->files[fi];
	int any = skip && *skip;
	memset(used, any ? 0 : 1, nu);
	if (!any)
		return;
	size_t lo = f->size; /* the header: up to the first tensor's data */
	for (int i = 0; i < m->n_tensors; i++) {
		const struct st_tensor *t = &m->tensors[i];
		if (t->file != fi)
			continue;
		size_t b = (size_t)((const char *)t->data - (const char *)f->map);
		lo = b < lo ? b : lo;
		if (st_skipped(t->name, skip) || !t->nbytes)
			continue;
		for (size_t u = b / ST_HUGE; u <= (b + t->nbytes - 1) / ST_HUGE && u < nu; u++)
			used[u] = 1;
	}
	for (size_t u = 0; u * ST_HUGE < lo && u < nu; u++)
		used[u] = 1;
}

/* One piece of st_populate's work: [off, off + len) of file fi. */
struct st_piece {
	int fi;
	size_t off, len;
};

struct st_pop {
	const struct st_model *m;
	struct st_piece *p;
	int n, huge;
	int next; /* next piece to take (atomic) */
};

static void *st_pop_worker(void *arg)
{
	struct st_pop *w = arg;
	for (;;) {
		int i = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED);
		if (i >= w->n)
			return NULL;
		const struct st_piece *pc = &w->p[i];
		const struct st_file *f = &w->m->files[pc->fi];
		if (!w->huge || st_to_huge(f, pc->off, pc->len))
			st_fault_in(f, pc->off, pc->len);
	}
}

#define ST_PIECE (64ul << 20) /* a piece of the copy: 32 huge pages */

void st_release(const void *p, size_t n)
{
	uintptr_t a = ((uintptr_t)p + ST_HUGE - 1) & ~(uintptr_t)(ST_HUGE - 1);
	uintptr_t b = ((uintptr_t)p + n) & ~(uintptr_t)(ST_HUGE - 1);
	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
}

size_t st_populate(const struct st_model *m, size_t max_bytes, const char *const *skip, int huge,
		   int nthreads)
{
	size_t total = 0, made = 0;
	for (int i = 0; i < m->n_files; i++)
		total += m->files[i].size;
	if (total > max_bytes)
		return 0;
	struct st_pop w = {m, NULL, 0, huge, 0};
	int cap = 0;
	for (int i = 0; i < m->n_files; i++) {
		const struct st_file *f = &m->files[i];
		if (!f->map || !f->size)
			continue;
		size_t nu = (f->size + ST_HUGE - 1) / ST_HUGE;
		unsigned char *used = malloc(nu);
		if (!used) {
			st_fault_in(f, 0, f->size);
			made += f->size;
			continue;
		}
		st_used_units(m, i, skip, used, nu);
		/* each run of used units, in pieces of at most ST_PIECE */
		for (size_t u = 0; u < nu;) {
			if (!used[u]) {
				u++;
				continue;
			}
			size_t v = u;
			while (v < nu && used[v] && (v - u) * ST_HUGE < ST_PIECE)
				v++;
			size_t off = u * ST_HUGE,
			       end = v * ST_HUGE < f->size ? v * ST_HUGE : f->size;
			if (w.n == cap) {
				int nc = cap ? 2 * cap : 64;
				struct st_piece *np = realloc(w.p, sizeof *np * (size_t)nc);
				if (!np) {
					st_fault_in(f, off, end - off);
					made += end - off;
					u = v;
					continue;
				}
				w.p = np;
				cap = nc;
			}
			w.p[w.n++] = (struct st_piece){i, off, end - off};
			made += end - off;
			u = v;
		}
		free(used);
	}
	/* the copies in parallel: on a virtual machine the kernel's zeroing of fresh huge pages
	 * is most of the load time */
	pthread_t th[16];
	int nt = nthreads < 1 ? 1 : nthreads > 16 ? 16 : nthreads, started = 0;
	for (int t = 1; t < nt && t < w.n; t++)
		if (!pthread_create(&th[started], NULL, st_pop_worker, &w))
			started++;
	st_pop_worker(&w);
	for (int t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	free(w.p);
	return made;
}
