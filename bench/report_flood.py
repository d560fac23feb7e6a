#!/usr/bin/env python3
"""A flood of dashboard call reports: clients POSTing batches to `/_reports/<ns>` in a loop.

    python3 bench/report_flood.py --url http://127.0.0.1:4226 [--clients 4] [--seconds 10]
                                  [--ignore-429]

Each client sends batches of `--batch` records (valid `CallReport` lines with made-up crate and
client names, so the server's caps are exercised too) as fast as the server takes them, with the
headers a wrapper sends (the record count and a client name), and the script prints the records
and batches per second it got through and how many batches were refused with 429. By default a
client behaves as the wrapper does: on 429 it keeps the batch and waits for Retry-After before
sending it again; `--ignore-429` is a hostile client that sends the next batch at once.
`bench/server.sh` runs it beside the object load generator (`FLOOD=1`) to show that a record
flood does not slow object requests. Standard library only; nothing leaves the address given.
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
    ap.add_argument("--ignore-429", action="store_true",
                    help="a hostile client: send again at once instead of waiting for Retry-After")
    args = ap.parse_args()
    u = urllib.parse.urlsplit(args.url)
    done = {"records": 0, "batches": 0, "refused": 0, "errors": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def client(c):
        headers = {"Content-Type": "application/x-ndjson", "x-cachet-records": str(args.batch),
                   "x-cachet-client": f"flood-{c}"}
        if args.token:
            headers["Authorization"] = f"Bearer {args.token}"
        # Made once: the client's own CPU is not what is measured (the machine is shared).
        bodies = [batch(c, args.batch, seq) for seq in range(20)]
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        seq = 0
        while time.monotonic() < deadline:
            body = bodies[seq % len(bodies)]
            wait = 0.0
            try:
                conn.request("POST", f"/_reports/{args.namespace}", body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                status = r.status
                if status == 429 and not args.ignore_429:
                    wait = float(r.getheader("Retry-After") or 1)
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            with lock:
                if status == 204:
                    done["records"] += args.batch
                    done["batches"] += 1
                elif status == 429:
                    done["refused"] += 1
                else:
                    done["errors"] += 1
            if status == 204:
                seq += 1
            # A well-behaved client keeps the batch and waits (until the run ends at most).
            time.sleep(max(0.0, min(wait, deadline - time.monotonic())))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - start
    kind = "hostile (ignores 429)" if args.ignore_429 else "well-behaved (waits for Retry-After)"
    print(f"# report flood, {kind}: {args.clients} clients, {done['records'] / took:.0f} records/s, "
          f"{done['batches'] / took:.1f} batches/s, {done['refused']} refused (429), "
          f"{done['errors']} errors")


if __name__ == "__main__":
    main()
