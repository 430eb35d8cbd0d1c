"""Calibrate the noise-bias model of the local maximum: E[max] = a + f·exp(−k·a/f).

For a synthetic particle, the noise-free local maximum a is known voxel by voxel; adding noise at
several levels and seeds gives the observed maximum, and f is the median local maximum of the noise
alone.  Prints the mean bias per bin of a/f and the k that fits it, for both modes.  The constants in
occupy_relion/core/scale.py (NOISE_BIAS_DECAY) come from this run.

    python benchmarks/calibrate_noise_bias.py
"""

from __future__ import annotations

import numpy as np

from occupy_relion import synthetic
from occupy_relion.core import filters

PIXEL = 1.0
SHAPE = (96, 96, 96)
LOWPASS = 8.0
RADIUS = LOWPASS / 2
SEEDS = 16


def statistic(volume: np.ndarray, mode: str) -> np.ndarray:
    if mode == "occupancy":
        work = tuple(n // 2 for n in volume.shape)  # lowpass / 4 = 2 Å
        return filters.ball_maximum(filters.resample_lowpass(volume, PIXEL, work, LOWPASS), RADIUS, (2.0,) * 3, 2)
    return filters.ball_maximum(volume, RADIUS, (PIXEL,) * 3, 2)


def calibrate(mode: str) -> float:
    particle = synthetic.make_particle((1.0, 0.5, 0.25), seed=0)
    clean = synthetic.render(particle, SHAPE, PIXEL)
    full = synthetic.render(particle, SHAPE, PIXEL, occupancy=False)
    labels = synthetic.domain_masks(particle, SHAPE, PIXEL)
    if mode == "occupancy":
        labels = labels[::2, ::2, ::2]
    signal_sd = float(full[synthetic.domain_masks(particle, SHAPE, PIXEL) > 0].std())
    noise_free = statistic(clean, mode)
    pairs = []
    # many noise realisations: the noise's low frequencies barely average out inside one domain, so
    # each realisation shifts whole domains, and a few seeds give k anywhere from 0.2 to 0.6
    for seed in range(1, SEEDS + 1):
        for level in (0.25, 0.5, 0.625, 1.0):
            noise = synthetic.correlated_noise(SHAPE, PIXEL, level * signal_sd, seed=seed)
            floor = float(np.median(statistic(noise, mode)))
            observed = statistic(clean + noise, mode)
            inside = labels > 0
            pairs.append(np.stack([noise_free[inside] / floor, observed[inside] / floor], axis=1))
    data = np.concatenate(pairs)
    edges = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6])
    which = np.digitize(data[:, 0], edges)
    signal, bias = [], []
    print(f"\n{mode} mode: a/f bin | mean a/f | mean bias/f")
    for i in range(1, len(edges)):
        chosen = which == i
        if chosen.sum() > 50:
            signal.append(data[chosen, 0].mean())
            bias.append((data[chosen, 1] - data[chosen, 0]).mean())
            print(f"  [{edges[i - 1]}, {edges[i]}) | {signal[-1]:.2f} | {bias[-1]:.3f}")
    signal, bias = np.array(signal), np.array(bias)
    keep = bias > 0
    k = float(-np.polyfit(signal[keep], np.log(bias[keep]), 1, w=np.sqrt(bias[keep]))[0])
    print(f"  fitted k = {k:.2f}")
    return k


if __name__ == "__main__":
    for mode in ("occupancy", "resolution"):
        calibrate(mode)
