#!/usr/bin/env python3
"""Differential test: `mailbars hbs --jsonl` against handlebars.js (hbs-oracle.js --jsonl).

Generates random cases (gen.py) from a seed, streams the same cases to one oracle process and
one mailbars process, and compares the results: both ok with byte-identical output, or both
failed (error texts are not compared). Mismatches are shrunk (nodes of the template and
partials, partials, options, data) while the mismatch keeps its kind, then written to a report.

usage: run_diff.py [--seed S] [--cases N] [--mailbars PATH] [--oracle PATH] [--report FILE]
                   [--minimise K] [--replay CASES.jsonl] [--only I] [--dump]
Exit: 0 all agree, 1 any mismatch, 77 node or the oracle's handlebars module is missing
(only with --skip-if-no-oracle, and not when $CI is set), 2 bad usage or a broken process.
Python 3 standard library only.
"""

import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ORACLE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "oracle",
                                               "hbs-oracle.js"))


def line_of(obj):
    """One protocol line (ASCII-only JSON, so no byte in it can split a line)."""
    return json.dumps(obj, ensure_ascii=True) + "\n"


class Proc:
    """A JSON Lines subprocess: cases in on stdin, one result line per case on stdout."""

    def __init__(self, argv, name):
        self.argv, self.name = argv, name
        self.p = None
        self.start()

    def start(self):
        self.p = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL if self.name == "oracle" else None)
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.p.stdout:
            self.lines.put(raw)
        self.lines.put(None)  # EOF

    def send(self, text):
        """Writes one case; False when the process is gone."""
        try:
            self.p.stdin.write(text.encode("utf-8"))
            self.p.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def get(self, timeout=60):
        """The next result line, parsed; None at EOF (crash) or timeout."""
        try:
            raw = self.lines.get(timeout=timeout)
        except queue.Empty:
            return {"ok": None, "error": "timeout after %ds" % timeout, "crash": True}
        if raw is None:
            return None
        try:
            r = json.loads(raw.decode("utf-8"))
            if not isinstance(r, dict) or "ok" not in r:
                raise ValueError("not a result object")
            return r
        except (ValueError, UnicodeDecodeError) as e:
            return {"ok": None, "error": "unparsable result line (%s): %r" % (e, raw[:200]),
                    "crash": True}

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()

    def status(self):
        return self.p.poll()

    def restart(self):
        try:
            self.p.kill()
        except OSError:
            pass
        self.p.wait()
        self.start()


def run_one(proc, obj, timeout=60):
    """Runs one case synchronously; a crash restarts the process."""
    if not proc.send(line_of(obj)):
        proc.restart()
        return {"ok": None, "error": "process died (exit %s)" % proc.status(), "crash": True}
    r = proc.get(timeout)
    if r is None or r.get("crash"):
        code = proc.p.poll()
        proc.restart()
        if r is None:
            r = {"ok": None, "error": "process died (exit %s)" % code, "crash": True}
    return r


def lone_surrogate(text):
    """True when a JS string holds half of a surrogate pair, which no UTF-8 output can carry."""
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text or "")


def kind(oracle, mb):
    """None when the results agree, else the kind of disagreement. "unrepresentable" marks an
    oracle output with a lone surrogate (indexing into an emoji): not a mismatch, counted apart."""
    if mb is None or mb.get("crash") or mb.get("ok") is None:
        return "mailbars-crash"
    if oracle.get("ok") and mb.get("ok"):
        if oracle.get("output") == mb.get("output"):
            return None
        return "unrepresentable" if lone_surrogate(oracle.get("output")) else "output-differs"
    if not oracle.get("ok") and not mb.get("ok"):
        return None
    return "mailbars-fails" if oracle.get("ok") else "mailbars-succeeds"


# ------------------------------------------------------------------------------------------
# Shrinking
# ------------------------------------------------------------------------------------------


def node_variants(nodes):
    """Lists like `nodes` with one simplification each: a node removed, a block replaced by
    its body or with a part dropped, recursively."""
    for i, n in enumerate(nodes):
        yield nodes[:i] + nodes[i + 1:]
    for i, n in enumerate(nodes):
        if isinstance(n, gen.Block):
            yield nodes[:i] + n.body + nodes[i + 1:]
            for j in range(len(n.parts)):
                b = gen.Block(n.open, n.body, n.parts[:j] + n.parts[j + 1:], n.close)
                yield nodes[:i] + [b] + nodes[i + 1:]
            for sub in node_variants(n.body):
                yield nodes[:i] + [gen.Block(n.open, sub, n.parts, n.close)] + nodes[i + 1:]
            for j, (sep, pn) in enumerate(n.parts):
                for sub in node_variants(pn):
                    parts = n.parts[:j] + [(sep, sub)] + n.parts[j + 1:]
                    yield nodes[:i] + [gen.Block(n.open, n.body, parts, n.close)] + nodes[i + 1:]
        elif isinstance(n, gen.Text) and len(n.s) > 1:
            yield nodes[:i] + [gen.Text(n.s[: len(n.s) // 2])] + nodes[i + 1:]
            yield nodes[:i] + [gen.Text(n.s[len(n.s) // 2:])] + nodes[i + 1:]


def data_variants(v):
    """Simpler versions of a JSON value: members removed, containers replaced by a member."""
    if isinstance(v, dict):
        keys = list(v)
        for k in keys:
            yield {kk: vv for kk, vv in v.items() if kk != k}
        for k in keys:
            for sub in data_variants(v[k]):
                d = dict(v)
                d[k] = sub
                yield d
    elif isinstance(v, list):
        for i in range(len(v)):
            yield v[:i] + v[i + 1:]
        for i in range(len(v)):
            for sub in data_variants(v[i]):
                yield v[:i] + [sub] + v[i + 1:]


def case_variants(case):
    """Every one-step simplification of a case, cheapest first."""
    for name in list(case.get("partials", {})):
        c = dict(case)
        c["partials"] = {k: v for k, v in case["partials"].items() if k != name}
        yield c
    for opt in list(case.get("options", {})):
        c = dict(case)
        c["options"] = {k: v for k, v in case["options"].items() if k != opt}
        yield c
    if "runtimeData" in case:
        c = dict(case)
        del c["runtimeData"]
        yield c
    for nodes in node_variants(case["template"]):
        c = dict(case)
        c["template"] = nodes
        yield c
    for name, body in case.get("partials", {}).items():
        for nodes in node_variants(body):
            c = dict(case)
            c["partials"] = dict(case["partials"])
            c["partials"][name] = nodes
            yield c
    if "data" in case:
        for d in data_variants(case["data"]):
            c = dict(case)
            c["data"] = d
            yield c


def shrink(case, want, oracle, mb, budget):
    """Greedy shrinking: take the first simplification that keeps the mismatch kind `want`,
    until none does or `budget` attempts are spent. Returns (case, oracle result, mb result)."""
    best = case
    best_res = None
    progress = True
    while progress and budget > 0:
        progress = False
        for c in case_variants(best):
            if budget <= 0:
                break
            budget -= 1
            obj = gen.to_json(c)
            o = run_one(oracle, obj)
            if o is None or o.get("crash"):
                continue
            m = run_one(mb, obj)
            if kind(o, m) == want:
                best, best_res, progress = c, (o, m), True
                break
    if best_res is None:
        obj = gen.to_json(best)
        best_res = (run_one(oracle, obj), run_one(mb, obj))
    return best, best_res[0], best_res[1]


# ------------------------------------------------------------------------------------------
# Main loop
# ------------------------------------------------------------------------------------------


def stream(cases, oracle_argv, mb_argv, progress):
    """Runs all case objects through both programs, one process each, streamed. Returns a list
    of (oracle result, mailbars result); a mailbars crash marks its case and the process is
    started again for the rest."""
    oracle = Proc(oracle_argv, "oracle")
    results_o = []
    results_m = []
    lines = [line_of(c) for c in cases]

    def feed(proc, start):
        def run():
            for text in lines[start:]:
                if not proc.send(text):
                    break
            try:
                proc.p.stdin.close()
            except OSError:
                pass
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    feed(oracle, 0)
    mb = Proc(mb_argv, "mailbars")
    feed(mb, 0)
    last = time.time()
    crashes_in_row = 0
    while len(results_m) < len(lines):
        m = mb.get(timeout=120)
        if m is None or m.get("crash"):
            i = len(results_m)
            code = mb.p.poll()
            try:
                mb.p.kill()
            except OSError:
                pass
            mb.p.wait()
            results_m.append(m or {"ok": None, "crash": True,
                                   "error": "mailbars died (exit %s)" % code})
            crashes_in_row += 1
            if crashes_in_row >= 20:
                print("run_diff: mailbars died on 20 cases in a row (last exit status %s); "
                      "is `%s` a working `hbs --jsonl`?" % (code, " ".join(mb_argv)),
                      file=sys.stderr)
                sys.exit(2)
            if len(results_m) < len(lines):
                mb = Proc(mb_argv, "mailbars")
                feed(mb, i + 1)
            continue
        results_m.append(m)
        crashes_in_row = 0
        if progress and time.time() - last > 5:
            last = time.time()
            print("  ... %d/%d" % (len(results_m), len(lines)), file=sys.stderr, flush=True)
    mb.close()
    for _ in lines:
        o = oracle.get(timeout=120)
        if o is None or o.get("crash"):
            print("run_diff: the oracle stopped answering", file=sys.stderr)
            sys.exit(2)
        results_o.append(o)
    oracle.close()
    return list(zip(results_o, results_m))


def describe(idx, k, obj, o, m):
    out = ["=== case %s: %s" % (idx, k), "template: " + json.dumps(obj["template"],
                                                                    ensure_ascii=False)]
    for key in ("partials", "options", "runtimeData"):
        if key in obj:
            out.append("%s: %s" % (key, json.dumps(obj[key], ensure_ascii=False)))
    out.append("data: " + (json.dumps(obj["data"], ensure_ascii=False) if "data" in obj
                           else "(absent)"))
    out.append("handlebars.js: " + json.dumps(o, ensure_ascii=False))
    out.append("mailbars:      " + json.dumps(m, ensure_ascii=False))
    out.append("case: " + json.dumps(obj, ensure_ascii=False))
    return "\n".join(out)


def oracle_available(oracle_path):
    node = shutil.which("node")
    if not node:
        return None, "node is not installed"
    if not os.path.exists(oracle_path):
        return None, "oracle not found at " + oracle_path
    mod = os.path.join(os.path.dirname(oracle_path), "node_modules", "handlebars")
    if not os.path.isdir(mod) and not os.environ.get("NODE_PATH"):
        return None, ("the oracle's node_modules are missing; run: npm install --prefix "
                      + os.path.dirname(oracle_path))
    return node, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", default="1")
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0, help="first case index")
    ap.add_argument("--only", type=int, help="run just case I of the seed")
    ap.add_argument("--mailbars", default="mailbars", help="the mailbars CLI")
    ap.add_argument("--oracle", default=DEFAULT_ORACLE, help="hbs-oracle.js")
    ap.add_argument("--report", default="differential-report.txt")
    ap.add_argument("--failures", default="differential-failures.jsonl",
                    help="the failing cases (minimised), one protocol object per line")
    ap.add_argument("--minimise", type=int, default=20, help="shrink the first K mismatches")
    ap.add_argument("--shrink-budget", type=int, default=400)
    ap.add_argument("--replay", help="run the cases of a JSON Lines file instead")
    ap.add_argument("--dump", action="store_true", help="print the generated cases and exit")
    ap.add_argument("--skip-if-no-oracle", action="store_true",
                    help="exit 77 (skipped) when node or the oracle's modules are missing")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    sys.stdout.reconfigure(errors="backslashreplace")

    if a.replay:
        with open(a.replay, encoding="utf-8") as f:
            objs = [json.loads(l) for l in f if l.strip()]
        cases = [None] * len(objs)
        indices = list(range(len(objs)))
    else:
        indices = [a.only] if a.only is not None else list(range(a.start, a.start + a.cases))
        cases = [gen.case_for(a.seed, i) for i in indices]
        objs = [gen.to_json(c) for c in cases]
    if a.dump:
        for o in objs:
            print(json.dumps(o, ensure_ascii=False))
        return 0

    node, why = oracle_available(a.oracle)
    if not node:
        if a.skip_if_no_oracle and not os.environ.get("CI"):
            print("run_diff: SKIPPED: " + why, flush=True)
            return 77
        print("run_diff: cannot run the oracle: " + why, flush=True)
        return 2
    if not os.path.exists(a.mailbars) and not shutil.which(a.mailbars):
        print("run_diff: mailbars not found: " + a.mailbars)
        return 2
    oracle_argv = [node, a.oracle, "--jsonl"]
    mb_argv = [a.mailbars, "hbs", "--jsonl"]

    t0 = time.time()
    results = stream(objs, oracle_argv, mb_argv, not a.quiet)
    elapsed = time.time() - t0
    bad = []
    stats = {"ok": 0, "error": 0, "unrepresentable": 0}
    for idx, obj, case, (o, m) in zip(indices, objs, cases, results):
        k = kind(o, m)
        if k == "unrepresentable":
            stats["unrepresentable"] += 1
        elif k:
            bad.append((idx, obj, case, k, o, m))
        else:
            stats["ok" if o.get("ok") else "error"] += 1

    report = []
    failures = []
    if bad:
        oracle = Proc(oracle_argv, "oracle")
        mb = Proc(mb_argv, "mailbars")
        for n, (idx, obj, case, k, o, m) in enumerate(bad):
            if n < a.minimise and case is not None:
                small, so, sm = shrink(case, k, oracle, mb, a.shrink_budget)
                sobj = gen.to_json(small)
                if kind(so, sm) == k:
                    obj, o, m = sobj, so, sm
            report.append(describe(idx, k, obj, o, m))
            failures.append(obj)
        oracle.close()
        mb.close()
    counts = {}
    for b in bad:
        counts[b[3]] = counts.get(b[3], 0) + 1
    summary = ("seed %s, %d cases in %.1fs: %d agree (%d rendered, %d failed in both), %d "
               "skipped as unrepresentable in UTF-8, %d mismatches %s"
               % (a.seed, len(objs), elapsed, len(objs) - len(bad) - stats["unrepresentable"],
                  stats["ok"], stats["error"],
                  stats["unrepresentable"], len(bad), json.dumps(counts) if counts else ""))
    with open(a.report, "w", encoding="utf-8", errors="backslashreplace") as f:
        f.write(summary + "\n\n")
        for r in report:
            f.write(r + "\n\n")
    if failures:
        with open(a.failures, "w", encoding="utf-8") as f:
            for obj in failures:
                f.write(json.dumps(obj) + "\n")
    for r in report[:20]:
        print(r + "\n")
    print(summary)
    if bad:
        print("report: %s, failing cases: %s" % (os.path.abspath(a.report),
                                                  os.path.abspath(a.failures)))
    print("%d passed, %d failed, %d skipped" % (len(objs) - len(bad) - stats["unrepresentable"],
                                               len(bad), stats["unrepresentable"]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
