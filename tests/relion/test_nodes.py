"""RELION_OUTPUT_NODES.star: both type columns, labels per version, as real RELION wrote them."""

from __future__ import annotations

import pytest
import starfile

from occupy_relion.relion.nodes import OutputNode, format_nodes, node_type, write_output_nodes

NODES = [
    OutputNode("External/job012/class001_equalised.mrc", "map"),
    OutputNode("External/job012/class001_scale.mrc", "localres"),
    OutputNode("External/job012/occupancy.star", "process"),
    OutputNode("External/job012/logfile.pdf", "logfile"),
]


def test_types_per_version():
    assert node_type("map", "3.1") == (6, "DensityMap.mrc")
    assert node_type("localres", "4.0") == (12, "Image3D.mrc.localresmap")
    assert node_type("logfile", "5.0") == (13, "LogFile.pdf.relion")
    assert node_type("process", "3.1") is None  # no 3.1 integer fits a result table
    assert node_type("process", "5.0")[1] == "ProcessData.star.occupy"


def test_unknown_version_gets_both_columns_as_relion50_registered(shared_relion, tmp_path):
    """Without a known version: both type columns, the layout of a real External job's file RELION 5.0 read."""
    real = starfile.read(shared_relion / "relion50_project/External/job004/RELION_OUTPUT_NODES.star")
    path = write_output_nodes(tmp_path, NODES, None)
    ours = starfile.read(path)
    assert list(ours.columns) == list(real.columns) == [
        "rlnPipeLineNodeName", "rlnPipeLineNodeType", "rlnPipeLineNodeTypeLabel"]
    assert list(ours["rlnPipeLineNodeTypeLabel"]) == [
        "DensityMap.mrc", "Image3D.mrc.localresmap", "ProcessData.star.occupy", "LogFile.pdf.relion"]
    assert list(ours["rlnPipeLineNodeType"][[0, 1, 3]]) == [6, 12, 13]


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_relion4_and_5_get_the_label_column_only(version, tmp_path):
    """What 4.0/5.0's own relion_star_handler writes (tests/test_e2e_relion5.py compares with it)."""
    table = starfile.read(write_output_nodes(tmp_path, NODES, version))
    assert list(table.columns) == ["rlnPipeLineNodeName", "rlnPipeLineNodeTypeLabel"]
    assert list(table["rlnPipeLineNodeTypeLabel"]) == [
        "DensityMap.mrc", "Image3D.mrc.localresmap", "ProcessData.star.occupy", "LogFile.pdf.relion"]


def test_relion31_gets_the_integer_column_only_and_leaves_out_what_it_cannot_take(tmp_path):
    """3.1 logs "unknown label: rlnPipeLineNodeTypeLabel" for the string column, so it gets none."""
    text = format_nodes(NODES, "3.1")
    assert "occupancy.star" not in text and "rlnPipeLineNodeTypeLabel" not in text
    rows = [line.split() for line in text.splitlines() if line.startswith("External/")]
    assert [row[1] for row in rows] == ["6", "12", "13"]  # 3.1 reads the type as an integer
    table = starfile.read(write_output_nodes(tmp_path, NODES, "3.1"))
    assert list(table.columns) == ["rlnPipeLineNodeName", "rlnPipeLineNodeType"]
    assert list(table["rlnPipeLineNodeType"]) == [6, 12, 13]
    assert "data_output_nodes" in text and not list(tmp_path.glob(".occupy-tmp-*"))


def test_region_masks_are_3d_mask_nodes_in_every_version():
    """As MaskCreate registers its mask: 3.1 type 7, 4.0/5.0 Mask3D.mrc (offered wherever a mask is asked)."""
    assert node_type("mask", "3.1") == (7, "Mask3D.mrc")
    assert node_type("mask", "4.0") == (7, "Mask3D.mrc") == node_type("mask", "5.0")
    text = format_nodes([OutputNode("External/job012/variable_mask.mrc", "mask")], "3.1")
    assert [line.split() for line in text.splitlines() if line.startswith("External/")] == [
        ["External/job012/variable_mask.mrc", "7"]]
