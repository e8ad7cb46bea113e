/* rt_path.c: paths a model names, kept inside the model's directory (rt_path.h). */
#include "rt_path.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool rt_path_is_confined(const char *loc)
{
    if (!*loc || loc[0] == '/')
        return false;
    for (const char *p = loc; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += n;
        p += *p == '/';
    }
    return true;
}

char *rt_path_resolve_inside(const char *base_dir, const char *loc, const char *what,
                             rt_error *err)
{
    if (!rt_path_is_confined(loc)) {
        rt_error_set(err, RT_ERR_MODEL, "%s '%s' must be a relative path inside the model "
                     "directory", what, loc);
        return NULL;
    }
    char *joined = NULL, *real_base = realpath(base_dir, NULL), *real = NULL;
    if (!real_base) {
        rt_error_set(err, RT_ERR_IO, "model directory '%s': %s", base_dir, strerror(errno));
    } else if (asprintf(&joined, "%s/%s", real_base, loc) < 0) {
        joined = NULL;
        rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    } else if (!(real = realpath(joined, NULL))) {
        rt_error_set(err, RT_ERR_IO, "%s '%s': %s", what, loc, strerror(errno));
    } else if (strncmp(real, real_base, strlen(real_base)) != 0 ||
               (real[strlen(real_base)] != '/' && strcmp(real_base, "/") != 0)) {
        rt_error_set(err, RT_ERR_MODEL, "%s '%s' resolves outside the model directory", what,
                     loc);
        free(real);
        real = NULL;
    }
    free(joined);
    free(real_base);
    return real;
}
