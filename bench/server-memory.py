#!/usr/bin/env python3
"""Peak memory (VmHWM) of `cachet server` under upload abuse, on loopback:

  slow: 200 uploads that send 1 MiB of a 2 MiB body, then one byte every 1.5 s (for 12 s)
  fast: 64 concurrent uploads of 16 MiB, three rounds

Each scenario gets a fresh server.  Usage: bench/server-memory.py [CACHET_BINARY] [EXTRA SERVER ARGS...]
"""
import os, socket, subprocess, sys, tempfile, threading, time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/cachet"
EXTRA = sys.argv[2:]


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def status(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024  # MiB
    return 0


def server(store):
    port = free_port()
    p = subprocess.Popen([BIN, "server", "--listen", f"127.0.0.1:{port}", "--storage", f"dir:{store}",
                          "--max-object-size", "64M", *EXTRA],
                         env={**os.environ, "CACHET_LOG": "warn"})
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port)).close(); break
        except OSError:
            time.sleep(0.05)
    return p, port


def slow(port, i, until, statuses):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"PUT /bench/slow{i} HTTP/1.1\r\nHost: t\r\nContent-Length: {2 << 20}\r\n\r\n".encode())
    try:
        s.sendall(b"x" * (1 << 20))
        while time.time() < until:
            time.sleep(1.5); s.sendall(b"x")
    except OSError:
        statuses.append("closed")
        return
    s.close()


def fast(port, i, statuses):
    body = os.urandom(16 << 20)
    for r in range(3):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"PUT /bench/fast{i}-{r} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
        try:
            s.sendall(body)
            statuses.append(s.recv(64).split(b" ")[1].decode())
        except OSError as e:
            statuses.append(type(e).__name__)
        s.close()


def run(name, target, n):
    with tempfile.TemporaryDirectory() as store:
        p, port = server(store)
        base = status(p.pid, "VmRSS")
        statuses = []
        until = time.time() + 12
        threads = [threading.Thread(target=target, args=(port, i, until, statuses) if target is slow else (port, i, statuses)) for i in range(n)]
        for t in threads: t.start()
        for t in threads: t.join()
        peak = status(p.pid, "VmHWM")
        p.terminate(); p.wait()
        counts = {s: statuses.count(s) for s in set(statuses)}
        print(f"{name:5} {n:3} uploads: RSS at start {base} MiB, peak {peak} MiB; answers {counts}")


run("slow", slow, 200)
run("fast", fast, 64)
