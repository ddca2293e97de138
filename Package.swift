// swift-tools-version:6.2
import PackageDescription

/// The same strict settings on every target: Swift 6 language mode plus the upcoming features
/// that keep module boundaries honest.
let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Outpost",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "outpost", targets: ["Platform"]),
        .executable(name: "outpost-echo", targets: ["EchoWorkload"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "Store",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Gateway",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: strictSettings
        ),
        /// OpenBLAS's CBLAS interface (Debian: libopenblas-dev). Imported by Inference only.
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            providers: [.apt(["libopenblas-dev"])]
        ),
        /// Direct-convolution kernels compiled for AVX-512, AVX2 + FMA and the baseline, picked at run
        /// time (Swift has no per-function target features). Used by Inference only.
        .target(name: "CInferenceKernels", path: "Sources/CInferenceKernels"),
        /// ONNX model loading, the graph executor on OpenBLAS and the V1/V2 inference protocol codecs.
        .target(
            name: "Inference",
            dependencies: [
                "COpenBLAS",
                "CInferenceKernels",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["Proto/onnx-ml.proto"],
            swiftSettings: strictSettings
        ),
        /// Kernel latency benchmark for the inference engine (driven by bench/inference/run.py).
        .executableTarget(
            name: "InferenceBench",
            dependencies: ["Inference"],
            path: "bench/inference/Sources",
            swiftSettings: strictSettings
        ),
        /// fork + prctl(PR_SET_PDEATHSIG) + exec: a sequence Swift cannot express safely between
        /// fork and exec. Used by Serving only.
        .target(name: "CWorkerSpawn", path: "Sources/CWorkerSpawn"),
        .target(
            name: "Serving",
            dependencies: [
                "Store", "Gateway", "Inference", "CWorkerSpawn",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: strictSettings
        ),
        /// CloudEvents codec, brokers, triggers, the durable event log, the dispatcher, sources.
        .target(
            name: "Eventing",
            dependencies: [
                "Store", "Gateway",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "Platform",
            dependencies: [
                "Store", "Gateway", "Serving", "Inference", "Eventing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strictSettings
        ),
        /// The sample workload: a tiny HTTP server that follows the runtime contract.
        .executableTarget(name: "EchoWorkload", path: "Sources/EchoWorkload"),
        .target(
            name: "TestSupport",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(name: "EventingTests", dependencies: ["Eventing", "Store", "Gateway", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "StoreTests", dependencies: ["Store", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")], swiftSettings: strictSettings),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "InferenceTests",
            dependencies: ["Inference", "CInferenceKernels"],
            exclude: ["Fixtures"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ServingTests",
            dependencies: [
                "Serving", "Store", "Gateway", "Inference", "TestSupport", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "CompressNIO", package: "compress-nio"), .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings),
        .testTarget(
            name: "PlatformTests",
            dependencies: [
                "Platform", "Store", "TestSupport", "Gateway", "Eventing",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["TestSupport", .product(name: "AsyncHTTPClient", package: "async-http-client")],
            swiftSettings: strictSettings
        ),
    ]
)
