// Inference: ONNX models on OpenBLAS, and the V1/V2 inference protocol codecs.
//
// Loading (`OnnxModel.load(path:)`) decodes the protobuf with the committed swift-protobuf code
// (`Proto/onnx.pb.swift`), checks the opsets (default domain 13–25, ai.onnx.ml 1–5), and builds a
// kernel for every node before anything runs, so an unsupported operator or attribute fails at
// load time with the node's name and operator — never on a request. The graph is then rewritten
// once: Identity/Dropout are bypassed, nodes whose inputs are all constants are evaluated and
// replaced by their results, BatchNormalization is folded into the preceding Conv's weights and
// bias, MatMul + bias Add becomes one MatMul with a bias, Relu/LeakyRelu/Clip/Sigmoid/Tanh are
// fused into the Gemm/Conv/MatMul that feeds them, and a MaxPool into the Conv that feeds it.
//
// Execution (`ExecutionPlan`, `InferenceSession`) walks the steps in order. Every intermediate
// value gets a slot at load time; slots are shared between values whose lifetimes do not overlap,
// and a session keeps its slots' buffers between runs (they grow to the largest batch seen), so
// the steady state allocates only the output tensors it hands back. GEMM-shaped work goes to
// `cblas_sgemm`, and batch-1 products to `cblas_sgemv` on the weights' native layout. Conv with
// stride 1 and few output channels per group runs a direct convolution (`Ops/Conv+Direct.swift`:
// a C kernel, `CInferenceKernels`, compiled for AVX-512, AVX2 + FMA and the baseline and picked
// at run time, since Swift code is compiled for the baseline x86-64 only); other Convs are
// im2col + sgemm (1×1 stride-1 convolutions multiply the input directly). Each Conv output plane
// gets its bias, activation and fused pool while it is in cache. Shapes are computed per run, so
// a dynamic batch dimension costs nothing extra.
//
// Thread safety: `OnnxModel` is immutable and Sendable. A session is single-caller; `run` on the
// model borrows a pooled session under a lock and returns it afterwards. OpenBLAS's own thread
// count is left to the process (`OPENBLAS_NUM_THREADS`); with concurrent requests on small hosts,
// one BLAS thread per request is usually the better choice.
//
// The codecs (`Codec/`) turn V2 REST JSON, the Triton binary tensor extension and V1 `:predict`
// bodies into typed requests and back, with KServe's error messages. `Endpoint/ModelEndpoint`
// maps a method and path to those codecs (health, metadata, infer, V1 predict) without knowing
// HTTP libraries; Serving's model workers run what it prepares (batched when asked) and hand the
// answers to the gateway.
