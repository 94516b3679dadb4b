#!/usr/bin/env bash
# The test command: installs what the tests talk to, then runs every test.
#   tests/run.sh [cargo test arguments, e.g. --test kafka]
# Needs: kcat (an independent Kafka client) and OpenSSL headers (librdkafka's TLS),
# installed with apt-get when missing. The Kafka broker is pipe's own `kafka-mock`,
# started by the tests; PIPE_TEST_KAFKA_BOOTSTRAP=host:port uses a real cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pipe/target}"
missing=()
command -v kcat >/dev/null || missing+=(kcat)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev pkg-config)
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
exec cargo test --release --locked "$@"
