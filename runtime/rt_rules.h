/* rt_rules.h: business rules that turn a model's score into an action label: ordered
 * thresholds, e.g. p >= 0.9 -> "spam_folder", p >= 0.5 -> "flag_for_review", else "inbox".
 *
 * Thresholds are stored and compared in FP32, the type of the scores they apply to, so a
 * score sent or computed as 0.9f meets the threshold 0.9. */
#ifndef RT_RULES_H
#define RT_RULES_H

#include "rt_status.h"

#define RT_RULES_MAX 16

typedef struct rt_rules {
    int n;
    float min[RT_RULES_MAX];   /* strictly decreasing */
    char *label[RT_RULES_MAX];
    char *fallback;            /* when the score is below every min */
    char *nan_label;           /* when the score is NaN */
} rt_rules;

/* Builds rules from n (min[i], label[i]) pairs (0 <= n <= RT_RULES_MAX), finite mins in
 * strictly decreasing order once rounded to FP32, non-empty labels. nan_label NULL: NaN
 * scores get the fallback. Copies the strings. On failure r holds nothing to free. */
rt_status rt_rules_init(rt_rules *r, int n, const double *min, const char *const *label,
                        const char *fallback, const char *nan_label, rt_error *err);
void rt_rules_free(rt_rules *r); /* NULL-safe; frees the contents */

/* The label of the first rule with p >= min, else the fallback; NaN: nan_label. */
const char *rt_rules_apply(const rt_rules *r, float p);

#endif
