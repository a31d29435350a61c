'use strict';
// handlebars.js + nodemailer side of the full-message benchmark: for each SES workload
// (ses-preferences, ses-newsletter) and each recipient, render subject, text and HTML with
// precompiled handlebars.js templates and build the complete message into a Buffer with
// nodemailer's MailComposer (quoted-printable bodies, the corpus' From and To pattern).
//   node mime.js --corpus DIR --recipients FILE.jsonl [--limit N] [--runs N] [--min-time S]
//                [--warmup S]
// One JSON line per workload: messages_per_s (median of runs, one thread), mb_per_s.
const fs = require('fs');
const Handlebars = require('handlebars');
const MailComposer = require('nodemailer/lib/mail-composer');
const { parseArgs, loadCase, makeEnv, median, nowNs } = require('./common');

const WORKLOADS = ['ses-preferences', 'ses-newsletter'];

// Value at a dotted path, '' when missing (as mailbars-bench's pattern expansion does).
function dotted(data, p) {
  let v = data;
  for (const k of p.split('.')) v = v == null ? undefined : v[k];
  return v == null ? '' : String(v);
}

// The To address of one recipient from the corpus pattern "{a.b} {c.d} <{e.f}>", as
// nodemailer's {name, address} form.
function expandTo(pattern, data) {
  const fill = (s) => s.replace(/\{([^}]*)\}/g, (_, p) => dotted(data, p));
  const lt = pattern.indexOf('<');
  if (lt < 0) return fill(pattern).trim();
  return { name: fill(pattern.slice(0, lt)).trim(), address: fill(pattern.slice(lt + 1, pattern.lastIndexOf('>'))) };
}

// Builds one message; resolves to the message Buffer.
function buildMessage(fns, from, rcpt) {
  const d = rcpt.data;
  const mail = {
    from,
    to: rcpt.to,
    subject: fns.subject(d),
    text: fns.text(d),
    html: fns.html(d),
    textEncoding: 'quoted-printable',
  };
  return new Promise((resolve, reject) => {
    new MailComposer(mail).compile().build((err, msg) => (err ? reject(err) : resolve(msg)));
  });
}

// Runs both workloads and prints their JSON lines.
async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!o.recipients) throw new Error('--recipients FILE.jsonl is required');
  let lines = fs.readFileSync(o.recipients, 'utf8').split('\n').filter((l) => l.trim() !== '');
  if (o.limit) lines = lines.slice(0, o.limit);
  const datas = lines.map((l) => JSON.parse(l));
  for (const name of WORKLOADS) {
    if (o.cases.length && !o.cases.includes(name)) continue;
    const c = loadCase(o.corpus, name);
    const hb = makeEnv(Handlebars, c);
    const fns = {};
    for (const p of ['subject', 'text', 'html']) fns[p] = hb.compile(c.template[p]);
    const rcpts = datas.map((data) => ({ data, to: expandTo(c.mime.to, data) }));
    // warm-up and check: every part rendered, QP bodies
    const first = (await buildMessage(fns, c.mime.from, rcpts[0])).toString('latin1');
    for (const need of ['Content-Transfer-Encoding: quoted-printable', 'text/plain', 'text/html']) {
      if (!first.includes(need)) throw new Error(name + ': message lacks ' + need);
    }
    // untimed warm-up passes over the recipients (at least one)
    for (const t0 = nowNs(); ;) {
      for (const rc of rcpts) await buildMessage(fns, c.mime.from, rc);
      if (nowNs() - t0 >= o.warmup * 1e9) break;
    }
    const mps = [];
    const mbs = [];
    let bytes = 0;
    let msgs = 0;
    for (let r = 0; r < o.runs; r++) {
      let n = 0;
      let b = 0;
      const t0 = nowNs();
      let dt;
      do {
        for (const rc of rcpts) {
          const m = await buildMessage(fns, c.mime.from, rc);
          b += m.length;
          n++;
        }
        dt = nowNs() - t0;
      } while (dt < o.minTime * 1e9);
      mps.push(n / (dt / 1e9));
      mbs.push(b / (dt / 1e9) / 1e6);
      bytes += b;
      msgs += n;
    }
    console.log(JSON.stringify({
      workload: name,
      threads: 1,
      recipients: rcpts.length,
      messages_per_s: Math.round(median(mps) * 10) / 10,
      mb_per_s: Math.round(median(mbs) * 100) / 100,
      bytes_per_message: Math.round(bytes / msgs),
      runs: o.runs,
      min_messages_per_s: Math.round(Math.min(...mps) * 10) / 10,
      max_messages_per_s: Math.round(Math.max(...mps) * 10) / 10,
    }));
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
