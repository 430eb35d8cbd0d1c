"""occupancy_map: each part's occupancy in a class, carried past the rim of the molecule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from occupy_relion.regions import RegionParameters, analyse_regions, occupancy_map
from occupy_relion.regions.occupancy import part_labels, reach

from .conftest import CLASS_OCCUPANCY, MODERATE_NOISE, make_project


@pytest.fixture(scope="module")
def analysed():
    project = make_project(CLASS_OCCUPANCY, MODERATE_NOISE, 0)
    analysis = analyse_regions(project.scale, project.confidence, project.spacing, project.lowpass,
                               RegionParameters())
    return project, analysis


def test_each_domain_reads_its_truth_in_every_class(analysed):
    """Inside every domain (shrunk by 2 Å), the map reads the domain's true occupancy within ±0.08."""
    project, analysis = analysed
    domains = project.domain_labels(analysis.shape, project.spacing, shrink=2.0)
    parts = part_labels(analysis)
    for index, number in enumerate(analysis.classes):
        values = occupancy_map(analysis, number, parts)
        assert values.dtype == np.float32 and values.shape == analysis.shape
        assert np.array_equal(values, occupancy_map(analysis, number))
        for k, truth in enumerate(project.occupancy[index], start=1):
            inside = values[domains == k]
            assert abs(float(np.median(inside)) - truth) <= 0.08, (number, k)


def test_values_reach_past_the_molecule_and_no_further(analysed):
    """A surface drawn just outside the molecule still reads its part's value; far out the map is 0."""
    _project, analysis = analysed
    from scipy import ndimage

    distance = ndimage.distance_transform_edt(~analysis.molecule, sampling=analysis.spacing)
    values = occupancy_map(analysis, analysis.classes[0])  # the complete class: every part at full
    rim = (distance > 0) & (distance <= 0.5 * reach(analysis))
    assert np.all(values[rim] >= 0.85)
    assert np.all(values[distance > reach(analysis) + 1e-3] == 0)
    assert np.all(values[analysis.molecule] >= 0.85)


def test_constant_part_reads_its_own_occupancy_in_each_class(analysed):
    """The constant domains (1, 2) read about 1 in every class, and the value is the one the analysis
    weighed into the completeness (recomputed here from the scale maps)."""
    project, analysis = analysed
    from occupy_relion.regions.occupancy import constant_occupancy

    inner = np.isin(project.domain_labels(analysis.shape, project.spacing, shrink=6.0), (1, 2))
    for number in analysis.classes:
        value = constant_occupancy(analysis, number)
        assert 0.9 <= value <= 1.0
        measured = float(np.median(project.scale[number][inner])) / analysis.full_level
        assert value == pytest.approx(min(measured, 1.0), abs=0.08)
    half = replace(analysis, completeness=tuple(replace(c, completeness=0.5 * c.completeness)
                                                for c in analysis.completeness))
    assert constant_occupancy(half, analysis.classes[0]) < 0.6  # it follows the analysis, not a constant 1
