"""The kernel side of our nftables tables: a small handle over the ``nft`` binary, and a fake.

This module owns the commands that touch one table of ours: reading it (``nft -j list table``),
replacing it whole (``nft -c -f -`` to check, then ``nft -f -``, the text on stdin) and deleting
it (``nft delete table``). Nothing outside the one table a handle is built for is ever named,
listed or flushed. What a table holds, how it is written and how its JSON is read stay with its
subsystem; an ``NftCodec`` binds them to the handle (``natrouter_codec()``, ``marking_codec()``).

``NftTable`` (the real binary, optionally in a network namespace) and ``FakeNftTable`` (a dict
standing for the ruleset) offer the same operations; one test suite runs against both.
Pure Python and subprocess: no Salt imports (``from_cmd_run_all`` adapts Salt's ``cmd.run_all``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

if TYPE_CHECKING:
    from hpc_marking import Marking
    from hpc_natrouter import Table

M = TypeVar("M")
NFT = "nft"
TIMEOUT_S = 60
CHECK = ("-c", "-f", "-")
APPLY = ("-f", "-")

# (argv, stdin) -> (returncode, stdout, stderr); a command that cannot start is a nonzero returncode.
Runner = Callable[[Sequence[str], str | None], tuple[int, str, str]]


class NftError(Exception):
    """An ``nft`` command failed or was refused; says which one and what nft printed."""

    def __init__(self, nft_args: Sequence[str], stderr: str, returncode: int | None = None) -> None:
        self.nft_args = tuple(nft_args)
        self.stderr = stderr.strip()
        self.returncode = returncode
        rc = f" (exit {returncode})" if returncode is not None else ""
        super().__init__(f"`nft {' '.join(self.nft_args)}` failed{rc}: {self.stderr or 'no error output'}")


@dataclass(frozen=True)
class NftCodec(Generic[M]):
    """One table of ours: where it lives, and how its model is written and read back.

    ``render`` must return the whole ``nft -f`` text starting with ``table F T`` and
    ``delete table F T``, so that one transaction replaces the table whether or not it exists.
    ``parse`` takes the decoded ``nft -j list table F T`` document; None when the table is absent.
    """

    family: str
    name: str
    render: Callable[[M], str]
    parse: Callable[[dict[str, Any]], M | None]

    @property
    def table(self) -> str:
        return f"{self.family} {self.name}"


def natrouter_codec() -> NftCodec[Table]:
    """``inet hpcnet_nat``, the NAT routers' table."""
    import hpc_natrouter  # on call: it needs the pillar schema (pydantic), which the handle does not

    return NftCodec(hpc_natrouter.FAMILY, hpc_natrouter.TABLE, hpc_natrouter.render_table, hpc_natrouter.parse_table)


def marking_codec() -> NftCodec[Marking]:
    """``inet hpcnet_mark``, policy routing's marking of the chosen users' traffic."""
    import hpc_marking

    return NftCodec(hpc_marking.FAMILY, hpc_marking.TABLE, hpc_marking.render, hpc_marking.parse)


class NftTableHandle(Protocol[M]):
    def read(self) -> M | None: ...
    def apply(self, model: M) -> None: ...
    def delete(self) -> bool: ...


def is_absent_error(stderr: str) -> bool:
    """nft reports a missing table (list or delete) as ENOENT."""
    return "No such file or directory" in stderr


def run_subprocess(argv: Sequence[str], stdin: str | None = None) -> tuple[int, str, str]:
    try:
        res = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S)
    except OSError as exc:
        return 127, "", f"{argv[0]}: {exc}"
    except subprocess.TimeoutExpired:
        return 124, "", f"no answer after {TIMEOUT_S} s"
    return res.returncode, res.stdout, res.stderr


def from_cmd_run_all(cmd_run_all: Callable[..., dict[str, Any]]) -> Runner:
    """A Runner over Salt's ``__salt__["cmd.run_all"]``, so a minion's commands are logged as Salt's."""

    def run(argv: Sequence[str], stdin: str | None = None) -> tuple[int, str, str]:
        res = cmd_run_all(list(argv), stdin=stdin, python_shell=False, ignore_retcode=True)
        return res["retcode"], res["stdout"], res["stderr"]

    return run


class NftTable(Generic[M]):
    """Our table in the kernel, through the ``nft`` binary (in ``netns`` when given)."""

    def __init__(self, codec: NftCodec[M], run: Runner | None = None, netns: str | None = None) -> None:
        self.codec = codec
        self.run = run or run_subprocess
        self.prefix = ["ip", "netns", "exec", netns] if netns else []

    def _nft(self, args: Sequence[str], stdin: str | None = None) -> tuple[int, str, str]:
        return self.run([*self.prefix, NFT, *args], stdin)

    def read(self) -> M | None:
        # A host that never had nft has no table of ours.
        if shutil.which(NFT) is None:
            return None
        args = ("-j", "list", "table", self.codec.family, self.codec.name)
        code, out, err = self._nft(args)
        if code != 0:
            if is_absent_error(err):
                return None
            raise NftError(args, err, code)
        try:
            return self.codec.parse(json.loads(out))
        except ValueError as exc:
            raise NftError(args, f"output is not JSON: {exc}") from exc

    def apply(self, model: M) -> None:
        text = self.codec.render(model)
        # nft -f is one transaction already; the check makes a refusal say so before anything is sent.
        for args in (CHECK, APPLY):
            code, _, err = self._nft(args, text)
            if code != 0:
                raise NftError(args, err, code)

    def delete(self) -> bool:
        if shutil.which(NFT) is None:
            return False
        args = ("delete", "table", self.codec.family, self.codec.name)
        code, _, err = self._nft(args)
        if code == 0:
            return True
        if is_absent_error(err):
            return False
        raise NftError(args, err, code)


class FakeNftTable(Generic[M]):
    """A dict standing for the ruleset: same operations, same errors for the same mistakes.

    ``ruleset`` maps (family, name) to a table's model; share one dict between fakes to stand for
    one kernel. ``refuse(model)`` plays ``nft -c``: truthy refuses (a string is its stderr).
    """

    def __init__(self, codec: NftCodec[M], refuse: Callable[[M], bool | str | None] | None = None,
                 ruleset: dict[tuple[str, str], Any] | None = None) -> None:
        self.codec = codec
        self.refuse = refuse
        self.ruleset = {} if ruleset is None else ruleset

    @property
    def key(self) -> tuple[str, str]:
        return self.codec.family, self.codec.name

    def read(self) -> M | None:
        return self.ruleset.get(self.key)

    def apply(self, model: M) -> None:
        self.codec.render(model)  # a model the codec cannot write fails here as it would for real
        reason = self.refuse(model) if self.refuse else None
        if reason:
            raise NftError(CHECK, reason if isinstance(reason, str) else "refused by the fake", 1)
        self.ruleset[self.key] = model

    def delete(self) -> bool:
        if self.key not in self.ruleset:
            return False
        del self.ruleset[self.key]
        return True
