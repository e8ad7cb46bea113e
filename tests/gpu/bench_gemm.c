/* bench_gemm.c: cuBLASLt GEMM throughput through the CUDA backend, for make bench-gpu
 * (scripts/bench_gpu.py reads its output). Square MatMul nodes of size N, run through the
 * backend's node_run on device buffers of random values: FP32 and TF32 on F32 tensors (the
 * backend's precision), FP16 and BF16 on F16 / BF16 tensors; each timed over repeats
 * after a warm-up, with the backend synchronized before the clock is read. Prints one
 * JSON line per precision and size; exits 0 without a device, saying why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda_backend.h"
#include "cuda_device.h"

#define REPEAT 20

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A device tensor of n x n random values in [-1, 1). */
static bool device_matrix(rt_backend *be, rt_dtype dt, int64_t n, rt_tensor *t, rt_error *err)
{
    rt_shape s = rt_shape_make(2, (int64_t[]){n, n});
    rt_tensor *h = rt_tensor_create(dt, &s, err);
    if (!h)
        return false;
    unsigned seed = 12345u;
    for (int64_t i = 0; i < n * n; i++) {
        seed = seed * 1103515245u + 12345u;
        rt_dtype_store_f64(dt, h->data, (size_t)i, (double)(seed >> 8) / (1 << 23) - 1.0);
    }
    *t = *h;
    t->owns_data = false;
    t->data = rt_backend_buffer_alloc(be, rt_tensor_nbytes(h));
    bool ok = t->data && be->vt->upload(be, t->data, h->data, rt_tensor_nbytes(h), err) == RT_OK;
    rt_tensor_free(h);
    return ok;
}

static int bench(rt_precision prec, rt_dtype dt, const char *label, int64_t n)
{
    rt_error err = {0};
    rt_backend *be = cuda_backend_create(0, prec, false, &err);
    if (!be) {
        fprintf(stderr, "bench_gemm: %s\n", err.text);
        return 1;
    }
    rt_tensor a, b, y;
    bool ok = device_matrix(be, dt, n, &a, &err) && device_matrix(be, dt, n, &b, &err) &&
              device_matrix(be, dt, n, &y, &err);
    int inputs[2] = {0, 1}, outputs[1] = {2};
    rt_node node = {.name = "matmul", .op = RT_OP_MATMUL, .opset = 13, .n_inputs = 2,
                    .inputs = inputs, .n_outputs = 1, .outputs = outputs};
    const rt_tensor *in[2] = {&a, &b};
    rt_tensor *out[1] = {&y};
    rt_kernel_ctx ctx = {.threads = 1};
    double ms = 0;
    for (int r = -3; ok && r < REPEAT; r++) {
        if (r == 0) {
            ok = rt_backend_synchronize(be, &err) == RT_OK;
            ms = now_ms();
        }
        ok = ok && be->vt->node_run(be, &ctx, &node, in, 2, out, 1, &err) == RT_OK;
    }
    ok = ok && rt_backend_synchronize(be, &err) == RT_OK;
    ms = (now_ms() - ms) / REPEAT;
    if (ok)
        printf("{\"precision\": \"%s\", \"n\": %lld, \"ms\": %.4f, \"tflops\": %.1f}\n", label,
               (long long)n, ms, 2.0 * (double)n * (double)n * (double)n / (ms * 1e9));
    else
        fprintf(stderr, "bench_gemm: %s %lld: %s\n", label, (long long)n, err.text);
    rt_backend_buffer_free(be, a.data);
    rt_backend_buffer_free(be, b.data);
    rt_backend_buffer_free(be, y.data);
    rt_backend_free(be);
    return ok ? 0 : 1;
}

int main(void)
{
    if (cuda_device_count() == 0) {
        printf("bench_gemm: skipped: no CUDA device is visible\n");
        return 0;
    }
    char desc[160] = "?";
    cuda_device_describe(0, desc, sizeof desc);
    printf("{\"device\": \"%s\"}\n", desc);
    int failed = 0;
    const int64_t sizes[] = {4096, 8192};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        failed |= bench(RT_PRECISION_FP32, RT_DTYPE_F32, "fp32", sizes[i]);
        failed |= bench(RT_PRECISION_TF32, RT_DTYPE_F32, "tf32", sizes[i]);
        failed |= bench(RT_PRECISION_FP16, RT_DTYPE_F16, "fp16", sizes[i]);
        failed |= bench(RT_PRECISION_BF16, RT_DTYPE_BF16, "bf16", sizes[i]);
    }
    return failed;
}
