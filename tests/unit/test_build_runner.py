"""``salt-run diskless.build``'s wait (``_follow``): it shows the boot server's progress lines as
they come, only those the master verified as the boot server's, and returns the build's result
or its failure."""

from __future__ import annotations

from testlib import load_runner

TAG = "hpc/diskless/build/compute/progress"


def _runner(shown):
    module = load_runner("diskless")
    module._progress = shown.append
    return module


class Bus:
    def __init__(self, events):
        self.events = list(events)

    def get_event(self, wait, full):
        return self.events.pop(0) if self.events else None


def _lines(sender, *lines):
    return {"tag": TAG, "data": {"id": sender, "data": {"image": "compute", "lines": list(lines)}}}


def test_the_boot_servers_lines_are_shown_and_its_result_returned():
    shown = []
    bus = Bus([_lines("labboot1", "compute: phase base: ", "Get:1 ..."), _lines("labcn2", "forged"),
               {"tag": "salt/job/J1/ret/labboot1", "data": {"success": True, "retcode": 0,
                                                           "return": {"image": "compute", "version": "compute-1"}}}])
    out = _runner(shown)._follow(bus, "J1", "labboot1", TAG, 5)
    assert shown == ["compute: phase base: ", "Get:1 ..."]
    assert out == {"result": True, "server": "labboot1", "image": "compute", "version": "compute-1"}


def test_a_failed_build_is_a_failed_run_with_its_message():
    bus = Bus([{"tag": "salt/job/J1/ret/labboot1",
                "data": {"success": False, "retcode": 1, "return": "phase configure: 10_fstab failed: ..."}}])
    out = _runner([])._follow(bus, "J1", "labboot1", TAG, 5)
    assert out["result"] is False and "10_fstab failed" in out["comment"]


def test_no_answer_names_the_job_to_look_up():
    out = _runner([])._follow(Bus([]), "J1", "labboot1", TAG, 0.05)
    assert out["result"] is False and "salt-run jobs.lookup_jid J1" in out["comment"]
