#!/usr/bin/env python3
"""pipe's benchmark: file -> remap -> blackhole against a serde_json floor, in one run
(and the same with `decoding = "json"` on the file source instead of `parse_json`).
With `stdin`: stdin -> remap (parse_json) -> blackhole and stdin with `decoding =
"json"` -> remap -> blackhole against the same floor.

Generates LINES lines of ~1 KB JSON (once, cached), runs the floor and pipe on the
same file (warm page cache), alternating, REPEAT times each, and prints for the run
with the least CPU of each: events/s, MB/s, CPU seconds per GB and peak RSS, and the
ratio of CPU seconds pipe/floor. Pipe's time is measured until its checkpoint says
every line is acknowledged by the sink; then it gets SIGTERM.

CPU seconds are noisy on shared machines (the same floor run varies by 50% here), so
when valgrind is installed the script also counts user-space instructions with
callgrind on the first --sample lines, for both programs: a deterministic ratio. It
does not see cache misses, cross-core traffic or kernel time, which CPU seconds do.

Usage: tests/bench/bench.py [stdin] [--lines N] [--repeat N] [--sample N] [--pipe PATH] [--floor PATH]
"""
import argparse, json, os, re, shutil, signal, subprocess, sys, tempfile, time

def generated_input(floor, work, lines):
    """The benchmark input of `lines` JSON lines under `work`, generated once by the floor."""
    src = os.path.join(work, f"lines-{lines}.jsonl")
    if not os.path.exists(src):
        subprocess.run([floor, "gen", str(lines), src + ".tmp"], check=True)
        os.rename(src + ".tmp", src)
    return src

def run_measured(cmd, env=None, until=None, stderr=subprocess.DEVNULL, stdin=None):
    """Runs cmd; returns (wall seconds until `until()` is true or exit, cpu s, peak RSS MiB, output)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, stdin=stdin)
    wall = None
    if until:
        while proc.poll() is None:
            if until():
                wall = time.monotonic() - start
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.02)
    out = proc.stdout.read() + (proc.stderr.read() if proc.stderr else "")
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
    ap.add_argument("mode", nargs="?", default="file", choices=["file", "stdin"])
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sample", type=int, default=100_000)
    ap.add_argument("--pipe", default=None)
    ap.add_argument("--floor", default=None)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "pipe-bench"))
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(here, "..", "..", "target"))
    pipe = args.pipe or os.path.join(target, "release", "pipe")
    floor = args.floor or os.path.join(target, "release", "pipe-bench-floor")

    os.makedirs(os.path.join(args.work, "input"), exist_ok=True)
    src = generated_input(floor, args.work, args.lines)
    nbytes = os.path.getsize(src)
    subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)  # warm the page cache

    print(f"input: {args.lines:,} lines, {nbytes/1e9:.2f} GB, {os.cpu_count()} cores, best of {args.repeat}")
    if args.mode == "stdin":
        return stdin_modes(args, here, floor, pipe, src, nbytes)
    link = os.path.join(args.work, "input", "bench.log")
    done = pipe_until_done(args, os.path.join(args.work, "data"), nbytes)
    env = dict(os.environ, PIPE_BENCH_DIR=args.work)
    floors, pipes, jsons = [], [], []
    for _ in range(args.repeat):
        wall, cpu, rss, _ = run_measured([floor, "run", src])
        floors.append((cpu, wall, rss))
        for topology, runs in (("bench.toml", pipes), ("bench-json.toml", jsons)):
            # pipe: a fresh data dir and the input linked into the watched folder.
            shutil.rmtree(os.path.join(args.work, "data"), ignore_errors=True)
            if os.path.lexists(link):
                os.remove(link)
            os.link(src, link)
            wall, cpu, rss, _ = run_measured([pipe, "-q", "-t", os.path.join(here, topology)], env=env, until=done)
            runs.append((cpu, wall, rss))
    if shutil.which("valgrind"):
        count_instructions(args, here, floor, pipe, src, env)
    cpu_floor, wall, rss = min(floors)
    report("floor (serde_json)", args.lines, nbytes, wall, cpu_floor, rss)
    cpu_pipe, wall, rss = min(pipes)
    report("pipe file→remap→null", args.lines, nbytes, wall, cpu_pipe, rss)
    cpu_json, wall, rss = min(jsons)
    report("pipe file json→remap", args.lines, nbytes, wall, cpu_json, rss)
    print(f"ratio CPU-s pipe/floor: {cpu_pipe/cpu_floor:.2f}, with decoding = \"json\": {cpu_json/cpu_floor:.2f} (target <= 2); "
          f"all runs CPU-s: floor {[round(f[0], 2) for f in floors]}, pipe {[round(p[0], 2) for p in pipes]}, json {[round(p[0], 2) for p in jsons]}")

def stdin_modes(args, here, floor, pipe, src, nbytes):
    """The floor, stdin -> parse_json -> blackhole and stdin (decoding json) -> blackhole, interleaved."""
    env = dict(os.environ, PIPE_BENCH_DIR=args.work)
    runs = {"floor": [], "text": [], "json": []}
    for _ in range(args.repeat):
        wall, cpu, rss, _ = run_measured([floor, "run", src])
        runs["floor"].append((cpu, wall, rss))
        for mode in ("text", "json"):
            with open(src, "rb") as f:
                wall, cpu, rss, _ = run_measured([pipe, "-q", "-t", os.path.join(here, f"stdin-{mode}.toml")], env=env, stdin=f)
            runs[mode].append((cpu, wall, rss))
    best = {k: min(v) for k, v in runs.items()}
    report("floor (serde_json)", args.lines, nbytes, best["floor"][1], best["floor"][0], best["floor"][2])
    report("pipe stdin→parse_json", args.lines, nbytes, best["text"][1], best["text"][0], best["text"][2])
    report("pipe stdin json→remap", args.lines, nbytes, best["json"][1], best["json"][0], best["json"][2])
    for mode in ("text", "json"):
        print(f"ratio CPU-s pipe {mode}/floor: {best[mode][0]/best['floor'][0]:.2f} (target <= 2); "
              f"all runs CPU-s: {[round(r[0], 2) for r in runs[mode]]}")
    print(f"floor all runs CPU-s: {[round(r[0], 2) for r in runs['floor']]}")

def pipe_until_done(args, data_dir, nbytes):
    ckpt = os.path.join(data_dir, "in", "checkpoints.json")
    def done():
        try:
            with open(ckpt) as f:
                return any(e["offset"] >= nbytes for e in json.load(f)["files"])
        except (OSError, ValueError, KeyError):
            return False
    return done

def count_instructions(args, here, floor, pipe, src, env):
    """User-space instructions per line under callgrind, floor and pipe, on a sample."""
    work = os.path.join(args.work, "callgrind")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "input"))
    sample = os.path.join(work, "input", "bench.log")
    with open(src) as f, open(sample, "w") as out:
        for i, line in enumerate(f):
            if i >= args.sample:
                break
            out.write(line)
    size = os.path.getsize(sample)
    grind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    def collected(text):
        m = re.search(r"Collected : (\d+)", text)
        return int(m.group(1)) if m else float("nan")
    *_, out = run_measured(grind + [floor, "run", sample], stderr=subprocess.PIPE)
    floor_ins = collected(out)
    env = dict(env, PIPE_BENCH_DIR=work)
    *_, out = run_measured(grind + [pipe, "-q", "-t", os.path.join(here, "bench.toml")], env=env,
                           until=pipe_until_done(args, os.path.join(work, "data"), size), stderr=subprocess.PIPE)
    pipe_ins = collected(out)
    print(f"instructions per line (callgrind, {args.sample:,} lines): floor {floor_ins/args.sample:,.0f}, "
          f"pipe {pipe_ins/args.sample:,.0f}, ratio {pipe_ins/floor_ins:.2f}")

if __name__ == "__main__":
    main()
