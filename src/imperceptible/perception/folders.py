"""The folders the perception commands write, as contracts of the one rule for output folders
(:func:`imperceptible.runs.rundir.output_folder`):

* a **study folder** (``study make --out``): ``study.json`` (the definition, ``"format": "imperceptible-study/1"``)
  and ``index.html``; it may hold its own analysis and simulated answers, which ``--overwrite`` removes with it
  (answers to the old study are answers to another study); anything else - a participant's answers file among
  them - is refused, never deleted;
* an **analysis folder** (``study analyze --out``, default ``STUDY/analysis``): ``summary.json`` (with
  ``"format": "imperceptible-study-analysis/1"``), ``report.html``, ``detection.png``;
* a **simulated-answers folder** (``study simulate --out``): ``answers-simulated-NN.json`` files, each an answers
  file whose participant is ``simulated-NN``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import MSG_STUDY_EXISTS, StudyError
from ..runs.rundir import Contract
from .answers import FORMAT as ANSWERS_FORMAT

STUDY_FORMAT = "imperceptible-study/1"
ANALYSIS_FORMAT = "imperceptible-study-analysis/1"
SIMULATED_PATTERN = "answers-simulated-*.json"
#: the keys that mark an analysis summary written before it carried its format
ANALYSIS_KEYS = ("design", "participants", "study", "catch_rule")


def _json(path: Path):
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def is_study(path: Path) -> bool:
    d = _json(Path(path) / "study.json")
    return isinstance(d, dict) and d.get("format") == STUDY_FORMAT


def is_analysis(path: Path) -> bool:
    d = _json(Path(path) / "summary.json")
    return isinstance(d, dict) and (d.get("format") == ANALYSIS_FORMAT or all(k in d for k in ANALYSIS_KEYS))


def is_simulated_answers(path: Path) -> bool:
    """An answers file written by ``study simulate`` (its participant is ``simulated-...``)."""
    d = _json(Path(path))
    return isinstance(d, dict) and d.get("format") == ANSWERS_FORMAT and str(d.get("participant", "")).startswith(
        "simulated-")


def is_simulation(path: Path) -> bool:
    """A folder of simulated answers: at least one, and every file of their pattern one of them."""
    files = sorted(Path(path).glob(SIMULATED_PATTERN))
    return bool(files) and all(is_simulated_answers(p) for p in files)


ANALYSIS = Contract(kind="study analysis folder", files=("summary.json", "report.html", "detection.png"),
                    marker=is_analysis, error=StudyError, exists=None)
SIMULATED = Contract(kind="simulated answers folder", patterns=(SIMULATED_PATTERN,), marker=is_simulation,
                     error=StudyError, exists=None)
STUDY = Contract(kind="study folder", files=("study.json", "index.html"), nested=(ANALYSIS, SIMULATED),
                 marker=is_study, error=StudyError, exists=MSG_STUDY_EXISTS)

__all__ = ["ANALYSIS", "ANALYSIS_FORMAT", "SIMULATED", "SIMULATED_PATTERN", "STUDY", "STUDY_FORMAT", "is_analysis",
           "is_simulated_answers", "is_simulation", "is_study"]
