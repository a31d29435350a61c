#!/usr/bin/env bash
# Installs what mailbars needs to build and test, and only what is missing:
#   - Debian packages (apt-get): the libraries, the build tools, and Node.js/npm for the
#     handlebars.js oracle used by the differential tests;
#   - the oracle's npm dependencies (handlebars 4.7.10) in ../shared/oracle, when that folder
#     exists beside the repository and has not been installed yet.
# Safe to run again: when everything is present it says so and changes nothing.
#
# usage: scripts/install-deps.sh [--fuzz]
#   --fuzz   also install clang and its runtime libraries (libFuzzer), for `make fuzz`
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
oracle_dir="$repo/../shared/oracle"

packages=(libjansson-dev libicu-dev libpcre2-dev pkg-config cmake gcc make python3 nodejs npm)
for arg in "$@"; do
    case "$arg" in
    --fuzz) packages+=(clang libclang-rt-dev) ;;
    -h | --help)
        sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "install-deps: unknown option '$arg'" >&2
        exit 64
        ;;
    esac
done

say() { echo "install-deps: $*"; }

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    say "not a Debian-based system (no dpkg-query/apt-get): install the equivalents of" \
        "${packages[*]} yourself; CMake names any library it cannot find"
    exit 0
fi

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        say "need root to run '$*' and sudo is not available" >&2
        exit 1
    fi
}

# Virtual package names provided by installed packages (e.g. NodeSource's nodejs provides npm
# and conflicts with Debian's npm, so installing "npm" there would break Node.js).
provided=""
refresh_provided() {
    provided="$(dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null |
        awk -F'|' '$1 ~ / installed$/ && $2 != "" { print $2 }' |
        tr ',' '\n' | sed -e 's/(.*)//' -e 's/[[:space:]]//g' | sort -u)"
}

# True when a package (or something providing it) is installed.
is_installed() {
    local status
    status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)"
    [ "$status" = "install ok installed" ] && return 0
    grep -qxF "$1" <<<"$provided"
}

# Prints the packages of the list "$@" that are not installed.
list_missing() {
    local p
    refresh_provided
    for p in "$@"; do
        is_installed "$p" || echo "$p"
    done
}

# Installs the packages given, after one apt-get update per run.
updated=0
apt_install() {
    if [ "$updated" -eq 0 ]; then
        say "running: apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        updated=1
    fi
    say "running: apt-get install -y --no-install-recommends $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

changed=0
mapfile -t missing < <(list_missing "${packages[@]}")
if [ "${#missing[@]}" -gt 0 ]; then
    say "missing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # npm last: a nodejs package installed first may already provide it.
    first=()
    for p in "${missing[@]}"; do [ "$p" = npm ] || first+=("$p"); done
    [ "${#first[@]}" -eq 0 ] || apt_install "${first[@]}"
    mapfile -t still < <(list_missing npm)
    if [ "${#still[@]}" -gt 0 ] && [[ " ${missing[*]} " == *" npm "* ]]; then
        apt_install npm
    fi
    changed=1
else
    say "all Debian packages present: ${packages[*]}"
fi

# The handlebars.js oracle (only when shared/ sits beside the repository).
if [ -d "$oracle_dir" ]; then
    oracle_dir="$(cd "$oracle_dir" && pwd)"
    if [ -f "$oracle_dir/package.json" ] && [ ! -d "$oracle_dir/node_modules/handlebars" ]; then
        say "installing the handlebars.js oracle: npm install --prefix $oracle_dir"
        npm install --prefix "$oracle_dir" --no-audit --no-fund
        changed=1
    else
        say "handlebars.js oracle present in $oracle_dir"
    fi
else
    say "no ../shared/oracle beside the repository: skipping the handlebars.js oracle" \
        "(differential tests will be skipped)"
fi

if [ "$changed" -eq 0 ]; then
    say "nothing to do: everything is installed"
else
    say "done"
fi
