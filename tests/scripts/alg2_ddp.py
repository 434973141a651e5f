"""Algorithm 2 on 2 CPU processes (gloo, Fabric's launcher re-runs this file for rank 1) with a
dropout-free network; rank 0 saves D and the model to the folder given as argv[1]."""

import copy
import sys
from pathlib import Path

import torch

from imperceptible.attacks import PGDL2
from imperceptible.data import load
from imperceptible.dro import KMeansCache, build_adversarial_dataset
from imperceptible.engine import EngineConfig, make_engine
from imperceptible.fileio import atomic_save
from imperceptible.models import ImageClassifier, cnn_b


def problem():
    d = load("mnist", split="train", limit=64)
    torch.manual_seed(0)
    net = cnn_b()  # no dropout: data-parallel and one-process steps are then the same steps
    model = ImageClassifier(net, mean=(0.0,), std=(1.0,), num_classes=10, input_size=None)
    return model.eval(), d.images, d.labels, PGDL2(eps=2.0, alpha=0.4, steps=5)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    engine = make_engine(EngineConfig(devices=int(sys.argv[2]) if len(sys.argv) > 2 else 2))
    model, x, y, attack = problem()
    data, model = build_adversarial_dataset(copy.deepcopy(model), x, y, attack, epochs=2, batch_size=16, lr=0.05,
                                            cache=KMeansCache(x, y, random_state=0), engine=engine, progress=False)
    others = engine.all_gather_object(torch.cat([data.x.flatten(), data.weight]).sum().item())
    if engine.is_main:
        data.save(out / "D.pt")
        atomic_save({"model": model.net.state_dict(), "checksums": others}, out / "model.pt")
