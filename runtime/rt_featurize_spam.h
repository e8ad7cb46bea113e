/* rt_featurize_spam.h: raw e-mail text -> the 57 UCI Spambase features, as
 * data/spambase/README.md defines them (docs/spam.md: the definitions and edge cases).
 *
 * Output order is the CSV's column order: 48 word frequencies, 6 character frequencies,
 * capitalAve, capitalLong, capitalTotal. One pass over the bytes, no allocation. */
#ifndef RT_FEATURIZE_SPAM_H
#define RT_FEATURIZE_SPAM_H

#include <stddef.h>

#define RT_SPAM_N_FEATURES 57

/* Writes the features of text[0..len) (any bytes; NUL is an ordinary character) into
 * out[0..RT_SPAM_N_FEATURES). Thread-safe. */
void rt_featurize_spam(const char *text, size_t len, float *out);

#endif
