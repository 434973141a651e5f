"""A benchmark protocol: the file, committed before the runs it governs, that fixes the splits, the models, the
budgets, every attack with its settings and their source, the tuning grids and rule, the judges, the statistics and
the decision rule (``benchmarks/protocols/minimal.toml``). ``bench minimal --protocol FILE --run NAME`` runs one of
its runs; the run directory's fingerprint holds the file's sha256, so a resumed run refuses a changed protocol.

Stages: ``tune`` runs every attack's grid on the run's tune images (the tune split only); the choice each attack's
rule makes is written into the protocol's ``[chosen]`` table (a new commit, before the test run); ``test`` runs the
chosen settings once on the test images.

Examples:
    >>> from imperceptible.experiments.protocol import budget_settings
    >>> budget_settings({"key": "max_iterations", "factor": 2}, 200)
    {'max_iterations': 400}
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli (a dependency there)
    import tomli as tomllib

from ..attacks import get as get_attack
from ..attacks.base import Attack
from ..attacks.polish import ROUND_PASSES, ROUNDS
from ..errors import MSG_PROTOCOL_FIELD, MSG_PROTOCOL_NOT_CHOSEN, MSG_PROTOCOL_UNREADABLE, ParameterError, UnknownNameError
from ..validation import check_choice

ROLES = ("ours", "variant", "peer", "ablation", "reference")
#: the roles that are tuned (each its own grid)
TUNED = ("ours", "variant", "peer")
STAGES = ("tune", "test")


@dataclass(frozen=True)
class AttackSpec:
    """One attack of the protocol: its registry ``attack`` name and ``settings`` (with their ``source``), its role,
    how the budget sets it (``budget``: ``{key, factor}``, or none where the counter's guard alone enforces it), its
    tuning grid (``tune``: ``{key, values}``) and 8-bit ``modes`` to choose from, whether its polished twin runs, and
    where it runs: every run, or only the runs of ``only_budgets`` and only those named in ``only_runs``."""

    name: str
    attack: str
    role: str
    settings: dict
    source: str
    budget: dict | None = None
    tune: dict | None = None
    modes: tuple[str, ...] = ()
    polish: bool = False
    only_budgets: tuple[int, ...] = ()
    only_runs: tuple[str, ...] = ()

    def runs_on(self, run: RunSpec) -> bool:
        """Whether this attack is part of ``run`` (both restrictions hold where given)."""
        return (not self.only_budgets or run.budget in self.only_budgets) and (
            not self.only_runs or run.name in self.only_runs)


@dataclass(frozen=True)
class RunSpec:
    """One run: a split of a dataset, a model, a pass budget, how many test images, and the judges valid on it."""

    name: str
    split: str
    model: str
    budget: int
    n_test: int
    judges: tuple[str, ...]
    anytime_judges: tuple[str, ...] = ()
    anytime_checkpoints: tuple[int, ...] = ()


@dataclass(frozen=True)
class Protocol:
    """A parsed protocol file (see the module docstring)."""

    path: Path
    sha256: str
    raw: dict

    @property
    def name(self) -> str:
        return self.raw["protocol"]["name"]

    def run(self, name: str) -> RunSpec:
        runs = self.raw.get("runs", {})
        check_choice("protocol run", name, list(runs))
        r = runs[name]
        return RunSpec(name, _get(r, "split", name), _get(r, "model", name), int(_get(r, "budget", name)),
                       int(_get(r, "n_test", name)), tuple(_get(r, "judges", name)), tuple(r.get("anytime_judges", ())),
                       tuple(int(c) for c in r.get("anytime_checkpoints", ())))

    def split(self, run: RunSpec) -> dict:
        return self.raw["splits"][run.split]

    def ids(self, run: RunSpec, stage: str) -> list[str]:
        """The images of ``run`` for ``stage``: the first ``tune_used`` tune ids, or the first ``n_test`` test ids."""
        check_choice("stage", stage, STAGES)
        sp = self.split(run)
        return list(sp["tune"][: int(sp["tune_used"])]) if stage == "tune" else list(sp["test"][: run.n_test])

    def specs(self, run: RunSpec) -> list[AttackSpec]:
        out = []
        for name, a in self.raw["attacks"].items():
            spec = AttackSpec(name=name, attack=_get(a, "attack", name), role=_get(a, "role", name),
                              settings=dict(a.get("settings", {})), source=_get(a, "source", name),
                              budget=a.get("budget"), tune=a.get("tune"), modes=tuple(a.get("modes", ())),
                              polish=bool(a.get("polish", False)), only_budgets=tuple(a.get("only_budgets", ())),
                              only_runs=tuple(a.get("only_runs", ())))
            if spec.role not in ROLES:
                raise ParameterError.of(MSG_PROTOCOL_FIELD, path=self.path, field=f"attacks.{name}.role",
                                        expected=f"one of {', '.join(ROLES)}", got=spec.role)
            unknown = [r for r in spec.only_runs if r not in self.raw.get("runs", {})]
            if unknown:
                raise ParameterError.of(MSG_PROTOCOL_FIELD, path=self.path, field=f"attacks.{name}.only_runs",
                                        expected=f"names of its [runs] ({', '.join(self.raw.get('runs', {}))})",
                                        got=", ".join(unknown))
            if spec.runs_on(run):
                out.append(spec)
        return out

    def chosen(self, run: RunSpec, spec: AttackSpec) -> dict:
        """The settings the tune stage chose for ``spec`` on ``run`` (``[chosen.RUN.ATTACK]``); an attack with a grid
        and no choice is refused (the test stage runs only what was chosen)."""
        got = self.raw.get("chosen", {}).get(run.name, {}).get(spec.name, None)
        if got is None and (spec.tune or spec.modes):
            raise UnknownNameError.of(MSG_PROTOCOL_NOT_CHOSEN, path=self.path, run=run.name, attack=spec.name)
        return dict(got or {})

    def attacks(self, run: RunSpec, stage: str) -> dict[str, Attack]:
        """The attacks of ``stage`` on ``run``, by method name: ``tune``, every grid point of every attack with a grid
        (ablations and references have none: they take their base attack's choice); ``test``, every attack with its
        chosen settings. Each gets the run's budget as its counter's guard (``max_passes``)."""
        out: dict[str, Attack] = {}
        for spec in self.specs(run):
            if stage == "tune":
                if spec.role not in TUNED or not (spec.tune or spec.modes):
                    continue  # an attack without a grid takes its base attack's choice
                for label, extra in grid(spec):
                    out[f"{spec.name}|{label}" if label else spec.name] = self.build(spec, run, extra)
            else:
                out[spec.name] = self.build_chosen(run, spec)
        return out

    def build_chosen(self, run: RunSpec, spec: AttackSpec) -> Attack:
        """``spec`` as the test stage runs it: with its chosen settings, or, for an attack without a grid (an
        ablation, a reference), its base attack's fixed settings and choice, less every setting ``spec`` names itself
        (an ablation's ``geometry = 0`` stays 0 where ours' grid chose a geometry)."""
        base = self._base_spec(run, spec)
        if base is None or base is spec:
            return self.build(spec, run, self.chosen(run, base) if base else {})
        taken = {**base.settings, **self.chosen(run, base)}
        return self.build(spec, run, {k: v for k, v in taken.items() if k not in spec.settings})

    def _base_spec(self, run: RunSpec, spec: AttackSpec) -> AttackSpec | None:
        """The attack whose tuning choice ``spec`` takes: itself if it has a grid, else the ``ours``/``peer`` attack of
        the same registry name with a grid (an ablation takes ours' choice)."""
        if spec.tune or spec.modes:
            return spec
        for s in self.specs(run):
            if s.attack == spec.attack and s.role in ("ours", "peer") and (s.tune or s.modes) and s is not spec \
                    and s.settings.get("cost") == spec.settings.get("cost"):
                return s
        return None

    def build(self, spec: AttackSpec, run: RunSpec, extra: dict) -> Attack:
        settings = {**spec.settings, **budget_settings(spec.budget, run.budget), **extra}
        atk = get_attack(spec.attack, **settings)
        atk.max_passes = run.budget
        return atk

    def polished(self, run: RunSpec) -> dict[str, str]:
        """``{polished method: its attack's method}`` for the attacks whose polished twin runs (test stage)."""
        return {f"{s.name}+polish": s.name for s in self.specs(run) if s.polish}

    def describe(self) -> dict:
        """What a run directory records of its protocol."""
        return {"name": self.name, "path": str(self.path), "sha256": self.sha256}


def _get(table: dict, key: str, where: str) -> Any:
    if key not in table:
        raise ParameterError.of(MSG_PROTOCOL_FIELD, path="protocol", field=f"{where}.{key}", expected="a value",
                                got="nothing")
    return table[key]


def budget_settings(budget: dict | None, passes: int) -> dict:
    """The settings a pass budget gives an attack: ``{key: factor x passes}`` (none without a budget key)."""
    if not budget:
        return {}
    return {budget["key"]: int(round(float(budget.get("factor", 1)) * passes))}


def grid(spec: AttackSpec) -> list[tuple[str, dict]]:
    """The tune stage's grid of ``spec``: its modes at its default settings, then its tuning values in each mode
    (the default value once per mode), as ``(label, settings)``."""
    modes: list[str | None] = [*spec.modes] or [None]
    key = (spec.tune or {}).get("key")
    values = list((spec.tune or {}).get("values", [None]))
    out = []
    for m in modes:
        for v in values:
            extra = ({"mode": m} if m else {}) | ({key: v} if key and v is not None else {})
            label = ",".join(f"{k}={val}" for k, val in extra.items())
            out.append((label, extra))
    return out


#: the line above which a protocol's text is its digest: below it only the tune stage's ``[chosen]`` tables, appended
#: run by run after each tune stage (so appending one run's choices changes no other run's digest; a test run's chosen
#: settings are in its fingerprint through its attacks' parameters)
CHOSEN_MARKER = "# [chosen] tables below: the tune stage's choices, appended after its runs (outside the protocol's sha256)"


def governing_text(data: bytes) -> bytes:
    """The part of a protocol file that its sha256 covers: every byte above :data:`CHOSEN_MARKER` or the first
    ``[chosen`` table header, whichever comes first (the whole file when it has neither)."""
    cut = len(data)
    at = 0
    for line in data.splitlines(keepends=True):
        text = line.decode("utf-8", "replace").strip()
        if text == CHOSEN_MARKER or text.startswith("[chosen"):
            cut = at
            break
        at += len(line)
    return data[:cut]


def load_protocol(path: str | Path) -> Protocol:
    """Read and check a protocol file (TOML); its sha256 is that of :func:`governing_text` (everything but the
    ``[chosen]`` tables at its end, which may hold nothing else)."""
    p = Path(path)
    try:
        data = p.read_bytes()
        raw = tomllib.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ParameterError.of(MSG_PROTOCOL_UNREADABLE, path=p, error=e) from None
    head = governing_text(data)
    try:
        tail = tomllib.loads(data[len(head):].decode("utf-8"))
        head_raw = tomllib.loads(head.decode("utf-8"))
    except tomllib.TOMLDecodeError:  # the file reads whole: the cut fell inside a text, at a line starting '[chosen'
        line = head.count(b"\n") + 1
        raise ParameterError.of(MSG_PROTOCOL_FIELD, path=p, field=f"line {line}",
                                expected="no line starting with '[chosen' above the [chosen] tables (the digest ends at "
                                         "the first; reword the text)", got="one inside a text") from None
    # below the cut only [chosen] tables: the tail alone holds nothing else, and the head and the tail together are the
    # whole file (a key under the marker would otherwise join the table above it unseen by the digest)
    if set(tail) - {"chosen"} or "chosen" in head_raw or {**head_raw, **tail} != raw:
        extra = sorted(set(tail) - {"chosen"}) or ["chosen"]
        raise ParameterError.of(MSG_PROTOCOL_FIELD, path=p, field=extra[0],
                                expected="only [chosen] tables after the first of them (they are outside the sha256)",
                                got="another key or table there")
    for section in ("protocol", "splits", "runs", "attacks", "tuning", "statistics", "decision"):
        if section not in raw:
            raise ParameterError.of(MSG_PROTOCOL_FIELD, path=p, field=section, expected="a table", got="nothing")
    return Protocol(path=p, sha256=hashlib.sha256(head).hexdigest(), raw=raw)


def choose(scores: dict[str, float], spec: AttackSpec) -> tuple[str, dict]:
    """The tuning rule: the grid point with the highest score (the protocol's: mean optimality over the run's
    judges), ties to the earlier point of the grid (the authors' default comes first in every grid)."""
    best_label, best = None, float("-inf")
    for label, extra in grid(spec):
        key = f"{spec.name}|{label}" if label else spec.name
        v = scores.get(key)
        if v is not None and v > best:
            best_label, best = (label, extra), v
    return best_label if best_label is not None else ("", {})


def polish_passes() -> float:
    """The passes the polished twins' lattice stage takes (their attack's snapshot is taken that many passes before
    the budget)."""
    return ROUNDS * ROUND_PASSES


__all__ = ["ROLES", "STAGES", "TUNED", "AttackSpec", "Protocol", "RunSpec", "budget_settings", "choose", "grid", "load_protocol",
           "polish_passes"]
