#!/usr/bin/env bash
# Build the one-folder bundle dist/llmlb/ with PyInstaller and check it runs (its self-test
# renders the window, so broken Qt plugins fail here); on Linux also check it draws Japanese
# with no Japanese font installed, then make and check the single file
# dist/llmlb-<version>-linux-<arch>.run (packaging/make_run.py).
#
# Run from the repo root: `bash packaging/build_bundle.sh`.
# Needs the dev venv: python3.11 -m venv .venv && .venv/bin/pip install -e '.[dev]'
# (PYTHON / PYINSTALLER override the tools; the defaults are the repo's .venv.)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
PYINSTALLER="${PYINSTALLER:-$ROOT/.venv/bin/pyinstaller}"
BUNDLE="dist/llmlb"
EXE="$BUNDLE/llmlb"

for tool in "$PYTHON" "$PYINSTALLER"; do
    if [[ ! -x "$tool" ]]; then
        echo "build_bundle: $tool not found; run: .venv/bin/pip install -e '.[dev]'" >&2
        exit 1
    fi
done

# The icon is committed; draw it only if a clean tree somehow lacks it.
if [[ ! -f resources/icon.png ]]; then
    QT_QPA_PLATFORM=offscreen "$PYTHON" packaging/make_icon.py
fi

# The Japanese UI's .qm, compiled from the .ts kept in the repo (build.spec ships what is there).
"$PYTHON" packaging/translations.py build

start=$(date +%s)
"$PYINSTALLER" --noconfirm --clean --log-level WARN build.spec
build_seconds=$(( $(date +%s) - start ))

[[ -x "$EXE" ]] || { echo "build_bundle: $EXE was not built" >&2; exit 1; }

echo "== $EXE --version"
version_out="$("$EXE" --version)"
echo "$version_out"
[[ "$version_out" == llmlb\ * ]] || { echo "build_bundle: unexpected --version output" >&2; exit 1; }

limit=()
if command -v timeout >/dev/null; then limit=(timeout 120); fi  # no `timeout` on stock macOS

# self_test PROGRAM [VAR=value...]: run `PROGRAM --self-test` (offscreen) and fail unless ok;
# its output is left in $self_test_out.
self_test() {
    local program="$1"; shift
    echo "== $program --self-test $*"
    set +e
    self_test_out="$(env QT_QPA_PLATFORM=offscreen "$@" ${limit[@]+"${limit[@]}"} "$program" --self-test 2>&1)"
    local rc=$?
    set -e
    echo "$self_test_out"
    if [[ $rc -ne 0 ]] || ! grep -qx 'ok' <<<"$self_test_out"; then
        echo "build_bundle: self-test of $program failed (exit $rc)" >&2
        exit 1
    fi
}
self_test "$EXE"

# llama.cpp's shared libraries must be in the bundle (llama_cpp loads them from llama_cpp/lib).
if ! compgen -G "$BUNDLE/_internal/llama_cpp/lib/*llama*" >/dev/null; then
    echo "build_bundle: llama.cpp shared libraries missing from $BUNDLE/_internal/llama_cpp/lib" >&2
    exit 1
fi
echo "llama.cpp libraries: $(cd "$BUNDLE/_internal/llama_cpp/lib" && echo *)"

if [[ "$(uname -s)" == Linux ]]; then
    for f in llmlb.desktop llmlb.png install-desktop-entry.sh; do
        [[ -f "$BUNDLE/$f" ]] || { echo "build_bundle: $BUNDLE/$f missing" >&2; exit 1; }
    done
    # A desktop with no Japanese font: fontconfig that knows one Latin font only. The bundle's
    # own font must then be the one that draws Japanese.
    fc_tmp="$(mktemp -d)"
    trap 'rm -rf "$fc_tmp"' EXIT
    mkdir "$fc_tmp/fonts"
    cp "$(fc-match -f '%{file}' 'sans-serif:lang=en')" "$fc_tmp/fonts/"
    printf '<?xml version="1.0"?><fontconfig><dir>%s</dir><cachedir>%s</cachedir></fontconfig>' \
        "$fc_tmp/fonts" "$fc_tmp/cache" >"$fc_tmp/fonts.conf"
    self_test "$EXE" FONTCONFIG_FILE="$fc_tmp/fonts.conf"
    grep -q "Japanese text: bundled font" <<<"$self_test_out" \
        || { echo "build_bundle: the bundled Japanese font was not used" >&2; exit 1; }

    echo "== single file"
    start=$(date +%s)
    run_file="$("$PYTHON" packaging/make_run.py "$BUNDLE")"
    run_seconds=$(( $(date +%s) - start ))
    # Its first start unpacks it into a cache folder: a fresh one, so this checks that too.
    run_cache="$(mktemp -d)"
    trap 'rm -rf "$fc_tmp" "$run_cache"' EXIT
    start=$(date +%s)
    run_version="$(XDG_CACHE_HOME="$run_cache" "$run_file" --version)"
    unpack_seconds=$(( $(date +%s) - start ))
    echo "$run_version"
    [[ "$run_version" == "$version_out" ]] || { echo "build_bundle: $run_file --version" >&2; exit 1; }
    self_test "$run_file" XDG_CACHE_HOME="$run_cache"
fi

echo "== bundle"
echo "build time: ${build_seconds} s"
echo "bundle size: $(du -sh "$BUNDLE" | cut -f1) ($BUNDLE)"
if [[ -n "${run_file:-}" ]]; then
    echo "single file: $(du -h "$run_file" | cut -f1) ($run_file), made in ${run_seconds} s;" \
        "its first start unpacked it in ${unpack_seconds} s"
fi
