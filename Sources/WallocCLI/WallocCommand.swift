import ArgumentParser
import Walloc

@main
struct WallocCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "walloc",
        abstract: "WaLLoC: wavelet learned lossy compression, in Swift.",
        version: "0.1.0",
        subcommands: [Encode.self, Decode.self, Models.self, Info.self, Compare.self, Train.self, Eval.self, Latents.self, Reconstruct.self, Classify.self, Bench.self]
    )
}

/// Options every command that computes shares.
struct ComputeOptions: ParsableArguments {
    @Option(name: .long, help: "Threads to use (default: all cores).")
    var threads: Int?
    @Option(name: .long, help: "Convolution kernels of the decoder networks: onednn or blas (default: onednn where built in; env WALLOC_KERNELS).")
    var kernels: String?
    @Option(name: .long, help: "Decoder precision: auto (int8 where the CPU has AVX-512 VNNI and bf16, else bf16 where it has bf16 dot products, else winograd), fp32 (exact), bf16, int8 (bf16 with the resnet blocks' 3x3 convolutions in int8) or winograd (float32, 3x3 convolutions by Winograd's F(4x4, 3x3)).")
    var precision: String?

    /// Applies the options; commands that train or compare against reference values pass
    /// `defaultPrecision: .fp32`.
    func apply(defaultPrecision: Kernels.Precision = .auto) throws {
        Allocator.retainFreedMemory()
        BLAS.setThreads(1)  // Walloc's workers run BLAS; OpenBLAS's own threads stop spinning now.
        if let kernels {
            guard let b = Kernels.Backend(rawValue: kernels.lowercased()) else {
                throw ValidationError("--kernels must be one of: \(Kernels.Backend.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            Kernels.setBackend(b)
        }
        if let precision {
            guard let p = Kernels.Precision(rawValue: precision.lowercased()) else {
                throw ValidationError("--precision must be one of: \(Kernels.Precision.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            Kernels.setPrecision(p)
        } else {
            Kernels.setPrecision(defaultPrecision)
        }
        if let threads {
            guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
            Threading.setCount(threads)
        }
    }
}
