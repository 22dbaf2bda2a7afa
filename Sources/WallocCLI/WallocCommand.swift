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

    func apply() throws {
        Allocator.retainFreedMemory()
        if let threads {
            guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
            Threading.setCount(threads)
        }
    }
}
