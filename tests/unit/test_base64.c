/* The base64 encoder's AVX-512 path (48-byte blocks, a last block overlapping the one before,
 * masked loads and stores for short spans) against its baseline path and a reference written
 * group by group: every input length up to 2000 bytes and a few large ones, random bytes, at
 * several line lengths, into empty buffers and into buffers that already hold text and have
 * exactly the capacity the encoder reserves. Inputs sit against an unreadable page, outputs
 * against canary bytes, so a read past the input or a write past the capacity is caught without
 * a sanitizer. Every encoding is also decoded back. */
#include "mime_internal.h"
#include "cpu.h"
#include "xorshift.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static int failures, checks;

/* Appends n bytes to b (the test's buffers never fail to grow). */
static void put(mailbars_buf *b, const void *s, size_t n) {
    if (mailbars_buf_append(b, s, n)) abort();
}

/* The reference: 4 characters per 3 bytes (the last group padded with '='), CRLF before each
 * group that would start a line past line_len characters (rounded down to a multiple of 4,
 * at least 4; 0 = one line). */
static void b64_ref(const unsigned char *s, size_t len, size_t line_len, mailbars_buf *out) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t width = line_len ? (line_len >= 4 ? line_len / 4 * 4 : 4) : 0, col = 0;
    for (size_t i = 0; i < len; i += 3) {
        if (width && col == width) put(out, "\r\n", 2), col = 0;
        unsigned long v = (unsigned long)s[i] << 16;
        if (i + 1 < len) v |= (unsigned long)s[i + 1] << 8;
        if (i + 2 < len) v |= s[i + 2];
        char q[4];
        for (int k = 0; k < 4; k++) q[k] = abc[(v >> (18 - 6 * k)) & 63];
        if (i + 1 >= len) q[2] = '=';
        if (i + 2 >= len) q[3] = '=';
        put(out, q, 4);
        col += 4;
    }
}

/* Pages for the inputs between two unreadable ones: an input is copied to start right after
 * the first or to end right before the last. */
static unsigned char *g_region;
static size_t g_region_len, g_page;

static void region_init(size_t max_len) {
    g_page = (size_t)sysconf(_SC_PAGESIZE);
    g_region_len = (max_len + g_page - 1) / g_page * g_page;
    unsigned char *m = mmap(NULL, g_region_len + 2 * g_page, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) abort();
    if (mprotect(m, g_page, PROT_NONE) || mprotect(m + g_page + g_region_len, g_page, PROT_NONE))
        abort();
    g_region = m + g_page;
}

static unsigned char *place(const unsigned char *in, size_t len, int at_end) {
    unsigned char *p = at_end ? g_region + g_region_len - len : g_region;
    if (len) memmove(p, in, len);
    return p;
}

enum { CANARY = 64 };

/* Encodes s with the features `allow` after `prefix`. exact: into a buffer holding the prefix
 * whose capacity is exactly what the encoder reserves, followed by canary bytes that must stay
 * as they were; else into an empty buffer that the encoder grows. 0 if anything is wrong. */
static int encode(const unsigned char *s, size_t len, size_t line_len, const char *prefix,
                  int exact, unsigned allow, mailbars_buf *b) {
    size_t pl = strlen(prefix), total = mb_base64_encoded_len(len, line_len);
    mailbars_buf_init(b);
    char *mem = NULL;
    if (exact) {
        b->cap = pl + total + 1;
        if (!(mem = malloc(b->cap + CANARY))) abort();
        memcpy(mem, prefix, pl + 1);
        memset(mem + b->cap, 0xA5, CANARY);
        b->data = mem;
        b->len = pl;
    }
    mb_cpu_allow(allow);
    int rc = mailbars_base64_encode(s, len, line_len, b);
    mb_cpu_allow(~0u);
    int ok = rc == MAILBARS_OK && b->len == pl + total && b->data && b->data[b->len] == 0;
    if (exact) {
        ok = ok && b->data == mem;
        for (size_t k = 0; ok && k < CANARY; k++) ok = (unsigned char)mem[b->cap + k] == 0xA5;
    }
    return ok;
}

/* Shows where two encodings first differ. */
static void report(const char *what, size_t len, size_t line_len, const char *prefix,
                   const mailbars_buf *got, const mailbars_buf *want) {
    if (++failures > 5) return;
    size_t k = 0;
    while (k < got->len && k < want->len && got->data[k] == want->data[k]) k++;
    fprintf(stderr, "%s: %zu bytes, line_len %zu, prefix \"%s\": %zu vs %zu chars, differ at %zu\n",
            what, len, line_len, prefix, got->len, want->len, k);
    size_t from = k > 20 ? k - 20 : 0;
    fprintf(stderr, "  got:  %.*s\n  want: %.*s\n",
            (int)(got->len - from < 60 ? got->len - from : 60), got->data + from,
            (int)(want->len - from < 60 ? want->len - from : 60), want->data + from);
}

/* One input (copied against a guard page) at one line length into one kind of buffer: the wide
 * path, the baseline path and the reference must agree byte for byte, and decode back. */
static void compare(const unsigned char *in, size_t len, size_t line_len, const char *prefix,
                    int exact) {
    const unsigned char *s = place(in, len, (int)(len & 1));
    mailbars_buf wide, base, want = {0}, dec = {0};
    size_t pl = strlen(prefix);
    int ok_wide = encode(s, len, line_len, prefix, exact, ~0u, &wide);
    int ok_base = encode(s, len, line_len, prefix, exact, 0, &base);
    put(&want, prefix, pl);
    b64_ref(s, len, line_len, &want);
    checks += 3;
    if (!ok_wide || !ok_base) {
        if (++failures <= 5)
            fprintf(stderr,
                    "%zu bytes, line_len %zu, prefix \"%s\", exact %d: %s path broke "
                    "its buffer (length, NUL, capacity or canary)\n",
                    len, line_len, prefix, exact, ok_wide ? "baseline" : "wide");
    } else if (wide.len != want.len || memcmp(wide.data, want.data, want.len)) {
        report("wide vs reference", len, line_len, prefix, &wide, &want);
    } else if (base.len != want.len || memcmp(base.data, want.data, want.len)) {
        report("baseline vs reference", len, line_len, prefix, &base, &want);
    } else if (mailbars_base64_decode(wide.data + pl, wide.len - pl, &dec) != MAILBARS_OK ||
               dec.len != len || (len && memcmp(dec.data, s, len))) {
        if (++failures <= 5)
            fprintf(stderr, "%zu bytes, line_len %zu: decoding does not give the input back\n", len,
                    line_len);
    }
    mailbars_buf_free(&wide);
    mailbars_buf_free(&base);
    mailbars_buf_free(&want);
    mailbars_buf_free(&dec);
}

static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static unsigned rnd(void) {
    return xorshift_next(&rng);
}

/* Line lengths: unbroken, the shortest, under one 64-character block, one block exactly, MIME's
 * 76, ones that round down, and long lines of several blocks. */
static const size_t line_lens[] = {0, 1, 4, 8, 60, 64, 68, 72, 76, 77, 80, 128, 1000};
enum { NLINES = sizeof line_lens / sizeof *line_lens };

/* Every length from 0 to 2000 bytes of fresh random bytes, at every line length, into an empty
 * buffer and into exact buffers after prefixes that shift the output's alignment. */
static void test_lengths(unsigned char *b) {
    static const char *const prefixes[] = {"", "Subject: x\r\n", "abc"};
    for (size_t len = 0; len <= 2000; len++) {
        for (size_t i = 0; i < len; i++) b[i] = (unsigned char)rnd();
        for (size_t k = 0; k < NLINES; k++) {
            compare(b, len, line_lens[k], "", 0);
            for (size_t p = 0; p < 3; p++) compare(b, len, line_lens[k], prefixes[p], 1);
        }
    }
}

/* Large random inputs around whole lines and blocks, and runs of 0x00 and 0xFF (the first and
 * last characters of the alphabet). */
static void test_large(unsigned char *b) {
    static const size_t lens[] = {57 * 1000, 57 * 1000 + 56, 48 * 4096 + 47,
                                  1 << 20,   (1 << 20) + 1,  (1 << 20) + 2};
    for (size_t j = 0; j < sizeof lens / sizeof *lens; j++) {
        for (size_t i = 0; i < lens[j]; i++) b[i] = (unsigned char)rnd();
        for (size_t k = 0; k < NLINES; k++) {
            compare(b, lens[j], line_lens[k], "", 0);
            compare(b, lens[j], line_lens[k], "x", 1);
        }
    }
    for (int fill = 0; fill < 2; fill++) {
        memset(b, fill ? 0xFF : 0x00, 5000);
        for (size_t k = 0; k < NLINES; k++) compare(b, 4999, line_lens[k], "", 1);
    }
}

int main(void) {
    enum { MAX_LEN = (1 << 20) + 2 };
    unsigned char *b = malloc(MAX_LEN);
    if (!b) abort();
    region_init(MAX_LEN);
    mb_cpu_allow(~0u);
    int wide = (mb_cpu_features() & MB_CPU_AVX512) != 0;
    if (!wide)
        printf("base64: no AVX-512 VBMI (CPU or emulator): only the baseline path is tested\n");
    test_lengths(b);
    test_large(b);
    free(b);
    printf("base64: %d checks (%s path), %d failures\n", checks,
           wide ? "AVX-512 and baseline" : "baseline", failures);
    return failures ? 1 : 0;
}
