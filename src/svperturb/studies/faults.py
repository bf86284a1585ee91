"""The per-sample dataset `fault`: why a sample has no statistics (it is kept, not dropped)."""

FAULT_OK = 0
FAULT_ERROR = 1  # the study's computation raised a numerical error for this sample alone
FAULT_NON_FINITE = 2  # a NaN or an infinity in one of the study's finite datasets
FAULT_NAMES = {FAULT_OK: "ok", FAULT_ERROR: "not computable (numerical error)",
               FAULT_NON_FINITE: "non-finite value"}
