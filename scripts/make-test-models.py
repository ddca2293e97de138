#!/usr/bin/env python3
"""Builds the Inference test models and records onnxruntime's outputs as fixtures.

Writes Tests/InferenceTests/Fixtures/<name>.onnx and <name>.json. Each JSON holds fixed inputs at
batch 1 and at batch > 1 and onnxruntime's outputs for them; the Swift tests check Outpost's
engine against these (relative error <= 1e-4 for floats, exact labels).

Models:
  mlp     Gemm+Relu, MatMul+Add, Gelu written with Erf (as exporters before opset 20 do), Tanh,
          LeakyRelu, Sigmoid, Softmax; dynamic batch.                          (onnx.helper, opset 17)
  cnn     Conv+BatchNorm+Relu, grouped Conv+BatchNorm, residual Add, MaxPool, strided padded Conv,
          Clip (ReLU6), AveragePool, GlobalAveragePool, the legacy exporter's Shape/Gather/
          Unsqueeze/Concat/Reshape chain, Transpose, Dropout, Gemm.           (onnx.helper, opset 17)
  logreg  sklearn LogisticRegression (iris, 3 classes) -> LinearClassifier + ZipMap   (skl2onnx)
  rfc     sklearn RandomForestClassifier with string labels -> TreeEnsembleClassifier + ZipMap
  rfr     sklearn RandomForestRegressor -> TreeEnsembleRegressor
  linreg  sklearn LinearRegression (2 targets) -> LinearRegressor

Self-installing: uses/creates a venv at $OUTPOST_PY_VENV (default ~/.cache/outpost-inference-venv)
with onnx, onnxruntime, scikit-learn, skl2onnx, numpy from PyPI, then re-executes inside it.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "InferenceTests", "Fixtures")
VENV = os.environ.get("OUTPOST_PY_VENV", os.path.expanduser("~/.cache/outpost-inference-venv"))
REQS = ["numpy", "onnx", "onnxruntime", "scikit-learn", "skl2onnx"]


def bootstrap():
    if os.environ.get("OUTPOST_IN_VENV") == "1":
        return
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    if subprocess.run([py, "-c", "import numpy, onnx, onnxruntime, sklearn, skl2onnx"], capture_output=True).returncode:
        subprocess.check_call([py, "-m", "pip", "install", "-q", *REQS])
    os.execve(py, [py, os.path.abspath(__file__), *sys.argv[1:]], dict(os.environ, OUTPOST_IN_VENV="1"))


def main():
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)

    def w(*shape, scale=None):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        return (rng.standard_normal(shape) * (scale or np.sqrt(2.0 / fan_in))).astype(np.float32)

    def save(graph, name):
        m = helper.make_model(graph, producer_name="outpost-tests", opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.checker.check_model(m, full_check=True)
        onnx.save(m, os.path.join(OUT, name + ".onnx"))

    # ---- MLP: 16 -> 32 -> 24 -> 4
    inits = {"W1": w(32, 16), "b1": w(32, scale=0.1), "W2": w(32, 24), "b2": w(24, scale=0.1),
             "W3": w(24, 12), "W4": w(4, 12), "b4": w(4, scale=0.1),
             "sqrt2": np.array(1.4142135, np.float32), "one": np.array(1.0, np.float32),
             "half": np.array(0.5, np.float32)}
    nodes = [
        helper.make_node("Gemm", ["input", "W1", "b1"], ["h1"], transB=1, name="fc1"),
        helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
        helper.make_node("MatMul", ["a1", "W2"], ["m2"], name="fc2_matmul"),
        helper.make_node("Add", ["m2", "b2"], ["h2"], name="fc2_bias"),
        # Gelu(x) = 0.5 * x * (1 + erf(x / sqrt(2)))
        helper.make_node("Div", ["h2", "sqrt2"], ["g0"], name="gelu_div"),
        helper.make_node("Erf", ["g0"], ["g1"], name="gelu_erf"),
        helper.make_node("Add", ["g1", "one"], ["g2"], name="gelu_add"),
        helper.make_node("Mul", ["h2", "g2"], ["g3"], name="gelu_mul"),
        helper.make_node("Mul", ["g3", "half"], ["a2"], name="gelu_half"),
        helper.make_node("MatMul", ["a2", "W3"], ["h3"], name="fc3"),
        helper.make_node("Tanh", ["h3"], ["t3"], name="tanh3"),
        helper.make_node("LeakyRelu", ["t3"], ["a3"], alpha=0.1, name="leaky3"),
        helper.make_node("Gemm", ["a3", "W4", "b4"], ["logits"], transB=1, name="fc4"),
        helper.make_node("Softmax", ["logits"], ["output"], axis=-1, name="softmax"),
        helper.make_node("Sigmoid", ["logits"], ["gate"], name="gate"),
    ]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 16])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 4]),
                           helper.make_tensor_value_info("gate", TensorProto.FLOAT, ["N", 4])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    save(g, "mlp")

    # ---- CNN: N x 3 x 12 x 12
    def bn(prefix, c):
        return {prefix + "_s": (1 + 0.2 * rng.standard_normal(c)).astype(np.float32),
                prefix + "_b": (0.1 * rng.standard_normal(c)).astype(np.float32),
                prefix + "_m": (0.1 * rng.standard_normal(c)).astype(np.float32),
                prefix + "_v": (0.5 + rng.random(c)).astype(np.float32)}
    inits = {"C1": w(8, 3, 3, 3), "c1b": w(8, scale=0.1), **bn("bn1", 8),
             "C2": w(8, 4, 3, 3), **bn("bn2", 8),
             "C3": w(16, 8, 3, 3), "c3b": w(16, scale=0.1),
             "C4": w(16, 16, 1, 1), "c4b": w(16, scale=0.1),
             "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32),
             "minus1": np.array([-1], np.int64), "zero": np.array(0, np.int64),
             "F": w(5, 16), "fb": w(5, scale=0.1)}
    nodes = [
        helper.make_node("Conv", ["input", "C1", "c1b"], ["x1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("BatchNormalization", ["x1", "bn1_s", "bn1_b", "bn1_m", "bn1_v"], ["x2"], epsilon=1e-5, name="bn1"),
        helper.make_node("Relu", ["x2"], ["x3"], name="relu1"),
        helper.make_node("Conv", ["x3", "C2"], ["x4"], kernel_shape=[3, 3], pads=[2, 2, 2, 2], dilations=[2, 2], group=2, name="conv2_grouped"),
        helper.make_node("BatchNormalization", ["x4", "bn2_s", "bn2_b", "bn2_m", "bn2_v"], ["x5"], name="bn2"),
        helper.make_node("Add", ["x5", "x3"], ["x6"], name="residual"),
        helper.make_node("Relu", ["x6"], ["x7"], name="relu2"),
        helper.make_node("MaxPool", ["x7"], ["x8"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"),
        helper.make_node("Conv", ["x8", "C3", "c3b"], ["x9"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], name="conv3_strided"),
        helper.make_node("Clip", ["x9", "lo", "hi"], ["x10"], name="relu6"),
        helper.make_node("Conv", ["x10", "C4", "c4b"], ["x11"], kernel_shape=[1, 1], name="conv4_1x1"),
        helper.make_node("AveragePool", ["x11"], ["x12"], kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 1, 1], count_include_pad=0, name="avgpool"),
        helper.make_node("GlobalAveragePool", ["x12"], ["x13"], name="gap"),
        helper.make_node("Shape", ["x13"], ["s0"], name="shape"),
        helper.make_node("Gather", ["s0", "zero"], ["s1"], axis=0, name="batch_dim"),
        helper.make_node("Unsqueeze", ["s1", "zero"], ["s2"], name="unsqueeze"),
        helper.make_node("Concat", ["s2", "minus1"], ["s3"], axis=0, name="concat_shape"),
        helper.make_node("Reshape", ["x13", "s3"], ["x14"], name="reshape"),
        helper.make_node("Dropout", ["x14"], ["x15"], name="dropout"),
        helper.make_node("Transpose", ["F"], ["Ft"], perm=[1, 0], name="transpose_weight"),
        helper.make_node("MatMul", ["x15", "Ft"], ["x16"], name="fc"),
        helper.make_node("Add", ["x16", "fb"], ["output"], name="fc_bias"),
    ]
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 12, 12])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 5])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    save(g, "cnn")

    # ---- scikit-learn models through skl2onnx
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression

    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    opsets = {"": 17, "ai.onnx.ml": 3}
    sk = {
        "logreg": LogisticRegression(max_iter=500).fit(X, y),
        "rfc": RandomForestClassifier(n_estimators=6, max_depth=4, random_state=0).fit(X, np.array(["setosa", "versicolor", "virginica"])[y]),
        "rfr": RandomForestRegressor(n_estimators=6, max_depth=4, random_state=0).fit(X[:, :3], X[:, 3]),
        "linreg": LinearRegression().fit(X[:, :2], X[:, 2:]),
    }
    for name, model in sk.items():
        xs = X[:1, :3] if name == "rfr" else X[:1, :2] if name == "linreg" else X[:1]
        onx = to_onnx(model, xs, target_opset=opsets)
        onnx.save(onx, os.path.join(OUT, name + ".onnx"))

    # ---- fixtures: onnxruntime outputs at batch 1 and batch > 1
    def tensor_json(a):
        a = np.asarray(a)
        if a.dtype == np.float32:
            dt, data = "FP32", [float(v) for v in a.ravel()]
        elif a.dtype == np.int64:
            dt, data = "INT64", [int(v) for v in a.ravel()]
        elif a.dtype.kind in "OU":
            dt, data = "BYTES", [str(v) for v in a.ravel()]
        else:
            raise SystemExit(f"unexpected dtype {a.dtype}")
        return {"shape": list(a.shape), "datatype": dt, "data": data}

    def zipmap_json(rows):
        keys = list(rows[0].keys())
        return {"shape": [len(rows), len(keys)], "datatype": "FP32", "labels": [str(k) if isinstance(k, str) else int(k) for k in keys],
                "data": [float(r[k]) for r in rows for k in keys]}

    feats = {"mlp": (16,), "cnn": (3, 12, 12), "logreg": (4,), "rfc": (4,), "rfr": (3,), "linreg": (2,)}
    for name, shape in feats.items():
        path = os.path.join(OUT, name + ".onnx")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        in_name = sess.get_inputs()[0].name
        cases = []
        for batch in (1, 3):
            if name in ("mlp", "cnn"):
                x = rng.standard_normal((batch, *shape)).astype(np.float32)
            else:
                idx = rng.choice(len(X), batch, replace=False)
                x = (X[idx] + rng.normal(0, 0.05, X[idx].shape)).astype(np.float32)[:, :shape[0]]
            outs = sess.run(None, {in_name: x})
            result = {}
            for meta, val in zip(sess.get_outputs(), outs):
                result[meta.name] = zipmap_json(val) if isinstance(val, list) else tensor_json(val)
            cases.append({"batch": batch, "inputs": {in_name: tensor_json(x)}, "outputs": result})
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump({"model": name + ".onnx", "onnxruntime": ort.__version__, "onnx": onnx.__version__,
                       "cases": cases}, f, indent=None)
        print(f"{name}: {os.path.getsize(path)} B model, outputs {[o.name for o in sess.get_outputs()]}")


def op_cases():
    """Single-operator models for the tricky cases, with onnxruntime's outputs, in one ops.json
    (models embedded as base64 so the fixture folder stays small and flat)."""
    import base64
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    cases = []
    onnx_type = {np.float32: TensorProto.FLOAT, np.int64: TensorProto.INT64}

    def case(name, op, inputs, attrs=None, consts=None, opset=17, n_out=1, domain=""):
        """inputs: list of (name, array) fed at run time; consts: list of (name, array) initializers."""
        consts = consts or []
        in_names = [n for n, _ in inputs] + [n for n, _ in consts]
        node = helper.make_node(op, in_names, [f"y{i}" for i in range(n_out)], name=name, domain=domain, **(attrs or {}))
        g = helper.make_graph(
            [node], name,
            [helper.make_tensor_value_info(n, onnx_type[a.dtype.type], list(a.shape)) for n, a in inputs],
            [helper.make_empty_tensor_value_info(f"y{i}") for i in range(n_out)],
            [numpy_helper.from_array(a, n) for n, a in consts])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        data = m.SerializeToString()
        sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        outs = sess.run(None, {n: a for n, a in inputs})
        def tj(a):
            a = np.asarray(a)
            dt = {"float32": "FP32", "int64": "INT64", "bool": "BOOL"}[str(a.dtype)]
            vals = a.ravel().tolist()
            return {"shape": list(a.shape), "datatype": dt, "data": [int(v) for v in vals] if dt == "BOOL" else vals}
        cases.append({"name": name, "model": base64.b64encode(data).decode(),
                      "inputs": {n: tj(a) for n, a in inputs}, "outputs": [tj(o) for o in outs]})

    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    # numpy broadcasting
    case("add_row_broadcast", "Add", [("a", f(2, 3, 4)), ("b", f(4))])
    case("sub_middle_broadcast", "Sub", [("a", f(2, 1, 4)), ("b", f(3, 1))])
    case("mul_both_broadcast", "Mul", [("a", f(1, 3, 1)), ("b", f(2, 1, 5))])
    case("div_scalar", "Div", [("a", f(2, 3))], consts=[("b", np.array(2.5, np.float32))])
    case("add_int64", "Add", [("a", np.array([[1, 2, 3]], np.int64)), ("b", np.array([[10], [20]], np.int64))])
    # Conv variants
    case("conv_pads_strides", "Conv", [("x", f(2, 3, 7, 6))], {"kernel_shape": [3, 2], "pads": [1, 0, 2, 1], "strides": [2, 1]}, [("w", f(4, 3, 3, 2)), ("b", f(4))])
    case("conv_groups_dilations", "Conv", [("x", f(1, 4, 9, 9))], {"kernel_shape": [3, 3], "group": 2, "dilations": [2, 3], "pads": [1, 1, 1, 1]}, [("w", f(6, 2, 3, 3))])
    case("conv_depthwise_same_upper", "Conv", [("x", f(1, 3, 5, 5))], {"kernel_shape": [3, 3], "group": 3, "auto_pad": "SAME_UPPER", "strides": [2, 2]}, [("w", f(3, 1, 3, 3))])
    case("conv_1x1_direct", "Conv", [("x", f(2, 5, 3, 4))], {"kernel_shape": [1, 1]}, [("w", f(7, 5, 1, 1)), ("b", f(7))])
    case("conv_1d", "Conv", [("x", f(2, 2, 10))], {"kernel_shape": [3], "pads": [1, 2], "strides": [2]}, [("w", f(3, 2, 3))])
    # pools
    case("maxpool_ceil_pads", "MaxPool", [("x", f(1, 2, 7, 7))], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1})
    case("maxpool_dilations", "MaxPool", [("x", f(1, 1, 8, 8))], {"kernel_shape": [2, 2], "dilations": [2, 2]})
    case("avgpool_include_pad", "AveragePool", [("x", f(1, 2, 5, 5))], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1})
    case("avgpool_exclude_pad", "AveragePool", [("x", f(1, 2, 5, 5))], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]})
    # softmax axes
    case("softmax_axis0", "Softmax", [("x", f(3, 4))], {"axis": 0})
    case("softmax_axis1_rank3", "Softmax", [("x", f(2, 3, 4))], {"axis": 1})
    case("logsoftmax_last", "LogSoftmax", [("x", f(2, 5))])
    # gather
    case("gather_axis0_negative", "Gather", [("x", f(4, 3))], {"axis": 0}, [("i", np.array([[3, -1], [0, 1]], np.int64))])
    case("gather_axis1", "Gather", [("x", f(2, 5, 3))], {"axis": 1}, [("i", np.array([4, 0, 2], np.int64))])
    case("gather_scalar_index", "Gather", [("x", f(3, 4))], {"axis": 1}, [("i", np.array(2, np.int64))])
    # transpose
    case("transpose_perm_021", "Transpose", [("x", f(2, 3, 4))], {"perm": [0, 2, 1]})
    case("transpose_perm_2013", "Transpose", [("x", f(2, 3, 4, 5))], {"perm": [2, 0, 1, 3]})
    case("transpose_default", "Transpose", [("x", f(2, 3, 4))])
    # shape ops
    case("reshape_zero_minus1", "Reshape", [("x", f(2, 3, 4))], consts=[("s", np.array([0, -1], np.int64))])
    case("flatten_axis2", "Flatten", [("x", f(2, 3, 4, 5))], {"axis": 2})
    case("concat_axis1", "Concat", [("a", f(2, 1, 3)), ("b", f(2, 4, 3))], {"axis": 1})
    case("squeeze_axes", "Squeeze", [("x", f(1, 3, 1, 2))], consts=[("axes", np.array([0, -2], np.int64))])
    case("unsqueeze_axes", "Unsqueeze", [("x", f(3, 2))], consts=[("axes", np.array([0, 3], np.int64))])
    case("shape_start_end", "Shape", [("x", f(2, 3, 4, 5))], {"start": 1, "end": -1}, opset=15)
    case("cast_float_to_int64", "Cast", [("x", (f(2, 3) * 4))], {"to": TensorProto.INT64})
    # activations and math
    case("gelu_opset20", "Gelu", [("x", f(3, 4))], opset=20)
    case("gelu_tanh_opset20", "Gelu", [("x", f(3, 4))], {"approximate": "tanh"}, opset=20)
    case("clip_min_only", "Clip", [("x", f(3, 4))], consts=[("lo", np.array(-0.5, np.float32))])
    case("leakyrelu", "LeakyRelu", [("x", f(3, 4))], {"alpha": 0.2})
    case("batchnorm_unfused", "BatchNormalization", [("x", f(2, 3, 2, 2))], {"epsilon": 1e-3},
         [("s", f(3)), ("b", f(3)), ("m", f(3)), ("v", np.abs(f(3)) + 0.5)])
    case("gemm_trans_alpha_beta", "Gemm", [("a", f(4, 3)), ("b", f(5, 4))], {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0}, [("c", f(1, 5))])
    case("gemm_batch1_gemv", "Gemm", [("a", f(1, 6))], {"transB": 0}, [("b", f(6, 3)), ("c", f(3))])
    case("matmul_batched_broadcast", "MatMul", [("a", f(2, 1, 3, 4)), ("b", f(3, 4, 5))])
    case("matmul_vector", "MatMul", [("a", f(4)), ("b", f(4, 3))])
    case("global_average_pool", "GlobalAveragePool", [("x", f(2, 3, 4, 5))])
    with open(os.path.join(OUT, "ops.json"), "w") as fh:
        json.dump({"onnxruntime": ort.__version__, "cases": cases}, fh)
    print(f"ops: {len(cases)} single-operator cases")

    # A model whose weights live in an external data file next to it.
    W = f(3, 4)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "external",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
                          [numpy_helper.from_array(W, "W")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, os.path.join(OUT, "external.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="external.weights", size_threshold=0)
    x = f(2, 3)
    y = ort.InferenceSession(os.path.join(OUT, "external.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with open(os.path.join(OUT, "external.json"), "w") as fh:
        json.dump({"x": x.ravel().tolist(), "y": y.ravel().tolist()}, fh)


if __name__ == "__main__":
    bootstrap()
    main()
    op_cases()
