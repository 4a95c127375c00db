"""Synthetic news corpora of a chosen size, recombined from text we have.

The sentence pool is the seed article plus the paragraphs of a SQuAD-format file (by default
../shared/eval/xquad-en-dev.json). Each synthetic article draws 8-14 sentences from the pool at
random (seeded, so corpora are reproducible) under a title of the article most of them come
from. The real SQuAD paragraphs and the seed article are always included, so that the
questions of the SQuAD file measure retrieval quality among the distractors.

    .venv/bin/python benchmarks/make_corpus.py --passages 10000 --out /tmp/corpus-10k
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from retrieval.ingest.articles import ArticleLoader, document_for  # noqa: E402
from retrieval.ingest.splitter import split_sentences  # noqa: E402

DEFAULT_SQUAD = ROOT.parent / "shared" / "eval" / "xquad-en-dev.json"
SEED = ROOT / "seeds" / "000_2702eb2bcdd00dd6.txt"


def squad_paragraphs(path: Path) -> list[tuple[str, str, str]]:
    """(title, source, context) of every paragraph; source is "Title#n" as in `qabot eval`."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        (article["title"], f"{article['title']}#{number}", paragraph["context"])
        for article in data["data"]
        for number, paragraph in enumerate(article["paragraphs"])
    ]


def build_corpus(target_passages: int, squad: Path = DEFAULT_SQUAD, seed: int = 0) -> list:
    """Article Documents expected to split into about `target_passages` passages (120-word passages)."""
    paragraphs = squad_paragraphs(squad)
    seed_article = ArticleLoader().load(SEED)
    documents = [seed_article] + [document_for(context, title=t, source=s) for t, s, context in paragraphs]
    pool = [(title, sentence) for title, _, context in paragraphs for sentence in split_sentences(context)]
    pool += [(seed_article.meta["title"], s) for s in split_sentences(seed_article.content)]
    rng = random.Random(seed)
    # Measured: about 1.5 passages per real paragraph, 3.5 per synthetic article of ~11 sentences.
    synthetic = max(0, round((target_passages - 1.5 * len(documents)) / 3.5))
    for number in range(synthetic):
        picked = rng.sample(pool, rng.randint(8, 14))
        title = Counter(t for t, _ in picked).most_common(1)[0][0]
        paragraphs_text = []
        for start in range(0, len(picked), 4):
            paragraphs_text.append(" ".join(sentence for _, sentence in picked[start : start + 4]))
        documents.append(
            document_for("\n\n".join(paragraphs_text), title=f"{title} (digest {number})", source=f"digest-{number}")
        )
    return documents


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic corpus as .txt articles.")
    parser.add_argument("--passages", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--squad", type=Path, default=DEFAULT_SQUAD)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for number, document in enumerate(build_corpus(args.passages, args.squad)):
        (args.out / f"{number:06d}.txt").write_text(
            f"{document.meta['title']}\n\n{document.content}\n", encoding="utf-8"
        )
    print(f"wrote {number + 1} articles to {args.out}")


if __name__ == "__main__":
    main()
