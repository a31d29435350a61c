#!/usr/bin/env python3
"""Generates the seed corpora in fuzz/corpus/<harness>/ from the handlebars and mustache spec
cases (../shared/spec relative to the repository, or the folder given as the first argument)
and from the SES examples in examples/. Deterministic: running it twice gives the same files.
Only files named "spec-*" or "gen-*" are replaced; hand-written seeds and the units the
fuzzers found ("fuzz-*") are left alone.

Input layouts (see each harness's header comment):
  compile: 2 flag bytes, template
  render:  2 option bytes, template \x1e data JSON \x1e partials (name \x1f source \x1f ...)
           \x1e @data JSON
  ses:     1 option byte, template JSON \x1e request JSON \x1e sample data JSON
  mime:    mode byte, parameter byte, payload
  address: charset byte, address list
"""
import glob
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPEC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "spec")
SEP, PSEP = b"\x1e", b"\x1f"
FLAG_BITS = {"noEscape": 0, "strict": 1, "assumeObjects": 2, "compat": 3,
             "knownHelpersOnly": 4, "preventIndent": 5, "ignoreStandalone": 6,
             "explicitPartialContext": 7}
MAX_SEED = 4096


def spec_cases():
    """Yields (file stem, case) for every case with a string template, in a stable order."""
    for path in sorted(glob.glob(os.path.join(SPEC, "handlebars", "*.json")) +
                       glob.glob(os.path.join(SPEC, "mustache", "*.json"))):
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if isinstance(doc, dict):
            doc = doc.get("tests", [])
        stem = os.path.basename(path).replace(".json", "").lstrip("~")
        for case in doc:
            if isinstance(case.get("template"), str):
                yield stem, case


def flags_of(case):
    """The two flag bytes of a case's compile options (data:false is bit 8)."""
    opts = case.get("compileOptions") or {}
    f = 0
    for k, bit in FLAG_BITS.items():
        if opts.get(k):
            f |= 1 << bit
    if opts.get("data") is False:
        f |= 1 << 8
    return f & 0xFF, f >> 8


def jbytes(v):
    return json.dumps(v, ensure_ascii=False, sort_keys=True).encode("utf-8")


class Writer:
    """Writes unique seeds for one harness, replacing earlier generated ones."""

    def __init__(self, harness):
        self.dir = os.path.join(HERE, "corpus", harness)
        os.makedirs(self.dir, exist_ok=True)
        for old in os.listdir(self.dir):
            if old.startswith(("spec-", "gen-")):
                os.remove(os.path.join(self.dir, old))
        self.seen = set()
        self.count = 0
        self.bytes = 0

    def add(self, prefix, data):
        if len(data) > MAX_SEED:
            return
        h = hashlib.sha1(data).hexdigest()
        if h in self.seen:
            return
        self.seen.add(h)
        with open(os.path.join(self.dir, "%s-%s" % (prefix, h[:12])), "wb") as f:
            f.write(data)
        self.count += 1
        self.bytes += len(data)


def partial_section(case):
    parts = case.get("partials")
    if not isinstance(parts, dict):
        return b""
    out = []
    for name, src in sorted(parts.items()):
        if isinstance(src, str):
            out += [name.encode("utf-8"), src.encode("utf-8")]
    return PSEP.join(out) + (PSEP if out else b"")


def main():
    cases = list(spec_cases())
    comp, rend = Writer("compile"), Writer("render")
    for i, (stem, c) in enumerate(cases):
        lo, hi = flags_of(c)
        tpl = c["template"].encode("utf-8")
        comp.add("spec", bytes([lo, hi]) + tpl)
        data = c.get("data")
        rt = (c.get("runtimeOptions") or {}).get("data")
        opt = hi | (0x20 if i % 2 else 0) | (0x40 if i % 3 == 0 else 0)
        rend.add("spec", bytes([lo, opt]) + tpl + SEP + jbytes(data) + SEP +
                 partial_section(c) + SEP + (jbytes(rt) if isinstance(rt, dict) else b""))

    ses = Writer("ses")
    for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*.json"))):
        with open(path, "rb") as f:
            tjson = f.read()
        recips = path[:-5] + ".recipients.jsonl"
        dests = []
        if os.path.exists(recips):
            with open(recips, encoding="utf-8") as f:
                dests = [json.loads(l) for l in f if l.strip()][:3]
        name = json.loads(tjson).get("Template", {}).get("TemplateName", "T")
        bulk = {"Source": "Sender <sender@example.com>", "Template": name,
                "DefaultTemplateData": "{}", "Destinations": dests}
        ses.add("gen", b"\x00" + tjson + SEP + jbytes(bulk) + SEP + b"{}")
        if dests:
            one = {"TemplateName": name,
                   "TemplateData": dests[0].get("ReplacementTemplateData", "{}")}
            ses.add("gen", b"\x09" + tjson + SEP + jbytes(one) + SEP +
                    dests[0].get("ReplacementTemplateData", "{}").encode("utf-8"))
    # Spec templates as SES template sets (v1 and v2 shapes), their data as TemplateData.
    k = 0
    for stem, c in cases:
        data = c.get("data")
        if not isinstance(data, dict) or c.get("helpers") or k >= 150:
            continue
        k += 1
        tpl = c["template"]
        if k % 2:
            tj = {"Template": {"TemplateName": "T%d" % k, "SubjectPart": tpl[:60],
                               "TextPart": tpl, "HtmlPart": "<p>" + tpl + "</p>"}}
            req = {"TemplateName": "T%d" % k, "TemplateData": json.dumps(data)}
        else:
            tj = {"TemplateName": "T%d" % k,
                  "TemplateContent": {"Subject": "s", "Text": tpl, "Html": tpl}}
            req = {"FromEmailAddress": "a@example.com",
                   "DefaultContent": {"Template": {"TemplateName": "T%d" % k,
                                                   "TemplateData": "{}"}},
                   "BulkEmailEntries": [{"Destination": {"ToAddresses": ["b@example.com"]},
                                         "ReplacementEmailContent": {"ReplacementTemplate": {
                                             "ReplacementTemplateData": json.dumps(data)}}}]}
        ses.add("spec", bytes([k & 0xFF]) + jbytes(tj) + SEP + jbytes(req) + SEP + jbytes(data))

    mime = Writer("mime")
    texts = [b"", b"hello", b"line one\nline two\r\nline three\rend", b"trailing space \n",
             b"tab\t\r\n", b"=3D= equals", b".leading dot\nFrom the start\n",
             "caf\u00e9 na\u00efve \u65e5\u672c\u8a9e \U0001F600".encode("utf-8"),
             b"x" * 200, b"a " * 120 + b"\n", bytes(range(256)),
             "\u3053\u3093\u306b\u3061\u306f\u4e16\u754c".encode("utf-8") * 8,
             b"\xff\xfe invalid utf-8 \xc3", b"nul\x00byte"]
    for c in cases[:120]:
        if isinstance(c[1].get("expected"), str):
            texts.append(c[1]["expected"].encode("utf-8"))
    for i, t in enumerate(texts):
        for mode in range(6):
            mime.add("gen", bytes([mode, (i * 37 + mode * 11) & 0xFF]) + t)
    subjects = [b"Hi", "Gr\u00fc\u00dfe aus K\u00f6ln".encode("utf-8"), b"a\r\nBcc: evil@x.com",
                "\u65e5\u672c\u8a9e\u306e\u4ef6\u540d".encode("utf-8") * 5, b"x" * 300]
    addrs = [b"a@example.com", b"\"Doe, John\" <john@example.com>, c@d.org",
             "Zo\u00eb <zoe@b\u00fccher.example>".encode("utf-8")]
    for i, s in enumerate(subjects):
        for j, t in enumerate(texts[:10]):
            mime.add("gen", bytes([6 + (i + j) % 2, (i * 8 + j * 3) & 0xFF]) + s + SEP + t +
                     SEP + (b"<p>" + t + b"</p>" if j % 2 else b"") + SEP +
                     addrs[(i + j) % 3] + SEP + addrs[j % 3])

    addr = Writer("address")
    lists = [b"a@example.com", b"A B <a@example.com>", b"\"Doe, John\" <john@example.com>, c@d.org",
             "Zo\u00eb Dupr\u00e9 <zoe@example.org>".encode("utf-8"),
             "u@b\u00fccher.example".encode("utf-8"), "\u00fc@example.com".encode("utf-8"),
             b"<a@b.c>", b"a@[127.0.0.1]", b"\"quoted\\\"name\" <q@x.y>", b"bad", b"a@", b"@b",
             b"a@b,,c@d", b"Name <a@b.c", b"x@y.z\r\nBcc: evil@x.com",
             "\u5c71\u7530 \u592a\u90ce <taro@example.jp>".encode("utf-8"),
             b"group: a@b.c, d@e.f;", b"a.b+tag@sub.example.co.uk", b"(comment) a@b.c"]
    for i, l in enumerate(lists):
        for cs in range(4):
            addr.add("gen", bytes([cs]) + l)

    for w in (comp, rend, ses, mime, addr):
        print("%-8s %4d seeds %7d bytes" % (os.path.basename(w.dir), w.count, w.bytes))


if __name__ == "__main__":
    main()
