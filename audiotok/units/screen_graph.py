"""The ONNX graph the CPU assigner screens centroids with, and how to rebuild its file.

    python -m audiotok.units.screen_graph     # rewrites audiotok/units/graphs/screen_int8.onnx

One graph serves every bundle: the centroids are inputs, not weights, so the file is a few
hundred bytes and never changes with the bundle. It runs onnxruntime's
DynamicQuantizeLinear and MatMulIntegerToFloat: the frames are quantised per block to uint8 (the
DynamicQuantizeLinear rule: scale = (max(x, 0) - min(x, 0)) / 255), multiplied
with int8 centroids on the VNNI integer units, scaled back to float and offset by
-|c|^2/2, so the largest score is the nearest centroid. TopK keeps the best
scores of each frame; the quantisation step comes out too, for the error bound.
The file is built once with the onnx package (a test checks it equals this
function's output), so a run imports onnxruntime only.
"""

from pathlib import Path

GRAPH_FILE = Path(__file__).parent / "graphs" / "screen_int8.onnx"
OPSET = 17
IR_VERSION = 8  # read by every onnxruntime since 1.10


def build() -> bytes:
    from onnx import TensorProto, helper

    float_in = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    inputs = [
        float_in("frames", ["rows", "dim"]),
        helper.make_tensor_value_info("centroids_int8", TensorProto.INT8, ["dim", "k"]),
        float_in("centroid_scales", ["k"]),
        float_in("offsets", ["k"]),
        helper.make_tensor_value_info("top", TensorProto.INT64, [1]),
    ]
    outputs = [
        float_in("best_scores", ["rows", "top"]),
        helper.make_tensor_value_info("best_centroids", TensorProto.INT64, ["rows", "top"]),
        float_in("frame_step", []),
    ]
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["frames"], ["frames_uint8", "frame_step", "frame_zero"]),
        # Optional inputs are named "": no zero point for the symmetric int8 centroids.
        helper.make_node(
            "MatMulIntegerToFloat",
            ["frames_uint8", "centroids_int8", "frame_step", "centroid_scales", "frame_zero", "", "offsets"],
            ["scores"],
            domain="com.microsoft",
        ),
        helper.make_node("TopK", ["scores", "top"], ["best_scores", "best_centroids"], axis=1, largest=1, sorted=1),
    ]
    graph = helper.make_graph(nodes, "screen_int8", inputs, outputs)
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=IR_VERSION, producer_name="audiotok")
    return model.SerializeToString()


if __name__ == "__main__":
    GRAPH_FILE.parent.mkdir(exist_ok=True)
    GRAPH_FILE.write_bytes(build())
    print(GRAPH_FILE)
