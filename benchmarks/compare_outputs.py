"""Whether two job directories hold the same outputs, bit for bit (issue 13: speed must change nothing).

    python benchmarks/compare_outputs.py BEFORE_JOB_DIR AFTER_JOB_DIR

Compared: every ``.mrc`` (the whole file, header included, byte for byte), every ``.star`` and the
ChimeraX script (text, line by line) and the list of files.  Left out, because they differ between
any two runs: the "Created by ... at TIME" comment the STAR writer puts first, the ``_occupySeconds``
column (each class's run time), the logs (run.out, run.err) and logfile.pdf (it holds its creation
time; its pages are drawn from the same results as occupancy.star).  When the two directories have
different job names (External/job004/ and External/job104/) the names are compared as one.
Exit 0 and "same" when equal; otherwise one line per difference and exit 1.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

#: files two runs always differ in
SKIPPED = {"run.out", "run.err", "logfile.pdf", "bench.log", "bench.time", ".occupy-outputs", ".occupy_relion.lock"}
TIMES = "_occupySeconds"


def _files(job: Path) -> list[str]:
    return sorted(p.relative_to(job).as_posix() for p in job.rglob("*")
                  if p.is_file() and p.name not in SKIPPED and not p.name.startswith(".occupy-tmp"))


#: an External job's RELION name (``External/job004/``), compared as one name
JOB_NAME = re.compile(r"External/job\w+/")


def _star_lines(path: Path) -> list[str]:
    """A STAR file's lines without the writer's time stamp and with the seconds column blanked."""
    out: list[str] = []
    columns: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# Created by"):
            continue
        text = JOB_NAME.sub("JOB/", line)
        words = shlex.split(text, posix=False) if text.strip() and not text.startswith("#") else []
        if text.startswith("loop_") or text.startswith("data_"):
            columns = []
        elif words and words[0].startswith("_") and len(words) <= 2 and (len(words) == 1 or "#" in words[1]):
            columns.append(words[0])  # a loop's column (``_name #3``)
        elif words and words[0] == TIMES:  # a key-value table's seconds
            text = f"{TIMES} SECONDS"
        elif TIMES in columns and len(words) == len(columns):
            words[columns.index(TIMES)] = "SECONDS"
            text = "\t".join(words)
        out.append(text)
    return out


def compare(before: Path, after: Path) -> list[str]:
    """The differences between two job directories (empty: the same)."""
    problems = []
    names_before, names_after = _files(before), _files(after)
    for name in sorted(set(names_before) ^ set(names_after)):
        problems.append(f"{name}: only in {'the first' if name in names_before else 'the second'}")
    for name in sorted(set(names_before) & set(names_after)):
        a, b = before / name, after / name
        if name.endswith(".star") or name.endswith(".cxc"):
            if name.endswith(".star"):
                la, lb = _star_lines(a), _star_lines(b)
            else:
                la = JOB_NAME.sub("JOB/", a.read_text(encoding="utf-8")).splitlines()
                lb = JOB_NAME.sub("JOB/", b.read_text(encoding="utf-8")).splitlines()
            if la != lb:
                first = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
                problems.append(f"{name}: differs from line {first + 1}")
        elif a.read_bytes() != b.read_bytes():
            problems.append(f"{name}: the bytes differ")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="compare two job directories' maps and STAR files")
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    problems = compare(args.before, args.after)
    for line in problems:
        print(line)
    count = len(_files(args.before))
    print("same" if not problems else f"{len(problems)} differences", f"({count} files compared)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
