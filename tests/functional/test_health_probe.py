"""The SSH probe against real sockets on loopback: a banner, a refusal, a server that accepts and
says nothing (a wedged sshd), one that says something else."""

from __future__ import annotations

import socket
import threading

import pytest

from hpc_health import probe_ssh


@pytest.fixture
def server():
    """A listening socket on 127.0.0.1 that answers each connection with ``reply`` (None: silence)."""
    socks = []

    def start(reply):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        socks.append(listener)

        def serve():
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                socks.append(conn)
                if reply is not None:
                    conn.sendall(reply)

        threading.Thread(target=serve, daemon=True).start()
        return listener.getsockname()[1]

    yield start
    for s in socks:
        s.close()


def test_an_ssh_banner_is_alive(server):
    probe = probe_ssh("127.0.0.1", server(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"))
    assert probe.ok and probe.detail.startswith("SSH-2.0-OpenSSH_9.2p1")


def test_a_refusal_is_dead(server):
    port = server(None)
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    closed_port = free.getsockname()[1]
    free.close()
    probe = probe_ssh("127.0.0.1", closed_port)
    assert not probe.ok and probe.detail == "refused" and port != closed_port


def test_a_server_that_accepts_and_says_nothing_is_dead_within_the_timeout(server):
    probe = probe_ssh("127.0.0.1", server(None), timeout=0.3)
    assert not probe.ok and probe.detail == "no banner" and 0.25 < probe.seconds < 0.6


def test_something_else_than_ssh_is_dead(server):
    probe = probe_ssh("127.0.0.1", server(b"HTTP/1.1 400 Bad Request\r\n"))
    assert not probe.ok and probe.detail.startswith("not ssh: HTTP/1.1")


def test_a_connection_that_is_not_answered_fails_within_the_connect_timeout():
    """Packets lost (a silent frontend): the SYN goes unanswered. Here a listener whose accept
    queue is full and never drained: the kernel drops further SYNs. The probe gives up after
    ``connect_timeout``, not after the whole ``timeout`` a slow sshd's banner may take."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue (and the SYN backlog of a listen(0) socket)
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        probe = probe_ssh("127.0.0.1", port, timeout=2.0, connect_timeout=0.2)
        assert not probe.ok and probe.detail == "timeout" and 0.15 < probe.seconds < 0.6, probe
    finally:
        for s in fillers + [listener]:
            s.close()
