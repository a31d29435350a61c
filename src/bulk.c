/* Bulk driver: one compiled template set, many recipients. Records are read one at a time
 * (JSON Lines or an SES bulk request), rendered on N worker threads, and handed to the sink
 * strictly in input order through a bounded ring of slots, so memory does not grow with the
 * number of recipients. Every record yields exactly one result: a message or a failure. */
#include "internal.h"
#include "ses_internal.h"
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

enum { SLOT_FREE, SLOT_PENDING, SLOT_DONE };

typedef struct slot {
    int state;
    size_t index;      /* 1-based record number */
    size_t lineno;     /* JSON Lines: the record's line */
    mailbars_buf line; /* JSON Lines: the record's text */
    mailbars_buf msg;  /* the rendered message */
    mailbars_error err;
    int status;
} slot;

typedef struct bulk {
    const mailbars_ses_template *t;
    const mailbars_ses_request *req; /* request mode, else JSON Lines */
    json_t *defaults;
    mailbars_bulk_options o;
    slot *slots;
    size_t nslots;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    size_t produced, taken, emitted;
    int eof;
    int worker_error; /* a worker could not even start (allocation) */
} bulk;

/* Per-worker resources: a render state and a message builder, reused for every record. */
typedef struct worker {
    bulk *b;
    mailbars_ses_render_state *st;
    mailbars_message *msg;
    json_t *defaults; /* this worker's own copy: jansson reference counts of shared values
                       * are not race-free (json_incref reads the count non-atomically) */
    int setup_rc;
    mailbars_error setup_err;
} worker;

/* Adds the addresses of a JSON string or array of strings to a header field. */
static int add_addresses(mailbars_message *msg, mailbars_addr_field field, json_t *v,
                         mailbars_error *err) {
    if (!v) return MAILBARS_OK;
    if (json_is_string(v))
        return mailbars_message_add_address(msg, field, json_string_value(v), json_string_length(v),
                                            err);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e))
            return mb_error(err, MAILBARS_ERR_ADDRESS, 0, 0, "address %zu is not a string", i);
        int rc = mailbars_message_add_address(msg, field, json_string_value(e),
                                              json_string_length(e), err);
        if (rc) return rc;
    }
    return MAILBARS_OK;
}

/* Is `v` an envelope {"data":{…},"to":…,"cc":…,"bcc":…} rather than bare data? */
static int is_envelope(json_t *v) {
    if (!json_is_object(json_object_get(v, "data"))) return 0;
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        if (strcmp(k, "data") && strcmp(k, "to") && strcmp(k, "cc") && strcmp(k, "bcc")) return 0;
    }
    return 1;
}

/* Is `v` one SES bulk destination, as in SendBulkTemplatedEmail's Destinations[] or SES v2's
 * BulkEmailEntries[] ({"Destination":{…},"ReplacementTemplateData":"…"})? */
static int is_ses_entry(json_t *v) {
    static const char *const keys[] = {"Destination", "ReplacementTemplateData", "ReplacementTags",
                                       "ReplacementEmailContent", "ReplacementHeaders"};
    const char *k;
    json_t *x;
    int seen = 0;
    json_object_foreach(v, k, x) {
        int ok = 0;
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) ok |= !strcmp(k, keys[i]);
        if (!ok) return 0;
        seen |= strcmp(k, "ReplacementTags") && strcmp(k, "ReplacementHeaders");
    }
    return seen;
}

/* Reads an SES destination entry: addresses from Destination, data from the replacement
 * TemplateData string. *data receives a new reference (an empty object when absent). */
static int read_ses_entry(json_t *rec, size_t lineno, const mailbars_render_ctx *limits,
                          json_t **to, json_t **cc, json_t **data, mailbars_error *err) {
    json_t *dst = json_object_get(rec, "Destination");
    *data = NULL;
    if (dst && !json_is_object(dst))
        return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0,
                        "line %zu: Destination must be an object", lineno);
    static const char *const lists[3] = {"ToAddresses", "CcAddresses", "BccAddresses"};
    for (int k = 0; k < 3; k++) {
        json_t *l = json_object_get(dst, lists[k]);
        size_t i;
        json_t *e;
        if (l && !json_is_array(l))
            return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0,
                            "line %zu: Destination.%s must be an array of strings", lineno,
                            lists[k]);
        json_array_foreach(l, i, e) {
            if (!json_is_string(e))
                return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0,
                                "line %zu: Destination.%s[%zu] must be a string", lineno, lists[k],
                                i);
        }
    }
    *to = json_object_get(dst, "ToAddresses");
    *cc = json_object_get(dst, "CcAddresses");
    const char *field = "ReplacementTemplateData";
    json_t *s = json_object_get(rec, field);
    if (!s) {
        s = json_object_get(
            json_object_get(json_object_get(rec, "ReplacementEmailContent"), "ReplacementTemplate"),
            field);
        field = "ReplacementEmailContent.ReplacementTemplate.ReplacementTemplateData";
    }
    if (!s || json_is_null(s)) {
        *data = json_object();
        return *data ? MAILBARS_OK : mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    }
    char what[160];
    snprintf(what, sizeof what, "line %zu: %s", lineno, field);
    if (!json_is_string(s))
        return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0, "%s must be a string holding JSON",
                        what);
    *data = mailbars_ses_parse_data(json_string_value(s), json_string_length(s), what, limits, err);
    return *data ? MAILBARS_OK : err->code;
}

/* Checks the to/cc/bcc members of an envelope: a string or an array of strings. */
static int check_envelope_list(json_t *v, const char *name, size_t lineno, mailbars_error *err) {
    if (!v || json_is_string(v)) return MAILBARS_OK;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (!json_is_string(e)) goto bad;
        }
        return MAILBARS_OK;
    }
bad:
    return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0,
                    "line %zu: \"%s\" must be an address string or an array of them", lineno, name);
}

/* Renders one record into its slot. */
static void process(worker *w, slot *s) {
    bulk *b = w->b;
    json_t *data = NULL, *rec = NULL, *to = NULL, *cc = NULL;
    mailbars_error *err = &s->err;
    mailbars_error_clear(err);
    mailbars_buf_reset(&s->msg);
    int rc;
    if (b->req) {
        mailbars_ses_destination d;
        json_t *repl;
        rc = mb_ses_request_entry(b->req, s->index - 1, &d, &repl, err);
        if (rc) goto done;
        data = mailbars_ses_merge(w->defaults, repl);
        json_decref(repl);
        if (!data) {
            rc = mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
            goto done;
        }
        to = d.to;
        cc = d.cc;
    } else {
        json_error_t je;
        size_t chars = mb_ses_utf8_chars(s->line.data, s->line.len);
        if (chars > MAILBARS_SES_MAX_DATA_CHARS + 1024) {
            rc = mb_error(err, MAILBARS_ERR_SES_LIMIT, 0, 0,
                          "line %zu: the record is %zu characters long; SES allows at most %u "
                          "characters of template data",
                          s->lineno, chars, MAILBARS_SES_MAX_DATA_CHARS);
            goto done;
        }
        if ((rc = mb_json_check_limits(s->line.data, s->line.len, "record",
                                       mb_ses_template_limits(w->b->t), err)))
            goto done;
        rec = json_loadb(s->line.data, s->line.len, 0, &je);
        if (!rec) {
            int jl, jc;
            mb_ses_json_error_start(&je, &jl, &jc);
            rc = mb_error(err, MAILBARS_ERR_JSON, (int)s->lineno, jc,
                          "line %zu, column %d: invalid JSON: %s", s->lineno, jc, je.text);
            goto done;
        }
        if (!json_is_object(rec)) {
            rc = mb_error(err, MAILBARS_ERR_SES_SHAPE, (int)s->lineno, 1,
                          "line %zu: a record must be a JSON object", s->lineno);
            goto done;
        }
        json_t *d = rec, *owned = NULL;
        if (is_ses_entry(rec)) {
            if ((rc = read_ses_entry(rec, s->lineno, mb_ses_template_limits(w->b->t), &to, &cc,
                                     &owned, err)))
                goto done;
            d = owned;
        } else if (is_envelope(rec)) {
            d = json_object_get(rec, "data");
            to = json_object_get(rec, "to");
            cc = json_object_get(rec, "cc");
            if ((rc = check_envelope_list(to, "to", s->lineno, err)) ||
                (rc = check_envelope_list(cc, "cc", s->lineno, err)) ||
                (rc = check_envelope_list(json_object_get(rec, "bcc"), "bcc", s->lineno, err)))
                goto done;
        }
        data = mailbars_ses_merge(w->defaults, d);
        json_decref(owned);
        if (!data) {
            rc = mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
            goto done;
        }
    }
    mailbars_message *msg = w->msg;
    mailbars_message_reset(msg);
    const char *from = b->o.from;
    if (!from && b->req) from = mailbars_ses_request_source(b->req);
    if (from && (rc = mailbars_message_add_address(msg, MAILBARS_FROM, from, strlen(from), err)))
        goto done;
    if ((rc = add_addresses(msg, MAILBARS_TO, to, err)) ||
        (rc = add_addresses(msg, MAILBARS_CC, cc, err)))
        goto done;
    if (b->o.reply_to) {
        rc = mailbars_message_add_address(msg, MAILBARS_REPLY_TO, b->o.reply_to,
                                          strlen(b->o.reply_to), err);
        if (rc) goto done;
    } else if (b->req && (rc = add_addresses(msg, MAILBARS_REPLY_TO,
                                             mailbars_ses_request_reply_to(b->req), err))) {
        goto done;
    }
    if (b->o.message_id) {
        char id[512];
        snprintf(id, sizeof id, "%zu.%s", s->index, b->o.message_id);
        if ((rc = mailbars_message_set_message_id(msg, id))) {
            mb_error(err, rc, 0, 0, "invalid Message-ID '%s'", id);
            goto done;
        }
    }
    rc = mailbars_ses_render(w->st, b->t, data, msg, err);
    if (!rc) rc = mailbars_message_write(msg, &s->msg, err);
done:
    if (rc && !err->message[0]) mb_error(err, rc, 0, 0, NULL);
    s->status = rc;
    json_decref(data);
    json_decref(rec);
}

/* Worker thread: takes records in order of arrival and renders them. */
static void *worker_main(void *arg) {
    worker *w = arg;
    bulk *b = w->b;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (b->taken == b->produced && !b->eof) pthread_cond_wait(&b->work_cv, &b->mu);
        if (b->taken == b->produced) break;
        slot *s = &b->slots[b->taken % b->nslots];
        b->taken++;
        pthread_mutex_unlock(&b->mu);
        if (w->setup_rc) {
            s->status = w->setup_rc;
            s->err = w->setup_err;
        } else {
            process(w, s);
        }
        pthread_mutex_lock(&b->mu);
        s->state = SLOT_DONE;
        pthread_cond_signal(&b->done_cv); /* only the emitting thread waits on it */
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Prepares a worker's render state and message builder with the run's message settings. */
static int worker_setup(worker *w) {
    const mailbars_bulk_options *o = &w->b->o;
    mailbars_error *err = &w->setup_err;
    w->st = mailbars_ses_render_state_new();
    w->msg = mailbars_message_new();
    if (!w->st || !w->msg) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    json_t *shared = w->b->req ? mb_ses_request_defaults(w->b->req) : w->b->defaults;
    if (shared && !(w->defaults = json_deep_copy(shared)))
        return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    if (o->charset) {
        int rc = mailbars_message_set_charset(w->msg, o->charset, err);
        if (rc) return rc;
    }
    mailbars_message_set_encoding(w->msg, o->encoding);
    if (o->fixed_date) mailbars_message_set_date(w->msg, o->date, o->tz_minutes);
    if (o->boundary && mailbars_message_set_boundary(w->msg, o->boundary))
        return mb_error(err, MAILBARS_ERR_ARGUMENT, 0, 0, "invalid boundary '%s'", o->boundary);
    return MAILBARS_OK;
}

/* Hands the result in slot `s` to the sink. */
static int emit(bulk *b, slot *s, mailbars_bulk_sink_fn sink, void *ud) {
    mailbars_bulk_result r;
    memset(&r, 0, sizeof r);
    r.index = s->index;
    r.status = s->status;
    r.template_name = mailbars_ses_template_name(b->t);
    if (s->status == MAILBARS_OK) {
        r.message = s->msg.data ? s->msg.data : "";
        r.message_len = s->msg.len;
    } else {
        r.error = &s->err;
    }
    return sink(ud, &r);
}

/* Emits finished results in order until slot `limit` (exclusive) may be reused, i.e. while
 * fewer than `keep` results are outstanding. Called and returns with the lock held. */
static int drain(bulk *b, size_t keep, mailbars_bulk_sink_fn sink, void *ud, int *stopped) {
    while (b->produced - b->emitted > keep) {
        slot *s = &b->slots[b->emitted % b->nslots];
        if (s->state != SLOT_DONE) {
            pthread_cond_wait(&b->done_cv, &b->mu);
            continue;
        }
        pthread_mutex_unlock(&b->mu);
        int rc = *stopped ? 0 : emit(b, s, sink, ud);
        pthread_mutex_lock(&b->mu);
        if (rc) *stopped = 1;
        s->state = SLOT_FREE;
        b->emitted++;
    }
    return MAILBARS_OK;
}

/* Reads one line (without its newline) into `line`; returns 1 on a line, 0 at EOF, <0 on
 * error. Lines of any length are read in chunks. */
static int read_line(FILE *in, mailbars_buf *line) {
    char chunk[65536];
    mailbars_buf_reset(line);
    int got = 0;
    while (fgets(chunk, sizeof chunk, in)) {
        got = 1;
        size_t n = strlen(chunk);
        int eol = n > 0 && chunk[n - 1] == '\n';
        if (eol) n--;
        if (mailbars_buf_append(line, chunk, n)) return -MAILBARS_ERR_NOMEM;
        if (eol) break;
    }
    if (ferror(in)) return -MAILBARS_ERR_IO;
    if (got && line->len && line->data[line->len - 1] == '\r') line->data[--line->len] = 0;
    if (got && !line->data && mailbars_buf_append(line, "", 0)) return -MAILBARS_ERR_NOMEM;
    return got;
}

/* Is the line only whitespace? */
static int is_blank(const mailbars_buf *l) {
    for (size_t i = 0; i < l->len; i++)
        if (!strchr(" \t\r\f\v", l->data[i])) return 0;
    return 1;
}

/* The shared driver: `in` for JSON Lines, or b->req for a request. */
static int run(bulk *b, FILE *in, mailbars_bulk_sink_fn sink, void *ud, mailbars_error *err) {
    mailbars_error_clear(err);
    unsigned nthreads = b->o.threads;
    if (!nthreads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = n > 0 ? (unsigned)n : 1;
    }
    if (nthreads > 256) nthreads = 256;
    b->nslots = b->o.queue ? b->o.queue : 16u * nthreads;
    if (b->nslots < nthreads) b->nslots = nthreads;
    json_object_seed(0); /* jansson: seed its hash before threads create objects */
    b->slots = mb_calloc(b->nslots, sizeof *b->slots);
    worker *ws = mb_calloc(nthreads, sizeof *ws);
    pthread_t *tids = mb_calloc(nthreads, sizeof *tids);
    mailbars_buf pending = {0};
    int rc = MAILBARS_OK, stopped = 0;
    unsigned started = 0;
    if (!b->slots || !ws || !tids) {
        rc = mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
        goto out;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->work_cv, NULL);
    pthread_cond_init(&b->done_cv, NULL);
    for (unsigned i = 0; i < nthreads; i++) {
        ws[i].b = b;
        ws[i].setup_rc = worker_setup(&ws[i]);
        if (ws[i].setup_rc && i == 0) { /* a bad option (charset...) fails the run at once */
            rc = ws[i].setup_rc;
            if (err) *err = ws[i].setup_err;
            nthreads = 1;
            goto join;
        }
        if (pthread_create(&tids[i], NULL, worker_main, &ws[i])) {
            if (i == 0) {
                rc = mb_error(err, MAILBARS_ERR_INTERNAL, 0, 0, "cannot start a thread");
                goto join;
            }
            break;
        }
        started++;
    }
    size_t lineno = 0, total = b->req ? mailbars_ses_request_count(b->req) : 0;
    for (size_t seq = 0;; seq++) {
        if (b->req && seq >= total) break;
        if (!b->req) {
            int got;
            do {
                got = read_line(in, &pending);
                lineno += got > 0;
            } while (got > 0 && is_blank(&pending));
            if (got < 0) {
                rc = mb_error(err, -got, 0, 0, "reading the recipients: %s",
                              mailbars_status_message(-got));
                break;
            }
            if (got == 0) break;
        }
        pthread_mutex_lock(&b->mu);
        drain(b, b->nslots - 1, sink, ud, &stopped);
        pthread_mutex_unlock(&b->mu);
        if (stopped) break;
        slot *s = &b->slots[seq % b->nslots];
        s->index = seq + 1;
        s->lineno = lineno;
        if (!b->req) { /* hand the line over without copying it */
            mailbars_buf tmp = s->line;
            s->line = pending;
            pending = tmp;
        }
        pthread_mutex_lock(&b->mu);
        s->state = SLOT_PENDING;
        b->produced++;
        pthread_cond_signal(&b->work_cv);
        pthread_mutex_unlock(&b->mu);
    }
join:
    pthread_mutex_lock(&b->mu);
    b->eof = 1;
    pthread_cond_broadcast(&b->work_cv);
    if (started) drain(b, 0, sink, ud, &stopped);
    pthread_mutex_unlock(&b->mu);
    for (unsigned i = 0; i < started; i++) pthread_join(tids[i], NULL);
    if (stopped && !rc) rc = mb_error(err, MAILBARS_ERR_IO, 0, 0, "the output sink stopped");
    pthread_cond_destroy(&b->work_cv);
    pthread_cond_destroy(&b->done_cv);
    pthread_mutex_destroy(&b->mu);
out:
    for (unsigned i = 0; ws && i < nthreads; i++) {
        mailbars_ses_render_state_free(ws[i].st);
        mailbars_message_free(ws[i].msg);
        json_decref(ws[i].defaults);
    }
    for (size_t i = 0; b->slots && i < b->nslots; i++) {
        mailbars_buf_free(&b->slots[i].line);
        mailbars_buf_free(&b->slots[i].msg);
    }
    mailbars_buf_free(&pending);
    mb_free(b->slots);
    mb_free(ws);
    mb_free(tids);
    return rc;
}

/* Copies the caller's options (NULL = defaults) into the run. */
static void init_bulk(bulk *b, const mailbars_ses_template *t, const mailbars_bulk_options *o) {
    memset(b, 0, sizeof *b);
    b->t = t;
    if (o) b->o = *o;
}

int mailbars_bulk_run_jsonl(const mailbars_ses_template *t, FILE *in, json_t *defaults,
                            const mailbars_bulk_options *opts, mailbars_bulk_sink_fn sink,
                            void *userdata, mailbars_error *err) {
    if (!t || !in || !sink) return mb_error(err, MAILBARS_ERR_ARGUMENT, 0, 0, NULL);
    bulk b;
    init_bulk(&b, t, opts);
    b.defaults = defaults;
    return run(&b, in, sink, userdata, err);
}

int mailbars_bulk_run_request(const mailbars_ses_template *t, const mailbars_ses_request *req,
                              const mailbars_bulk_options *opts, mailbars_bulk_sink_fn sink,
                              void *userdata, mailbars_error *err) {
    if (!t || !req || !sink) return mb_error(err, MAILBARS_ERR_ARGUMENT, 0, 0, NULL);
    bulk b;
    init_bulk(&b, t, opts);
    b.req = req;
    return run(&b, NULL, sink, userdata, err);
}
