"""Generic netlink over a raw socket: attributes, a family's id, dumps, and requests in batches.

Why not pyroute2 (which has an IPVS class): its synchronous calls each run an asyncio loop and
block several times per request (measured for routes in issue 10: 0.1-0.27 s of wall time for
4 ms of CPU on a busy node), its ``update`` command maps to a delete, and a table of 10,000 real
servers is 10,000 requests. Here many requests go out in one ``send`` and their
acknowledgements come back together: one wait per window, not per request.

Stdlib only; the message layouts are the kernel's (linux/netlink.h, linux/genetlink.h).
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import struct
from collections.abc import Iterator

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x2, 0x4, 0x300
GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 0x10, 3, 1, 2
NETLINK_GENERIC = 16  # not in Python's socket module
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
# Requests per datagram (about 100 bytes each: well inside the default 208 KiB send buffer). Only
# the last of a window asks for an acknowledgement; a refused request is answered anyway.
WINDOW = 256
# The kernel never sends a netlink datagram over 32 KiB (net/netlink/af_netlink.c, netlink_dump).
RECV_SIZE = 1 << 16
_SEQ = itertools.count(1)


class GenlError(OSError):
    """The kernel refused a request: ``errno`` is its answer, the message says which request."""


def attr(kind: int, data: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(data), kind) + data + b"\0" * (-len(data) % 4)


def u16(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=H", value))


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def be16(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("!H", value))


def string(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


_ATTR_HEADER = struct.Struct("=HH").unpack_from  # compiled once: a big IPVS read parses ~10,000 headers


def parse_attrs(data: bytes) -> dict[int, bytes]:
    """type -> payload of the attributes in ``data`` (the last one wins when a type repeats)."""
    out, offset, end = {}, 0, len(data) - 4
    while offset <= end:
        length, kind = _ATTR_HEADER(data, offset)
        if length < 4:
            break
        out[kind & NLA_TYPE_MASK] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return out


def get_u16(data: bytes) -> int:
    return struct.unpack("=H", data[:2])[0]


def get_u32(data: bytes) -> int:
    return struct.unpack("=I", data[:4])[0]


def get_be16(data: bytes) -> int:
    return struct.unpack("!H", data[:2])[0]


def message(family: int, cmd: int, payload: bytes, flags: int, seq: int, version: int = 1) -> bytes:
    body = struct.pack("=BBH", cmd, version, 0) + payload
    return struct.pack("=IHHII", 16 + len(body), family, flags, seq, 0) + body


def split(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, seq, payload) of each netlink message in one datagram."""
    offset = 0
    while offset + 16 <= len(data):
        length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", data, offset)
        if length < 16:
            return
        yield kind, flags, seq, data[offset + 16:offset + length]
        offset += (length + 3) & ~3


def _error_of(payload: bytes) -> int:
    return -struct.unpack_from("=i", payload)[0]


class GenlSocket:
    """One generic netlink family, in this process's network namespace."""

    def __init__(self, name: str, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.sock.settimeout(timeout)
        self.sock.bind((0, 0))
        try:
            self.family = self._family_id(name)
        except OSError:
            self.sock.close()
            raise

    def close(self) -> None:
        self.sock.close()

    def _family_id(self, name: str) -> int:
        seq = next(_SEQ) & 0xFFFFFFFF
        self.sock.send(message(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, string(CTRL_ATTR_FAMILY_NAME, name),
                               NLM_F_REQUEST, seq))
        for kind, _flags, got, payload in self._replies():
            if got != seq:
                continue
            if kind == NLMSG_ERROR:
                code = _error_of(payload)
                raise GenlError(code, f"generic netlink family {name}: {os.strerror(code)}"
                                + (" (is its kernel module loaded?)" if code == errno.ENOENT else ""))
            return get_u16(parse_attrs(payload[4:])[CTRL_ATTR_FAMILY_ID])
        raise GenlError(errno.EIO, f"generic netlink family {name}: no answer")

    def _replies(self) -> Iterator[tuple[int, int, int, bytes]]:
        yield from split(self.sock.recv(RECV_SIZE))

    def dump(self, cmd: int, payload: bytes = b"") -> list[bytes]:
        """The attributes (after the genl header) of every message a dump request returns."""
        seq = next(_SEQ) & 0xFFFFFFFF
        self.sock.send(message(self.family, cmd, payload, NLM_F_REQUEST | NLM_F_DUMP, seq))
        out = []
        while True:
            for kind, _flags, got, body in self._replies():
                if got != seq:
                    continue
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    code = _error_of(body)
                    raise GenlError(code, f"dump (command {cmd}): {os.strerror(code)}")
                out.append(body[4:])

    def batch(self, requests: list[tuple[int, bytes]]) -> list[int]:
        """Send ``(cmd, payload)`` requests in order, ``WINDOW`` per datagram; per request, 0 when
        the kernel did it, else its errno. A refused request does not stop the ones after it.

        The kernel handles a datagram's requests before ``send`` returns (generic netlink runs
        in the sender's context), queueing an error answer for each refused one; only the
        window's last request asks for an acknowledgement, which comes after those. One
        ``recv`` per window instead of one per request: in a TCG director, 1,100 requests took
        0.5 s of ``recv`` with an acknowledgement each. If so many are refused that their
        answers overflow the receive buffer, the lost ones read as done (ENOBUFS): callers read
        the kernel back after applying, and what differs still is reported there."""
        results = [0] * len(requests)
        for start in range(0, len(requests), WINDOW):
            indexes = range(start, min(start + WINDOW, len(requests)))
            seqs = {next(_SEQ) & 0xFFFFFFFF: i for i in indexes}
            last = max(seqs, key=seqs.get)
            datagram = b"".join(
                message(self.family, requests[i][0], requests[i][1],
                        NLM_F_REQUEST | (NLM_F_ACK if seq == last else 0), seq)
                for seq, i in seqs.items())
            self.sock.send(datagram)
            self._collect(seqs, last, results)
        return results

    def _collect(self, seqs: dict[int, int], last: int, results: list[int]) -> None:
        """Errors of this window's requests until the acknowledgement of its last one."""
        while True:
            try:
                replies = list(self._replies())
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                continue  # some error answers were lost; the acknowledgement still comes
            for kind, _flags, seq, body in replies:
                if kind == NLMSG_ERROR and seq in seqs:
                    results[seqs[seq]] = _error_of(body)
                    if seq == last:
                        return
