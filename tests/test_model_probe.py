"""The model probe everywhere (issue 33, item 3): the Python API probes a model once, as the command line does;
outputs that look like probabilities (a softmax or a sigmoid) and randomness left in the model are refused; a clean
accuracy of 0 is warned about however few the images."""

from __future__ import annotations

import logging

import pytest
import torch

from imperceptible import attacks as A
from imperceptible.validation import MSG_NONDETERMINISTIC, MSG_PROBABILITIES, MSG_ZERO_ACCURACY, ModelOutputError


class _Wrapped(torch.nn.Module):
    def __init__(self, net, head=None, dropout: bool = False) -> None:
        super().__init__()
        self.net, self.head, self.dropout, self.calls = net, head, dropout, 0

    def forward(self, x):
        self.calls += 1
        z = self.net(x)
        if self.dropout:
            z = torch.nn.functional.dropout(z, 0.5, training=True)
        return self.head(z) if self.head is not None else z


@pytest.mark.parametrize("head,message", [(torch.nn.Softmax(1), MSG_PROBABILITIES), (torch.nn.Sigmoid(), MSG_PROBABILITIES),
                                          (None, MSG_NONDETERMINISTIC)])
def test_the_python_api_refuses_probabilities_and_random_outputs(mnist_cnn, mnist_correct, head, message):
    model = _Wrapped(mnist_cnn, head, dropout=head is None).eval()
    x, y = mnist_correct[0][:4], mnist_correct[1][:4]
    with pytest.raises(ModelOutputError) as e:
        A.PGDL2(steps=2)(model, x, y)
    prefix = message.split("{name}")[1].split("{")[0]
    assert prefix in str(e.value)


def test_the_probe_runs_once_per_model_and_warns_of_zero_accuracy_on_three_images(mnist_cnn, mnist_correct, caplog):
    """A model whose classes are in another order (its logits negated: the least likely class wins) classifies none of
    3 digits: warned (version 0.3 said nothing below 4 images); the second attack call on the same model does not
    probe it again."""
    x, y = mnist_correct[0][:3], mnist_correct[1][:3]
    scaled = _Wrapped(mnist_cnn, _Times(-1.0)).eval()
    with caplog.at_level(logging.WARNING):
        A.PGDL2(steps=1)(scaled, x, y)
    assert not bool((scaled(x).argmax(1) == y).any())
    assert any(MSG_ZERO_ACCURACY.format(name="_Wrapped", n=3) in r.message for r in caplog.records)
    before = scaled.calls
    A.PGDL2(steps=1)(scaled, x, y)
    assert scaled.calls - before == 2  # the clean and the returned images' looks (all misclassified): no second probe


class _Times(torch.nn.Module):
    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k

    def forward(self, x):
        return x * self.k


def test_an_experiment_warns_of_zero_accuracy_once(tmp_path, caplog):
    """`imperceptible attack` on digits its model gets all wrong (labels shifted by one in a folder dataset): the
    warning is logged once, not once by the experiment's probe and again by the attack's (version 0.4 printed it
    twice: the experiment probed without recording it)."""
    from PIL import Image

    from imperceptible.cli.main import main
    from imperceptible.data import load

    ds = load("mnist-test20", limit=4)
    folder = tmp_path / "digits"
    folder.mkdir()
    lines = ["file,label"]
    for i in range(4):
        Image.fromarray(ds.images[i, 0].mul(255).round().byte().numpy()).save(folder / f"{i}.png")
        lines.append(f"{i}.png,{(int(ds.labels[i]) + 1) % 10}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        main(["attack", "--dataset", f"folder:{folder}", "--model", "mnist-cnn", "--attack", "pgd-l2", "--out",
              str(tmp_path / "run"), "--quiet", "--no-learned"])
    hits = [r for r in caplog.records if "classifies none of the first" in r.getMessage()]
    assert len(hits) == 1, [r.getMessage() for r in hits]
