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
    old = path.read_bytes()
    have = tomllib.loads(old.decode("utf-8")).get("chosen", {})
    text = []
    for d in runs:
        cfg = json.loads((Path(d) / "config.json").read_text())
        run = cfg["protocol_run"]
        if run in have:
            raise SystemExit(f"{run}: already chosen in {protocol}")
        if cfg["stage"] != "tune":
            raise SystemExit(f"{d}: not a tune stage run")
        if cfg["protocol"]["sha256"] != before:
            raise SystemExit(f"{d}: tuned under another protocol (sha256 {cfg['protocol']['sha256'][:12]}, the file's "
                             f"is {before[:12]})")
        text.append(f"# run {run}: from {d} (protocol sha256 {cfg['protocol']['sha256'][:12]} at the tune stage)\n"
                    + chosen_tables(run, json.loads((Path(d) / "tuning.json").read_text())))
    new = old if old.endswith(b"\n") or not old else old + b"\n"
    if CHOSEN_MARKER not in (line.strip() for line in new.decode("utf-8").splitlines()):
        new += (CHOSEN_MARKER + "\n").encode()
    new += "\n".join(text).encode()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(new)
    try:  # still valid, and the digest the tune runs recorded still holds; only then does the file change
        if load_protocol(tmp).sha256 != before:
            raise SystemExit(f"{protocol}: its sha256 would change on appending the choices; left unchanged")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
