"""The image build plan (hpc_image): the site's scripts replace built-ins of the same name, each
phase is cached by what it reads, and a change rebuilds its phase and those after it only."""

from __future__ import annotations

import hpc_image

BASE = {"suite": "bookworm", "mirror": "http://deb.debian.org/debian", "variant": "minbase"}
PACKAGES = {"basic": ["openssh-server"], "nfs": ["nfs-common"]}
BUILTIN = {
    "install": {"core_set-hostname": b"#!/bin/sh\nhostname\n", "core_disable-dhclient": b"#!/bin/sh\n"},
    "post-install": {"core_delete-sshd-motd": b"#!/bin/sh\nrm -f /etc/motd\n"},
    "configure": {"nfs_home-fstab": b"#!/bin/sh\necho home\n", "sshd_authkeys": b"#!/bin/sh\n"},
}


def _plan(site=None, packages=PACKAGES, base=BASE, cached=()):
    site = site or {}
    scripts = {p: hpc_image.scripts(p, BUILTIN.get(p, {}), site.get(p, {})) for p in hpc_image.PHASES}
    return hpc_image.plan("compute", base, packages, scripts, cached)


def _keys(plan):
    return [p.key for p in plan.phases]


def test_a_site_script_replaces_the_builtin_of_the_same_name_and_new_names_are_added_in_name_order():
    got = hpc_image.scripts("configure", BUILTIN["configure"], {"sshd_authkeys": b"#!/bin/sh\nsite\n",
                                                                "aa_first": b"#!/bin/sh\n"})
    assert [(s.name, s.origin) for s in got] == [("aa_first", "site"), ("nfs_home-fstab", "builtin"),
                                                 ("sshd_authkeys", "site")]


def test_the_same_inputs_give_the_same_version_and_an_empty_cache_runs_every_phase():
    first, again = _plan(), _plan()
    assert first.version == again.version and first.version.startswith("compute-") and len(first.version) == 20
    assert [p.name for p in first.to_run()] == list(hpc_image.PHASES)


def test_a_configure_only_change_rebuilds_configure_alone():
    before = _plan()
    after = _plan(site={"configure": {"nfs_home-fstab": b"#!/bin/sh\necho other home\n"}}, cached=_keys(before))
    assert [p.name for p in after.to_run()] == ["configure"]
    assert after.version != before.version


def test_a_package_change_rebuilds_from_packages_on_and_their_order_does_not_matter():
    before = _plan()
    same = _plan(packages={"nfs": ["nfs-common"], "basic": ["openssh-server"]}, cached=_keys(before))
    assert same.to_run() == [] and same.version == before.version
    after = _plan(packages={**PACKAGES, "basic": ["openssh-server", "htop"]}, cached=_keys(before))
    assert [p.name for p in after.to_run()] == ["packages", "post-install", "configure"]
    # The later phases' snapshots of the old build are never taken for the new one's.
    assert _keys(after)[:2] == _keys(before)[:2] and set(_keys(after)[2:]).isdisjoint(_keys(before))


def test_another_suite_rebuilds_everything():
    before = _plan()
    after = _plan(base={**BASE, "suite": "trixie"}, cached=_keys(before))
    assert [p.name for p in after.to_run()] == list(hpc_image.PHASES)


def test_pruning_keeps_the_newest_and_every_version_in_use():
    versions = ["compute-000000000001", "compute-000000000002", "compute-000000000003", "compute-000000000004"]
    assert hpc_image.prune(versions, 2, in_use=[]) == versions[:2]
    assert hpc_image.prune(versions, 2, in_use=["compute-000000000001"]) == ["compute-000000000002"]


def test_a_variable_the_scripts_see_is_part_of_the_keys_of_the_phases_whose_scripts_name_it():
    """Another master (its address, its key) is a configure-only change; another Salt version
    rebuilds from the phase that installs Salt."""
    builtin = {**BUILTIN, "post-install": {**BUILTIN["post-install"],
                                           "50_salt": b'#!/bin/sh\npip install $HPCNET_PYTHON_REQUIREMENTS\n'},
               "configure": {**BUILTIN["configure"], "20_salt": b"#!/bin/sh\necho master: $HPCNET_MASTER\n"}}
    scripts = {p: hpc_image.scripts(p, builtin.get(p, {}), {}) for p in hpc_image.PHASES}
    env = {"HPCNET_MASTER": "10.11.0.1", "HPCNET_PYTHON_REQUIREMENTS": "salt==3008.3"}
    before = hpc_image.plan("compute", BASE, PACKAGES, scripts, [], env=env)

    def rerun(**changed):
        return [p.name for p in hpc_image.plan("compute", BASE, PACKAGES, scripts, _keys(before),
                                               env={**env, **changed}).to_run()]

    assert rerun(HPCNET_MASTER="10.11.0.2") == ["configure"]
    assert rerun(HPCNET_PYTHON_REQUIREMENTS="salt==3008.4") == ["post-install", "configure"]
