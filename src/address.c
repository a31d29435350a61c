/* Addresses: parsing `Name <local@domain>`, bare addresses and comma-separated lists (quoted
 * names may hold commas), validation with PCRE2 patterns, IDNA (UTS #46) for non-ASCII
 * domains, and writing display names as atoms, a quoted string or RFC 2047 words. */
#include "mime_internal.h"
#include <pthread.h>
#include <stdio.h>
#include <unicode/uidna.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define ATEXT "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
#define DOT_ATOM "[" ATEXT "]+(?:\\.[" ATEXT "]+)*"
#define LABEL "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#define DLITERAL "\\[[\\x21-\\x5A\\x5E-\\x7E]+\\]"

enum { RE_LOCAL, RE_QLOCAL, RE_DOMAIN, RE_MSGID, RE_PHRASE, RE__COUNT };

/* The patterns, each anchored at both ends. */
static const char *const re_src[RE__COUNT] = {
    [RE_LOCAL] = "^" DOT_ATOM "\\z",
    [RE_QLOCAL] = "^\"(?:[\\x20\\x21\\x23-\\x5B\\x5D-\\x7E]|\\\\[\\x20-\\x7E])*\"\\z",
    [RE_DOMAIN] = "^(?:(?=[^\\n]{1,253}\\z)" LABEL "(?:\\." LABEL ")*|" DLITERAL ")\\z",
    [RE_MSGID] = "^" DOT_ATOM "@(?:" DOT_ATOM "|" DLITERAL ")\\z",
    [RE_PHRASE] = "^[" ATEXT "]+(?: [" ATEXT "]+)*\\z",
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pcre2_general_context *g_gctx;
static pcre2_code *g_re[RE__COUNT];
static UIDNA *g_idna;
static int g_ready;
static pthread_key_t g_md_key;
static int g_key_made;

/* Thread exit: frees that thread's match block. */
static void md_free(void *p) {
    pcre2_match_data_free(p);
}

/* PCRE2 allocates through the library's allocator hook. */
static void *re_malloc(PCRE2_SIZE n, void *ud) {
    (void)ud;
    return mb_malloc(n);
}
static void re_free(void *p, void *ud) {
    (void)ud;
    mb_free(p);
}

/* Compiles the patterns and opens the IDNA converter once; retried after a failure. */
static int addr_init(void) {
    if (__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE)) return MAILBARS_OK;
    int rc = MAILBARS_OK;
    pthread_mutex_lock(&g_lock);
    if (!g_ready) {
        if (!g_key_made && pthread_key_create(&g_md_key, md_free) == 0) g_key_made = 1;
        if (!g_gctx) g_gctx = pcre2_general_context_create(re_malloc, re_free, NULL);
        pcre2_compile_context *cc = g_gctx ? pcre2_compile_context_create(g_gctx) : NULL;
        for (int k = 0; k < RE__COUNT && cc; k++) {
            if (g_re[k]) continue;
            int ec;
            PCRE2_SIZE eo;
            g_re[k] = pcre2_compile((PCRE2_SPTR)re_src[k], PCRE2_ZERO_TERMINATED, 0, &ec, &eo, cc);
            /* JIT where PCRE2 has it (several times faster per address); without it, or if it
             * fails, pcre2_match interprets the same pattern */
            if (g_re[k]) (void)pcre2_jit_compile(g_re[k], PCRE2_JIT_COMPLETE);
        }
        if (cc) pcre2_compile_context_free(cc);
        if (!g_idna) {
            UErrorCode st = U_ZERO_ERROR;
            g_idna = uidna_openUTS46(UIDNA_NONTRANSITIONAL_TO_ASCII | UIDNA_CHECK_BIDI |
                                         UIDNA_CHECK_CONTEXTJ | UIDNA_USE_STD3_RULES,
                                     &st);
            if (U_FAILURE(st)) g_idna = NULL;
        }
        int ok = g_gctx && g_idna && g_key_made;
        for (int k = 0; k < RE__COUNT; k++) ok = ok && g_re[k];
        if (ok)
            __atomic_store_n(&g_ready, 1, __ATOMIC_RELEASE);
        else
            rc = MAILBARS_ERR_NOMEM;
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

/* 1 when pattern `which` matches all of s[0..n), 0 when not, -1 on allocation failure. */
static int re_match(int which, const char *s, size_t n) {
    if (addr_init()) return -1;
    /* One match block per thread, freed when the thread ends: no allocation per match. */
    pcre2_match_data *md = pthread_getspecific(g_md_key);
    if (!md) {
        md = pcre2_match_data_create(1, g_gctx);
        if (!md) return -1;
        if (pthread_setspecific(g_md_key, md)) {
            pcre2_match_data_free(md);
            return -1;
        }
    }
    int rc = pcre2_match(g_re[which], (PCRE2_SPTR)s, n, 0, 0, md, NULL);
    return rc == PCRE2_ERROR_NOMEMORY ? -1 : rc >= 0; /* out of heap frames is not "no match" */
}

int mb_msgid_valid(const char *s, size_t len) {
    return len <= 900 ? re_match(RE_MSGID, s, len) : 0;
}

static int is_ws(char c) {
    return c == ' ' || c == '\t';
}

/* Fills an address error naming the item. */
static int addr_fail(mailbars_error *err, int code, const char *why, const char *s, size_t n) {
    mb_error(err, code, 0, 0, "%s in address '%.*s'", why, (int)(n > 200 ? 200 : n), s);
    if (err) snprintf(err->part, sizeof err->part, "address");
    return code;
}

/* Validates an addr-spec and appends it (domain in IDNA form) to `store`. */
static int addr_spec(const char *s, size_t n, mailbars_buf *store, mailbars_error *err) {
    if (n == 0) return addr_fail(err, MAILBARS_ERR_ADDRESS, "empty address", s, n);
    size_t at = n;
    while (at > 0 && s[at - 1] != '@') at--;
    if (at == 0) return addr_fail(err, MAILBARS_ERR_ADDRESS, "no '@'", s, n);
    const char *local = s, *dom = s + at;
    size_t llen = at - 1, dlen = n - at;
    for (size_t i = 0; i < llen; i++)
        if ((unsigned char)local[i] >= 0x80)
            return addr_fail(err, MAILBARS_ERR_ADDRESS,
                             "non-ASCII local part (SES requires an ASCII local part)", s, n);
    if (llen == 0 || llen > 64)
        return addr_fail(err, MAILBARS_ERR_ADDRESS, "bad local part length", s, n);
    int m = re_match(RE_LOCAL, local, llen);
    if (m == 0) m = re_match(RE_QLOCAL, local, llen);
    if (m < 0) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    if (m == 0) return addr_fail(err, MAILBARS_ERR_ADDRESS, "invalid local part", s, n);
    char idn[256];
    int ascii = 1;
    for (size_t i = 0; i < dlen; i++) ascii &= (unsigned char)dom[i] < 0x80;
    if (!ascii) {
        if (addr_init()) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
        UErrorCode st = U_ZERO_ERROR;
        UIDNAInfo info = UIDNA_INFO_INITIALIZER;
        int32_t k = dlen > 1000 ? -1
                                : uidna_nameToASCII_UTF8(g_idna, dom, (int32_t)dlen, idn,
                                                         (int32_t)sizeof idn - 1, &info, &st);
        if (k < 0 || U_FAILURE(st) || info.errors) {
            char why[96];
            snprintf(why, sizeof why, "domain cannot be converted to IDNA (UTS #46 errors 0x%x)",
                     k < 0 || U_FAILURE(st) ? 0xffffu : (unsigned)info.errors);
            return addr_fail(err, MAILBARS_ERR_IDNA, why, s, n);
        }
        idn[k] = 0;
        dom = idn;
        dlen = (size_t)k;
    }
    m = re_match(RE_DOMAIN, dom, dlen);
    if (m < 0) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    if (m == 0) return addr_fail(err, MAILBARS_ERR_ADDRESS, "invalid domain", s, n);
    if (mailbars_buf_append(store, local, llen + 1) || mailbars_buf_append(store, dom, dlen) ||
        mailbars_buf_append(store, "", 1))
        return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    return MAILBARS_OK;
}

/* Parses one list item: `addr`, `<addr>` or `name <addr>`, the name possibly quoted. */
static int addr_item(const char *s, size_t n, mailbars_buf *store, size_t *count,
                     mailbars_error *err) {
    while (n && is_ws(*s)) s++, n--;
    while (n && is_ws(s[n - 1])) n--;
    if (n == 0) return MAILBARS_OK; /* empty item, e.g. a trailing comma */
    size_t lt = n, gt = n;
    int inq = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (inq) {
            if (c == '\\')
                i++;
            else if (c == '"')
                inq = 0;
        } else if (c == '"') {
            inq = 1;
        } else if (c == '(' || c == ')') {
            return addr_fail(err, MAILBARS_ERR_ADDRESS, "comments are not supported", s, n);
        } else if (c == '<' && lt == n) {
            lt = i;
        } else if (c == '>' && lt < n) {
            gt = i;
        }
    }
    size_t start = store->len;
    if (lt == n) { /* a bare address */
        if (mailbars_buf_append(store, "", 1)) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
        int rc = addr_spec(s, n, store, err);
        if (rc)
            store->len = start;
        else
            ++*count;
        return rc;
    }
    if (gt == n || gt < lt) return addr_fail(err, MAILBARS_ERR_ADDRESS, "missing '>'", s, n);
    for (size_t i = gt + 1; i < n; i++)
        if (!is_ws(s[i])) return addr_fail(err, MAILBARS_ERR_ADDRESS, "text after '>'", s, n);
    /* The display name: quoted parts unescaped, the rest as written. */
    size_t ne = lt;
    while (ne && is_ws(s[ne - 1])) ne--;
    if (mailbars_buf_reserve(store, ne + 1)) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    inq = 0;
    for (size_t i = 0; i < ne; i++) {
        char c = s[i];
        if (inq && c == '\\' && i + 1 < ne)
            c = s[++i];
        else if (c == '"') {
            inq = !inq;
            continue;
        }
        store->data[store->len++] = c;
    }
    store->data[store->len++] = 0;
    const char *a = s + lt + 1;
    size_t al = gt - lt - 1;
    while (al && is_ws(*a)) a++, al--;
    while (al && is_ws(a[al - 1])) al--;
    int rc = addr_spec(a, al, store, err);
    if (rc)
        store->len = start;
    else
        ++*count;
    return rc;
}

int mb_address_parse_list(const char *s, size_t len, mailbars_buf *store, size_t *count,
                          mailbars_error *err) {
    char stack[512];
    mailbars_buf clean = {0};
    if (len < sizeof stack) clean.data = stack, clean.cap = sizeof stack; /* never grows */
    int rc = mb_header_clean(s, len, "address", &clean, err);
    if (rc) {
        if (clean.data != stack) mailbars_buf_free(&clean);
        return rc;
    }
    const char *p = clean.data ? clean.data : "";
    size_t n = clean.len, i = 0, before = *count;
    while (i <= n && !rc) {
        size_t j = i;
        int inq = 0, angle = 0;
        for (; j < n; j++) {
            char c = p[j];
            if (inq) {
                if (c == '\\')
                    j++;
                else if (c == '"')
                    inq = 0;
            } else if (c == '"')
                inq = 1;
            else if (c == '<')
                angle = 1;
            else if (c == '>')
                angle = 0;
            else if (c == ',' && !angle)
                break;
        }
        if (inq) {
            rc = addr_fail(err, MAILBARS_ERR_ADDRESS, "unterminated quoted string", p + i,
                           (j > n ? n : j) - i);
            break;
        }
        if (j > n) j = n;
        rc = addr_item(p + i, j - i, store, count, err);
        i = j + 1;
    }
    if (!rc && *count == before) rc = addr_fail(err, MAILBARS_ERR_ADDRESS, "no address", p, n);
    if (clean.data != stack) mailbars_buf_free(&clean);
    return rc;
}

/* A display name that can be written as bare atoms (read back exactly). */
static int name_is_atoms(const char *s, size_t n) {
    size_t word = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' && i + 1 < n && s[i + 1] == '?') return 0;
        word = s[i] == ' ' ? 0 : word + 1;
        if (word > 60) return 0; /* too long for a line: encoded words can be split */
    }
    return re_match(RE_PHRASE, s, n) == 1;
}

/* A display name that can be a quoted string: printable ASCII, single inner spaces. */
static int name_quotable(const char *s, size_t n) {
    if (n == 0 || s[0] == ' ' || s[n - 1] == ' ') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7E) return 0;
        if (c == ' ' && s[i + 1] == ' ') return 0;
        if (c == '=' && i + 1 < n && s[i + 1] == '?') return 0;
    }
    return 1;
}

/* Backslashes a quoted string needs. */
static size_t quoted_extra(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '"' || s[i] == '\\';
    return k;
}

/* The longest token that still fits a header line here: the first token cannot fold. */
static size_t quote_room(const mb_hdr *h) {
    if (h->sep == 2) return MB_HDR_LINE - 2;
    size_t used = h->col + (h->sep ? 1 : 0);
    return used < MB_HDR_LINE ? MB_HDR_LINE - used : 0;
}

int mb_address_write(mb_hdr *h, mb_charset *cs, const char *name, size_t nlen, const char *spec,
                     size_t slen, int more, mailbars_error *err) {
    char tok[400];
    int rc = MAILBARS_OK;
    if (slen + 3 >= sizeof tok)
        return mb_error(err, MAILBARS_ERR_ADDRESS, 0, 0, "address too long");
    if (nlen == 0) goto bare;
    if (name_is_atoms(name, nlen)) {
        for (size_t i = 0; i < nlen;) {
            size_t j = i;
            while (j < nlen && name[j] != ' ') j++;
            if (mb_hdr_token(h, name + i, j - i)) goto nomem;
            i = j + 1;
        }
    } else if (name_quotable(name, nlen) && nlen + 2 + quoted_extra(name, nlen) <= quote_room(h)) {
        size_t k = 0;
        tok[k++] = '"';
        for (size_t i = 0; i < nlen; i++) {
            if (name[i] == '"' || name[i] == '\\') tok[k++] = '\\';
            tok[k++] = name[i];
        }
        tok[k++] = '"';
        if (mb_hdr_token(h, tok, k)) goto nomem;
    } else if ((rc = mb_hdr_words(h, cs, name, nlen, 1, "display name", err))) {
        return rc;
    }
    tok[0] = '<';
    memcpy(tok + 1, spec, slen);
    tok[slen + 1] = '>';
    tok[slen + 2] = ',';
    if (mb_hdr_token(h, tok, slen + 2 + (more != 0))) goto nomem;
    return MAILBARS_OK;
bare:
    memcpy(tok, spec, slen);
    tok[slen] = ',';
    if (mb_hdr_token(h, tok, slen + (more != 0))) goto nomem;
    return MAILBARS_OK;
nomem:
    return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
}

/* Public: parse, validate and format an address list as a header value. */
int mailbars_address_list_format(const char *list, size_t len, const char *charset,
                                 mailbars_buf *out, mailbars_error *err) {
    mb_charset cs;
    mb_charset_init(&cs);
    mailbars_buf store = {0};
    size_t count = 0, start = out->len;
    int rc = mb_charset_set(&cs, charset, err);
    if (!rc) rc = mb_address_parse_list(list, len, &store, &count, err);
    mb_hdr h = {out, 4, 0};
    const char *p = store.data;
    for (size_t k = 0; k < count && !rc; k++) {
        size_t nl = strlen(p);
        const char *spec = p + nl + 1;
        size_t sl = strlen(spec);
        rc = mb_address_write(&h, &cs, p, nl, spec, sl, k + 1 < count, err);
        p = spec + sl + 1;
    }
    if (rc) {
        out->len = start;
        if (out->data) out->data[start] = 0;
    }
    mailbars_buf_free(&store);
    mb_charset_free(&cs);
    return rc;
}
