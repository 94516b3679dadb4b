#!/usr/bin/env python3
"""The archive's benchmark, in one run.

(a) write: the LINES-line input (~1 KB JSON each) on stdin → parse_json → the
    `object_store` sink, Parquet/zstd on local disk; against DuckDB converting the same
    file to one zstd Parquet file (read_json → COPY). Events/s, CPU seconds per GB of
    input, bytes on disk per event against the raw JSON.
(b) query: an archive of at least --query-rows rows (the input written again until
    it has them; kept under --work between runs), a GROUP BY in `pipe query` against
    DuckDB's read_parquet(hive_partitioning) over the same files; the answers must
    agree. The target is pipe ≤ 1.5× DuckDB's wall time.

Each is the best of --repeat runs. DuckDB comes from ~/.cache/pipe/bench-venv.

Usage: tests/bench/archive.py [--lines N] [--query-rows N] [--repeat N] --pipe PATH --floor PATH
"""
import argparse, glob, os, shutil, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import generated_input, run_measured
from sql import venv_python

TOPOLOGY = """
data_dir = "{work}/data"
[sources.in]
type = "stdin"
[transforms.parse]
type = "remap"
inputs = ["in"]
source = '''
. = parse_json!(.message)
.timestamp = parse_timestamp!(del(.ts), "%+")
'''
[sinks.archive]
type = "object_store"
inputs = ["parse"]
url = "{archive}"
"""

DUCK_WRITE = """
import duckdb, sys
duckdb.sql(f"COPY (SELECT * FROM read_json('{sys.argv[1]}', format='newline_delimited')) TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION zstd)")
"""

QUERY = "SELECT service, level, count(*) AS n, sum(latency_ms) AS total FROM logs GROUP BY service, level ORDER BY service, level"

DUCK_QUERY = """
import duckdb, sys
con = duckdb.connect()
con.execute(f"CREATE VIEW logs AS SELECT * FROM read_parquet('{sys.argv[1]}/**/*.parquet', hive_partitioning=true)")
for r in con.execute(sys.argv[2]).fetchall(): print(",".join(str(v) for v in r))
"""

def write_archive(pipe, work, archive, inputs):
    """Runs the archive topology over the concatenated inputs; returns (cpu, wall)."""
    topo = os.path.join(work, "archive.toml")
    with open(topo, "w") as f:
        f.write(TOPOLOGY.format(work=work, archive=archive))
    cat = subprocess.Popen(["cat"] + inputs, stdout=subprocess.PIPE)
    start = time.monotonic()
    proc = subprocess.Popen([pipe, "-q", "-t", topo], stdin=cat.stdout, stdout=subprocess.DEVNULL)
    cat.stdout.close()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    cat.wait()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"pipe failed with {status}")
    return ru.ru_utime + ru.ru_stime, wall

def size_of(path):
    return sum(os.path.getsize(f) for f in glob.glob(f"{path}/**/*", recursive=True) if os.path.isfile(f))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--query-rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pipe", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "pipe-bench"))
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    src = generated_input(args.floor, args.work, args.lines)
    py = venv_python()
    work = os.path.join(args.work, "archive")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    raw = os.path.getsize(src)
    gb = raw / 1e9
    print(f"(a) write: {args.lines:,} lines, {gb:.2f} GB of JSON, best of {args.repeat}")
    best = {}
    def keep(name, cpu, wall):
        best[name] = min(best.get(name, (float("inf"), 0)), (cpu, wall))
    script = os.path.join(work, "duck_write.py")
    with open(script, "w") as f:
        f.write(DUCK_WRITE)
    archive = os.path.join(work, "out")
    for _ in range(args.repeat):
        shutil.rmtree(archive, ignore_errors=True)
        shutil.rmtree(os.path.join(work, "data"), ignore_errors=True)
        keep("pipe → parquet archive", *write_archive(args.pipe, work, archive, [src]))
        duck_file = os.path.join(work, "duck.parquet")
        wall, cpu, _, _ = run_measured([py, script, src, duck_file])
        keep("duckdb json → parquet", cpu, wall)
    ours, theirs = size_of(archive), os.path.getsize(duck_file)
    for name, (cpu, wall) in best.items():
        print(f"  {name:<24} {args.lines/wall:>10,.0f} ev/s {cpu/gb:>7.2f} CPU-s/GB {cpu:>7.2f} CPU-s {wall:>7.2f} s")
    print(f"  bytes per event: raw JSON {raw/args.lines:.0f}, pipe Parquet {ours/args.lines:.1f} "
          f"({raw/ours:.1f}x smaller), DuckDB Parquet {theirs/args.lines:.1f}")
    r = lambda a, b: f"wall {best[a][1]/best[b][1]:.2f}, CPU-s {best[a][0]/best[b][0]:.2f}"
    print(f"  pipe/duckdb: {r('pipe → parquet archive', 'duckdb json → parquet')}")

    # (b) A big archive, kept between runs.
    copies = -(-args.query_rows // args.lines)
    big = os.path.join(args.work, f"archive-{copies * args.lines}")
    if not os.path.exists(os.path.join(big, ".complete")):
        shutil.rmtree(big, ignore_errors=True)
        print(f"(b) writing an archive of {copies * args.lines:,} rows (kept in {big})")
        os.makedirs(big)
        write_archive(args.pipe, work, os.path.join(big, "logs"), [src] * copies)
        open(os.path.join(big, ".complete"), "w").close()
    logs = os.path.join(big, "logs")
    files = glob.glob(f"{logs}/**/*.parquet", recursive=True)
    print(f"(b) query: {copies * args.lines:,} rows in {len(files)} files, {size_of(logs)/1e9:.2f} GB; best of {args.repeat}")
    qscript = os.path.join(work, "duck_query.py")
    with open(qscript, "w") as f:
        f.write(DUCK_QUERY)
    best = {}
    for _ in range(args.repeat):
        wall, cpu, _, pipe_out = run_measured([args.pipe, "query", "--format", "csv", "--archive", logs, QUERY])
        keep("pipe query", cpu, wall)
        wall, cpu, _, duck_out = run_measured([py, qscript, logs, QUERY])
        keep("duckdb", cpu, wall)
    for name, (cpu, wall) in best.items():
        print(f"  {name:<12} {wall:>7.2f} s {cpu:>7.2f} CPU-s")
    print(f"  pipe query/duckdb: {r('pipe query', 'duckdb')} (target: wall ≤ 1.5)")
    ours = pipe_out.strip().splitlines()[1:]
    theirs = duck_out.strip().splitlines()
    print(f"  answers equal: {ours == theirs} ({len(ours)} groups)")
    if ours != theirs:
        print("pipe:", ours[:3], "duckdb:", theirs[:3])
        sys.exit(1)

if __name__ == "__main__":
    main()
