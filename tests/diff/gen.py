#!/usr/bin/env python3
"""Random Handlebars cases for the differential test (tests/diff/run_diff.py).

A case is what the oracle's JSON Lines protocol takes: template, data, partials, options and
runtimeData. Templates are kept as a tree of nodes (text, single tags, blocks) so that the
driver can shrink a failing case by removing nodes. Data is generated first; the template is
then built against a model of the scopes it opens (each/with/sections/block params/@data), so
that most paths exist in the data, while a share of them is missing, odd or wrong on purpose.

Everything depends only on the seed: case i of seed S is generate_case(random.Random(f"{S}:{i}")).
Python 3 standard library only.
"""

import copy
import json
import random
import re

MISSING = object()  # a path that the model believes to be absent

# ------------------------------------------------------------------------------------------
# Template nodes
# ------------------------------------------------------------------------------------------


class Text:
    """Literal template text (may hold standalone-line whitespace, unicode, escapes)."""

    __slots__ = ("s",)

    def __init__(self, s):
        self.s = s

    def render(self):
        return self.s


class Tag:
    """One self-contained piece of syntax: a mustache, a comment, a partial call, a raw block."""

    __slots__ = ("s",)

    def __init__(self, s):
        self.s = s

    def render(self):
        return self.s


class Block:
    """A block: opening tag, body, then (separator, nodes) parts ({{else}} chains), closing tag."""

    __slots__ = ("open", "body", "parts", "close")

    def __init__(self, open_, body, parts, close):
        self.open, self.body, self.parts, self.close = open_, body, parts, close

    def render(self):
        out = [self.open, render_nodes(self.body)]
        for sep, nodes in self.parts:
            out.append(sep)
            out.append(render_nodes(nodes))
        out.append(self.close)
        return "".join(out)


def render_nodes(nodes):
    return "".join(n.render() for n in nodes)


def count_nodes(nodes):
    n = 0
    for x in nodes:
        n += 1
        if isinstance(x, Block):
            n += count_nodes(x.body) + sum(count_nodes(p) for _, p in x.parts)
    return n


# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------

KEYS = ["a", "b", "c", "name", "title", "items", "list", "obj", "x", "y", "n", "flag",
        "person", "tags", "value", "empty", "user", "k", "v", "z"]
ODD_KEYS = ["first name", "foo-bar", "$v", "1", "10", "2", "a=b", "ü", "漢字", "with.dot",
            "ses:tracker", "e\u0301", "-x"]

STRINGS = ["", "hello", "World", "a & b", "<b>bold</b>", "\"quoted\"", "it's", "`tick`", "x=y",
           "漢字テキスト", "😀🎉", "e\u0301", "line1\nline2", "  spaced  ", "{{notatag}}", "\\",
           "tab\there", "null", "0", "false", "&amp;", "<script>alert('x')</script>", "Ωmega",
           "\u2028sep", "nul\u0000byte", "ﬀ ligature", "a,b", "[object Object]", "\r\n",
           "very long " * 8]

NUMBERS = [0, 1, -1, 2, 3, 42, 100, 1.5, -2.25, 3.14159, 1e21, 1e20, 1e-7, 1e-6, 0.000001,
           0.1 + 0.2, 123456789012345680000, 9007199254740993, -0.0, 1e300, 5e-324, 0.5,
           255, 1234.5678, -1e-7, 2 ** 31, 1e16, 12345678901234567]


def gen_scalar(rng):
    r = rng.random()
    if r < 0.5:
        return rng.choice(STRINGS)
    if r < 0.78:
        return rng.choice(NUMBERS)
    if r < 0.92:
        return rng.choice([True, False])
    return None


def gen_key(rng):
    return rng.choice(ODD_KEYS) if rng.random() < 0.08 else rng.choice(KEYS)


def gen_value(rng, depth):
    """A random JSON value; containers get rarer with depth."""
    r = rng.random()
    if depth >= 3 or r < 0.45:
        return gen_scalar(rng)
    if r < 0.7:
        return gen_array(rng, depth + 1)
    return gen_object(rng, depth + 1)


def gen_array(rng, depth):
    n = rng.choice([0, 1, 1, 2, 2, 3, 3, 4])
    if rng.random() < 0.6:  # arrays of objects with shared keys, as real data has
        keys = [gen_key(rng) for _ in range(rng.randint(1, 3))]
        # each key keeps one kind (scalar, array or object) across the items, so a path the
        # template takes from one item never indexes a string in another
        kinds = {k: rng.choice(["s", "s", "a", "o"]) if depth < 3 else "s" for k in keys}
        return [{k: gen_of_kind(rng, kinds[k], depth + 1) for k in keys} for _ in range(n)]
    if rng.random() < 0.5:
        return [gen_scalar(rng) for _ in range(n)]
    return [gen_value(rng, depth + 1) for _ in range(n)]


def gen_of_kind(rng, kind, depth):
    if kind == "a":
        return gen_array(rng, depth + 1)
    if kind == "o":
        return gen_object(rng, depth + 1)
    return gen_scalar(rng)


def gen_object(rng, depth):
    n = rng.choice([0, 1, 2, 3, 3, 4, 5]) if depth > 0 else rng.randint(4, 9)
    return {gen_key(rng): gen_value(rng, depth + 1) for _ in range(n)}


# ------------------------------------------------------------------------------------------
# Paths and the scope model
# ------------------------------------------------------------------------------------------

ID_RE = re.compile(r'^[^\s!"#%-,\./;->@\[-\^`\{-~]+$')
RESERVED = {"true", "false", "null", "undefined", "this", "else", "as"}


def seg(k):
    """A key written as a path segment: plain when the lexer reads it as an ID, else [k]."""
    if ID_RE.match(k) and k not in RESERVED and not re.match(r"^-?[0-9]", k):
        return k
    return "[" + k + "]"


class Scope:
    """What the generator believes about a point in the template: the context value, the
    enclosing context scope (for ../), block params and @data variables."""

    def __init__(self, ctx, parent=None, root=None, bparams=None, dvars=None, dparent=None):
        self.ctx = ctx
        self.parent = parent
        self.root = root if root is not None else ctx
        self.bparams = dict(parent.bparams) if parent else {}
        if bparams:
            self.bparams.update(bparams)
        self.dvars = dvars if dvars is not None else (parent.dvars if parent else {})
        self.dparent = dparent if dparent is not None else (parent.dparent if parent else None)
        self.runtime = parent.runtime if parent else {}
        self.inline = list(parent.inline) if parent else []

    def child(self, ctx, bparams=None, dvars=None):
        """A scope whose context changed (each/with/section); @../ refers to our @data."""
        return Scope(ctx, self, self.root, bparams, dvars if dvars is not None else {},
                     self.dvars if dvars is not None else None)


def representative(rng, values):
    """The model of the context inside an iteration: one of the values when they all have the
    same container type, else MISSING (only `this`, `../` and @data paths are then used), so
    the template does not index into a string (JavaScript-only behaviour)."""
    if values and all(isinstance(v, dict) for v in values):
        return rng.choice(values)
    if values and all(isinstance(v, list) for v in values):
        return rng.choice(values)
    if values and all(not isinstance(v, (dict, list)) for v in values):
        return rng.choice(values)
    return MISSING


def container_items(v):
    if isinstance(v, dict):
        return list(v.items())
    if isinstance(v, list):
        return [("[%d]" % i, x) for i, x in enumerate(v)]
    return []


def path_candidates(rng, sc):
    """(path text, value, weight) triples for paths valid in `sc`, plus some missing ones."""
    out = []
    sep = "/" if rng.random() < 0.1 else "."
    ctx = sc.ctx
    if isinstance(ctx, dict):
        for k, v in ctx.items():
            if k.isdigit():  # [2] on a string context indexes it in JavaScript: not used
                continue
            out.append((seg(k), v, 6))
            if rng.random() < 0.15:
                out.append(("this" + sep + seg(k), v, 1))
            for k2, v2 in container_items(v)[:4]:
                if k2.isdigit():
                    continue
                s2 = k2 if k2.startswith("[") else seg(k2)
                out.append((seg(k) + sep + s2, v2, 2))
            if isinstance(v, list) and rng.random() < 0.3:
                out.append((seg(k) + ".length", len(v), 1))
    elif isinstance(ctx, list):
        for k, v in container_items(ctx)[:3]:
            out.append(("this." + k, v, 1))
    out.append(("this" if rng.random() < 0.5 else ".", ctx, 3))
    for name, v in sc.bparams.items():
        out.append((name, v, 5))
        for k2, v2 in container_items(v)[:3]:
            out.append((name + "." + (k2 if k2.startswith("[") else seg(k2)), v2, 2))
    if sc.parent is not None and isinstance(sc.parent.ctx, dict):
        for k, v in list(sc.parent.ctx.items())[:5]:
            out.append(("../" + seg(k), v, 2))
        if sc.parent.parent is not None and isinstance(sc.parent.parent.ctx, dict):
            for k, v in list(sc.parent.parent.ctx.items())[:3]:
                out.append(("../../" + seg(k), v, 1))
    if isinstance(sc.root, dict) and sc.parent is not None:
        for k, v in list(sc.root.items())[:5]:
            out.append(("@root." + seg(k), v, 1))
    for name, v in sc.dvars.items():
        out.append(("@" + name, v, 4))
    if sc.dparent:
        for name, v in sc.dparent.items():
            out.append(("@../" + name, v, 1))
    for name, v in sc.runtime.items():
        out.append(("@" + name, v, 1))
    out.append((rng.choice(["nope", "missing.deep", "../nope", "@nope", "a.b.c.d"]), MISSING, 2))
    return out


def pick_path(rng, sc, want=None):
    """A path and the value the model expects for it. `want` biases towards 'list', 'obj'."""
    cands = path_candidates(rng, sc)
    weights = []
    for p, v, w in cands:
        if want == "list" and isinstance(v, list):
            w *= 6
        elif want == "obj" and isinstance(v, dict):
            w *= 6
        elif want == "scalar" and not isinstance(v, (list, dict)):
            w *= 2
        weights.append(w)
    p, v, _ = rng.choices(cands, weights)[0]
    return p, v


def literal(rng):
    return rng.choice(['"str"', "'single'", '"a & b"', "1", "0", "-1", "1.5", "true", "false",
                       "null", "undefined", '""', '"漢字"'])


# ------------------------------------------------------------------------------------------
# Template generation
# ------------------------------------------------------------------------------------------

TEXTS = ["hello", " ", "  ", "\n", "\n", "text", ", ", "&", "<p>", "</p>", "\"", "'", "`", "=",
         "漢字", "😀", "e\u0301", "Ω", "\t", "\r\n", ".", "-", "x", " - ", "\\",
         "ü", "\u00a0", "$", "#", "/"]


def gen_text(rng):
    n = rng.choice([1, 1, 2, 3])
    s = "".join(rng.choice(TEXTS) for _ in range(n))
    if rng.random() < 0.01:  # braces next to tags change the tokens (and often fail)
        s = rng.choice(["{", "}", "a}b", "{ x }"]) + s
    if rng.random() < 0.0005:  # a NUL is a lexical error in handlebars.js
        s += "\u0000"
    return s


def ws(rng, rate=0.12):
    return "~" if rng.random() < rate else ""


def sp(rng):
    return " " if rng.random() < 0.15 else ""


class Gen:
    """Builds one case's template against its data."""

    def __init__(self, rng, data, partial_names, opts, with_pb=()):
        self.with_pb = set(with_pb)  # partials that contain {{> @partial-block}}
        self.rng = rng
        self.data = data
        self.partials = partial_names  # names callable from here
        self.opts = opts
        self.budget = rng.randint(3, 28)
        self.inline_seq = 0

    # one mustache {{...}}
    def mustache(self, sc):
        rng = self.rng
        p, _ = pick_path(rng, sc, "scalar")
        r = rng.random()
        if r < 0.65:
            return Tag("{{" + ws(rng) + sp(rng) + p + sp(rng) + ws(rng) + "}}")
        if r < 0.85:
            # whitespace control on a triple-stash is {{~{x}~}}
            return Tag("{{" + ws(rng) + "{" + p + "}" + ws(rng) + "}}")
        return Tag("{{" + ws(rng) + "&" + sp(rng) + p + ws(rng) + "}}")

    def lookup(self, sc):
        rng = self.rng
        obj, ov = pick_path(rng, sc, "obj")
        if isinstance(ov, dict) and ov and rng.random() < 0.7:
            key = json.dumps(rng.choice(list(ov)), ensure_ascii=False)
            key = key if '\\' not in key else '"a"'
        elif isinstance(ov, list) and rng.random() < 0.6:
            key = rng.choice(["0", "1", "@index", '"0"'])
        elif isinstance(ov, str):  # indexing a string is UTF-16 code units in JavaScript
            key = '"b"'
        else:
            key, _ = pick_path(rng, sc)
        inner = "lookup " + obj + " " + key
        if rng.random() < 0.2:
            return Tag("{{#with (" + inner + ")}}{{.}}{{/with}}")
        return Tag(("{{{" + inner + "}}}") if rng.random() < 0.2 else ("{{" + inner + "}}"))

    def deco(self, open_, close):
        """Standalone lines and whitespace control around a block's tags."""
        rng = self.rng
        if rng.random() < 0.3:
            ind = rng.choice(["", "  ", "\t"])
            open_ = "\n" + ind + open_ + "\n"
            close = "\n" + ind + close + "\n"
        return open_, close

    def sep(self, text):
        rng = self.rng
        s = "{{" + ws(rng) + text + ws(rng) + "}}"
        if rng.random() < 0.25:
            s = "\n" + rng.choice(["", " "]) + s + "\n"
        return s

    def cond_block(self, sc, depth):
        rng = self.rng
        name = "if" if rng.random() < 0.75 else "unless"
        if rng.random() < 0.1:
            cond = literal(rng)
        else:
            cond, _ = pick_path(rng, sc)
        extra = " includeZero=true" if rng.random() < 0.08 else ""
        open_ = "{{" + ws(rng) + "#" + name + " " + cond + extra + ws(rng) + "}}"
        close = "{{" + ws(rng) + "/" + name + ws(rng) + "}}"
        body = self.nodes(sc, depth + 1)
        parts = []
        if name == "if":
            while rng.random() < 0.25:
                c2, _ = pick_path(rng, sc)
                parts.append((self.sep("else if " + c2), self.nodes(sc, depth + 1)))
        if rng.random() < 0.4:
            parts.append((self.sep("else" if rng.random() < 0.85 else "^"),
                          self.nodes(sc, depth + 1)))
        open_, close = self.deco(open_, close)
        return Block(open_, body, parts, close)

    def each_block(self, sc, depth):
        rng = self.rng
        p, v = pick_path(rng, sc, "list" if rng.random() < 0.7 else "obj")
        bp = {}
        tail = ""
        if isinstance(v, list) and v:
            elem, dv = representative(rng, v), {"index": 0, "first": True, "last": len(v) == 1}
            idx = 0
        elif isinstance(v, dict) and v:
            k0 = rng.choice(list(v))
            elem = representative(rng, list(v.values()))
            dv = {"index": 0, "key": k0, "first": True, "last": False}
            idx = k0
        else:
            elem, dv, idx = MISSING, {"index": 0, "first": True, "last": True}, 0
        if rng.random() < 0.3:
            names = rng.choice([["item"], ["item", "i"], ["x", "key"], ["row", "n"]])
            tail = " as |" + " ".join(names) + "|"
            bp[names[0]] = elem
            if len(names) > 1:
                bp[names[1]] = idx
        inner = sc.child(elem, bp, dv)
        open_ = "{{" + ws(rng) + "#each " + p + tail + ws(rng) + "}}"
        close = "{{" + ws(rng) + "/each" + ws(rng) + "}}"
        body = self.nodes(inner, depth + 1)
        parts = []
        if rng.random() < 0.3:
            parts.append((self.sep("else"), self.nodes(sc, depth + 1)))
        open_, close = self.deco(open_, close)
        return Block(open_, body, parts, close)

    def with_block(self, sc, depth):
        rng = self.rng
        p, v = pick_path(rng, sc, "obj")
        bp, tail = {}, ""
        if rng.random() < 0.2:
            tail = " as |w|"
            bp["w"] = v
        inner = sc.child(v, bp)
        open_ = "{{" + ws(rng) + "#with " + p + tail + ws(rng) + "}}"
        close = "{{" + ws(rng) + "/with" + ws(rng) + "}}"
        body = self.nodes(inner, depth + 1)
        parts = []
        if rng.random() < 0.25:
            parts.append((self.sep("else"), self.nodes(sc, depth + 1)))
        open_, close = self.deco(open_, close)
        return Block(open_, body, parts, close)

    def section(self, sc, depth):
        """{{#path}} / {{^path}} over data (blockHelperMissing semantics)."""
        rng = self.rng
        p, v = pick_path(rng, sc, "list" if rng.random() < 0.5 else None)
        if p.startswith("@") or p in ("this", "."):
            p, v = "flag", (sc.ctx.get("flag", MISSING) if isinstance(sc.ctx, dict) else MISSING)
        name = p
        if rng.random() < 0.3:
            open_ = "{{^" + p + "}}"
            inner = sc
        else:
            open_ = "{{" + ws(rng) + "#" + p + ws(rng) + "}}"
            if isinstance(v, list):
                inner = sc.child(representative(rng, v), None,
                                 {"index": 0, "first": True, "last": len(v) == 1})
            elif isinstance(v, dict):
                inner = sc.child(v)
            else:
                inner = sc
        close = "{{/" + name + "}}"
        body = self.nodes(inner, depth + 1)
        parts = []
        if rng.random() < 0.2:
            parts.append((self.sep("else"), self.nodes(sc, depth + 1)))
        open_, close = self.deco(open_, close)
        return Block(open_, body, parts, close)

    def partial_call(self, sc):
        rng = self.rng
        names = self.partials + sc.inline
        plain = [n for n in names if n not in self.with_pb]
        if not names or rng.random() < 0.03:
            name = "nope"
        elif plain and rng.random() < 0.9:
            name = rng.choice(plain)
        else:
            name = rng.choice(names)
        r = rng.random()
        if r < 0.12 and "pn" in self.data:
            target = rng.choice(['(lookup @root "pn")', "(lookup . 'pn')"])
        else:
            target = name if re.match(r"^[A-Za-z0-9_-]+$", name) else json.dumps(name)
        args = ""
        r = rng.random()
        if r < 0.25:
            p, _ = pick_path(rng, sc, "obj")
            args = " " + p
        elif r < 0.4:
            p, _ = pick_path(rng, sc)
            args = " k=" + p + " lit=" + literal(rng)
        elif r < 0.5:
            p, _ = pick_path(rng, sc, "obj")
            p2, _ = pick_path(rng, sc)
            args = " " + p + " name=" + p2
        s = "{{" + ws(rng, 0.08) + ">" + sp(rng) + target + args + ws(rng, 0.08) + "}}"
        if rng.random() < 0.3:  # standalone, so the partial is indented
            s = "\n" + rng.choice(["", "  ", "    ", "\t"]) + s + "\n"
        return Tag(s)

    def partial_block(self, sc, depth):
        rng = self.rng
        pb = [n for n in self.partials if n in self.with_pb]
        if pb and rng.random() < 0.8:
            name = rng.choice(pb)
        elif self.partials and rng.random() < 0.8:
            name = rng.choice(self.partials)
        else:
            name = "nolayout"
        open_ = "{{#> " + name + "}}"
        close = "{{/" + name + "}}"
        body = self.nodes(sc, depth + 1)
        open_, close = self.deco(open_, close)
        return Block(open_, body, [], close)

    def inline_partial(self, sc, depth):
        """{{#*inline "n"}}…{{/inline}} followed later by calls, which partial_call may pick."""
        rng = self.rng
        self.inline_seq += 1
        name = "ip%d" % self.inline_seq
        body = self.nodes(sc, depth + 1)
        open_, close = self.deco('{{#*inline "' + name + '"}}', "{{/inline}}")
        sc.inline.append(name)
        return Block(open_, body, [], close)

    def raw_block(self):
        rng = self.rng
        inner = rng.choice(["{{x}}", " {{#if a}}b{{/if}} ", "plain", "{{> p}}", "}}{{"])
        return Tag("{{{{raw}}}}" + inner + "{{{{/raw}}}}")

    def comment(self):
        rng = self.rng
        return Tag(rng.choice(["{{! a comment }}", "{{!-- has }} inside --}}", "{{!}}",
                               "\n{{! standalone }}\n", "{{~! trim ~}}", "{{!-- x --}}",
                               "  {{!-- \n multi \n --}}  \n"]))

    def odd(self, sc):
        """Less common but valid things."""
        rng = self.rng
        r = rng.random()
        if r < 0.25:
            return Tag(rng.choice(["\\{{x}}", "\\{{{y}}}", "\\\\{{a}}", "\\{{#if}}"]))
        if r < 0.45:
            # literal paths; numeric ones are left out: on a string context they index it
            return Tag("{{" + rng.choice(['"a"', "'name'", "true", '"first name"', "null"])
                       + "}}")
        if r < 0.55:
            return Tag('{{log "note" level="debug"}}')
        if r < 0.7:
            return Tag("{{" + rng.choice(["foo bar", "missingHelper 1", "x.y z"]) + "}}")
        if r < 0.85:
            p, _ = pick_path(rng, sc, "list")
            return Tag("{{#each " + p + "}}{{@index}}:{{@key}}:{{@first}}:{{@last}};{{/each}}")
        return Tag("{{" + rng.choice(["@index", "@key", "@first", "@last", "@root"]) + "}}")

    def node(self, sc, depth):
        rng = self.rng
        self.budget -= 1
        deep = depth < 4 and self.budget > 0
        kinds = [("text", 25), ("mustache", 24), ("lookup", 3), ("comment", 2), ("odd", 3),
                 ("raw", 0.7)]
        if deep:
            kinds += [("if", 10), ("each", 9), ("with", 4), ("section", 5)]
            if self.partials or sc.inline:
                kinds += [("pblock", 1.5)]
            kinds += [("inline", 1)]
        if self.partials or sc.inline:
            kinds += [("partial", 6)]
        k = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
        if k == "text":
            return Text(gen_text(rng))
        if k == "mustache":
            return self.mustache(sc)
        if k == "lookup":
            return self.lookup(sc)
        if k == "comment":
            return self.comment()
        if k == "odd":
            return self.odd(sc)
        if k == "raw":
            return self.raw_block()
        if k == "if":
            return self.cond_block(sc, depth)
        if k == "each":
            return self.each_block(sc, depth)
        if k == "with":
            return self.with_block(sc, depth)
        if k == "section":
            return self.section(sc, depth)
        if k == "pblock":
            return self.partial_block(sc, depth)
        if k == "inline":
            return self.inline_partial(sc, depth)
        return self.partial_call(sc)

    def nodes(self, sc, depth):
        n = self.rng.choice([0, 1, 1, 2, 2, 3, 4]) if depth > 0 else self.rng.randint(1, 6)
        out = []
        # a copy, so inline partials defined here are visible only to later siblings and
        # their children, as handlebars.js scopes them to the program that defines them
        local = copy.copy(sc)
        local.inline = list(sc.inline)
        for _ in range(n):
            out.append(self.node(local, depth))
        return out

INVALID = ["{{#if x}}", "{{/if}}", "{{#each items}}{{/with}}", "{{x", "{{{x}}", "{{x}}}",
           "{{#}}", "{{> }}", "{{else}}", "{{#if}}{{/if}}", "{{#if a b}}{{/if}}",
           "{{#each}}{{/each}}", "{{#with}}{{/with}}", "{{#unless}}{{/unless}}", "{{foo bar}}",
           "{{> nope}}", "{{!-- unterminated", "{{a.[b}}", "{{a..b}}", "{{@}}", "{{ }}",
           "{{#if x}}{{else if}}{{/if}}", "{{{{raw}}}}x{{{{/rawx}}}}", "{{items.0}}",
           "{{a.true}}", "{{#each items as ||}}{{/each}}", "{{#if x}}{{else}}{{else}}{{/if}}",
           "{{> (missing)}}", "{{#> @partial-block}}{{/@partial-block}}", "{{a/../b}}",
           "{{this/a}}", "{{../../../../x}}", "{{#with a b}}{{/with}}",
           "{{#each a b}}{{/each}}", "{{with}}", "{{if}}", "}}", "{{#*inline}}{{/inline}}",
           "{{=<% %>=}}", "{{#if x}}{{/unless}}", "{{^}}", "{{a b=}}", "{{(a)}}",
           "{{#if (eq a b)}}{{/if}}", "{{> @partial-block}}", "{{a.[b]c}}"]

OPTION_NAMES = ["noEscape", "strict", "compat", "assumeObjects", "preventIndent",
                "ignoreStandalone", "knownHelpersOnly"]


def gen_options(rng):
    opts = {}
    if rng.random() < 0.18:
        for name in rng.sample(OPTION_NAMES, rng.choice([1, 1, 1, 2])):
            opts[name] = True
        if opts.get("strict") and opts.get("compat"):
            # handlebars.js 4.7 throws on every one-segment lookup in this combination
            # ("not defined in undefined" or a TypeError from the `in` operator)
            del opts["compat"]
    if rng.random() < 0.02:
        opts["data"] = False
    if rng.random() < 0.01:
        opts["explicitPartialContext"] = True
    return opts


def generate_case(rng):
    """One case: {'template': nodes, 'partials': {name: nodes}, 'data', 'options',
    'runtimeData' (or absent)}. Use to_json() for the protocol form."""
    data = gen_object(rng, 0)
    if rng.random() < 0.5:  # make sure there is a list of objects and a nested object
        data["items"] = gen_array(rng, 1)
    if rng.random() < 0.4:
        data["obj"] = gen_object(rng, 1)
    if rng.random() < 0.15:
        data["raw"] = True
    opts = gen_options(rng)
    root = Scope(data)
    if rng.random() < 0.08:
        root.runtime = {"custom": rng.choice(STRINGS), "num": 7}
    names = []
    if rng.random() < 0.4:
        names = rng.sample(["p0", "p1", "p2", "my-partial", "p.dot"], rng.randint(1, 3))
    partials = {}
    with_pb = set()
    # partial i may call only partials after it, so there is no recursion
    for i in reversed(range(len(names))):
        g = Gen(rng, data, names[i + 1:], opts, with_pb)
        g.budget = rng.randint(1, 10)
        body = g.nodes(Scope(data), 0)
        if rng.random() < 0.3:
            body.insert(rng.randint(0, len(body)), Tag("{{> @partial-block}}"))
            with_pb.add(names[i])
        partials[names[i]] = body
    if names and rng.random() < 0.3:
        data["pn"] = rng.choice(names)
    g = Gen(rng, data, names, opts, with_pb)
    nodes = g.nodes(root, 0)
    if rng.random() < 0.06:
        nodes.insert(rng.randint(0, len(nodes)), Tag(rng.choice(INVALID)))
    case = {"template": nodes, "partials": partials, "options": opts}
    r = rng.random()
    if r < 0.03:
        pass  # data absent: undefined
    elif r < 0.05:
        case["data"] = rng.choice([None, [], "str", 5, True])
    else:
        case["data"] = data
    if root.runtime:
        case["runtimeData"] = dict(root.runtime)
    return case


def to_json(case):
    """The oracle protocol object for a case."""
    out = {"template": render_nodes(case["template"])}
    if "data" in case:
        out["data"] = case["data"]
    if case.get("partials"):
        out["partials"] = {k: render_nodes(v) for k, v in case["partials"].items()}
    if case.get("options"):
        out["options"] = case["options"]
    if "runtimeData" in case:
        out["runtimeData"] = case["runtimeData"]
    return out


def case_for(seed, i):
    return generate_case(random.Random("%s:%d" % (seed, i)))


if __name__ == "__main__":
    import sys
    seed = sys.argv[1] if len(sys.argv) > 1 else "1"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    for i in range(n):
        print(json.dumps(to_json(case_for(seed, i)), ensure_ascii=False))
