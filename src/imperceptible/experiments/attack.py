"""``imperceptible attack``: one attack over a dataset into a run directory (resumable)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..attacks import get as get_attack
from ..attacks.polish import Polished
from ..attacks.registry import label
from ..config import check_number_option, identity, option, record
from ..engine import Engine
from ..errors import MSG_PARAM_FORMAT, MSG_PARAM_REPEATED, MSG_PARAM_TWICE, ParameterError
from ..evaluate.evaluator import Evaluator
from ..runs.attack_report import make_report
from ..runs.attack_run import open_attack_run, run_attack
from ..runs.report import Html, esc
from ..runs.summary import summarize
from .common import DataModelOptions, data_and_model

DEFENSES_NOTE = {"jpeg": "Pillow JPEG round trip at quality 90/75/50 (4:2:0)",
                 "bits": "round(x (2^b - 1)) / (2^b - 1), b = 6/5/4 (ART FeatureSqueezing)"}
SUCCESS_RULE = "label correct -> incorrect on the 8-bit image / correctly classified images"
DISTANCES_OVER = "successfully attacked, correctly classified images"


@dataclass(frozen=True, kw_only=True)
class AttackConfig(DataModelOptions):
    """``imperceptible attack``'s settings."""

    dataset: str = option(help="dataset name (see imperceptible info): mnist, imagenet-samples, folder:PATH, ...")
    model: str = option(help="model name: efficientnet-lite0, mnist-cnn, timm:NAME, robustbench:DATASET/THREAT/NAME, "
                        "torchvision:NAME, torchscript:PATH, ...")
    attack: str = option(help="attack name: human-perc-ot, pgd-l2, perc-al, ppgd, lpa, ssim-onestep, alma, ddn ...")
    cost: str | None = option(None, "perceptual cost of human-perc-ot (default ssim; see imperceptible info)")
    confidence: float | None = option(None, "margin a a sample must exceed (default 0)", type=float)
    params: tuple[str, ...] = option((), "attack hyper-parameter KEY=VALUE, repeatable (e.g. --param steps=50 "
                                     "--param preset=paper); an unknown key lists the valid ones",
                                     flag="--param", action="append", metavar="KEY=VALUE")
    learned: bool = option(True, "LPIPS and DISTS columns (their ImageNet backbones are fetched on first use)",
                           type=bool)
    polish: bool = option(False, "polish the attack's output: the lattice stage (imperceptible.polish, 1-SSIM cost) "
                          "lowers its perceptual cost on the 8-bit grid while keeping it adversarial (12 more passes)",
                          type=bool)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number_option("confidence", self.confidence, inclusive=True, allow_none=True)

    def options(self) -> dict:
        """The attack's keyword options: the ``--param`` pairs (text, parsed by the attack's annotations when it is
        built) plus ``--cost`` and ``--confidence``; an option given both ways is refused naming both."""
        opts = parse_params(self.params)
        for key, value in (("cost", self.cost), ("confidence", self.confidence)):
            if value is None:
                continue
            if key in opts:
                raise ParameterError.of(MSG_PARAM_TWICE, name=key, got=opts[key], flag=value)
            opts[key] = value
        return opts


def parse_params(pairs) -> dict:
    """``KEY=VALUE`` pairs as ``{key: "VALUE"}`` (keys with ``-`` spelled ``_``); the values stay text, parsed by the
    attack's own annotations (:func:`imperceptible.attacks.get`); a key given twice is refused."""
    out: dict[str, str] = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k.strip():
            raise ParameterError.of(MSG_PARAM_FORMAT, got=p)
        key = k.strip().replace("-", "_")
        if key in out:
            raise ParameterError.of(MSG_PARAM_REPEATED, name=key, got=v.strip(), first=out[key])
        out[key] = v.strip()
    return out


def attack(config: AttackConfig | None = None, *, out: str | Path, overwrite: bool = False, progress: bool = True,
           engine: Engine | None = None, **settings) -> dict | None:
    """Run one attack over a dataset into the run directory ``out``; returns the summary (rank 0; other
    ranks ``None``). ``settings`` are :class:`AttackConfig` fields when no ``config`` is given."""
    cfg = config or AttackConfig(**settings)
    engine = engine or Engine()
    atk = get_attack(cfg.attack, **cfg.options())
    if cfg.polish:
        atk = Polished(atk)
    ds, net = data_and_model(cfg, engine, progress=progress)
    method = label(atk)
    evaluator = Evaluator.for_images(ds.images, learned=cfg.learned)
    run = open_attack_run(out, job="attack", config=identity(cfg), ds=ds, model=net, methods={method: atk},
                          evaluator=evaluator, engine=engine, overwrite=overwrite)
    if engine.is_main:
        run.write_config({"job": "attack", **record(cfg), "method": method, "params": atk.params(),
                          "n_images": len(ds), "engine": engine.describe()})
    run_attack(run, method, atk, net, ds, evaluator, batch_size=cfg.batch_size, progress=progress, engine=engine)
    if not engine.is_main:
        return None
    summary = summarize(run.store, [method], ids=ds.ids, unavailable=evaluator.unavailable,
                        optimises={method: atk.optimises()})
    summary.update(dataset=cfg.dataset, model=cfg.model, n_images=len(ds), defenses=DEFENSES_NOTE,
                   success_rule=SUCCESS_RULE, distances_over=DISTANCES_OVER, model_info=getattr(net, "describe", dict)())
    run.write_json("summary.json", summary)
    make_report(run, ds, summary, [method], n_grids=2, title=f"imperceptible: {method}",
                intro=Html(f"<code>{esc(method)}</code> on <code>{esc(cfg.dataset)}</code> with "
                           f"<code>{esc(cfg.model)}</code>."))
    return summary


__all__ = ["AttackConfig", "attack", "parse_params"]
