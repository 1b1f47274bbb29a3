"""The suite registry: a suite name -> how to build its tasks. Adding a suite is one entry here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from bench.data.beir import BEIR_DATASETS, beir_task
from bench.protocol import DEFAULT_BEIR
from bench.data.task import DataError, RetrievalTask


@dataclass(frozen=True)
class SuiteOptions:
    datasets: tuple[str, ...] | None = None
    split: str | None = None
    langs: tuple[str, ...] | None = None
    settings: tuple[str, ...] | None = None
    corpus: Path | None = None


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    build: Callable[[SuiteOptions], list[RetrievalTask]]
    default_experiment: str
    # The options this suite reads (SuiteOptions fields, and k for top-k suites); others are refused.
    flags: frozenset[str] = frozenset()


def check_flags(name: str, given: set[str]) -> None:
    """DataError when an option is given that the suite would silently ignore."""
    suite = SUITES[name]
    ignored = sorted(given - suite.flags)
    if ignored:
        reads = ", ".join(f"--{f}" for f in sorted(suite.flags)) or "none of them"
        users = {flag: [s.name for s in SUITES.values() if flag in s.flags] for flag in ignored}
        where = "; ".join(f"--{f} applies to {', '.join(users[f]) or 'no suite'}" for f in ignored)
        raise DataError(f"{', '.join('--' + f for f in ignored)}: not read by the {name} suite (it reads {reads}); "
                        f"{where}")


def _beir(options: SuiteOptions) -> list[RetrievalTask]:
    names = options.datasets or DEFAULT_BEIR
    unknown = [n for n in names if n not in BEIR_DATASETS]
    if unknown:
        raise DataError(f"unknown BEIR dataset(s) {', '.join(unknown)}; known: {', '.join(sorted(BEIR_DATASETS))}")
    return [beir_task(name, options.split or "test") for name in names]


def _lareqa(*datasets: str) -> Callable[[SuiteOptions], list[RetrievalTask]]:
    def build(options: SuiteOptions) -> list[RetrievalTask]:
        from bench.data.lareqa import lareqa_tasks
        from bench.protocol import SETTINGS

        settings = options.settings or SETTINGS
        unknown = [s for s in settings if s not in SETTINGS]
        if unknown:
            raise DataError(f"unknown setting(s) {', '.join(unknown)}; LAReQA settings: {', '.join(SETTINGS)}")
        return [task for dataset in (options.datasets or datasets)
                for task in lareqa_tasks(dataset, settings=settings, langs=options.langs)]
    return build


def _tatoeba(options: SuiteOptions) -> list[RetrievalTask]:
    from bench.data.tatoeba import tatoeba_tasks

    return tatoeba_tasks(langs=options.langs)


def _miracl(options: SuiteOptions) -> list[RetrievalTask]:
    from bench.data.miracl import miracl_tasks

    return miracl_tasks(langs=options.langs, corpus_dir=options.corpus)


SUITES: dict[str, Suite] = {
    "beir": Suite("beir", "BEIR (default: scifact, nfcorpus, arguana; test split): nDCG@10, R@100, MAP@100, MRR@10",
                  _beir, "beir-baselines", frozenset({"datasets", "split", "k"})),
    "xquad-r": Suite("xquad-r", "XQuAD-R, 11 languages: mono / cross / multi; mAP, R@1, R@10, rank distance",
                     _lareqa("xquad-r"), "multilingual-baselines", frozenset({"langs", "settings"})),
    "mlqa-r": Suite("mlqa-r", "MLQA-R, 7 languages: mono / cross / multi; mAP, R@1, R@10, rank distance",
                    _lareqa("mlqa-r"), "multilingual-baselines", frozenset({"langs", "settings"})),
    "lareqa": Suite("lareqa", "XQuAD-R and MLQA-R together", _lareqa("xquad-r", "mlqa-r"), "multilingual-baselines",
                    frozenset({"datasets", "langs", "settings"})),
    "tatoeba": Suite("tatoeba", "Tatoeba bitext retrieval, each language <-> English: accuracy@1 both directions",
                     _tatoeba, "multilingual-baselines", frozenset({"langs"})),
    "miracl": Suite("miracl", "MIRACL dev (needs --corpus DIR; not in the offline mirror): nDCG@10, R@100",
                    _miracl, "multilingual-baselines", frozenset({"langs", "corpus", "k"})),
}


def suite_tasks(name: str, options: SuiteOptions) -> list[RetrievalTask]:
    if name not in SUITES:
        raise DataError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
    check_flags(name, {f.name for f in fields(options) if getattr(options, f.name) is not None})
    return SUITES[name].build(options)
