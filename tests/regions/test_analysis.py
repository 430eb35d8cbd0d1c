"""Region analysis on synthetic projects with known per-domain occupancy, and on the example project."""

from __future__ import annotations

import dataclasses

import mrcfile
import numpy as np
import pytest

from occupy_relion import synthetic
from occupy_relion.regions import (
    ClassCompleteness,
    MaskParameters,
    Region,
    RegionAnalysis,
    RegionError,
    RegionParameters,
    analyse_regions,
    region_mask,
)

from .conftest import MIXED_OCCUPANCY, MODERATE_NOISE, PIXEL_SIZE, SHAPE, make_project

#: the region's occupancy per class against the truth
OCCUPANCY_TOLERANCE = 0.08
#: completeness against the volume-weighted truth (the domains' shares come from their balls)
COMPLETENESS_TOLERANCE = 0.1


def analyse(project, parameters: RegionParameters | None = None) -> RegionAnalysis:
    return analyse_regions(project.scale, project.confidence, project.spacing, project.lowpass,
                           parameters or RegionParameters())


def domain_of(analysis: RegionAnalysis, region: Region, labels: np.ndarray) -> tuple[int, float]:
    """The domain holding most of the region, and the share of the region inside it."""
    inside = labels[analysis.labels == region.number]
    counts = np.bincount(inside, minlength=labels.max() + 1)[1:]
    return int(np.argmax(counts)) + 1, float(counts.max() / inside.size)


def match_regions(project, analysis: RegionAnalysis) -> dict[int, Region]:
    """Variable domain → its region; asserts that the regions are the variable domains, one each."""
    # a region reaches out to the rim of its domain's density: the domain balls grown by 6 Å
    grown = project.domain_labels(analysis.shape, project.spacing, shrink=-6.0)
    inner = project.domain_labels(analysis.shape, project.spacing, shrink=3.0)
    matched = {}
    for region in analysis.regions:
        domain, share = domain_of(analysis, region, grown)
        assert share >= 0.85, (region, domain, share)
        assert domain not in matched, f"two regions in domain {domain}"
        matched[domain] = region
        covered = float(np.mean(analysis.labels[inner == domain] == region.number))
        assert covered >= 0.7, (domain, covered)
    assert sorted(matched) == project.variable_domains(), (sorted(matched), project.variable_domains())
    return matched


def true_completeness(project) -> np.ndarray:
    """Each class's occupancy of the whole particle, domains weighted by their volume."""
    volumes = np.array([radius ** 3 for _, radius in project.domains])
    return np.array([np.dot(volumes, values) / volumes.sum() for values in project.occupancy])


# --- several classes -------------------------------------------------------------------------------


def test_regions_are_the_variable_domains(classes_project):
    match_regions(classes_project, analyse(classes_project))


def test_each_region_reads_its_true_occupancy_in_every_class(classes_project):
    analysis = analyse(classes_project)
    for domain, region in match_regions(classes_project, analysis).items():
        truth = [values[domain - 1] for values in classes_project.occupancy]
        assert region.classes == analysis.classes == (1, 2, 3, 4)
        np.testing.assert_allclose(region.occupancy, truth, atol=OCCUPANCY_TOLERANCE, err_msg=f"domain {domain}")


def test_the_complete_class_ranks_first_and_a_missing_domain_costs_its_share(classes_project):
    analysis = analyse(classes_project)
    by_class = {c.class_number: c for c in analysis.completeness}
    assert analysis.ranked_classes[0] == 1
    assert by_class[1].rank == 1 and by_class[1].completeness >= 0.9
    # lacking a whole domain costs more than lacking half of one
    assert by_class[2].completeness < min(by_class[3].completeness, by_class[4].completeness)
    assert analysis.ranked_classes[-1] == 2
    completeness = [by_class[n].completeness for n in analysis.classes]
    np.testing.assert_allclose(completeness, true_completeness(classes_project), atol=COMPLETENESS_TOLERANCE)
    assert sorted(c.rank for c in analysis.completeness) == [1, 2, 3, 4]


def test_class_statistics_are_edge_free(classes_project):
    """The molecule's core reads full in the complete class; a missing domain shows as partial."""
    analysis = analyse(classes_project)
    by_class = {c.class_number: c for c in analysis.completeness}
    assert by_class[1].median >= 0.9 and by_class[1].partial_fraction <= 0.05
    # the class lacking domain 4 (a quarter of the particle) has about that share below half
    assert 0.12 <= by_class[2].partial_fraction <= 0.4
    assert by_class[2].partial_fraction > max(by_class[3].partial_fraction, by_class[4].partial_fraction) - 0.02


def test_masks_cover_the_variable_domains_and_leave_the_constant_ones_alone(classes_project):
    project = classes_project
    analysis = analyse(project)
    matched = match_regions(project, analysis)
    domains = project.domain_labels(SHAPE, PIXEL_SIZE)
    cores = project.domain_labels(SHAPE, PIXEL_SIZE, shrink=4.0)
    constant = [d for d in range(1, 5) if d not in matched]
    variable = region_mask(analysis, None, SHAPE, PIXEL_SIZE)
    assert variable.dtype == np.float32 and variable.shape == SHAPE
    assert variable.min() >= 0 and variable.max() <= 1
    for domain, region in matched.items():
        assert np.mean(variable[domains == domain] >= 0.5) >= 0.95
        own = region_mask(analysis, [region.number], SHAPE, PIXEL_SIZE)
        assert np.mean(own[domains == domain] >= 0.5) >= 0.95
        for other in matched:  # a region's own mask leaves the other variable domain alone
            if other != domain:
                assert np.mean(own[cores == other] >= 0.5) <= 0.02
    # at 2.5× the noise a region's border is uncertain by a few Å, and the soft edge follows it
    reach = 0.02 if project.noise <= MODERATE_NOISE else 0.1
    for domain in constant:
        assert np.mean(variable[cores == domain] >= 0.5) <= reach, domain
        assert variable[cores == domain].mean() <= reach, domain


def test_regions_are_numbered_most_variable_first_with_their_size_and_place(classes_project):
    analysis = analyse(classes_project)
    numbers = [r.number for r in analysis.regions]
    assert numbers == list(range(1, len(numbers) + 1))
    variability = [r.variability for r in analysis.regions]
    assert variability == sorted(variability, reverse=True)
    box_centre = np.asarray(SHAPE) // 2 * PIXEL_SIZE  # x = y = z
    matched = match_regions(classes_project, analysis)
    for domain, region in matched.items():
        assert np.count_nonzero(analysis.labels == region.number) == region.voxels
        centre, radius = classes_project.domains[domain - 1]
        # the region's centre is the domain's (a little off where it meets its neighbours)
        assert np.linalg.norm(np.asarray(region.centre_A) - box_centre - np.asarray(centre)) <= 6.0
        ball = 4 / 3 * np.pi * radius ** 3
        assert 0.6 * ball <= region.volume_A3 <= 2.0 * ball, (region.volume_A3, ball)
        assert 0 < region.core_voxels < region.voxels
    partial = matched[4].occupancy_of(4)
    assert matched[4].description == f"absent in class 2; partial in class 4 ({partial:.2f}); full in classes 1, 3"
    assert "partial in class 3" in matched[3].description


@pytest.mark.parametrize("seed", [0, 1])
def test_a_domain_partial_in_every_class_is_a_region(seed):
    """Classes that mix the states (the domain at half in both) still show it: what focused
    classification is for.  The domain that differs between the classes is found as before."""
    project = make_project(MIXED_OCCUPANCY, MODERATE_NOISE, seed=seed)
    analysis = analyse(project)
    matched = match_regions(project, analysis)
    mixed = matched[4]
    assert mixed.occupancy == pytest.approx((0.5, 0.5), abs=OCCUPANCY_TOLERANCE)
    assert mixed.description.startswith("partial in classes 1, 2")
    assert mixed.variability == pytest.approx(1 - max(mixed.occupancy))
    assert matched[2].occupancy == pytest.approx((1.0, 0.0), abs=OCCUPANCY_TOLERANCE)
    assert [r.number for r in analysis.regions] == [matched[2].number, mixed.number]  # most variable first


@pytest.mark.parametrize("weak", [0.08, 0.12])
def test_density_absent_in_every_class_is_no_region(weak):
    """A domain at 0.08-0.12 of full in both classes (at low noise it passes the confidence): as near
    absent as it is everywhere, it is left out (no region "absent in classes 1, 2" ranked most
    variable, nothing in the masks, not in the molecule), and its volume is reported."""
    project = make_project(((1.0, 1.0, 1.0, weak), (1.0, 0.0, 1.0, weak)), 0.1, seed=0)
    analysis = analyse(project)
    (region,) = analysis.regions
    assert region.occupancy == pytest.approx((1.0, 0.0), abs=OCCUPANCY_TOLERANCE)
    assert analysis.weak_volume_A3 > 1000
    inner = project.domain_labels(analysis.shape, project.spacing, shrink=3.0)
    assert np.mean(analysis.molecule[inner == 4]) < 0.1 and not analysis.labels[inner == 4].any()


def test_a_weak_domain_above_absent_in_every_class_is_still_a_region():
    """At 0.2 in both classes the same domain reads 0.2 and is a region partial in every class."""
    project = make_project(((1.0, 1.0, 1.0, 0.2), (1.0, 0.0, 1.0, 0.2)), 0.1, seed=0)
    analysis = analyse(project)
    matched = match_regions(project, analysis)
    assert matched[4].occupancy == pytest.approx((0.2, 0.2), abs=0.05)
    assert analysis.weak_volume_A3 == 0


# --- one map alone ---------------------------------------------------------------------------------


def test_one_map_alone_gives_its_partial_regions(single_map):
    analysis = analyse(single_map)
    assert analysis.classes == (1,)
    for domain, region in match_regions(single_map, analysis).items():
        assert region.occupancy[0] == pytest.approx(single_map.occupancy[0][domain - 1], abs=OCCUPANCY_TOLERANCE)
        assert region.description == f"partial ({region.occupancy[0]:.2f})"  # a quarter is partial, not absent
    assert analysis.regions[0].occupancy[0] < analysis.regions[1].occupancy[0]  # most partial first
    (only,) = analysis.completeness
    assert only.completeness == pytest.approx(true_completeness(single_map)[0], abs=COMPLETENESS_TOLERANCE)


def test_a_noisier_map_alone_still_gives_its_half_domain_and_nothing_where_it_is_full(noisy_single_map):
    """At 1.6× the noise the quarter domain is no longer molecule by the core's confidence."""
    analysis = analyse(noisy_single_map)
    grown = noisy_single_map.domain_labels(analysis.shape, noisy_single_map.spacing, shrink=-6.0)
    found = {domain_of(analysis, r, grown)[0]: r for r in analysis.regions}
    assert 2 in found and found[2].occupancy[0] == pytest.approx(0.5, abs=OCCUPANCY_TOLERANCE)
    assert not {1, 3} & set(found)


def test_noise_blobs_around_a_real_filament_are_no_partial_region():
    """EMD-5168 (F-actin) alone: a dozen noise blobs in the shell between the filament and the ring
    of its helical mask pass the confidence, and the faint fringe joins them into two pieces of
    ~200 000 Å³ at 0.23.  They are no body of molecule, so no partial region and not molecule: the map
    reads complete, and its edge-free numbers are the filament's."""
    from occupy_relion.core import measure, normalise

    from ..conftest import SHARED_MAPS, _require

    with mrcfile.open(_require(SHARED_MAPS / "emd_5168.map"), permissive=True) as mrc:
        volume, pixel = np.asarray(mrc.data, dtype=np.float32).copy(), float(mrc.voxel_size.x)
    estimate = normalise(measure(volume, pixel, threads=2))
    spacing = volume.shape[0] * pixel / estimate.scale_grid.shape[0]
    analysis = analyse_regions({1: estimate.scale_grid}, {1: estimate.confidence_grid}, spacing,
                               estimate.settings.lowpass_angstrom)
    assert analysis.regions == ()
    (only,) = analysis.completeness
    assert only.completeness >= 0.95 and only.median >= 0.9
    # the blobs are left out of the molecule too: they made 19 % of its edge-free voxels read below 0.5
    assert analysis.scattered_volume_A3 > 20_000 and only.partial_fraction < 0.05


@pytest.mark.parametrize("classes", [1, 3])
def test_fully_occupied_classes_have_no_regions(classes):
    project = make_project(((1.0, 1.0, 1.0, 1.0),) * classes, 0.25, seed=2)
    analysis = analyse(project)
    assert analysis.regions == ()
    assert not analysis.labels.any()
    for c in analysis.completeness:
        assert c.completeness >= 0.9 and c.median >= 0.9 and c.partial_fraction <= 0.05


# --- the example project (real RELION 3.1 classes) -------------------------------------------------


def test_example_project_variable_domain_and_completeness(example_project):
    """Class 1: domain 4 present, 2: absent, 3: half; the other domains full in every class."""
    analysis = analyse(example_project)
    (region,) = analysis.regions
    grown = example_project.domain_labels(analysis.shape, example_project.spacing, shrink=-6.0)
    assert domain_of(analysis, region, grown)[0] == 4
    np.testing.assert_allclose(region.occupancy, [1.0, 0.0, 0.5], atol=OCCUPANCY_TOLERANCE)
    assert region.description.startswith("absent in class 2; partial in class 3")
    assert analysis.ranked_classes == (1, 3, 2)
    by_class = {c.class_number: c for c in analysis.completeness}
    assert by_class[1].completeness >= 0.9
    np.testing.assert_allclose([by_class[n].completeness for n in (1, 2, 3)], true_completeness(example_project),
                               atol=COMPLETENESS_TOLERANCE)
    # the mask holds domain 4 and leaves the constant domains' cores alone (domains touch here)
    mask = region_mask(analysis, [1], example_project.shape, example_project.pixel_size)
    labels = example_project.domain_labels(example_project.shape, example_project.pixel_size)
    cores = example_project.domain_labels(example_project.shape, example_project.pixel_size, shrink=4.0)
    assert np.mean(mask[labels == 4] >= 0.5) >= 0.95
    for domain in (1, 2, 3):
        assert np.mean(mask[cores == domain] >= 0.5) <= 0.02


def test_example_project_reads_the_same_on_the_full_grid(example_project):
    """The analysis grid is a choice: the working grid and the full-size maps give the same answer."""
    from occupy_relion.core.filters import upsample_linear

    working = analyse(example_project)
    scale = {n: upsample_linear(m, example_project.shape) for n, m in example_project.scale.items()}
    confidence = {n: upsample_linear(m, example_project.shape) for n, m in example_project.confidence.items()}
    full = analyse_regions(scale, confidence, example_project.pixel_size, example_project.lowpass)
    assert len(full.regions) == len(working.regions) == 1
    np.testing.assert_allclose(full.regions[0].occupancy, working.regions[0].occupancy, atol=0.03)
    np.testing.assert_allclose(full.regions[0].centre_A, working.regions[0].centre_A, atol=2.0)
    assert full.regions[0].volume_A3 == pytest.approx(working.regions[0].volume_A3, rel=0.1)
    assert full.ranked_classes == working.ranked_classes


# --- contract --------------------------------------------------------------------------------------


def test_inputs_are_not_modified_and_results_are_frozen(example_project):
    before = {n: m.copy() for n, m in example_project.scale.items()}
    analysis = analyse(example_project)
    for n, m in example_project.scale.items():
        np.testing.assert_array_equal(m, before[n])
    assert analysis.labels.dtype == np.int16 and analysis.labels.shape == analysis.shape
    assert analysis.molecule.dtype == bool and (analysis.molecule | (analysis.labels == 0)).all()
    assert analysis.spacing == (example_project.spacing,) * 3
    for frozen in (analysis, analysis.regions[0], analysis.completeness[0], analysis.parameters):
        with pytest.raises(dataclasses.FrozenInstanceError):
            frozen.number = 5  # type: ignore[misc,attr-defined]
    assert isinstance(analysis.completeness_of(2), ClassCompleteness)
    assert analysis.region(1) is analysis.regions[0]


def test_parameters_are_validated_once_and_resolved_from_the_lowpass():
    resolved = RegionParameters().resolved(8.0)
    assert resolved.edge_width == 8.0 and resolved.min_volume == pytest.approx(4 / 3 * np.pi * 512)
    assert RegionParameters(edge_width=5.0).resolved(8.0).edge_width == 5.0
    for bad in ({"min_difference": 0.0}, {"min_difference": 1.0}, {"core_level": 1.5}, {"edge_width": -1.0},
                {"min_volume": float("nan")}, {"max_regions": 0}, {"max_regions": 2.5}, {"similarity": 0.0}):
        with pytest.raises(ValueError):
            RegionParameters(**bad)
    with pytest.raises(ValueError):
        RegionParameters().resolved(0.0)
    for bad_mask in ({"extend": -1.0}, {"soft_edge": float("inf")}):
        with pytest.raises(ValueError):
            MaskParameters(**bad_mask)


def test_bad_inputs_raise_one_clear_error(example_project):
    scale, confidence = example_project.scale, example_project.confidence
    with pytest.raises(RegionError, match="no class maps"):
        analyse_regions({}, {}, 1.0, 8.0)
    with pytest.raises(RegionError, match="confidence maps"):
        analyse_regions(scale, {1: confidence[1]}, 1.0, 8.0)
    with pytest.raises(RegionError, match="shape"):
        analyse_regions({**scale, 2: scale[2][:-1]}, confidence, 1.0, 8.0)
    with pytest.raises(RegionError, match="spacing"):
        analyse_regions(scale, confidence, -1.0, 8.0)
    noise = np.random.default_rng(0).random((32, 32, 32), dtype=np.float32) * 0.04
    with pytest.raises(RegionError, match="no molecule"):
        analyse_regions({1: noise}, {1: np.zeros_like(noise)}, 2.0, 8.0)


def test_synthetic_helper_truth_matches_the_renderer():
    """The fixtures' domain balls sit where synthetic.render puts the domains."""
    project = make_project(((1.0, 1.0, 1.0, 1.0),), 0.0001, seed=0)
    labels = project.domain_labels(SHAPE, PIXEL_SIZE)
    np.testing.assert_array_equal(labels, synthetic.domain_masks(project.particle, SHAPE, PIXEL_SIZE))


def test_at_most_max_regions_the_most_variable_and_the_rest_counts_as_constant(classes_project):
    both = analyse(classes_project)
    (only,) = analyse(classes_project, RegionParameters(max_regions=1)).regions
    assert only.occupancy == pytest.approx(both.regions[0].occupancy, abs=0.02)
    assert only.variability == pytest.approx(max(r.variability for r in both.regions), abs=0.02)
