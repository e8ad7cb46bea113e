/* cuda_device.cu: device discovery through the CUDA runtime API (see cuda_device.h). */
#include <cuda_runtime.h>
#include <stdio.h>

extern "C" {
#include "cuda_device.h"
}

extern "C" int cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no driver" error */
        return 0;
    }
    return n;
}

extern "C" int cuda_device_describe(int i, char *buf, size_t size)
{
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    snprintf(buf, size, "%s (sm_%d%d, %.1f GiB)", prop.name, prop.major, prop.minor,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return 0;
}

extern "C" void cuda_runtime_version(char *buf, size_t size)
{
    int v = 0;
    cudaRuntimeGetVersion(&v);
    snprintf(buf, size, "%d.%d", v / 1000, (v % 1000) / 10);
}
