"""Each diskless node's iPXE menu (hpc_bootmenu) from the example pillar: labcn[1-2] boot image
``compute``; labcn2 has an override (a larger RAM overlay). Which versions exist is the boot
server's word, given here."""

from __future__ import annotations

import pytest
from testlib import example_pillar, mutate

import hpc_bootmenu
import hpc_pillar

OLD, NEW = "compute-0123456789ab", "compute-abcdef012345"
BASE = "http://10.11.0.5/hpcnet"


def _resolve(pillar: dict | None = None, versions: dict | None = None) -> dict[str, hpc_bootmenu.NodeBoot]:
    pillar = pillar or example_pillar()
    spec = hpc_pillar.load(pillar)["diskless"]
    return hpc_bootmenu.resolve(hpc_pillar.inventory(pillar), spec, "admin",
                                {"compute": [OLD, NEW]} if versions is None else versions)


def test_only_diskless_nodes_get_a_menu_with_the_newest_version_and_the_one_before():
    boots = _resolve()
    assert sorted(boots) == ["labcn1", "labcn2"]
    assert (boots["labcn1"].version, boots["labcn1"].previous) == (NEW, OLD)
    assert (boots["labcn1"].overlay_size, boots["labcn1"].source) == ("1G", "diskless.boot")


def test_the_first_override_naming_a_node_wins_and_unset_keys_keep_the_defaults():
    pillar = mutate(example_pillar(), "diskless.overrides.1", {"nodes": "labcn[1-2]", "console": "tty0"})
    boots = _resolve(pillar)
    assert (boots["labcn2"].overlay_size, boots["labcn2"].console) == ("2G", "ttyS0,115200")
    assert (boots["labcn2"].source, boots["labcn1"].source) == ("diskless.overrides[0]", "diskless.overrides[1]")
    assert (boots["labcn1"].overlay_size, boots["labcn1"].console) == ("1G", "tty0")


def test_a_pinned_version_boots_with_no_previous_entry_when_it_is_the_oldest():
    boots = _resolve(mutate(example_pillar(), "diskless.images.0.version", OLD))
    assert (boots["labcn1"].version, boots["labcn1"].previous) == (OLD, None)
    script = hpc_bootmenu.ipxe_script(boots["labcn1"], BASE, 5)
    assert ":previous" not in script and "item previous" not in script


def test_an_override_can_pin_its_nodes_to_another_version():
    boots = _resolve(mutate(example_pillar(), "diskless.overrides.0.version", OLD))
    assert (boots["labcn1"].version, boots["labcn2"].version) == (NEW, OLD)


@pytest.mark.parametrize("change,versions,expected", [
    (("diskless.images.0.version", "compute-ffffffffffff"), None,
     "diskless.images[compute].version: version compute-ffffffffffff of image compute is not on the boot "
     f"server (built: {OLD}, {NEW})"),
    (("diskless.overrides.0.version", "compute-ffffffffffff"), None,
     "diskless.overrides[0].version: version compute-ffffffffffff of image compute is not on the boot "
     f"server (built: {OLD}, {NEW})"),
    (None, {}, "diskless.images[compute]: no version built yet (needed by labcn1)"),
])
def test_a_version_the_boot_server_lacks_is_named_with_its_key(change, versions, expected):
    pillar = mutate(example_pillar(), *change) if change else None
    with pytest.raises(ValueError) as err:
        _resolve(pillar, versions)
    assert str(err.value) == expected


def test_the_script_boots_the_default_entry_after_the_timeout_with_the_nodes_kernel_arguments():
    script = hpc_bootmenu.ipxe_script(_resolve()["labcn2"], BASE, 5)
    assert script.startswith("#!ipxe\n")
    assert "choose --default image --timeout 5000 target && goto ${target} || goto image" in script
    url = f"{BASE}/images/compute/{NEW}"
    # boot=hpcnet: the initramfs's boot script (without it, initramfs-tools looks for a local root)
    assert (f"kernel {url}/vmlinuz initrd=initrd.img boot=hpcnet hpcnet.root={url}/root.squashfs "
            f"hpcnet.manifest={url}/manifest "
            "hpcnet.overlay=2G BOOTIF=01-${netX/mac:hexhyp} hpcnet.interface=eth0 console=ttyS0,115200\n"
            f"initrd {url}/initrd.img\nboot") in script
    assert f"images/compute/{OLD}/vmlinuz" in script.split(":previous")[1]
    assert script.rstrip().endswith(":local\nexit")


def test_previous_as_default_without_a_previous_version_boots_the_pinned_one():
    boots = _resolve(mutate(example_pillar(), "diskless.boot.default", "previous"), {"compute": [NEW]})
    assert "choose --default image " in hpc_bootmenu.ipxe_script(boots["labcn1"], BASE, 5)


def test_pruning_keeps_every_pinned_version_and_the_one_before_it():
    mid = "compute-0000000000aa"
    built = [OLD, mid, NEW]
    pillar = mutate(example_pillar(), "diskless.overrides.0.version", mid)
    spec = hpc_pillar.load(pillar)["diskless"]
    assert hpc_bootmenu.in_use(spec, "compute", built) == {mid, OLD}
    pillar = mutate(pillar, "diskless.images.0.version", NEW)
    assert hpc_bootmenu.in_use(hpc_pillar.load(pillar)["diskless"], "compute", built) == {NEW, mid, OLD}
    assert hpc_bootmenu.in_use(hpc_pillar.load(pillar)["diskless"], "gpu", built) == set()


def test_nodes_whose_image_has_no_build_are_named_instead_of_failing_when_asked():
    unbuilt: dict[str, str] = {}
    pillar = example_pillar()
    boots = hpc_bootmenu.resolve(hpc_pillar.inventory(pillar), hpc_pillar.load(pillar)["diskless"], "admin", {},
                                 unbuilt=unbuilt)
    assert boots == {} and unbuilt == {"labcn1": "compute", "labcn2": "compute"}
    # A pinned version the boot server lacks is a pillar mistake: still an error.
    pinned = mutate(example_pillar(), "diskless.images.0.version", "compute-ffffffffffff")
    with pytest.raises(ValueError, match=r"^diskless\.images\[compute\]\.version: "):
        hpc_bootmenu.resolve(hpc_pillar.inventory(pinned), hpc_pillar.load(pinned)["diskless"], "admin", {},
                             unbuilt={})


def test_the_unbuilt_warning_names_the_nodes_and_only_the_images_they_boot():
    """A site declares compute and gpu; with neither built, the example's nodes need only compute."""
    pillar = example_pillar()
    pillar["diskless"]["images"].append({"name": "gpu", "suite": "bookworm", "packages": ["openssh-server"]})
    spec = hpc_pillar.load(pillar)["diskless"]
    unbuilt: dict[str, str] = {}
    hpc_bootmenu.resolve(hpc_pillar.inventory(pillar), spec, "admin", {}, unbuilt=unbuilt)
    assert hpc_bootmenu.unbuilt_warnings(unbuilt) == [
        "no image built yet for labcn1, labcn2: no boot menu, no network boot until a build "
        "(salt-run diskless.build compute, then a highstate here)"]
    assert hpc_bootmenu.unbuilt_warnings({}) == []


def test_each_node_gets_its_own_menu_file_and_the_boot_script_chains_to_it_by_name():
    files = hpc_bootmenu.menu_files(_resolve(), BASE, 5)
    assert sorted(files) == ["labcn1.ipxe", "labcn2.ipxe"]
    assert "hpcnet.overlay=2G" in files["labcn2.ipxe"] and "hpcnet.overlay=1G" in files["labcn1.ipxe"]
    assert "chain --autofree menus/${hostname}.ipxe" in hpc_bootmenu.boot_script()
