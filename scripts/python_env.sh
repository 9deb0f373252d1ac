# Sourced by the shell recipes: `python` is this checkout's virtual environment (.venv, made by
# scripts/setup.sh) unless another environment is active, so the recipes run without activating it first;
# where there is no `python` command at all (stock Debian/Ubuntu), it is python3.
_checkout="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$_checkout/.venv/bin/python" ]; then
    export PATH="$_checkout/.venv/bin:$PATH"
fi
unset _checkout
if ! command -v python >/dev/null 2>&1; then
    if ! command -v python3 >/dev/null 2>&1; then
        echo "$(basename "$0"): no python here: run 'bash scripts/setup.sh' first" >&2
        exit 1
    fi
    python() { python3 "$@"; }
fi
