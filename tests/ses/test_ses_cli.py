#!/usr/bin/env python3
"""End-to-end tests of `mailbars render`, `check` and `bulk` on the SES developer guide's
examples (examples/*.json) and on fixtures. Every message is parsed back with Python's `email`
package (policy.default), an independent reader: decoded subject, addresses and parts must equal
the expected text. Where the handlebars.js oracle is installed, the expected parts are also
rendered by handlebars.js (noEscape, as SES does not escape) and must match byte for byte."""

import argparse
import email
import json
import mailbox
import os
import re
import shutil
import subprocess
import sys
from email import policy

PASSED = 0
FAILED = 0


def check(cond, what, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
    else:
        FAILED += 1
        print("FAIL: %s%s" % (what, ("\n      " + str(detail)) if detail != "" else ""))


def run(args, stdin=None):
    p = subprocess.run([ARGS.mailbars] + args, input=stdin, capture_output=True, timeout=120)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def parse(raw):
    return email.message_from_bytes(raw, policy=policy.default)


def body(msg, kind):
    part = msg.get_body((kind,))
    return None if part is None else part.get_content()


def norm(s):
    return None if s is None else s.replace("\r\n", "\n")


def wire_ok(raw, what):
    """Every line ends in CRLF, is at most 998 octets, and only 7-bit bytes are on the wire."""
    check(all(b < 128 for b in raw), what + ": 7-bit only")
    lines = raw.split(b"\r\n")
    check(all(b"\n" not in l and b"\r" not in l for l in lines), what + ": CRLF line endings")
    check(all(len(l) <= 998 for l in lines), what + ": lines <= 998 octets")


DET = ["--date", "2024-01-31T12:00:00Z", "--boundary", "b0undary-test", "--message-id",
       "test@example.com"]
FROM = "Mary Major <mary.major@example.com>"


def load_recipients(name):
    out = []
    with open(os.path.join(ARGS.examples, name + ".recipients.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
    return out


def load_template(name):
    with open(os.path.join(ARGS.examples, name + ".json"), encoding="utf-8") as f:
        return json.load(f)["Template"]


# ---- the oracle: handlebars.js with noEscape renders the expected parts ----

def oracle_render(cases):
    """Returns a list of outputs (None on error) or None when the oracle is unavailable."""
    if not ARGS.oracle or not os.path.exists(ARGS.oracle) or not shutil.which("node"):
        return None
    lines = "".join(json.dumps({"template": t, "data": d, "options": {"noEscape": True}}) + "\n"
                    for t, d in cases)
    try:
        p = subprocess.run(["node", ARGS.oracle, "--jsonl"], input=lines.encode(),
                           capture_output=True, timeout=120)
    except OSError:
        return None
    if p.returncode != 0:
        return None
    res = [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]
    return [r["output"] if r.get("ok") else None for r in res]


# ---- render ----

def test_render_examples():
    expected_by_hand = {
        ("MyTemplate", 0): ("Greetings, Alejandro!",
                            "Hello Alejandro,\n\nWe hear that your favorite animal is the "
                            "alligator.\nGood choice!\n",
                            "<h1>Hello Alejandro,</h1><p>We hear that your favorite animal is "
                            "the alligator. Good choice!</p>"),
        ("Preferences2", 1): ("Subscription preferences for Mateo Jackson",
                              "Mateo, you have not chosen any topics yet.\nPick a few at "
                              "https://www.example.com/preferences?id=30871122904\n",
                              "<p>Mateo, you have not chosen any topics yet. Pick a few in the "
                              "<a href=\"https://www.example.com/preferences?id=30871122904\">"
                              "preference center</a>.</p>"),
        ("Preferences2", 0): ("Subscription preferences for Anaya Iyengar",
                              "Anaya, these are the topics you follow:\n  - Sports\n  - Travel\n"
                              "  - Cooking\n",
                              "<p>Anaya, these are the topics you follow:</p><ul><li>Sports</li>"
                              "<li>Travel</li><li>Cooking</li></ul>"),
        ("Preferences3", 1): ("Prince, here are your subscription preferences",
                              "Hello Prince,\n\nYou follow these topics:\n  - Music\n  - Guitars\n",
                              "<h1>Hello Prince!</h1><p>You follow these topics:</p><ul><li>Music"
                              "</li><li>Guitars</li></ul>"),
        ("Preferences", 2): ("Your subscription preferences, Jürgen", None,
                             None),
    }
    work = os.path.join(ARGS.work, "render")
    os.makedirs(work, exist_ok=True)
    rendered = []  # (template, data, subject, text, html, where)
    for name in ["MyTemplate", "Preferences", "Preferences2", "Preferences3"]:
        tpl_file = os.path.join(ARGS.examples, name + ".json")
        tpl = load_template(name)
        for i, rec in enumerate(load_recipients(name)):
            data_file = os.path.join(work, "%s-%d.json" % (name, i))
            with open(data_file, "w", encoding="utf-8") as f:
                f.write(rec["ReplacementTemplateData"])
            to = ", ".join(rec["Destination"]["ToAddresses"])
            rc, out, err = run(["render", tpl_file, data_file, "--from", FROM, "--to", to] + DET)
            where = "%s recipient %d" % (name, i + 1)
            check(rc == 0, where + ": render exits 0", err)
            if rc != 0:
                continue
            wire_ok(out, where)
            msg = parse(out)
            subject, text, html = str(msg["subject"]), body(msg, "plain"), body(msg, "html")
            check(str(msg["to"]) == to, where + ": To decodes to the destination",
                  (str(msg["to"]), to))
            check(str(msg["from"]) == FROM, where + ": From")
            check(msg["message-id"] == "<test@example.com>", where + ": Message-ID")
            check(msg.get_content_type() == "multipart/alternative", where + ": alternative")
            hand = expected_by_hand.get((name, i))
            if hand:
                check(subject == hand[0], where + ": subject", (subject, hand[0]))
                if hand[1] is not None:
                    check(norm(text) == hand[1], where + ": text part", (text, hand[1]))
                if hand[2] is not None:
                    check(norm(html) == hand[2], where + ": html part", (html, hand[2]))
            data = json.loads(rec["ReplacementTemplateData"])
            rendered.append((tpl, data, subject, text, html, where))
            # deterministic: the same bytes again
            rc2, out2, _ = run(["render", tpl_file, data_file, "--from", FROM, "--to", to] + DET)
            check(out2 == out, where + ": deterministic output")
    cases = []
    for tpl, data, *_ in rendered:
        cases += [(tpl["SubjectPart"], data), (tpl["TextPart"], data), (tpl["HtmlPart"], data)]
    ref = oracle_render(cases)
    if ref is None:
        print("note: handlebars.js oracle not available; oracle comparisons skipped")
        return
    for k, (tpl, data, subject, text, html, where) in enumerate(rendered):
        s, t, h = ref[3 * k: 3 * k + 3]
        check(subject == s, where + ": subject equals handlebars.js", (subject, s))
        check(norm(text) == norm(t), where + ": text equals handlebars.js", (text, t))
        check(norm(html) == norm(h), where + ": html equals handlebars.js", (html, h))


def my_template_and_data(sub, name, text):
    """The MyTemplate example and a data file `name` holding `text` in work dir `sub`."""
    work = os.path.join(ARGS.work, sub)
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, name)
    with open(data, "w") as f:
        f.write(text)
    return work, os.path.join(ARGS.examples, "MyTemplate.json"), data


def test_render_failures():
    work, tpl, data = my_template_and_data("render", "partial-data.json", '{"name": "Alejandro"}')
    rc, out, err = run(["render", tpl, data])
    check(rc == 1, "missing attribute: exit 1", (rc, err))
    check(out == b"", "missing attribute: nothing on stdout")
    check("Attribute 'favoriteanimal' is not present in the rendering data." in err,
          "missing attribute: SES's message on stderr", err)
    check("text part" in err, "missing attribute: names the part (text renders before html)",
          err)
    # null is missing too
    with open(data, "w") as f:
        f.write('{"name": null, "favoriteanimal": "cat"}')
    rc, out, err = run(["render", tpl, data])
    check(rc == 1 and "Attribute 'name' is not present in the rendering data." in err,
          "null value: rendering failure", err)
    # data from stdin
    rc, out, err = run(["render", tpl, "-"], stdin=b'{"name":"A","favoriteanimal":"b"}')
    check(rc == 0 and str(parse(out)["subject"]) == "Greetings, A!", "data from stdin", err)
    # bad JSON data: FILE:LINE:COL
    with open(data, "w") as f:
        f.write('{\n  "name": "A",\n  "favoriteanimal": \n}\n')
    rc, out, err = run(["render", tpl, data])
    check(rc == 2 and err.startswith(data + ":4:1: error:"), "bad data JSON: exit 2 with position",
          (rc, err))
    # bad template JSON
    bad = os.path.join(ARGS.fixtures, "badjson.json")
    rc, out, err = run(["render", bad, data])
    check(rc == 2 and re.match(re.escape(bad) + r":5:\d+: error: invalid JSON", err),
          "bad template JSON: exit 2 with FILE:LINE:COL", (rc, err))
    # invalid template: unknown helper, with position in the file
    broken = os.path.join(ARGS.fixtures, "broken.json")
    rc, out, err = run(["render", broken, "-"], stdin=b"{}")
    check(rc == 2 and re.search(re.escape(broken) + r":\d+:\d+: error: \[subject", err),
          "invalid template: exit 2 with diagnostics", (rc, err))
    # usage
    rc, out, err = run(["render"])
    check(rc == 64, "render without arguments: 64", rc)
    rc, out, err = run(["render", tpl, "--bogus"])
    check(rc == 64, "unknown option: 64", rc)
    rc, out, err = run(["render", tpl, data, "--encoding", "uuencode"])
    check(rc == 64, "bad --encoding: 64", rc)
    rc, out, err = run(["render", tpl, "--profile", "mustache"])
    check(rc == 64, "bad --profile: 64", rc)
    # --escape and the handlebars profile
    with open(data, "w") as f:
        f.write('{"name": "<b>&", "favoriteanimal": "cat"}')
    rc, out, err = run(["render", tpl, data])
    check(rc == 0 and "<h1>Hello <b>&,</h1>" in body(parse(out), "html"),
          "SES does not escape HTML", err)
    rc, out, err = run(["render", tpl, data, "--escape"])
    check(rc == 0 and "<h1>Hello &lt;b&gt;&amp;,</h1>" in body(parse(out), "html"),
          "--escape escapes as handlebars.js", err)
    with open(data, "w") as f:
        f.write('{"name": "A"}')
    rc, out, err = run(["render", tpl, data, "--profile", "handlebars"])
    check(rc == 0 and "favorite animal is the ." in body(parse(out), "plain"),
          "handlebars profile: missing renders empty", err)


def test_render_requests():
    work = os.path.join(ARGS.work, "render")
    tpl = os.path.join(ARGS.examples, "MyTemplate.json")
    req = os.path.join(work, "test-render.json")
    with open(req, "w") as f:
        json.dump({"TemplateName": "MyTemplate",
                   "TemplateData": json.dumps({"name": "Liu Jie", "favoriteanimal": "yak"})}, f)
    rc, out, err = run(["render", tpl, req] + DET)
    check(rc == 0 and str(parse(out)["subject"]) == "Greetings, Liu Jie!",
          "TestRenderTemplate request as data", err)
    # a template file that also carries TemplateData
    combined = os.path.join(work, "combined.json")
    t = json.load(open(tpl))
    t["TemplateData"] = json.dumps({"name": "Shirley", "favoriteanimal": "squirrel"})
    with open(combined, "w") as f:
        json.dump(t, f)
    rc, out, err = run(["render", combined] + DET)
    check(rc == 0 and str(parse(out)["subject"]) == "Greetings, Shirley!",
          "template file carrying TemplateData", err)
    # SendTemplatedEmail: Destination and Source give the headers
    send = os.path.join(work, "send.json")
    with open(send, "w") as f:
        json.dump({"Source": FROM, "Template": "MyTemplate",
                   "Destination": {"ToAddresses": ["Zoë <zoe@example.org>"],
                                   "CcAddresses": ["cc@example.com"]},
                   "TemplateData": json.dumps({"name": "Zoë", "favoriteanimal": "hérisson"})}, f)
    rc, out, err = run(["render", tpl, send] + DET)
    msg = parse(out) if rc == 0 else None
    check(msg is not None and str(msg["to"]) == "Zoë <zoe@example.org>" and
          str(msg["cc"]) == "cc@example.com" and str(msg["from"]) == FROM and
          str(msg["subject"]) == "Greetings, Zoë!", "SendTemplatedEmail headers", err)
    # SES v2 template shape
    v2 = os.path.join(work, "v2.json")
    with open(v2, "w") as f:
        json.dump({"TemplateName": "V2", "TemplateContent": {
            "Subject": "Hi {{name}}", "Text": "Unsubscribe: {{amazonSESUnsubscribeUrl}}"}}, f)
    rc, out, err = run(["render", v2, "-"], stdin=b'{"name":"A"}')
    msg = parse(out) if rc == 0 else None
    check(msg is not None and msg.get_content_type() == "text/plain" and
          norm(msg.get_content()).rstrip("\n") == "Unsubscribe: {{amazonSESUnsubscribeUrl}}",
          "SES v2 shape, single part, unsubscribe placeholder verbatim", err)


# ---- bulk ----

def read_status(out):
    return [json.loads(l) for l in out.decode().splitlines()]


def test_bulk_request():
    work = os.path.join(ARGS.work, "bulk-request")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    req = os.path.join(work, "req.json")
    dests = [("Anaya Iyengar <anaya@example.com>", {"name": "Anaya", "favoriteanimal": "angelfish"}),
             ("Liu Jie <liu@example.com>", {"name": "Liu Jie", "favoriteanimal": "yak"}),
             ("Shirley Rodriguez <shirley@example.com>", {}),
             ("Broken <broken@example.com>", {"favoriteanimal": None})]
    with open(req, "w") as f:
        json.dump({"Source": FROM, "Template": "MyTemplate",
                   "Destinations": [{"Destination": {"ToAddresses": [a]},
                                     "ReplacementTemplateData": json.dumps(d)} for a, d in dests],
                   "DefaultTemplateData": json.dumps({"name": "friend",
                                                      "favoriteanimal": "unknown"})}, f)
    out_dir = os.path.join(work, "out")
    rc, out, err = run(["bulk", "--template", os.path.join(ARGS.examples, "MyTemplate.json"),
                        "--request", req, "--out", out_dir, "--threads", "2"] + DET)
    check(rc == 1, "bulk with a failed destination exits 1", (rc, err))
    lines = out.decode().splitlines()
    check(lines[:3] == ['{"index":1,"status":"Success","file":"000001.eml"}',
                        '{"index":2,"status":"Success","file":"000002.eml"}',
                        '{"index":3,"status":"Success","file":"000003.eml"}'],
          "status lines exactly as DESIGN.md", lines)
    check(len(lines) == 4 and lines[3] ==
          '{"index":4,"status":"Failed","eventType":"Rendering Failure","failure":'
          '{"templateName":"MyTemplate","errorMessage":"Attribute \'favoriteanimal\' is not '
          'present in the rendering data."}}', "failure record exactly", lines)
    subjects = []
    for i, (addr, _) in enumerate(dests[:3]):
        path = os.path.join(out_dir, "%06d.eml" % (i + 1))
        raw = open(path, "rb").read()
        wire_ok(raw, path)
        msg = parse(raw)
        check(str(msg["to"]) == addr, "bulk To from the destination", (str(msg["to"]), addr))
        check(str(msg["from"]) == FROM, "bulk From from Source")
        check(msg["message-id"] == "<%d.test@example.com>" % (i + 1), "bulk Message-ID N.ID",
              msg["message-id"])
        subjects.append(str(msg["subject"]))
    check(subjects == ["Greetings, Anaya!", "Greetings, Liu Jie!", "Greetings, friend!"],
          "ReplacementTemplateData over DefaultTemplateData ({} = defaults)", subjects)
    text3 = body(parse(open(os.path.join(out_dir, "000003.eml"), "rb").read()), "plain")
    check("favorite animal is the unknown." in text3, "defaults fill the {} destination")
    check(not os.path.exists(os.path.join(out_dir, "000004.eml")), "no file for a failure")

    # SES v2 request with inline template content, no --template
    v2 = os.path.join(ARGS.fixtures, "v2-inline-request.json")
    rc, out, err = run(["bulk", "--request", v2, "--mbox", os.path.join(work, "v2.mbox")] + DET)
    check(rc == 0, "v2 SendBulkEmail with inline template", (rc, err))
    box = mailbox.mbox(os.path.join(work, "v2.mbox"))
    subj = [str(parse(m.as_bytes())["subject"]) for m in box]
    check(subj == ["Hello Ann", "Hello friend"], "v2 replacement over defaults", subj)


def test_bulk_examples():
    work = os.path.join(ARGS.work, "bulk-examples")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    for name in ["MyTemplate", "Preferences", "Preferences2", "Preferences3"]:
        out_dir = os.path.join(work, name)
        rc, out, err = run(["bulk", "--template", os.path.join(ARGS.examples, name + ".json"),
                            "--data", os.path.join(ARGS.examples, name + ".recipients.jsonl"),
                            "--out", out_dir, "--from", FROM] + DET)
        recs = load_recipients(name)
        check(rc == 0, name + ": bulk exits 0", err)
        st = read_status(out)
        check([s["index"] for s in st] == list(range(1, len(recs) + 1)) and
              all(s["status"] == "Success" for s in st), name + ": one Success per recipient", st)
        for i, rec in enumerate(recs):
            raw = open(os.path.join(out_dir, "%06d.eml" % (i + 1)), "rb").read()
            msg = parse(raw)
            check(str(msg["to"]) == rec["Destination"]["ToAddresses"][0],
                  name + ": To from the recipient line")
    msg = parse(open(os.path.join(work, "Preferences2", "000002.eml"), "rb").read())
    check("you have not chosen any topics yet" in body(msg, "plain") and
          "<li>" not in body(msg, "html"),
          "Preferences2: the recipient without subscription gets the else branch")


def test_bulk_order_and_failures():
    work = os.path.join(ARGS.work, "bulk-order")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    data = os.path.join(work, "recipients.jsonl")
    n = 400
    expect = []
    with open(data, "w", encoding="utf-8") as f:
        for i in range(1, n + 1):
            if i % 97 == 0:
                f.write('{"name": "R%d", oops\n' % i)
                expect.append(("json", i))
            elif i % 31 == 0:
                f.write(json.dumps({"data": {"name": "R%d" % i, "favoriteanimal": None},
                                    "to": "r%d@example.com" % i}) + "\n")
                expect.append(("missing", i))
            else:
                rec = {"name": "R%d" % i}
                if i % 5 == 0:
                    rec = {"data": rec, "to": ["r%d@example.com" % i],
                           "cc": "cc%d@example.com" % i}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                expect.append(("ok", i))
            if i == 10:
                f.write("\n")
    defaults = os.path.join(work, "defaults.json")
    with open(defaults, "w") as f:
        f.write('{"favoriteanimal": "owl", "name": "nobody"}')
    tpl = os.path.join(ARGS.examples, "MyTemplate.json")
    for mode in ["out", "mbox"]:
        target = os.path.join(work, "out" if mode == "out" else "all.mbox")
        rc, out, err = run(["bulk", "--template", tpl, "--data", data, "--defaults", defaults,
                            "--" + mode, target, "--threads", "3"] + DET)
        check(rc == 1, mode + ": exit 1 when some failed", (rc, err))
        st = read_status(out)
        check([s["index"] for s in st] == list(range(1, n + 1)), mode + ": every record, in order")
        ok = True
        line_of = {}
        lineno = 0
        for i in range(1, n + 1):
            lineno += 1
            line_of[i] = lineno
            if i == 10:
                lineno += 1
        for (kind, i), s in zip(expect, st):
            if kind == "ok":
                ok &= s["status"] == "Success"
            elif kind == "missing":
                ok &= s["status"] == "Failed" and s["failure"]["errorMessage"] == \
                    "Attribute 'favoriteanimal' is not present in the rendering data."
            else:
                ok &= s["status"] == "Failed" and s["eventType"] == "Rendering Failure" and \
                    s["failure"]["errorMessage"].startswith("line %d, column" % line_of[i]) and \
                    s["failure"]["templateName"] == "MyTemplate"
        check(ok, mode + ": statuses and failure records as expected",
              [s for s in st if s["status"] != "Success"][:3])
        good = [i for kind, i in expect if kind == "ok"]
        if mode == "out":
            files = sorted(os.listdir(target))
            check(files == ["%06d.eml" % i for i in good], "out: one file per success")
            msgs = [parse(open(os.path.join(target, "%06d.eml" % i), "rb").read()) for i in good]
        else:
            box = mailbox.mbox(target)
            msgs = [parse(m.as_bytes()) for m in box]
            check(len(msgs) == len(good), "mbox: one message per success", len(msgs))
        subj_ok = all(str(m["subject"]) == "Greetings, R%d!" % i for m, i in zip(msgs, good))
        check(subj_ok, mode + ": each message is its record's")
        m5 = msgs[good.index(5)]
        check(str(m5["to"]) == "r5@example.com" and str(m5["cc"]) == "cc5@example.com",
              mode + ": envelope to/cc")
        check("favorite animal is the owl." in body(msgs[0], "plain"),
              mode + ": --defaults merged under each record")


def test_bulk_usage():
    tpl = os.path.join(ARGS.examples, "MyTemplate.json")
    rc, _, _ = run(["bulk", "--template", tpl, "--out", "x"])
    check(rc == 64, "bulk without --data/--request: 64")
    rc, _, _ = run(["bulk", "--template", tpl, "--data", "-", "--out", "x", "--mbox", "y"])
    check(rc == 64, "bulk with --out and --mbox: 64")
    rc, _, _ = run(["bulk", "--template", tpl, "--data", "-", "--out", "x", "--threads", "0"])
    check(rc == 64, "bulk --threads 0: 64")
    work = os.path.join(ARGS.work, "bulk-stdin")
    shutil.rmtree(work, ignore_errors=True)
    rc, out, err = run(["bulk", "--template", tpl, "--data", "-", "--out", work] + DET,
                       stdin=b'{"name":"A","favoriteanimal":"b"}\n{"name":"B"}\n')
    st = read_status(out)
    check(rc == 1 and len(st) == 2 and st[0]["status"] == "Success" and
          st[1]["status"] == "Failed", "bulk from stdin", (rc, out, err))


# ---- check ----

def raw_pos(path, needle, nth=1):
    """1-based line and column (characters) of the nth occurrence of needle in a file."""
    text = open(path, encoding="utf-8").read()
    idx = -1
    for _ in range(nth):
        idx = text.index(needle, idx + 1)
    line = text.count("\n", 0, idx) + 1
    col = idx - (text.rfind("\n", 0, idx) + 1) + 1
    return line, col


def test_check():
    broken = os.path.join(ARGS.fixtures, "broken.json")
    rc, out, err = run(["check", broken])
    check(rc == 2, "check: errors give exit 2", (rc, err))
    lines = err.splitlines()
    heads = [l for l in lines if l.startswith(broken + ":")]
    l, c = raw_pos(broken, "{{> signature}}")
    want = ("%s:%d:%d: error: [text 2:1] partial 'signature' is defined in the html part, not in "
            "this part: inline partials are scoped to the part that defines them" % (broken, l, c))
    check(want in heads, "check: partial from another part, exact line", heads)
    if want in lines:
        k = lines.index(want)
        check(lines[k + 1:k + 3] == ["    {{> signature}}", "    ^"],
              "check: quoted template line and caret", lines[k + 1:k + 3])
    l, c = raw_pos(broken, "{{formatPrice")
    want = ("%s:%d:%d: error: [text 3:16] unknown helper 'formatPrice' in a mustache: SES "
            "provides only the built-in helpers (if, unless, each, with, lookup, log)"
            % (broken, l, c))
    check(want in heads, "check: unknown helper, exact line", heads)
    if want in lines:
        k = lines.index(want)
        check(lines[k + 2] == "    " + " " * 15 + "^", "check: caret under the helper",
              lines[k + 1:k + 3])
    l, c = raw_pos(broken, "{{ses:openTracker}}", 2)
    want = ("%s:%d:%d: warning: [html 1:70] {{ses:openTracker}} appears more than once; SES "
            "inserts one open tracking pixel" % (broken, l, c))
    check(want in heads, "check: second open tracker warning", heads)
    subj = [h for h in heads if "[subject" in h]
    check(len(subj) == 1 and ": error: [subject 1:" in subj[0] and
          subj[0].startswith("%s:4:" % broken), "check: subject parse error on file line 4", subj)
    check(lines[-1] == "3 errors, 1 warning", "check: summary line", lines[-1:])

    # JSON output carries the same, machine-readable
    rc, out, err = run(["check", broken, "--format", "json"])
    diags = json.loads(out)
    check(rc == 2 and len(diags) == 4 and
          {d["part"] for d in diags} == {"subject", "text", "html"} and
          all(set(d) >= {"file", "line", "column", "severity", "part", "partLine", "partColumn",
                         "code", "message"} for d in diags),
          "check --format json", diags)

    # clean examples: exit 0, silent
    ex = [os.path.join(ARGS.examples, n + ".json")
          for n in ["MyTemplate", "Preferences", "Preferences2", "Preferences3"]]
    rc, out, err = run(["check"] + ex)
    check(rc == 0 and err == "", "check: the SES examples are clean", err)

    # --data: every attribute the sample lacks
    sample = os.path.join(ARGS.fixtures, "sample-partial.json")
    prefs = os.path.join(ARGS.examples, "Preferences.json")
    rc, out, err = run(["check", prefs, "--data", sample])
    heads = [l for l in err.splitlines() if l.startswith(prefs + ":")]
    userid = [h for h in heads if "Attribute 'meta.userId' is not present" in h]
    interest = [h for h in heads if "Attribute 'interest' is not present" in h]
    check(rc == 2 and len(userid) == 2 and len(interest) == 2 and
          all(": error: " in h for h in userid + interest),
          "check --data: meta.userId and the second item's interest, in both parts", heads)
    check(not any("firstName" in h for h in heads), "check --data: present ones not reported")

    # bad JSON position
    bad = os.path.join(ARGS.fixtures, "badjson.json")
    rc, out, err = run(["check", bad])
    check(rc == 2 and re.match(re.escape(bad) + r":5:\d+: error: invalid JSON: ", err),
          "check: bad JSON with its position", err)

    # SES v2 inline content beyond {{name}}
    v2 = os.path.join(ARGS.fixtures, "v2-inline-request.json")
    rc, out, err = run(["check", v2])
    l, c = raw_pos(v2, "{{#if vip}}")
    check(rc == 0 and ("%s:%d:%d: warning: [text 1:14] SES v2 inline templates support only "
                       "simple {{name}} substitutions" % (v2, l, c)) in err,
          "check: v2 inline unsupported operations", err)
    rc, out, err = run(["check"])
    check(rc == 64, "check without files: 64")


def test_limits():
    work, tpl, data = my_template_and_data(
        "limits", "deep.json", '{"name": "A",\n "favoriteanimal": "cat", "x": [[[1]]]}')
    rc, out, err = run(["render", tpl, data])
    check(rc == 0, "deep data renders with the default limits", (rc, err))
    rc, out, err = run(["render", tpl, data, "--limit", "json-depth=3"])
    check(rc == 2 and err.startswith(data + ":2:34: error:") and "limit of 3" in err,
          "--limit json-depth: exit 2 at the bracket that goes too deep", (rc, err))
    rc, out, err = run(["render", tpl, data, "--limit=output=5"])
    check(rc == 1 and "output" in err and out == b"", "--limit output: a render failure", (rc, err))
    rc, out, err = run(["render", tpl, data, "--limit", "nesting=0", "--limit", "steps=1"])
    check(rc == 1 and "step" in err, "--limit steps=1: a render failure", (rc, err))
    for bad in ["bogus=1", "steps", "steps=-1", "steps=1k", "steps=", "steps=99999999999999999999"]:
        rc, out, err = run(["render", tpl, data, "--limit", bad])
        check(rc == 64 and "--limit" in err, "bad --limit %s: usage error 64" % bad, (rc, err))
    recs = os.path.join(work, "recs.jsonl")
    with open(recs, "w") as f:
        f.write('{"name": "R1", "favoriteanimal": "owl"}\n{"name": "R2", "favoriteanimal": [[1]]}\n')
    rc, out, err = run(["bulk", "--template", tpl, "--data", recs, "--out",
                        os.path.join(work, "out"), "--limit", "json-depth=2"] + DET)
    st = read_status(out)
    check(rc == 1 and [s["status"] for s in st] == ["Success", "Failed"],
          "bulk --limit json-depth: the deep record fails alone", (rc, st, err))


def test_help():
    for cmd in ["render", "check", "bulk"]:
        rc, out, err = run([cmd, "--help"])
        check(rc == 0 and out.decode().startswith("usage: mailbars " + cmd), cmd + " --help")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailbars", required=True)
    ap.add_argument("--examples", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--oracle", default="")
    ap.add_argument("--work", required=True)
    ARGS = ap.parse_args()
    os.makedirs(ARGS.work, exist_ok=True)
    for t in [test_help, test_render_examples, test_render_failures, test_render_requests,
              test_bulk_request, test_bulk_examples, test_bulk_order_and_failures,
              test_bulk_usage, test_check, test_limits]:
        try:
            t()
        except Exception as e:  # a crash in one group is a failure, not the end of the run
            check(False, "%s raised %r" % (t.__name__, e))
    print("%d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
