'use strict';
// Shared pieces of the Node side of the benchmarks: option parsing, the corpus reader, the
// helpers the corpus needs, and the timing method (the same as mailbars-bench: a batch size
// calibrated to about 1 ms, each run repeats batches until --min-time seconds have passed,
// the figure is the median over --runs runs).
const fs = require('fs');
const path = require('path');

// Parses --name value options into an object; --case may repeat.
function parseArgs(argv, defaults) {
  const o = Object.assign({ runs: 5, minTime: 0.5, warmup: 0.5, cases: [] }, defaults);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--corpus') o.corpus = v, i++;
    else if (a === '--recipients') o.recipients = v, i++;
    else if (a === '--case') o.cases.push(v), i++;
    else if (a === '--runs') o.runs = Math.max(1, parseInt(v, 10)), i++;
    else if (a === '--min-time') o.minTime = Math.max(0, parseFloat(v)), i++;
    else if (a === '--limit') o.limit = parseInt(v, 10), i++;
    else if (a === '--warmup') o.warmup = Math.max(0, parseFloat(v)), i++;
    else throw new Error('unknown option ' + a);
  }
  if (!o.corpus) throw new Error('--corpus DIR is required');
  return o;
}

// The case names of a corpus directory (NAME.json), sorted like mailbars-bench sorts them.
function listCorpus(dir) {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

// Reads one case file.
function loadCase(dir, name) {
  return JSON.parse(fs.readFileSync(path.join(dir, name + '.json'), 'utf8'));
}

// The helpers SOURCE.md describes for `arguments` and `subexpression`.
const HELPERS = {
  foo: function () { return ''; },
  echo: function (v) { return 'foo ' + v; },
  header: function () { return 'Colors'; },
};

// A fresh Handlebars environment with the case's partials and helpers registered.
function makeEnv(Handlebars, c) {
  const hb = Handlebars.create();
  for (const [name, src] of Object.entries(c.partials || {})) hb.registerPartial(name, src);
  for (const name of Object.keys(c.helpers || {})) {
    if (!HELPERS[name]) throw new Error(c.name + ': no port of helper ' + name);
    hb.registerHelper(name, HELPERS[name]);
  }
  return hb;
}

const nowNs = () => Number(process.hrtime.bigint());

// Median of an array of numbers.
function median(v) {
  const s = v.slice().sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

// Times a synchronous function `once` (returns something to keep the work observable):
// calibrates a batch, runs untimed for `warmup` seconds (lets V8 tier the code up), then
// returns per-run nanoseconds per call.
function timeSync(once, runs, minTime, warmup) {
  let sink = 0;
  let batch = 1;
  for (;;) {
    const t0 = nowNs();
    for (let k = 0; k < batch; k++) sink += once();
    const dt = nowNs() - t0;
    if (dt >= 1e6 || batch >= 2 ** 30) break;
    batch *= dt > 1e4 ? Math.floor(1e6 / dt) + 1 : 100;
  }
  for (const t0 = nowNs(); nowNs() - t0 < (warmup || 0) * 1e9;) {
    for (let k = 0; k < batch; k++) sink += once();
  }
  const ns = [];
  for (let r = 0; r < runs; r++) {
    let iters = 0;
    const t0 = nowNs();
    let dt;
    do {
      for (let k = 0; k < batch; k++) sink += once();
      iters += batch;
      dt = nowNs() - t0;
    } while (dt < minTime * 1e9);
    ns.push(dt / iters);
  }
  if (sink === -1) console.error('unreachable');
  return ns;
}

module.exports = { parseArgs, listCorpus, loadCase, makeEnv, median, timeSync, nowNs };
