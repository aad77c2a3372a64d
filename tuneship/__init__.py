"""tuneship: fine-tune, export to quantized ONNX, and serve text classifiers, extractive QA models
and summarizers on CPUs.

The root package is deliberately light (stdlib and numpy only) so that `tuneship.serving` can be
installed and imported without torch or transformers.
"""

__version__ = "0.1.0"
