#!/usr/bin/env python3
"""How render cost grows: data size (each over N items), template size (K substitutions in
K lines of static text) and, for full messages, the number of recipients.

    benchmarks/mailbars-bench/scaling.py [--build-dir build-bench] [--runs 3] [--min-time 0.2]

Writes a generated corpus into BUILD/scaling-corpus (expected outputs computed by
handlebars.js 4.7.10 from benchmarks/node), runs mailbars-bench and node bench.js on it, and
prints Markdown tables: ns/render and ns per unit (item or substitution) for both sides. With
--corpus it also runs the two SES workloads of the real corpus with growing recipient counts
(messages/s should stay flat: nothing accumulates per recipient).
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NODE_DIR = os.path.join(ROOT, "benchmarks", "node")

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


def each_case(n):
    """#each over n objects, two fields each, one of them needing escaping now and then."""
    items = [{"id": i, "name": WORDS[i % 8] + (" & co" if i % 5 == 0 else "")} for i in range(n)]
    return {"name": "each-%d" % n,
            "template": "<ul>{{#each items}}<li id=\"i{{id}}\">{{name}}</li>{{/each}}</ul>",
            "data": {"items": items}, "partials": {}, "units": n}


def subst_case(k):
    """k lines, each of about 60 bytes of static text and one substitution of a nested path."""
    lines = ["<p>Line %d of the message body, static text around {{user.f%d}}.</p>" % (i, i % 50)
             for i in range(k)]
    data = {"user": {"f%d" % i: "value-%d" % i for i in range(50)}}
    return {"name": "subst-%d" % k, "template": "\n".join(lines) + "\n", "data": data,
            "partials": {}, "units": k}


def write_corpus(dirname, cases):
    """Writes the cases with handlebars.js' output as `expected`."""
    os.makedirs(dirname, exist_ok=True)
    for f in os.listdir(dirname):
        if f.endswith(".json"):
            os.remove(os.path.join(dirname, f))
    js = ("const H=require('handlebars');const c=JSON.parse(require('fs').readFileSync(0,'utf8'));"
          "process.stdout.write(JSON.stringify(H.compile(c.template)(c.data)));")
    for c in cases:
        p = subprocess.run(["node", "-e", js], input=json.dumps(c), capture_output=True,
                           text=True, cwd=NODE_DIR, check=True)
        c = dict(c, expected=json.loads(p.stdout))
        with open(os.path.join(dirname, c["name"] + ".json"), "w", encoding="utf-8") as f:
            json.dump(c, f, ensure_ascii=False)


def jsonl(cmd):
    """Runs a command and parses its JSON lines."""
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), out.stderr))
    return [json.loads(l) for l in out.stdout.splitlines() if l.strip()]


def main():
    """Generates, runs, prints."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--corpus", help="real corpus: also measure recipients scaling")
    ap.add_argument("--recipients", default="100,1000,10000")
    a = ap.parse_args()
    exe = os.path.join(a.build_dir, "mailbars-bench")
    cases = [each_case(n) for n in (1, 10, 100, 1000, 10000)] + \
            [subst_case(k) for k in (10, 100, 1000)]
    corpus = os.path.join(a.build_dir, "scaling-corpus")
    write_corpus(corpus, cases)
    timing = ["--runs", str(a.runs), "--min-time", str(a.min_time), "--warmup", "0.3"]
    print("| case | template bytes | output bytes | mailbars ns/render | ns per unit "
          "| handlebars.js ns/render | ns per unit | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in cases:
        m = jsonl([exe, "--corpus", corpus, "--case", c["name"]] + timing)[0]
        j = jsonl(["node", os.path.join(NODE_DIR, "bench.js"), "--corpus", corpus,
                   "--case", c["name"]] + timing)[0]
        u = c["units"]
        print("| %s | %d | %d | %.0f | %.1f | %.0f | %.1f | %.1f× |" % (
            c["name"], len(c["template"].encode()), m["output_bytes"], m["ns_per_render"],
            m["ns_per_render"] / u, j["ns_per_render"], j["ns_per_render"] / u,
            j["ns_per_render"] / m["ns_per_render"]))
        sys.stdout.flush()
    if a.corpus:
        gen = os.path.join(a.corpus, "..", "gen_recipients.py")
        counts = [int(x) for x in a.recipients.split(",")]
        rfile = os.path.join(a.build_dir, "scaling-recipients-%d.jsonl" % max(counts))
        if not os.path.exists(rfile):
            subprocess.run([sys.executable, gen, "-n", str(max(counts)), "--seed", "42",
                            "-o", rfile], check=True)
        print()
        print("| workload | recipients | mailbars msg/s (1 thread) | bytes/message |")
        print("| --- | ---: | ---: | ---: |")
        for n in counts:
            for r in jsonl([exe, "--mime", "--corpus", a.corpus, "--recipients", rfile,
                            "--limit", str(n)] + timing):
                print("| %s | %d | %.0f | %.0f |" % (r["workload"], n, r["messages_per_s"],
                                                   r["bytes_per_message"]))
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
