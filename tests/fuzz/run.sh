#!/usr/bin/env bash
# Fuzzes the decoders that take outside bytes, with libFuzzer through cargo-fuzz:
#   tests/fuzz/run.sh SECONDS [TARGET…]     (every target in fuzz_targets/ when none named)
# Each target runs SECONDS from its committed corpus (corpus/<TARGET>/) with a per-input
# timeout (a slower input is a hang) and a memory cap; afterwards the inputs that found
# new code are merged back into the corpus, minimised (libFuzzer -set_cover_merge=1, at most 200 files; files not
# named by their SHA-1, i.e. hand-written seeds and regression inputs, are always kept).
# A crash or hang stops that target and is left in artifacts/<TARGET>/; the script
# then exits 1. Prints per target: seconds, executions, exec/s, corpus files, crashes.
#
# Stable toolchain: cargo-fuzz needs nightly only for sanitizers; `--sanitizer none`
# builds with stable rustc flags (coverage instrumentation, debug assertions and
# overflow checks on). pipe has no `unsafe`, so AddressSanitizer would add little.
# The build recompiles every dependency instrumented (about 30 minutes, cold) into
# $PIPE_FUZZ_TARGET_DIR (default ~/.cache/pipe/target-fuzz). Run it under `nice`.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")"
seconds="${1:?usage: tests/fuzz/run.sh SECONDS [TARGET…]}"
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
target_dir="${PIPE_FUZZ_TARGET_DIR:-$HOME/.cache/pipe/target-fuzz}"
timeout_secs="${PIPE_FUZZ_TIMEOUT:-5}"
rss_mb="${PIPE_FUZZ_RSS_MB:-2048}"
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2
build=(cargo fuzz build --fuzz-dir . -O -a --sanitizer none --codegen-units 16 --target-dir "$target_dir")
for t in "${targets[@]}"; do "${build[@]}" "$t"; done
triple="$(rustc -vV | sed -n 's/^host: //p')"
failed=0
summary=()
for t in "${targets[@]}"; do
  bin="$target_dir/$triple/release/$t"
  mkdir -p "corpus/$t" "artifacts/$t"
  work="$(mktemp -d)"
  log="$work/log"
  found="$work/found"
  mkdir -p "$found"
  before="$(find "artifacts/$t" -type f | wc -l)"
  rc=0
  "$bin" "$found" "corpus/$t" -max_total_time="$seconds" -timeout="$timeout_secs" \
    -rss_limit_mb="$rss_mb" -print_final_stats=1 -artifact_prefix="artifacts/$t/" 2>"$log" || rc=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  took="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)"
  crashes=$(( $(find "artifacts/$t" -type f | wc -l) - before ))
  # Minimise: keep named files, re-merge the SHA-1-named ones with what this run found.
  merged="$work/merged"
  old="$work/old"
  mkdir -p "$merged" "$old"
  for f in "corpus/$t"/*; do
    if [[ "$(basename "$f")" =~ ^[0-9a-f]{40}$ ]]; then mv "$f" "$old/"; else cp "$f" "$merged/"; fi
  done
  "$bin" -set_cover_merge=1 -timeout="$timeout_secs" -rss_limit_mb="$rss_mb" "$merged" "$old" "$found" \
    2>>"$log.merge" >/dev/null || { echo "merge failed for $t, corpus left as it was" >&2; mv "$old"/* "corpus/$t/" 2>/dev/null || true; }
  # Past 200 files, the largest found inputs go (the committed corpus stays small).
  excess=$(( $(find "$merged" -type f | wc -l) - 200 ))
  if [ "$excess" -gt 0 ]; then
    ls -S "$merged" | grep -E '^[0-9a-f]{40}$' | head -n "$excess" | while read -r f; do rm "$merged/$f"; done
  fi
  for f in "$merged"/*; do
    [ -e "corpus/$t/$(basename "$f")" ] || cp "$f" "corpus/$t/"
  done
  files="$(find "corpus/$t" -type f | wc -l)"
  bytes="$(du -sb "corpus/$t" | cut -f1)"
  if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    failed=1
    echo "== $t: FAILED (exit $rc); last lines of its log:" >&2
    tail -30 "$log" >&2
    ls -l "artifacts/$t" >&2
  fi
  summary+=("$(printf '%-16s %6ss %12s execs %8s exec/s %5s corpus files (%s bytes) %3s crashes/hangs' \
    "$t" "${took:-?}" "${runs:-?}" "$(( ${runs:-0} / ( ${took:-1} > 0 ? ${took:-1} : 1 ) ))" "$files" "$bytes" "$crashes")")
  [ "$files" -le 200 ] && [ "$bytes" -le 1048576 ] || echo "warning: corpus/$t is past 200 files or 1 MB" >&2
  rm -rf "$work"
done
printf '%s\n' "${summary[@]}"
exit "$failed"
