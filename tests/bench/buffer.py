#!/usr/bin/env python3
"""The disk buffer's cost: http (NDJSON) -> blackhole with the default memory buffer
against the same with `buffer = { type = "disk" }`, in one run, interleaved.

CLIENTS threads post bodies of PER_REQUEST events (~200 bytes each) over keep-alive
connections for SECONDS; only 200 answers count (with a disk buffer a 200 means the
events are synced in the buffer). Reports for the best of REPEAT runs of each: events/s,
pipe's CPU seconds per million events, and syncs per second (pipe_buffer_syncs_total),
and the ratio disk/memory of events/s (the target is >= 0.5).

Usage: tests/bench/buffer.py [--seconds N] [--clients N] [--per-request N] [--repeat N] [--pipe PATH]
"""
import argparse, http.client, os, re, shutil, socket, subprocess, sys, tempfile, threading, time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run(args, work, disk):
    http_port, api_port = free_port(), free_port()
    data = os.path.join(work, "data")
    shutil.rmtree(data, ignore_errors=True)
    buffer = 'buffer = { type = "disk", max_size = 4294967296 }' if disk else ""
    topology = os.path.join(work, "buffer.toml")
    with open(topology, "w") as f:
        f.write(f"""data_dir = "{data}"
[api]
enabled = true
address = "127.0.0.1:{api_port}"
[sources.web]
type = "http"
address = "127.0.0.1:{http_port}"
decoding = "ndjson"
max_body_bytes = 16777216
max_events_per_request = 100000
[sinks.out]
type = "blackhole"
inputs = ["web"]
{buffer}
""")
    proc = subprocess.Popen([args.pipe, "--topology", topology], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("pipe did not start")
                time.sleep(0.05)
        line = '{"service":"checkout","level":"info","message":"%s","n":%d}\n'
        body = "".join(line % ("x" * 120, i) for i in range(args.per_request)).encode()
        accepted = [0] * args.clients
        stop = time.monotonic() + args.seconds

        def client(i):
            c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=30)
            while time.monotonic() < stop:
                c.request("POST", "/", body, {"Content-Type": "application/x-ndjson"})
                r = c.getresponse()
                r.read()
                if r.status == 200:
                    accepted[i] += args.per_request

        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall, cpu = time.monotonic() - t0, cpu_seconds(proc.pid) - cpu0
        syncs = metric(api_port, "pipe_buffer_syncs_total")
        events = sum(accepted)
        return {"events_per_s": events / wall, "cpu_per_million": cpu / events * 1e6, "syncs_per_s": syncs / wall}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--per-request", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pipe", required=True)
    ap.add_argument("--floor")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pipe-bench-buffer-")
    best = {}
    try:
        for _ in range(args.repeat):
            for disk in (False, True):
                r = run(args, work, disk)
                name = "disk" if disk else "memory"
                print(f"  {name:6} {r['events_per_s']:>10,.0f} events/s  {r['cpu_per_million']:.2f} CPU-s per M events  {r['syncs_per_s']:.0f} syncs/s", flush=True)
                if name not in best or r["events_per_s"] > best[name]["events_per_s"]:
                    best[name] = r
    finally:
        shutil.rmtree(work, ignore_errors=True)
    m, d = best["memory"], best["disk"]
    print(f"best memory: {m['events_per_s']:,.0f} events/s, {m['cpu_per_million']:.2f} CPU-s/M")
    print(f"best disk:   {d['events_per_s']:,.0f} events/s, {d['cpu_per_million']:.2f} CPU-s/M, {d['syncs_per_s']:.0f} syncs/s")
    print(f"disk/memory events/s: {d['events_per_s'] / m['events_per_s']:.2f} (target >= 0.50); CPU per event: {d['cpu_per_million'] / m['cpu_per_million']:.2f}")


if __name__ == "__main__":
    main()
