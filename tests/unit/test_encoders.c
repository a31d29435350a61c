/* The quoted-printable encoder's fast paths (63-byte blocks classified at once, whole-run
 * copies, runs of encoded bytes fitted per line, the padded copy of the input's last bytes)
 * against the rules applied one byte at a time, over edge cases and many random inputs, in text
 * and binary mode, with and without MB_QP_TERMINATE, into empty buffers and buffers that already
 * hold text. */
#include "mime_internal.h"
#include "xorshift.h"
#include <stdio.h>
#include <stdlib.h>

static int failures, checks;

/* Appends n bytes to b (the test's buffers never fail to grow). */
static void put(mailbars_buf *b, const void *s, size_t n) {
    if (mailbars_buf_append(b, s, n)) abort();
}

/* The reference: quoted-printable as mb_qp_encode must write it, decided byte by byte. A line
 * break (text mode) is CRLF; printable ASCII but '=' is literal, and so is a space or tab not
 * followed by the end or (text mode) a line break, except a '.' or the 'F' of "From " at the
 * start of a line; a literal byte on a line of 75 gets a soft break first; anything else is
 * "=XY", after a soft break when it would pass column 75. */
static void qp_ref(const unsigned char *s, size_t len, unsigned flags, mailbars_buf *out) {
    const int text = (flags & MB_QP_TEXT) != 0;
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned c = s[i];
        if (text && (c == '\r' || c == '\n')) {
            if (c == '\r' && i + 1 < len && s[i + 1] == '\n') i++;
            put(out, "\r\n", 2);
            col = 0;
            continue;
        }
        int trailing = i + 1 == len || (text && (s[i + 1] == '\r' || s[i + 1] == '\n'));
        int literal =
            (c >= 0x21 && c <= 0x7E && c != '=') || ((c == ' ' || c == '\t') && !trailing);
        if (literal && col >= 75) {
            put(out, "=\r\n", 3);
            col = 0;
        }
        if (literal && col == 0 &&
            (c == '.' || (c == 'F' && len - i >= 5 && memcmp(s + i, "From ", 5) == 0)))
            literal = 0;
        if (literal) {
            put(out, s + i, 1);
            col++;
            continue;
        }
        if (col + 3 > 75) {
            put(out, "=\r\n", 3);
            col = 0;
        }
        char hex[4];
        snprintf(hex, sizeof hex, "=%02X", c);
        put(out, hex, 3);
        col += 3;
    }
    if ((flags & MB_QP_TERMINATE) && col > 0) put(out, "=\r\n", 3);
}

/* Encodes s both ways under every flag combination, after each prefix, and compares. The
 * encoder reads a copy of exactly len bytes, so that a sanitizer sees any read past the input. */
static void compare(const char *what, const unsigned char *in, size_t len) {
    static const char *const prefixes[] = {"", "x ", "abc\r\n"};
    unsigned char *s = malloc(len ? len : 1);
    if (!s) abort();
    if (len) memcpy(s, in, len);
    for (unsigned flags = 0; flags < 4; flags++)
        for (size_t k = 0; k < sizeof prefixes / sizeof *prefixes; k++) {
            mailbars_buf got = {0}, want = {0};
            size_t pl = strlen(prefixes[k]);
            if (pl) put(&got, prefixes[k], pl), put(&want, prefixes[k], pl);
            int rc = mb_qp_encode((const char *)s, len, flags, &got);
            qp_ref(s, len, flags, &want);
            checks++;
            if (rc != MAILBARS_OK || got.len != want.len ||
                (got.len && memcmp(got.data, want.data, got.len))) {
                failures++;
                if (failures <= 5) {
                    fprintf(stderr, "%s: %zu bytes, flags %u, prefix %zu differ\n  in:   ", what,
                            len, flags, k);
                    for (size_t i = 0; i < len && i < 200; i++) fprintf(stderr, "%02x", s[i]);
                    fprintf(stderr, "\n  got:  %.*s\n  want: %.*s\n", (int)got.len,
                            got.data ? got.data : "", (int)want.len, want.data ? want.data : "");
                }
            }
            mailbars_buf_free(&got);
            mailbars_buf_free(&want);
        }
    free(s);
}

static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static unsigned rnd(void) {
    return xorshift_next(&rng);
}

/* Inputs built to sit on the encoder's boundaries: line ends, 64-byte blocks, runs of encoded
 * bytes that just fit or just do not fit a line, whitespace and line-start rules there. */
static void test_edges(void) {
    unsigned char b[400];
    memset(b, 0, sizeof b);
    compare("empty", b, 0);
    for (size_t lead = 0; lead <= 80; lead++) {
        /* `lead` literal bytes, then a run of n bytes above 0x7F, then a tail */
        for (size_t n = 23; n <= 66; n += n == 27 ? 21 : n == 52 ? 8 : 1) {
            /* 23 to 27: around one line; 48 to 52 and 60 to 66: lines of 25, to a block's end */
            static const char *const tails[] = {"", "a", " ", " \n", "\r\n.", "=", "\t\n"};
            for (size_t t = 0; t < sizeof tails / sizeof *tails; t++) {
                size_t len = 0;
                for (size_t i = 0; i < lead; i++) b[len++] = (unsigned char)('a' + i % 26);
                for (size_t i = 0; i < n; i++) b[len++] = (unsigned char)(i % 3 ? 0x81 : 0xE3);
                memcpy(b + len, tails[t], strlen(tails[t]));
                len += strlen(tails[t]);
                compare("encoded run", b, len);
            }
        }
        /* a space, tab, '=', '.', "From " or a line break at every column around 75 */
        static const char *const marks[] = {" \n",  " ",  "\t\r\n", "= ",   ".",        "From x",
                                            "\r\n", "\r", "\n",     "  \n", "\xc3\xa9", "\xe3\x81"};
        for (size_t k = 0; k < sizeof marks / sizeof *marks; k++) {
            size_t len = 0;
            for (size_t i = 0; i < lead; i++) b[len++] = 'x';
            memcpy(b + len, marks[k], strlen(marks[k]));
            len += strlen(marks[k]);
            for (size_t i = 0; i < 90; i++) b[len++] = (unsigned char)(i == 75 ? '.' : 'y');
            compare("mark", b, len);
            compare("mark at end", b, lead + strlen(marks[k]));
        }
    }
    /* CR and LF on both sides of a 64-byte block boundary, and long literal lines */
    for (size_t at = 55; at <= 70; at++) {
        memset(b, 'z', sizeof b);
        b[at] = '\r', b[at + 1] = '\n';
        b[at - 1] = ' ';
        compare("crlf at block edge", b, 200);
        compare("crlf at block edge, end", b, at + 2);
    }
    memset(b, 'q', sizeof b);
    compare("long line", b, sizeof b);
    /* line breaks starting the input (after a prefix ending in a space), then a line start */
    static const char *const starts[] = {"\n", "\r\n", "\r", "\n\n.a", "\r\nFrom x \n", " \n"};
    for (size_t k = 0; k < sizeof starts / sizeof *starts; k++) {
        size_t sl = strlen(starts[k]);
        memcpy(b, starts[k], sl);
        memset(b + sl, 'v', 200);
        compare("line break first", b, sl);
        compare("line break first, long", b, sl + 200);
    }
}

/* Inputs that put each kind of special byte on the encoder's block ends (every 63 bytes, with
 * a literal run followed 16 bytes past one) and near the copy of the input's last bytes: a mark
 * after every length of literal text, then lines of text; and '.' where soft breaks start lines
 * of a long literal line. */
static void test_blocks(void) {
    static const char *const marks[] = {
        "\xc3\xa9",     "=",          "\n",  "\r\n", " \n", "\xe3\x81\x82",
        "\xc3\xa9=",    "\xc3\xa9\n", "\t",  "\x7f", ".",   "From ",
        "\xc3\xa9\xc3", "  \r\n",     "\t\n"};
    unsigned char b[400];
    for (size_t off = 0; off < 130; off++)
        for (size_t k = 0; k < sizeof marks / sizeof *marks; k++) {
            size_t len = 0, ml = strlen(marks[k]);
            for (size_t i = 0; i < off; i++) b[len++] = (unsigned char)"ab cd"[i % 5];
            memcpy(b + len, marks[k], ml);
            len += ml;
            for (size_t i = 0; len < 300; i++)
                b[len++] = (unsigned char)(i % 70 == 69 ? '\n' : i % 9 == 8 ? ' ' : 'a' + i % 26);
            compare("block edge", b, len);
            compare("block edge, short", b, off + ml + 30);
        }
    for (size_t at = 60; at < 240; at++) {
        memset(b, 'w', 300);
        b[at] = '.', b[(at * 7) % 300] = '.';
        compare("dot on a soft break", b, 300);
    }
}

/* Random inputs of every kind of byte mix, of lengths up to a few blocks and a few lines. */
static void test_random(void) {
    static const char *const pieces[] = {" ",
                                         "\t",
                                         "\r",
                                         "\n",
                                         "\r\n",
                                         ".",
                                         "From ",
                                         "F",
                                         "=",
                                         "a",
                                         "word ",
                                         "\xc3\xa9",
                                         "\xe3\x81\x82",
                                         "\xe3\x81\x82\xe3\x81\x84\xe3\x81\x86",
                                         "\xf0\x9f\x98\x80",
                                         "\x7f",
                                         "\x01",
                                         "\xff",
                                         "<a href=\"x\">",
                                         "0123456789abcdef0123456789abcdef"};
    static unsigned char b[4200];
    for (int it = 0; it < 20000; it++) {
        size_t len = 0, target = rnd() % (it % 50 == 0 ? 4000 : 300);
        int mode = (int)(rnd() % 4);
        while (len < target) {
            if (mode == 0) {
                b[len++] = (unsigned char)rnd();
            } else if (mode == 1) {
                static const char pick[] = " \t\r\n.F=a\xc3\xa9";
                b[len++] = (unsigned char)pick[rnd() % 10];
            } else if (mode == 2) { /* long runs of one kind */
                size_t r = 1 + rnd() % 90;
                unsigned char ch = (unsigned char)"a \xe3=\n."[rnd() % 6];
                for (size_t j = 0; j < r && len < 4100; j++) b[len++] = ch;
            } else {
                const char *pc = pieces[rnd() % (sizeof pieces / sizeof *pieces)];
                while (*pc && len < 4100) b[len++] = (unsigned char)*pc++;
            }
        }
        compare("random", b, len);
    }
}

int main(void) {
    test_edges();
    test_blocks();
    test_random();
    printf("encoders: %d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
