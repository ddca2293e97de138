#!/usr/bin/env python3
"""Drives an Outpost InferenceService with the stock tritonclient.http client.

Checks, against the recorded onnxruntime outputs of a fixture (relative error <= 1e-4):
  * server live/ready, model ready and metadata;
  * infer with JSON tensors and the client's default settings (it sends no Content-Type);
  * infer with binary tensors in and out (the Triton binary tensor extension).
Prints one "<check> ok" line per check and exits non-zero on the first failure.

The service's host name (<model>.<namespace>.<domain>) need not resolve: the client connects
to 127.0.0.1:<port> and names the service in the Host header.
"""
import argparse
import json
import sys

import numpy as np
import tritonclient.http as httpclient

DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", required=True, help="Host header, e.g. mlp.default.localhost")
    parser.add_argument("--model", required=True)
    parser.add_argument("--fixture", required=True, help="fixture JSON with cases of inputs and outputs")
    args = parser.parse_args()

    headers = {"Host": args.host}
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{args.port}", connection_timeout=30, network_timeout=60)
    check(client.is_server_live(headers=headers), "server live")
    check(client.is_server_ready(headers=headers), "server ready")
    check(client.is_model_ready(args.model, headers=headers), "model ready")
    metadata = client.get_model_metadata(args.model, headers=headers)
    check(metadata["name"] == args.model and metadata["inputs"], f"metadata {metadata}")
    print("metadata ok")

    with open(args.fixture) as f:
        cases = json.load(f)["cases"]
    for binary, label in ((False, "json-defaults"), (True, "binary")):
        for case in cases:
            inputs = []
            for name, tensor in case["inputs"].items():
                array = np.array(tensor["data"], dtype=DTYPES[tensor["datatype"]]).reshape(tensor["shape"])
                item = httpclient.InferInput(name, list(array.shape), tensor["datatype"])
                item.set_data_from_numpy(array, binary_data=binary)
                inputs.append(item)
            outputs = [httpclient.InferRequestedOutput(name, binary_data=binary) for name in case["outputs"]]
            result = client.infer(args.model, inputs, outputs=outputs, headers=headers)
            for name, expected in case["outputs"].items():
                got = result.as_numpy(name)
                want = np.array(expected["data"], dtype=np.float64).reshape(expected["shape"])
                check(got is not None and list(got.shape) == expected["shape"], f"{label}: output {name} shape {None if got is None else got.shape}")
                close = np.all(np.abs(got.astype(np.float64) - want) <= np.maximum(1e-5, 1e-4 * np.abs(want)))
                check(close, f"{label}: output {name} differs from onnxruntime")
        print(f"{label} ok")

    try:
        client.infer("no-such-model", inputs, headers=headers)
        check(False, "an unknown model must fail")
    except httpclient.InferenceServerException as error:
        check("no-such-model" in str(error), f"unknown model error: {error}")
    print("unknown-model ok")


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
