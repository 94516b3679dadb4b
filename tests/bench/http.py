#!/usr/bin/env python3
"""HTTP ingest: pipe's http (NDJSON) -> remap -> file against a bare axum handler that
only reads the body (the floor's `serve`), in one run, at client concurrency 1, 8 and
64, driven by wrk (Debian's `wrk`, installed when missing).

Each request carries PER_REQUEST lines of the benchmark input (~1 KB of JSON each).
pipe answers 200 only once the file sink has written and fsynced the events. Reports
per concurrency: requests/s, events/s, p99 latency (wrk --latency) and the server's CPU
seconds per million events, for the floor and for pipe, and their ratios.

Usage: tests/bench/http.py [--seconds N] [--per-request N] [--pipe PATH] [--floor PATH]
"""
import argparse, os, re, shutil, signal, socket, subprocess, sys, tempfile, time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, secs=20):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def wrk(port, connections, seconds, script):
    out = subprocess.run(
        ["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{seconds}s",
         "--latency", "-s", script, f"http://127.0.0.1:{port}/"],
        check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, float(p99.group(1)) * scale, int(non2xx.group(1)) if non2xx else 0


def measure(cmd, port, connections, seconds, script, env=None):
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    rps, p99, refused = wrk(port, connections, seconds, script)
    proc.send_signal(signal.SIGTERM)
    _, status, ru = os.wait4(proc.pid, 0)
    return rps, p99, refused, ru.ru_utime + ru.ru_stime


TOPOLOGY = """data_dir = "{work}/data"
[sources.web]
type = "http"
address = "127.0.0.1:{port}"
decoding = "ndjson"
[transforms.shape]
type = "remap"
inputs = ["web"]
source = '''
.pipeline = "bench"
.message = del(.msg)
'''
[sinks.out]
type = "file"
inputs = ["shape"]
path = "{work}/out/events.ndjson"
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--per-request", type=int, default=100)
    ap.add_argument("--pipe", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "pipe-bench-http"))
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    src = os.path.join(tempfile.gettempdir(), "pipe-bench", "lines-2000000.jsonl")
    if not os.path.exists(src):
        os.makedirs(os.path.dirname(src), exist_ok=True)
        subprocess.run([args.floor, "gen", "2000000", src], check=True)
    with open(src) as f:
        body = "".join(next(f) for _ in range(args.per_request))
    script = os.path.join(args.work, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/x-ndjson"\n')
        f.write("wrk.body = [==[" + body + "]==]\n")
    print(f"{args.per_request} events ({len(body):,} bytes) per request, {args.seconds} s per run, {os.cpu_count()} cores")
    print(f"{'':<28}{'req/s':>10}{'events/s':>12}{'p99 ms':>10}{'CPU-s/M ev':>12}{'non-200':>9}")
    for c in (1, 8, 64):
        results = {}
        for name in ("floor", "pipe"):
            port = free_port()
            if name == "floor":
                cmd, env = [args.floor, "serve", f"127.0.0.1:{port}"], None
            else:
                shutil.rmtree(os.path.join(args.work, "data"), ignore_errors=True)
                shutil.rmtree(os.path.join(args.work, "out"), ignore_errors=True)
                topology = os.path.join(args.work, "http.toml")
                with open(topology, "w") as f:
                    f.write(TOPOLOGY.format(work=args.work, port=port))
                cmd, env = [args.pipe, "-q", "-t", topology], None
            rps, p99, refused, cpu = measure(cmd, port, c, args.seconds, script, env)
            events = rps * args.seconds * args.per_request
            results[name] = (rps, p99, cpu / (events / 1e6) if events else float("nan"))
            label = "bare axum handler" if name == "floor" else "pipe http→remap→file"
            print(f"{label + f' c={c}':<28}{rps:>10,.0f}{rps * args.per_request:>12,.0f}{p99:>10.2f}{results[name][2]:>12.2f}{refused:>9}")
        (fr, fp, fc), (pr, pp, pc) = results["floor"], results["pipe"]
        print(f"{'ratio pipe/floor c=' + str(c):<28}{pr / fr:>10.2f}{'':>12}{pp / fp:>10.2f}{pc / fc:>12.2f}")


if __name__ == "__main__":
    main()
