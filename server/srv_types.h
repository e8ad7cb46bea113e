/* srv_types.h: names of element types in the server's two vocabularies: KServe v2
 * datatypes ("FP32", "BYTES") and Triton model-config types ("TYPE_FP32", "TYPE_STRING"). */
#ifndef SRV_TYPES_H
#define SRV_TYPES_H

#include <stdbool.h>

#include "rt_dtype.h"

/* RT_DTYPE_UNDEFINED when the name is not a KServe / Triton type we serve. */
rt_dtype srv_dtype_from_kserve(const char *name);
rt_dtype srv_dtype_from_triton(const char *name);
/* Static strings; NULL for a dtype with no name in that vocabulary. */
const char *srv_dtype_kserve_name(rt_dtype dt);
const char *srv_dtype_triton_name(rt_dtype dt);

#endif
