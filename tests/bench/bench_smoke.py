#!/usr/bin/env python3
"""Smoke test of mailbars-bench (correctness, not timing).

  1. `mailbars-bench --corpus DIR --runs 1 --min-time 0` exits 0 and prints one JSON line per
     corpus case, in name order, whose output_bytes is the UTF-8 size of the case's `expected`
     (mailbars-bench compares the output byte for byte before timing and exits 2 otherwise);
     cases without helpers make no allocation per render in the timed loop.
  2. A corpus copy with one `expected` changed makes mailbars-bench fail with MISMATCH.
  3. --mime on a few generated recipients (1 and 2 threads) reports both workloads, and the
     printed message is 7-bit CRLF MIME with quoted-printable bodies that decode to text
     holding the recipient's data.
Prints "N passed, M failed"; exit 1 on failure, 77 when the corpus is absent.
"""
import argparse
import json
import os
import quopri
import re
import shutil
import subprocess
import sys

PASSED = 0
FAILED = 0


def check(cond, what):
    """Counts one assertion and reports a failure."""
    global PASSED, FAILED
    if cond:
        PASSED += 1
    else:
        FAILED += 1
        print("FAIL:", what, file=sys.stderr)


def run(cmd):
    """Runs a command; returns (exit code, stdout, stderr)."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def expected_bytes(case):
    """UTF-8 size of a case's expected output (all parts for an e-mail case)."""
    x = case["expected"]
    parts = [x] if isinstance(x, str) else [x["subject"], x["html"], x["text"]]
    return sum(len(p.encode("utf-8")) for p in parts)


def corpus_check(bench, corpus):
    """Step 1: every case verified and reported."""
    names = sorted(f[:-5] for f in os.listdir(corpus) if f.endswith(".json"))
    rc, out, err = run([bench, "--corpus", corpus, "--runs", "1", "--min-time", "0",
                        "--warmup", "0"])
    check(rc == 0, "mailbars-bench --corpus exit %d: %s" % (rc, err.strip()[-2000:]))
    lines = [json.loads(l) for l in out.splitlines() if l.strip()]
    check([l["case"] for l in lines] == names,
          "cases reported %s, corpus has %s" % ([l["case"] for l in lines], names))
    for l in lines:
        case = json.load(open(os.path.join(corpus, l["case"] + ".json"), encoding="utf-8"))
        check(l["output_bytes"] == expected_bytes(case),
              "%s: output_bytes %d, expected %d" % (l["case"], l["output_bytes"],
                                                   expected_bytes(case)))
        check(l["ns_per_render"] > 0 and l["runs"] == 1, "%s: bad timing fields" % l["case"])
        if "helpers" not in case:
            check(l["allocs_per_render"] == 0,
                  "%s: %g allocations per render" % (l["case"], l["allocs_per_render"]))
    return names


def mismatch_check(bench, corpus, work):
    """Step 2: a wrong expected output is caught."""
    bad = os.path.join(work, "bad-corpus")
    shutil.rmtree(bad, ignore_errors=True)
    os.makedirs(bad)
    case = json.load(open(os.path.join(corpus, "complex.json"), encoding="utf-8"))
    case["expected"] = case["expected"].replace("Colors", "Colours")
    with open(os.path.join(bad, "complex.json"), "w", encoding="utf-8") as f:
        json.dump(case, f)
    rc, out, err = run([bench, "--corpus", bad, "--runs", "1", "--min-time", "0",
                        "--warmup", "0"])
    check(rc == 2 and "MISMATCH complex" in err and out == "",
          "changed expected output not detected: exit %d, stderr %r" % (rc, err[:300]))


def mime_check(bench, corpus, work):
    """Step 3: the full-message workloads."""
    gen = os.path.join(corpus, "..", "gen_recipients.py")
    if not os.path.exists(gen):
        print("note: %s absent, MIME check skipped" % gen)
        return
    rfile = os.path.join(work, "smoke-recipients.jsonl")
    rc, _, err = run([sys.executable, gen, "-n", "12", "--seed", "42", "-o", rfile])
    check(rc == 0, "gen_recipients.py failed: " + err)
    first = json.loads(open(rfile, encoding="utf-8").readline())
    for threads, hint in (("1", True), ("2", True), ("1", False)):
        rc, out, err = run([bench, "--mime", "--corpus", corpus, "--recipients", rfile,
                            "--runs", "1", "--min-time", "0", "--warmup", "0",
                            "--threads", threads] + ([] if hint else ["--no-prefetch"]))
        check(rc == 0, "--mime --threads %s exit %d: %s" % (threads, rc, err.strip()))
        lines = [json.loads(l) for l in out.splitlines() if l.strip()]
        check([l.get("workload") for l in lines] == ["ses-preferences", "ses-newsletter"],
              "--mime workloads: %s" % out)
        for l in lines:
            check(l["messages_per_s"] > 0 and l["recipients"] == 12
                  and l["threads"] == int(threads) and l["prefetch"] == hint,
                  "--mime fields: %s" % l)
    for w in ("ses-preferences", "ses-newsletter"):
        rc, out, err = run([bench, "--mime", "--corpus", corpus, "--recipients", rfile,
                            "--print-message", "--case", w])
        check(rc == 0, "--print-message %s: %s" % (w, err))
        raw = out.encode("utf-8")
        check(all(b < 0x80 for b in raw), "%s: message is not 7-bit" % w)
        check(b"\n" not in raw.replace(b"\r\n", b""), "%s: bare LF in message" % w)
        check(all(len(line) <= 78 for line in raw.split(b"\r\n")),
              "%s: line longer than 78" % w)
        m = re.search(r'boundary="([^"]+)"', out)
        check(m is not None, "%s: no multipart boundary" % w)
        if not m:
            continue
        parts = out.split("--" + m.group(1))
        bodies = {}
        for p in parts[1:-1]:
            head, _, body = p.partition("\r\n\r\n")
            check("Content-Transfer-Encoding: quoted-printable" in head,
                  "%s: part not quoted-printable: %r" % (w, head))
            kind = "html" if "text/html" in head else "text"
            bodies[kind] = quopri.decodestring(body.encode("ascii")).decode("utf-8")
        check(set(bodies) == {"text", "html"}, "%s: parts %s" % (w, list(bodies)))
        name = first["contact"]["firstName"]
        check(name in bodies.get("text", ""), "%s: text lacks %r" % (w, name))
        check(name.replace("&", "&amp;").replace("'", "&#x27;") in bodies.get("html", ""),
              "%s: html lacks %r" % (w, name))
        check(first["contact"]["email"] in out, "%s: To lacks the address" % w)


def main():
    """Runs the three checks."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--work", default=".")
    a = ap.parse_args()
    if not os.path.isdir(a.corpus):
        print("corpus %s absent: skipped" % a.corpus)
        return 77
    os.makedirs(a.work, exist_ok=True)
    corpus_check(a.bench, a.corpus)
    mismatch_check(a.bench, a.corpus, a.work)
    mime_check(a.bench, a.corpus, a.work)
    print("%d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
