/* rt_rules.c: threshold rules from scores to labels. */
#include "rt_rules.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static rt_status dup_label(char **out, const char *s, const char *what, rt_error *err)
{
    if (!s || !s[0])
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s must be a non-empty string", what);
    if (!(*out = strdup(s)))
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    return RT_OK;
}

rt_status rt_rules_init(rt_rules *r, int n, const double *min, const char *const *label,
                        const char *fallback, const char *nan_label, rt_error *err)
{
    memset(r, 0, sizeof *r);
    if (n < 0 || n > RT_RULES_MAX)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "between 0 and %d rules are allowed, not %d",
                            RT_RULES_MAX, n);
    rt_status st = RT_OK;
    for (int i = 0; st == RT_OK && i < n; i++) {
        if (!isfinite(min[i]) || fabs(min[i]) > 3e38)
            st = rt_error_set(err, RT_ERR_INVALID_ARG, "rule %d: min must be a finite FP32 number", i);
        else if (i > 0 && !((float)min[i] < r->min[i - 1]))
            st = rt_error_set(err, RT_ERR_INVALID_ARG,
                              "rule %d: min %g must be below the previous rule's %g (rules are "
                              "listed from the highest threshold down)", i, min[i], min[i - 1]);
        else {
            r->min[i] = (float)min[i];
            r->n = i + 1;
            st = dup_label(&r->label[i], label[i], "a rule's label", err);
        }
    }
    if (st == RT_OK)
        st = dup_label(&r->fallback, fallback, "the default label", err);
    if (st == RT_OK)
        st = dup_label(&r->nan_label, nan_label ? nan_label : fallback, "the NaN label", err);
    if (st != RT_OK)
        rt_rules_free(r);
    return st;
}

void rt_rules_free(rt_rules *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++)
        free(r->label[i]);
    free(r->fallback);
    free(r->nan_label);
    memset(r, 0, sizeof *r);
}

const char *rt_rules_apply(const rt_rules *r, float p)
{
    if (isnan(p))
        return r->nan_label;
    for (int i = 0; i < r->n; i++)
        if (p >= r->min[i])
            return r->label[i];
    return r->fallback;
}
