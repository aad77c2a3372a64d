"""Calibrated activation ranges for onnxruntime's int8 kernels: the same answer alone and in any batch.

Dynamic quantization (`DynamicQuantizeLinear` before each `MatMulInteger` and `QAttention`) gives a batch's
whole activation tensor one scale, computed at run time over every row, padding included, so an input's int8
answer depends on its batch mates: a long or unusual neighbour moves every row's quantization. Here each
`DynamicQuantizeLinear` becomes a `QuantizeLinear` with a scale and zero point fixed from the calibration
rows (the smallest and largest value of that tensor over their real tokens), so onnxruntime runs the same
fused int8 kernels, now with constants: an input's outputs no longer depend on its batch or its padding.

Tried here first and dropped (measured on MiniLM-L6, 2 threads, AMD EPYC with AVX-512 VNNI; see
docs/export.md): a scale per row (per token) in standard ONNX operators was exact but ran at 1.3-1.4x fp32
against 2x, as onnxruntime has no fused kernel for it; `MatMulNBits` with 8-bit weights quantizes rows of A
in its kernel but ran at 1.1-1.4x fp32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def activation_ranges(model_file: Path, tensors: list[str], feeds: list[dict[str, np.ndarray]]) -> dict[str, tuple]:
    """The smallest and largest value of each named tensor over the feeds' real (unpadded) tokens."""
    import onnx
    from onnx import TensorProto, helper

    from ..serving.session import create_session

    model = onnx.load(str(model_file))
    outputs = {o.name for o in model.graph.output}
    model.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
                              for name in tensors if name not in outputs)
    probe = model_file.with_name(model_file.stem + ".ranges.onnx")
    onnx.save(model, str(probe))
    try:
        session = create_session(probe)
        names = [o.name for o in session.get_outputs()]
        low: dict[str, float] = {}
        high: dict[str, float] = {}
        for feed in feeds:
            values = dict(zip(names, session.run(None, feed)))
            real = feed["attention_mask"].astype(bool)
            for name in tensors:
                value = values[name]
                value = value[real] if value.ndim == 3 and value.shape[:2] == real.shape else value
                low[name] = min(low.get(name, np.inf), float(value.min()))
                high[name] = max(high.get(name, -np.inf), float(value.max()))
    finally:
        probe.unlink(missing_ok=True)
    return {name: (low[name], high[name]) for name in tensors}


def calibrate_ranges(model_file: Path, feeds: list[dict[str, np.ndarray]]) -> dict[str, int]:
    """Replace, in place, every `DynamicQuantizeLinear` of a dynamically quantized model with a `QuantizeLinear` at
    the range the feeds show (uint8, asymmetric, 0 representable, as `DynamicQuantizeLinear` computes it).
    Returns how many were replaced."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(model_file))
    dynamic = [node for node in model.graph.node if node.op_type == "DynamicQuantizeLinear"]
    ranges = activation_ranges(model_file, sorted({node.input[0] for node in dynamic}), feeds)
    nodes = []
    for node in model.graph.node:
        if node.op_type != "DynamicQuantizeLinear":
            nodes.append(node)
            continue
        low, high = ranges[node.input[0]]
        low, high = min(low, 0.0), max(high, 0.0)
        scale = (high - low) / 255.0 or 1.0
        zero_point = int(np.clip(np.round(-low / scale), 0, 255))
        quantized, scale_name, zero_point_name = node.output
        model.graph.initializer.extend([numpy_helper.from_array(np.array(scale, dtype=np.float32), scale_name),
                                        numpy_helper.from_array(np.array(zero_point, dtype=np.uint8), zero_point_name)])
        nodes.append(helper.make_node("QuantizeLinear", [node.input[0], scale_name, zero_point_name], [quantized],
                                      name=f"{node.name}/calibrated"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(model_file))
    return len(dynamic)
