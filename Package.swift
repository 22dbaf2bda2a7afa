// swift-tools-version:6.1
import PackageDescription

#if os(Linux)
let blasDependencies: [Target.Dependency] = ["CBLAS"]
let blasTargets: [Target] = [
    .systemLibrary(
        name: "CBLAS",
        pkgConfig: "openblas",
        providers: [.apt(["libopenblas-dev"])]
    )
]
#else
let blasDependencies: [Target.Dependency] = []
let blasTargets: [Target] = []
#endif

let package = Package(
    name: "Walloc",
    platforms: [.macOS(.v15), .iOS(.v18)],
    products: [
        .library(name: "Walloc", targets: ["Walloc"]),
        .executable(name: "walloc", targets: ["WallocCLI"]),
        .executable(name: "walloc-train-bench", targets: ["WallocTrainBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: blasTargets + [
        .target(name: "WallocTensor", dependencies: blasDependencies),
        .target(name: "WallocWavelets", dependencies: ["WallocTensor"]),
        .target(name: "WallocNN", dependencies: ["WallocTensor"]),
        .target(name: "WallocIO", dependencies: ["WallocTensor"]),
        .target(
            name: "WallocModels",
            dependencies: ["WallocTensor", "WallocWavelets", "WallocNN", "WallocIO"]
        ),
        .target(
            name: "WallocTraining",
            dependencies: ["WallocTensor", "WallocWavelets", "WallocNN", "WallocIO", "WallocModels"]
        ),
        .target(
            name: "Walloc",
            dependencies: ["WallocTensor", "WallocWavelets", "WallocNN", "WallocIO", "WallocModels", "WallocTraining"]
        ),
        .executableTarget(
            name: "WallocCLI",
            dependencies: [
                "Walloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "WallocTrainBench", dependencies: ["Walloc"], path: "Sources/WallocTrainBench"),
        .testTarget(name: "WallocTests", dependencies: ["Walloc", "WallocCLI"]),
        .testTarget(name: "WallocTrainingTests", dependencies: ["Walloc"]),
    ]
)
