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


def test_errors_carry_the_fields_of_their_message():
    with pytest.raises(V.ShapeError) as e:
        V.check_images(torch.rand(3, 8, 8), "clean")
    assert (e.value.name, e.value.expected, e.value.got) == ("clean", 4, 3)
    assert e.value.fields["shape"] == (3, 8, 8)
    with pytest.raises(V.ParameterError) as e:
        V.check_positive("eps", math.inf)
    assert (e.value.name, e.value.expected, e.value.got) == ("eps", "a finite number > 0", math.inf)
    with pytest.raises(V.RangeError) as e:
        V.check_labels(torch.tensor([0, 12]), 2, num_classes=10)
    assert e.value.fields == {"name": "y", "hi": 9, "min": 0, "max": 12}
    assert e.value.expected is None and e.value.got is None  # that message has no such fields
    # an error of the FileNotFoundError family keeps its fields too
    err = V.WeightsNotFoundError.of(V.MSG_NOT_DOWNLOADED, missing="weights not found", error="offline")
    assert isinstance(err, FileNotFoundError) and err.fields["error"] == "offline"


def _package_modules():
    import importlib
    import pkgutil

    import imperceptible

    for info in pkgutil.walk_packages(imperceptible.__path__, "imperceptible."):
        if info.name.endswith("__main__"):
            continue
        yield importlib.import_module(info.name)


def test_every_error_class_and_message_lives_in_the_errors_module():
    """One place for what the tool refuses: no module but ``errors`` defines an error class or a ``MSG_*``, and one
    for what it says without refusing: ``notices`` (the warning class and the warnings' and log lines' ``MSG_*``)."""
    import ast
    import inspect
    from pathlib import Path

    classes, messages = [], []
    for mod in _package_modules():
        for name, obj in vars(mod).items():
            if inspect.isclass(obj) and issubclass(obj, V.ImperceptibleError) and obj.__module__ != "imperceptible.errors":
                classes.append(f"{obj.__module__}.{name}")
            if inspect.isclass(obj) and issubclass(obj, V.ImperceptibleWarning) and obj.__module__ != "imperceptible.notices":
                classes.append(f"{obj.__module__}.{name}")
        if mod.__name__ in ("imperceptible.errors", "imperceptible.notices"):
            continue
        tree = ast.parse(Path(mod.__file__).read_text())
        messages += [f"{mod.__name__}.{t.id}" for n in tree.body if isinstance(n, ast.Assign)
                     for t in n.targets if isinstance(t, ast.Name) and t.id.startswith("MSG_")]
    assert classes == [] and messages == []


def test_no_error_is_raised_with_an_inline_message():
    """Every message a user reads is a constant tests can check word for word: no ``raise X("...")`` or f-string
    (an internal ``sqlite3.DatabaseError`` that never reaches a user is written as an attribute and not counted)."""
    import ast
    from pathlib import Path

    inline = []
    for mod in _package_modules():
        text = Path(mod.__file__).read_text()
        for n in ast.walk(ast.parse(text)):
            if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call) and isinstance(n.exc.func, ast.Name) \
                    and n.exc.args and isinstance(n.exc.args[0], (ast.Constant, ast.JoinedStr)):
                inline.append(f"{mod.__name__}:{n.lineno}")
    assert inline == []
