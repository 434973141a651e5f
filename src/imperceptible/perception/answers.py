"""The answers file a participant downloads, and the checks that refuse a wrong one.

Format (JSON)::

    {"format": "imperceptible-study-answers/1", "study": "<sha256 of the study definition>",
     "participant": "<what they typed, may be empty>", "started": "<ISO time>", "finished": "<ISO time>",
     "user_agent": "...", "viewport": [w, h],
     "answers": [{"trial": "t07", "choice": "a" | "b" | "yes" | "no", "rt_ms": 1234, "position": 0}, ...],
     "checksum": "<fnv1a32 hex of the canonical answer lines>"}

The page holds no answer key: a choice names the image (``a``: left/top, ``b``: right/bottom) or the yes/no
button, and only the study definition (kept by the researcher) says which image was modified. The checksum
(FNV-1a, 32 bits, computed by the page and here over ``study`` and one line ``trial|choice|rt_ms`` per answer)
catches an answers file edited by hand or truncated; it is an integrity check, not a signature.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import (
    MSG_ANSWERS_CHECKSUM,
    MSG_ANSWERS_CHOICE,
    MSG_ANSWERS_DUPLICATE,
    MSG_ANSWERS_FORMAT,
    MSG_ANSWERS_NOT_JSON,
    MSG_ANSWERS_OTHER_STUDY,
    MSG_ANSWERS_TRIAL,
    AnswersError,
)

FORMAT = "imperceptible-study-answers/1"


def fnv1a32(text: str) -> str:
    """FNV-1a, 32 bits, of the UTF-8 bytes of ``text``, as 8 hex digits (the page computes the same)."""
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def canonical_lines(study: str, answers: list[dict]) -> str:
    return study + "\n" + "\n".join(f"{a['trial']}|{a['choice']}|{int(a['rt_ms'])}" for a in answers)


def checksum(study: str, answers: list[dict]) -> str:
    return fnv1a32(canonical_lines(study, answers))


def read_answers(path: str | Path, *, study_hash: str, trials: dict[str, dict], design: str) -> dict:
    """Read and check one answers file against the study (see the module docstring for what is refused)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AnswersError.of(MSG_ANSWERS_NOT_JSON, path=path, error=f"{type(e).__name__}: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AnswersError.of(MSG_ANSWERS_FORMAT, path=path, expected=FORMAT, got=data.get("format") if isinstance(data,
                              dict) else type(data).__name__)
    if data.get("study") != study_hash:
        raise AnswersError.of(MSG_ANSWERS_OTHER_STUDY, path=path, expected=study_hash[:12], got=str(data.get("study"))[:12])
    answers = data.get("answers")
    if not isinstance(answers, list) or not all(isinstance(a, dict) and {"trial", "choice", "rt_ms"} <= set(a)
                                                  for a in answers):
        raise AnswersError.of(MSG_ANSWERS_FORMAT, path=path, expected=FORMAT, got="answers without trial/choice/rt_ms")
    try:
        expected = checksum(study_hash, answers)
    except (TypeError, ValueError):
        expected = "?"
    if data.get("checksum") != expected:
        raise AnswersError.of(MSG_ANSWERS_CHECKSUM, path=path, expected=expected, got=data.get("checksum"))
    choices = ("a", "b") if design == "2afc" else ("yes", "no")
    seen = set()
    for a in answers:
        if a["trial"] not in trials:
            raise AnswersError.of(MSG_ANSWERS_TRIAL, path=path, trial=a["trial"])
        if a["choice"] not in choices:
            raise AnswersError.of(MSG_ANSWERS_CHOICE, path=path, choices=list(choices), trial=a["trial"], got=a["choice"])
        if a["trial"] in seen:
            raise AnswersError.of(MSG_ANSWERS_DUPLICATE, path=path, trial=a["trial"])
        seen.add(a["trial"])
    return data


__all__ = ["AnswersError", "FORMAT", "canonical_lines", "checksum", "fnv1a32", "read_answers"]
