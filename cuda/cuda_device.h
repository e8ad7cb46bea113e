/* cuda_device.h: device discovery for the CUDA backend, callable from C without CUDA
 * headers. Built only when nvcc is found (INFD_HAVE_CUDA). */
#ifndef CUDA_DEVICE_H
#define CUDA_DEVICE_H

#include <stddef.h>

/* Number of usable CUDA devices; 0 when no driver or device is present. */
int cuda_device_count(void);
/* Writes "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" for device i into buf; returns 0 on
 * success, -1 if the device cannot be queried. */
int cuda_device_describe(int i, char *buf, size_t size);
/* Version of the CUDA runtime linked in, as "13.0". */
void cuda_runtime_version(char *buf, size_t size);

#endif
