/* The message builder: RFC 5322 headers in a fixed order, then a single text part or
 * multipart/alternative (text before HTML). Bodies are line-break normalised to CRLF,
 * converted to the charset, and sent as 7bit, quoted-printable or base64. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, gmtime_r */
#endif
#include "mime_internal.h"
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct mailbars_message {
    mb_charset cs;
    mailbars_encoding enc;
    int have_date;
    time_t date;
    int tz;
    char boundary[72]; /* fixed boundary, or "" for a generated one */
    char *msgid;       /* fixed Message-ID without brackets, or NULL */
    mailbars_buf addr[4];
    size_t naddr[4];
    /* per field, the last list parsed into an empty field and what it stored (input, then the
     * stored bytes; `acount` addresses): bulk sends repeat the same From to every recipient */
    mailbars_buf acache[4];
    size_t ain[4], acount[4];
    mailbars_buf subject;
    int have_subject;
    mailbars_buf part[2]; /* text, html: UTF-8 as given */
    int have_part[2];
    mailbars_buf conv, tmp, body[2]; /* scratch: converted bytes, encoded bodies */
    mailbars_buf wire;               /* the message, for mailbars_message_write_stream */
};

static const char *const part_name[2] = {"text", "html"};
static const char *const field_name[4] = {"From", "To", "Cc", "Reply-To"};

mailbars_message *mailbars_message_new(void) {
    mailbars_message *m = mb_calloc(1, sizeof *m);
    if (!m) return NULL;
    mb_charset_init(&m->cs);
    return m;
}

void mailbars_message_free(mailbars_message *m) {
    if (!m) return;
    mb_charset_free(&m->cs);
    mb_free(m->msgid);
    for (int k = 0; k < 4; k++) {
        mailbars_buf_free(&m->addr[k]);
        mailbars_buf_free(&m->acache[k]);
    }
    mailbars_buf_free(&m->subject);
    for (int k = 0; k < 2; k++) {
        mailbars_buf_free(&m->part[k]);
        mailbars_buf_free(&m->body[k]);
    }
    mailbars_buf_free(&m->conv);
    mailbars_buf_free(&m->tmp);
    mailbars_buf_free(&m->wire);
    mb_free(m);
}

void mailbars_message_reset(mailbars_message *m) {
    for (int k = 0; k < 4; k++) {
        mailbars_buf_reset(&m->addr[k]);
        m->naddr[k] = 0;
    }
    mailbars_buf_reset(&m->subject);
    m->have_subject = 0;
    for (int k = 0; k < 2; k++) {
        mailbars_buf_reset(&m->part[k]);
        m->have_part[k] = 0;
    }
}

int mailbars_message_set_charset(mailbars_message *m, const char *charset, mailbars_error *err) {
    return mb_charset_set(&m->cs, charset, err);
}

void mailbars_message_set_encoding(mailbars_message *m, mailbars_encoding enc) {
    m->enc = enc;
}

int mailbars_message_add_address(mailbars_message *m, mailbars_addr_field field, const char *list,
                                 size_t len, mailbars_error *err) {
    if ((unsigned)field > MAILBARS_REPLY_TO || (!list && len))
        return mb_error(err, MAILBARS_ERR_ARGUMENT, 0, 0, "bad address field or list");
    mailbars_buf *a = &m->addr[field], *c = &m->acache[field];
    size_t n = m->naddr[field];
    size_t keep = a->len;
    if (!keep && c->len && m->ain[field] == len && (!len || !memcmp(c->data, list, len))) {
        /* the list this field held last time: its addresses as they were stored */
        if (mailbars_buf_append(a, c->data + len, c->len - len))
            return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
        m->naddr[field] = m->acount[field];
        return MAILBARS_OK;
    }
    int rc = mb_address_parse_list(list ? list : "", len, a, &n, err);
    if (rc) {
        a->len = keep;
        if (a->data) a->data[keep] = 0;
        return rc;
    }
    m->naddr[field] = n;
    if (!keep) { /* remember it; a failure here only loses the shortcut */
        mailbars_buf_reset(c);
        if (mailbars_buf_append(c, list ? list : "", len) ||
            mailbars_buf_append(c, a->data, a->len)) {
            mailbars_buf_reset(c);
        } else {
            m->ain[field] = len;
            m->acount[field] = n;
        }
    }
    return MAILBARS_OK;
}

int mailbars_message_set_subject(mailbars_message *m, const char *s, size_t len,
                                 mailbars_error *err) {
    if (!s && len) return mb_error(err, MAILBARS_ERR_ARGUMENT, 0, 0, "subject is NULL");
    mailbars_buf_reset(&m->subject);
    m->have_subject = 0;
    int rc = mb_header_clean(s ? s : "", len, "subject", &m->subject, err);
    if (!rc) m->have_subject = 1;
    return rc;
}

/* Appends `s` with LF, CRLF and lone CR all made CRLF (copying the runs between breaks). */
static int normalize_breaks(const char *s, size_t len, mailbars_buf *b) {
    if (len > SIZE_MAX / 2 - 1 || mailbars_buf_reserve(b, len * 2)) return MAILBARS_ERR_NOMEM;
    char *d = b->data + b->len;
    size_t i = 0;
    while (i < len) {
        const char *brk = memchr(s + i, '\n', len - i);
        const char *cr = memchr(s + i, '\r', (brk ? (size_t)(brk - s) : len) - i);
        if (cr) brk = cr;
        size_t run = (brk ? (size_t)(brk - s) : len) - i;
        memcpy(d, s + i, run);
        d += run;
        i += run;
        if (!brk) break;
        *d++ = '\r';
        *d++ = '\n';
        i += (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n') ? 2 : 1;
    }
    b->len = (size_t)(d - b->data);
    b->data[b->len] = 0;
    return MAILBARS_OK;
}

/* Forgets part k and checks that its new text is valid UTF-8 (else fills err), unless the
 * caller knows it is (`utf8_known`; MAILBARS_VERIFY_UTF8_KNOWN builds check the claim). */
static int check_part(mailbars_message *m, int k, const char *s, size_t len, int utf8_known,
                      mailbars_error *err) {
    m->have_part[k] = 0;
    mailbars_buf_reset(&m->part[k]);
#if defined(MAILBARS_VERIFY_UTF8_KNOWN)
    if (utf8_known && mb_utf8_check((const unsigned char *)s, len) < len) {
        fprintf(stderr, "mailbars: %s claimed valid UTF-8 but is not\n", part_name[k]);
        abort();
    }
#endif
    if (utf8_known) return MAILBARS_OK;
    size_t bad = mb_utf8_check((const unsigned char *)s, len);
    if (bad < len) {
        mb_error(err, MAILBARS_ERR_UTF8, 0, 0, "%s: invalid UTF-8 at byte offset %zu", part_name[k],
                 bad);
        if (err) snprintf(err->part, sizeof err->part, "%s", part_name[k]);
        return MAILBARS_ERR_UTF8;
    }
    return MAILBARS_OK;
}

/* Stores a body as given, once it is known to be valid UTF-8. */
static int set_part(mailbars_message *m, int k, const char *s, size_t len, mailbars_error *err) {
    if (!s && len) return mb_error(err, MAILBARS_ERR_ARGUMENT, 0, 0, "%s is NULL", part_name[k]);
    int rc = check_part(m, k, s, len, 0, err);
    if (rc) return rc;
    if (mailbars_buf_append(&m->part[k], s ? s : "", len))
        return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    m->have_part[k] = 1;
    return MAILBARS_OK;
}

int mb_message_take_part(mailbars_message *m, int k, mailbars_buf *b, int utf8_known,
                         mailbars_error *err) {
    int rc = check_part(m, k, b->data ? b->data : "", b->len, utf8_known, err);
    if (rc) return rc;
    if (!b->data && mailbars_buf_append(b, "", 0)) /* a part always has a buffer */
        return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    mailbars_buf t = m->part[k];
    m->part[k] = *b;
    *b = t;
    m->have_part[k] = 1;
    return MAILBARS_OK;
}

int mailbars_message_set_text(mailbars_message *m, const char *s, size_t len, mailbars_error *err) {
    return set_part(m, 0, s, len, err);
}

int mailbars_message_set_html(mailbars_message *m, const char *s, size_t len, mailbars_error *err) {
    return set_part(m, 1, s, len, err);
}

void mailbars_message_set_date(mailbars_message *m, time_t when, int tz_minutes) {
    if (tz_minutes > 99 * 60 + 59) tz_minutes = 99 * 60 + 59;
    if (tz_minutes < -(99 * 60 + 59)) tz_minutes = -(99 * 60 + 59);
    m->have_date = 1;
    m->date = when;
    m->tz = tz_minutes;
}

/* A boundary of 1..70 bchars (RFC 2046 5.1.1) not ending in a space; NULL clears it. */
int mailbars_message_set_boundary(mailbars_message *m, const char *b) {
    if (!b) {
        m->boundary[0] = 0;
        return MAILBARS_OK;
    }
    size_t n = strlen(b);
    if (n == 0 || n > 70 || b[n - 1] == ' ') return MAILBARS_ERR_ARGUMENT;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        int ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                 (c && strchr("'()+_,-./:=? ", c));
        if (!ok) return MAILBARS_ERR_ARGUMENT;
    }
    memcpy(m->boundary, b, n + 1);
    return MAILBARS_OK;
}

/* A Message-ID `left@right` (angle brackets optional) with dot-atom sides; NULL clears it. */
int mailbars_message_set_message_id(mailbars_message *m, const char *id) {
    if (!id) {
        mb_free(m->msgid);
        m->msgid = NULL;
        return MAILBARS_OK;
    }
    size_t n = strlen(id);
    if (n >= 2 && id[0] == '<' && id[n - 1] == '>') id++, n -= 2;
    int v = mb_msgid_valid(id, n);
    if (v < 0) return MAILBARS_ERR_NOMEM;
    if (v == 0) return MAILBARS_ERR_ARGUMENT;
    char *c = mb_strndup(id, n);
    if (!c) return MAILBARS_ERR_NOMEM;
    mb_free(m->msgid);
    m->msgid = c;
    return MAILBARS_OK;
}

/* Bytes from the kernel's generator, taken from a per-thread buffer filled 512 bytes at a time:
 * a message needs 32 (boundary and Message-ID), and a system call for each cost more than
 * building the rest of a small message. A fork makes the child drop what it inherited, so that
 * parent and child never hand out the same bytes. */
enum { RB_SIZE = 512 };
static unsigned g_fork_gen; /* bumped in every child */
static pthread_once_t g_fork_once = PTHREAD_ONCE_INIT;
static void on_fork_child(void) {
    __atomic_add_fetch(&g_fork_gen, 1, __ATOMIC_RELAXED);
}
static void fork_hook(void) {
    pthread_atfork(NULL, NULL, on_fork_child);
}
static __thread struct {
    unsigned char b[RB_SIZE];
    unsigned left, gen;
} t_rb;

/* Fills r with n (at most RB_SIZE) random bytes; 0 when the kernel's generator failed. */
static int random_bytes(unsigned char *r, size_t n) {
    pthread_once(&g_fork_once, fork_hook);
    unsigned gen = __atomic_load_n(&g_fork_gen, __ATOMIC_RELAXED);
    if (t_rb.gen != gen || t_rb.left < n) {
        t_rb.left = 0, t_rb.gen = gen;
        if (getrandom(t_rb.b, RB_SIZE, GRND_NONBLOCK) != (ssize_t)RB_SIZE) return 0;
        t_rb.left = RB_SIZE;
    }
    t_rb.left -= (unsigned)n; /* each byte is handed out once */
    memcpy(r, t_rb.b + t_rb.left, n);
    return 1;
}

/* 128 random bits as 32 hex digits: the kernel's generator, or a time/counter mix if that
 * is unavailable (uniqueness is all that is needed). */
static void random_hex(char out[33]) {
    unsigned char r[16];
    if (!random_bytes(r, sizeof r)) {
        static uint64_t counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
                     ((uint64_t)getpid() << 32) ^ __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
        for (int i = 0; i < 16; i++) { /* splitmix64 */
            x += 0x9E3779B97F4A7C15u;
            uint64_t z = x;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
            r[i] = (unsigned char)(z ^ (z >> 31));
        }
    }
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) out[2 * i] = hx[r[i] >> 4], out[2 * i + 1] = hx[r[i] & 15];
    out[32] = 0;
}

/* Appends the strings given, up to a NULL: the fixed shapes of the headers, without printf. */
static int cat(mailbars_buf *b, ...) {
    va_list ap;
    va_start(ap, b);
    int rc = MAILBARS_OK;
    for (const char *s; !rc && (s = va_arg(ap, const char *)) != NULL;)
        rc = mailbars_buf_append(b, s, strlen(s));
    va_end(ap);
    return rc;
}

/* Two decimal digits of 0 <= v < 100 at p. */
static char *digits2(char *p, int v) {
    p[0] = (char)('0' + v / 10), p[1] = (char)('0' + v % 10);
    return p + 2;
}

/* The RFC 5322 date-time, e.g. "Thu, 13 Feb 2025 10:00:00 +0000". */
static int write_date(mailbars_buf *out, time_t when, int tz) {
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = when + (time_t)tz * 60;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        memset(&tm, 0, sizeof tm), tm.tm_mday = 1, tm.tm_year = 70, tm.tm_wday = 4;
    int a = tz < 0 ? -tz : tz, y = tm.tm_year + 1900;
    if (y < 0 || y > 9999 || a / 60 > 99) /* outside what the fixed layout below holds */
        return mb_buf_printf(out, "Date: %s, %d %s %04d %02d:%02d:%02d %c%02d%02d\r\n",
                             wd[tm.tm_wday], tm.tm_mday, mo[tm.tm_mon], y, tm.tm_hour, tm.tm_min,
                             tm.tm_sec, tz < 0 ? '-' : '+', a / 60, a % 60);
    char d[48], *p = d;
    memcpy(p, "Date: ", 6), p += 6;
    memcpy(p, wd[tm.tm_wday], 3), p += 3;
    *p++ = ',', *p++ = ' ';
    if (tm.tm_mday >= 10) *p++ = (char)('0' + tm.tm_mday / 10);
    *p++ = (char)('0' + tm.tm_mday % 10), *p++ = ' ';
    memcpy(p, mo[tm.tm_mon], 3), p += 3;
    *p++ = ' ';
    p = digits2(digits2(p, y / 100), y % 100);
    *p++ = ' ';
    p = digits2(p, tm.tm_hour), *p++ = ':';
    p = digits2(p, tm.tm_min), *p++ = ':';
    p = digits2(p, tm.tm_sec), *p++ = ' ';
    *p++ = tz < 0 ? '-' : '+';
    p = digits2(digits2(p, a / 60), a % 60);
    *p++ = '\r', *p++ = '\n';
    return mailbars_buf_append(out, d, (size_t)(p - d));
}

enum { CTE_7BIT, CTE_QP, CTE_B64 };
static const char *const cte_name[] = {"7bit", "quoted-printable", "base64"};

/* 1 when text can go as 7bit: ASCII, no NUL, lines <= 998. LF, CR and CRLF each end a line,
 * so the text may be checked before or after its breaks are made CRLF. */
static int fits_7bit(const unsigned char *p, size_t n) {
    size_t line = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c >= 0x80 || c == 0) return 0;
        if (c == '\n' || c == '\r')
            line = 0;
        else if (++line > MB_LINE_MAX)
            return 0;
    }
    return 1;
}

/* Length of `s` once every LF, CR and CRLF is CRLF. */
static size_t crlf_length(const char *s, size_t len) {
    size_t n = len;
    for (size_t i = 0; i < len; i++)
        if ((s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) ||
            (s[i] == '\r' && (i + 1 == len || s[i + 1] != '\n')))
            n++;
    return n;
}

/* The CTE the caller's encoding setting forces (base64 or quoted-printable), or -1 (auto). */
static int forced_cte(const mailbars_message *m) {
    return m->enc == MAILBARS_ENC_BASE64             ? CTE_B64
           : m->enc == MAILBARS_ENC_QUOTED_PRINTABLE ? CTE_QP
                                                     : -1;
}

/* Converts and encodes part k, appending it to `body` (no final line break: the caller adds
 * the one its context needs); returns its CTE in *cte. */
static int encode_part(mailbars_message *m, int k, mailbars_buf *body, int *cte,
                       mailbars_error *err) {
    mailbars_buf *conv = &m->conv, *tmp = &m->tmp;
    size_t start = body->len;
    mailbars_buf_reset(conv);
    mailbars_buf_reset(tmp);
    const char *src = m->part[k].data ? m->part[k].data : "";
    size_t srclen = m->part[k].len;
    int rc = MAILBARS_OK;
    /* Line breaks become CRLF: in the converted bytes when the charset keeps ASCII (so error
     * offsets are those of the caller's text), else before converting (e.g. UTF-16). UTF-8
     * text is used as it is (`raw`): quoted-printable's text mode writes every break as CRLF
     * itself, so only 7bit and base64 bodies need the normalized copy. */
    int raw = mb_charset_is_utf8(&m->cs);
    if (!raw && m->cs.ascii_compatible) {
        rc = mb_charset_encode(&m->cs, src, srclen, part_name[k], tmp, err);
        if (rc) return rc;
        rc = normalize_breaks(tmp->data ? tmp->data : "", tmp->len, conv);
    } else if (!raw) {
        rc = normalize_breaks(src, srclen, tmp);
        if (rc) return mb_error(err, rc, 0, 0, NULL);
        rc = mb_charset_encode(&m->cs, tmp->data, tmp->len, part_name[k], conv, err);
        if (rc) return rc;
    }
    if (rc) return mb_error(err, rc, 0, 0, NULL);
    const char *p = raw ? src : conv->data ? conv->data : "";
    size_t n = raw ? srclen : conv->len;
    int mode = forced_cte(m);
    if (!m->cs.ascii_compatible) mode = CTE_B64; /* e.g. UTF-16: QP text rules do not apply */
    if (mode < 0 && fits_7bit((const unsigned char *)p, n)) mode = CTE_7BIT;
    if (mode == CTE_7BIT) {
        rc = raw ? normalize_breaks(p, n, body) : mailbars_buf_append(body, p, n);
    } else if (mode == CTE_QP || mode < 0) {
        rc = mb_qp_encode(p, n, MB_QP_TEXT, body);
        /* auto: base64 when shorter than QP (compared on the text with CRLF breaks) */
        if (!rc && mode < 0 && body->len > mb_base64_encoded_len(n, 76) &&
            (!raw || body->len > mb_base64_encoded_len(crlf_length(p, n), 76))) {
            mode = CTE_B64;
            body->len = start;
            body->data[start] = 0;
        } else if (!rc) {
            mode = CTE_QP;
        }
    }
    if (!rc && mode == CTE_B64 && raw) {
        rc = normalize_breaks(p, n, conv);
        p = conv->data, n = conv->len;
    }
    if (!rc && mode == CTE_B64) rc = mailbars_base64_encode(p, n, 76, body);
    if (rc) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    *cte = mode;
    return MAILBARS_OK;
}

/* The CTE every part gets when it is known before encoding: -1, or the CTE of UTF-8 text with
 * the encoding forced to quoted-printable or base64 (encode_part then decides the same way). */
static int fixed_cte(const mailbars_message *m) {
    return mb_charset_is_utf8(&m->cs) ? forced_cte(m) : -1;
}

/* Writes the Content-Type (and Content-Transfer-Encoding) of part k. */
static int part_headers(mailbars_message *m, mailbars_buf *out, int k, int cte) {
    return cat(out, "Content-Type: text/", k ? "html" : "plain", "; charset=", m->cs.label,
               "\r\nContent-Transfer-Encoding: ", cte_name[cte], "\r\n", (char *)NULL);
}

/* Appends the body of part k: encoded now (`direct`), or as encode_part left it in m->body[k]. */
static int write_body(mailbars_message *m, int k, int direct, mailbars_buf *out,
                      mailbars_error *err) {
    int cte;
    if (direct) return encode_part(m, k, out, &cte, err);
    if (mailbars_buf_append(out, m->body[k].data, m->body[k].len))
        return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    return MAILBARS_OK;
}

int mailbars_message_write(mailbars_message *m, mailbars_buf *out, mailbars_error *err) {
    if (!m || !out) return mb_error(err, MAILBARS_ERR_ARGUMENT, 0, 0, "NULL message or buffer");
    if (!m->have_part[0] && !m->have_part[1])
        return mb_error(err, MAILBARS_ERR_MESSAGE, 0, 0, "a message needs a text or HTML body");
    size_t start = out->len;
    int rc = MAILBARS_OK, cte[2] = {0, 0};
    mb_hdr h;
    int multi = m->have_part[0] && m->have_part[1];
    /* When the CTE is known ahead and no boundary needs looking for (one part, or a generated
     * boundary, which QP and base64 cannot hold), bodies are encoded straight into `out`. */
    int direct = fixed_cte(m);
    if (direct >= 0 && (!multi || !m->boundary[0])) {
        cte[0] = cte[1] = direct;
        direct = 1;
    } else {
        direct = 0;
        for (int k = 0; k < 2 && !rc; k++)
            if (m->have_part[k]) {
                mailbars_buf_reset(&m->body[k]);
                rc = encode_part(m, k, &m->body[k], &cte[k], err);
            }
        if (rc) goto fail;
    }
    char boundary[72];
    if (multi) {
        for (int tries = 0;; tries++) {
            if (m->boundary[0]) {
                strcpy(boundary, m->boundary);
            } else {
                char hex[33];
                random_hex(hex);
                memcpy(boundary, "=_mb", 4), memcpy(boundary + 4, hex, 33);
            }
            size_t bl = strlen(boundary);
            int found = 0;
            /* a generated boundary starts with "=_", which quoted-printable and base64 never
             * write (RFC 2045 6.7 note 4): only a 7bit body, or a chosen boundary, can hold it */
            for (int k = 0; k < 2; k++)
                if (m->boundary[0] || cte[k] == CTE_7BIT)
                    found |= memmem(m->body[k].data, m->body[k].len, boundary, bl) != NULL;
            if (!found) break;
            if (m->boundary[0] || tries > 8) {
                rc = mb_error(err, MAILBARS_ERR_BOUNDARY, 0, 0,
                              "the boundary '%s' occurs in the encoded content", boundary);
                goto fail;
            }
        }
    }
    /* Headers, in the documented order. */
    for (int f = 0; f < 4 && !rc; f++) {
        if (!m->naddr[f]) continue;
        if (mb_hdr_begin(&h, out, field_name[f])) goto nomem;
        const char *p = m->addr[f].data;
        for (size_t a = 0; a < m->naddr[f] && !rc; a++) {
            size_t nl = strlen(p);
            const char *spec = p + nl + 1;
            size_t sl = strlen(spec);
            rc = mb_address_write(&h, &m->cs, p, nl, spec, sl, a + 1 < m->naddr[f], err);
            if (rc && err) snprintf(err->part, sizeof err->part, "%s", field_name[f]);
            p = spec + sl + 1;
        }
        if (!rc && mb_hdr_end(&h)) goto nomem;
    }
    if (rc) goto fail;
    if (m->have_subject) {
        if (mb_hdr_begin(&h, out, "Subject")) goto nomem;
        rc = mb_hdr_unstructured(&h, &m->cs, m->subject.data ? m->subject.data : "", m->subject.len,
                                 "subject", err);
        if (rc) goto fail;
        if (mb_hdr_end(&h)) goto nomem;
    }
    if (write_date(out, m->have_date ? m->date : time(NULL), m->have_date ? m->tz : 0)) goto nomem;
    if (m->msgid) {
        if (cat(out, "Message-ID: <", m->msgid, ">\r\n", (char *)NULL)) goto nomem;
    } else {
        char hex[33];
        random_hex(hex);
        if (cat(out, "Message-ID: <", hex, "@mailbars.invalid>\r\n", (char *)NULL)) goto nomem;
    }
    if (mb_buf_puts(out, "MIME-Version: 1.0\r\n")) goto nomem;
    if (!multi) {
        /* The message ends in CRLF: a soft break for QP (reads back exactly), a plain CRLF
         * for base64 (ignored by readers) and for 7bit (a reader sees one more line break). */
        int k = m->have_part[0] ? 0 : 1;
        if (part_headers(m, out, k, cte[k]) || mb_buf_puts(out, "\r\n")) goto nomem;
        size_t body = out->len;
        if ((rc = write_body(m, k, direct, out, err))) goto fail;
        if (out->len > body && out->data[out->len - 1] != '\n' &&
            mb_buf_puts(out, cte[k] == CTE_QP ? "=\r\n" : "\r\n"))
            goto nomem;
        return MAILBARS_OK;
    }
    if (mb_hdr_begin(&h, out, "Content-Type") || mb_hdr_token(&h, "multipart/alternative;", 22))
        goto nomem;
    {
        char tok[96];
        size_t bl = strlen(boundary);
        memcpy(tok, "boundary=\"", 10), memcpy(tok + 10, boundary, bl), tok[10 + bl] = '"';
        if (mb_hdr_token(&h, tok, bl + 11) || mb_hdr_end(&h)) goto nomem;
    }
    if (mb_buf_puts(out, "\r\n")) goto nomem;
    for (int k = 0; k < 2; k++) {
        if (cat(out, "--", boundary, "\r\n", (char *)NULL) || part_headers(m, out, k, cte[k]) ||
            mb_buf_puts(out, "\r\n"))
            goto nomem;
        if ((rc = write_body(m, k, direct, out, err))) goto fail;
        if (mb_buf_puts(out, "\r\n")) goto nomem; /* the CRLF before a delimiter belongs to it */
    }
    if (cat(out, "--", boundary, "--\r\n", (char *)NULL)) goto nomem;
    return MAILBARS_OK;
nomem:
    rc = mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
fail:
    out->len = start;
    if (out->data) out->data[start] = 0;
    return rc;
}

int mailbars_message_write_stream(mailbars_message *m, mailbars_write_fn write, void *userdata,
                                  mailbars_error *err) {
    if (!m || !write) return mb_error(err, MAILBARS_ERR_ARGUMENT, 0, 0, "NULL message or writer");
    mailbars_buf_reset(&m->wire);
    int rc = mailbars_message_write(m, &m->wire, err);
    if (rc) return rc;
    if (write(userdata, m->wire.data, m->wire.len))
        return mb_error(err, MAILBARS_ERR_IO, 0, 0, "the message writer failed");
    return MAILBARS_OK;
}
