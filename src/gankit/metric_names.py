"""The names of the metrics `gankit eval` computes, in one light module: the CLI builds its
parser from them without importing torch, and `gankit.metrics.evaluate` dispatches on them."""

ALL_METRICS = (
    "fd",
    "kid",
    "is",
    "pr",
    "dc",
    "parzen",
    "memorization",
    "modes",
    "conditional_accuracy",
    "cas",
    "intra_fd",
)
CONDITIONAL_METRICS = ("conditional_accuracy", "cas", "intra_fd")
