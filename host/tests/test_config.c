/*
 * test_config.c - config.json parsing and validation (host/load/config.c): a V3 config, V2 and
 * V2-Lite variants, defaults, and one bad config per rule, each of which must fail with -EINVAL
 * and a one-line message naming config.json and the key.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "load/config.h"

/* DeepSeek-V3 671B config.json (the keys moecard reads). */
static const char *v3_json =
    "{\"architectures\":[\"DeepseekV3ForCausalLM\"],\"model_type\":\"deepseek_v3\","
    "\"hidden_size\":7168,\"intermediate_size\":18432,\"moe_intermediate_size\":2048,"
    "\"num_hidden_layers\":61,\"first_k_dense_replace\":3,\"moe_layer_freq\":1,"
    "\"num_attention_heads\":128,\"num_key_value_heads\":128,\"q_lora_rank\":1536,"
    "\"kv_lora_rank\":512,\"qk_nope_head_dim\":128,\"qk_rope_head_dim\":64,\"v_head_dim\":128,"
    "\"n_routed_experts\":256,\"num_experts_per_tok\":8,\"n_shared_experts\":1,\"n_group\":8,"
    "\"topk_group\":4,\"routed_scaling_factor\":2.5,\"scoring_func\":\"sigmoid\","
    "\"topk_method\":\"noaux_tc\",\"norm_topk_prob\":true,\"rope_theta\":10000,"
    "\"rope_scaling\":{\"beta_fast\":32,\"beta_slow\":1,\"factor\":40,\"mscale\":1.0,"
    "\"mscale_all_dim\":1.0,\"original_max_position_embeddings\":4096,\"type\":\"yarn\"},"
    "\"rms_norm_eps\":1e-06,\"vocab_size\":129280,\"max_position_embeddings\":163840,"
    "\"bos_token_id\":0,\"eos_token_id\":1,\"tie_word_embeddings\":false,"
    "\"num_nextn_predict_layers\":1,\"quantization_config\":{\"activation_scheme\":\"dynamic\","
    "\"fmt\":\"e4m3\",\"quant_method\":\"fp8\",\"weight_block_size\":[128,128]}}";

/* DeepSeek-V2-Lite-like: q_lora_rank null, softmax, greedy, no quantization, no rope scaling. */
static const char *v2lite_json =
    "{\"model_type\":\"deepseek_v2\",\"hidden_size\":2048,\"intermediate_size\":10944,"
    "\"moe_intermediate_size\":1408,\"num_hidden_layers\":27,\"first_k_dense_replace\":1,"
    "\"num_attention_heads\":16,\"q_lora_rank\":null,\"kv_lora_rank\":512,"
    "\"qk_nope_head_dim\":128,\"qk_rope_head_dim\":64,\"v_head_dim\":128,"
    "\"n_routed_experts\":64,\"num_experts_per_tok\":6,\"n_shared_experts\":2,"
    "\"n_group\":1,\"topk_group\":1,\"routed_scaling_factor\":1.0,\"scoring_func\":\"softmax\","
    "\"topk_method\":\"greedy\",\"norm_topk_prob\":false,\"rope_scaling\":null,"
    "\"vocab_size\":102400,\"bos_token_id\":100000,\"eos_token_id\":100001}";

static int parse(const char *text, struct config *c, char *err, size_t n)
{
	err[0] = 0;
	return config_parse(text, strlen(text), "config.json", c, err, n);
}

/* Replaces the first occurrence of `from` in v3_json by `to`. */
static int parse_edit(const char *base, const char *from, const char *to, struct config *c,
		      char *err, size_t n)
{
	static char buf[8192];
	const char *p = strstr(base, from);
	assert_non_null(p);
	snprintf(buf, sizeof buf, "%.*s%s%s", (int)(p - base), base, to, p + strlen(from));
	return parse(buf, c, err, n);
}

static void test_v3(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(parse(v3_json, &c, err, sizeof err), 0);
	assert_string_equal(c.model_type, "deepseek_v3");
	assert_int_equal(c.hidden_size, 7168);
	assert_int_equal(c.intermediate_size, 18432);
	assert_int_equal(c.moe_intermediate_size, 2048);
	assert_int_equal(c.num_hidden_layers, 61);
	assert_int_equal(c.first_k_dense_replace, 3);
	assert_int_equal(c.num_attention_heads, 128);
	assert_int_equal(c.q_lora_rank, 1536);
	assert_int_equal(c.kv_lora_rank, 512);
	assert_int_equal(config_qk_head_dim(&c), 192);
	assert_int_equal(c.v_head_dim, 128);
	assert_int_equal(c.n_routed_experts, 256);
	assert_int_equal(c.num_experts_per_tok, 8);
	assert_int_equal(c.n_group, 8);
	assert_int_equal(c.topk_group, 4);
	assert_true(c.routed_scaling_factor == 2.5);
	assert_int_equal(c.scoring_func, CONFIG_SCORING_SIGMOID);
	assert_int_equal(c.topk_method, CONFIG_TOPK_NOAUX_TC);
	assert_true(c.norm_topk_prob);
	assert_true(c.rope_scaling.yarn);
	assert_true(c.rope_scaling.factor == 40 && c.rope_scaling.mscale_all_dim == 1);
	assert_int_equal(c.rope_scaling.original_max_position_embeddings, 4096);
	assert_true(c.rms_norm_eps == 1e-6);
	assert_int_equal(c.vocab_size, 129280);
	assert_int_equal(c.num_nextn_predict_layers, 1);
	assert_true(c.quantization_config.present && c.quantization_config.dynamic);
	assert_false(c.quantization_config.ue8m0);
	assert_int_equal(c.quantization_config.weight_block_size[0], 128);
	assert_false(config_layer_is_moe(&c, 2));
	assert_true(config_layer_is_moe(&c, 3));
	assert_true(config_layer_is_moe(&c, 61));
}

static void test_v2lite_and_variants(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(parse(v2lite_json, &c, err, sizeof err), 0);
	assert_int_equal(c.q_lora_rank, 0);
	assert_int_equal(c.scoring_func, CONFIG_SCORING_SOFTMAX);
	assert_int_equal(c.topk_method, CONFIG_TOPK_GREEDY);
	assert_false(c.norm_topk_prob);
	assert_false(c.rope_scaling.yarn);
	assert_false(c.quantization_config.present);
	assert_int_equal(c.num_nextn_predict_layers, 0);
	assert_int_equal(c.n_shared_experts, 2);
	/* V2 (236B): group_limited_greedy */
	assert_int_equal(
	    parse_edit(v2lite_json, "\"greedy\"", "\"group_limited_greedy\"", &c, err, sizeof err),
	    0);
	assert_int_equal(c.topk_method, CONFIG_TOPK_GROUP_LIMITED_GREEDY);
	/* rope_type instead of type */
	assert_int_equal(
	    parse_edit(v3_json, "\"type\":\"yarn\"", "\"rope_type\":\"yarn\"", &c, err, sizeof err),
	    0);
	assert_true(c.rope_scaling.yarn);
	/* V3.1 ue8m0 */
	assert_int_equal(parse_edit(v3_json, "\"fmt\":\"e4m3\"",
				    "\"fmt\":\"e4m3\",\"scale_fmt\":\"ue8m0\"", &c, err,
				    sizeof err),
			 0);
	assert_true(c.quantization_config.ue8m0);
	/* rope_scaling null */
	assert_int_equal(parse_edit(v3_json, "\"rope_scaling\":{", "\"rope_scaling\":null,\"x\":{",
				    &c, err, sizeof err),
			 0);
	assert_false(c.rope_scaling.yarn);
}

static void test_defaults(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	const char *min =
	    "{\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,"
	    "\"num_attention_heads\":2,\"kv_lora_rank\":32,\"qk_nope_head_dim\":16,"
	    "\"qk_rope_head_dim\":8,\"v_head_dim\":16,\"vocab_size\":100,"
	    "\"n_routed_experts\":4,\"num_experts_per_tok\":2,\"moe_intermediate_size\":32}";
	assert_int_equal(parse(min, &c, err, sizeof err), 0);
	assert_string_equal(c.model_type, "deepseek_v3");
	assert_int_equal(c.n_group, 1);
	assert_int_equal(c.topk_group, 1);
	assert_int_equal(c.moe_layer_freq, 1);
	assert_int_equal(c.first_k_dense_replace, 0);
	assert_int_equal(c.num_nextn_predict_layers, 0);
	assert_int_equal(c.q_lora_rank, 0);
	assert_true(c.rope_theta == 10000 && c.rms_norm_eps == 1e-6);
	assert_int_equal(c.bos_token_id, 0);
	assert_int_equal(c.eos_token_id, 1);
	assert_false(c.tie_word_embeddings);
}

/* One bad edit of the V3 config: must fail with -EINVAL and "config.json: <key>: ...". */
struct bad_case {
	const char *from, *to, *key;
};

static const struct bad_case bad_cases[] = {
    {"\"hidden_size\":7168", "\"hidden_size\":\"7168\"", "hidden_size"},
    {"\"hidden_size\":7168", "\"hidden_size\":-7168", "hidden_size"},
    {"\"hidden_size\":7168", "\"hidden_size\":71.5", "hidden_size"},
    {"\"hidden_size\":7168,", "", "hidden_size"},
    {"\"vocab_size\":129280", "\"vocab_size\":0", "vocab_size"},
    {"\"kv_lora_rank\":512", "\"kv_lora_rank\":-1", "kv_lora_rank"},
    {"\"num_key_value_heads\":128", "\"num_key_value_heads\":16", "num_key_value_heads"},
    {"\"v_head_dim\":128", "\"v_head_dim\":128,\"head_dim\":100", "head_dim"},
    {"\"num_attention_heads\":128,\"num_key_value_heads\":128",
     "\"num_attention_heads\":2000,\"num_key_value_heads\":2000", "num_attention_heads"},
    {"\"num_experts_per_tok\":8", "\"num_experts_per_tok\":300", "num_experts_per_tok"},
    {"\"num_experts_per_tok\":8", "\"num_experts_per_tok\":0", "num_experts_per_tok"},
    {"\"n_group\":8", "\"n_group\":7", "n_group"},
    {"\"topk_group\":4", "\"topk_group\":9", "topk_group"},
    {"\"n_group\":8,\"topk_group\":4", "\"n_group\":64,\"topk_group\":1",
     "num_experts_per_tok"}, /* 8 > 1 group of 4 */
    {"\"scoring_func\":\"sigmoid\"", "\"scoring_func\":\"tanh\"", "scoring_func"},
    {"\"topk_method\":\"noaux_tc\"", "\"topk_method\":\"best\"", "topk_method"},
    {"\"qk_rope_head_dim\":64", "\"qk_rope_head_dim\":63", "qk_rope_head_dim"},
    {"\"weight_block_size\":[128,128]", "\"weight_block_size\":[64,128]",
     "quantization_config.weight_block_size"},
    {"\"weight_block_size\":[128,128]", "\"weight_block_size\":[128]",
     "quantization_config.weight_block_size"},
    {"\"quant_method\":\"fp8\"", "\"quant_method\":\"int4\"", "quantization_config.quant_method"},
    {"\"fmt\":\"e4m3\"", "\"fmt\":\"e5m2\"", "quantization_config.fmt"},
    {"\"fmt\":\"e4m3\"", "\"fmt\":\"e4m3\",\"scale_fmt\":\"e8\"", "quantization_config.scale_fmt"},
    {"\"tie_word_embeddings\":false", "\"tie_word_embeddings\":true", "tie_word_embeddings"},
    {"\"tie_word_embeddings\":false", "\"tie_word_embeddings\":0", "tie_word_embeddings"},
    {"\"type\":\"yarn\"", "\"type\":\"linear\"", "rope_scaling.type"},
    {"\"factor\":40", "\"factor\":\"40\"", "rope_scaling.factor"},
    {"\"factor\":40", "\"factor\":0.5", "rope_scaling.factor"},
    {"\"first_k_dense_replace\":3", "\"first_k_dense_replace\":62", "first_k_dense_replace"},
    {"\"model_type\":\"deepseek_v3\"", "\"model_type\":\"llama\"", "model_type"},
    {"\"rms_norm_eps\":1e-06", "\"rms_norm_eps\":0", "rms_norm_eps"},
    {"\"num_nextn_predict_layers\":1", "\"num_nextn_predict_layers\":3",
     "num_nextn_predict_layers"},
    {"\"eos_token_id\":1", "\"eos_token_id\":129280", "eos_token_id"},
    {"\"n_group\":8", "\"n_group\":8,\"n_group\":8", "json"}, /* duplicate key */
    {"\"bos_token_id\":0,", "\"bos_token_id\":0,,", "json"},
    {"\"rope_scaling\":{", "\"rope_scaling\":[1],\"x\":{", "rope_scaling"},
};

static void test_bad(void **state)
{
	(void)state;
	int fails = 0;
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *b = &bad_cases[i];
		struct config c;
		char err[256], want[128];
		int rc = parse_edit(v3_json, b->from, b->to, &c, err, sizeof err);
		snprintf(want, sizeof want, "config.json: %s: ", b->key);
		if (rc != -EINVAL || strncmp(err, want, strlen(want)) || strchr(err, '\n')) {
			printf("case %zu (%s -> %s): rc %d, err \"%s\", expected prefix \"%s\"\n",
			       i, b->from, b->to, rc, err, want);
			fails++;
		}
	}
	printf("checked %zu bad configs, %d wrong\n", sizeof bad_cases / sizeof bad_cases[0],
	       fails);
	assert_int_equal(fails, 0);
}

static void test_not_json(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(parse("", &c, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "config.json: json:"));
	assert_int_equal(parse("[1,2]", &c, err, sizeof err), -EINVAL);
	assert_int_equal(parse("{\"hidden_size\":", &c, err, sizeof err), -EINVAL);
	assert_int_equal(config_parse(v3_json, 10, "x/config.json", &c, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "x/config.json: json:"));
	assert_int_equal(config_load("/nonexistent-dir/config.json", &c, err, sizeof err), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_v3),	     cmocka_unit_test(test_v2lite_and_variants),
	    cmocka_unit_test(test_defaults), cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_not_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
