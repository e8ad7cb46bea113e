/* fuzz_onnx.c: libFuzzer harness for the untrusted-bytes readers of the ONNX loader:
 * every input must either load (and be freed) or fail with an error, never crash or leak.
 * The same bytes also go through the TensorProto decoder used for test data files. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "rt_onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rt_error err = {0};
    rt_graph_free(rt_onnx_load_bytes(data, size, NULL, &err));
    char *name = NULL;
    rt_tensor_free(rt_tensorproto_decode(data, size, &name, &err));
    free(name);
    return 0;
}
