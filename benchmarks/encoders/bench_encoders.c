/* Encoder throughput in MB/s of input: memcpy, quoted-printable, base64 and RFC 2047 encoded
 * words on the same generated text, plus whole messages per second. Each figure is the median
 * of several timed runs, each run repeating passes for at least --min-ms milliseconds.
 *
 *   bench_encoders [--size MB] [--runs N] [--min-ms MS]
 */
#include "mailbars.h"
#include "cpu.h" /* mb_cpu_allow: base64 with and without its AVX-512 path */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Deterministic mail-like text: words, ~72-character lines, CRLF. `nonascii` in 0..100 is the
 * percentage of words taken from the non-ASCII list. */
static char *make_text(size_t size, int nonascii, const char *const *alt, size_t nalt) {
    static const char *const words[] = {"the",     "order",  "shipped", "today",    "your",
                                        "account", "please", "review",  "invoice",  "number",
                                        "thank",   "you",    "for",     "choosing", "us",
                                        "details", "below",  "hello"};
    char *t = malloc(size + 64);
    size_t n = 0, col = 0;
    unsigned seed = 42;
    while (n < size) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = (seed >> 16) & 0x7fff;
        const char *w = (int)(r % 100) < nonascii ? alt[r % nalt] : words[r % 18];
        size_t wl = strlen(w);
        if (n + wl + 3 > size) break;
        if (col + wl > 72) {
            t[n++] = '\r', t[n++] = '\n';
            col = 0;
        } else if (col) {
            t[n++] = ' ', col++;
        }
        memcpy(t + n, w, wl);
        n += wl, col += wl;
    }
    t[n] = 0;
    return t;
}

typedef void (*pass_fn)(const char *src, size_t n, mailbars_buf *out);

static volatile unsigned char g_sink;

static void pass_memcpy(const char *src, size_t n, mailbars_buf *out) {
    mailbars_buf_reset(out);
    mailbars_buf_reserve(out, n);
    memcpy(out->data, src, n);
    out->len = n;
    g_sink ^= (unsigned char)out->data[n / 2];
}
static void pass_qp(const char *src, size_t n, mailbars_buf *out) {
    mailbars_buf_reset(out);
    mailbars_qp_encode(src, n, 1, out);
}
static void pass_b64(const char *src, size_t n, mailbars_buf *out) {
    mailbars_buf_reset(out);
    mailbars_base64_encode(src, n, 76, out);
}
/* Header-sized values (~120 bytes, cut at character boundaries), as a Subject is encoded. */
static void pass_2047(const char *src, size_t n, mailbars_buf *out) {
    size_t i = 0;
    while (i < n) {
        size_t e = i + 120 < n ? i + 120 : n;
        while (e < n && ((unsigned char)src[e] & 0xC0) == 0x80) e++;
        mailbars_buf_reset(out);
        mailbars_rfc2047_encode(src + i, e - i, NULL, 9, out, NULL);
        i = e;
    }
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median MB/s (of input bytes) over `runs` runs of at least `min_s` seconds each. */
static double measure(pass_fn f, const char *src, size_t n, int runs, double min_s) {
    mailbars_buf out = {0};
    double rates[64];
    f(src, n, &out); /* warm up: output capacity reserved once */
    for (int r = 0; r < runs; r++) {
        size_t passes = 0;
        double t0 = now_s(), t;
        do {
            f(src, n, &out);
            passes++;
        } while ((t = now_s() - t0) < min_s);
        rates[r] = (double)n * (double)passes / t / 1e6;
    }
    qsort(rates, (size_t)runs, sizeof rates[0], cmp_d);
    mailbars_buf_free(&out);
    return rates[runs / 2];
}

/* Whole messages per second: a multipart SES-style message, QP text and HTML. */
static double measure_messages(int runs, double min_s) {
    mailbars_message *m = mailbars_message_new();
    mailbars_buf out = {0};
    const char *text = "Dear Customer,\n\nYour order #12345 has shipped. Track it here:\n"
                       "https://example.com/track/12345\n\nThank you for choosing us!\n";
    const char *html = "<html><body><h1>Dear Customer,</h1><p>Your order <b>#12345</b> has "
                       "shipped.</p><p><a href=\"https://example.com/track/12345\">Track "
                       "it</a></p><p>Thank you for choosing us!</p></body></html>\n";
    double rates[64];
    for (int r = 0; r < runs; r++) {
        size_t count = 0;
        double t0 = now_s(), t;
        do {
            mailbars_message_reset(m);
            mailbars_message_add_address(m, MAILBARS_FROM, "Shop <shop@example.com>", 23, NULL);
            mailbars_message_add_address(m, MAILBARS_TO, "Jane Doe <jane@example.com>", 27, NULL);
            mailbars_message_set_subject(m, "Your order #12345 has shipped \xe2\x9c\x93", 33, NULL);
            mailbars_message_set_text(m, text, strlen(text), NULL);
            mailbars_message_set_html(m, html, strlen(html), NULL);
            mailbars_buf_reset(&out);
            mailbars_message_write(m, &out, NULL);
            count++;
        } while ((t = now_s() - t0) < min_s);
        rates[r] = (double)count / t;
    }
    qsort(rates, (size_t)runs, sizeof rates[0], cmp_d);
    mailbars_buf_free(&out);
    mailbars_message_free(m);
    return rates[runs / 2];
}

int main(int argc, char **argv) {
    size_t mb = 4;
    int runs = 7;
    double min_ms = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--size"))
            mb = (size_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--min-ms"))
            min_ms = atof(argv[i + 1]);
    }
    if (runs < 1 || runs > 64) runs = 7;
    if (mb < 1) mb = 1;
    static const char *const latin[] = {"caf\xc3\xa9", "na\xc3\xafve",
                                        "Gr\xc3\xbc\xc3\x9f"
                                        "e",
                                        "r\xc3\xa9sum\xc3\xa9",
                                        "\xe2\x82\xac"
                                        "5"};
    static const char *const cyr[] = {
        "\xd0\xaf\xd0\xba", "\xd1\x82\xd0\xb8",
        "\xd0\xbf\xd0\xbe\xd0\xb6\xd0\xb8\xd0\xb2\xd0\xb0\xd1\x94\xd1\x88?"};
    struct {
        const char *name;
        char *text;
    } corpora[] = {{"mostly-ASCII (5% accented words)", make_text(mb << 20, 5, latin, 5)},
                   {"Cyrillic (90% of words)", make_text(mb << 20, 90, cyr, 3)}};
    double s = min_ms / 1000.0;
    printf("mailbars encoder throughput, MB/s of input (median of %d runs of >= %.0f ms)\n", runs,
           min_ms);
    for (int c = 0; c < 2; c++) {
        const char *t = corpora[c].text;
        size_t n = strlen(t);
        double mc = measure(pass_memcpy, t, n, runs, s);
        double qp = measure(pass_qp, t, n, runs, s);
        double b64 = measure(pass_b64, t, n, runs, s);
        mb_cpu_allow(0);
        double b64_base = measure(pass_b64, t, n, runs, s);
        mb_cpu_allow(~0u);
        double ew = measure(pass_2047, t, n, runs, s);
        /* a message-sized body (12 KB, the newsletter's HTML part), which stays in the cache */
        size_t small = n < 12 * 1024 ? n : 12 * 1024;
        double mc_small = measure(pass_memcpy, t, small, runs, s);
        double qp_small = measure(pass_qp, t, small, runs, s);
        printf("\n%s, %.1f MB:\n", corpora[c].name, (double)n / 1e6);
        printf("  %-26s %9.0f MB/s\n", "memcpy", mc);
        printf("  %-26s %9.0f MB/s  (memcpy / qp = %.1fx)\n", "quoted-printable", qp, mc / qp);
        printf("  %-26s %9.0f MB/s  (memcpy / base64 = %.1fx)\n", "base64 (76-char lines)", b64,
               mc / b64);
        printf("  %-26s %9.0f MB/s  (memcpy / base64 = %.1fx)\n", "base64, baseline path", b64_base,
               mc / b64_base);
        printf("  %-26s %9.0f MB/s  (120-byte header values)\n", "RFC 2047 encoded words", ew);
        printf("  the first %zu bytes alone (a message body):\n", small);
        printf("  %-26s %9.0f MB/s\n", "memcpy", mc_small);
        printf("  %-26s %9.0f MB/s  (memcpy / qp = %.1fx)\n", "quoted-printable", qp_small,
               mc_small / qp_small);
        free(corpora[c].text);
    }
    printf("\nwhole messages (multipart, 2 addresses, RFC 2047 subject): %.0f messages/s\n",
           measure_messages(runs, s));
    return 0;
}
