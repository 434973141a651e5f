"""Group-fairness hypothesis tests (the paper's §4): per-group accuracy, the GLS slope of accuracy on a
group covariate with its F-test, and the one-sided two-sample t-test between two model families."""

from .tests import (MSG_FEW_GROUPS, accuracy_columns_of, MSG_MISSING_COLUMNS, MSG_NONFINITE, MSG_NONPOSITIVE_N, compare_slopes,
                    group_accuracy, read_table, slope_test, validate_table)

__all__ = ["MSG_FEW_GROUPS", "accuracy_columns_of", "MSG_MISSING_COLUMNS", "MSG_NONFINITE", "MSG_NONPOSITIVE_N", "compare_slopes",
           "group_accuracy", "read_table", "slope_test", "validate_table"]
