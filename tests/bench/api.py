#!/usr/bin/env python3
"""The cost of the API: file -> remap -> blackhole with `--api off` against the same run
with the API on (every output has its tap, none subscribed) and a real Prometheus
scraping /metrics every second.

Reports callgrind instructions per line for both (deterministic; the issue's bound is
on <= 1.03) and CPU seconds, best of REPEAT, interleaved.

Usage: tests/bench/api.py [--lines N] [--repeat N] [--sample N] [--pipe PATH] [--floor PATH]
"""
import argparse, os, re, shutil, socket, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import generated_input, run_measured, pipe_until_done

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def prepare(work, src, lines=None):
    """A fresh data dir and input folder under `work`, holding `src` (or its first lines)."""
    shutil.rmtree(os.path.join(work, "data"), ignore_errors=True)
    os.makedirs(os.path.join(work, "input"), exist_ok=True)
    dest = os.path.join(work, "input", "bench.log")
    if os.path.lexists(dest):
        os.remove(dest)
    if lines is None:
        os.link(src, dest)
    else:
        with open(src) as f, open(dest, "w") as out:
            for i, line in enumerate(f):
                if i >= lines:
                    break
                out.write(line)
    return os.path.getsize(dest)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sample", type=int, default=100_000)
    ap.add_argument("--pipe", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "pipe-bench-api"))
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    topology = os.path.join(here, "bench.toml")
    os.makedirs(args.work, exist_ok=True)
    src = generated_input(args.floor, args.work, args.lines)
    env = dict(os.environ, PIPE_BENCH_DIR=args.work)
    port = free_port()
    modes = {"api off": ["--api", "off"], "api on": ["--api", f"127.0.0.1:{port}"]}

    if shutil.which("valgrind"):
        ins = {}
        for name, flags in modes.items():
            size = prepare(args.work, src, args.sample)
            grind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
            *_, out = run_measured(grind + [args.pipe, "-q", "-t", topology] + flags, env=env,
                                   until=pipe_until_done(args, os.path.join(args.work, "data"), size),
                                   stderr=subprocess.PIPE)
            m = re.search(r"Collected : (\d+)", out)
            ins[name] = int(m.group(1)) / args.sample if m else float("nan")
        print(f"instructions per line (callgrind, {args.sample:,} lines): api off {ins['api off']:,.0f}, "
              f"api on {ins['api on']:,.0f}, ratio on/off {ins['api on'] / ins['api off']:.3f} (bound <= 1.03)")

    prom = None
    if shutil.which("prometheus"):
        prom_dir = os.path.join(args.work, "prometheus")
        shutil.rmtree(prom_dir, ignore_errors=True)
        os.makedirs(prom_dir)
        config = os.path.join(prom_dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: pipe\n"
                    f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
        prom = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={prom_dir}/tsdb",
                                 f"--web.listen-address=127.0.0.1:{free_port()}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)
    runs = {name: [] for name in modes}
    try:
        for _ in range(args.repeat):
            for name, flags in modes.items():
                size = prepare(args.work, src)
                wall, cpu, rss, _ = run_measured([args.pipe, "-q", "-t", topology] + flags, env=env,
                                                 until=pipe_until_done(args, os.path.join(args.work, "data"), size))
                runs[name].append((cpu, wall, rss))
    finally:
        if prom:
            prom.terminate()
            prom.wait()
    scraped = "scraped every 1 s by Prometheus" if prom else "no Prometheus installed"
    for name in modes:
        cpu, wall, rss = min(runs[name])
        print(f"{name:<8} {args.lines / wall:>12,.0f} ev/s {cpu:>7.2f} CPU-s {wall:>7.2f} s {rss:>8.1f} MiB peak"
              f"  (all CPU-s {[round(r[0], 2) for r in runs[name]]})")
    print(f"ratio CPU-s api on/off: {min(runs['api on'])[0] / min(runs['api off'])[0]:.3f} ({scraped})")

if __name__ == "__main__":
    main()
