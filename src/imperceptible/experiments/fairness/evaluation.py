"""A sampled model on its world's test split: accuracy, per-group accuracy and the GLS slope, the reliance on each
cue by intervention, and the outcomes beside the slope (:mod:`imperceptible.fairness.outcomes`)."""

from __future__ import annotations

import copy

import numpy as np
import torch

from ...data.geo_fashion import repaint
from ...data.grouped import GroupedSplits
from ...fairness import group_accuracy, slope_test
from ...fairness.outcomes import quintile_accuracy, worst_class, worst_cue_group, worst_group
from ...models.layout import fast_layout, in_fast_layout
from ...seeds import derive


def for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """The network :func:`predict` should be given: the model itself where it is already in its device's fast
    layout (the study's models are), else a copy in it (:func:`~imperceptible.models.layout.fast_layout`: on the
    CPU channels-last, the same classes, tested); the model is left as it was."""
    return model if in_fast_layout(model) else fast_layout(copy.deepcopy(model))


@torch.inference_mode()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """The predicted class of each image (in batches, on the model's device)."""
    dev = next(model.parameters()).device
    return torch.cat([model(x[i : i + batch_size].to(dev)).argmax(1).cpu()
                      for i in range(0, x.shape[0], batch_size)]).numpy()


def interventional_reliance(pred: np.ndarray, pred_repainted: np.ndarray) -> float:
    """The share of images whose prediction changes when only the cue is repainted (to another label's): 0 for a
    model that ignores the cue, 1 for one that reads only the cue. Unlike accuracy where the cue agrees minus where it
    misleads, it is not confounded with how often the cue agrees in the images' countries."""
    return float(np.mean(np.asarray(pred) != np.asarray(pred_repainted)))


def cue_reliances(model, test, pred: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """Interventional reliance on each cue of a geo-fashion test split (none for other data)."""
    out = {}
    for i, cue in enumerate(test.info.get("cues") or []):
        labels = np.asarray(cue["labels"])
        rng = np.random.RandomState(derive(seed, "repaint", i, bits=32))
        other = (labels + rng.randint(1, 10, len(labels))) % 10
        out[cue["name"]] = interventional_reliance(pred, predict(model, repaint(test, i, other)))
    return out


def outcomes(ok: np.ndarray, splits: GroupedSplits, *, min_count: int) -> dict:
    test = splits.test
    cues = test.info.get("cues") or []
    agrees = np.asarray(cues[-1]["agrees"]) if cues else None
    return {**quintile_accuracy(ok, test.groups, splits.covariates, min_count=min_count),
            "worst_group": worst_group(ok, test.groups, min_count=min_count)["shrunk"],
            "worst_class": worst_class(ok, test.labels.numpy()),
            "worst_cue_group": worst_cue_group(ok, test.labels.numpy(), agrees, min_count=min_count)
            if agrees is not None else None}


def evaluate(model, splits: GroupedSplits, *, min_count: int, seed: int = 0) -> dict:
    """Everything measured about one model (see the module docstring); ``correct`` is its per-image correctness
    as a string of 0 and 1 (the image-level logistic model uses it)."""
    test = splits.test
    model = for_inference(model)
    pred = predict(model, test.images)
    ok = pred == test.labels.numpy()
    table = group_accuracy(pred, test.labels.numpy(), test.groups)
    table.insert(1, "covariate", table["group"].map(splits.covariates).astype(float))
    return {"accuracy": float(ok.mean()), "slope": slope_test(table, min_count=min_count), "groups": table.to_dict("list"),
            "reliance": cue_reliances(model, test, pred, seed=seed), "outcomes": outcomes(ok, splits, min_count=min_count),
            "correct": "".join("1" if v else "0" for v in ok)}


__all__ = ["cue_reliances", "evaluate", "interventional_reliance", "outcomes", "predict"]
