/* fuzz_mime: MIME encoders with round-trip and shape assertions, and whole messages.
 * Input: byte 0 selects the mode, byte 1 is a parameter, the rest is the payload.
 *   0 QP binary (text=0): decode(encode(x)) == x
 *   1 QP text (text=1):   decode(encode(x)) == x with every line break made CRLF
 *   2 base64, 76-char lines; 3 base64, line length from byte 1: decode(encode(x)) == x,
 *       and the baseline encoder writes what the AVX-512 one does
 *   4 RFC 2047 header words; 5 raw decoders on arbitrary input
 *   6.. a message from subject \x1e text \x1e html \x1e to \x1e from (charset/encoding from
 *       byte 1), which must be CRLF-only, 7-bit, lines <= 998, with no injected header. */
#include "fuzz_common.h"
#include "cpu.h"

static const char *const charsets[] = {"UTF-8",        "ISO-8859-1", "ISO-2022-JP", "Shift_JIS",
                                       "windows-1252", "UTF-8",      "ISO-8859-15", "EUC-KR"};

/* Checks encoder output: 7-bit, CRLF-only line breaks, every line at most `max` characters. */
static void check_lines(const char *s, size_t n, size_t max) {
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        FUZZ_CHECK(c < 0x80 && c != 0);
        if (c == '\r') {
            FUZZ_CHECK(i + 1 < n && s[i + 1] == '\n');
            i++;
            col = 0;
            continue;
        }
        FUZZ_CHECK(c != '\n');
        FUZZ_CHECK(++col <= max);
    }
}

/* x with LF, CRLF and lone CR all made CRLF (what QP text mode promises). */
static void crlf_normalise(const char *s, size_t n, mailbars_buf *out) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' || s[i] == '\n') {
            if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') i++;
            FUZZ_CHECK(mailbars_buf_append(out, "\r\n", 2) == MAILBARS_OK);
        } else {
            FUZZ_CHECK(mailbars_buf_append(out, s + i, 1) == MAILBARS_OK);
        }
    }
}

/* Quoted-printable round trip in binary or text mode. */
static void qp_mode(const char *p, size_t n, int text) {
    mailbars_buf enc = {0}, dec = {0}, want = {0};
    FUZZ_CHECK(mailbars_qp_encode(p, n, text, &enc) == MAILBARS_OK);
    check_lines(enc.data, enc.len, 76);
    if (!text) /* binary mode: the only line breaks are soft breaks "=" CRLF */
        for (size_t i = 0; i < enc.len; i++)
            if (enc.data[i] == '\r') FUZZ_CHECK(i > 0 && enc.data[i - 1] == '=');
    FUZZ_CHECK(mailbars_qp_decode(enc.data ? enc.data : "", enc.len, &dec) == MAILBARS_OK);
    if (text)
        crlf_normalise(p, n, &want);
    else if (n)
        FUZZ_CHECK(mailbars_buf_append(&want, p, n) == MAILBARS_OK);
    FUZZ_CHECK(dec.len == want.len);
    FUZZ_CHECK(dec.len == 0 || memcmp(dec.data, want.data, dec.len) == 0);
    mailbars_buf_free(&enc);
    mailbars_buf_free(&dec);
    mailbars_buf_free(&want);
}

/* Base64 round trip with the given line length. */
static void b64_mode(const char *p, size_t n, size_t line_len) {
    mailbars_buf enc = {0}, dec = {0};
    FUZZ_CHECK(mailbars_base64_encode(p, n, line_len, &enc) == MAILBARS_OK);
    /* Lines shorter than one 4-character group are not possible: at least 4. */
    check_lines(enc.data, enc.len, line_len ? (line_len < 4 ? 4 : line_len) : (size_t)-1);
    FUZZ_CHECK(enc.len >= (n + 2) / 3 * 4);
    FUZZ_CHECK(mailbars_base64_decode(enc.data ? enc.data : "", enc.len, &dec) == MAILBARS_OK);
    FUZZ_CHECK(dec.len == n && (n == 0 || memcmp(dec.data, p, n) == 0));
    /* the baseline encoder writes the same bytes as the wide one this CPU may have */
    mailbars_buf base = {0};
    mb_cpu_allow(0);
    FUZZ_CHECK(mailbars_base64_encode(p, n, line_len, &base) == MAILBARS_OK);
    mb_cpu_allow(~0u);
    FUZZ_CHECK(base.len == enc.len && (enc.len == 0 || memcmp(base.data, enc.data, enc.len) == 0));
    mailbars_buf_free(&base);
    mailbars_buf_free(&enc);
    mailbars_buf_free(&dec);
}

/* RFC 2047: header text, folded with CRLF SP, 7-bit, no encoded word over 75 characters. */
static void rfc2047_mode(const char *p, size_t n, unsigned param) {
    mailbars_buf out = {0};
    mailbars_error err;
    size_t column = param & 0x1f;
    int rc = mailbars_rfc2047_encode(p, n, charsets[(param >> 5) & 7], column, &out, &err);
    if (rc != MAILBARS_OK) {
        FUZZ_CHECK(err.code == rc);
        FUZZ_CHECK(out.len == 0);
    } else {
        check_lines(out.data, out.len, 998);
        for (size_t i = 0; i + 1 < out.len; i++)
            if (out.data[i] == '\r') FUZZ_CHECK(i + 2 < out.len && out.data[i + 2] == ' ');
        /* Encoded words are at most 75 characters. */
        for (const char *w = out.data; w && (w = strstr(w, "=?")) != NULL;) {
            const char *q1 = strchr(w + 2, '?');
            const char *q2 = q1 ? strchr(q1 + 1, '?') : NULL;
            const char *e = q2 ? strstr(q2 + 1, "?=") : NULL;
            if (!e) break;
            FUZZ_CHECK((size_t)(e + 2 - w) <= 75);
            w = e + 2;
        }
    }
    mailbars_buf_free(&out);
}

/* Finds `needle` in [p, end); NULL when absent. */
static const char *find(const char *p, const char *end, const char *needle) {
    size_t n = strlen(needle);
    for (; p && p + n <= end; p++)
        if (memcmp(p, needle, n) == 0) return p;
    return NULL;
}

/* Decodes the text/plain part of a UTF-8 message and checks it is the caller's text with
 * every line break made CRLF (a single-part 7bit body may end in one more CRLF). */
static void check_text_body(const char *m, size_t n, const char *text, size_t tlen) {
    const char *end = m + n;
    const char *ct = find(m, end, "\r\nContent-Type: text/plain");
    FUZZ_CHECK(ct != NULL);
    const char *hend = find(ct, end, "\r\n\r\n");
    FUZZ_CHECK(hend != NULL);
    const char *cte = find(ct, hend, "Content-Transfer-Encoding: ");
    FUZZ_CHECK(cte != NULL);
    cte += strlen("Content-Transfer-Encoding: ");
    const char *body = hend + 4, *bend = end;
    /* the boundary parameter of the top-level Content-Type (the last one in the header
     * block: a Subject may contain the same text) */
    const char *top = find(m, end, "\r\n\r\n"), *tct = NULL;
    for (const char *p = m; (p = find(p, top, "\r\nContent-Type: ")) != NULL; p++) tct = p;
    const char *b = tct ? find(tct, top, "boundary=\"") : NULL;
    if (b) { /* multipart: the body ends at the CRLF before the next delimiter */
        char delim[96];
        const char *q = memchr(b + 10, '"', (size_t)(top - b - 10));
        FUZZ_CHECK(q && (size_t)(q - b - 10) < 80);
        snprintf(delim, sizeof delim, "\r\n--%.*s", (int)(q - b - 10), b + 10);
        bend = find(body, end, delim);
        FUZZ_CHECK(bend != NULL);
    }
    mailbars_buf dec = {0}, want = {0};
    int is7 = strncmp(cte, "7bit", 4) == 0;
    if (is7)
        FUZZ_CHECK(mailbars_buf_append(&dec, body, (size_t)(bend - body)) == MAILBARS_OK);
    else if (strncmp(cte, "quoted-printable", 16) == 0)
        FUZZ_CHECK(mailbars_qp_decode(body, (size_t)(bend - body), &dec) == MAILBARS_OK);
    else if (strncmp(cte, "base64", 6) == 0)
        FUZZ_CHECK(mailbars_base64_decode(body, (size_t)(bend - body), &dec) == MAILBARS_OK);
    else
        FUZZ_CHECK(!"unknown Content-Transfer-Encoding");
    crlf_normalise(text, tlen, &want);
    int same = dec.len == want.len && (!dec.len || memcmp(dec.data, want.data, dec.len) == 0);
    if (!same && is7 && !b)
        same = dec.len == want.len + 2 && (!want.len || !memcmp(dec.data, want.data, want.len)) &&
               memcmp(dec.data + want.len, "\r\n", 2) == 0;
    if (!same)
        fprintf(stderr, "text body round trip: got %zu bytes, want %zu\n", dec.len, want.len);
    FUZZ_CHECK(same);
    mailbars_buf_free(&dec);
    mailbars_buf_free(&want);
}

/* A whole message from fuzzed parts. */
static void message_mode(const char *p, size_t n, unsigned param) {
    fuzz_span sp[5];
    fuzz_split(p, n, sp, 5);
    mailbars_message *m = mailbars_message_new();
    FUZZ_CHECK(m);
    mailbars_error err;
    int ok = mailbars_message_set_charset(m, charsets[param & 7], &err) == MAILBARS_OK;
    FUZZ_CHECK(ok);
    mailbars_message_set_encoding(m, (mailbars_encoding)(((param >> 3) & 3) % 3));
    mailbars_message_set_date(m, 1700000000, -300);
    if (param & 0x20) FUZZ_CHECK(mailbars_message_set_boundary(m, "=_fuzz") == MAILBARS_OK);
    mailbars_message_set_message_id(m, "fuzz.1@example.com");
    int failed = 0, have_text = 0;
    if (mailbars_message_set_subject(m, sp[0].p, sp[0].n, &err)) failed = 1;
    if (sp[1].n || !(param & 0x40)) {
        if (mailbars_message_set_text(m, sp[1].p, sp[1].n, &err))
            failed = 1;
        else
            have_text = 1;
    }
    if (sp[2].n || (param & 0x80))
        if (mailbars_message_set_html(m, sp[2].p, sp[2].n, &err)) failed = 1;
    if (mailbars_message_add_address(m, MAILBARS_TO, sp[3].p, sp[3].n, &err)) failed = 1;
    if (sp[4].n && mailbars_message_add_address(m, MAILBARS_FROM, sp[4].p, sp[4].n, &err))
        failed = 1;
    if (failed) FUZZ_CHECK(err.code != MAILBARS_OK);
    mailbars_buf out = {0};
    int rc = mailbars_message_write(m, &out, &err);
    if (rc == MAILBARS_OK) {
        fuzz_check_message(out.data, out.len);
        if (have_text && strcmp(charsets[param & 7], "UTF-8") == 0)
            check_text_body(out.data, out.len, sp[1].p, sp[1].n);
    } else {
        FUZZ_CHECK(err.code == rc);
    }
    mailbars_buf_free(&out);
    mailbars_message_free(m);
}

/* Dispatches on the mode byte. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const char *p = (const char *)data + 2;
    size_t n = size - 2;
    unsigned param = data[1];
    switch (data[0] & 7) {
    case 0: qp_mode(p, n, 0); break;
    case 1: qp_mode(p, n, 1); break;
    case 2: b64_mode(p, n, 76); break;
    case 3: b64_mode(p, n, param); break;
    case 4: rfc2047_mode(p, n, param); break;
    case 5: {
        mailbars_buf a = {0};
        (void)mailbars_qp_decode(p, n, &a);
        mailbars_buf_reset(&a);
        int rc = mailbars_base64_decode(p, n, &a);
        FUZZ_CHECK(rc == MAILBARS_OK || rc == MAILBARS_ERR_ARGUMENT);
        mailbars_buf_free(&a);
        break;
    }
    default: message_mode(p, n, param); break;
    }
    return 0;
}
