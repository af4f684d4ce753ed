"""Real TCP traffic between lab hosts, stdlib only (it runs inside lab hosts with /usr/bin/python3).

    traffic.py serve PORT [PORT...]                 echo server: one line in, the same line out;
                                                    "peer" is answered with the client's address as
                                                    the server sees it; "bye" makes the server close first
    traffic.py connect HOST PORT N [--server-closes]  N short connections; prints {"ok", "failed",
                                                    "seen_as": [the addresses the server saw]}
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
            if line.strip() == b"peer":
                self.wfile.write(self.client_address[0].encode() + b"\n")
                continue
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
    """``count`` connections, one after the other. Each asks the server who it sees (the NAT's
    address, if any), then either closes first or, with ``server_closes``, lets the server close
    first: the two patterns leave the TIME_WAIT (and its ownerless last ACK) on opposite sides."""
    ok = failed = 0
    seen: set[str] = set()
    for _ in range(count):
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                reader = sock.makefile("rb")
                sock.sendall(b"peer\n")
                peer = reader.readline().strip().decode()
                if server_closes:
                    sock.sendall(b"bye\n")
                    reader.readline()
                    sock.recv(1)  # wait for the server's FIN
                if peer:
                    seen.add(peer)
                    ok += 1
                else:
                    failed += 1
        except OSError:
            failed += 1
    return {"ok": ok, "failed": failed, "seen_as": sorted(seen)}


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
