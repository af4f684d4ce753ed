"""hpclab.pxe reads a diskless VM's boot from its console: iPXE's lines wrap at 80 columns with
colour codes, systemd's carry colour codes, our own lines come after a login prompt."""

from __future__ import annotations

import threading
import time
import types

from hpclab import pxe

# As the lab's consoles show them (2026-12-03), colour codes and iPXE's wrapping included.
CONSOLE = (
    "\x1b[0;1miPXE 1.0.0+git-20190125.36a4c85-5.1\x1b[0m -- Open Source Network Boot Firmware -- http\n"
    "://ipxe.org\nConfiguring (net0 52:54:00:aa:00:99).................. No configuration methods \n"
    "succeeded (http://ipxe.org/040ee119)\n"
    "http://10.11.0.5/hpcnet/menus/labcn3.ip\nxe... ok\n"
    "[    0.000000] Linux version 6.1.0-50-amd64 (debian-kernel@lists.debian.org)\n"
    "Begin: hpcnet: fetching http://10.11.0.5/hpcnet/images/compute/compute-1f172c688/root.squashfs ... done.\n"
    "Welcome to \x1b[1mDebian GNU/Linux 12 (bookworm)\x1b[0m!\n"
    "labcn3 login: hpcnet: identity labcn3 52:54:00:0b:00:43\n"
    "hpcnet: configuration failed (exit-code 1)\n"
)


def _boot(tmp_path, text: str) -> pxe.Boot:
    (tmp_path / "console.log").write_text(text)
    boot = pxe.Boot(run=None, name="labcn3", mac="52:54:00:0b:00:43")
    boot.vm = types.SimpleNamespace(console_log=tmp_path / "console.log")
    return boot


def test_milestones_are_found_across_ipxes_wrapping_and_colour_codes(tmp_path):
    boot = _boot(tmp_path, CONSOLE)
    boot.poll()
    assert list(boot.seen) == ["ipxe", "menu", "kernel", "image", "systemd", "identity"]
    assert boot.saw("No configuration methods succeeded")


def test_the_end_of_the_apply_is_its_own_line_not_a_failed_one(tmp_path):
    boot = _boot(tmp_path, CONSOLE + "hpcnet: configuration applied\n")
    boot.poll()
    assert "applied" in boot.seen
    assert boot.flat().count(pxe.APPLY_FAILED) == 1


def test_two_boots_waited_for_together_each_get_their_own_times(tmp_path, monkeypatch):
    """Waiting for one boot, then the other, stamped the second's milestones at the first's end
    (seen in the lab: labcn4 'booted' everything at 289 s)."""
    monkeypatch.setattr(pxe.labvm, "alive", lambda vm: True)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    slow, quick = _boot(tmp_path / "a", CONSOLE), _boot(tmp_path / "b", CONSOLE + "hpcnet: configuration applied\n")
    slow.started = quick.started = time.monotonic()
    done = threading.Timer(1.5, lambda: (tmp_path / "a" / "console.log").write_text(
        CONSOLE + "hpcnet: configuration applied\n"))
    done.start()
    try:
        pxe.wait_all([slow, quick], "applied", 10)
    finally:
        done.cancel()
    assert slow.seen["applied"] >= 1.5
    assert quick.seen["applied"] < 1.0
