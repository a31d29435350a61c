#!/usr/bin/env python3
"""Checks of the `mailbars hbs` command line itself: the --jsonl protocol (one result per
non-blank line, malformed lines, option validation, line-safe escapes) and the file form
(output, exit codes, FILE:LINE:COL diagnostics). Exact expected values, no oracle needed.

usage: test_hbs_cli.py MAILBARS
"""

import json
import os
import subprocess
import sys
import tempfile

MB = sys.argv[1] if len(sys.argv) > 1 else "mailbars"
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL %s %s" % (name, detail))


def jsonl(text):
    p = subprocess.run([MB, "hbs", "--jsonl"], input=text.encode("utf-8"), capture_output=True,
                       timeout=60)
    return p.returncode, p.stdout.decode("utf-8")


def run(args, stdin=b""):
    p = subprocess.run([MB, "hbs"] + args, input=stdin, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


# --jsonl: one result per non-blank line, in order, never a skipped or crashed line
lines = [
    '{"template":"a{{x}}b","data":{"x":"<&>"}}',
    "not json",
    "",
    "   ",
    '{"template":1}',
    "[1,2]",
    '{"template":"{{x}}","options":{"noEscape":true},"data":{"x":"<"}}',
    '{"template":"x","options":{"bogus":true}}',
    '{"template":"{{> p}}","partials":{"p":"[{{y}}]"},"data":{"y":2}}',
    '{"template":"x","partials":{"p":5}}',
    '{"template":"{{#if}}{{/if}}"}',
    '{"template":"{{x}}|{{y}}","data":{"x":1e21,"y":0.30000000000000004}}',
    '{"template":"{{@custom}}","runtimeData":{"custom":"rt"}}',
    '{"template":"{{x}}","data":{"x":"a\\u2028b\\u0085c"}}',
    '{"template":"{{#each a}}{{@index}}{{/each}}","data":{"a":[1,2]},"options":{"data":false}}',
    '{"template":"{{x}}"}',
]
rc, out = jsonl("\n".join(lines) + "\n")
res = out.split("\n")
check("jsonl exit", rc == 0, rc)
check("jsonl count", len(res) == 15 and res[-1] == "", repr(out[:300]))
res = [json.loads(r) for r in res[:-1]] if len(res) == 15 else [{}] * 14
check("render", res[0] == {"ok": True, "output": "a&lt;&amp;&gt;b"}, res[0])
check("bad json", res[1].get("ok") is False and "invalid JSON" in res[1].get("error", ""))
check("template type", res[2] == {"ok": False, "error": '"template" must be a string'})
check("not an object", res[3] == {"ok": False, "error": "input must be a JSON object"})
check("noEscape", res[4] == {"ok": True, "output": "<"}, res[4])
check("unknown option", res[5] == {"ok": False, "error": "unknown option: bogus"})
check("partial", res[6] == {"ok": True, "output": "[2]"}, res[6])
check("partial type", res[7] == {"ok": False, "error": 'partial "p" must be a string'})
check("render error", res[8].get("ok") is False)
check("numbers", res[9] == {"ok": True, "output": "1e+21|0.30000000000000004"}, res[9])
check("runtimeData", res[10] == {"ok": True, "output": "rt"}, res[10])
check("line separators", res[11] == {"ok": True, "output": "a\u2028b\u0085c"}, res[11])
raw = out.split("\n")[11]
check("line separators escaped", "\\u2028" in raw and "\\u0085" in raw, raw)
check("data false", res[12] == {"ok": True, "output": "01"}, res[12])  # as handlebars.js
check("absent data", res[13] == {"ok": True, "output": ""}, res[13])

# a line at a time: the result comes before the next line is written (flushed per line)
p = subprocess.Popen([MB, "hbs", "--jsonl"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
p.stdin.write(b'{"template":"one"}\n')
p.stdin.flush()
first = p.stdout.readline()
p.stdin.write(b'{"template":"two"}\n')
p.stdin.close()
second = p.stdout.readline()
p.wait(timeout=60)
check("flush per line", json.loads(first) == {"ok": True, "output": "one"} and
      json.loads(second) == {"ok": True, "output": "two"}, (first, second))

# the file form
with tempfile.TemporaryDirectory() as d:
    def w(name, text):
        path = os.path.join(d, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    t = w("t.hbs", "Hi {{name}}{{> p}}!")
    pf = w("p.hbs", " and {{other}}")
    data = w("d.json", '{"name": "<Ann>", "other": 2.50}')
    bad = w("bad.hbs", "line1\n{{#if x}}\n")
    badjson = w("bad.json", '{"name": ')
    rc, out, err = run(["--partial", "p=" + pf, t, data])
    check("file render", rc == 0 and out == "Hi &lt;Ann&gt; and 2.5!", (rc, out, err))
    rc, out, err = run(["--no-escape", "--partial", "p=" + pf, t, data])
    check("--no-escape", rc == 0 and out == "Hi <Ann> and 2.5!", (rc, out, err))
    rc, out, err = run(["--partial", "p=" + pf, t, "-"], b'{"name":"x"}')
    check("data from stdin", rc == 0 and out == "Hi x and !", (rc, out, err))
    rc, out, err = run([bad])
    check("parse error", rc == 2 and err.startswith(bad + ":3:") and ": error: " in err,
          (rc, err))
    rc, out, err = run([t, badjson])
    check("bad data", rc == 2 and err.startswith(badjson + ":1:") and ": error: " in err,
          (rc, err))
    rc, out, err = run(["--strict", w("s.hbs", "{{missing}}"), data])
    check("strict render error", rc == 1 and out == "" and err != "", (rc, out, err))
    rc, out, err = run([w("e.hbs", "{{#each}}{{/each}}")])
    check("render error exit", rc == 1, (rc, err))
    rc, out, err = run([])
    check("no args", rc == 64, rc)
    rc, out, err = run(["--bogus", t])
    check("unknown option", rc == 64, rc)
    rc, out, err = run(["--jsonl", t])
    check("jsonl with file", rc == 64, rc)
    rc, out, err = run(["--partial", "nameonly", t])
    check("bad --partial", rc == 64, rc)
    rc, out, err = run(["-h"])
    check("help", rc == 0 and "--jsonl" in out, rc)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
