#!/usr/bin/env bash
# Builds pipe and the floor in release mode and runs the benchmark (not a test).
#   tests/bench/run.sh [--lines N]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pipe/target}"
cargo build --release --locked --bin pipe
cargo build --release --manifest-path tests/bench/floor/Cargo.toml
exec python3 tests/bench/bench.py "$@"
