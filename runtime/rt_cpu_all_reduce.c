/* rt_cpu_all_reduce.c: CPU kernel of infd.AllReduce (rt_fused.h): the input copied into the
 * output (unless they share a buffer), then summed there in place over the ranks of the
 * tensor-parallel group through the session's collective. */
#include <string.h>

#include "rt_cpu.h"

RT_CPU_KERNEL(rt_cpu_all_reduce)
{
    (void)n_in, (void)n_out;
    if (!ctx->all_reduce)
        return rt_error_set(err, RT_ERR_UNSUPPORTED,
                            "node '%s' (infd.AllReduce) runs only in a tensor-parallel session",
                            node->name);
    size_t n = (size_t)rt_tensor_numel(out[0]);
    if (out[0]->data != in[0]->data && n)
        memcpy(out[0]->data, in[0]->data, n * sizeof(float));
    return ctx->all_reduce(ctx->all_reduce_arg, out[0]->data, n, err);
}
