import numpy as np
import pytest

from occupy_relion.core.solvent import (
    SolventFitError, confidence, fit_solvent, flattened_region, solvent_noise, solvent_spectrum,
)
from occupy_relion.core.filters import radial_frequency


@pytest.fixture(scope="module")
def mixture():
    """90 % Gaussian solvent (mean 2, sd 0.5) and 10 % molecule spread well above it."""
    rng = np.random.default_rng(0)
    solvent = rng.normal(2.0, 0.5, 90_000)
    molecule = rng.uniform(3.0, 8.0, 10_000)
    return np.concatenate([solvent, molecule]).astype(np.float32).reshape(40, 50, 50)


def test_fit_finds_the_solvent_gaussian(mixture):
    model = fit_solvent(mixture)
    assert model.mean == pytest.approx(2.0, abs=0.02)
    assert model.sd == pytest.approx(0.5, rel=0.03)
    assert model.weight == pytest.approx(0.9, abs=0.03)


def test_confidence_is_monotone_zero_in_solvent_and_one_in_molecule(mixture):
    model = fit_solvent(mixture)
    assert np.all(np.diff(model.confidence_curve) >= 0)
    c = confidence(np.array([[[1.0, 2.0, 4.5, 7.0]]], np.float32), model)
    assert c[0, 0, 0] == 0 and c[0, 0, 1] == 0
    assert c[0, 0, 2] > 0.95 and c[0, 0, 3] == 1
    # the lowest voxel is solvent, not molecule (the published tool wrapped it to 1)
    assert confidence(mixture.min(keepdims=True), model).item() == 0


@pytest.mark.parametrize("factor, offset", [(1000.0, 0.0), (0.001, 0.0), (1.0, -50.0)])
def test_confidence_is_invariant_to_intensity_and_offset(mixture, factor, offset):
    base = confidence(mixture, fit_solvent(mixture))
    moved = mixture * np.float32(factor) + np.float32(offset)
    np.testing.assert_allclose(confidence(moved, fit_solvent(moved)), base, atol=2e-3)


def test_flattened_region_finds_zeroed_solvent():
    volume = np.random.default_rng(1).normal(size=(30, 30, 30)).astype(np.float32)
    assert flattened_region(volume) is None
    volume[:10] = 0
    flat = flattened_region(volume)
    assert flat is not None and flat[:10].all() and not flat[10:].any()


def test_fit_rejects_too_few_or_constant_values():
    with pytest.raises(SolventFitError):
        fit_solvent(np.ones((10, 10, 10), np.float32))
    with pytest.raises(SolventFitError):
        fit_solvent(np.arange(50, dtype=np.float32).reshape(2, 5, 5))


def test_solvent_noise_is_seeded_and_has_the_solvent_spectrum():
    rng = np.random.default_rng(2)
    shape = (48, 48, 48)
    # coloured solvent: white noise low-passed by a Gaussian
    spectrum = np.fft.rfftn(rng.standard_normal(shape))
    spectrum *= np.exp(-((radial_frequency(shape, np.array(shape) * 1.0) * 6) ** 2))
    solvent = np.fft.irfftn(spectrum, s=shape, axes=(0, 1, 2)).astype(np.float32) * 3 + 1
    freqs, amplitude, sd = solvent_spectrum(solvent, np.ones(shape, np.float32), 1.0)
    a = solvent_noise(shape, 1.0, freqs, amplitude, sd, seed=5)
    b = solvent_noise(shape, 1.0, freqs, amplitude, sd, seed=5)
    c = solvent_noise(shape, 1.0, freqs, amplitude, sd, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.std() == pytest.approx(solvent.std(), rel=1e-3) and abs(a.mean()) < 0.05 * sd
    # same radial spectrum shape: compare the power in low and high shells
    _, amp_noise, _ = solvent_spectrum(a, np.ones(shape, np.float32), 1.0)
    low, high = slice(2, 10), slice(30, 40)
    ratio_solvent = amplitude[low].mean() / max(amplitude[high].mean(), 1e-12)
    ratio_noise = amp_noise[low].mean() / max(amp_noise[high].mean(), 1e-12)
    assert ratio_noise == pytest.approx(ratio_solvent, rel=0.2)
    assert ratio_solvent > 10  # really coloured, not white
