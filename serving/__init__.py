"""onnxruntime-only inference and the HTTP API (see the serving issue). Imports no torch."""
