#!/usr/bin/env python3
"""The `sql` transform's benchmark, in one run.

(a) per batch: a filter + projection (`level = 'error'`, `latency_ms * 2`) written in
    `sql`, against the same logic written in `remap`; both after the same
    `parse_json` remap, stdin → blackhole.
(b) windows: a tumbling 1-minute count by service (event time `ts`) in `sql` over
    LINES events, stdin → file, against DuckDB running the equivalent GROUP BY over
    the same JSON lines (read_json + time_bucket); the counts must agree.

Each is the best of --repeat runs (CPU seconds, wall seconds). DuckDB comes from a
venv under ~/.cache/pipe/bench-venv, made on first use.

Usage: tests/bench/sql.py [--lines N] [--repeat N] --pipe PATH --floor PATH
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import generated_input, run_measured

PARSE = """
[sources.in]
type = "stdin"
[transforms.parse]
type = "remap"
inputs = ["in"]
source = '. = parse_json!(.message)'
"""

SQL_FILTER = PARSE + """
[transforms.q]
type = "sql"
inputs = ["parse"]
query = "SELECT service, latency_ms * 2 AS latency FROM input WHERE level = 'error'"
schema = { service = "string", level = "string", latency_ms = "int" }
[sinks.out]
type = "blackhole"
inputs = ["q"]
"""

REMAP_FILTER = PARSE + """
[transforms.q]
type = "remap"
inputs = ["parse"]
source = '''
if .level != "error" { abort }
. = { "service": .service, "latency": int!(.latency_ms) * 2 }
'''
[sinks.out]
type = "blackhole"
inputs = ["q"]
"""

SQL_WINDOW = PARSE + """
[transforms.q]
type = "sql"
inputs = ["parse"]
query = "SELECT service, count(*) AS n FROM input GROUP BY service"
schema = {{ service = "string", ts = "timestamp(ms)" }}
time_field = "ts"
window = {{ type = "tumbling", size = "1m" }}
[sinks.out]
type = "file"
inputs = ["q"]
path = "{out}"
"""

DUCKDB = """
import duckdb, json, sys
rows = duckdb.sql(\"\"\"
  SELECT service, time_bucket(INTERVAL '1 minute', CAST(ts AS TIMESTAMP)) AS w, count(*) AS n
  FROM read_json(?, format='newline_delimited', columns={'service': 'VARCHAR', 'ts': 'VARCHAR'})
  GROUP BY ALL
\"\"\", params=[sys.argv[1]]).fetchall()
with open(sys.argv[2], 'w') as f:
    for s, w, n in rows:
        f.write(json.dumps({"service": s, "window_start": w.strftime('%Y-%m-%dT%H:%M:%SZ'), "n": n}) + "\\n")
"""

def venv_python():
    venv = os.path.expanduser("~/.cache/pipe/bench-venv")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "duckdb"], check=True)
    return py

def run_pipe(pipe, topo_text, work, src):
    topo = os.path.join(work, "t.toml")
    with open(topo, "w") as f:
        f.write(f'data_dir = "{work}/data"\n' + topo_text)
    with open(src) as stdin:
        start = time.monotonic()
        proc = subprocess.Popen([pipe, "-q", "-t", topo], stdin=stdin, stdout=subprocess.DEVNULL)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"pipe failed with {status}")
    return ru.ru_utime + ru.ru_stime, wall

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pipe", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "pipe-bench"))
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    src = generated_input(args.floor, args.work, args.lines)
    py = venv_python()
    work = os.path.join(args.work, "sql")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    print(f"input: {args.lines:,} lines, {os.path.getsize(src)/1e9:.2f} GB, best of {args.repeat}")
    best = {}
    def keep(name, cpu, wall):
        best[name] = min(best.get(name, (float("inf"), 0)), (cpu, wall))
    out = os.path.join(work, "windows.jsonl")
    duck_out = os.path.join(work, "duckdb.jsonl")
    script = os.path.join(work, "duck.py")
    with open(script, "w") as f:
        f.write(DUCKDB)
    for _ in range(args.repeat):
        keep("remap filter+projection", *run_pipe(args.pipe, REMAP_FILTER, work, src))
        keep("sql filter+projection", *run_pipe(args.pipe, SQL_FILTER, work, src))
        if os.path.exists(out):
            os.remove(out)
        keep("sql tumbling count", *run_pipe(args.pipe, SQL_WINDOW.format(out=out), work, src))
        wall, cpu, _, _ = run_measured([py, script, src, duck_out])
        keep("duckdb group by", cpu, wall)
    for name, (cpu, wall) in best.items():
        print(f"{name:<26} {args.lines/wall:>10,.0f} ev/s {cpu:>7.2f} CPU-s {wall:>7.2f} s")
    ratio = lambda a, b: f"wall {best[a][1]/best[b][1]:.2f}, CPU-s {best[a][0]/best[b][0]:.2f}"
    print(f"sql/remap (per batch): {ratio('sql filter+projection', 'remap filter+projection')}")
    print(f"pipe sql window/duckdb: {ratio('sql tumbling count', 'duckdb group by')}")
    ours = sorted((r["service"], r["window_start"], r["n"]) for r in map(json.loads, open(out)))
    theirs = sorted((r["service"], r["window_start"], r["n"]) for r in map(json.loads, open(duck_out)))
    print(f"window counts equal to DuckDB's: {ours == theirs} ({len(ours)} rows)")
    if ours != theirs:
        sys.exit(1)

if __name__ == "__main__":
    main()
