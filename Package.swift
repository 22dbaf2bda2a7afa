// swift-tools-version:6.1
import PackageDescription

#if os(Linux)
let blasDependencies: [Target.Dependency] = ["CBLAS"]
let kernelDependencies: [Target.Dependency] = ["CDNNL"]
let cryptoDependencies: [Target.Dependency] = ["CCrypto"]
let blasTargets: [Target] = [
    // oneDNN's convolutions (WallocNN's Kernels). Debian's libdnnl-dev ships no pkg-config file;
    // its header and library are in the default search paths.
    .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
    .systemLibrary(
        name: "CBLAS",
        pkgConfig: "openblas",
        providers: [.apt(["libopenblas-dev"])]
    ),
    // SHA-256 for model fingerprints (CryptoKit on Apple platforms).
    .systemLibrary(
        name: "CCrypto",
        pkgConfig: "libcrypto",
        providers: [.apt(["libssl-dev"])]
    ),
]
#else
let blasDependencies: [Target.Dependency] = []
let kernelDependencies: [Target.Dependency] = []
let cryptoDependencies: [Target.Dependency] = []
let blasTargets: [Target] = []
#endif

let package = Package(
    name: "Walloc",
    platforms: [.macOS(.v15), .iOS(.v18)],
    products: [
        .library(name: "Walloc", targets: ["Walloc"]),
        .executable(name: "walloc", targets: ["WallocCLI"]),
        .executable(name: "walloc-train-bench", targets: ["WallocTrainBench"]),
        .executable(name: "walloc-experiments", targets: ["WallocExperiments"]),
        .executable(name: "walloc-fuzz", targets: ["WallocFuzzer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: blasTargets + [
        .target(name: "WallocTensor", dependencies: blasDependencies),
        .target(name: "WallocWavelets", dependencies: ["WallocTensor"]),
        .target(name: "WallocNN", dependencies: ["WallocTensor"] + kernelDependencies),
        .target(name: "WallocIO", dependencies: ["WallocTensor"]),
        .target(
            name: "WallocModels",
            dependencies: ["WallocTensor", "WallocWavelets", "WallocNN", "WallocIO"] + cryptoDependencies
        ),
        // zlib's crc32 for the .wlc container.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "WallocCoding", dependencies: ["WallocTensor", "WallocIO", "CZlib"],
            // The kernel tests reach the coder's internals (`@testable`) in release builds too.
            swiftSettings: [.unsafeFlags(["-enable-testing"])]
        ),
        .target(
            name: "WallocPipeline",
            dependencies: ["WallocTensor", "WallocIO", "WallocModels", "WallocMedia", "WallocCoding"],
            resources: [.copy("Models")]
        ),
        .target(
            name: "WallocTraining",
            dependencies: ["WallocTensor", "WallocWavelets", "WallocNN", "WallocIO", "WallocModels", "WallocMedia", "WallocCoding"]
        ),
        .target(
            name: "WallocLearning",
            dependencies: ["WallocTensor", "WallocNN", "WallocIO", "WallocModels", "WallocMedia", "WallocCoding", "WallocPipeline", "WallocTraining"]
        ),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CWebP", pkgConfig: "libwebp", providers: [.apt(["libwebp-dev"])]),
        .systemLibrary(name: "CTIFF", pkgConfig: "libtiff-4", providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CSndFile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        // setjmp/longjmp error handling for libpng and libjpeg, which Swift cannot do itself.
        .target(name: "CMediaShims", dependencies: ["CPNG", "CJPEG", "CZlib"]),
        .target(
            name: "WallocMedia",
            dependencies: ["WallocTensor", "WallocIO", "CMediaShims", "CWebP", "CTIFF", "CSndFile"]
        ),
        // Baseline codecs for evaluation: AVIF (libaom/dav1d through libavif) and JPEG XL.
        // Their headers only: CEvalLibraries loads the libraries when first used (dlopen).
        .systemLibrary(name: "CAVIF", providers: [.apt(["libavif-dev"])]),
        .systemLibrary(name: "CJXL", providers: [.apt(["libjxl-dev"])]),
        .target(name: "CEvalLibraries", dependencies: ["CAVIF", "CJXL"], linkerSettings: [.linkedLibrary("dl")]),
        // Opus (libopusenc to encode, libopusfile to decode) and libsamplerate, for the Opus baseline.
        .systemLibrary(name: "COpus", pkgConfig: "libopusenc", providers: [.apt(["libopusenc-dev", "libopusfile-dev"])]),
        .systemLibrary(name: "CSampleRate", pkgConfig: "samplerate", providers: [.apt(["libsamplerate0-dev"])]),
        .target(name: "COpusShims", dependencies: ["COpus"]),
        .target(
            name: "WallocEval",
            dependencies: ["WallocTensor", "WallocIO", "WallocNN", "WallocModels", "WallocMedia", "WallocCoding", "WallocPipeline",
                           "CAVIF", "CJXL", "CEvalLibraries", "COpus", "COpusShims", "CSampleRate"]
        ),
        .target(
            name: "Walloc",
            dependencies: ["WallocTensor", "WallocWavelets", "WallocNN", "WallocIO", "WallocModels", "WallocMedia", "WallocCoding", "WallocPipeline", "WallocTraining", "WallocEval", "WallocLearning"]
        ),
        .executableTarget(
            name: "WallocCLI",
            dependencies: [
                "Walloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // FreeType renders the text of the compressed-learning experiment's image dataset.
        .systemLibrary(name: "CFreeType", pkgConfig: "freetype2", providers: [.apt(["libfreetype-dev"])]),
        .executableTarget(
            name: "WallocExperiments",
            dependencies: ["Walloc", "CFreeType", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/WallocExperiments"
        ),
        // The parsers of untrusted bytes as fuzz targets, and their libFuzzer driver (make fuzz).
        .target(
            name: "WallocFuzz",
            dependencies: ["WallocTensor", "WallocIO", "WallocModels", "WallocMedia", "WallocCoding", "WallocPipeline"]
        ),
        .executableTarget(name: "WallocFuzzer", dependencies: ["WallocFuzz"]),
        .executableTarget(name: "WallocTrainBench", dependencies: ["Walloc"], path: "Sources/WallocTrainBench"),
        .testTarget(name: "WallocTests", dependencies: ["Walloc", "WallocCLI", "WallocFuzz"]),
        .testTarget(name: "WallocMediaTests", dependencies: ["Walloc"]),
        .testTarget(name: "WallocCodingTests", dependencies: ["Walloc"]),
        .testTarget(name: "WallocTrainingTests", dependencies: ["Walloc"]),
        .testTarget(name: "WallocLearningTests", dependencies: ["Walloc"]),
        .testTarget(name: "WallocEvalTests", dependencies: ["Walloc"]),
    ]
)
