/* cuda_dnn.c: opens cuDNN with dlopen and fills the function table (cuda_dnn.h). */
#include "cuda_dnn.h"

#include <stdio.h>

#if CUDA_HAVE_CUDNN
#include <pthread.h>

#include "cuda_dl.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* the loader's search first (LD_LIBRARY_PATH, where a PyTorch image's cuDNN wheel is put,
 * and the binary's run path), then the toolkit we were built with (CUDA_LIBDIR, set by
 * the Makefile) */
static const char *const candidates[] = {
    "libcudnn.so." STR(CUDNN_MAJOR),
#ifdef CUDA_LIBDIR
    CUDA_LIBDIR "/libcudnn.so." STR(CUDNN_MAJOR),
#endif
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static cuda_dnn table;
static bool loaded;
static char why[320];
static const char *path;

#define SYM(field, name) {(void **)&table.field, name}
static const cuda_dl_sym syms[] = {
    SYM(get_version, "cudnnGetVersion"),
    SYM(error_string, "cudnnGetErrorString"),
    SYM(create, "cudnnCreate"),
    SYM(destroy, "cudnnDestroy"),
    SYM(set_stream, "cudnnSetStream"),
    SYM(tensor_create, "cudnnCreateTensorDescriptor"),
    SYM(tensor_set, "cudnnSetTensor4dDescriptor"),
    SYM(tensor_destroy, "cudnnDestroyTensorDescriptor"),
    SYM(filter_create, "cudnnCreateFilterDescriptor"),
    SYM(filter_set, "cudnnSetFilter4dDescriptor"),
    SYM(filter_destroy, "cudnnDestroyFilterDescriptor"),
    SYM(conv_create, "cudnnCreateConvolutionDescriptor"),
    SYM(conv_set, "cudnnSetConvolution2dDescriptor"),
    SYM(conv_set_groups, "cudnnSetConvolutionGroupCount"),
    SYM(conv_set_math, "cudnnSetConvolutionMathType"),
    SYM(conv_destroy, "cudnnDestroyConvolutionDescriptor"),
    SYM(act_create, "cudnnCreateActivationDescriptor"),
    SYM(act_set, "cudnnSetActivationDescriptor"),
    SYM(act_destroy, "cudnnDestroyActivationDescriptor"),
    SYM(algo_max, "cudnnGetConvolutionForwardAlgorithmMaxCount"),
    SYM(algo_get, "cudnnGetConvolutionForwardAlgorithm_v7"),
    SYM(workspace_size, "cudnnGetConvolutionForwardWorkspaceSize"),
    SYM(forward, "cudnnConvolutionForward"),
    SYM(forward_bias_act, "cudnnConvolutionBiasActivationForward"),
};
#undef SYM

static void load(void)
{
    if (!cuda_dl_load("cuDNN (libcudnn.so." STR(CUDNN_MAJOR) ")", candidates,
                      sizeof candidates / sizeof *candidates, syms, sizeof syms / sizeof *syms,
                      &path, why, sizeof why))
        return;
    /* the soname fixes the major version; a library that says otherwise is not ours */
    size_t v = table.get_version();
    if (v / 10000 != CUDNN_MAJOR) {
        snprintf(why, sizeof why, "%s is cuDNN %zu.%zu.%zu, built for %d.x", path, v / 10000,
                 v / 100 % 100, v % 100, CUDNN_MAJOR);
        return;
    }
    loaded = true;
}

const cuda_dnn *cuda_dnn_get(rt_error *err)
{
    pthread_once(&once, load);
    if (!loaded) {
        rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda: %s", why);
        return NULL;
    }
    return &table;
}

void cuda_dnn_describe(char *buf, size_t size)
{
    const cuda_dnn *dnn = cuda_dnn_get(NULL);
    if (!dnn) {
        snprintf(buf, size, "direct kernels (%s)", why);
        return;
    }
    size_t v = dnn->get_version();
    snprintf(buf, size, "cuDNN %zu.%zu.%zu (%s)", v / 10000, v / 100 % 100, v % 100, path);
}
#else
void cuda_dnn_describe(char *buf, size_t size)
{
    snprintf(buf, size, "direct kernels (cuDNN is not available in this build: cudnn.h was "
                        "not found)");
}
#endif
