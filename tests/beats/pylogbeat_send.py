"""Sends numbered events to a `beats` source with pylogbeat (PyPI 2.1.0, a Lumberjack
v2 client: a window frame, then the window's JSON frames in one zlib frame, then it
waits for the ACK of the window's last sequence number).

Like a Beat, it keeps every window until it is ACKed: when a send fails (the
connection refused, reset or closed before the ACK) it reconnects and sends the same
window again, for up to --retry-secs. Prints one JSON line: events sent, windows sent
again. Exits 2 when a window could not be sent in time.

  python pylogbeat_send.py --port P --total N [--start S] [--window W]
      [--pause SECS] [--retry-secs SECS] [--ca CRT] [--cert CRT --key KEY]
"""
import argparse
import json
import sys
import time

import pylogbeat


def event(n):
    return {
        "@timestamp": "2026-03-04T05:06:07.000Z",
        "@metadata": {"beat": "pylogbeat", "type": "_doc", "version": "2.1.0"},
        "message": f"line-{n:07} " + "x" * 60,
        "host": {"name": "test-host"},
        "log": {"offset": n},
        "n": n,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--total", type=int, required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--window", type=int, default=1000)
    p.add_argument("--pause", type=float, default=0.0)
    p.add_argument("--retry-secs", type=float, default=0.0)
    p.add_argument("--ca")
    p.add_argument("--cert")
    p.add_argument("--key")
    args = p.parse_args()

    def connect():
        tls = {}
        if args.ca:
            tls = dict(ssl_enable=True, ssl_verify=True, ca_certs=args.ca, certfile=args.cert, keyfile=args.key)
        client = pylogbeat.PyLogBeatClient("127.0.0.1", args.port, timeout=20, **tls)
        client.connect()
        return client

    client = None
    resent = 0
    for first in range(args.start, args.start + args.total, args.window):
        window = [event(n) for n in range(first, min(first + args.window, args.start + args.total))]
        deadline = time.monotonic() + args.retry_secs
        attempt = 0
        while True:
            try:
                if client is None:
                    client = connect()
                client.send(window)
                break
            except Exception as e:  # refused, reset, closed before the ACK, TLS refused
                if client is not None:
                    try:
                        client.close()
                    except Exception:
                        pass
                    client = None
                if time.monotonic() >= deadline:
                    print(f"window at {first} not ACKed: {e!r}", file=sys.stderr)
                    print(json.dumps({"sent": first - args.start, "resent_windows": resent}))
                    sys.exit(2)
                attempt += 1
                if attempt == 1:
                    resent += 1
                time.sleep(0.2)
        if args.pause:
            time.sleep(args.pause)
    if client is not None:
        client.close()
    print(json.dumps({"sent": args.total, "resent_windows": resent}))


main()
