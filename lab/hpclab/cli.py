"""``lab``: bring the example cluster up and down on this machine, look into it, break it.

Thin: the logic is in cluster.py and salt.py. Every command but ``up`` works on the run named by
``--prefix``, by default the one ``lab up`` recorded in /var/tmp/hpclab/current.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from . import cluster, images
from . import salt as labsalt

USAGE_EXAMPLES = """examples:
  lab up                                   build the cluster (prints the prefix), wait for all minions
  lab status                               hosts, addresses, minion answering, daemons inside
  lab salt '*' state.apply                 a highstate through the lab's master
  lab exec labcn1 ping -c1 10.13.0.254     a command in a host (or a director VM)
  lab ssh labfe1                           an interactive shell in a namespace host
  lab kill lablvs1 keepalived              faults: kill, flap, partition / heal
  lab flap labcn1 ib0
  lab partition labnat1 ; lab heal labnat1
  lab partition labnat1 ib0                cut one link only (carrier loss on labnat1's ib0)
  lab image compute                        an image's mirror phases here, for diskless.build there
  lab down                                 remove everything of the run
"""


def _print(msg: str) -> None:
    print(msg, flush=True)


def cmd_up(args) -> int:
    lab = cluster.up(args.prefix, progress=_print, minion_timeout=args.timeout, keep_on_failure=args.keep,
                     compute=args.compute)
    _print(f"lab {lab.prefix} is up; `lab status`, `lab salt '*' state.apply`, `lab down`")
    return 0


def cmd_down(args) -> int:
    left = cluster.down(args.prefix, progress=_print)
    return 1 if left else 0


def cmd_status(args) -> int:
    lab = cluster.Lab.load(args.prefix)
    rows = lab.status()
    head = ("HOST", "ROLE", "KIND", "UP", "MINION", "DAEMONS", "ADDRESSES")
    table = [head] + [
        (r["host"], r["role"], r["kind"], "yes" if r["up"] else "NO", r["minion"],
         ",".join(r["daemons"]) or "-", r["addresses"])
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(head) - 1)]
    _print(f"lab {lab.prefix} ({lab.run.dir})")
    for row in table:
        _print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def cmd_exec(args) -> int:
    lab = cluster.Lab.load(args.prefix)
    try:
        rc, out, err = lab.exec(args.host, args.cmd, timeout=args.timeout)
    except TimeoutError as exc:
        print(exc, file=sys.stderr)
        return 124
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


def cmd_ssh(args) -> int:
    lab = cluster.Lab.load(args.prefix)
    node = lab.node(args.host)
    if node.kind == "vm":
        print(f"{args.host} is a QEMU VM reached through a command agent, which has no terminal.\n"
              f"Run commands with `lab exec {args.host} CMD...`, e.g. `lab exec {args.host} ipvsadm -Ln`.",
              file=sys.stderr)
        return 2
    argv = lab.enter_argv(args.host, ["/bin/bash", "-l"])
    env = {**os.environ, "PS1": f"[lab {lab.prefix}] \\u@\\h:\\w\\$ "}
    return subprocess.call(argv, env=env)


def cmd_salt(args) -> int:
    lab = cluster.Lab.load(args.prefix)
    argv = labsalt.cli_argv(lab.run, args.args, tool=args.tool)
    # The caller's stdout/stderr: output streams as salt prints it.
    return subprocess.call(lab.enter_argv(lab.topo.master.name, argv), env={**os.environ, "PYTHONPATH": ""})


def cmd_kill(args) -> int:
    lab = cluster.Lab.load(args.prefix)
    sig = signal.Signals[f"SIG{args.signal.upper().removeprefix('SIG')}"]
    pids = lab.kill(args.host, args.daemon, sig)
    _print(f"{args.host}: sent {sig.name} to {args.daemon} (pid {', '.join(map(str, pids))})")
    return 0


def cmd_flap(args) -> int:
    lab = cluster.Lab.load(args.prefix)
    lab.flap(args.host, args.iface, args.down)
    _print(f"{args.host}: {args.iface} down, then up")
    return 0


def cmd_partition(args, up: bool = False) -> int:
    lab = cluster.Lab.load(args.prefix)
    links = lab.partition(args.host, up=up, ifaces=args.ifaces)
    _print(f"{args.host}: {'healed' if up else 'cut off'} ({', '.join(links)} {'up' if up else 'down'})")
    return 0


def cmd_image(args) -> int:
    os.nice(19)  # beside the lab's TCG VMs: their health probes time out when starved
    lab = cluster.Lab.load(args.prefix)
    built = images.prebuild(lab.run, cluster.load_pillar(overrides=labsalt.pillar_overrides_dir(lab.run)),
                            args.image, log=_print)
    _print(f"{args.image}: {len(built)} phases built here" if built else f"{args.image}: nothing to build here")
    _print(f"the rest on the boot server: lab salt --tool salt-run diskless.build {args.image}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lab", description=__doc__.splitlines()[0], epilog=USAGE_EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name, func, help, host=False):
        s = sub.add_parser(name, help=help, description=help)
        s.add_argument("--prefix", help="the lab run (default: the current one)")
        if host:
            s.add_argument("host", metavar="HOST")
        s.set_defaults(func=func)
        return s

    s = cmd("up", cmd_up, "build the cluster from the pillar; wait until every minion answers")
    s.add_argument("--timeout", type=float, default=240, help="seconds to wait for the minions (default 240)")
    s.add_argument("--keep", action="store_true", help="keep a failed run for inspection instead of removing it")
    s.add_argument("--compute", type=int, metavar="N", help="N compute nodes labcn[1-N] instead of the pillar's 2")
    cmd("down", cmd_down, "remove everything of the run (also after a crash)")
    cmd("status", cmd_status, "hosts, addresses, minion answering, daemons running inside")
    s = cmd("exec", cmd_exec, "run a command in a host or VM; exit with its code", host=True)
    s.add_argument("--timeout", type=float, default=120)
    s.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD")
    cmd("ssh", cmd_ssh, "an interactive shell in a namespace host", host=True)
    s = cmd("salt", cmd_salt, "run salt (or --tool salt-run/salt-key) with the lab master, inside its host")
    s.add_argument("--tool", default="salt", choices=("salt", "salt-run", "salt-key", "salt-cp"))
    s.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS")
    s = cmd("image", cmd_image, "build a diskless image's phases that need Debian's mirror here, into the "
            "boot server's store (the lab has no mirror); diskless.build there does the rest")
    s.add_argument("image", nargs="?", default="compute", metavar="IMAGE", help="default: compute")
    s = cmd("kill", cmd_kill, "kill a daemon (sshd, keepalived, dnsmasq, conntrackd, salt-minion) in a host",
            host=True)
    s.add_argument("daemon", metavar="DAEMON")
    s.add_argument("-s", "--signal", default="KILL", help="signal name (default KILL)")
    s = cmd("flap", cmd_flap, "set an interface down, then up, inside a host", host=True)
    s.add_argument("iface", metavar="IFACE")
    s.add_argument("--down", type=float, default=0.0, help="seconds to stay down (default 0)")
    s = cmd("partition", cmd_partition, "cut a host off every network, or off those of the IFACEs named "
            "(their root-side links down: the host sees carrier loss)", host=True)
    s.add_argument("ifaces", nargs="*", metavar="IFACE")
    s = cmd("heal", lambda a: cmd_partition(a, up=True), "undo partition (root-side links up)", host=True)
    s.add_argument("ifaces", nargs="*", metavar="IFACE")
    return p


def _split_passthrough(argv: list[str]) -> tuple[list[str], list[str]]:
    """``salt``/``exec``: lab's own options end at the first other word; the rest goes through as
    given (argparse's REMAINDER refuses a first word that looks like an option, e.g. ``-L``)."""
    if not argv or argv[0] not in ("salt", "exec"):
        return argv, []
    own = {"salt": ("--prefix", "--tool"), "exec": ("--prefix", "--timeout")}[argv[0]]
    i = 1
    while i < len(argv) and argv[i] in own:
        i += 2
    if argv[0] == "exec" and i < len(argv):
        i += 1  # HOST
    rest = argv[i:]
    return argv[:i], rest[1:] if rest[:1] == ["--"] else rest


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, passthrough = _split_passthrough(argv)
    args = parser().parse_args(own)
    if args.command == "salt":
        args.args = passthrough
    elif args.command == "exec":
        args.cmd = passthrough
    if os.geteuid() != 0:
        print("lab: needs root (namespaces, links, mounts)", file=sys.stderr)
        return 2
    if args.command == "exec" and not args.cmd:
        print("lab exec: give a command", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except (LookupError, RuntimeError, TimeoutError, ValueError) as exc:
        print(f"lab {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
