import math

import pytest
import torch

from imperceptible import validation as V


def test_rank_error_message_word_for_word():
    x = torch.rand(3, 8, 8)
    with pytest.raises(V.ShapeError) as e:
        V.check_images(x)
    assert str(e.value) == V.MSG_RANK.format(name="x", expected=4, layout="N, C, H, W", got=3, shape=(3, 8, 8))
    assert isinstance(e.value, ValueError)


def test_range_error_names_min_and_max():
    x = torch.rand(2, 3, 8, 8) * 2
    with pytest.raises(V.RangeError) as e:
        V.check_images(x)
    assert str(e.value) == V.MSG_RANGE.format(name="x", lo=0.0, hi=1.0, min=x.min().item(), max=x.max().item())


def test_nan_is_refused_not_clamped():
    x = torch.rand(2, 1, 4, 4)
    x[0, 0, 0, 0] = math.nan
    x[1, 0, 1, 1] = math.inf
    with pytest.raises(V.NonFiniteError, match="got 2 NaN or Inf entries"):
        V.check_images(x)


def test_labels_count_dtype_and_range():
    with pytest.raises(V.ShapeError) as e:
        V.check_labels(torch.zeros(3, dtype=torch.long), 4)
    assert str(e.value) == V.MSG_LABEL_COUNT.format(name="y", expected=4, got=3)
    with pytest.raises(V.DTypeError):
        V.check_labels(torch.zeros(4), 4)
    with pytest.raises(V.RangeError):
        V.check_labels(torch.tensor([0, 10]), 2, num_classes=10)


def test_channels_and_dtype():
    with pytest.raises(V.ShapeError, match="expected 1 or 3 channels"):
        V.check_images(torch.rand(1, 2, 4, 4))
    with pytest.raises(V.DTypeError):
        V.check_images(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(V.DTypeError):
        V.check_images([[0.0]])


def test_unknown_name_lists_choices():
    with pytest.raises(V.UnknownNameError) as e:
        V.check_choice("attack", "fgsm", ["pgd-l2", "lpa"])
    assert str(e.value) == "unknown attack 'fgsm'; expected one of: lpa, pgd-l2"


def test_training_mode_refused():
    m = torch.nn.Linear(2, 2)
    with pytest.raises(V.ModelModeError) as e:
        V.check_eval_mode(m, "net")
    assert str(e.value) == V.MSG_TRAINING_MODE.format(name="net")


def test_parameters():
    with pytest.raises(V.ParameterError):
        V.check_positive("eps", -1.0)
    with pytest.raises(V.ParameterError):
        V.check_int("steps", 0)
    assert V.check_positive("a", 0, allow_zero=True) == 0
