"""The pillars docs/diskless.md shows for the seeds' setups ("The seeds' setups") are valid with
the example inventory, and give the menus the page says: an admin copies them as they stand."""

from __future__ import annotations

import re

import yaml
from testlib import ROOT, example_pillar

import hpc_bootmenu
import hpc_pillar

SECTION = "## The seeds' setups"


def _examples() -> list[dict]:
    text = (ROOT / "docs" / "diskless.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", section, re.S)]


def _with(diskless: dict, image: str) -> dict:
    """The example pillar with this diskless section, its diskless node group booting ``image``."""
    pillar = example_pillar()
    pillar["diskless"] = diskless["diskless"]
    for group in pillar["nodes"]:
        if "image" in group:
            group["image"] = image
    assert hpc_pillar.validate(pillar) == []
    return pillar


def _menus(pillar: dict) -> dict[str, hpc_bootmenu.NodeBoot]:
    spec = hpc_pillar.load(pillar)["diskless"]
    versions = {i.name: [f"{i.name}-0123456789ab"] for i in spec.images}
    return hpc_bootmenu.resolve(hpc_pillar.inventory(pillar), spec, "admin", versions)


def test_the_page_shows_both_seeds():
    assert len(_examples()) == 2


def test_kestrels_images_and_modules():
    pillar = _with(_examples()[0], "image1")
    images = {i.name: i for i in hpc_pillar.load(pillar)["diskless"].images}
    assert sorted(images["image1"].modules) == ["ganglia", "openmpi"] and images["physics"].keep == 5
    assert {b.image for b in _menus(pillar).values()} == {"image1"}


def test_scibians_boot_menu_defaults_and_per_node_entries():
    boots = _menus(_with(_examples()[1], "compute"))
    assert (boots["labcn2"].image, boots["labcn2"].overlay_size, boots["labcn2"].kernel_args) == (
        "gpu", "4G", ("nomodeset",))
    assert (boots["labcn1"].image, boots["labcn1"].default, boots["labcn1"].overlay_size) == ("compute", "local", "1G")
    assert boots["labcn1"].console == "ttyS0,115200"
