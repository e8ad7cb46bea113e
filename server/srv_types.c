/* srv_types.c: one table mapping runtime dtypes to KServe and Triton type names. */
#include "srv_types.h"

#include <string.h>

static const struct {
    rt_dtype dt;
    const char *kserve, *triton;
} type_names[] = {
    {RT_DTYPE_BOOL, "BOOL", "TYPE_BOOL"},     {RT_DTYPE_U8, "UINT8", "TYPE_UINT8"},
    {RT_DTYPE_U16, "UINT16", "TYPE_UINT16"},  {RT_DTYPE_U32, "UINT32", "TYPE_UINT32"},
    {RT_DTYPE_U64, "UINT64", "TYPE_UINT64"},  {RT_DTYPE_I8, "INT8", "TYPE_INT8"},
    {RT_DTYPE_I16, "INT16", "TYPE_INT16"},    {RT_DTYPE_I32, "INT32", "TYPE_INT32"},
    {RT_DTYPE_I64, "INT64", "TYPE_INT64"},    {RT_DTYPE_F16, "FP16", "TYPE_FP16"},
    {RT_DTYPE_F32, "FP32", "TYPE_FP32"},      {RT_DTYPE_F64, "FP64", "TYPE_FP64"},
    {RT_DTYPE_BF16, "BF16", "TYPE_BF16"},     {RT_DTYPE_BYTES, "BYTES", "TYPE_STRING"},
};
#define N_TYPES (sizeof type_names / sizeof type_names[0])

rt_dtype srv_dtype_from_kserve(const char *name)
{
    for (size_t i = 0; name && i < N_TYPES; i++)
        if (strcmp(type_names[i].kserve, name) == 0)
            return type_names[i].dt;
    return RT_DTYPE_UNDEFINED;
}

rt_dtype srv_dtype_from_triton(const char *name)
{
    for (size_t i = 0; name && i < N_TYPES; i++)
        if (strcmp(type_names[i].triton, name) == 0)
            return type_names[i].dt;
    return RT_DTYPE_UNDEFINED;
}

const char *srv_dtype_kserve_name(rt_dtype dt)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (type_names[i].dt == dt)
            return type_names[i].kserve;
    return NULL;
}

const char *srv_dtype_triton_name(rt_dtype dt)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (type_names[i].dt == dt)
            return type_names[i].triton;
    return NULL;
}
