/*
 * safetensors.h - mmap reader for Hugging Face safetensors checkpoints, single-file or sharded
 * through model.safetensors.index.json. Second stage of the host data flow: the tensors found
 * here are bound to model weights by ckpt.h; nothing is copied or converted.
 *
 * File format: 8-byte little-endian header length N, then N bytes of JSON
 * {"name": {"dtype": "F8_E4M3", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
 * then the data; offsets are relative to the end of the header.
 */
#ifndef MOECARD_SAFETENSORS_H
#define MOECARD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

enum st_dtype { ST_F32, ST_F16, ST_BF16, ST_F8_E4M3, ST_I64, ST_I32, ST_U8, ST_DTYPE_COUNT };

#define ST_MAX_DIMS 4
#define ST_NAME_MAX 192

/* One tensor, pointing into a mapped file. */
struct st_tensor {
	char name[ST_NAME_MAX]; /* e.g. "model.layers.3.mlp.experts.7.up_proj.weight" */
	enum st_dtype dtype;
	int ndim;		    /* 0..ST_MAX_DIMS */
	int64_t shape[ST_MAX_DIMS]; /* row-major, shape[0] outermost */
	const void *data;	    /* into the mmap; little-endian */
	size_t nbytes;		    /* end - begin; equals numel * dtype size */
	int file;		    /* index into st_model.files */
};

struct st_file {
	char *path;  /* as opened */
	void *map;   /* whole file, PROT_READ, MAP_PRIVATE */
	size_t size; /* bytes */
};

/* All tensors of a checkpoint directory. */
struct st_model {
	struct st_file *files; /* [n_files] */
	int n_files;
	struct st_tensor *tensors; /* [n_tensors], sorted by name */
	int n_tensors;
	int cap_tensors;  /* allocated entries of tensors */
	char *index_path; /* dir/model.safetensors.index.json when sharded, else NULL */
	char *dir;	  /* the directory st_open_dir opened, or NULL */
};

/* Element size in bytes of a dtype; its safetensors name ("F8_E4M3", ...). */
size_t st_dtype_size(enum st_dtype t);
const char *st_dtype_name(enum st_dtype t);

/*
 * st_parse_header - parses one safetensors file image (buf, len bytes: the whole file or at least
 * header + data) and appends its tensors to *m with file index `file`. Checks: header length within
 * the file, valid JSON object, known dtype, shape rank and numel*size == end-begin, offsets in
 * range and non-overlapping. Returns 0, or -EINVAL/-ENOMEM with "<fname>: <tensor or field>: ..."
 * in err. No allocation survives an error except what st_close frees.
 */
int st_parse_header(struct st_model *m, const uint8_t *buf, size_t len, int file, const char *fname,
		    char *err, size_t errlen);

/*
 * st_open_dir - opens dir/model.safetensors.index.json (weight_map; every shard it names must
 * exist and hold the tensors mapped to it) or, when absent, every *.safetensors file in dir.
 * Returns 0 or a negative errno with a one-line message naming the file and tensor/field.
 */
int st_open_dir(const char *dir, struct st_model *m, char *err, size_t errlen);

/* st_find - tensor by exact name, or NULL (binary search). */
const struct st_tensor *st_find(const struct st_model *m, const char *name);

/*
 * st_populate - makes the checkpoint resident now, so that decode does not take a page fault the
 * first time it reaches an expert. With huge, it also stops decode streaming weights through
 * 4 KiB pages: each file mapping is replaced, at the same address, by a read-only copy in
 * transparent huge pages (falling back to MADV_POPULATE_READ of the file mapping); the copy's
 * fresh pages cost the kernel's zeroing, so it pays only for runs that decode long enough.
 * Without huge: MADV_POPULATE_READ only. The work runs on nthreads threads. The resident set stays the file size. Skipped when the
 * files are larger than max_bytes (a checkpoint that does not fit in RAM keeps faulting in on
 * demand). Tensors whose name starts with one of the prefixes of skip (NULL-terminated; NULL:
 * none; e.g. the MTP layer's "model.layers.61." when the run never drafts, "lm_head." when the
 * engine quantizes its own copy of the head) are left out: the 2 MiB ranges that hold only
 * such tensors keep their file mapping, untouched, so they take neither memory nor load time
 * unless something reads them. Returns the bytes made resident.
 */
size_t st_populate(const struct st_model *m, size_t max_bytes, const char *const *skip, int huge,
		   int nthreads);

/* st_release - drops the resident pages of the whole 2 MiB units inside [p, p + n), a range whose
 * tensors st_populate skipped (so those units are still file-mapped: a later read faults them in
 * again from the file). For a tensor used once at load (lm_head under --head fp8). */
void st_release(const void *p, size_t n);

/* st_close - unmaps and frees everything; *m becomes empty. Safe on a zeroed struct. */
void st_close(struct st_model *m);

/*
 * st_writer - writes one safetensors file (used by `moecard gen` and tests).
 * st_writer_add records a tensor (data is copied at st_writer_finish time, so it must stay valid
 * until then); st_writer_finish writes header and data to path (atomically: a temp file renamed).
 */
struct st_writer_entry {
	char name[ST_NAME_MAX];
	enum st_dtype dtype;
	int ndim;
	int64_t shape[ST_MAX_DIMS];
	const void *data;
	size_t nbytes;
};
struct st_writer {
	struct st_writer_entry *e; /* [n] */
	int n, cap;
};
int st_writer_add(struct st_writer *w, const char *name, enum st_dtype dtype, int ndim,
		  const int64_t *shape, const void *data);
int st_writer_finish(struct st_writer *w, const char *path, char *err, size_t errlen);
void st_writer_free(struct st_writer *w);

#endif
