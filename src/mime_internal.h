/* Private contract between the MIME layer's files (qp, base64, charset, rfc2047, address, mime).
 * Nothing here knows Handlebars. */
#ifndef MAILBARS_MIME_INTERNAL_H
#define MAILBARS_MIME_INTERNAL_H

#include "internal.h"
#include <unicode/ucnv.h>

/* Longest header line we produce where folding is possible (RFC 5322 2.1.1). */
#define MB_HDR_LINE 78
/* Longest encoded word (RFC 2047 2). */
#define MB_EW_MAX 75
/* Longest body line on the wire (RFC 5322 2.1.1). */
#define MB_LINE_MAX 998

/* ---- quoted-printable (qp.c) ---- */
enum {
    MB_QP_TEXT = 1u << 0,     /* LF, CRLF and lone CR are line breaks, written as CRLF */
    MB_QP_TERMINATE = 1u << 1 /* output ends in CRLF (a soft break if the text did not) */
};
int mb_qp_encode(const char *src, size_t len, unsigned flags, mailbars_buf *out);

/* ---- base64 (base64.c) ---- */
/* Exact number of characters mailbars_base64_encode writes (line breaks included). */
size_t mb_base64_encoded_len(size_t len, size_t line_len);

/* ---- charsets (charset.c) ---- */
typedef struct mb_charset {
    UConverter *cnv;      /* NULL: UTF-8, no conversion needed */
    char label[48];       /* the MIME/IANA name written into headers */
    int ascii_compatible; /* ASCII and CRLF encode to themselves */
    UChar *u16;           /* scratch: the last text given to mb_charset_load */
    int32_t u16_len;
    size_t u16_cap;
    int32_t *cp; /* scratch: UTF-16 offset of each code point, plus the end */
    int32_t ncp;
    size_t cp_cap;
    UChar *back;        /* scratch for the round-trip check */
    mailbars_buf words; /* scratch: converted text of encoded words */
    size_t back_cap;
} mb_charset;

/* A UTF-8 charset with no converter. */
void mb_charset_init(mb_charset *cs);
void mb_charset_free(mb_charset *cs);
/* Opens `name` (any ICU converter name). MAILBARS_ERR_CHARSET if ICU does not know it. */
int mb_charset_set(mb_charset *cs, const char *name, mailbars_error *err);
static inline int mb_charset_is_utf8(const mb_charset *cs) {
    return cs->cnv == NULL;
}
/* Converts valid UTF-8 to the charset, appending to `out`. A character the charset cannot hold
 * is MAILBARS_ERR_UNMAPPABLE naming it (U+XXXX) and its byte offset in `s`; `what` names the
 * field for the message ("subject", "text", ...). */
int mb_charset_encode(mb_charset *cs, const char *s, size_t len, const char *what,
                      mailbars_buf *out, mailbars_error *err);
/* Loads valid UTF-8 into cs->u16 and the code point index cs->cp (for mb_charset_encode_range). */
int mb_charset_load(mb_charset *cs, const char *s, size_t len);
/* Converts code points [a, b) of the loaded text as one self-contained piece (a stateful
 * charset starts and ends in its initial state). *bad gets the index of the first code point
 * that cannot be converted when MAILBARS_ERR_UNMAPPABLE is returned. */
int mb_charset_encode_range(mb_charset *cs, int32_t a, int32_t b, mailbars_buf *out, int32_t *bad);
/* Byte offset in the UTF-8 text `s` of code point number `k`. */
size_t mb_utf8_offset_of_cp(const char *s, size_t len, int32_t k);
/* Fills err with the unmappable-character message for code point `c` at UTF-8 offset `off`. */
int mb_charset_unmappable(const mb_charset *cs, uint32_t c, size_t off, const char *what,
                          mailbars_error *err);

/* ---- header writing and RFC 2047 (rfc2047.c) ---- */
/* A header being written: tracks the column so tokens can be folded at 78. */
typedef struct mb_hdr {
    mailbars_buf *out;
    size_t col;
    int sep; /* a separator (space or fold) goes before the next token */
} mb_hdr;

/* Writes "Name:" and prepares for tokens. */
int mb_hdr_begin(mb_hdr *h, mailbars_buf *out, const char *name);
/* Writes a token preceded by a space, or by CRLF SP when it would pass column 78. */
int mb_hdr_token(mb_hdr *h, const char *s, size_t n);
/* Writes bytes directly after the previous token (no separator, no fold). */
int mb_hdr_raw(mb_hdr *h, const char *s, size_t n);
/* Ends the header line with CRLF. */
int mb_hdr_end(mb_hdr *h);
/* Writes UTF-8 text as RFC 2047 encoded words (B or Q, whichever is shorter for the whole
 * text), each word a token. `phrase` restricts Q to the characters RFC 2047 5(3) allows in
 * a phrase. The text must be valid UTF-8. */
int mb_hdr_words(mb_hdr *h, mb_charset *cs, const char *s, size_t len, int phrase, const char *what,
                 mailbars_error *err);
/* Writes an unstructured value (Subject): as plain folded words when it is simple printable
 * ASCII, else as encoded words. */
int mb_hdr_unstructured(mb_hdr *h, mb_charset *cs, const char *s, size_t len, const char *what,
                        mailbars_error *err);
/* Checks a header value: valid UTF-8, no control characters except TAB; every CR and every
 * LF becomes a space (a header value is one logical line; offsets stay those of the input).
 * Appends the result. */
int mb_header_clean(const char *s, size_t len, const char *what, mailbars_buf *out,
                    mailbars_error *err);

/* ---- addresses (address.c) ---- */
/* Parses a comma-separated address list and appends each address to `store` as
 * display-name NUL addr-spec NUL (the addr-spec is ASCII, the domain in IDNA form).
 * *count is incremented per address. */
int mb_address_parse_list(const char *s, size_t len, mailbars_buf *store, size_t *count,
                          mailbars_error *err);
/* Writes one stored address (name may be empty) as header tokens, followed by a comma
 * (inside its last token, so folding accounts for it) when `more` is set. */
int mb_address_write(mb_hdr *h, mb_charset *cs, const char *name, size_t name_len, const char *spec,
                     size_t spec_len, int more, mailbars_error *err);
/* Validates a Message-ID "left@right" (no angle brackets) with the same pattern rules. */
int mb_msgid_valid(const char *s, size_t len);

#endif
