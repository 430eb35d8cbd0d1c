#!/usr/bin/env python3
"""Masked, flattened, cropped and pure-noise maps (issue 9): our core side by side with the published tool.

Every case is a real map from ``../shared/`` (or white noise), with a known region that carries no data:

* RELION 3.1 / 5.0 / the example project's Class3D maps (``--flatten_solvent --zero_mask``): the exact
  zeros, and the outer fall-off of RELION's soft sphere (radius > 29 voxels, mask below 1/4);
* EMD-5168 masked by us: a soft sphere, a soft cylinder about the filament, a Gaussian fall-off that never
  reaches a constant, zero padding (the masked region: mask < 0.25, or < 0.05 where the sphere cuts the
  filament);
* EMD-5168 unmasked and cropped about its axis, EMD-1703, white noise: no masked region; what the
  estimate makes of them (measurable or not, the molecule's scale).

Per case and tool: the 99th percentile of the confidence in the masked region, the equalised map's sd
there over the input's (targets: ≤ 0.05 and ≤ 1.5; a region of exact zeros reads 1 when it is kept
exactly, inf when the equalised map put anything there), the share of the box with 0 < confidence < 0.5,
the equalised map's sd over the input's in the solvent inside the mask (the weakest 60 % of the
smoothed map outside the masked region), and the median scale where confidence ≥ 0.5.  Ours also gives
its measurability and the share of the box it found without data.

Ours runs in this process (whatever ``occupy_relion`` is importable: run it with ``PYTHONPATH`` set to
another checkout to measure that code); the peer through ``../shared/peers/occupy_peer.sh`` (``--no-peer``
skips it).  Nothing is written unless ``--output`` is given.

    python benchmarks/bench_nodata.py --output benchmarks/results/nodata.md
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
from scipy.ndimage import gaussian_filter

HERE = Path(__file__).resolve()
#: shared/ beside the repository (as CI lays it out), else the workplace's (as tests/conftest.py finds it)
SHARED = next((p for p in (HERE.parents[2] / "shared", Path("/work/shared")) if p.is_dir()), HERE.parents[2] / "shared")
EXAMPLE = HERE.parents[1] / "example_project" / "Class3D" / "job003"
DEFAULT_PEER = SHARED / "peers" / "occupy_peer.sh"


@dataclass(frozen=True)
class Case:
    """A map, its pixel size and its region without data."""

    name: str
    volume: np.ndarray
    pixel: float
    masked: np.ndarray | None  # the region without data (None: there is none)


def _read(path: Path) -> tuple[np.ndarray, float]:
    with mrcfile.open(path, permissive=True) as mrc:
        return np.asarray(mrc.data, dtype=np.float32).copy(), float(mrc.voxel_size.x)


def _radius(shape, axes=(0, 1, 2)) -> np.ndarray:
    grids = np.indices(shape, dtype=np.float32)
    return np.sqrt(sum((grids[a] - (shape[a] - 1) / 2) ** 2 for a in axes))


def _soft(distance: np.ndarray, start: float, width: float) -> np.ndarray:
    t = np.clip((distance - start) / width, 0, 1)
    return (0.5 + 0.5 * np.cos(np.pi * t)).astype(np.float32)


def cases() -> list[Case]:
    """Every case whose files are there."""
    found = []
    relion = [("RELION 5.0 class 1", SHARED / "relion/relion50_project/Class3D/job003/run_it005_class001.mrc"),
              ("RELION 5.0 class 2", SHARED / "relion/relion50_project/Class3D/job003/run_it005_class002.mrc"),
              ("RELION 3.1 class 1", SHARED / "relion/relion31_project/Class3D/job003/run_it010_class001.mrc"),
              ("RELION 3.1 class 2", SHARED / "relion/relion31_project/Class3D/job003/run_it010_class002.mrc"),
              ("example class 1", EXAMPLE / "run_it025_class001.mrc"),
              ("example class 2", EXAMPLE / "run_it025_class002.mrc"),
              ("example class 3", EXAMPLE / "run_it025_class003.mrc")]
    for name, path in relion:
        if path.is_file():
            volume, pixel = _read(path)
            r = _radius(volume.shape)
            found.append(Case(name, volume, pixel, (volume == 0) | (r > 29)))
    path = SHARED / "maps/emd_5168.map"
    if path.is_file():
        volume, pixel = _read(path)
        r, axial = _radius(volume.shape), _radius(volume.shape, axes=(1, 2))
        padded = np.zeros(volume.shape, np.float32)
        padded[15:85, 15:85, 15:85] = 1
        gaussian = np.exp(-0.5 * (np.maximum(r - 30, 0) / 6) ** 2).astype(np.float32)
        for name, mask, level in (("EMD-5168 soft sphere", _soft(r, 36, 8), 0.05),
                                  ("EMD-5168 soft cylinder", _soft(axial, 30, 8), 0.25),
                                  ("EMD-5168 Gaussian fall-off", gaussian, 0.05),
                                  ("EMD-5168 zero-padded", padded, 0.25)):
            found.append(Case(name, volume * mask, pixel, mask < level))
        found.append(Case("EMD-5168", volume, pixel, None))
        for half in (30, 14):
            crop = np.ascontiguousarray(volume[:, 50 - half:50 + half, 50 - half:50 + half])
            found.append(Case(f"EMD-5168 crop {2 * half}² voxels", crop, pixel, None))
    path = SHARED / "maps/emd_1703.map"
    if path.is_file():
        found.append(Case("EMD-1703", *_read(path), None))
    noise = np.random.default_rng(0).standard_normal((64, 64, 64)).astype(np.float32)
    found.append(Case("white noise 64³", noise, 1.5, None))
    return found


@dataclass(frozen=True)
class Numbers:
    """What one tool made of one case."""

    confidence_p99: float | None  # in the masked region
    sd_ratio: float | None  # equalised / input sd in the masked region
    partial_confidence: float  # share of the box with 0 < confidence < 0.5
    solvent_ratio: float  # equalised / input sd in the solvent inside the mask
    molecule_median: float | None  # median scale where confidence >= 0.5
    measurable: str = ""
    no_data: float | None = None


def numbers(case: Case, scale: np.ndarray, confidence: np.ndarray, equalised: np.ndarray, **extra) -> Numbers:
    v, masked = case.volume, case.masked
    data = ~masked if masked is not None else np.ones(v.shape, bool)
    smooth = gaussian_filter(v, 2)
    solvent = data & (smooth < np.percentile(smooth[data], 60))
    molecule = confidence >= 0.5
    ratio = None
    if masked is not None:  # a constant region: 1 when the equalised map keeps it exactly, else infinite
        base = float(v[masked].std())
        ratio = float(equalised[masked].std()) / base if base > 0 else (
            1.0 if np.array_equal(equalised[masked], v[masked]) else float("inf"))
    return Numbers(
        confidence_p99=float(np.percentile(confidence[masked], 99)) if masked is not None else None,
        sd_ratio=ratio,
        partial_confidence=float(np.mean((confidence > 0) & (confidence < 0.5))),
        solvent_ratio=float(equalised[solvent].std() / v[solvent].std()),
        molecule_median=float(np.median(scale[molecule])) if molecule.any() else None,
        **extra,
    )


def ours(case: Case) -> Numbers:
    from occupy_relion import core

    estimate = core.estimate_scale(case.volume, case.pixel, threads=2)
    equalised = core.modify_map(case.volume, estimate, case.pixel, threads=2)["equalised"]
    settings = estimate.settings
    extra = {"measurable": getattr(getattr(settings, "measurability", None), "value", "(not assessed)"),
             "no_data": getattr(settings, "no_data_fraction", None)}
    return numbers(case, estimate.scale, estimate.confidence, equalised, **extra)


def peer(case: Case, script: Path) -> Numbers | str:
    """The published tool's estimate and full equalisation (``--amplify inf``), or why it failed."""
    work = Path(tempfile.mkdtemp(prefix="nodata_peer_"))
    try:
        with mrcfile.new(work / "case.mrc") as mrc:
            mrc.set_data(case.volume)
            mrc.voxel_size = case.pixel
        done = subprocess.run(["bash", str(script), "-i", "case.mrc", "--occupancy", "--amplify", "inf"],
                              cwd=work, capture_output=True, text=True, timeout=600, check=False)
        outputs = {p.name.split("_")[0]: p for p in work.glob("*.mrc") if p.name != "case.mrc"}
        if done.returncode != 0 or not {"scale", "conf", "ampl"} <= outputs.keys():
            return f"failed (rc {done.returncode})"
        maps = {}
        for key in ("scale", "conf", "ampl"):
            maps[key], _ = _read(outputs[key])
        if maps["conf"].shape != case.volume.shape:
            return f"other grid {maps['conf'].shape}"
        return numbers(case, maps["scale"], maps["conf"], maps["ampl"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(rows: list[tuple[Case, Numbers, Numbers | str | None]]) -> str:
    lines = ["| case | conf p99 masked (ours / peer) | eq. sd ratio masked (ours / peer) | box 0<conf<0.5 "
             "(ours / peer) | eq. sd ratio solvent (ours / peer) | molecule median scale (ours / peer) | ours: "
             "no data, measurable |",
             "|---|---|---|---|---|---|---|"]
    for case, mine, theirs in rows:
        t = theirs if isinstance(theirs, Numbers) else None
        note = theirs if isinstance(theirs, str) else "–"

        def pair(name: str, digits: int = 2, mine: Numbers = mine, t: Numbers | None = t, note: str = note) -> str:
            return f"{_f(getattr(mine, name), digits)} / {_f(getattr(t, name), digits) if t else note}"

        share = "–" if mine.no_data is None else f"{100 * mine.no_data:.0f}%"
        lines.append(f"| {case.name} | {pair('confidence_p99', 3)} | {pair('sd_ratio')} | "
                     f"{pair('partial_confidence')} | {pair('solvent_ratio')} | {pair('molecule_median')} | "
                     f"{share}, {mine.measurable} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", type=Path, default=DEFAULT_PEER, help="occupy_peer.sh")
    parser.add_argument("--no-peer", action="store_true", help="ours only")
    parser.add_argument("--output", type=Path, help="write the Markdown table here")
    args = parser.parse_args(argv)
    rows = []
    for case in cases():
        theirs = None if args.no_peer else peer(case, args.peer)
        rows.append((case, ours(case), theirs))
        print(f"done: {case.name}", file=sys.stderr, flush=True)
    text = table(rows)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
