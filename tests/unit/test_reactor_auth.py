"""salt/reactor/auth.sls, rendered as the master's reactor renders it: only an authentication
Salt did not accept that came with a boot grain reaches diskless.auth; every other (each minion's
routine re-authentication) renders nothing, so it costs the master no runner."""

from __future__ import annotations

import salt.config
import salt.utils.templates
import salt.utils.yaml
from testlib import ROOT

SLS = ROOT / "salt" / "reactor" / "auth.sls"
GRAINS = {"hpcnet_boot": "labcn1 52:54:00:0b:00:41"}


def render(data: dict) -> dict:
    opts = salt.config.master_config(None)
    out = salt.utils.templates.render_jinja_tmpl(SLS.read_text(), {"tag": "salt/auth", "data": data, "opts": opts,
                                                                  "saltenv": "base", "sls": "reactor.auth"})
    return salt.utils.yaml.safe_load(out) or {}


def test_a_pending_or_denied_key_with_a_boot_grain_goes_to_diskless_auth():
    for act in ("pend", "denied"):
        data = {"act": act, "id": "labcn1", "pub": "KEY", "autosign_grains": GRAINS}
        rendered = render(data)
        assert list(rendered) == ["hpc-reactor-auth-diskless-auth"]
        args = rendered["hpc-reactor-auth-diskless-auth"]["runner.diskless.auth"][0]["args"]
        assert args == [{"tag": "salt/auth"}, {"data": data}]


def test_anything_else_renders_nothing():
    assert render({"act": "accept", "id": "labfe1", "pub": "KEY", "result": True}) == {}
    assert render({"act": "accept", "id": "labcn1", "pub": "KEY", "autosign_grains": GRAINS}) == {}
    assert render({"act": "pend", "id": "labfe1", "pub": "KEY"}) == {}
