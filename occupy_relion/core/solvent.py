"""Solvent model: a Gaussian fitted to the histogram of the low-passed map, and the per-voxel
confidence that a voxel is not solvent.  Also solvent-like noise with the solvent's own spectrum.

All fits work in units of the fitted solvent width, so every result is invariant to the map's
absolute intensity and offset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from .filters import lookup_uniform, radial_frequency


#: the confidence is 0 up to this many solvent sd above the solvent mean
SOLVENT_SD_KEPT = 1.0

#: largest number of voxels whose histogram is fitted (a strided sample of bigger maps)
_MAX_FIT_VOXELS = 2_000_000


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal cumulative distribution (a few hundred histogram edges: math.erf is enough)."""
    return np.array([0.5 * math.erfc(-float(v) / math.sqrt(2)) for v in np.ravel(z)]).reshape(np.shape(z))


class SolventFitError(ValueError):
    """The map has no usable solvent histogram (constant map, too few voxels, ...)."""


@dataclass(frozen=True)
class SolventModel:
    """Gaussian solvent model of the low-passed map and the confidence curve derived from it.

    ``edges`` / ``counts`` are the histogram the fit was made on; ``confidence_curve`` is the
    confidence at each bin centre (what :func:`confidence` interpolates).
    """

    mean: float
    sd: float
    weight: float  # fraction of the fitted voxels explained by the solvent Gaussian
    region: str  # where the histogram was taken
    voxels: int  # how many voxels the histogram holds
    edges: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    confidence_curve: np.ndarray = field(repr=False)

    def gaussian_counts(self) -> np.ndarray:
        """Histogram counts the solvent Gaussian predicts, per bin (for plots)."""
        cdf = _normal_cdf((self.edges - self.mean) / self.sd)
        return self.weight * self.voxels * np.diff(cdf)

    @property
    def centres(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])


def flattened_region(volume: np.ndarray) -> np.ndarray | None:
    """Voxels flattened to one exact value (RELION's ``--zero_mask`` sets the solvent to 0), or None.

    Such voxels carry no noise and would swamp the solvent histogram.  Only a value shared by more
    than 2 % of the box counts (zero, or any other constant a program flattened to).
    """
    # look at an evenly strided sample first: a full-size comparison only when it is worth it
    sample = volume.reshape(-1)[:: max(1, volume.size // 200_000)]
    values, counts = np.unique(sample, return_counts=True)
    if counts.max() <= 0.02 * sample.size:
        return None
    return volume == values[np.argmax(counts)]


def _initial_guess(values: np.ndarray) -> tuple[float, float]:
    """Mode of the histogram and a width from its lower half (the molecule adds a positive tail)."""
    lo, hi = np.percentile(values, [0.5, 99.5])
    if not hi > lo:
        raise SolventFitError("the map is constant where the solvent is fitted")
    counts, edges = np.histogram(values, bins=200, range=(lo, hi))
    smooth = np.convolve(counts, np.ones(5) / 5, mode="same")
    mode = 0.5 * (edges[np.argmax(smooth)] + edges[np.argmax(smooth) + 1])
    below = values[values <= mode]
    if below.size < 10:
        below = values
    # for a Gaussian, 31.7 % of its lower half lies below mean - 1 sd
    sd = mode - np.quantile(below, 0.3173)
    if not sd > 0:
        sd = float(np.std(values))
    if not sd > 0:
        raise SolventFitError("the map is constant where the solvent is fitted")
    return float(mode), float(sd)


def _refine_gaussian(values: np.ndarray, mean: float, sd: float) -> tuple[float, float, float]:
    """Least-squares fit of a parabola to the log-histogram around the solvent peak.

    Returns (mean, sd, weight); falls back to the initial guess when the fit is not a Gaussian.
    """
    n = values.size
    lo, hi = mean - 2.5 * sd, mean + 0.75 * sd
    counts, edges = np.histogram(values, bins=60, range=(lo, hi))
    centres = 0.5 * (edges[1:] + edges[:-1])
    good = counts > 5
    if good.sum() >= 8:
        x = (centres[good] - mean) / sd
        coeffs = np.polyfit(x, np.log(counts[good]), 2, w=np.sqrt(counts[good]))
        c2, c1, c0 = coeffs
        if c2 < 0:
            new_sd = np.sqrt(-1 / (2 * c2))
            new_mean = -c1 / (2 * c2)
            if 0.5 < new_sd < 2 and abs(new_mean) < 1:
                peak = np.exp(c0 - c1 ** 2 / (4 * c2))
                bin_width = (edges[1] - edges[0]) / sd
                weight = peak * np.sqrt(2 * np.pi) * new_sd / bin_width / n
                return mean + new_mean * sd, new_sd * sd, float(np.clip(weight, 1e-3, 1.0))
    # fallback: twice the fraction below the mode belongs to the solvent
    return mean, sd, float(np.clip(2 * np.mean(values <= mean), 1e-3, 1.0))


def fit_solvent(
    lowpassed: np.ndarray,
    region: np.ndarray | None = None,
    region_name: str = "whole box",
) -> SolventModel:
    """Fit the solvent Gaussian to the histogram of ``lowpassed`` (inside ``region`` when given).

    ``region`` is a boolean array selecting the voxels whose histogram is fitted, e.g. the solvent
    side of a user's mask, or the box without its flattened part.
    """
    values = lowpassed[region] if region is not None else lowpassed.ravel()
    if values.size > _MAX_FIT_VOXELS:
        # an evenly strided sample: the histogram of millions of voxels is already smooth
        values = values[:: int(np.ceil(values.size / _MAX_FIT_VOXELS))]
    values = values[np.isfinite(values)].astype(np.float64, copy=False)
    if values.size < 100:
        raise SolventFitError(f"only {values.size} voxels to fit the solvent in ({region_name})")
    mean, sd = _initial_guess(values)
    mean, sd, weight = _refine_gaussian(values, mean, sd)
    # the confidence curve: the share of each bin the solvent Gaussian does not explain,
    # zero up to one sd above the solvent mean and never decreasing above it
    top = max(float(values.max()), mean + 8 * sd)
    bottom = min(float(values.min()), mean - 8 * sd)
    step = 0.05 * sd
    # bins anchored at the solvent mean: the curve moves exactly with the map's offset and scale
    first, last = int(np.floor((bottom - mean) / step)), int(np.ceil((top - mean) / step))
    edges = mean + step * np.arange(first, last + 1)
    counts, edges = np.histogram(values, bins=edges)
    model = SolventModel(mean, sd, weight, region_name, int(values.size), edges, counts.astype(np.float64), np.zeros(0))
    expected = model.gaussian_counts()
    # smooth the observed counts so sparse tail bins do not flicker
    observed = np.convolve(counts, np.ones(5) / 5, mode="same")
    with np.errstate(divide="ignore", invalid="ignore"):
        curve = np.where(observed > 0, 1 - expected / observed, 1.0)
    curve = np.clip(curve, 0, 1)
    # within one sd of the mean a voxel is solvent: an excess there is the solvent's own shape (noise
    # thinned by a soft mask's fall-off, a box with little solvent), and would lift every value above it
    curve[model.centres <= mean + SOLVENT_SD_KEPT * sd] = 0
    curve = np.maximum.accumulate(curve)
    return SolventModel(mean, sd, weight, region_name, int(values.size), edges, counts.astype(np.float64), curve)


def confidence(lowpassed: np.ndarray, solvent: SolventModel, threads: int = 1) -> np.ndarray:
    """Per-voxel confidence in [0, 1] that a voxel of the low-passed map is not solvent."""
    centres = solvent.centres
    return lookup_uniform(lowpassed, centres[0], centres[1] - centres[0], solvent.confidence_curve, threads)


def solvent_spectrum(
    volume: np.ndarray,
    solvent_weight: np.ndarray,
    pixel_size: float,
    threads: int = 1,
    shells: int = 64,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Radial amplitude spectrum and standard deviation of the solvent of ``volume``.

    ``solvent_weight`` (0..1, same shape) marks the solvent, e.g. 1 - confidence.  Returns
    (shell frequencies in 1/Å, relative amplitude per shell, solvent sd in map units).
    """
    weight = solvent_weight.astype(np.float32, copy=False)
    total = float(weight.sum())
    if total < 1:
        raise SolventFitError("no solvent voxels to take a noise spectrum from")
    mean = float((volume * weight).sum() / total)
    sd = float(np.sqrt(((volume - mean) ** 2 * weight).sum() / total))
    centred = (volume - np.float32(mean)) * weight
    power = np.abs(scipy.fft.rfftn(centred, workers=threads)) ** 2
    frequency = radial_frequency(volume.shape, np.asarray(volume.shape) * pixel_size)
    nyquist = 0.5 / pixel_size
    index = np.minimum((frequency / nyquist * (shells - 1)).astype(np.int64), shells - 1)
    sums = np.bincount(index.ravel(), power.ravel(), minlength=shells)
    hits = np.bincount(index.ravel(), minlength=shells)
    amplitude = np.sqrt(np.where(hits > 0, sums / np.maximum(hits, 1), 0.0))
    amplitude[0] = 0.0  # the solvent mean is added separately
    freqs = np.arange(shells) * nyquist / (shells - 1)
    return freqs, amplitude, sd


def solvent_noise(
    shape: tuple[int, int, int],
    pixel_size: float,
    frequencies: np.ndarray,
    amplitude: np.ndarray,
    sd: float,
    seed: int = 0,
    threads: int = 1,
) -> np.ndarray:
    """Zero-mean Gaussian noise of standard deviation ``sd`` with the given radial amplitude spectrum.

    Reproducible: the same seed gives the same field.
    """
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(shape, dtype=np.float32)
    spectrum = scipy.fft.rfftn(white, workers=threads)
    del white
    frequency = radial_frequency(shape, np.asarray(shape) * pixel_size)
    spectrum *= np.interp(frequency, frequencies, amplitude).astype(np.float32)
    noise = scipy.fft.irfftn(spectrum, s=shape, workers=threads).astype(np.float32, copy=False)
    current = float(noise.std())
    if current > 0:
        noise *= np.float32(sd / current)
    return noise
