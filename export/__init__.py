"""Checkpoint to optimized, quantized ONNX bundle via Optimum (see the export issue)."""
