"""Salt in the lab: a real salt-master in the admin host, a real salt-minion in every other host.

Configs come from the checkout's templates (``etc/master.in``, ``etc/minion.in``, the
placeholders of ``tools/configure``) with the lab's changes: every ``root_dir`` is inside the
run dir (``<run>/salt/<id>``), the master listens on its lab admin address only. Each lab
minion's key pair is made here and its public key put among the master's accepted ones, as an
installer does on a real site; the master accepts no other key by itself (no ``auto_accept``), so
what a machine that is not a lab host gets (a diskless node booting, a stranger) is what the
product's ``salt/auth`` reactor gives it.

The config files are written *before* the lab hosts start: a lab host sees ``/`` through an
overlay, and files added to a lower layer under a live overlay are not reliably visible.
What the daemons write (keys, caches, logs) then lands in the host's own upper layer:
``<run>/hosts/<host>/upper/<run>/salt/<id>/...`` (in a VM, in its tmpfs).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

from .registry import REPO, Run

# The venv's bin dir: the lab hosts and VMs see the same files (overlay / 9p of /).
BIN = Path(sys.executable).parent if (Path(sys.executable).parent / "salt").exists() else REPO / ".venv" / "bin"


def salt_dir(run: Run) -> Path:
    return run.dir / "salt"


def config_dir(run: Run, ident: str) -> Path:
    """``<run>/salt/<id>``: config file, and root_dir of what the daemon writes."""
    return salt_dir(run) / ident


def overrides_dir(run: Run) -> Path:
    """``<run>/salt/overrides``: the first of the lab master's file_roots, empty. A test puts a
    changed copy of one of our files there (from inside the master's host) to see a sync carry
    it to the minions, without touching the checkout."""
    return salt_dir(run) / "overrides"


def pillar_overrides_dir(run: Run) -> Path:
    """``<run>/pillar``: the first of the lab master's pillar_roots. A pillar file there replaces
    the checkout's of the same name (the top file stays the checkout's): a grown inventory
    (``lab up --compute N``), or a test's pillar edit, without touching the checkout."""
    return run.dir / "pillar"


def _render(template: str, interface: str, pillar: Path) -> dict:
    text = (REPO / "etc" / template).read_text()
    text = text.replace("@ROOT@", str(REPO)).replace("@PILLAR@", str(pillar)).replace("@INTERFACE@", interface)
    return yaml.safe_load(text)


def master_config(run: Run, interface: str, pillar: Path | None = None) -> dict:
    conf = _render("master.in", interface, pillar or REPO / "pillar")
    conf["root_dir"] = str(config_dir(run, "master"))
    conf["interface"] = interface
    conf["file_roots"]["base"].insert(0, str(overrides_dir(run)))
    conf["pillar_roots"]["base"].insert(0, str(pillar_overrides_dir(run)))
    conf["gather_job_timeout"] = 5
    # The CLI's default -t: a minion in a TCG VM takes ~8 s to answer test.ping and ~90 s for a
    # highstate, and the find_job check after -t cannot help it (it answers that no faster than
    # gather_job_timeout). 10 s (etc/master.in) would drop the directors from most calls.
    conf["timeout"] = 120
    conf["log_level_logfile"] = "warning"
    return conf


def minion_config(run: Run, ident: str, master: str, vm: bool = False) -> dict:
    tpl = _render("minion.in", "", REPO / "pillar")
    keys = ("pki_dir", "cachedir", "sock_dir", "pidfile", "log_file", "state_output",
            "tcp_keepalive", "tcp_keepalive_idle", "tcp_keepalive_cnt", "tcp_keepalive_intvl", "disable_beacons")
    conf = {k: tpl[k] for k in keys if k in tpl}
    conf.update(
        id=ident,
        master=master,
        root_dir=str(config_dir(run, ident)),
        hpc=tpl["hpc"],
        log_level_logfile="warning",
        # Retry the master quickly while it starts (defaults: 10 s between attempts).
        acceptance_wait_time=1,
        acceptance_wait_time_max=5,
        random_reauth_delay=1,
        recon_default=200,
        recon_max=2000,
    )
    if vm:
        # Under TCG a forked job process costs seconds of CPU and ~60 MB: polled during a slow
        # start, jobs piled up until the guest ran out of memory. Threads, in the minion itself.
        conf["multiprocessing"] = False
    return conf


def write_configs(
    run: Run, master_ip: str, minions: Iterable[str], vms: Iterable[str] = (), pillar: Path | None = None
) -> None:
    """``<run>/salt/master/master`` and ``<run>/salt/<id>/minion`` for each minion (``vms``: in a VM)."""
    vms = set(vms)
    run.record("dir", str(salt_dir(run)))
    cdir = config_dir(run, "master")
    cdir.mkdir(parents=True, exist_ok=True)
    overrides_dir(run).mkdir(exist_ok=True)
    pillar_overrides_dir(run).mkdir(exist_ok=True)
    (cdir / "master").write_text(yaml.safe_dump(master_config(run, master_ip, pillar), sort_keys=False))
    for ident in minions:
        cdir = config_dir(run, ident)
        cdir.mkdir(parents=True, exist_ok=True)
        conf = minion_config(run, ident, master_ip, vm=ident in vms)
        (cdir / "minion").write_text(yaml.safe_dump(conf, sort_keys=False))
        _preseed_key(run, ident)


def _preseed_key(run: Run, ident: str) -> None:
    """The minion's key pair in its pki dir, its public key accepted by the master."""
    import salt.crypt  # the venv's Salt; imported here, as the lab's other commands do not need it

    private, public = salt.crypt.gen_keys(2048)
    pki = config_dir(run, ident) / "pki" / "minion"  # root_dir + the template's pki_dir
    pki.mkdir(parents=True, exist_ok=True)
    (pki / "minion.pem").write_text(private)
    (pki / "minion.pem").chmod(0o400)
    (pki / "minion.pub").write_text(public)
    accepted = config_dir(run, "master") / "pki" / "master" / "minions"
    accepted.mkdir(parents=True, exist_ok=True)
    (accepted / ident).write_text(public)


def etc_link_argv(run: Run, ident: str, kind: str = "minion") -> list[str]:
    """Inside a host: /etc/salt/<kind> -> the run's config, so ``salt-call`` (or ``salt`` on the
    master) without ``-c``, e.g. in a keepalived notify script, uses the same identity and keys."""
    conf = config_dir(run, ident) / kind
    return ["sh", "-c", f"mkdir -p /etc/salt && ln -sfn '{conf}' /etc/salt/{kind}"]


def master_argv(run: Run) -> list[str]:
    return [str(BIN / "salt-master"), "-l", "warning", "-c", str(config_dir(run, "master"))]


def minion_argv(run: Run, ident: str) -> list[str]:
    return [str(BIN / "salt-minion"), "-l", "warning", "-c", str(config_dir(run, ident))]


def cli_argv(run: Run, args: Iterable[str], tool: str = "salt") -> list[str]:
    """``salt ARGS`` (or salt-run, salt-key) with the lab master's config dir."""
    return [str(BIN / tool), "-c", str(config_dir(run, "master")), *args]


def parse_json(out: str) -> dict:
    """The JSON object salt printed with ``--out=json --static`` ({} when there is none)."""
    start = out.find("{")
    if start < 0:
        return {}
    try:
        return json.loads(out[start:])
    except ValueError:
        return {}


def ping_args(minions: list[str], timeout: int = 3) -> list[str]:
    return ["-L", ",".join(minions), "test.ping", "--out=json", "--static", "-t", str(timeout)]


def ping_argv(run: Run, minions: list[str], timeout: int = 3) -> list[str]:
    return cli_argv(run, ping_args(minions, timeout))


def answered(out: str) -> set[str]:
    return {k for k, v in parse_json(out).items() if v is True}


def wait_minions(
    run_salt: Callable[[list[str], float], tuple[int, str, str]],
    run: Run,
    minions: list[str],
    timeout: float = 240,
    progress: Callable[[str], None] = print,
    slow: Iterable[str] = (),
) -> float:
    """Wait until every minion answers ``test.ping`` through the master; seconds waited.

    ``run_salt(argv, timeout)`` runs argv in the master's host, returns (rc, out, err). Only the
    minions that have not answered yet are pinged again; ``slow`` ones (in VMs) get a longer -t.
    """
    t0 = time.monotonic()
    slow = set(slow)
    last = None
    ok: set[str] = set()
    slow_wait = 10.0
    while True:
        missing = [m for m in minions if m not in ok]
        # A VM minion answers test.ping in ~8 s on an idle machine, in 90 s with another lab's VMs
        # running: a reply later than -t is lost, so each round waits twice as long (up to 120 s).
        slow_wait = min(slow_wait * 2, 120.0)
        wait = int(slow_wait) if slow & set(missing) else 3
        try:
            _, out, _ = run_salt(ping_argv(run, missing, timeout=wait), wait + 30)
            ok |= answered(out)
        except (TimeoutError, subprocess.TimeoutExpired):
            pass
        missing = [m for m in minions if m not in ok]
        elapsed = time.monotonic() - t0
        state = (len(ok), tuple(missing))
        if state != last or not missing:
            waiting = f"; waiting for {', '.join(missing)}" if missing else ""
            progress(f"  salt: {len(ok)}/{len(minions)} minions answer after {elapsed:.0f} s{waiting}")
            last = state
        if not missing:
            return elapsed
        if elapsed > timeout:
            raise TimeoutError(f"minions not answering test.ping after {timeout:.0f} s: {', '.join(missing)}")
        time.sleep(1)
