#!/usr/bin/env bash
# Build the one-folder bundle dist/llmlb/ with PyInstaller and check it runs.
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

start=$(date +%s)
"$PYINSTALLER" --noconfirm --clean --log-level WARN build.spec
build_seconds=$(( $(date +%s) - start ))

[[ -x "$EXE" ]] || { echo "build_bundle: $EXE was not built" >&2; exit 1; }

echo "== $EXE --version"
version_out="$("$EXE" --version)"
echo "$version_out"
[[ "$version_out" == llmlb\ * ]] || { echo "build_bundle: unexpected --version output" >&2; exit 1; }

echo "== $EXE --self-test"
set +e
limit=()
if command -v timeout >/dev/null; then limit=(timeout 120); fi  # no `timeout` on stock macOS
self_test_out="$(QT_QPA_PLATFORM=offscreen ${limit[@]+"${limit[@]}"} "$EXE" --self-test 2>&1)"
self_test_rc=$?
set -e
echo "$self_test_out"
if [[ $self_test_rc -ne 0 ]] || ! grep -qx 'ok' <<<"$self_test_out"; then
    echo "build_bundle: self-test failed (exit $self_test_rc)" >&2
    exit 1
fi

# llama.cpp's shared libraries must be in the bundle (llama_cpp loads them from llama_cpp/lib).
if ! compgen -G "$BUNDLE/_internal/llama_cpp/lib/*llama*" >/dev/null; then
    echo "build_bundle: llama.cpp shared libraries missing from $BUNDLE/_internal/llama_cpp/lib" >&2
    exit 1
fi
echo "llama.cpp libraries: $(cd "$BUNDLE/_internal/llama_cpp/lib" && echo *)"

echo "== bundle"
echo "build time: ${build_seconds} s"
echo "bundle size: $(du -sh "$BUNDLE" | cut -f1) ($BUNDLE)"
