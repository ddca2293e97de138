#!/usr/bin/env bash
# Regenerates Sources/Inference/Proto/onnx.pb.swift from the vendored onnx-ml.proto.
# Run by hand, once per proto update; the output is committed so that builds never need the
# swift-protobuf build plugin (which costs ~10 minutes per clean build).
#
# Needs: protoc (apt: protobuf-compiler) and protoc-gen-swift built from the same swift-protobuf
# version the package depends on (1.39.0):
#   cp -r .build/checkouts/swift-protobuf /tmp/swift-protobuf-gen
#   (cd /tmp/swift-protobuf-gen && swift build --product protoc-gen-swift)
#   PROTOC_GEN_SWIFT=/tmp/swift-protobuf-gen/.build/debug/protoc-gen-swift scripts/generate-onnx-proto.sh
#
# The proto is onnx/onnx's onnx-ml.proto (Apache-2.0, SPDX header kept), copied from the `onnx`
# 1.23.2 wheel; onnx-ml.proto is onnx.proto plus the map/sequence types that ai.onnx.ml models use.
set -euo pipefail
cd "$(dirname "$0")/.."
plugin=${PROTOC_GEN_SWIFT:-/tmp/swift-protobuf-gen/.build/debug/protoc-gen-swift}
proto_dir=Sources/Inference/Proto
protoc --plugin=protoc-gen-swift="$plugin" \
  --swift_opt=Visibility=Internal \
  --swift_opt=FileNaming=DropPath \
  --swift_out="$proto_dir" \
  -I "$proto_dir" "$proto_dir/onnx-ml.proto"
mv "$proto_dir/onnx-ml.pb.swift" "$proto_dir/onnx.pb.swift"
echo "generated $proto_dir/onnx.pb.swift"
