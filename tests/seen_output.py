"""What quiet output keeps out of the console, for the tests that run compress's commands and scripts."""

# Fragments of every third-party line a default run printed on this stack.
SEEN_FRAGMENTS = [
    "scikit-learn version",
    "has not been tested with coremltools",
    "Failed to load _ML",
    "Core ML embedding (gather) layer",
    "is an Enum subclass and is now natively supported by torch.compile",
    "[cpuinfo_utils.cpp:",
    "CPU info and manual query on # of cpus dont match",
    "is deprecated. Use files() instead",
    "This API is experimental and subject to change without notice",
    "Loading weights",
]
