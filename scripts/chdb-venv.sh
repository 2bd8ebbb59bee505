#!/usr/bin/env bash
# chdb-venv.sh makes sure .tapwire/chdb-venv (git-ignored) holds chdb-core, the ClickHouse engine
# that the chdb HTTP shim (test/dialect/chdb_server.py) runs. Idempotent: when the venv already
# imports the pinned version it does nothing; otherwise it (re)creates it with `python3 -m venv`
# and pip (pip's cache makes a re-install fast). Prints the venv's python on stdout.
# Usage: scripts/chdb-venv.sh [venv-dir]   (CHDB_CORE_VERSION overrides the pin)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${CHDB_CORE_VERSION:-26.9.0}"
venv="${1:-.tapwire/chdb-venv}"
python="$venv/bin/python"
have() { "$python" -c "import chdb, sys; sys.exit(chdb.__version__ != '$version')" >/dev/null 2>&1; }
if ! have; then
  echo "chdb-venv: installing chdb-core==$version into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "chdb-core==$version" >&2
  have || { echo "chdb-venv: chdb $version does not import from $venv" >&2; exit 1; }
fi
echo "$(cd "$venv" && pwd)/bin/python"
