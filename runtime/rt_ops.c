/* rt_ops.c: the operator table built from RT_OP_LIST: names and infer dispatch. */
#include "rt_ops.h"

#include <string.h>

#include "rt_graph.h"

static const struct {
    const char *name;
    rt_infer_fn infer;
} op_table[RT_OP_COUNT] = {
#define RT_OP_ROW(e, name, infer) [RT_OP_##e] = {name, infer},
    RT_OP_LIST(RT_OP_ROW)
#undef RT_OP_ROW
};

const char *rt_op_name(rt_op op)
{
    return (unsigned)op < RT_OP_COUNT ? op_table[op].name : "?";
}

rt_op rt_op_from_name(const char *op_type)
{
    /* the optimizer's fused ops are internal: a model cannot name them */
    if (strncmp(op_type, "infd.", 5) == 0)
        return RT_OP_COUNT;
    for (int i = 0; i < RT_OP_COUNT; i++)
        if (strcmp(op_table[i].name, op_type) == 0)
            return (rt_op)i;
    return RT_OP_COUNT;
}

rt_status rt_op_infer(const rt_node *node, const rt_tensor *const *in, int n_in, rt_tensor *out,
                      int n_out, rt_error *err)
{
    return op_table[node->op].infer(node, in, n_in, out, n_out, err);
}
