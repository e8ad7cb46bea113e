/* rt_featurize_spam.c: the Spambase featurizer (definitions in docs/spam.md).
 *
 * One pass over the bytes. A word (a maximal run of ASCII letters and digits) is encoded
 * while it is read as a base-37 number of its lowercased characters (1..36 per character,
 * so different lengths never collide); the 48 words are at most 10 characters long, whose
 * codes fit in 64 bits, and are found in a small open-addressing table built once. */
#include "rt_featurize_spam.h"

#include <pthread.h>
#include <stdint.h>

#define N_WORDS 48
#define N_CHARS 6
#define MAX_WORD 10
#define TABLE_SIZE 128 /* power of two, over twice N_WORDS */

/* CSV column order (num3d is "3d", num000 is "000", ...). */
static const char *const words[N_WORDS] = {
    "make", "address", "all", "3d", "our", "over", "remove", "internet", "order", "mail",
    "receive", "will", "people", "report", "addresses", "free", "business", "email", "you",
    "credit", "your", "font", "000", "money", "hp", "hpl", "george", "650", "lab", "labs",
    "telnet", "857", "data", "415", "85", "technology", "1999", "parts", "pm", "direct", "cs",
    "meeting", "original", "project", "re", "edu", "table", "conference"};
static const char chars[N_CHARS] = {';', '(', '[', '!', '$', '#'};

static struct {
    uint8_t code[256];       /* 1..36 for [a-z0-9] in either case, 0 for other bytes */
    uint8_t char_slot[256];  /* 1 + index into chars, 0 for other bytes */
    uint64_t key[TABLE_SIZE]; /* 0: empty slot */
    uint8_t word[TABLE_SIZE];
} tab;
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static unsigned slot_of(uint64_t key)
{
    return (unsigned)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 57);
}

static void build_tables(void)
{
    for (int c = 0; c < 26; c++)
        tab.code['a' + c] = tab.code['A' + c] = (uint8_t)(1 + c);
    for (int c = 0; c < 10; c++)
        tab.code['0' + c] = (uint8_t)(27 + c);
    for (int i = 0; i < N_CHARS; i++)
        tab.char_slot[(unsigned char)chars[i]] = (uint8_t)(1 + i);
    for (int w = 0; w < N_WORDS; w++) {
        uint64_t key = 0;
        for (const char *p = words[w]; *p; p++)
            key = key * 37 + tab.code[(unsigned char)*p];
        unsigned s = slot_of(key);
        while (tab.key[s])
            s = (s + 1) & (TABLE_SIZE - 1);
        tab.key[s] = key;
        tab.word[s] = (uint8_t)w;
    }
}

static int find_word(uint64_t key)
{
    for (unsigned s = slot_of(key); tab.key[s]; s = (s + 1) & (TABLE_SIZE - 1))
        if (tab.key[s] == key)
            return tab.word[s];
    return -1;
}

void rt_featurize_spam(const char *text, size_t len, float *out)
{
    pthread_once(&tab_once, build_tables);
    uint64_t word_count[N_WORDS] = {0}, char_count[1 + N_CHARS] = {0};
    uint64_t n_words = 0, key = 0, caps = 0, runs = 0, longest = 0, run = 0;
    size_t wlen = 0;
    const unsigned char *p = (const unsigned char *)text;
    /* one byte past the end acts as a separator that ends the last word and run */
    for (size_t i = 0; i <= len; i++) {
        unsigned c = i < len ? p[i] : 0;
        unsigned code = tab.code[c];
        if (code) {
            key = key * 37 + code; /* wraps for long words, which never match */
            wlen++;
        } else if (wlen) {
            n_words++;
            int w = wlen <= MAX_WORD ? find_word(key) : -1;
            if (w >= 0)
                word_count[w]++;
            wlen = 0;
            key = 0;
        }
        if (c - 'A' < 26u) {
            run++;
        } else if (run) {
            caps += run;
            runs++;
            longest = run > longest ? run : longest;
            run = 0;
        }
        char_count[tab.char_slot[c]] += i < len;
    }
    for (int w = 0; w < N_WORDS; w++)
        out[w] = n_words ? (float)(100.0 * (double)word_count[w] / (double)n_words) : 0.0f;
    for (int k = 0; k < N_CHARS; k++)
        out[N_WORDS + k] = len ? (float)(100.0 * (double)char_count[1 + k] / (double)len) : 0.0f;
    out[N_WORDS + N_CHARS] = runs ? (float)((double)caps / (double)runs) : 0.0f;
    out[N_WORDS + N_CHARS + 1] = (float)longest;
    out[N_WORDS + N_CHARS + 2] = (float)caps;
}
