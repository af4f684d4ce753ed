"""Real TCP traffic between lab hosts, stdlib only (it runs inside lab hosts with /usr/bin/python3).

    traffic.py serve PORT [PORT...]                 echo server: one line in, the same line out;
                                                    "bye" makes the server close first
    traffic.py connect HOST PORT N [--server-closes]  N short connections; prints {"ok", "failed"}
    traffic.py stream HOST PORT SECONDS INTERVAL      one long connection, a line every INTERVAL;
                                                    prints {"sent", "echoed", "max_gap_s", "error"}

Bounded in count and time; used by the lab tests and benchmarks, never aimed outside the lab.
"""

from __future__ import annotations

import json
import socket
import socketserver
import sys
import threading
import time


class Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            if line.strip() == b"bye":
                self.wfile.write(b"bye\n")
                return  # the server closes first
            self.wfile.write(line)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(ports: list[int]) -> None:
    servers = [Server(("0.0.0.0", p), Echo) for p in ports]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"serving": ports}), flush=True)
    servers[0].serve_forever()


def connect(host: str, port: int, count: int, server_closes: bool, timeout: float = 2.0) -> dict:
    ok = failed = 0
    for _ in range(count):
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                sock.sendall(b"bye\n" if server_closes else b"hello\n")
                reply = sock.makefile("rb").readline()
                if server_closes:
                    sock.recv(1)  # wait for the server's FIN: the server closes first
                ok += reply in (b"bye\n", b"hello\n")
        except OSError:
            failed += 1
    return {"ok": ok, "failed": failed}


def stream(host: str, port: int, seconds: float, interval: float) -> dict:
    sent = echoed = 0
    max_gap, error = 0.0, None
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            reader = sock.makefile("rb")
            last = start = time.monotonic()
            while time.monotonic() - start < seconds:
                sock.sendall(b"%d\n" % sent)
                sent += 1
                reader.readline()
                now = time.monotonic()
                echoed += 1
                max_gap, last = max(max_gap, now - last), now
                time.sleep(max(0.0, interval - (time.monotonic() - now)))
    except OSError as exc:
        error = str(exc)
    return {"sent": sent, "echoed": echoed, "max_gap_s": round(max_gap, 4), "error": error}


def main(argv: list[str]) -> int:
    cmd, args = argv[0], argv[1:]
    if cmd == "serve":
        serve([int(p) for p in args])
    elif cmd == "connect":
        print(json.dumps(connect(args[0], int(args[1]), int(args[2]), "--server-closes" in args)))
    elif cmd == "stream":
        print(json.dumps(stream(args[0], int(args[1]), float(args[2]), float(args[3]))))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
