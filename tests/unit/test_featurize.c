/* test_featurize.c: the Spambase featurizer against vectors computed by hand (empty text,
 * only capitals, UTF-8, no words, word boundaries, NUL bytes, CSV column order) and, for a
 * 1 MB e-mail, against a plain counting implementation written here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt_featurize_spam.h"

#define N RT_SPAM_N_FEATURES

/* The CSV header's columns, in order (data/spambase/README.md). */
static const char *const columns[N] = {
    "make", "address", "all", "num3d", "our", "over", "remove", "internet", "order", "mail",
    "receive", "will", "people", "report", "addresses", "free", "business", "email", "you",
    "credit", "your", "font", "num000", "money", "hp", "hpl", "george", "num650", "lab", "labs",
    "telnet", "num857", "data", "num415", "num85", "technology", "num1999", "parts", "pm",
    "direct", "cs", "meeting", "original", "project", "re", "edu", "table", "conference",
    "charSemicolon", "charRoundbracket", "charSquarebracket", "charExclamation", "charDollar",
    "charHash", "capitalAve", "capitalLong", "capitalTotal"};

static int col(const char *name)
{
    for (int i = 0; i < N; i++)
        if (strcmp(columns[i], name) == 0)
            return i;
    fail_msg("no column %s", name);
    return -1;
}

/* The word a word_freq column counts: "num3d" -> "3d", "make" -> "make". */
static const char *column_word(int i)
{
    return strncmp(columns[i], "num", 3) == 0 ? columns[i] + 3 : columns[i];
}

typedef struct {
    const char *name;
    double value;
} expect;

/* Features of text[0..len) must be exactly `want` (by name), every other column 0. */
static void check(const char *text, size_t len, const expect *want, int n_want)
{
    float got[N + 1];
    got[N] = 12345.0f; /* nothing past the 57 features is written */
    rt_featurize_spam(text, len, got);
    double full[N] = {0};
    for (int k = 0; k < n_want; k++)
        full[col(want[k].name)] = want[k].value;
    for (int i = 0; i < N; i++)
        if (fabs(got[i] - full[i]) > 1e-5 * fmax(1.0, fabs(full[i])))
            fail_msg("%s: got %.7g, want %.7g", columns[i], got[i], full[i]);
    assert_true(got[N] == 12345.0f);
}

#define CHECK(text, ...)                                                          \
    do {                                                                          \
        const expect want_[] = {__VA_ARGS__};                                     \
        check(text, sizeof(text) - 1, want_, (int)(sizeof want_ / sizeof want_[0])); \
    } while (0)

static void test_empty(void **state)
{
    (void)state;
    check("", 0, NULL, 0);
    check(NULL, 0, NULL, 0);
}

static void test_simple_email(void **state)
{
    (void)state;
    /* 5 words (make, money, now, free, money), 28 bytes, capitals "M" and "FREE" */
    CHECK("Make money now: FREE money!!", {"make", 20}, {"money", 40}, {"free", 20},
          {"charExclamation", 100.0 * 2 / 28}, {"capitalAve", 2.5}, {"capitalLong", 4},
          {"capitalTotal", 5});
}

static void test_only_capitals(void **state)
{
    (void)state;
    /* 3 words; 13 bytes; runs of 2, 3, 6 capitals */
    CHECK("HP HPL GEORGE", {"hp", 100.0 / 3}, {"hpl", 100.0 / 3}, {"george", 100.0 / 3},
          {"capitalAve", 11.0 / 3}, {"capitalLong", 6}, {"capitalTotal", 11});
    /* one word that is no feature word */
    CHECK("ABC", {"capitalAve", 3}, {"capitalLong", 3}, {"capitalTotal", 3});
}

static void test_utf8(void **state)
{
    (void)state;
    /* "Grüße! Café 3D $5": ü, ß, é are two bytes each and end words; words gr, e, caf, 3d,
     * 5; 20 bytes; capitals G, C, D in runs of 1 */
    CHECK("Gr\xc3\xbc\xc3\x9f" "e! Caf\xc3\xa9 3D $5", {"num3d", 20},
          {"charExclamation", 5}, {"charDollar", 5}, {"capitalAve", 1}, {"capitalLong", 1},
          {"capitalTotal", 3});
    /* a non-ASCII byte between letters splits the word: "fr\xe9" "e" is "fr" + "e" */
    CHECK("fr\xe9" "e free", {"free", 100.0 / 3});
}

static void test_no_words_no_capitals(void **state)
{
    (void)state;
    /* 13 bytes, no word, no capital: word frequencies and capital features are 0 */
    CHECK("!!! ;;; ((( $", {"charExclamation", 300.0 / 13}, {"charSemicolon", 300.0 / 13},
          {"charRoundbracket", 300.0 / 13}, {"charDollar", 100.0 / 13});
    CHECK("[#]", {"charSquarebracket", 100.0 / 3}, {"charHash", 100.0 / 3});
}

static void test_word_boundaries(void **state)
{
    (void)state;
    /* words: re Re RE re re2 are 1 000 85 857 8 57 telnet hpl hp com (16) */
    CHECK("re:Re RE-re re2 are 1,000 85 857 8.57 telnet@hpl.hp.com", {"re", 25},
          {"num000", 6.25}, {"num85", 6.25}, {"num857", 6.25}, {"telnet", 6.25},
          {"hpl", 6.25}, {"hp", 6.25}, {"capitalAve", 1.5}, {"capitalLong", 2},
          {"capitalTotal", 3});
    /* longer words never match a shorter feature word; 10-letter words do match */
    CHECK("conferences technologyX conference makemakemakemakemakemake",
          {"conference", 25}, {"capitalAve", 1}, {"capitalLong", 1}, {"capitalTotal", 1});
    /* NUL is an ordinary separator byte */
    check("free\0free", 9, (const expect[]){{"free", 100}}, 1);
}

static void test_column_order(void **state)
{
    (void)state;
    /* the word of column i appears i+1 times: each frequency tells its column apart */
    char text[8192];
    size_t len = 0;
    for (int i = 0; i < 48; i++)
        for (int k = 0; k <= i; k++)
            len += (size_t)snprintf(text + len, sizeof text - len, "%s ", column_word(i));
    expect want[48];
    for (int i = 0; i < 48; i++)
        want[i] = (expect){columns[i], 100.0 * (i + 1) / (48 * 49 / 2)};
    check(text, len, want, 48);
}

/* ---- a 1 MB e-mail against plain counting ---- */

static void reference(const char *s, size_t len, double *out)
{
    static const char specials[] = ";([!$#";
    memset(out, 0, sizeof(double) * N);
    double words = 0, caps = 0, runs = 0, longest = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') ||
                           (s[j] >= '0' && s[j] <= '9')))
            j++;
        if (j == i) {
            i++;
            continue;
        }
        words++;
        char w[32];
        if (j - i < sizeof w) {
            for (size_t k = i; k < j; k++)
                w[k - i] = (char)(s[k] >= 'A' && s[k] <= 'Z' ? s[k] - 'A' + 'a' : s[k]);
            w[j - i] = '\0';
            for (int c = 0; c < 48; c++)
                if (strcmp(w, column_word(c)) == 0)
                    out[c]++;
        }
        i = j;
    }
    for (int c = 0; c < 48; c++)
        out[c] = words ? 100 * out[c] / words : 0;
    for (size_t k = 0; k < len; k++)
        for (int c = 0; c < 6; c++)
            out[48 + c] += s[k] == specials[c];
    for (int c = 0; c < 6; c++)
        out[48 + c] = 100 * out[48 + c] / (double)len;
    for (i = 0; i < len;) {
        size_t j = i;
        while (j < len && s[j] >= 'A' && s[j] <= 'Z')
            j++;
        if (j > i) {
            runs++;
            caps += (double)(j - i);
            longest = fmax(longest, (double)(j - i));
            i = j;
        } else {
            i++;
        }
    }
    out[54] = runs ? caps / runs : 0;
    out[55] = longest;
    out[56] = caps;
}

static void test_1mb_email(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "make ", "MONEY ", "Free!", " $", "(", "[x] ", "#1 ", ";", "\xc3\xbc" "ber ", "3D ",
        "hp.com\n", "George ", "conference ", "ABCDEFGHIJKL ", "you ", "your ", "re: ",
        "1,000 ", "85 ", "edu ", "technology ", "caf\xc3\xa9 ", "Dear friend, ", "\t",
        "CLICK HERE ", "email ", "999 ", "a", "B", "internet "};
    const size_t n_pieces = sizeof pieces / sizeof pieces[0], size = 1 << 20;
    char *text = malloc(size);
    assert_non_null(text);
    uint32_t seed = 12345;
    size_t len = 0;
    while (len < size) {
        seed = seed * 1664525u + 1013904223u;
        const char *p = pieces[(seed >> 8) % n_pieces];
        size_t n = strlen(p);
        n = n < size - len ? n : size - len;
        memcpy(text + len, p, n);
        len += n;
    }
    double want[N];
    reference(text, len, want);
    float got[N];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rt_featurize_spam(text, len, got);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (int i = 0; i < N; i++)
        if (fabs(got[i] - want[i]) > 1e-6 * fmax(1.0, fabs(want[i])))
            fail_msg("%s: got %.9g, want %.9g", columns[i], got[i], want[i]);
    assert_true(want[col("make")] > 0 && want[col("capitalLong")] >= 12);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    print_message("1 MB e-mail featurized in %.2f ms\n", ms);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_simple_email),
        cmocka_unit_test(test_only_capitals),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_no_words_no_capitals),
        cmocka_unit_test(test_word_boundaries),
        cmocka_unit_test(test_column_order),
        cmocka_unit_test(test_1mb_email),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
