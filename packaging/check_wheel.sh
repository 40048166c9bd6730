#!/usr/bin/env bash
# Build llmlb's wheel, install it in a fresh venv (as `pipx install .` does) and check that the
# installed `llmlb` runs: --version, then --self-test (the balancer, llama.cpp, the window).
#
# Run from the repo root: `bash packaging/check_wheel.sh` (CI runs it after `make test`).
# llama-cpp-python comes from the wheel the dev venv was built with (packaging/llama_build.py
# keeps it in ~/.cache/llmlb/wheels/), so nothing is compiled again; the other dependencies come
# from PyPI (or pip's cache). The wheel is left in dist/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PYTHON" ]] || { echo "check_wheel: $PYTHON not found; run: make test" >&2; exit 1; }

start=$(date +%s)
rm -f dist/llmlb-*.whl
"$PYTHON" -m pip wheel --no-deps --quiet . -w dist/
wheel="$(ls dist/llmlb-*.whl)"
echo "== $wheel ($(du -h "$wheel" | cut -f1))"

# The llama-cpp-python wheel the dev venv has installed (built once, for this machine).
llama_wheels="$("$PYTHON" - <<'PY'
import os, platform, sys
sys.path.insert(0, "packaging")
import llama_build as b
key = b.installed_key()
print(b.cache_dir() / "wheels" / key if key else b.build_wheel(b.detect(dict(os.environ), platform.system(), platform.machine())).parent)
PY
)"
echo "llama-cpp-python from: $llama_wheels"

venv="$(mktemp -d "${TMPDIR:-/tmp}/llmlb-wheel-check.XXXXXX")"
trap 'rm -rf "$venv"' EXIT
"$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --find-links "$llama_wheels" "$wheel"

# Run from elsewhere, so the checkout's app/ cannot be what is imported.
cd "$venv"
echo "== llmlb --version"
version_out="$("$venv/bin/llmlb" --version)"
echo "$version_out"
[[ "$version_out" == llmlb\ * ]] || { echo "check_wheel: unexpected --version output" >&2; exit 1; }
echo "== llmlb --self-test"
set +e
out="$(QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}" timeout 120 "$venv/bin/llmlb" --self-test 2>&1)"
rc=$?
set -e
echo "$out"
if [[ $rc -ne 0 ]] || ! grep -qx 'ok' <<<"$out"; then
    echo "check_wheel: the installed llmlb failed its self-test (exit $rc)" >&2
    exit 1
fi
grep -q "app/_data\|site-packages" <<<"$("$venv/bin/python" -c 'from app.core.paths import resource_root; print(resource_root())')" \
    || { echo "check_wheel: the installed app reads its data from the checkout" >&2; exit 1; }
echo "wheel check: $(( $(date +%s) - start )) s"
