/* test_parallel_ops.c: the CPU kernels and shape inference of grouped-query attention
 * (infd.Attention with num_kv_heads) and of the tensor-parallel ops (infd.AllReduce,
 * infd.AllGather, infd.VocabGather), against references computed here; the collectives
 * are stand-ins that play the other ranks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "op_test.h"
#include "rt_fused.h"

/* Grouped-query attention written out: q, k, v by loops, query head h on KV head
 * h / (heads / kv), softmax(q k / sqrt(d) + mask) v. */
static void gqa_reference(const rt_tensor *x, const rt_tensor *w, const rt_tensor *b,
                          const rt_tensor *mask, int64_t heads, int64_t kv, double *y)
{
    int64_t batch = x->shape.dims[0], seq = x->shape.dims[1], hin = x->shape.dims[2];
    int64_t cols = w->shape.dims[1], d = cols / (heads + 2 * kv);
    double proj[2 * 4 * 32];
    for (int64_t bi = 0; bi < batch; bi++) {
        for (int64_t t = 0; t < seq; t++)
            for (int64_t c = 0; c < cols; c++) {
                double acc = elem(b, c);
                for (int64_t k = 0; k < hin; k++)
                    acc += elem(x, (bi * seq + t) * hin + k) * elem(w, k * cols + c);
                proj[t * cols + c] = acc;
            }
        for (int64_t h = 0; h < heads; h++) {
            int64_t q0 = h * d, k0 = (heads + h / (heads / kv)) * d, v0 = k0 + kv * d;
            for (int64_t i = 0; i < seq; i++) {
                double p[4], mx = -1e300, sum = 0;
                for (int64_t j = 0; j < seq; j++) {
                    double s = 0;
                    for (int64_t e = 0; e < d; e++)
                        s += proj[i * cols + q0 + e] * proj[j * cols + k0 + e];
                    p[j] = s / sqrt((double)d) + elem(mask, (bi * seq + i) * seq + j);
                    mx = fmax(mx, p[j]);
                }
                for (int64_t j = 0; j < seq; j++)
                    sum += p[j] = exp(p[j] - mx);
                for (int64_t e = 0; e < d; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j < seq; j++)
                        acc += p[j] / sum * proj[j * cols + v0 + e];
                    y[(bi * seq + i) * heads * d + h * d + e] = acc;
                }
            }
        }
    }
}

static void test_grouped_query_attention(void **state)
{
    (void)state;
    /* 4 query heads of 3 on 2 KV heads (and on 1: multi-query), mask per batch and row */
    for (int64_t kv = 1; kv <= 2; kv++) {
        int64_t cols = (4 + 2 * kv) * 3;
        rt_tensor *x = make_random(RT_DTYPE_F32, 3, (int64_t[]){2, 4, 5}, 1);
        rt_tensor *w = make_random(RT_DTYPE_F32, 2, (int64_t[]){5, cols}, 2);
        rt_tensor *b = make_random(RT_DTYPE_F32, 1, (int64_t[]){cols}, 3);
        rt_tensor *m = make_random(RT_DTYPE_F32, 4, (int64_t[]){2, 1, 4, 4}, 4);
        rt_attr attrs[] = {attr_int("num_heads", 4), attr_int("num_kv_heads", kv)};
        const rt_tensor *in[] = {x, w, b, m};
        op_run r = run_op(RT_OP_ATTENTION, rt_cpu_attention, attrs, 2, in, 4, 1);
        assert_int_equal(r.status, RT_OK);
        assert_shape(r.out[0], 3, (int64_t[]){2, 4, 12});
        double want[2 * 4 * 12];
        gqa_reference(x, w, b, m, 4, kv, want);
        assert_close(r.out[0], want, 1e-5);
        op_run_free(&r);
        rt_tensor_free(x);
        rt_tensor_free(w);
        rt_tensor_free(b);
        rt_tensor_free(m);
    }
}

static void expect_infer_error(rt_op op, rt_attr *attrs, int n_attrs, const rt_tensor *const *in,
                               int n_in, const char *msg)
{
    rt_tensor out = {0};
    rt_error err = {0};
    int inputs[4] = {0, 1, 2, 3}, output = 4;
    rt_node node = {.name = "n", .op = op, .n_inputs = n_in, .inputs = inputs, .n_outputs = 1,
                    .outputs = &output, .n_attrs = n_attrs, .attrs = attrs};
    assert_int_not_equal(rt_op_infer(&node, in, n_in, &out, 1, &err), RT_OK);
    if (!strstr(err.text, msg))
        fail_msg("message '%s' lacks '%s'", err.text, msg);
}

static void test_attention_heads_refused(void **state)
{
    (void)state;
    rt_tensor *x = make_tensor(RT_DTYPE_F32, 3, (int64_t[]){1, 2, 4});
    rt_tensor *w = make_tensor(RT_DTYPE_F32, 2, (int64_t[]){4, 30});
    const rt_tensor *in[] = {x, w};
    rt_attr three[] = {attr_int("num_heads", 4), attr_int("num_kv_heads", 3)};
    expect_infer_error(RT_OP_ATTENTION, three, 2, in, 2,
                       "4 heads cannot share 3 KV heads (the heads must be a multiple of the "
                       "KV heads)");
    rt_attr two[] = {attr_int("num_heads", 4), attr_int("num_kv_heads", 2)};
    expect_infer_error(RT_OP_ATTENTION, two, 2, in, 2,
                       "W's 30 columns do not split into Q, K, V of 4 + 2 x 2 heads");
    rt_tensor_free(x);
    rt_tensor_free(w);
}

/* Rows [2, 4) of a vocabulary of 6: ids 2 and 3 (and -3, which is 3) hit them, the others
 * get zeros; ids outside [-6, 6) fail. */
static void test_vocab_gather(void **state)
{
    (void)state;
    rt_tensor *table = make_values(RT_DTYPE_F32, 2, (int64_t[]){2, 3},
                                   (double[]){1, 2, 3, 4, 5, 6});
    rt_tensor *ids = make_values(RT_DTYPE_I64, 2, (int64_t[]){1, 5}, (double[]){0, 2, 3, -3, 5});
    rt_attr attrs[] = {attr_int("vocab_start", 2), attr_int("vocab_size", 6)};
    const rt_tensor *in[] = {table, ids};
    op_run r = run_op(RT_OP_VOCAB_GATHER, rt_cpu_vocab_gather, attrs, 2, in, 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 3, (int64_t[]){1, 5, 3});
    assert_close(r.out[0], (double[]){0, 0, 0, 1, 2, 3, 4, 5, 6, 4, 5, 6, 0, 0, 0}, 0);
    op_run_free(&r);
    for (int k = 0; k < 2; k++) {
        ((int64_t *)ids->data)[1] = k ? -7 : 6;
        r = run_op(RT_OP_VOCAB_GATHER, rt_cpu_vocab_gather, attrs, 2, in, 2, 1);
        assert_int_equal(r.status, RT_ERR_INVALID_ARG);
        assert_non_null(strstr(r.err.text, k ? "index -7 is out of range for dim 6"
                                             : "index 6 is out of range for dim 6"));
        op_run_free(&r);
    }
    rt_attr past_end[] = {attr_int("vocab_start", 5), attr_int("vocab_size", 6)};
    expect_infer_error(RT_OP_VOCAB_GATHER, past_end, 2, in, 2,
                       "the table must be rows [vocab_start, vocab_start + rows)");
    rt_tensor_free(table);
    rt_tensor_free(ids);
}

/* Stand-ins for a group of 2: the other rank's part is ours plus 100; the sum doubles. */
static rt_status fake_all_gather(void *arg, const float *send, float *recv, size_t n,
                                 rt_error *err)
{
    (void)err;
    *(int *)arg += 1;
    for (size_t i = 0; i < n; i++) {
        recv[i] = send[i];
        recv[n + i] = send[i] + 100;
    }
    return RT_OK;
}

static rt_status fake_all_reduce(void *arg, float *buf, size_t n, rt_error *err)
{
    (void)err;
    *(int *)arg += 1;
    for (size_t i = 0; i < n; i++)
        buf[i] *= 2;
    return RT_OK;
}

static void test_collectives(void **state)
{
    (void)state;
    int calls = 0;
    rt_collectives coll = {fake_all_reduce, fake_all_gather, &calls};
    rt_tensor *x = make_values(RT_DTYPE_F32, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
    const rt_tensor *in[] = {x};
    rt_attr ranks = attr_int("ranks", 2);
    op_run r = run_op_with(RT_OP_ALL_GATHER, 17, rt_cpu_all_gather, &ranks, 1, in, 1, 1, &coll);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 2, (int64_t[]){2, 6});
    /* each row: this rank's columns, then the other rank's */
    assert_close(r.out[0], (double[]){1, 2, 3, 101, 102, 103, 4, 5, 6, 104, 105, 106}, 0);
    op_run_free(&r);
    /* the other rank's block padded by one column, which is dropped */
    rt_attr cut[] = {attr_int("ranks", 2), attr_int("width", 5)};
    r = run_op_with(RT_OP_ALL_GATHER, 17, rt_cpu_all_gather, cut, 2, in, 1, 1, &coll);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 2, (int64_t[]){2, 5});
    assert_close(r.out[0], (double[]){1, 2, 3, 101, 102, 4, 5, 6, 104, 105}, 0);
    op_run_free(&r);
    cut[1].i = 3;
    expect_infer_error(RT_OP_ALL_GATHER, cut, 2, in, 1, "2 ranks of 3 columns cannot make 3");
    r = run_op_with(RT_OP_ALL_REDUCE, 17, rt_cpu_all_reduce, NULL, 0, in, 1, 1, &coll);
    assert_int_equal(r.status, RT_OK);
    assert_close(r.out[0], (double[]){2, 4, 6, 8, 10, 12}, 0);
    assert_close(x, (double[]){1, 2, 3, 4, 5, 6}, 0); /* the input is not summed in place */
    op_run_free(&r);
    assert_int_equal(calls, 3);
    /* outside a group */
    r = run_op(RT_OP_ALL_GATHER, rt_cpu_all_gather, &ranks, 1, in, 1, 1);
    assert_int_equal(r.status, RT_ERR_UNSUPPORTED);
    assert_string_equal(r.err.text, "node 'n' (infd.AllGather) runs only in a tensor-parallel "
                                    "session");
    op_run_free(&r);
    rt_tensor_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grouped_query_attention),
        cmocka_unit_test(test_attention_heads_refused),
        cmocka_unit_test(test_vocab_gather),
        cmocka_unit_test(test_collectives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
