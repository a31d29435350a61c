#!/usr/bin/env bash
# The mailbars demo: renders the four SES developer-guide example templates in examples/
# (MyTemplate, Preferences, Preferences2, Preferences3) for their recipients into one .eml file
# per recipient:  demo-out/<TemplateName>/000001.eml, 000002.eml, ...
#
# usage: scripts/demo.sh            (after a build; `make demo` does both)
# env:   MAILBARS=path/to/mailbars  (default: build/mailbars)
#        DEMO_OUT=dir               (default: demo-out)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
mailbars="${MAILBARS:-build/mailbars}"
out="${DEMO_OUT:-demo-out}"
from="mailbars demo <demo@example.com>"
templates=(MyTemplate Preferences Preferences2 Preferences3)

if [ ! -x "$mailbars" ]; then
    echo "demo: $mailbars is not built yet: run 'make demo' (or cmake -S . -B build && cmake --build build)" >&2
    exit 1
fi

# Counts the recipients (non-empty lines) of a JSON Lines file.
count_lines() { grep -c . "$1" || true; }

# The bulk command exists once `mailbars bulk --help` succeeds.
if ! "$mailbars" bulk --help >/dev/null 2>&1; then
    echo "demo: '$mailbars bulk' is not implemented yet in this build" \
        "($("$mailbars" --version 2>/dev/null || echo "mailbars"))."
    echo "demo: once it is, this demo renders the SES developer guide's example templates:"
    for t in "${templates[@]}"; do
        n="$(count_lines "examples/$t.recipients.jsonl")"
        echo "  $mailbars bulk --template examples/$t.json --data examples/$t.recipients.jsonl \\"
        echo "      --from '$from' --out $out/$t      # $n recipients -> $out/$t/000001.eml ..."
    done
    echo "demo: nothing rendered yet (this is expected until the SES layer lands)."
    exit 0
fi

mkdir -p "$out"
total=0
for t in "${templates[@]}"; do
    dir="$out/$t"
    rm -rf "$dir"
    mkdir -p "$dir"
    status="$out/$t.status.jsonl"
    if ! "$mailbars" bulk --template "examples/$t.json" --data "examples/$t.recipients.jsonl" \
        --from "$from" --out "$dir" >"$status"; then
        echo "demo: rendering $t failed; per-recipient status in $status:" >&2
        cat "$status" >&2
        exit 1
    fi
    n="$(find "$dir" -maxdepth 1 -name '*.eml' | wc -l)"
    want="$(count_lines "examples/$t.recipients.jsonl")"
    if [ "$n" -ne "$want" ]; then
        echo "demo: $t: expected $want messages in $dir, found $n" >&2
        exit 1
    fi
    total=$((total + n))
    printf 'demo: %-12s %d messages in %s/\n' "$t" "$n" "$dir"
done

first="$out/MyTemplate/000001.eml"
if [ -f "$first" ]; then
    echo
    echo "demo: the first message, $first:"
    echo "----------------------------------------------------------------------"
    tr -d '\r' <"$first"
    echo "----------------------------------------------------------------------"
fi
echo
echo "demo: $total messages written under $(cd "$out" && pwd)/ (one folder per template;"
echo "      per-recipient status lines in $out/<TemplateName>.status.jsonl)"
