"""The study's protocol (issue 36): a TOML file written and committed before the run
(``benchmarks/protocols/fairness.toml``), run with ``imperceptible fairness --protocol FILE``.

The file holds the design in words and the numbers the run and its analysis use:

* ``[study]``: settings of ``imperceptible fairness`` (:class:`~.config.FairnessConfig`'s fields: the design, the
  arm set, ``dro_seeds`` = the number of worlds ``n``, ``models`` = ``K``, the seed ...). They override the config's;
  a setting given on the command line (or as a keyword) with another value is refused, naming both;
* ``[arms.NAME]``: each family's attack as this version runs it (``attack`` and any of its parameters), checked
  against the code: a protocol describes the attacks as they are run, or the run is refused;
* ``[primary]`` ``alpha``, ``[equivalence]`` ``margin``, ``[size]`` ``permutations`` and ``seed``: the analysis'
  numbers (:class:`ProtocolAnalysis`); the other keys (the tests named in words, the derivations, the verdict
  rule) are a record for readers and are not read.

The run directory's fingerprint holds the file's sha256; a resumed run whose protocol file changed is refused
(:func:`check_resume`). The verdict rule (:func:`verdict`) is the protocol's, word for word.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli (a dependency there)
    import tomli as tomllib

from ...errors import (
    MSG_FAIRNESS_PROTOCOL_ARM_SETTING,
    MSG_FAIRNESS_PROTOCOL_ARMS,
    MSG_FAIRNESS_PROTOCOL_CHANGED,
    MSG_FAIRNESS_PROTOCOL_CONFLICT,
    MSG_FAIRNESS_PROTOCOL_UNKNOWN_SETTING,
    MSG_FAIRNESS_PROTOCOL_UNREADABLE,
    MSG_FAIRNESS_PROTOCOL_VALUE,
    FairnessProtocolError,
)
from ...validation import is_finite_number
from .config import FairnessConfig

#: the paper's Table 5: DRO with Human_Perc_OT against DRO with PGD-L2, t = 3.852 between two families of 50 models
PAPER_T, PAPER_K = 3.852, 50
#: the per-model slope SD within each family of the last powered run (``benchmarks/results/fairness_powered.json``,
#: ``arms.FAMILY.beta_sd``: 26 models over 13 worlds each), pooled over the primary pair for the margin
POWERED_SD = {"human-perc-ot": 0.005806698924181724, "pgd-l2": 0.00499383739499293}
#: the SD of the powered run's world-level paired differences, human-perc-ot minus pgd-l2 (13 worlds, K = 2)
POWERED_PAIRED_SD = 0.004350925967249252


def paper_d() -> float:
    """The paper's effect as a standardised difference in units of the per-model slope SD:
    ``d = t * sqrt(1/50 + 1/50)`` = 0.770."""
    return PAPER_T * math.sqrt(2 / PAPER_K)


def pooled_sd(sds=None) -> float:
    """The pooled within-family per-model slope SD (equal family sizes: the root mean square of the SDs)."""
    v = list((sds or POWERED_SD).values())
    return math.sqrt(sum(s * s for s in v) / len(v))


def equivalence_margin(sds=None) -> float:
    """``delta = d * pooled SD``: the paper's effect in our slope units (about 0.0042)."""
    return paper_d() * pooled_sd(sds)


def worlds_for_power(delta: float, sd: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """The smallest number of worlds with which the one-sided paired t-test at ``alpha`` has ``power`` against a
    mean difference ``delta`` when the world-level differences have SD ``sd`` (noncentral t, statsmodels'
    ``TTestPower``)."""
    from statsmodels.stats.power import TTestPower

    n = TTestPower().solve_power(effect_size=delta / sd, alpha=alpha, power=power, alternative="larger")
    return int(math.ceil(n))


@dataclass(frozen=True)
class ProtocolAnalysis:
    """The analysis' numbers (the defaults are the committed protocol's): the tests' level ``alpha``, the
    equivalence ``margin`` (:func:`equivalence_margin`), the A/A ``permutations`` and their ``seed``."""

    alpha: float = 0.05
    margin: float = field(default_factory=equivalence_margin)
    permutations: int = 1000
    seed: int = 0


#: where each analysis number sits in the file: (table, key) -> field
ANALYSIS_KEYS = {("primary", "alpha"): "alpha", ("equivalence", "margin"): "margin",
                 ("size", "permutations"): "permutations", ("size", "seed"): "seed"}


@dataclass(frozen=True)
class Protocol:
    """A loaded protocol file: its path and sha256, its ``[study]`` settings, its ``[arms]`` and the analysis."""

    path: Path
    sha256: str
    study: dict
    arms: dict
    analysis: ProtocolAnalysis
    raw: dict

    def fingerprint(self) -> dict:
        """What the run directory's fingerprint holds of it."""
        return {"sha256": self.sha256}

    def record(self) -> dict:
        return {"file": str(self.path), "sha256": self.sha256, "study": self.study,
                "analysis": dataclasses.asdict(self.analysis)}


def _value_error(path, table, name, expected, got):
    return FairnessProtocolError.of(MSG_FAIRNESS_PROTOCOL_VALUE, path=path, table=table, name=name, expected=expected,
                                    got=got)


def _analysis(path: Path, raw: dict) -> ProtocolAnalysis:
    kw: dict[str, Any] = {}  # the fields read, each checked below
    for (table, key), name in ANALYSIS_KEYS.items():
        if key in raw.get(table, {}):
            v = raw[table][key]
            integer = name in ("permutations", "seed")
            ok = isinstance(v, int) if integer else is_finite_number(v)
            ok = ok and not isinstance(v, bool) and (v >= 0 if name == "seed" else v > 0)
            ok = ok and (name != "alpha" or v < 0.5) and (name != "permutations" or v >= 1)
            if not ok:
                raise _value_error(path, table, key, "a non-negative integer" if name == "seed" else "a positive "
                                   + ("integer" if integer else "finite number" + (" below 0.5" if name == "alpha" else "")), v)
            kw[name] = v if integer else float(v)
    return ProtocolAnalysis(**kw)


def _study(path: Path, study: dict) -> dict:
    fields = {f.name: f for f in dataclasses.fields(FairnessConfig)}
    out = {}
    for name, v in study.items():
        if name not in fields:
            raise FairnessProtocolError.of(MSG_FAIRNESS_PROTOCOL_UNKNOWN_SETTING, path=path, name=name,
                                           choices=", ".join(fields))
        meta = fields[name].metadata
        kind, choices = meta.get("type") or str, meta.get("choices")
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
            raise _value_error(path, "study", name, f"a {kind.__name__}", v)
        if choices and v not in choices:
            raise _value_error(path, "study", name, "one of " + ", ".join(choices), v)
        out[name] = v
    return out


def load_protocol(path: str | Path) -> Protocol:
    """Read and check a protocol file (see the module docstring)."""
    path = Path(path)
    try:
        data = path.read_bytes()
        raw = tomllib.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise FairnessProtocolError.of(MSG_FAIRNESS_PROTOCOL_UNREADABLE, path=path,
                                       error=f"{type(e).__name__}: {e}") from None
    for table in ("study", "arms"):
        if not isinstance(raw.get(table, {}), dict):
            raise _value_error(path, table, "(table)", "a TOML table", raw[table])
    return Protocol(path=path, sha256=hashlib.sha256(data).hexdigest(), study=_study(path, raw.get("study", {})),
                    arms=raw.get("arms", {}), analysis=_analysis(path, raw), raw=raw)


def given_settings(cfg: FairnessConfig) -> set[str]:
    """The settings of ``cfg`` that differ from their defaults: on the command line, those given (a value equal
    to its default cannot be told from one left out)."""
    default = FairnessConfig()
    return {f.name for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(default, f.name)}


def apply_protocol(cfg: FairnessConfig, protocol: Protocol, given: set[str]) -> FairnessConfig:
    """``cfg`` with the protocol's ``[study]`` settings; a setting in ``given`` whose value differs from the
    protocol's is refused, naming both."""
    for name, v in protocol.study.items():
        if name in given and getattr(cfg, name) != v:
            raise FairnessProtocolError.of(MSG_FAIRNESS_PROTOCOL_CONFLICT, name="--" + name.replace("_", "-"),
                                           got=getattr(cfg, name), expected=v, path=protocol.path)
    return dataclasses.replace(cfg, **protocol.study)


def check_arms(protocol: Protocol, cfg: FairnessConfig, families: dict) -> None:
    """The protocol's ``[arms]`` must name this arm set's families, each with the attack and settings run."""
    if not protocol.arms:
        return
    declared = {a for a in protocol.arms if a != "erm"}
    if declared != set(families):
        raise FairnessProtocolError.of(MSG_FAIRNESS_PROTOCOL_ARMS, path=protocol.path, arms=cfg.arms,
                                       expected=", ".join(families), got=", ".join(sorted(declared)))
    for arm, spec in protocol.arms.items():
        if arm == "erm":
            continue
        attack = families[arm]
        run = {"attack": attack.name, **attack.params()}
        for key, v in spec.items():
            if key in ("description", "role"):
                continue
            if key not in run or not _same(run[key], v):
                raise FairnessProtocolError.of(MSG_FAIRNESS_PROTOCOL_ARM_SETTING, path=protocol.path, arm=arm, name=key,
                                               got=v, expected=run.get(key, "(no such parameter)"))


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return a == b


def check_resume(out: str | Path, protocol: Protocol | None, overwrite: bool) -> None:
    """Refuse, in one line, to resume a run directory started under another protocol file (or without one, when
    one is given now, or the other way round); ``--overwrite`` starts again and is not refused here."""
    fp = Path(out) / "fingerprint.json"
    if overwrite or not fp.is_file():
        return
    try:
        old = (json.loads(fp.read_text()).get("protocol") or {}).get("sha256")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return  # the run directory's own checks report a damaged fingerprint
    new = protocol.sha256 if protocol is not None else None
    if old != new:
        raise FairnessProtocolError.of(MSG_FAIRNESS_PROTOCOL_CHANGED, path=out,
                                       expected=old or "none (started without --protocol)",
                                       file=protocol.path if protocol is not None else "no --protocol", got=new or "none")


__all__ = ["ANALYSIS_KEYS", "PAPER_K", "PAPER_T", "POWERED_PAIRED_SD", "POWERED_SD", "Protocol", "ProtocolAnalysis",
           "apply_protocol", "check_arms", "check_resume", "equivalence_margin", "given_settings", "load_protocol",
           "paper_d", "pooled_sd", "worlds_for_power"]
