#!/usr/bin/env python3
"""A flood of dashboard call reports: clients POSTing batches to `/_reports/<ns>` in a loop.

    python3 bench/report_flood.py --url http://127.0.0.1:4226 [--clients 4] [--seconds 10]

Each client sends batches of `--batch` records (valid `CallReport` lines with made-up crate and
client names, so the server's caps are exercised too) as fast as the server takes them, and the
script prints the records and batches per second it got through. `bench/server.sh` runs it
beside the object load generator (`FLOOD=1`) to show that a record flood does not slow object
requests. Standard library only; nothing leaves the address given.
"""

import argparse
import http.client
import json
import threading
import time
import urllib.parse


def batch(client, n, seq):
    now = int(time.time() * 1000)
    lines = []
    for i in range(n):
        miss = i % 3 == 0
        lines.append(json.dumps({
            "v": 1, "time_ms": now, "client": f"flood-{client}-{seq % 50}", "build": f"b{seq}",
            "krate": f"crate-{(seq * n + i) % 5000}", "version": "1.0.0", "kind": "lib",
            "outcome": "miss" if miss else "hit-remote", "reason": None,
            "cause": "source-file" if miss else None, "compile_ms": 1000 if miss else 0,
            "restore_ms": 0 if miss else 20, "stored_compile_ms": 0 if miss else 900,
            "bytes": 4096}))
    return ("\n".join(lines) + "\n").encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:4226")
    ap.add_argument("--namespace", default="flood")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=500, help="records per POST")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--token", help="a bearer token, if the server wants one")
    args = ap.parse_args()
    u = urllib.parse.urlsplit(args.url)
    headers = {"Content-Type": "application/x-ndjson"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    done = {"records": 0, "batches": 0, "errors": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def client(c):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        seq = 0
        while time.monotonic() < deadline:
            body = batch(c, args.batch, seq)
            seq += 1
            try:
                conn.request("POST", f"/_reports/{args.namespace}", body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                ok = r.status == 204
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            with lock:
                if ok:
                    done["records"] += args.batch
                    done["batches"] += 1
                else:
                    done["errors"] += 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - start
    print(f"# report flood: {args.clients} clients, {done['records'] / took:.0f} records/s, "
          f"{done['batches'] / took:.1f} batches/s, {done['errors']} errors")


if __name__ == "__main__":
    main()
