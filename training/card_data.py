"""What the reader was trained on, for its model card: each training file's description, licence
and attribution, and the licence the weights take from them."""

from __future__ import annotations

_SHIFTS = (
    'Miller, Krauth, Recht and Schmidt, "The Effect of Natural Distribution Shift on Question Answering Models", '
    "ICML 2020"
)
_COVID = 'Möller, Reina, Jayakumar and Pietsch, "COVID-QA: A Question Answering Dataset for COVID-19", 2020'
_SQUAD = (
    'Rajpurkar, Zhang, Lopyrev and Liang, "SQuAD: 100,000+ Questions for Machine Comprehension of Text", '
    'EMNLP 2016; Rajpurkar, Jia and Liang, "Know What You Don\'t Know: Unanswerable Questions for SQuAD", ACL 2018'
)
_TYDI = (
    'Clark, Choi, Collins, Garrette, Kwiatkowski, Nikolaev and Palomaki, "TyDi QA: A Benchmark for '
    'Information-Seeking Question Answering in Typologically Diverse Languages", TACL 2020'
)
# file stem -> (what it is, licence, source)
KNOWN_DATA = {
    "squadshifts-new-wiki": ("SQuAD-shifts, new Wikipedia articles", "CC BY 4.0", _SHIFTS),
    "squadshifts-reddit": ("SQuAD-shifts, Reddit posts", "CC BY 4.0", _SHIFTS),
    "squadshifts-amazon": ("SQuAD-shifts, Amazon product reviews", "CC BY 4.0", _SHIFTS),
    "covid-qa-early": ("COVID-QA, early release", "Apache-2.0", _COVID),
    "squad-train-pieces": ("SQuAD train split, pieces (with real unanswerable questions)", "CC BY-SA 4.0", _SQUAD),
    "tydiqa-goldp-en-train": ("TyDi QA GoldP, English train", "Apache-2.0 (passages CC BY-SA)", _TYDI),
}


def data_table(files: dict[str, int]) -> str:
    """The training data's rows (questions read for training, held-out articles left out), credited."""
    lines = ["| data | questions trained on | licence | source |", "|---|---|---|---|"]
    if not files:
        lines.append("| not logged: write the card again with `--data` | | | |")
    for stem, questions in sorted(files.items()):
        what, licence, source = KNOWN_DATA.get(stem, (stem, "see the file's source", "-"))
        lines.append(f"| {what} (`{stem}`) | {questions:,} | {licence} | {source} |")
    return "\n".join([*lines, ""])


def card_licence(files: dict[str, int]) -> str:
    """Share-alike data makes the weights share-alike too."""
    licences = [KNOWN_DATA.get(stem, ("", "", ""))[1] for stem in files]
    return "cc-by-sa-4.0" if any("BY-SA" in licence for licence in licences) else "cc-by-4.0"
