#!/usr/bin/env python3
"""pipe's benchmark: file -> remap -> blackhole against a serde_json floor, in one run.

Generates LINES lines of ~1 KB JSON (once, cached), runs the floor and pipe on the
same file (warm page cache) and prints events/s, MB/s, CPU seconds per GB and peak
RSS for both, and the ratio of CPU seconds pipe/floor. Pipe's time is measured until
its checkpoint says every line is acknowledged by the sink; then it gets SIGTERM.

Usage: tests/bench/bench.py [--lines N] [--pipe PATH] [--floor PATH]
"""
import argparse, json, os, resource, shutil, signal, subprocess, sys, tempfile, time

def run_measured(cmd, env=None, until=None):
    """Runs cmd; returns (wall seconds until `until()` is true or exit, cpu s, peak RSS MiB, stdout)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    wall = None
    if until:
        while proc.poll() is None:
            if until():
                wall = time.monotonic() - start
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.02)
    out = proc.stdout.read()
    _, status, ru = os.wait4(proc.pid, 0)
    if wall is None:
        wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed with {status}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, out

def report(name, events, nbytes, wall, cpu, rss):
    gb = nbytes / 1e9
    print(f"{name:<22} {events/wall:>12,.0f} ev/s {nbytes/1e6/wall:>9,.1f} MB/s {cpu/gb:>8.2f} CPU-s/GB {cpu:>7.2f} CPU-s {wall:>7.2f} s {rss:>8.1f} MiB peak")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--pipe", default=None)
    ap.add_argument("--floor", default=None)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "pipe-bench"))
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(here, "..", "..", "target"))
    pipe = args.pipe or os.path.join(target, "release", "pipe")
    floor = args.floor or os.path.join(target, "release", "pipe-bench-floor")

    os.makedirs(os.path.join(args.work, "input"), exist_ok=True)
    src = os.path.join(args.work, f"lines-{args.lines}.jsonl")
    if not os.path.exists(src):
        subprocess.run([floor, "gen", str(args.lines), src + ".tmp"], check=True)
        os.rename(src + ".tmp", src)
    nbytes = os.path.getsize(src)
    subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)  # warm the page cache

    print(f"input: {args.lines:,} lines, {nbytes/1e9:.2f} GB, {os.cpu_count()} cores")
    wall, cpu_floor, rss, out = run_measured([floor, "run", src])
    report("floor (serde_json)", args.lines, nbytes, wall, cpu_floor, rss)

    # pipe: a fresh data dir and the input linked into the watched folder.
    shutil.rmtree(os.path.join(args.work, "data"), ignore_errors=True)
    link = os.path.join(args.work, "input", "bench.log")
    if os.path.lexists(link):
        os.remove(link)
    os.link(src, link)
    ckpt = os.path.join(args.work, "data", "in", "checkpoints.json")
    def done():
        try:
            with open(ckpt) as f:
                return any(e["offset"] >= nbytes for e in json.load(f)["files"])
        except (OSError, ValueError, KeyError):
            return False
    env = dict(os.environ, PIPE_BENCH_DIR=args.work)
    wall, cpu_pipe, rss, _ = run_measured([pipe, "-q", "-t", os.path.join(here, "bench.toml")], env=env, until=done)
    report("pipe file→remap→null", args.lines, nbytes, wall, cpu_pipe, rss)
    print(f"ratio CPU-s pipe/floor: {cpu_pipe/cpu_floor:.2f} (target <= 2)")

if __name__ == "__main__":
    main()
