"""Each task's own training options, one module per task named as its `trainer/<task>.py` (so a task's options are
found by its file name, as its code is); `TrainConfig` inherits them all."""
