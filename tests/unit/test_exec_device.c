/* test_exec_device.c: the executor's device path (rt_exec.c with a backend whose memory the
 * host may not touch) on CI machines without a GPU, through a simulated device backend:
 * host memory it tracks as "device" memory and poisons, the CPU kernels behind node_run,
 * and a recorder standing in for CUDA Graphs. It checks that kernels only ever see device
 * buffers except for the inputs the backend reads on the host, that weights are loaded
 * once, that results match the CPU executor run after run (discovery, warm-up, recording,
 * replays, other shapes), that a plan reading a graph input or an intermediate on the host
 * is never recorded, and that the launch counts say what ran. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../test_graphs.h"
#include "rt_exec.h"

#define MAX_BLOCKS 256
#define MAX_CALLS 64
#define MAX_IO 4

typedef struct call {
    const rt_node *node;
    int n_in, n_out;
    rt_tensor in[MAX_IO], out[MAX_IO];
    bool has_in[MAX_IO];
} call;

typedef struct devsim {
    rt_backend base;         /* first */
    rt_backend *cpu;
    struct { char *p; size_t n; } blocks[MAX_BLOCKS];
    int n_blocks;
    bool recording;
    call *rec;
    int n_rec;
    uint64_t kernels, graphs;
    int weight_loads;
} devsim;

static devsim *sim_of(rt_backend *b)
{
    return (devsim *)b;
}

static bool on_device(devsim *d, const void *p)
{
    for (int i = 0; i < d->n_blocks; i++)
        if ((const char *)p >= d->blocks[i].p && (const char *)p < d->blocks[i].p + d->blocks[i].n)
            return true;
    return false;
}

static void *sim_alloc(rt_backend *b, size_t bytes)
{
    devsim *d = sim_of(b);
    assert_true(d->n_blocks < MAX_BLOCKS);
    size_t n = bytes ? bytes : 1;
    char *p = malloc(n);
    memset(p, 0xff, n); /* NaN: what a kernel forgets to write shows */
    d->blocks[d->n_blocks].p = p;
    d->blocks[d->n_blocks++].n = n;
    return p;
}

static void sim_free(rt_backend *b, void *p)
{
    devsim *d = sim_of(b);
    for (int i = 0; i < d->n_blocks; i++)
        if (d->blocks[i].p == p) {
            memset(p, 0xcd, d->blocks[i].n); /* a later read of freed memory shows */
            free(p);
            d->blocks[i] = d->blocks[--d->n_blocks];
            return;
        }
    fail_msg("freeing memory the device did not allocate");
}

/* as the CUDA backend: shape-carrying inputs and Clip's bounds are read on the host */
static unsigned sim_host_inputs(rt_backend *b, const rt_node *n)
{
    (void)b;
    switch (n->op) {
    case RT_OP_RESHAPE: case RT_OP_EXPAND: return 2u;
    case RT_OP_CLIP: return 6u;
    default: return 0;
    }
}

static rt_status sim_run(rt_backend *b, rt_kernel_ctx *ctx, const rt_node *node,
                         const rt_tensor *const *in, int n_in, rt_tensor *const *out, int n_out,
                         rt_error *err)
{
    devsim *d = sim_of(b);
    unsigned mask = sim_host_inputs(b, node);
    for (int k = 0; k < n_in; k++)
        if (in[k])
            assert_int_equal(on_device(d, in[k]->data), !(mask >> k & 1u));
    for (int k = 0; k < n_out; k++)
        if (out[k])
            assert_true(on_device(d, out[k]->data));
    if (d->recording) {
        assert_true(d->n_rec < MAX_CALLS && n_in <= MAX_IO && n_out <= MAX_IO);
        call *c = &d->rec[d->n_rec++];
        c->node = node;
        c->n_in = n_in;
        c->n_out = n_out;
        for (int k = 0; k < n_in; k++)
            if ((c->has_in[k] = in[k] != NULL))
                c->in[k] = *in[k];
        for (int k = 0; k < n_out; k++)
            c->out[k] = *out[k];
        return RT_OK;
    }
    d->kernels++;
    return d->cpu->vt->node_run(d->cpu, ctx, node, in, n_in, out, n_out, err);
}

static rt_status sim_upload(rt_backend *b, void *dst, const void *src, size_t bytes, rt_error *err)
{
    (void)err;
    assert_true(on_device(sim_of(b), dst) && !on_device(sim_of(b), src));
    memcpy(dst, src, bytes);
    return RT_OK;
}

static rt_status sim_download(rt_backend *b, void *dst, const void *src, size_t bytes,
                              rt_error *err)
{
    (void)err;
    assert_true(!on_device(sim_of(b), dst) && on_device(sim_of(b), src));
    memcpy(dst, src, bytes);
    return RT_OK;
}

static rt_status sim_weight_load(rt_backend *b, const rt_graph *g, int v, rt_tensor *t,
                                 rt_error *err)
{
    (void)err;
    const rt_tensor *w = g->values[v].data;
    *t = *w;
    t->owns_data = false;
    t->data = sim_alloc(b, rt_tensor_nbytes(w));
    memcpy(t->data, w->data, rt_tensor_nbytes(w));
    sim_of(b)->weight_loads++;
    return RT_OK;
}

static rt_status sim_capture_begin(rt_backend *b, rt_error *err)
{
    (void)err;
    devsim *d = sim_of(b);
    d->recording = true;
    d->rec = calloc(MAX_CALLS, sizeof *d->rec);
    d->n_rec = 0;
    return RT_OK;
}

typedef struct recording {
    call *calls;
    int n;
} recording;

static rt_status sim_capture_end(rt_backend *b, void **graph, rt_error *err)
{
    (void)err;
    devsim *d = sim_of(b);
    recording *r = malloc(sizeof *r);
    r->calls = d->rec;
    r->n = d->n_rec;
    d->recording = false;
    d->rec = NULL;
    *graph = r;
    return RT_OK;
}

static rt_status sim_graph_launch(rt_backend *b, void *graph, rt_error *err)
{
    devsim *d = sim_of(b);
    const recording *r = graph;
    rt_kernel_ctx ctx = {.threads = 1};
    d->graphs++;
    for (int i = 0; i < r->n; i++) {
        const call *c = &r->calls[i];
        const rt_tensor *in[MAX_IO];
        rt_tensor *out[MAX_IO];
        rt_tensor outs[MAX_IO];
        for (int k = 0; k < c->n_in; k++)
            in[k] = c->has_in[k] ? &c->in[k] : NULL;
        for (int k = 0; k < c->n_out; k++) {
            outs[k] = c->out[k];
            out[k] = &outs[k];
        }
        rt_status st = d->cpu->vt->node_run(d->cpu, &ctx, c->node, in, c->n_in, out, c->n_out, err);
        if (st != RT_OK) {
            rt_kernel_ctx_release(&ctx);
            return st;
        }
    }
    rt_kernel_ctx_release(&ctx);
    return RT_OK;
}

static void sim_graph_free(rt_backend *b, void *graph)
{
    (void)b;
    recording *r = graph;
    free(r->calls);
    free(r);
}

static void sim_launches(rt_backend *b, uint64_t *kernels, uint64_t *graphs)
{
    *kernels = sim_of(b)->kernels;
    *graphs = sim_of(b)->graphs;
}

static bool sim_supports(rt_backend *b, const rt_node *n)
{
    (void)b, (void)n;
    return true;
}

static const rt_backend_vtable sim_vtable = {
    .name = "devsim",
    .supports_op = sim_supports,
    .node_run = sim_run,
    .buffer_alloc = sim_alloc,
    .buffer_free = sim_free,
    .upload = sim_upload,
    .download = sim_download,
    .host_inputs = sim_host_inputs,
    .weight_load = sim_weight_load,
    .capture_begin = sim_capture_begin,
    .capture_end = sim_capture_end,
    .graph_launch = sim_graph_launch,
    .graph_free = sim_graph_free,
    .launches = sim_launches,
};

static devsim *sim_create(void)
{
    devsim *d = calloc(1, sizeof *d);
    d->base.vt = &sim_vtable;
    d->base.threads = 1;
    d->cpu = rt_cpu_backend_create(1, NULL);
    return d;
}

static void sim_free_all(devsim *d)
{
    while (d->n_blocks)
        sim_free(&d->base, d->blocks[0].p);
    rt_backend_free(d->cpu);
    free(d);
}

/* ---- graphs ---- */

/* x[-1,4] -> Add(w) -> Clip(lo, hi weights) -> Mul(itself) -> out, and w also an output */
static rt_graph *chain_graph(void)
{
    rt_graph *g = rt_graph_create("chain");
    g->opset = 13;
    rt_shape xs = rt_shape_make(2, (int64_t[]){-1, 4}), ws = rt_shape_make(1, (int64_t[]){4});
    rt_shape one = rt_shape_make(0, NULL);
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
    int w = rt_graph_add_value(g, "w", RT_VALUE_WEIGHT, RT_DTYPE_F32, &ws);
    int lo = rt_graph_add_value(g, "lo", RT_VALUE_WEIGHT, RT_DTYPE_F32, &one);
    int hi = rt_graph_add_value(g, "hi", RT_VALUE_WEIGHT, RT_DTYPE_F32, &one);
    g->values[w].data = rt_tensor_create(RT_DTYPE_F32, &ws, NULL);
    g->values[lo].data = rt_tensor_create(RT_DTYPE_F32, &one, NULL);
    g->values[hi].data = rt_tensor_create(RT_DTYPE_F32, &one, NULL);
    for (int i = 0; i < 4; i++)
        ((float *)g->values[w].data->data)[i] = (float)i - 1.5f;
    *(float *)g->values[lo].data->data = -1.0f;
    *(float *)g->values[hi].data->data = 2.5f;
    int a = test_mid(g, "a"), c = test_mid(g, "c"), o = test_mid(g, "out");
    rt_graph_add_input(g, x);
    rt_graph_add_node(g, "add", RT_OP_ADD, (int[]){x, w}, 2, (int[]){a}, 1, NULL, 0);
    rt_graph_add_node(g, "clip", RT_OP_CLIP, (int[]){a, lo, hi}, 3, (int[]){c}, 1, NULL, 0);
    rt_graph_add_node(g, "sq", RT_OP_MUL, (int[]){c, c}, 2, (int[]){o}, 1, NULL, 0);
    rt_graph_add_output(g, o);
    return g;
}

static rt_tensor *input(int64_t rows, int64_t cols, float seed)
{
    rt_shape s = rt_shape_make(2, (int64_t[]){rows, cols});
    rt_tensor *t = rt_tensor_create(RT_DTYPE_F32, &s, NULL);
    for (int64_t i = 0; i < rows * cols; i++)
        ((float *)t->data)[i] = (float)((i * 7) % 11) * 0.5f - 2.0f + seed;
    return t;
}

/* The same inputs through the CPU executor and the device one: outputs equal. */
static void run_both(rt_exec *cpu, rt_exec *dev, rt_tensor **in)
{
    rt_tensor *want = NULL, *got = NULL;
    rt_error err;
    assert_int_equal(rt_exec_run(cpu, (const rt_tensor *const *)in, &want, &err), RT_OK);
    assert_int_equal(rt_exec_run(dev, (const rt_tensor *const *)in, &got, &err), RT_OK);
    assert_true(rt_shape_equal(&want->shape, &got->shape));
    assert_int_equal(got->device, RT_DEVICE_HOST);
    assert_memory_equal(want->data, got->data, rt_tensor_nbytes(want));
    rt_tensor_free(want);
    rt_tensor_free(got);
}

static void launches(rt_exec *x, uint64_t *eager, uint64_t *last, bool *replayed)
{
    rt_exec_launches(x, eager, last, replayed);
}

static void test_record_and_replay(void **state)
{
    (void)state;
    rt_graph *g = chain_graph();
    rt_error err;
    devsim *d = sim_create();
    rt_backend *cpu = rt_cpu_backend_create(1, NULL);
    rt_exec *xc = rt_exec_create(g, cpu, &err), *xd = rt_exec_create(g, &d->base, &err);
    assert_non_null(xc);
    assert_non_null(xd);
    assert_int_equal(d->weight_loads, 3);
    uint64_t eager, last;
    bool replayed;
    /* discovery, warm-up, recording (replayed at once), replay */
    for (int r = 0; r < 4; r++) {
        rt_tensor *x = input(2, 4, (float)r);
        run_both(xc, xd, &x);
        rt_tensor_free(x);
        launches(xd, &eager, &last, &replayed);
        assert_int_equal(eager, 3);
        assert_int_equal(replayed, r >= 2);
        assert_int_equal(last, r >= 2 ? 1 : 3);
    }
    /* another batch size: a plan of its own, recorded on its third run */
    for (int r = 0; r < 3; r++) {
        rt_tensor *x = input(5, 4, (float)r);
        run_both(xc, xd, &x);
        rt_tensor_free(x);
        launches(xd, &eager, &last, &replayed);
        assert_int_equal(replayed, r == 2);
    }
    /* back to the first: its recording replays at once */
    rt_tensor *x = input(2, 4, 9.0f);
    run_both(xc, xd, &x);
    rt_tensor_free(x);
    launches(xd, &eager, &last, &replayed);
    assert_true(replayed);
    assert_int_equal(d->weight_loads, 3);
    rt_exec_free(xc);
    rt_exec_free(xd);
    rt_backend_free(cpu);
    sim_free_all(d);
    rt_graph_free(g);
}

static void test_host_read_input(void **state)
{
    (void)state;
    rt_graph *g = test_reshape_graph();
    rt_error err;
    devsim *d = sim_create();
    rt_backend *cpu = rt_cpu_backend_create(1, NULL);
    rt_exec *xc = rt_exec_create(g, cpu, &err), *xd = rt_exec_create(g, &d->base, &err);
    const int64_t shapes[3][2] = {{3, 4}, {4, 3}, {-1, 2}};
    for (int r = 0; r < 6; r++) {
        rt_shape ss = rt_shape_make(1, (int64_t[]){2});
        rt_tensor *in[2] = {input(2, 6, (float)r), rt_tensor_create(RT_DTYPE_I64, &ss, NULL)};
        memcpy(in[1]->data, shapes[r % 3], sizeof shapes[0]);
        run_both(xc, xd, in);
        rt_tensor_free(in[0]);
        rt_tensor_free(in[1]);
        uint64_t eager, last;
        bool replayed;
        launches(xd, &eager, &last, &replayed);
        assert_false(replayed);
        assert_true(last >= 2); /* a changed shape replans after running part of the plan */
    }
    rt_exec_free(xc);
    rt_exec_free(xd);
    rt_backend_free(cpu);
    sim_free_all(d);
    rt_graph_free(g);
}

static void test_host_read_intermediate(void **state)
{
    (void)state;
    rt_graph *g = test_mirror_graph();
    rt_error err;
    devsim *d = sim_create();
    rt_backend *cpu = rt_cpu_backend_create(1, NULL);
    rt_exec *xc = rt_exec_create(g, cpu, &err), *xd = rt_exec_create(g, &d->base, &err);
    for (int r = 0; r < 4; r++) {
        rt_tensor *x = input(r % 2 ? 3 : 5, 4, (float)r);
        run_both(xc, xd, &x);
        rt_tensor_free(x);
        uint64_t eager, last;
        bool replayed;
        launches(xd, &eager, &last, &replayed);
        assert_false(replayed);
        assert_int_equal(eager, 3);
    }
    rt_exec_free(xc);
    rt_exec_free(xd);
    rt_backend_free(cpu);
    sim_free_all(d);
    rt_graph_free(g);
}

/* The CPU path stays as it was: no launch counts, nothing recorded. */
static void test_host_backend_counts_nothing(void **state)
{
    (void)state;
    rt_graph *g = chain_graph();
    rt_error err;
    rt_backend *cpu = rt_cpu_backend_create(1, NULL);
    rt_exec *x = rt_exec_create(g, cpu, &err);
    for (int r = 0; r < 3; r++) {
        rt_tensor *in = input(2, 4, 0.0f), *out = NULL;
        assert_int_equal(rt_exec_run(x, (const rt_tensor *const *)&in, &out, &err), RT_OK);
        rt_tensor_free(in);
        rt_tensor_free(out);
    }
    uint64_t eager, last;
    bool replayed;
    launches(x, &eager, &last, &replayed);
    assert_int_equal(eager, 0);
    assert_int_equal(last, 0);
    assert_false(replayed);
    rt_exec_free(x);
    rt_backend_free(cpu);
    rt_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_and_replay),
        cmocka_unit_test(test_host_read_input),
        cmocka_unit_test(test_host_read_intermediate),
        cmocka_unit_test(test_host_backend_counts_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
