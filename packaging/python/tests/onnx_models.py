"""Small real ONNX models for the onnxruntime tests, built with the onnx package."""

import numpy
import onnx
from onnx import TensorProto, helper, numpy_helper


def matmul_chain(path, size=64, depth=1, seed=0):
    """y = x @ W1 @ W2 ... (depth weights of size x size): `depth` and `size` set how long a run
    takes on the CPU, so a test can hold a run open."""
    rng = numpy.random.default_rng(seed)
    weights, nodes, current = [], [], "x"
    for i in range(depth):
        name = f"W{i}"
        weights.append(numpy_helper.from_array(
            (rng.standard_normal((size, size)) / size ** 0.5).astype(numpy.float32), name))
        out = "y" if i == depth - 1 else f"h{i}"
        nodes.append(helper.make_node("MatMul", [current, name], [out]))
        current = out
    graph = helper.make_graph(
        nodes, "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, size])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime from 1.14 on
    onnx.save(model, str(path))
    return str(path)
