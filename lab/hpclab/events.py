"""The lab master's event bus, seen from a test: what the master really received, and from whom.

Run inside the master's host (``python events.py MASTER_CONF TAG_PREFIX SECONDS``), it prints
``{"ready": true}`` once subscribed, then one JSON line per event whose tag starts with the
prefix, and exits after SECONDS (it never outlives a test by more than that). ``watch`` starts
it from the outside and collects the lines.

    with events.watch(lab, "hpc/net/") as bus:
        lab.flap("labcn1", "ib0")
        restored = bus.wait_for(lambda e: e["tag"] == "hpc/net/routes/restored", 10)
        restored["data"]["data"]["reason"]  # 'hpc/net/link/ib0/up': the reactor's heal
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# {"tag": str, "data": {...}} as Salt's get_event(full=True) gives it; for a minion's event,
# data["id"] is the sender as the master saw it and data["data"] the payload.
Event = dict

HERE = Path(__file__).resolve()


def listen(conf_file: str, prefix: str, seconds: float) -> int:
    import salt.config
    import salt.utils.event

    opts = salt.config.master_config(conf_file)
    with salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=True) as bus:
        bus.connect_pub()
        print(json.dumps({"ready": True}), flush=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            event = bus.get_event(wait=0.2, tag=prefix, full=True)
            if event:
                print(json.dumps(event, default=str), flush=True)
    return 0


class Watch:
    """A running listener in the master's host and the events it printed so far."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.events: list[Event] = []
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("ready"):
                self.ready.set()
            else:
                doc["_seen"] = time.monotonic()  # when this host read it: for benches' timings
                with self.lock:
                    self.events.append(doc)

    def seen(self, predicate: Callable[[Event], bool] = lambda e: True) -> list[Event]:
        with self.lock:
            return [e for e in self.events if predicate(e)]

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float) -> Event | None:
        """The first event the predicate accepts, waiting at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.seen(predicate):
                return found[0]
            time.sleep(0.05)
        return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # our own child, by its PID
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextmanager
def watch(lab, prefix: str = "hpc/", seconds: float = 300) -> Iterator[Watch]:
    """Events the lab master receives under ``prefix`` while the block runs (at most ``seconds``)."""
    from . import salt as labsalt

    conf = labsalt.config_dir(lab.run, "master") / "master"
    argv = lab.enter_argv(lab.topo.master.name, [sys.executable, str(HERE), str(conf), prefix, str(seconds)])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    w = Watch(proc)
    try:
        if not w.ready.wait(30):
            raise TimeoutError("the event listener in the master's host did not subscribe within 30 s")
        yield w
    finally:
        w.close()


if __name__ == "__main__":
    # Run as a script, this file's folder comes first on sys.path, and its salt.py would hide Salt.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE.parent]
    sys.exit(listen(sys.argv[1], sys.argv[2], float(sys.argv[3])))
