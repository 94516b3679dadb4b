#!/usr/bin/env bash
# Builds pipe and the floor and runs a benchmark (a script, not a test).
#   tests/bench/run.sh [--lines N] [--repeat N]          file → remap → blackhole vs a floor
#   tests/bench/run.sh stdin [--lines N] [--repeat N]    stdin → parse_json and stdin decoding = "json" vs the floor
#   tests/bench/run.sh kafka [--lines N] [--repeat N]    file → kafka and kafka → blackhole vs kcat
#   tests/bench/run.sh sql [--lines N] [--repeat N]      sql vs remap, sql windows vs DuckDB
#   tests/bench/run.sh archive [--lines N] [--query-rows N] [--repeat N]
#                                                         Parquet archive writes, pipe query vs DuckDB
#   tests/bench/run.sh api [--lines N] [--repeat N] [--sample N]
#                                                         the API's cost: --api off vs on, Prometheus scraping
#   tests/bench/run.sh bigquery [--lines N] [--repeat N]  Storage Write streaming vs the Parquet archive
#   tests/bench/run.sh http [--seconds N] [--per-request N]   http → remap → file vs a bare axum handler, wrk at c=1/8/64
#   tests/bench/run.sh buffer [--seconds N] [--clients N] [--repeat N]
#                                                         http → blackhole: disk buffer vs memory buffer
# PIPE_BENCH_PROFILE=dist benchmarks the shipped (fat LTO) build instead of `release`.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pipe/target}"
profile="${PIPE_BENCH_PROFILE:-release}"
cargo build --profile "$profile" --locked --bin pipe
cargo build --release --manifest-path tests/bench/floor/Cargo.toml
if [ "${1:-}" = kafka ] || [ "${1:-}" = http ] || [ "${1:-}" = sql ] || [ "${1:-}" = archive ] || [ "${1:-}" = api ] || [ "${1:-}" = bigquery ] || [ "${1:-}" = buffer ]; then
  script="tests/bench/$1.py"
  shift
  exec python3 "$script" --pipe "$CARGO_TARGET_DIR/$profile/pipe" --floor "$CARGO_TARGET_DIR/release/pipe-bench-floor" "$@"
fi
exec python3 tests/bench/bench.py --pipe "$CARGO_TARGET_DIR/$profile/pipe" --floor "$CARGO_TARGET_DIR/release/pipe-bench-floor" "$@"
