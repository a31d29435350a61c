/* Known-vector tests of the MIME layer: base64, quoted-printable, RFC 2047 words, charsets,
 * addresses, header injection and a golden deterministic message. Every message built here is
 * also checked against the wire rules (CRLF only, 7-bit, line lengths). */
#include "mailbars.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unicode/ucnv.h>
#include <unicode/ustring.h>

static int g_pass, g_fail;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            g_pass++;                                                                              \
        } else {                                                                                   \
            g_fail++;                                                                              \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* Compares a buffer with an expected NUL-terminated string. */
static void expect_buf(const char *what, const mailbars_buf *b, const char *want) {
    int ok = b->len == strlen(want) && (b->len == 0 || memcmp(b->data, want, b->len) == 0);
    CHECK(ok, "%s:\n  got  [%.*s]\n  want [%s]", what, (int)b->len, b->data ? b->data : "", want);
}

/* Wire rules: only CRLF line breaks, only 7-bit bytes (no NUL), lines <= 998, header lines
 * <= 78 (no header token here is longer), every encoded word <= 75. */
static void check_wire(const char *what, const char *s, size_t n) {
    size_t line = 0, lineno = 0;
    int in_headers = 1, ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0 || c >= 0x80) ok = 0, fprintf(stderr, "%s: byte 0x%02x at %zu\n", what, c, i);
        if (c == '\r') {
            if (i + 1 >= n || s[i + 1] != '\n')
                ok = 0, fprintf(stderr, "%s: lone CR at %zu\n", what, i);
            if (in_headers && line == 0) in_headers = 0;
            if (in_headers && line > 78)
                ok = 0, fprintf(stderr, "%s: header line %zu > 78\n", what, lineno);
            if (line > 998) ok = 0, fprintf(stderr, "%s: line %zu > 998\n", what, lineno);
            line = 0;
            lineno++;
            i++;
            continue;
        }
        if (c == '\n') ok = 0, fprintf(stderr, "%s: lone LF at %zu\n", what, i);
        line++;
    }
    /* encoded words <= 75 */
    const char *p = s;
    while ((p = strstr(p, "=?")) != NULL && ok) {
        const char *q = strstr(p + 2, "?=");
        const char *sp = p;
        while (sp < s + n && *sp != ' ' && *sp != '\r') sp++;
        if (q && q + 2 <= sp && (size_t)(q + 2 - p) > 75)
            ok = 0, fprintf(stderr, "%s: long word\n", what);
        p += 2;
    }
    CHECK(ok, "%s violates a wire rule", what);
}

/* ---- base64 ---- */
static void test_base64(void) {
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const want[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                       "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    mailbars_buf b = {0}, d = {0};
    for (int k = 0; k < 7; k++) { /* RFC 4648 section 10 */
        mailbars_buf_reset(&b);
        CHECK(mailbars_base64_encode(in[k], strlen(in[k]), 76, &b) == 0, "encode");
        expect_buf("base64 RFC 4648", &b, want[k]);
        mailbars_buf_reset(&d);
        CHECK(mailbars_base64_decode(b.data ? b.data : "", b.len, &d) == 0, "decode");
        expect_buf("base64 decode", &d, in[k]);
    }
    char raw[200];
    for (int i = 0; i < 200; i++) raw[i] = (char)(i * 7 + 3);
    mailbars_buf_reset(&b);
    mailbars_base64_encode(raw, 57, 76, &b);
    CHECK(b.len == 76 && !memchr(b.data, '\r', b.len), "57 bytes are exactly one 76-char line");
    mailbars_buf_reset(&b);
    mailbars_base64_encode(raw, 200, 76, &b);
    CHECK(b.len == 268 + 3 * 2 && b.data[76] == '\r' && b.data[77] == '\n' && b.data[154] == '\r',
          "200 bytes: 4 lines of <= 76 with CRLF between (len %zu)", b.len);
    mailbars_buf_reset(&d);
    CHECK(mailbars_base64_decode(b.data, b.len, &d) == 0 && d.len == 200 &&
              !memcmp(d.data, raw, 200),
          "base64 round trip with line breaks");
    static const char *const badv[] = {"Z", "Zg=", "Zg==Zg==", "Z!==", "=Zg=", "Zm9v=", "Zg=a"};
    for (int k = 0; k < 7; k++) {
        mailbars_buf_reset(&d);
        CHECK(mailbars_base64_decode(badv[k], strlen(badv[k]), &d) == MAILBARS_ERR_ARGUMENT &&
                  d.len == 0,
              "invalid base64 '%s' rejected", badv[k]);
    }
    mailbars_buf_free(&b);
    mailbars_buf_free(&d);
}

/* ---- quoted-printable ---- */
static void qp_case(const char *in, size_t n, int text, const char *want) {
    mailbars_buf b = {0};
    CHECK(mailbars_qp_encode(in, n, text, &b) == 0, "qp encode");
    expect_buf("qp", &b, want);
    mailbars_buf_free(&b);
}

/* decode(encode(x)) == x with LF → CRLF in text mode, and every line <= 76. */
static void qp_roundtrip(const char *in, size_t n, int text) {
    mailbars_buf e = {0}, d = {0}, want = {0};
    mailbars_qp_encode(in, n, text, &e);
    mailbars_qp_decode(e.data ? e.data : "", e.len, &d);
    for (size_t i = 0; i < n; i++) {
        if (text && (in[i] == '\n' || in[i] == '\r')) {
            if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n') i++;
            mailbars_buf_append(&want, "\r\n", 2);
        } else {
            mailbars_buf_append(&want, in + i, 1);
        }
    }
    CHECK(d.len == want.len && (d.len == 0 || !memcmp(d.data, want.data, d.len)),
          "qp round trip (%zu bytes, text=%d)", n, text);
    size_t line = 0;
    int ok = 1;
    for (size_t i = 0; i < e.len; i++) {
        unsigned char c = (unsigned char)e.data[i];
        if (c >= 0x80 || c == 0) ok = 0;
        if (c == '\n')
            line = 0;
        else if (c != '\r' && ++line > 76)
            ok = 0;
    }
    CHECK(ok, "qp output lines <= 76 and 7-bit");
    mailbars_buf_free(&e);
    mailbars_buf_free(&d);
    mailbars_buf_free(&want);
}

static void test_qp(void) {
    qp_case("a=b", 3, 1, "a=3Db");
    qp_case("caf\xc3\xa9", 5, 1, "caf=C3=A9");
    qp_case("end \nx\t\n", 8, 1, "end=20\r\nx=09\r\n");
    qp_case("end ", 4, 1, "end=20");
    qp_case("a b", 3, 1, "a b");
    qp_case("a\rb\r\nc\nd", 8, 1, "a\r\nb\r\nc\r\nd");
    qp_case("a\r\n", 3, 0, "a=0D=0A");
    qp_case(".\n.x\nFrom me\nFrom\nxFrom ", 24, 1, "=2E\r\n=2Ex\r\n=46rom me\r\nFrom\r\nxFrom=20");
    qp_case("\x00\x7f", 2, 1, "=00=7F");
    char line[200];
    memset(line, 'a', sizeof line);
    { /* 80 'a': 75 on the first line, then a soft break */
        char want[100];
        memset(want, 'a', 75);
        memcpy(want + 75, "=\r\naaaaa", 9);
        qp_case(line, 80, 1, want);
    }
    { /* a '.' pushed to the start of a line by a soft break is encoded too */
        char in[80], want[100];
        memset(in, 'a', 75);
        in[75] = '.';
        memset(want, 'a', 75);
        memcpy(want + 75, "=\r\n=2E", 7);
        qp_case(in, 76, 1, want);
    }
    { /* RFC 2045 6.7 example of soft line breaks, decoded */
        const char *enc =
            "Now's the time =\r\nfor all folk to come=\r\n to the aid of their country.";
        mailbars_buf d = {0};
        mailbars_qp_decode(enc, strlen(enc), &d);
        expect_buf("RFC 2045 soft breaks", &d,
                   "Now's the time for all folk to come to the aid of their country.");
        mailbars_buf_reset(&d);
        const char *t = "a=3d=3D=zz=\nb  \r\nc=4";
        mailbars_qp_decode(t, strlen(t), &d);
        expect_buf("qp decode tolerant", &d, "a===zzb\r\nc=4");
        mailbars_buf_free(&d);
    }
    { /* MB_QP_TERMINATE-like behaviour through the message: covered in test_message */
    }
    unsigned seed = 12345;
    char buf[600];
    for (int r = 0; r < 300; r++) {
        size_t n = (size_t)(r * 2);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned v = (seed >> 16) & 0xff;
            static const char pick[] = " \t\r\n.F=a";
            buf[i] = (r & 1) ? (char)v : pick[v & 7];
        }
        qp_roundtrip(buf, n, r % 3 != 0);
    }
}

/* ---- RFC 2047 ---- */

/* Decodes every encoded word of a header value (Q or B) in its charset with ICU and appends
 * the UTF-8 text; whitespace between words is dropped, each word must decode on its own. */
static int decode_words(const char *v, mailbars_buf *out, int *words) {
    const char *p = v;
    *words = 0;
    while ((p = strstr(p, "=?")) != NULL) {
        const char *q1 = strchr(p + 2, '?');
        if (!q1) return -1;
        char cs[64];
        snprintf(cs, sizeof cs, "%.*s", (int)(q1 - p - 2), p + 2);
        char enc = q1[1];
        const char *txt = q1 + 3, *end = strstr(txt, "?=");
        if (!end) return -1;
        mailbars_buf raw = {0};
        if (enc == 'B') {
            if (mailbars_base64_decode(txt, (size_t)(end - txt), &raw)) return -1;
        } else {
            for (const char *t = txt; t < end; t++) {
                if (*t == '_')
                    mailbars_buf_append(&raw, " ", 1);
                else if (*t == '=') {
                    unsigned x;
                    sscanf(t + 1, "%2x", &x);
                    char c = (char)x;
                    mailbars_buf_append(&raw, &c, 1);
                    t += 2;
                } else
                    mailbars_buf_append(&raw, t, 1);
            }
        }
        UErrorCode st = U_ZERO_ERROR;
        UConverter *c = ucnv_open(cs, &st);
        ucnv_setToUCallBack(c, UCNV_TO_U_CALLBACK_STOP, NULL, NULL, NULL, &st);
        UChar u[512];
        int32_t nu = ucnv_toUChars(c, u, 512, raw.data ? raw.data : "", (int32_t)raw.len, &st);
        ucnv_close(c);
        char u8[2048];
        int32_t n8 = 0;
        u_strToUTF8(u8, sizeof u8, &n8, u, nu, &st);
        mailbars_buf_free(&raw);
        if (U_FAILURE(st)) return -1;
        mailbars_buf_append(out, u8, (size_t)n8);
        (*words)++;
        p = end + 2;
    }
    return 0;
}

static void ew_case(const char *in, const char *cs, size_t col, const char *want) {
    mailbars_buf b = {0};
    mailbars_error err;
    int rc = mailbars_rfc2047_encode(in, strlen(in), cs, col, &b, &err);
    CHECK(rc == 0, "rfc2047 encode rc=%d %s", rc, rc ? err.message : "");
    if (want) expect_buf("rfc2047", &b, want);
    /* round trip and limits */
    mailbars_buf d = {0};
    int words = 0;
    CHECK(decode_words(b.data ? b.data : "", &d, &words) == 0, "words decode on their own");
    expect_buf("rfc2047 round trip", &d, in);
    size_t line = col;
    for (size_t i = 0; i < b.len; i++) {
        if (b.data[i] == '\r') {
            CHECK(line <= 78, "folded line %zu > 78", line);
            line = 0;
            i++;
        } else
            line++;
    }
    CHECK(line <= 78, "last line %zu > 78", line);
    mailbars_buf_free(&b);
    mailbars_buf_free(&d);
}

static void test_rfc2047(void) {
    /* RFC 2047 section 8 examples, written by our encoder (Q is shorter for these) */
    ew_case("Keld J\xc3\xb8rn Simonsen", "ISO-8859-1", 6, "=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=");
    ew_case("Andr\xc3\xa9 Pirard", "ISO-8859-1", 4, "=?ISO-8859-1?Q?Andr=E9_Pirard?=");
    ew_case("a", "ISO-8859-1", 9, "=?ISO-8859-1?Q?a?=");
    /* the SES developer guide's subject: B is shorter for Cyrillic */
    ew_case("\xd0\xaf\xd0\xba \xd1\x82\xd0\xb8 "
            "\xd0\xbf\xd0\xbe\xd0\xb6\xd0\xb8\xd0\xb2\xd0\xb0\xd1\x94\xd1\x88?",
            NULL, 9, "=?UTF-8?B?0K/QuiDRgtC4INC/0L7QttC40LLQsNGU0Yg/?=");
    /* long values fold, never split a character; emoji are 4 bytes */
    ew_case(
        "\xf0\x9f\x98\x80\xf0\x9f\x98\x81\xf0\x9f\x98\x82\xf0\x9f\x98\x83\xf0\x9f\x98\x84\xf0\x9f"
        "\x98\x85\xf0\x9f\x98\x86\xf0\x9f\x98\x87\xf0\x9f\x98\x88\xf0\x9f\x98\x89\xf0\x9f\x98\x8a"
        "\xf0\x9f\x98\x8b\xf0\x9f\x98\x8c\xf0\x9f\x98\x8d",
        NULL, 9, NULL);
    ew_case(
        "\xe0\xa4\xa4\xe0\xa5\x81\xe0\xa4\xae \xe0\xa4\x95\xe0\xa5\x88\xe0\xa4\xb8\xe0\xa5\x87 "
        "\xe0\xa4\xb9\xe0\xa5\x8b? \xe0\xa4\xa4\xe0\xa5\x81\xe0\xa4\xae \xe0\xa4\x95\xe0\xa5\x88"
        "\xe0\xa4\xb8\xe0\xa5\x87 \xe0\xa4\xb9\xe0\xa5\x8b? \xe0\xa4\xa4\xe0\xa5\x81\xe0\xa4\xae",
        NULL, 9, NULL);
    /* ISO-2022-JP: every word is a complete shift sequence ending in ASCII */
    const char *ja =
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe4\xbb\xb6\xe5\x90\x8d\xe3\x81"
        "\xa7\xe3\x81\x99\xe3\x80\x82\xe3\x81\xa8\xe3\x81\xa6\xe3\x82\x82\xe9\x95\xb7\xe3"
        "\x81\x84\xe4\xbb\xb6\xe5\x90\x8d\xe3\x82\x92\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88"
        "\xe3\x81\x99\xe3\x82\x8b ABC \xe3\x82\xab\xe3\x82\xbf\xe3\x82\xab\xe3\x83\x8a";
    ew_case(ja, "ISO-2022-JP", 9, NULL);
    ew_case(ja, "Shift_JIS", 9, NULL);
    ew_case(ja, "EUC-JP", 9, NULL);
    {
        mailbars_buf b = {0};
        mailbars_rfc2047_encode(ja, strlen(ja), "ISO-2022-JP", 9, &b, NULL);
        const char *p = b.data;
        int words = 0, ok = 1;
        while ((p = strstr(p, "?B?")) != NULL) {
            const char *e = strstr(p, "?=");
            mailbars_buf raw = {0};
            mailbars_base64_decode(p + 3, (size_t)(e - p - 3), &raw);
            if (raw.len < 3 || memcmp(raw.data + raw.len - 3, "\x1b(B", 3) != 0) ok = 0;
            if (raw.len < 3 || memcmp(raw.data, "\x1b$B", 3) != 0) ok = 0;
            mailbars_buf_free(&raw);
            words++;
            p = e;
        }
        CHECK(ok && words >= 2, "ISO-2022-JP words each start ESC $ B and end ESC ( B (%d words)",
              words);
        mailbars_buf_free(&b);
    }
    /* errors */
    mailbars_buf b = {0};
    mailbars_error err;
    int rc = mailbars_rfc2047_encode("x\xf0\x9f\x98\x80", 5, "ISO-8859-1", 0, &b, &err);
    CHECK(rc == MAILBARS_ERR_UNMAPPABLE && strstr(err.message, "U+1F600") &&
              strstr(err.message, "byte offset 1"),
          "unmappable emoji: %d %s", rc, err.message);
    rc = mailbars_rfc2047_encode("a\x01", 2, NULL, 0, &b, &err);
    CHECK(rc == MAILBARS_ERR_HEADER && strstr(err.message, "U+0001"), "control char: %s",
          err.message);
    rc = mailbars_rfc2047_encode("ab\xff", 3, NULL, 0, &b, &err);
    CHECK(rc == MAILBARS_ERR_UTF8 && strstr(err.message, "offset 2"), "bad UTF-8: %s", err.message);
    rc = mailbars_rfc2047_encode("a", 1, "no-such-charset-x", 0, &b, &err);
    CHECK(rc == MAILBARS_ERR_CHARSET, "unknown charset: %d", rc);
    CHECK(b.len == 0, "nothing written on error");
    mailbars_buf_free(&b);
}

/* ---- addresses ---- */
static void addr_case(const char *in, const char *cs, int want_rc, const char *want) {
    mailbars_buf b = {0};
    mailbars_error err;
    mailbars_error_clear(&err);
    int rc = mailbars_address_list_format(in, strlen(in), cs, &b, &err);
    CHECK(rc == want_rc, "address '%s': rc %d (%s), want %d", in, rc, err.message, want_rc);
    if (rc == 0 && want) expect_buf("address", &b, want);
    if (rc && want)
        CHECK(strstr(err.message, want) != NULL, "error '%s' lacks '%s'", err.message, want);
    mailbars_buf_free(&b);
}

static void test_addresses(void) {
    addr_case("a@example.com", NULL, 0, "a@example.com");
    addr_case("<a@example.com>", NULL, 0, "a@example.com");
    addr_case("  Bob Smith   <bob@example.com> ", NULL, 0, "Bob Smith <bob@example.com>");
    addr_case("\"Smith, Bob\" <bob@example.com>, alice@example.org,", NULL, 0,
              "\"Smith, Bob\" <bob@example.com>, alice@example.org");
    addr_case("\"say \\\"hi\\\"\" <q@example.com>", NULL, 0, "\"say \\\"hi\\\"\" <q@example.com>");
    addr_case("O'Brien <ob@example.com>", NULL, 0, "O'Brien <ob@example.com>");
    addr_case("Dr. Who <who@example.com>", NULL, 0, "\"Dr. Who\" <who@example.com>");
    addr_case("Jos\xc3\xa9 <j@b\xc3\xbc"
              "cher.example>",
              NULL, 0, "=?UTF-8?B?Sm9zw6k=?= <j@xn--bcher-kva.example>");
    addr_case("Jos\xc3\xa9 <j@example.com>", "ISO-8859-1", 0,
              "=?ISO-8859-1?Q?Jos=E9?= <j@example.com>");
    addr_case("\"john doe\"@example.com", NULL, 0, "\"john doe\"@example.com");
    addr_case("user@[192.0.2.1]", NULL, 0, "user@[192.0.2.1]");
    addr_case("x@\xe4\xbe\x8b\xe3\x81\x88.jp", NULL, 0, "x@xn--r8jz45g.jp");
    addr_case("\xc3\xbc@example.com", NULL, MAILBARS_ERR_ADDRESS, "non-ASCII local part");
    addr_case("noat", NULL, MAILBARS_ERR_ADDRESS, "no '@'");
    addr_case("a@-bad-.com", NULL, MAILBARS_ERR_ADDRESS, "invalid domain");
    addr_case("a@exa mple.com", NULL, MAILBARS_ERR_ADDRESS, "invalid domain");
    addr_case("a..b@example.com", NULL, MAILBARS_ERR_ADDRESS, "invalid local part");
    addr_case("Bob <bob@example.com", NULL, MAILBARS_ERR_ADDRESS, "missing '>'");
    addr_case("Bob <bob@example.com> x", NULL, MAILBARS_ERR_ADDRESS, "text after '>'");
    addr_case("\"Bob <bob@example.com>", NULL, MAILBARS_ERR_ADDRESS, "unterminated");
    addr_case(" , ", NULL, MAILBARS_ERR_ADDRESS, "no address");
    addr_case("Bob (work) <b@example.com>", NULL, MAILBARS_ERR_ADDRESS, "comments");
    addr_case("a@ex\xe2\x80\x8d"
              "ample.com",
              NULL, MAILBARS_ERR_IDNA, "IDNA");
    addr_case("\xd0\x9f\xd0\xb5\xd1\x82\xd1\x80 <p@example.com>", "KOI8-R", 0,
              "=?KOI8-R?B?8MXU0g==?= <p@example.com>");
    addr_case("\xd0\x9f\xd0\xb5\xd1\x82\xd1\x80 <p@example.com>", "ISO-8859-1",
              MAILBARS_ERR_UNMAPPABLE, "U+041F");
    /* header injection through an address list: CR/LF are only whitespace */
    addr_case("a@example.com\r\nBcc: evil@example.com", NULL, MAILBARS_ERR_ADDRESS, "invalid");
    addr_case("Evil\r\nBcc: x@y.z <a@example.com>", NULL, 0,
              "=?UTF-8?Q?Evil__Bcc=3A_x=40y=2Ez?= <a@example.com>");
    addr_case("a@example.com\x01", NULL, MAILBARS_ERR_HEADER, "U+0001");
    /* a long list folds at 78 */
    {
        const char *l = "First Person <first.person@example.com>, Second Person "
                        "<second.person@example.com>, third.person@example.com";
        mailbars_buf b = {0};
        mailbars_address_list_format(l, strlen(l), NULL, &b, NULL);
        expect_buf("folded list", &b,
                   "First Person <first.person@example.com>, Second Person\r\n"
                   " <second.person@example.com>, third.person@example.com");
        mailbars_buf_free(&b);
    }
}

/* ---- messages ---- */
static mailbars_message *new_msg(void) {
    mailbars_message *m = mailbars_message_new();
    mailbars_message_set_date(m, 1739440800, 0); /* 2025-02-13 10:00:00 UTC */
    mailbars_message_set_boundary(m, "=_b1");
    mailbars_message_set_message_id(m, "golden@example.com");
    return m;
}

static int build(mailbars_message *m, mailbars_buf *out, mailbars_error *err) {
    mailbars_buf_reset(out);
    int rc = mailbars_message_write(m, out, err);
    if (rc == 0) check_wire("message", out->data, out->len);
    return rc;
}

#define S(x) x, strlen(x)

static void test_golden(void) {
    mailbars_message *m = new_msg();
    mailbars_error err;
    mailbars_buf out = {0};
    mailbars_message_add_address(m, MAILBARS_FROM, S("Sender <sender@example.com>"), &err);
    mailbars_message_add_address(m, MAILBARS_TO,
                                 S("\"Doe, Jane\" <jane@example.com>, bob@example.org"), &err);
    mailbars_message_add_address(m, MAILBARS_CC, S("cc@example.net"), &err);
    mailbars_message_add_address(m, MAILBARS_REPLY_TO, S("replies@example.com"), &err);
    mailbars_message_set_subject(
        m,
        S("\xd0\xaf\xd0\xba \xd1\x82\xd0\xb8 "
          "\xd0\xbf\xd0\xbe\xd0\xb6\xd0\xb8\xd0\xb2\xd0\xb0\xd1\x94\xd1\x88?"),
        &err);
    mailbars_message_set_text(m, S("Hello Jane,\n.\nFrom now on: caf\xc3\xa9 = 1 \n"), &err);
    mailbars_message_set_html(m, S("<h1>Hello</h1>\n"), &err);
    int rc = build(m, &out, &err);
    CHECK(rc == 0, "golden build: %s", err.message);
    expect_buf("golden message", &out,
               "From: Sender <sender@example.com>\r\n"
               "To: \"Doe, Jane\" <jane@example.com>, bob@example.org\r\n"
               "Cc: cc@example.net\r\n"
               "Reply-To: replies@example.com\r\n"
               "Subject: =?UTF-8?B?0K/QuiDRgtC4INC/0L7QttC40LLQsNGU0Yg/?=\r\n"
               "Date: Thu, 13 Feb 2025 10:00:00 +0000\r\n"
               "Message-ID: <golden@example.com>\r\n"
               "MIME-Version: 1.0\r\n"
               "Content-Type: multipart/alternative; boundary=\"=_b1\"\r\n"
               "\r\n"
               "--=_b1\r\n"
               "Content-Type: text/plain; charset=UTF-8\r\n"
               "Content-Transfer-Encoding: quoted-printable\r\n"
               "\r\n"
               "Hello Jane,\r\n"
               "=2E\r\n"
               "=46rom now on: caf=C3=A9 =3D 1=20\r\n"
               "\r\n"
               "--=_b1\r\n"
               "Content-Type: text/html; charset=UTF-8\r\n"
               "Content-Transfer-Encoding: 7bit\r\n"
               "\r\n"
               "<h1>Hello</h1>\r\n"
               "\r\n"
               "--=_b1--\r\n");
    /* reuse after reset: a text-only single part, deterministic settings kept */
    mailbars_message_reset(m);
    mailbars_message_set_subject(m, S("Plain subject"), &err);
    mailbars_message_set_text(m, S("line"), &err);
    rc = build(m, &out, &err);
    expect_buf("single part", &out,
               "Subject: Plain subject\r\n"
               "Date: Thu, 13 Feb 2025 10:00:00 +0000\r\n"
               "Message-ID: <golden@example.com>\r\n"
               "MIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=UTF-8\r\n"
               "Content-Transfer-Encoding: 7bit\r\n"
               "\r\n"
               "line\r\n");
    mailbars_buf_free(&out);
    mailbars_message_free(m);
}

/* The part body (after the blank line) of a single-part message. */
static const char *body_of(const mailbars_buf *b) {
    const char *p = strstr(b->data, "\r\n\r\n");
    return p ? p + 4 : "";
}

/* A message reused for many recipients: each field remembers the last list parsed into it, so
 * the headers after a reset must be exactly those of a fresh message, whatever came between
 * (another list, a failed one, a list added to a non-empty field). */
static void test_address_reuse(void) {
    const char *lists[][2] = {
        {"Caf\xc3\xa9 Lumi\xc3\xa8re <news@example.com>", "a@example.com"},
        {"Caf\xc3\xa9 Lumi\xc3\xa8re <news@example.com>", "B <b@example.com>, c@example.com"},
        {"Other <other@example.com>", "a@example.com"},
        {"Caf\xc3\xa9 Lumi\xc3\xa8re <news@example.com>", "noat"},
        {"Caf\xc3\xa9 Lumi\xc3\xa8re <news@example.com>", "a@example.com"},
    };
    mailbars_message *reused = new_msg();
    mailbars_buf a = {0}, b = {0};
    mailbars_error e1, e2;
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
            mailbars_message *fresh = new_msg();
            mailbars_message_reset(reused);
            int r1 = 0, r2 = 0;
            for (int f = 0; f < 2; f++) {
                mailbars_addr_field field = f ? MAILBARS_TO : MAILBARS_FROM;
                r1 |= mailbars_message_add_address(reused, field, S(lists[i][f]), &e1);
                r2 |= mailbars_message_add_address(fresh, field, S(lists[i][f]), &e2);
            }
            /* a second list into a field that holds one already */
            r1 |= mailbars_message_add_address(reused, MAILBARS_TO, S("z@example.com"), &e1);
            r2 |= mailbars_message_add_address(fresh, MAILBARS_TO, S("z@example.com"), &e2);
            mailbars_message_set_text(reused, S("x"), NULL);
            mailbars_message_set_text(fresh, S("x"), NULL);
            CHECK(r1 == r2, "round %d list %zu: status %d, fresh %d", round, i, r1, r2);
            if (!r1 && !r2 && !build(reused, &a, &e1) && !build(fresh, &b, &e2))
                CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len),
                      "round %d list %zu: reused message\n%s\nfresh\n%s", round, i, a.data, b.data);
            mailbars_message_free(fresh);
        }
    mailbars_buf_free(&a);
    mailbars_buf_free(&b);
    mailbars_message_free(reused);
}

static void test_messages(void) {
    mailbars_message *m = new_msg();
    mailbars_error err;
    mailbars_buf out = {0}, d = {0};
    /* the SES guide's Hindi body: base64 is smaller than QP */
    const char *hindi =
        "\xe0\xa4\xa4\xe0\xa5\x81\xe0\xa4\xae \xe0\xa4\x95\xe0\xa5\x88\xe0\xa4\xb8\xe0\xa5\x87 "
        "\xe0\xa4\xb9\xe0\xa5\x8b?";
    mailbars_message_set_text(m, S(hindi), &err);
    build(m, &out, &err);
    CHECK(strstr(out.data, "Content-Transfer-Encoding: base64\r\n") != NULL,
          "Hindi body is base64");
    const char *body = body_of(&out);
    mailbars_base64_decode(body, strlen(body), &d);
    expect_buf("Hindi body decodes", &d, hindi);
    /* forced QP, and the single-part QP body ends with a soft break */
    mailbars_message_set_encoding(m, MAILBARS_ENC_QUOTED_PRINTABLE);
    build(m, &out, &err);
    body = body_of(&out);
    CHECK(strstr(out.data, "quoted-printable") && strlen(body) > 3 &&
              !strcmp(body + strlen(body) - 3, "=\r\n"),
          "forced QP, soft-break end");
    mailbars_buf_reset(&d);
    mailbars_qp_decode(body, strlen(body), &d);
    expect_buf("QP Hindi decodes", &d, hindi);
    mailbars_message_set_encoding(m, MAILBARS_ENC_BASE64);
    mailbars_message_set_text(m, S("ascii"), &err);
    build(m, &out, &err);
    CHECK(strstr(out.data, "base64\r\n\r\nYXNjaWk=\r\n") != NULL, "forced base64");
    mailbars_message_set_encoding(m, MAILBARS_ENC_AUTO);
    /* a 2000-character ASCII line cannot be 7bit: QP is smaller than base64 */
    char *lng = malloc(2001);
    memset(lng, 'x', 2000);
    lng[2000] = 0;
    mailbars_message_set_text(m, lng, 2000, &err);
    build(m, &out, &err);
    CHECK(strstr(out.data, "quoted-printable") != NULL, "long line is QP");
    free(lng);
    /* ISO-2022-JP body round trip */
    const char *ja = "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf\n\xe4\xb8\x96"
                     "\xe7\x95\x8c ABC\n";
    CHECK(mailbars_message_set_charset(m, "ISO-2022-JP", &err) == 0, "ISO-2022-JP");
    mailbars_message_set_text(m, S(ja), &err);
    mailbars_message_set_subject(m, S("\xe4\xbb\xb6\xe5\x90\x8d"), &err);
    CHECK(build(m, &out, &err) == 0, "ISO-2022-JP message: %s", err.message);
    CHECK(strstr(out.data, "charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit") != NULL,
          "ISO-2022-JP body is 7bit");
    {
        body = body_of(&out);
        UErrorCode st = U_ZERO_ERROR;
        UConverter *c = ucnv_open("ISO-2022-JP", &st);
        UChar u[256];
        int32_t nu = ucnv_toUChars(c, u, 256, body, (int32_t)strlen(body), &st);
        ucnv_close(c);
        char u8[512];
        int32_t n8 = 0;
        u_strToUTF8(u8, sizeof u8, &n8, u, nu, &st);
        const char *want = "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf\r\n\xe4"
                           "\xb8\x96\xe7\x95\x8c ABC\r\n";
        CHECK(U_SUCCESS(st) && n8 == (int32_t)strlen(want) && !memcmp(u8, want, (size_t)n8),
              "ISO-2022-JP body decodes with ICU");
        const char *sub = strstr(out.data, "Subject: ");
        mailbars_buf sd = {0};
        int words = 0;
        decode_words(sub, &sd, &words);
        CHECK(sd.len == 6 && !memcmp(sd.data, "\xe4\xbb\xb6\xe5\x90\x8d", 6),
              "ISO-2022-JP subject");
        mailbars_buf_free(&sd);
    }
    /* unmappable characters name the character and the offset, per part */
    mailbars_message_set_text(m, S("ok \xf0\x9f\x98\x80"), &err);
    int rc = build(m, &out, &err);
    CHECK(rc == MAILBARS_ERR_UNMAPPABLE && strstr(err.message, "U+1F600") &&
              strstr(err.message, "byte offset 3") && !strcmp(err.part, "text"),
          "unmappable in body: %s", err.message);
    CHECK(out.len == 0, "nothing written on error");
    /* ICU's ISO-2022-JP would turn half-width katakana into full-width: refused */
    mailbars_message_set_text(m, S("\xef\xbd\xb1"), &err);
    rc = build(m, &out, &err);
    CHECK(rc == MAILBARS_ERR_UNMAPPABLE && strstr(err.message, "U+FF71"), "half-width katakana: %s",
          err.message);
    CHECK(mailbars_message_set_charset(m, "nope-charset", &err) == MAILBARS_ERR_CHARSET,
          "bad charset");
    mailbars_message_set_charset(m, "windows-1252", &err);
    mailbars_message_set_text(m, S("\xe2\x82\xac 5 euros"), &err);
    mailbars_message_set_subject(m, S("caf\xc3\xa9"), &err);
    build(m, &out, &err);
    CHECK(strstr(out.data, "Subject: =?windows-1252?Q?caf=E9?=\r\n") &&
              strstr(out.data, "=80 5 euros"),
          "windows-1252 label and bytes:\n%s", out.data);
    mailbars_message_set_charset(m, "utf8", &err);
    /* invalid UTF-8 */
    rc = mailbars_message_set_text(m, S("ab\xc3("), &err);
    CHECK(rc == MAILBARS_ERR_UTF8 && strstr(err.message, "byte offset 2"), "invalid UTF-8: %s",
          err.message);
    rc = mailbars_message_set_subject(m, S("\xed\xa0\x80"), &err);
    CHECK(rc == MAILBARS_ERR_UTF8, "surrogate in UTF-8");
    /* header injection */
    mailbars_message_set_text(m, S("x"), &err);
    rc = mailbars_message_set_subject(m, S("Hi\r\nBcc: evil@example.com\nX: y\rZ"), &err);
    CHECK(rc == 0, "CR/LF in a subject become spaces");
    build(m, &out, &err);
    {
        const char *sub = strstr(out.data, "Subject: ");
        mailbars_buf sd = {0};
        int words = 0;
        decode_words(sub, &sd, &words);
        expect_buf("injected subject decodes to one line", &sd, "Hi  Bcc: evil@example.com X: y Z");
        CHECK(!strstr(out.data, "\nBcc") && !strstr(out.data, "\nX:"), "no injected header");
        mailbars_buf_free(&sd);
    }
    CHECK(mailbars_message_set_subject(m, "a\0b", 3, &err) == MAILBARS_ERR_HEADER,
          "NUL in subject");
    CHECK(mailbars_message_set_subject(m, S("a\x1b[1mb"), &err) == MAILBARS_ERR_HEADER,
          "ESC in subject");
    CHECK(mailbars_message_set_subject(m,
                                       S("a\xc2\x85"
                                         "b"),
                                       &err) == MAILBARS_ERR_HEADER,
          "NEL in subject");
    CHECK(mailbars_message_set_boundary(m, "a\r\nb") == MAILBARS_ERR_ARGUMENT, "boundary CRLF");
    CHECK(mailbars_message_set_message_id(m, "a@b>\r\nX: y") == MAILBARS_ERR_ARGUMENT,
          "msgid CRLF");
    CHECK(mailbars_message_set_message_id(m, "<ok.1@example.com>") == 0, "msgid with brackets");
    /* a fixed boundary that occurs in the content is an error */
    mailbars_message_set_subject(m, S("s"), &err);
    mailbars_message_set_text(m, S("a line with =_b1 inside"), &err);
    mailbars_message_set_html(m, S("<p>x</p>"), &err);
    rc = build(m, &out, &err);
    CHECK(rc == MAILBARS_ERR_BOUNDARY, "boundary in content: %d", rc);
    /* generated values */
    mailbars_message_set_boundary(m, NULL);
    mailbars_message_set_message_id(m, NULL);
    rc = build(m, &out, &err);
    const char *mid = strstr(out.data, "Message-ID: <");
    CHECK(rc == 0 && mid && strlen(mid) > 13 + 32 &&
              !strncmp(mid + 13 + 32, "@mailbars.invalid>\r\n", 20),
          "random Message-ID");
    CHECK(strstr(out.data, "boundary=\"=_mb") != NULL, "random boundary");
    mailbars_message_set_date(m, 0, -330);
    build(m, &out, &err);
    CHECK(strstr(out.data, "Date: Wed, 31 Dec 1969 18:30:00 -0530\r\n") != NULL, "date with zone");
    mailbars_message_reset(m);
    CHECK(build(m, &out, &err) == MAILBARS_ERR_MESSAGE, "no body");
    /* long plain subject folds at spaces, long words become encoded words */
    mailbars_message_set_text(m, S("x"), &err);
    mailbars_message_set_subject(m,
                                 S("aaaaaaaaaa bbbbbbbbbb cccccccccc dddddddddd eeeeeeeeee "
                                   "ffffffffff gggggggggg hhhhhhhhhh"),
                                 &err);
    build(m, &out, &err);
    CHECK(strstr(out.data, "Subject: aaaaaaaaaa bbbbbbbbbb cccccccccc dddddddddd eeeeeeeeee "
                           "ffffffffff\r\n gggggggggg hhhhhhhhhh\r\n") != NULL,
          "plain subject folds");
    char word[200];
    memset(word, 'w', 199);
    word[199] = 0;
    mailbars_message_set_subject(m, S(word), &err);
    CHECK(build(m, &out, &err) == 0 && strstr(out.data, "Subject: =?UTF-8?Q?www"),
          "long word encoded");
    mailbars_buf_free(&out);
    mailbars_buf_free(&d);
    mailbars_message_free(m);
}

/* Builds n multipart messages with generated boundaries and Message-IDs; writes their 32-digit
 * random parts, two per message, into ids (n * 2 * 33 bytes, NUL-terminated each). */
static void generated_ids(mailbars_message *m, int n, char *ids) {
    mailbars_buf out = {0};
    mailbars_error err;
    for (int i = 0; i < n; i++) {
        CHECK(build(m, &out, &err) == 0, "build %d", i);
        const char *b = strstr(out.data ? out.data : "", "boundary=\"=_mb");
        const char *mid = strstr(out.data ? out.data : "", "Message-ID: <");
        CHECK(b && mid, "generated values present");
        if (!b || !mid) break;
        memcpy(ids + (2 * i) * 33, b + 14, 32), ids[(2 * i) * 33 + 32] = 0;
        memcpy(ids + (2 * i + 1) * 33, mid + 13, 32), ids[(2 * i + 1) * 33 + 32] = 0;
    }
    mailbars_buf_free(&out);
}

/* 1 when any of the n 33-byte ids in a equals any in b (a == b: any two distinct ones). */
static int ids_overlap(const char *a, int na, const char *b, int nb) {
    for (int i = 0; i < na; i++)
        for (int j = a == b ? i + 1 : 0; j < nb; j++)
            if (!strcmp(a + i * 33, b + j * 33)) return 1;
    return 0;
}

/* Generated boundaries and Message-IDs are 32 hex digits and never repeat: not within a
 * process (they come from a buffer of the kernel's random bytes), and not between a parent and
 * a child forked while that buffer was part used. */
static void test_unique_ids(void) {
    enum { N = 150, M = 20 };
    static char ids[2 * N * 33], mine[2 * M * 33], theirs[2 * M * 33];
    mailbars_message *m = mailbars_message_new();
    mailbars_error err;
    mailbars_message_add_address(m, MAILBARS_FROM, S("a@example.com"), &err);
    mailbars_message_set_text(m, S("text"), &err);
    mailbars_message_set_html(m, S("<p>html</p>"), &err);
    generated_ids(m, N, ids);
    int hex = 1;
    for (int i = 0; i < 2 * N; i++) hex &= strspn(ids + i * 33, "0123456789abcdef") == 32;
    CHECK(hex, "generated values are 32 hex digits");
    CHECK(!ids_overlap(ids, 2 * N, ids, 2 * N), "no generated value repeats");
    int fd[2];
    CHECK(pipe(fd) == 0, "pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        generated_ids(m, M, theirs);
        _exit(write(fd[1], theirs, sizeof theirs) == (ssize_t)sizeof theirs ? 0 : 1);
    }
    close(fd[1]);
    generated_ids(m, M, mine);
    size_t got = 0;
    for (ssize_t r;
         got < sizeof theirs && (r = read(fd[0], theirs + got, sizeof theirs - got)) > 0;)
        got += (size_t)r;
    close(fd[0]);
    int status = 1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && status == 0 && got == sizeof theirs,
          "child wrote its values");
    CHECK(!ids_overlap(mine, 2 * M, theirs, 2 * M), "parent and forked child share no value");
    mailbars_message_free(m);
}

/* A writer that appends to a buffer, or fails when userdata is NULL. */
static int buf_writer(void *ud, const char *data, size_t len) {
    if (!ud) return 1;
    return mailbars_buf_append(ud, data, len);
}

static void test_stream(void) {
    mailbars_message *m = new_msg();
    mailbars_error err;
    mailbars_buf a = {0}, b = {0};
    mailbars_message_set_text(m, S("streamed"), &err);
    CHECK(mailbars_message_write(m, &a, &err) == 0, "write");
    CHECK(mailbars_message_write_stream(m, buf_writer, &b, &err) == 0, "write_stream");
    CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len), "stream equals buffer");
    CHECK(mailbars_message_write_stream(m, buf_writer, NULL, &err) == MAILBARS_ERR_IO,
          "writer failure");
    mailbars_buf_free(&a);
    mailbars_buf_free(&b);
    mailbars_message_free(m);
}

/* UTF-8 bodies skip the copy that makes breaks CRLF (QP does it as it encodes). For ASCII text
 * ISO-8859-1 takes the general path to the same bytes, so both must give the same body and
 * transfer encoding, in every mode, whatever the breaks. */
static void test_utf8_direct_path(void) {
    char lines998[1100], lines999[1100];
    memset(lines998, 'a', 998), memcpy(lines998 + 998, "\rb", 3);
    memset(lines999, 'a', 999), memcpy(lines999 + 999, "\nb", 3);
    const char *texts[] = {"one\ntwo\r\nthree\rfour",
                           "end with lone CR\r",
                           "\r\n\r\rstart",
                           "trailing space \n",
                           "tab\t\r\nx",
                           ".dot\n.\r.\r\n",
                           "From here\nFrom\rFrom ",
                           "=equals=\n",
                           "",
                           "\n",
                           lines998,
                           lines999,
                           "caf\xc3\xa9 \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\r\n"};
    const mailbars_encoding encs[] = {MAILBARS_ENC_AUTO, MAILBARS_ENC_QUOTED_PRINTABLE};
    mailbars_buf a = {0}, b = {0};
    mailbars_error err;
    for (size_t t = 0; t < sizeof texts / sizeof *texts; t++) {
        for (int e = 0; e < 2; e++) {
            int ascii = t + 1 < sizeof texts / sizeof *texts;
            mailbars_message *m = new_msg(), *n = new_msg();
            mailbars_message_set_encoding(m, encs[e]);
            mailbars_message_set_encoding(n, encs[e]);
            mailbars_message_set_charset(n, ascii ? "ISO-8859-1" : "UTF-8", &err);
            mailbars_message_set_text(m, S(texts[t]), &err);
            mailbars_message_set_text(n, S(texts[t]), &err);
            int ra = build(m, &a, &err), rb = build(n, &b, &err);
            const char *pa = strstr(a.data ? a.data : "", "Content-Transfer-Encoding");
            const char *pb = strstr(b.data ? b.data : "", "Content-Transfer-Encoding");
            CHECK(!ra && !rb && pa && pb && !strcmp(pa, pb), "text %zu, mode %d: same body", t, e);
            mailbars_message_free(m);
            mailbars_message_free(n);
        }
    }
    mailbars_buf_free(&a);
    mailbars_buf_free(&b);
}

/* The Date header for zones on both sides of UTC, a day change and the epoch. */
static void test_dates(void) {
    const struct {
        long long when;
        int tz;
        const char *want;
    } cases[] = {
        {1739440800, -330, "Date: Thu, 13 Feb 2025 04:30:00 -0530\r\n"},
        {1739440800, 840, "Date: Fri, 14 Feb 2025 00:00:00 +1400\r\n"},
        {0, 0, "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"},
        {951782399, 59, "Date: Tue, 29 Feb 2000 00:58:59 +0059\r\n"},
    };
    mailbars_buf out = {0};
    mailbars_error err;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mailbars_message *m = new_msg();
        mailbars_message_set_date(m, (time_t)cases[i].when, cases[i].tz);
        mailbars_message_set_text(m, S("x"), &err);
        CHECK(build(m, &out, &err) == 0 && strstr(out.data, cases[i].want) != NULL,
              "date %zu: want %s in %s", i, cases[i].want, out.data ? out.data : "");
        mailbars_message_free(m);
    }
    mailbars_buf_free(&out);
}

int main(void) {
    test_unique_ids();
    test_address_reuse();
    test_dates();
    test_utf8_direct_path();
    test_base64();
    test_qp();
    test_rfc2047();
    test_addresses();
    test_golden();
    test_messages();
    test_stream();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
