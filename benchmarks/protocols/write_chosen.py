"""Append the tune stage's choices to the protocol (its ``[chosen]`` tables), from the ``tuning.json`` of finished tune
runs; then commit the file before the test stage. A run already in ``[chosen]`` is refused, not overwritten.

    python benchmarks/protocols/write_chosen.py benchmarks/protocols/minimal.toml runs/protocol/tune-effnet-200 ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import tomllib

from imperceptible.experiments.protocol import CHOSEN_MARKER, load_protocol


def toml_value(v) -> str:
    return json.dumps(v) if isinstance(v, str) else repr(v).replace("True", "true").replace("False", "false")


def chosen_tables(run: str, tuning: dict) -> str:
    out = []
    for attack, c in tuning["chosen"].items():
        out.append(f'[chosen.{run}."{attack}"]  # {c["label"] or "its grid default"}; score '
                   f'{tuning["scores"].get(attack + ("|" + c["label"] if c["label"] else ""))}')
        out += [f"{k} = {toml_value(v)}" for k, v in c["settings"].items()]
        out.append("")
    return "\n".join(out)


def main(protocol: str, runs: list[str]) -> None:
    path = Path(protocol)
    before = load_protocol(path).sha256
    have = tomllib.loads(path.read_text()).get("chosen", {})
    text = []
    for d in runs:
        cfg = json.loads((Path(d) / "config.json").read_text())
        run = cfg["protocol_run"]
        if run in have:
            raise SystemExit(f"{run}: already chosen in {protocol}")
        if cfg["stage"] != "tune":
            raise SystemExit(f"{d}: not a tune stage run")
        text.append(f"# run {run}: from {d} (protocol sha256 {cfg['protocol']['sha256'][:12]} at the tune stage)\n"
                    + chosen_tables(run, json.loads((Path(d) / "tuning.json").read_text())))
    with path.open("a") as f:
        if CHOSEN_MARKER.encode() not in path.read_bytes():
            f.write(CHOSEN_MARKER + "\n")
        f.write("\n".join(text))
    if load_protocol(path).sha256 != before:  # still valid, and the digest the tune runs recorded still holds
        raise SystemExit(f"{protocol}: its sha256 changed on appending the choices")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
