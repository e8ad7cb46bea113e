/* rt_build_info.c: version text shared by infd-run and infd. It reaches cuda/ through its
 * plain C headers, as rt_session.c does to create the CUDA backend. */
#include "rt_build_info.h"

#include <cblas.h>

#ifdef INFD_HAVE_CUDA
#include "cuda_backend.h"
#include "cuda_device.h"
#endif

void rt_build_info_print(FILE *f, const char *program)
{
    fprintf(f, "%s %s\n", program, INFD_VERSION);
    fprintf(f, "cpu backend: OpenBLAS %s\n", openblas_get_config());
#ifdef INFD_HAVE_CUDA
    char buf[160];
    cuda_runtime_version(buf, sizeof buf);
    int n = cuda_device_count();
    fprintf(f, "cuda support: compiled in (CUDA runtime %s), %d device%s visible\n", buf, n,
            n == 1 ? "" : "s");
    for (int i = 0; i < n; i++)
        if (cuda_device_describe(i, buf, sizeof buf) == 0)
            fprintf(f, "  cuda:%d %s\n", i, buf);
    char lib[320];
    cuda_backend_describe_blas(lib, sizeof lib);
    fprintf(f, "cuda backend GEMMs: %s\n", lib);
    cuda_backend_describe_dnn(lib, sizeof lib);
    fprintf(f, "cuda backend convolutions: %s\n", lib);
#else
    fprintf(f, "cuda support: not compiled in (nvcc was not found at build time)\n");
#endif
#ifdef INFD_HAVE_NCCL
    fprintf(f, "tensor parallelism: NCCL and in-process communicators\n");
#else
    fprintf(f, "tensor parallelism: in-process communicator (NCCL not found at build time)\n");
#endif
}
