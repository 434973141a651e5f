"""``imperceptible fairness``'s settings: one frozen dataclass, the one source of every default (the command
line's options, the run's record and fingerprint come from it)."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import check_int_option, check_number_option, option
from ...data.geo_fashion import DEFAULT_DESIGN, DESIGNS
from ...dro import READINGS, WEIGHTINGS
from ...fairness.tests import MIN_COUNT

#: which arms a study trains (beside theta0): ``full`` - ERM, both DRO families, their no-attack controls, the
#: oracle and the matched-noise arm; ``powered`` - ERM, both DRO families and the A/A family (a second, independent
#: Human_Perc_OT family: the test's false-positive rate), the arms the primary endpoint and the gates need;
#: ``protocol`` - the protocol's arms (issue 36: benchmarks/protocols/fairness.toml): ERM, the primary
#: (first-success, lambda 10), the refined and the paper's presets, lambda 0 and 100, the A/A family, the positive
#: control and PGD-L2
ARM_SETS = ("full", "powered", "protocol")


@dataclass(frozen=True)
class FairnessConfig:
    """``imperceptible fairness``'s settings (defaults: one design in about 30 minutes on 2 CPU cores)."""

    dataset: str = option("geo-fashion", "geo-fashion (a SIMULATION) or folder:PATH with a group column in labels.csv")
    covariates: str | None = option(None, "CSV group,covariate (required for folder:PATH)")
    design: str = option(DEFAULT_DESIGN, "geo-fashion's design: mechanism (a cue 1-SSIM finds cheap), reversed (the "
                         "negative control: a cue 1-SSIM finds dear), null (reliability flat in GDP), legacy (the first "
                         "version's marker and texture)", choices=tuple(DESIGNS))
    size: int = option(30000, "geo-fashion: images in each simulated world", type=int)
    models: int = option(2, "K models per arm and replicate (the paper: 50 over one D)", type=int)
    dro_seeds: int = option(3, "independent replicates: each its own simulated world (countries and cue draws), "
                            "pre-trained model, training subset and Algorithm 2 dataset per family", type=int)
    dro_size: int = option(2000, "training images per replicate (Algorithm 2's N)", type=int)
    arms: str = option("full", "full (ERM, both families, their no-attack controls, the oracle, matched noise), "
                       "powered (ERM, both families, an A/A second Human_Perc_OT family) or protocol (the protocol's: "
                       "also the refined and paper presets, lambda 0 and 100, a positive control)", choices=ARM_SETS)
    reading: str = option("eq3", "Algorithm 2: eq3 (attack the row's original, keep successful attacks) or literal "
                          "(re-attack the sampled row, keep every output)", choices=READINGS)
    weighting: str = option("sample", "where the weights P act: sample (draws), gradient (loss scale) or both (the "
                            "printed algorithms: P^2)", choices=WEIGHTINGS)
    t1: int = option(3, "Algorithm 2 epochs (paper: 3)", type=int)
    t2: int = option(3, "Algorithm 3 passes (paper: 3)", type=int)
    lr: float = option(0.1, "SGD learning rate of Algorithms 2 and 3 (paper: 0.1)", type=float)
    batch_size: int = option(64, "SGD batch size", type=int)
    pretrain_epochs: int = option(3, "epochs of the pre-trained model (Adam, lr 1e-3)", type=int)
    pgd_eps: float = option(2.0, "L2 budget of the pgd-l2 family (10 steps of eps/5)", type=float)
    kmeans: bool = option(True, "the k-means cache of Appendix D", type=bool)
    per_cluster: int = option(5, "images per k-means cluster", type=int)
    min_count: int = option(MIN_COUNT, "drop groups with fewer test images (the paper's rule)", type=int)
    seed: int = option(0, "seed of the worlds, subsets, pre-training and Algorithm 2", type=int)
    worlds_per_call: int | None = option(None, "finish the worlds one at a time (pre-training, Algorithm 2, that "
                                         "world's Algorithm 3 models) and stop after this many in this call; the same "
                                         "command goes on. A finished world needs only its JSON records, so a study "
                                         "spread over time-limited jobs carries those alone; the gates are then "
                                         "computed after the last world, from Algorithm 2's records by the same rule "
                                         "(results are the same as in one call)", type=int, fingerprint=False)

    def __post_init__(self) -> None:
        for name, minimum in (("size", 100), ("models", 2), ("dro_seeds", 1), ("dro_size", 10), ("t1", 1),
                              ("t2", 1), ("batch_size", 1), ("pretrain_epochs", 1), ("per_cluster", 1),
                              ("min_count", 1), ("seed", 0)):
            check_int_option(name, getattr(self, name), minimum=minimum)
        check_int_option("worlds_per_call", self.worlds_per_call, minimum=1, allow_none=True)
        check_number_option("lr", self.lr)
        check_number_option("pgd_eps", self.pgd_eps)

    @property
    def draws(self) -> int:
        """``M_ref``: rows per Algorithm 3 pass in every arm (the size of a literal ``D``)."""
        return self.dro_size * (1 + self.t1)


__all__ = ["ARM_SETS", "FairnessConfig"]
