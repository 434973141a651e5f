"""Group-fairness hypothesis tests (the paper's §4): per-group accuracy, the GLS slope of accuracy on a
group covariate with its F-test, and the one-sided two-sample t-test between two model families."""

from .tests import (
                    MSG_CONSTANT_COVARIATE,
                    MSG_FEW_GROUPS,
                    MSG_FEW_MODELS,
                    MSG_MISSING_COLUMNS,
                    MSG_NO_FAMILY_COLUMNS,
                    MSG_NONFINITE,
                    MSG_NONPOSITIVE_N,
                    MSG_UNREADABLE,
                    accuracy_columns_of,
                    compare_slopes,
                    fairness_table_test,
                    family_columns,
                    group_accuracy,
                    read_table,
                    slope_test,
                    validate_table,
)

__all__ = ["MSG_CONSTANT_COVARIATE", "MSG_FEW_GROUPS", "MSG_FEW_MODELS", "MSG_MISSING_COLUMNS", "MSG_NO_FAMILY_COLUMNS",
           "MSG_NONFINITE", "MSG_NONPOSITIVE_N", "MSG_UNREADABLE", "accuracy_columns_of", "compare_slopes",
           "fairness_table_test", "family_columns", "group_accuracy", "read_table", "slope_test", "validate_table"]
