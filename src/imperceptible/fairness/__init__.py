"""Group-fairness hypothesis tests (the paper's §4): per-group accuracy, the GLS slope of accuracy on a
group covariate with its F-test, and the one-sided two-sample t-test between two model families.
Their error messages (``MSG_TABLE_*``) live with every other in :mod:`imperceptible.validation`."""

from .tests import (
    accuracy_columns_of,
    compare_slopes,
    fairness_table_test,
    family_columns,
    group_accuracy,
    read_table,
    slope_test,
    validate_table,
)

__all__ = ["accuracy_columns_of", "compare_slopes", "fairness_table_test", "family_columns", "group_accuracy",
           "read_table", "slope_test", "validate_table"]
