#!/usr/bin/env python3
"""Property test of the MIME layer.

Builds thousands of messages from random input with tests/mime/mime_tool, parses each back
with Python's email package (policy=email.policy.default) as an independent reader, and checks:
  * decoded Subject, addresses (display name and addr-spec) and text/html parts equal the input;
  * the wire rules: CRLF only, 7-bit only (no NUL), lines <= 998, header lines <= 78,
    encoded words <= 75, QP and base64 lines <= 76, QP bodies never start a line with '.' or
    "From ", header order, no boundary inside a part;
  * expected errors: NUL in a subject (ERR_HEADER), a character the charset lacks
    (ERR_UNMAPPABLE naming U+XXXX and its UTF-8 byte offset).

Normalisation: a header value's CR and LF each become a space. Body line breaks (LF, CRLF,
lone CR) become CRLF on the wire; Python returns them as CRLF, compared after CRLF -> LF. A
single-part 7bit body that does not end in a line break gains one (a message ends in CRLF).

Usage: property.py --tool PATH [--seed N] [--cases N]
"""
import argparse
import json
import random
import re
import subprocess
import sys
import email
import email.policy
import email.header

ASCII_WORDS = ["hello", "world", "Dear", "customer", "order", "#1234", "a=b", "50%", "x_y",
               "(note)", "[tag]", "C++", "e-mail", "it's", "\"quoted\"", "?", "=?", "?=",
               "--", "=_mb", "<b>", "&amp;", "~", "\\", "{}", "@", ",", ";", ":"]
LATIN1 = "àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿÀÉÎÕÜßÑ¡¿£¥©®°±µ¶·½¾×÷ "
CP1252_EXTRA = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
JAPANESE = ("あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
            "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン"
            "日本語漢字東京大阪学生先生時間件名今日明日新年会議確認送信" "。、「」ー")
CJK_EXTRA = "中文测试你好世界한국어"
EMOJI = ["😀", "🎉", "👍🏽", "👨‍👩‍👧", "🇯🇵", "𝔘𝔫𝔦", "𠀋", "🀄"]
COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0328\u0301", "\u0915\u094d\u0937"]
HINDI = "तुम कैसे हो? "
UKR = "Як ти поживаєш? "

CHARSETS = {
    # name: (alphabet of non-ASCII characters it holds, python codec for the check)
    "UTF-8": (None, "utf-8"),
    "ISO-8859-1": (LATIN1, "latin-1"),
    "windows-1252": (LATIN1 + CP1252_EXTRA, "cp1252"),
    "KOI8-R": (CYRILLIC, "koi8-r"),
    "ISO-2022-JP": (JAPANESE, "iso2022_jp"),
    "Shift_JIS": (JAPANESE, "shift_jis"),
    "EUC-JP": (JAPANESE, "euc_jp"),
}

IDN = [("bücher.example", "xn--bcher-kva.example"), ("例え.jp", "xn--r8jz45g.jp"),
       ("münchen.de", "xn--mnchen-3ya.de"), ("пример.рф", "xn--e1afmkfd.xn--p1ai")]


def rand_piece(rng, alphabet, body):
    """One random piece of text; `alphabet` None means any Unicode."""
    k = rng.random()
    if k < 0.35:
        return rng.choice(ASCII_WORDS)
    if k < 0.45:
        return " " * rng.randint(1, 3)
    if k < 0.50:
        return "\t"
    if k < 0.55:
        return "x" * rng.randint(60, 1200) if body else "y" * rng.randint(30, 120)
    if alphabet is not None:
        if k < 0.9:
            return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        return rng.choice(ASCII_WORDS)
    if k < 0.62:
        return "".join(rng.choice(LATIN1) for _ in range(rng.randint(1, 8)))
    if k < 0.68:
        return "".join(rng.choice(JAPANESE + CJK_EXTRA) for _ in range(rng.randint(1, 10)))
    if k < 0.74:
        return rng.choice(EMOJI)
    if k < 0.78:
        return rng.choice(COMBINING)
    if k < 0.82:
        return HINDI if rng.random() < 0.5 else UKR
    if k < 0.86:
        return "".join(rng.choice(CYRILLIC) for _ in range(rng.randint(1, 8)))
    if k < 0.90 and body:
        return rng.choice(["\x00", "\x01", "\x0c", "\x7f", "\u0085", "\u2028"])
    return rng.choice(ASCII_WORDS)


def rand_body(rng, alphabet, control_ok):
    out = []
    for _ in range(rng.randint(0, 40)):
        k = rng.random()
        if k < 0.15:
            out.append(rng.choice(["\n", "\r\n", "\r", "\n\n"]))
        elif k < 0.20:
            out.append(rng.choice(["\n.", "\n..", "\nFrom ", "\nFrom me", "\n>From "]))
        elif k < 0.25:
            out.append(rng.choice([" \n", "\t\n", "  \r\n", " "]))
        else:
            p = rand_piece(rng, alphabet, True)
            if not control_ok and any(ord(c) < 32 and c not in "\t\r\n" for c in p):
                p = "z"
            out.append(p)
    s = "".join(out)
    if rng.random() < 0.1:
        s = "." + s
    if rng.random() < 0.1:
        s = "From " + s
    return s


def rand_subject(rng, alphabet):
    parts = [rand_piece(rng, alphabet, False) for _ in range(rng.randint(0, 12))]
    if rng.random() < 0.1:
        parts.insert(rng.randint(0, len(parts)), rng.choice(["\r\n", "\n", "\r"]))
    return "".join(parts)


def rand_local(rng):
    atoms = ["john", "j.smith", "info", "a+tag", "o'neil", "x_y", "first.last", "99", "a-b", "q=1"]
    return rng.choice(atoms)


def rand_name(rng, alphabet):
    k = rng.random()
    if k < 0.25:
        return ""
    if k < 0.45:
        return rng.choice(["John Smith", "Alice", "Bob O'Neil", "Mary-Jane Watson"])
    if k < 0.6:
        return rng.choice(["Smith, John", "Dr. Who", "Say \"hi\"", "a\\b", "x@y", "<odd>",
                           "=?utf-8?q?not?=", " lead", "trail ", "two  spaces", "tab\there"])
    return "".join(rand_piece(rng, alphabet, False) for _ in range(rng.randint(1, 4)))


def quote_name(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rand_addresses(rng, alphabet):
    """(input list string, [(display_name, addr_spec)]) for 1-3 addresses."""
    items, want = [], []
    for _ in range(rng.randint(1, 3)):
        local = rand_local(rng)
        if rng.random() < 0.2:
            dom_in, dom_out = rng.choice(IDN)
        else:
            dom_in = dom_out = rng.choice(["example.com", "mail.example.org", "x.io", "EXAMPLE.net"])
        name = rand_name(rng, alphabet)
        spec_in = f"{local}@{dom_in}"
        if name == "":
            items.append(spec_in if rng.random() < 0.5 else f"<{spec_in}>")
        else:
            items.append(f"{quote_name(name)} <{spec_in}>")
        want.append((name.replace("\r", " ").replace("\n", " "), f"{local}@{dom_out}"))
    return ", ".join(items), want


def make_case(rng, i):
    cs = rng.choice(list(CHARSETS)) if rng.random() < 0.45 else "UTF-8"
    alphabet = CHARSETS[cs][0]
    case = {"charset": cs, "date": 1739440800 + i * 3607, "tz": rng.choice([0, 60, -300, 330])}
    case["encoding"] = rng.choice(["auto"] * 6 + ["quoted-printable", "base64"])
    expect = {"addrs": {}}
    for field in ["from", "to", "cc", "reply_to"]:
        if field in ("from", "to") or rng.random() < 0.3:
            lst, want = rand_addresses(rng, alphabet)
            case[field] = lst
            expect["addrs"][field] = want
    if rng.random() < 0.95:
        case["subject"] = rand_subject(rng, alphabet)
    control_ok = cs not in ("ISO-2022-JP",)
    k = rng.random()
    if k < 0.4 or k >= 0.8:
        case["text"] = rand_body(rng, alphabet, control_ok)
    if k >= 0.4:
        case["html"] = "<html><body>" + rand_body(rng, alphabet, control_ok) + "</body></html>"
    if rng.random() < 0.1:
        case["boundary"] = "fixed-b" + str(i)
    if rng.random() < 0.1:
        case["message_id"] = f"case{i}@test.example"
    # expected errors
    expect["error"] = None
    if "subject" in case and "\x00" in case["subject"]:
        expect["error"] = ("ERR_HEADER", None)
    if alphabet is not None and expect["error"] is None and rng.random() < 0.15:
        target = rng.choice([f for f in ("text", "html", "subject") if f in case])
        s = case[target]
        pos = rng.randint(0, len(s))
        case[target] = s[:pos] + "😀" + s[pos:]
        off = len(case[target][:pos].encode("utf-8"))
        if target == "subject":
            off = len(case[target][:pos].replace("\r", " ").replace("\n", " ").encode("utf-8"))
        expect["error"] = ("ERR_UNMAPPABLE", (target, off))
    return case, expect


HEADER_ORDER = ["from", "to", "cc", "reply-to", "subject", "date", "message-id", "mime-version",
                "content-type", "content-transfer-encoding"]
EW = re.compile(rb"=\?[^?\s]+\?[BQ]\?[^?\s]*\?=")


def check_wire(raw, problems):
    if re.search(rb"\r(?!\n)", raw) or re.search(rb"(?<!\r)\n", raw):
        problems.append("bare CR or LF")
    if any(b >= 0x80 or b == 0 for b in raw):
        problems.append("8-bit or NUL byte")
    lines = raw.split(b"\r\n")
    in_headers = True
    for ln in lines:
        if len(ln) > 998:
            problems.append("line > 998")
        if ln == b"":
            in_headers = False
        if in_headers and len(ln) > 78:
            problems.append(f"header line > 78: {ln[:60]!r}")
        if ln.startswith(b"Content-Type") or ln.startswith(b"Content-Transfer"):
            in_headers = True  # part headers
    for w in EW.findall(raw):
        if len(w) > 75:
            problems.append(f"encoded word > 75: {w!r}")
    # top-level header order
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    names = [ln.split(":", 1)[0].lower() for ln in head.split("\r\n") if ln and ln[0] not in " \t"]
    order = [HEADER_ORDER.index(n) if n in HEADER_ORDER else -1 for n in names]
    if -1 in order or order != sorted(order):
        problems.append(f"header order {names}")


def check_part(part, want, single, problems, label):
    cte = (part.get("Content-Transfer-Encoding") or "").lower()
    payload = part.get_payload(decode=False)
    body_raw = payload.encode("ascii", "replace") if isinstance(payload, str) else b""
    if cte in ("quoted-printable", "base64"):
        for ln in body_raw.split(b"\r\n") if b"\r\n" in body_raw else body_raw.split(b"\n"):
            if len(ln) > 76:
                problems.append(f"{label}: {cte} line > 76")
            if cte == "quoted-printable" and (ln.startswith(b".") or ln.startswith(b"From ")):
                problems.append(f"{label}: QP line starts with '.' or 'From '")
    got = part.get_content().replace("\r\n", "\n")
    exp = want.replace("\r\n", "\n").replace("\r", "\n")
    if got != exp:
        if single and cte == "7bit" and not exp.endswith("\n") and exp != "" and got == exp + "\n":
            return
        problems.append(f"{label} differs: got {got[:80]!r}... want {exp[:80]!r}...")


def nows(s):
    return re.sub(r"\s+", "", s)


def raw_header(raw, name):
    """The unfolded value of a top-level header, as ASCII text."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    m = re.search(r"(?im)^" + re.escape(name) + r":([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head)
    return m.group(1).replace("\r\n", "").strip() if m else ""


def split_top(value):
    """Splits an address list at commas outside quoted strings and angle brackets."""
    items, cur, inq, angle, i = [], "", False, False, 0
    while i < len(value):
        c = value[i]
        if inq and c == "\\":
            cur += value[i:i + 2]
            i += 2
            continue
        if c == '"':
            inq = not inq
        elif not inq and c == "<":
            angle = True
        elif not inq and c == ">":
            angle = False
        elif not inq and not angle and c == ",":
            items.append(cur)
            cur = ""
            i += 1
            continue
        cur += c
        i += 1
    items.append(cur)
    return [x.strip() for x in items if x.strip()]


def legacy_addresses(value):
    out = []
    for item in split_top(value):
        if item.endswith(">") and "<" in item:
            name, spec = item[:item.rindex("<")].strip(), item[item.rindex("<") + 1:-1]
        else:
            name, spec = "", item
        if name.startswith('"') and name.endswith('"'):
            name = re.sub(r"\\(.)", r"\1", name[1:-1])
        elif "=?" in name:
            name = str(email.header.make_header(email.header.decode_header(name)))
        out.append((name, spec))
    return out


def check_case(case, expect, res):
    problems = []
    err = expect["error"]
    if err:
        if res.get("ok"):
            return [f"expected {err[0]}, got a message"]
        if res.get("code") != err[0]:
            return [f"expected {err[0]}, got {res.get('code')}: {res.get('error')}"]
        if err[0] == "ERR_UNMAPPABLE":
            target, off = err[1]
            msg = res.get("error", "")
            if "U+1F600" not in msg or f"byte offset {off}" not in msg or not msg.startswith(target):
                problems.append(f"unmappable message {msg!r}, want {target} U+1F600 offset {off}")
        return problems
    if not res.get("ok"):
        return [f"unexpected error {res.get('code')}: {res.get('error')}"]
    raw = res["message"].encode("latin-1")
    check_wire(raw, problems)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    if msg.defects:
        problems.append(f"defects {msg.defects}")
    if "subject" in case:
        want = case["subject"].replace("\r", " ").replace("\n", " ")
        got = str(msg["subject"]) if msg["subject"] is not None else None
        if got != want:
            problems.append(f"subject: got {got!r} want {want!r}")
    for field, want in expect["addrs"].items():
        hdr = msg[field.replace("_", "-")]
        if hdr is None:
            problems.append(f"{field} missing")
            continue
        # policy.default: addr-spec exactly; its display_name collapses whitespace and puts a
        # space between adjacent encoded words in a phrase (RFC 2047 6.2 says to drop it), so
        # names are compared without whitespace here ...
        got = [(nows(a.display_name), a.addr_spec) for a in hdr.addresses]
        if got != [(nows(n), a) for n, a in want]:
            problems.append(f"{field}: got {got!r} want {want!r}")
        # ... and exactly through the legacy RFC 2047 decoder (email.header.decode_header).
        got = legacy_addresses(raw_header(raw, field.replace("_", "-")))
        if got != want:
            problems.append(f"{field} (legacy decoder): got {got!r} want {want!r}")
    cs = case["charset"]
    parts = []
    if msg.is_multipart():
        if msg.get_content_type() != "multipart/alternative":
            problems.append("not multipart/alternative")
        parts = list(msg.iter_parts())
        boundary = msg.get_boundary().encode()
        for p in parts:
            pl = p.get_payload(decode=False)
            if isinstance(pl, str) and boundary in pl.encode("ascii", "replace"):
                problems.append("boundary inside a part")
    else:
        parts = [msg]
    kinds = [k for k in ("text", "html") if k in case]
    if len(parts) != len(kinds):
        problems.append(f"{len(parts)} parts for {kinds}")
        return problems
    for p, k in zip(parts, kinds):
        ctype = "text/plain" if k == "text" else "text/html"
        if p.get_content_type() != ctype:
            problems.append(f"part type {p.get_content_type()} for {k}")
        label = (p.get_param("charset") or "").lower()
        if label != cs.lower():
            problems.append(f"charset label {label} for {cs}")
        check_part(p, case[k], len(parts) == 1, problems, k)
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--seed", type=int, default=20250213)
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--show", type=int, default=5, help="failures to print in full")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    cases = [make_case(rng, i) for i in range(args.cases)]
    inp = "".join(json.dumps(c, ensure_ascii=True) + "\n" for c, _ in cases)
    proc = subprocess.run([args.tool], input=inp.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        print(proc.stderr.decode(errors="replace"), file=sys.stderr)
        print(f"0 passed, {args.cases} failed (mime_tool exited {proc.returncode})")
        return 1
    results = [json.loads(ln) for ln in proc.stdout.decode().splitlines()]
    if len(results) != len(cases):
        print(f"0 passed, {args.cases} failed ({len(results)} results for {len(cases)} cases)")
        return 1
    passed = failed = 0
    stats = {"errors": 0, "multipart": 0}
    for i, ((case, expect), res) in enumerate(zip(cases, results)):
        try:
            problems = check_case(case, expect, res)
        except Exception as e:  # the reader choked: that is a failure too
            problems = [f"exception {type(e).__name__}: {e}"]
        if expect["error"]:
            stats["errors"] += 1
        if problems:
            failed += 1
            if failed <= args.show:
                print(f"case {i}: {problems}\n  input: {json.dumps(case)[:600]}", file=sys.stderr)
                if res.get("ok"):
                    print("  message:\n" + res["message"][:1500], file=sys.stderr)
        else:
            passed += 1
    print(f"seed {args.seed}: {len(cases)} cases ({stats['errors']} expecting an error)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
