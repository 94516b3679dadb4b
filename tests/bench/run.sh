#!/usr/bin/env bash
# Builds pipe and the floor and runs the benchmark (a script, not a test).
#   tests/bench/run.sh [--lines N] [--repeat N]
# PIPE_BENCH_PROFILE=dist benchmarks the shipped (fat LTO) build instead of `release`.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pipe/target}"
profile="${PIPE_BENCH_PROFILE:-release}"
cargo build --profile "$profile" --locked --bin pipe
cargo build --release --manifest-path tests/bench/floor/Cargo.toml
exec python3 tests/bench/bench.py --pipe "$CARGO_TARGET_DIR/$profile/pipe" --floor "$CARGO_TARGET_DIR/release/pipe-bench-floor" "$@"
