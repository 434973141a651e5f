"""What the attack experiments share: the dataset at the model's own image size, and the model."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import MAX_IMAGE_SIZE, check_int_option, option
from ..data import load as load_dataset
from ..data.registry import tags as dataset_tags
from ..engine import Engine
from ..errors import MSG_IMAGE_SIZE_FIXED, ParameterError
from ..models import get as get_model
from ..models import input_size
from ..models.layout import fast_layout_checked
from ..models.probe import probe_once
from ..validation import check_labels_below


@dataclass(frozen=True, kw_only=True)
class DataModelOptions:
    """The data and model options every benchmark shares (their one source; a benchmark's config extends it)."""

    dataset: str = option("imagenet-samples", "dataset (imagenet-compatible:PATH for the paper's images)")
    model: str = option("efficientnet-lite0", "model (any name of imperceptible info: timm:, robustbench:, ...)")
    weights: str | None = option(None, "a local weights file for the model (timm:, robustbench:, torchvision:)")
    limit: int | None = option(None, "first N images only (a later run with a larger N resumes and extends)",
                               type=int, fingerprint=False)
    image_size: int | None = option(None, "resize the images to this size (default: the model's own input size)",
                                    type=int)
    batch_size: int | None = option(None, "images per batch (default: the largest whose memory estimate fits the device; "
                                    "on the CPU at most the working set of 8 EfficientNet-Lite0 images (8 there, 256 "
                                    "MNIST digits), on a GPU at most 64)", type=int, fingerprint=False)

    def __post_init__(self) -> None:
        check_int_option("batch_size", self.batch_size, allow_none=True)
        check_int_option("limit", self.limit, allow_none=True)
        check_int_option("image_size", self.image_size, minimum=8, maximum=MAX_IMAGE_SIZE, allow_none=True)


def data_and_model(cfg, engine: Engine, *, progress: bool = True):
    """``(dataset, model)`` for a config with ``dataset``, ``model``, ``limit``, ``image_size`` and ``weights``: the
    images at ``--image-size``, else at the model's own input size (where the model says it before it is built;
    a dataset of fixed size, such as MNIST, keeps its own), the model on the engine's device."""
    size = cfg.image_size or input_size(cfg.model)
    ds = load_dataset(cfg.dataset, limit=cfg.limit, size=size)
    if cfg.image_size is not None and not dataset_tags(cfg.dataset).resized and min(ds.images.shape[-2:]) != cfg.image_size:
        # a dataset of fixed size ignores --image-size: refused rather than recorded while it did not run
        raise ParameterError.of(MSG_IMAGE_SIZE_FIXED, name=cfg.dataset, size=int(ds.images.shape[-1]), got=cfg.image_size)
    return ds, model_for(cfg.model, ds, engine, dataset=cfg.dataset, weights=getattr(cfg, "weights", None),
                         progress=progress)


def model_for(name: str, ds, engine: Engine, *, dataset: str, weights: str | None = None, progress: bool = True):
    """Model ``name`` for the images of ``ds`` on the engine's device, in that device's fast memory layout where the
    model runs the same in it (channels-last on the CPU: EfficientNet-Lite0's pass 1.2-1.35x faster, the MNIST CNNs'
    1.1-1.5x, by thread count; the same results within float32 reassociation; :mod:`~imperceptible.models.layout`):
    its labels checked against the model's classes, and the model probed once (recorded, so that the attacks do not
    probe it again)."""
    net = get_model(name, weights=weights, progress=progress and engine.is_main, data=ds).to(engine.device)
    k = getattr(net, "num_classes", None)
    if k is not None:
        check_labels_below(ds.labels, k, dataset=dataset, ids=ds.ids)
    probe_once(net, ds.images, ds.labels, name=name)
    return fast_layout_checked(net, ds.images[:2].to(engine.device), name=name)


__all__ = ["data_and_model", "model_for"]
