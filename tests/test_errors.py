"""Messages tied to their owners (imperceptible.errors), notices apart from errors (imperceptible.notices), and one
rule for numbers in every family of checks (imperceptible.validation, the configs, the attacks' settings)."""

from __future__ import annotations

import ast
import logging
import math
import pickle
import string
import warnings
from pathlib import Path

import pytest
import torch

import imperceptible
from imperceptible import errors as E
from imperceptible import notices as N

SRC = Path(imperceptible.__file__).parent


def _templates(module) -> dict[str, E.Message]:
    return {n: v for n, v in vars(module).items() if n.startswith("MSG_")}


class _Used(dict):
    """Records the fields a template reads when formatted (a float fits every format spec of ours)."""

    def __missing__(self, key):
        self.setdefault("_keys", set()).add(key)
        return 1.0


def _fields_read(text: str) -> set[str]:
    used = _Used()
    string.Formatter().vformat(text, (), used)
    return used.get("_keys", set())


# ----------------------------------------------------------------------------------------------
# every message: declared with its owner, its fields those its placeholders read
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module, base", [(E, E.ImperceptibleError), (N, N.ImperceptibleWarning)])
def test_every_message_has_an_owner_and_the_fields_its_text_reads(module, base):
    found = _templates(module)
    assert len(found) >= (150 if module is E else 8)
    for name, m in found.items():
        assert isinstance(m, E.Message), name
        assert m.name == name
        assert m.owners and all(isinstance(c, type) and issubclass(c, base) for c in m.owners), name
        assert set(m.fields) == _fields_read(m), name  # what .format reads, found by formatting it
        for owner in m.owners:
            assert owner.templates()[name] is m  # each owner lists it
    owned = {n for c in vars(module).values() if isinstance(c, type) and issubclass(c, base) for n in c.templates()}
    assert owned == set(found)  # and nothing declared is unowned
    assert not [n for n, m in found.items() if m.owners == (E.ImperceptibleError,)]  # each has a specific class


def test_a_few_owners_and_fields_word_for_word():
    assert E.MSG_PARAM.owner is E.ParameterError and E.MSG_PARAM.fields == {"name", "expected", "got"}
    assert E.MSG_RANGE.fields == {"name", "lo", "hi", "min", "max"}  # {min:.6g}: the spec is not part of the name
    assert E.MSG_IDS_COUNT.owner is E.ShapeError
    assert E.MSG_OUT_LINK.owners == (E.RunDirError, E.StudyError)  # the folder contracts raise it as either
    assert E.MSG_ROUND_FIRST.fields == frozenset()  # a fragment of MSG_OFF_GRID's {how}
    assert "MSG_PARAM" not in E.ShapeError.templates() and "MSG_IDS_COUNT" in E.ShapeError.templates()
    assert E.placeholders("{a!r} {b:.{c}f} {{d}} {e.f} {g[0]}") == {"a", "b", "c", "e", "g"}


def test_every_of_call_in_the_package_raises_a_message_of_its_class_with_its_fields():
    """Read from the source, so a call that runs only on a rare failure is held to it too."""
    bad, checked = [], 0
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "of"
                    and isinstance(node.func.value, ast.Name) and node.args and isinstance(node.args[0], ast.Name)):
                continue
            cls, template = getattr(E, node.func.value.id, None), getattr(E, node.args[0].id, None)
            if not isinstance(cls, type) or not isinstance(template, E.Message):
                continue
            checked += 1
            given = {k.arg for k in node.keywords}
            if not issubclass(cls, template.owner) or given != set(template.fields):
                bad.append(f"{path.relative_to(SRC)}:{node.lineno} {cls.__name__}.of({template.name}, {sorted(given)})")
    assert checked > 150 and bad == []  # the scan found the calls (about 200 in version 0.4)


# ----------------------------------------------------------------------------------------------
# .of refuses a message of another class, a missing or unexpected field, an undeclared text
# ----------------------------------------------------------------------------------------------


def test_of_refuses_a_message_of_another_class():
    with pytest.raises(TypeError) as e:
        E.ShapeError.of(E.MSG_PARAM, name="x.ids", expected=3, got=2)
    assert isinstance(e.value, E.TemplateError)
    assert str(e.value) == ("ShapeError.of(MSG_PARAM): expected a class that is or derives from ParameterError (the "
                            "message's owner), got ShapeError")
    assert (e.value.expected, e.value.got) == ("ParameterError", "ShapeError")
    with pytest.raises(E.TemplateError) as e:
        E.ParameterError.of(E.MSG_OUT_LINK, path="p", kind="k", entry="e", target="t")
    assert e.value.expected == "RunDirError or StudyError"
    # a base's message as a subclass is its owner's kind still; a shared one as either owner
    assert isinstance(E.FetchError.of(E.MSG_NOT_DOWNLOADED, missing="m", error="offline"), E.WeightsNotFoundError)
    err = E.StudyError.of(E.MSG_OUT_LINK, path="p", kind="study folder", entry="e", target="t")
    assert str(err).startswith("--out p: expected the study folder's own files") and err.fields["target"] == "t"
    with pytest.raises(E.TemplateError):  # but not a subclass's message as its base
        E.WeightsNotFoundError.of(E.MSG_FETCH_OFFLINE, env="X")


def test_of_refuses_missing_and_unexpected_fields():
    with pytest.raises(TypeError) as e:
        E.ParameterError.of(E.MSG_PARAM, name="eps", got=2.0)
    assert str(e.value) == ("MSG_PARAM: expected the fields ['expected', 'got', 'name'], got ['got', 'name'] "
                            "(missing: ['expected']; unexpected: [])")
    assert e.value.fields["missing"] == ["expected"]
    with pytest.raises(TypeError) as e:
        E.ParameterError.of(E.MSG_PARAM, name="eps", expected="a number", got=2.0, hint="x")
    assert e.value.fields["unexpected"] == ["hint"] and e.value.fields["missing"] == []
    # str.format alone would have dropped the extra field silently: .of is stricter than the str it wraps
    assert E.MSG_PARAM.format(name="eps", expected="a number", got=2.0, hint="x") == "eps: expected a number, got 2.0"


def test_of_refuses_a_text_not_declared_as_a_message():
    with pytest.raises(TypeError) as e:
        E.ParameterError.of("{name}: bad", name="eps")
    assert str(e.value) == ("ParameterError.of: expected a message declared with its owner "
                            "(imperceptible.errors.message), got a str: '{name}: bad'")


def test_a_message_pickles_with_its_owner_and_name():
    m = pickle.loads(pickle.dumps(E.MSG_OUT_LINK))
    assert (type(m), m, m.owner, m.name, m.fields) == (E.Message, E.MSG_OUT_LINK, E.MSG_OUT_LINK.owner, "MSG_OUT_LINK",
                                                       E.MSG_OUT_LINK.fields)


def test_the_dataset_ids_count_is_refused_as_a_shape_error_of_its_own_message():
    from imperceptible.data.base import ImageDataset

    with pytest.raises(E.ShapeError) as e:
        ImageDataset("toy", torch.zeros(3, 1, 4, 4), torch.zeros(3, dtype=torch.long), ["a", "b"], 2)
    assert str(e.value) == "toy.ids: expected 3 ids (one per image), got 2"
    assert (e.value.expected, e.value.got) == (3, 2)


# ----------------------------------------------------------------------------------------------
# notices: warnings and log lines live apart from the errors
# ----------------------------------------------------------------------------------------------

MOVED = ("MSG_FOLDER_MIXED_SIZES", "MSG_FOLDER_SKIPPED_RUN", "MSG_JSON_NON_FINITE_ROOT", "MSG_OUT_FINGERPRINT_EDITED",
         "MSG_STORE_DAMAGED", "MSG_TORCHSCRIPT_CAST", "MSG_VISION_ROUNDED", "MSG_ZERO_ACCURACY")
#: notices declared since the move (never in errors)
SINCE = ("MSG_LAYOUT_KEPT", "MSG_RESUMED_OTHER_CODE", "MSG_STUDY_STOPPED")


def test_each_warning_message_lives_in_the_notices_module():
    assert set(_templates(N)) == set(MOVED) | set(SINCE)
    assert not (set(MOVED) | set(SINCE)) & set(vars(E))  # not defined in errors
    assert set(N.ImperceptibleWarning.templates()) == set(MOVED) | set(SINCE)
    for name in SINCE:  # a notice that never lived in errors is not reached through it
        with pytest.raises(AttributeError, match=f"has no attribute '{name}'"):
            getattr(E, name)
    for name in MOVED:  # the old name still reaches the same message, with a DeprecationWarning
        with pytest.warns(DeprecationWarning, match=f"errors.{name} moved to imperceptible.notices"):
            assert getattr(E, name) is getattr(N, name)
    with pytest.raises(AttributeError, match="has no attribute 'MSG_NOPE'"):
        E.MSG_NOPE  # noqa: B018


def test_no_module_imports_a_notice_from_the_errors_module():
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("errors") and node.level > 0:
                wrong += [f"{path.relative_to(SRC)}: {a.name}" for a in node.names if a.name in MOVED]
    assert wrong == []


def test_warn_gives_an_imperceptible_warning_at_the_callers_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        N.warn(N.MSG_VISION_ROUNDED, name="flip", count=7)
    (w,) = caught
    assert w.category is N.ImperceptibleWarning and issubclass(w.category, UserWarning)
    assert str(w.message) == ("flip: rounded 7 values that were not on the 8-bit grid to their nearest level (this "
                              "judge reads 8-bit PNG files, as a saved image would be)")
    assert Path(w.filename).resolve() == Path(__file__).resolve()
    with pytest.raises(E.TemplateError) as e:  # an error's message is not a warning's
        N.warn(E.MSG_PARAM, name="eps", expected="x", got=1)
    assert str(e.value) == ("notices.warn(MSG_PARAM): expected a class that is or derives from ParameterError (the "
                            "message's owner), got ImperceptibleWarning")
    with pytest.raises(E.TemplateError):
        N.warn(N.MSG_VISION_ROUNDED, name="flip")


def test_log_warning_writes_the_filled_message_as_the_callers_line(caplog):
    log = logging.getLogger("imperceptible.test_errors")
    with caplog.at_level(logging.WARNING):
        N.log_warning(log, N.MSG_JSON_NON_FINITE_ROOT, n=2)
    (rec,) = caplog.records
    assert rec.levelno == logging.WARNING and rec.name == "imperceptible.test_errors"
    assert rec.getMessage() == ("2 NaN or infinite value(s) written as null in a JSON file whose top level is not an "
                                "object (no room for the note that lists them)")
    assert Path(rec.pathname).resolve() == Path(__file__).resolve()
    assert rec.funcName == "test_log_warning_writes_the_filled_message_as_the_callers_line"


def _imports_at_load(path: Path) -> set[str]:
    """The modules of ours a file imports when it is loaded: its top-level relative imports, not those in a function
    or under ``if TYPE_CHECKING``."""
    out: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out |= {node.module} if node.module else {a.name for a in node.names}
    return out


def test_the_bottom_modules_import_only_downward():
    """CONTRIBUTING's architecture: errors imports nothing of ours, notices only errors, validation both, config
    validation."""
    allowed = {"errors": set(), "notices": {"errors"}, "validation": {"errors", "notices"},
               "config": {"errors", "notices", "validation"}}
    found = {name: _imports_at_load(SRC / f"{name}.py") for name in allowed}
    assert all(found[n] <= allowed[n] for n in allowed), found
    assert found["notices"] == {"errors"} and found["config"] == {"validation"}  # the scan sees the imports at all


def test_the_modules_stay_free_of_torch():
    import subprocess
    import sys

    code = ("import sys, imperceptible.errors, imperceptible.notices, imperceptible.validation, imperceptible.config; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------------------------
# one rule for numbers: every family of checks refuses NaN, infinities and ints beyond a float
# ----------------------------------------------------------------------------------------------


def _number_checks():
    from imperceptible import config, validation
    from imperceptible.attacks.boundary_projection import BoundaryProjection
    from imperceptible.attacks.human_perc_ot import Settings
    from imperceptible.perception.simulate import check_rate

    return {
        "validation.check_number": lambda v: validation.check_number("x", v, low=0, high=1),
        "validation.check_positive": lambda v: validation.check_positive("x", v, allow_zero=True),
        "config.check_number_option": lambda v: config.check_number_option("x", v, inclusive=True),
        "human_perc_ot Settings.geometry": lambda v: Settings(geometry=v).checked(),
        "human_perc_ot Settings.lam_decay": lambda v: Settings(lam_decay=v).checked(),
        "boundary_projection gamma_min": lambda v: BoundaryProjection(gamma_min=v),
        "perception check_rate": lambda v: check_rate("x", v),
    }


def _int_checks():
    from imperceptible import config, seeds, validation
    from imperceptible.defenses.bit_depth import bit_depth_reduction
    from imperceptible.defenses.jpeg import jpeg_compression

    x = torch.full((1, 1, 8, 8), 0.5)
    return {
        "validation.check_int": lambda v: validation.check_int("n", v, minimum=0),
        "config.check_int_option": lambda v: config.check_int_option("n", v, minimum=0, maximum=10),
        "jpeg quality": lambda v: jpeg_compression(x, quality=v),
        "bit depth": lambda v: bit_depth_reduction(x, bits=v),
        "seeds bits": lambda v: seeds.derive("k", bits=v),
    }


def _verdict(check, value) -> str:
    try:
        check(value)
    except E.ParameterError as e:
        assert e.got is not None
        return "refused"
    return "accepted"


@pytest.mark.parametrize("value, verdict", [(0.5, "accepted"), (0.25, "accepted"), (math.inf, "refused"),
                                            (-math.inf, "refused"), (math.nan, "refused"), (10**400, "refused"),
                                            (True, "refused"), ("0.5", "refused")])
def test_every_number_check_gives_the_same_answer(value, verdict):
    """Each check's interval holds 0.25 and 0.5; NaN, the infinities, an int beyond a float, a bool and a string are
    refused by every one, as a ParameterError (not an OverflowError or a TypeError)."""
    checks = _number_checks()
    assert {name: _verdict(c, value) for name, c in checks.items()} == {name: verdict for name in checks}


@pytest.mark.parametrize("value, verdict", [(3, "accepted"), (1, "accepted"), (math.inf, "refused"), (math.nan, "refused"),
                                            (3.0, "refused"), (True, "refused"), ("3", "refused")])
def test_every_integer_check_gives_the_same_answer(value, verdict):
    """Each check's range holds 1 and 3; a float (finite or not), a bool and a string are refused by every one (JPEG's
    quality and the bit depth took True as 1 before they used check_int)."""
    checks = _int_checks()
    assert {name: _verdict(c, value) for name, c in checks.items()} == {name: verdict for name in checks}


def test_the_configs_and_the_settings_word_the_same_refusal():
    from imperceptible import config, validation
    from imperceptible.attacks.human_perc_ot import Settings

    with pytest.raises(E.ParameterError) as a:
        config.check_number_option("image_scale", math.inf)
    with pytest.raises(E.ParameterError) as b:
        validation.check_positive("--image-scale", math.inf)
    assert str(a.value) == str(b.value) == "--image-scale: expected a finite number > 0, got inf"
    with pytest.raises(E.ParameterError) as c:
        Settings(gamma=math.nan).checked()
    assert str(c.value) == "gamma: expected a number in (0, 1), got nan"
    with pytest.raises(E.ParameterError) as d:
        config.check_int_option("batch_size", 0, maximum=4)
    assert str(d.value) == "--batch-size: expected an integer from 1 to 4, got 0"
    with pytest.raises(E.ParameterError) as f:
        Settings(gamma=0.1, gamma_final=0.2).checked()
    assert str(f.value) == "gamma_final: expected a number in (0, gamma = 0.1], got 0.2"
