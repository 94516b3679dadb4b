#!/usr/bin/env python3
"""pipe's Kafka benchmark, against kcat on the same data in the same run.

1. produce: file -> kafka (lz4, acks=all, idempotent) with pipe, until the file
   source's checkpoint says every line is acknowledged by the broker; against
   `kcat -P -z lz4 -l FILE` with the same producer settings, until it exits (it waits
   for every delivery report).
2. consume: kafka -> blackhole with pipe (a new consumer group from the earliest
   offset), until the blackhole has counted every record; against kcat as a member
   of a new consumer group (`kcat -G`, -e) to /dev/null, until it reaches the end of
   every partition. Both include joining the group (about 3 s on the mock).

The broker is `pipe kafka-mock` (librdkafka's in-memory mock cluster, on the same two
cores) unless PIPE_BENCH_KAFKA_BOOTSTRAP names a real one. Both clients talk to the
same broker, so the ratios compare the clients; the absolute rates include the mock.

Usage: tests/bench/kafka.py [--lines N] [--repeat N] [--pipe PATH] [--floor PATH]
"""
import argparse, os, re, shutil, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import generated_input, run_measured, pipe_until_done

PRODUCE = """
data_dir = "{work}/data"
[sources.in]
type = "file"
include = ["{work}/input/*.log"]
[sinks.out]
type = "kafka"
inputs = ["in"]
bootstrap_servers = "{bootstrap}"
topic = "{topic}"
encoding = "text"
"""

CONSUME = """
data_dir = "{work}/data"
[sources.in]
type = "kafka"
bootstrap_servers = "{bootstrap}"
group_id = "{group}"
topics = ["{topic}"]
decoding = "text"
metadata_key = ""
[sinks.out]
type = "blackhole"
inputs = ["in"]
print_interval_ms = 50
"""

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pipe", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "pipe-bench-kafka"))
    args = ap.parse_args()
    if not shutil.which("kcat"):
        sys.exit("kcat is needed (apt-get install kcat)")
    os.makedirs(args.work, exist_ok=True)
    src = generated_input(args.floor, args.work, args.lines)
    nbytes = os.path.getsize(src)

    mock = None
    bootstrap = os.environ.get("PIPE_BENCH_KAFKA_BOOTSTRAP")
    if not bootstrap:
        mock = subprocess.Popen([args.pipe, "kafka-mock"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        bootstrap = mock.stdout.readline().strip()
    # The mock keeps 5 MB of batches per partition: enough partitions for every run.
    partitions = max(8, nbytes * 2 // (5 << 20) + 1)
    def new_topic(name):
        if mock:
            mock.stdin.write(f"create {name} {partitions}\n")
            mock.stdin.flush()
            assert mock.stdout.readline().strip() == "ok"
        return name
    print(f"input: {args.lines:,} lines, {nbytes/1e6:.0f} MB, broker {'mock' if mock else bootstrap}, best of {args.repeat}")
    results = {k: [] for k in ("kcat-P", "pipe-P", "kcat-C", "pipe-C")}
    stamp = int(time.time())
    producer = ["-X", "acks=all", "-X", "enable.idempotence=true", "-X", "linger.ms=5", "-z", "lz4"]
    try:
        for i in range(args.repeat):
            topic = new_topic(f"bench-kcat-{stamp}-{i}")
            wall, cpu, rss, _ = run_measured(["kcat", "-P", "-b", bootstrap, "-t", topic, *producer, "-l", src])
            results["kcat-P"].append((cpu, wall, rss))
            wall, cpu, rss, _ = run_measured(["kcat", "-b", bootstrap, "-G", f"kcat-{stamp}-{i}", "-X", "auto.offset.reset=earliest",
                                              "-e", "-q", "-f", "%s\n", topic])
            results["kcat-C"].append((cpu, wall, rss))

            topic = new_topic(f"bench-pipe-{stamp}-{i}")
            work = os.path.join(args.work, "run")
            shutil.rmtree(work, ignore_errors=True)
            os.makedirs(os.path.join(work, "input"))
            os.link(src, os.path.join(work, "input", "bench.log"))
            topo = os.path.join(work, "produce.toml")
            with open(topo, "w") as f:
                f.write(PRODUCE.format(work=work, bootstrap=bootstrap, topic=topic))
            wall, cpu, rss, _ = run_measured([args.pipe, "-q", "-t", topo], until=pipe_until_done(args, os.path.join(work, "data"), nbytes))
            results["pipe-P"].append((cpu, wall, rss))

            topo = os.path.join(work, "consume.toml")
            with open(topo, "w") as f:
                f.write(CONSUME.format(work=work, bootstrap=bootstrap, topic=topic, group=f"bench-{stamp}-{i}"))
            log = os.path.join(work, "consume.log")
            def consumed():
                try:
                    with open(log) as f:
                        counts = [int(m) for m in re.findall(r"events=(\d+)", f.read())]
                    return bool(counts) and max(counts) >= args.lines
                except OSError:
                    return False
            with open(log, "w") as err:
                wall, cpu, rss, _ = run_measured([args.pipe, "-t", topo], until=consumed, stderr=err)
            results["pipe-C"].append((cpu, wall, rss))
    finally:
        if mock:
            mock.kill()
    names = {"kcat-P": "kcat -P (lz4)", "pipe-P": "pipe file→kafka (lz4)", "kcat-C": "kcat -G (group)", "pipe-C": "pipe kafka→blackhole"}
    best = {k: min(v) for k, v in results.items()}
    for k in ("kcat-P", "pipe-P", "kcat-C", "pipe-C"):
        cpu, wall, _ = best[k]
        print(f"{names[k]:<24} {args.lines/wall:>10,.0f} ev/s {nbytes/1e6/wall:>8,.1f} MB/s {cpu:>6.2f} CPU-s {wall:>6.2f} s")
    for side in ("P", "C"):
        p, k = best[f"pipe-{side}"], best[f"kcat-{side}"]
        print(f"{'produce' if side == 'P' else 'consume'}: pipe/kcat wall time {p[1]/k[1]:.2f}, CPU-s {p[0]/k[0]:.2f}")

if __name__ == "__main__":
    main()
