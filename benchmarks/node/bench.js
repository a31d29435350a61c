'use strict';
// handlebars.js 4.7.10 side of the corpus benchmark: the same cases, helpers, check against
// `expected` and timing method as mailbars-bench, the same JSON line per case.
//   node bench.js --corpus DIR [--case NAME]... [--runs N] [--min-time S] [--warmup S]
// Templates are compiled once (Handlebars.compile, then a first call that finishes the lazy
// compilation of the template and its partials); only the calls of the compiled function are
// timed.
const Handlebars = require('handlebars');
const { parseArgs, listCorpus, loadCase, makeEnv, median, timeSync } = require('./common');

const PARTS = ['subject', 'html', 'text'];

// Runs the benchmark; exits 2 when an output differs from the corpus' expected output.
function main() {
  const o = parseArgs(process.argv.slice(2));
  const names = listCorpus(o.corpus);
  for (const c of o.cases) if (!names.includes(c)) throw new Error('no case ' + c);
  for (const name of names) {
    if (o.cases.length && !o.cases.includes(name)) continue;
    const c = loadCase(o.corpus, name);
    const hb = makeEnv(Handlebars, c);
    const multi = typeof c.template === 'object';
    const parts = multi ? PARTS : [null];
    const fns = parts.map((p) => hb.compile(multi ? c.template[p] : c.template));
    const data = c.data;
    let bytes = 0;
    parts.forEach((p, i) => {
      const out = fns[i](data);
      const want = multi ? c.expected[p] : c.expected;
      if (out !== want) {
        console.error(`MISMATCH ${name}${p ? '.' + p : ''}: ${JSON.stringify(out.slice(0, 200))}`
          + ` expected ${JSON.stringify(want.slice(0, 200))}`);
        process.exit(2);
      }
      bytes += Buffer.byteLength(out, 'utf8');
    });
    const once = multi
      ? () => fns[0](data).length + fns[1](data).length + fns[2](data).length
      : () => fns[0](data).length;
    const ns = timeSync(once, o.runs, o.minTime, o.warmup);
    console.log(JSON.stringify({
      case: name,
      ns_per_render: Math.round(median(ns) * 10) / 10,
      output_bytes: bytes,
      runs: o.runs,
      min_ns: Math.round(Math.min(...ns) * 10) / 10,
      max_ns: Math.round(Math.max(...ns) * 10) / 10,
    }));
  }
}

main();
