/* mailbars bulk: one SES template, many recipients, rendered on all cores into DIR/000001.eml…
 * or one mbox file, with one JSON status line per destination on stdout. */
#include "common.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static void bulk_help(FILE *f) {
    fprintf(f,
            "usage: mailbars bulk --template T.json (--request REQ.json | --data RECIPIENTS.jsonl\n"
            "                     [--defaults D.json]) (--out DIR | --mbox FILE) [--threads N]\n"
            "                     [OPTIONS]\n"
            "\n"
            "Renders one SES template for many recipients, like SendBulkTemplatedEmail.\n"
            "\n"
            "  --template T.json     the template (any shape 'render' accepts); may be left out\n"
            "                        when the request carries SES v2 inline TemplateContent\n"
            "  --request REQ.json    SendBulkTemplatedEmail, SES v2 SendBulkEmail,\n"
            "                        SendTemplatedEmail or TestRenderTemplate request:\n"
            "                        ReplacementTemplateData is deep-merged over\n"
            "                        DefaultTemplateData; To/Cc come from each Destination\n"
            "  --data FILE.jsonl     JSON Lines ('-' = stdin), read one line at a time; each\n"
            "                        line is one recipient:\n"
            "                        - an SES destination {\"Destination\":{\"ToAddresses\":\n"
            "                          [...]},\"ReplacementTemplateData\":\"{...}\"}\n"
            "                        - {\"data\":{...},\"to\":[...],\"cc\":[...],\"bcc\":[...]}\n"
            "                          (to/cc/bcc: an address string or an array of them)\n"
            "                        - or the data object itself.\n"
            "                        Blank lines are skipped.\n"
            "  --defaults D.json     data every JSON Lines record is deep-merged over\n"
            "  --out DIR             write DIR/000001.eml, 000002.eml, ... (created if needed)\n"
            "  --mbox FILE           write one mbox file (mboxrd: From_ lines, LF endings)\n"
            "  --threads N           worker threads (default: number of cores)\n"
            "\n"
            "stdout: one JSON line per destination, in order:\n"
            "  {\"index\":1,\"status\":\"Success\",\"file\":\"000001.eml\"}\n"
            "  {\"index\":2,\"status\":\"Failed\",\"eventType\":\"Rendering Failure\",\n"
            "   \"failure\":{\"templateName\":\"...\",\"errorMessage\":\"...\"}}\n"
            "--message-id ID gives message N the Message-ID <N.ID>.\n"
            "A progress bar is shown on stderr when it is a terminal.\n"
            "\n"
            "exit status: 0 all rendered, 1 some destination failed, 2 invalid template,\n"
            "  request or defaults, 64 bad usage, 74 output error.\n"
            "\n");
    cli_print_common_help(f);
}

typedef struct sink_ctx {
    const char *dir;
    FILE *mbox;
    const char *mbox_name;
    char stamp[64]; /* asctime-style date for mbox From_ lines */
    size_t done, failed, total;
    int progress;
    double last_draw;
} sink_ctx;

static double now_seconds(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* Redraws the progress bar (at most ten times a second, and at the end). */
static void draw_progress(sink_ctx *c, int final) {
    double t = now_seconds();
    if (!final && t - c->last_draw < 0.1) return;
    c->last_draw = t;
    if (c->total) {
        int w = 30, filled = (int)((double)c->done / (double)c->total * w);
        fprintf(stderr, "\r[%.*s%*s] %zu/%zu", filled, "##############################", w - filled,
                "", c->done, c->total);
    } else {
        fprintf(stderr, "\r%zu rendered", c->done);
    }
    if (c->failed) fprintf(stderr, ", %zu failed", c->failed);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

/* Writes a message into the mbox: From_ line, CRLF to LF, ">From " quoting (mboxrd). */
static int write_mbox(sink_ctx *c, const char *m, size_t n) {
    if (fprintf(c->mbox, "From mailbars@localhost %s\n", c->stamp) < 0) return -1;
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && m[e] != '\n') e++;
        size_t len = e - i;
        if (len && m[i + len - 1] == '\r') len--;
        size_t q = i;
        while (q < i + len && m[q] == '>') q++;
        if (i + len - q >= 5 && !memcmp(m + q, "From ", 5)) fputc('>', c->mbox);
        fwrite(m + i, 1, len, c->mbox);
        fputc('\n', c->mbox);
        i = e + 1;
    }
    fputc('\n', c->mbox);
    return ferror(c->mbox) ? -1 : 0;
}

/* The sink: writes the message (or nothing), prints the status line, updates progress. */
static int bulk_sink(void *ud, const mailbars_bulk_result *r) {
    sink_ctx *c = ud;
    json_t *o;
    if (r->status == MAILBARS_OK) {
        char name[32];
        snprintf(name, sizeof name, "%06zu.eml", r->index);
        if (c->dir) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", c->dir, name);
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(r->message, 1, r->message_len, f) != r->message_len) {
                fprintf(stderr, "mailbars bulk: %s: %s\n", path, strerror(errno));
                if (f) fclose(f);
                return 1;
            }
            if (fclose(f)) {
                fprintf(stderr, "mailbars bulk: %s: %s\n", path, strerror(errno));
                return 1;
            }
            o = json_pack("{s:I, s:s, s:s}", "index", (json_int_t)r->index, "status", "Success",
                          "file", name);
        } else {
            if (write_mbox(c, r->message, r->message_len)) {
                fprintf(stderr, "mailbars bulk: %s: %s\n", c->mbox_name, strerror(errno));
                return 1;
            }
            o = json_pack("{s:I, s:s, s:s}", "index", (json_int_t)r->index, "status", "Success",
                          "file", c->mbox_name);
        }
    } else {
        c->failed++;
        o = json_pack("{s:I, s:s, s:s, s:{s:s, s:s}}", "index", (json_int_t)r->index, "status",
                      "Failed", "eventType", "Rendering Failure", "failure", "templateName",
                      r->template_name ? r->template_name : "", "errorMessage",
                      r->error && r->error->message[0] ? r->error->message : "rendering failed");
    }
    c->done++;
    if (!o) return 1;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s) return 1;
    int bad = puts(s) < 0;
    free(s);
    if (c->progress) draw_progress(c, 0);
    return bad;
}

int cmd_bulk(int argc, char **argv) {
    cli_opts o;
    memset(&o, 0, sizeof o);
    const char *tfile = NULL, *rfile = NULL, *dfile = NULL, *deffile = NULL, *outdir = NULL,
               *mbox = NULL, *threads = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            bulk_help(stdout);
            return EXIT_OK;
        }
        int r = cli_value_option("bulk", "--template", argc, argv, &i, &tfile);
        if (!r) r = cli_value_option("bulk", "--request", argc, argv, &i, &rfile);
        if (!r) r = cli_value_option("bulk", "--data", argc, argv, &i, &dfile);
        if (!r) r = cli_value_option("bulk", "--defaults", argc, argv, &i, &deffile);
        if (!r) r = cli_value_option("bulk", "--out", argc, argv, &i, &outdir);
        if (!r) r = cli_value_option("bulk", "--mbox", argc, argv, &i, &mbox);
        if (!r) r = cli_value_option("bulk", "--threads", argc, argv, &i, &threads);
        if (!r) r = cli_common_option("bulk", &o, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        fprintf(stderr, "mailbars bulk: unexpected argument '%s' (see --help)\n", argv[i]);
        return EXIT_USAGE;
    }
    const char *usage = "usage: mailbars bulk --template T.json (--request REQ.json | --data "
                        "RECIPIENTS.jsonl [--defaults D.json]) (--out DIR | --mbox FILE) "
                        "[--threads N]\n";
    if (!rfile == !dfile || !outdir == !mbox || (deffile && !dfile) || (!tfile && !rfile)) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    mailbars_bulk_options bo;
    memset(&bo, 0, sizeof bo);
    if (threads) {
        char *end;
        long n = strtol(threads, &end, 10);
        if (*end || n < 1 || n > 256) {
            fprintf(stderr, "mailbars bulk: --threads must be 1 to 256, not '%s'\n", threads);
            return EXIT_USAGE;
        }
        bo.threads = (unsigned)n;
    }
    mailbars_ses_options so;
    if (cli_ses_options("bulk", &o, &so)) return EXIT_USAGE;
    bo.from = o.from;
    bo.reply_to = o.reply_to;
    bo.charset = o.charset;
    bo.boundary = o.boundary;
    bo.message_id = o.message_id;
    if (o.encoding && cli_parse_encoding(o.encoding, &bo.encoding)) {
        fprintf(stderr, "mailbars bulk: --encoding must be auto, quoted-printable or base64\n");
        return EXIT_USAGE;
    }
    if (o.date) {
        if (cli_parse_date(o.date, &bo.date, &bo.tz_minutes)) {
            fprintf(stderr, "mailbars bulk: --date '%s': use @SECONDS or YYYY-MM-DDTHH:MM:SSZ\n",
                    o.date);
            return EXIT_USAGE;
        }
        bo.fixed_date = 1;
    }
    if (o.to || o.cc) {
        fprintf(stderr, "mailbars bulk: --to/--cc come from each destination; use --from and "
                        "--reply-to for the shared headers\n");
        return EXIT_USAGE;
    }

    int rc = EXIT_OK;
    mailbars_buf tsrc = {0}, rsrc = {0}, dsrc = {0};
    mailbars_ses_template *t = NULL;
    mailbars_ses_request *req = NULL;
    json_t *defaults = NULL;
    FILE *in = NULL;
    sink_ctx sc;
    memset(&sc, 0, sizeof sc);
    mailbars_error e, w;
    mailbars_error_clear(&e);

    if (rfile) {
        if ((rc = cli_read_file(rfile, &rsrc))) goto done;
        req = mailbars_ses_request_parse(rsrc.data, rsrc.len, &so, &w, &e);
        if (!req) {
            if (e.line > 0)
                fprintf(stderr, "%s:%d:%d: error: %s\n", rfile, e.line, e.column, e.message);
            else
                fprintf(stderr, "%s: error: %s\n", rfile, e.message);
            rc = EXIT_INVALID;
            goto done;
        }
        if (w.code) fprintf(stderr, "%s: warning: %s\n", rfile, w.message);
    }
    if (tfile) {
        if ((rc = cli_read_file(tfile, &tsrc))) goto done;
        t = mailbars_ses_template_parse(tsrc.data, tsrc.len, &so, &e);
    } else if (mailbars_ses_request_inline_template(req)) {
        tfile = rfile;
        json_t *wrap =
            json_pack("{s:O}", "TemplateContent", mailbars_ses_request_inline_template(req));
        const char *nm = mailbars_ses_request_template_name(req);
        if (wrap && nm[0]) json_object_set_new(wrap, "TemplateName", json_string(nm));
        t = wrap ? mailbars_ses_template_from_json(wrap, &so, &e) : NULL;
        json_decref(wrap);
    } else {
        fprintf(stderr, "mailbars bulk: the request has no inline template: give --template\n");
        rc = EXIT_USAGE;
        goto done;
    }
    if (!t) {
        mailbars_ses_diags d = {0};
        mailbars_ses_check(tfile == rfile ? rsrc.data : tsrc.data,
                           tfile == rfile ? rsrc.len : tsrc.len, NULL, &so, &d);
        if (mailbars_ses_diags_errors(&d)) {
            for (size_t i = 0; i < d.len; i++)
                if (d.items[i].severity == MAILBARS_SEV_ERROR) {
                    mailbars_ses_diags one = {&d.items[i], 1, 1};
                    cli_print_diags(stderr, tfile, &one);
                }
        } else if (e.line > 0) {
            fprintf(stderr, "%s:%d:%d: error: %s%s%s\n", tfile, e.line, e.column, e.part,
                    e.part[0] ? ": " : "", e.message);
        } else {
            fprintf(stderr, "%s: error: %s\n", tfile, e.message);
        }
        mailbars_ses_diags_free(&d);
        rc = EXIT_INVALID;
        goto done;
    }
    if (deffile) {
        if ((rc = cli_read_file(deffile, &dsrc))) goto done;
        defaults = mailbars_ses_parse_data(dsrc.data, dsrc.len, "defaults", so.limits, &e);
        if (!defaults) {
            if (e.line > 0)
                fprintf(stderr, "%s:%d:%d: error: %s\n", deffile, e.line, e.column, e.message);
            else
                fprintf(stderr, "%s: error: %s\n", deffile, e.message);
            rc = EXIT_INVALID;
            goto done;
        }
    }
    if (dfile) {
        in = strcmp(dfile, "-") ? fopen(dfile, "rb") : stdin;
        if (!in) {
            fprintf(stderr, "mailbars bulk: %s: %s\n", dfile, strerror(errno));
            rc = EXIT_IOERR;
            goto done;
        }
    }
    if (outdir) {
        if (mkdir(outdir, 0777) && errno != EEXIST) {
            fprintf(stderr, "mailbars bulk: %s: %s\n", outdir, strerror(errno));
            rc = EXIT_IOERR;
            goto done;
        }
        sc.dir = outdir;
    } else {
        sc.mbox = fopen(mbox, "wb");
        if (!sc.mbox) {
            fprintf(stderr, "mailbars bulk: %s: %s\n", mbox, strerror(errno));
            rc = EXIT_IOERR;
            goto done;
        }
        sc.mbox_name = mbox;
        time_t when = bo.fixed_date ? bo.date : time(NULL);
        struct tm tm;
        gmtime_r(&when, &tm);
        strftime(sc.stamp, sizeof sc.stamp, "%a %b %e %H:%M:%S %Y", &tm);
    }
    sc.progress = isatty(2);
    sc.total = req ? mailbars_ses_request_count(req) : 0;
    int r = req ? mailbars_bulk_run_request(t, req, &bo, bulk_sink, &sc, &e)
                : mailbars_bulk_run_jsonl(t, in, defaults, &bo, bulk_sink, &sc, &e);
    if (sc.progress) draw_progress(&sc, 1);
    fflush(stdout);
    if (r) {
        fprintf(stderr, "mailbars bulk: %s\n", e.message);
        rc = r == MAILBARS_ERR_NOMEM || r == MAILBARS_ERR_IO ? EXIT_IOERR : EXIT_USAGE;
    } else if (sc.failed) {
        rc = EXIT_RENDER;
    }
done:
    if (sc.mbox && fclose(sc.mbox) && !rc) {
        fprintf(stderr, "mailbars bulk: %s: %s\n", mbox, strerror(errno));
        rc = EXIT_IOERR;
    }
    if (in && in != stdin) fclose(in);
    json_decref(defaults);
    mailbars_ses_request_free(req);
    mailbars_ses_template_free(t);
    mailbars_buf_free(&tsrc);
    mailbars_buf_free(&rsrc);
    mailbars_buf_free(&dsrc);
    return rc;
}
