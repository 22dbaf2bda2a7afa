import ArgumentParser
import Foundation
import Walloc

/// `walloc latents`: signal -> rounded integer latents.
struct Latents: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode a signal to its integer latents (no entropy coding).",
        discussion: """
        INPUT is a float32 .npy of shape [C, H, W] (images) or [C, L] (audio), optionally with a \
        leading batch dimension of 1, values in [-0.5, 0.5], sizes multiples of 2^J. OUT holds the \
        rounded latents as float32 [latent_dim, h, w] or [latent_dim, l].
        """
    )

    @Option(help: "Model directory (config.json + model.safetensors).") var model: String
    @Argument(help: "Input signal (.npy).") var input: String
    @Option(name: .shortAndLong, help: "Output latents (.npy).") var output: String
    @Flag(help: "Overwrite OUT if it exists.") var force = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        let outURL = URL(fileURLWithPath: output)
        try OutputPolicy(force: force).check(outURL, inputs: [URL(fileURLWithPath: input)])
        let codec = try loadModel(model)
        let rank = codec.modality == .image ? 3 : 2
        let x = try dropBatch(try readTensor(input), rank: rank, what: input)
        try codec.checkSignal(x)
        try checkFinite(x, what: input)
        let peak = x.scalars.reduce(Float(0)) { max($0, abs($1)) }
        if peak > 0.5 + 1e-3 {
            printError("warning: \(input): values reach \(peak), outside [-0.5, 0.5]; the models expect signals scaled to that range")
        }
        let y = try codec.encode(x)
        try FileIO.writeAtomically(NPY.encode(y), to: outURL)
    }
}

/// `walloc reconstruct`: integer latents -> clamped signal.
struct Reconstruct: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode integer latents to the clamped reconstruction.",
        discussion: """
        LATENTS is a float32 .npy [latent_dim, h, w] or [latent_dim, l] (a leading batch dimension \
        of 1 accepted) of integers in the quantiser's range. OUT is the signal clamped to \
        [-0.5, 0.5], as the reference forward() returns it in eval mode.
        """
    )

    @Option(help: "Model directory (config.json + model.safetensors).") var model: String
    @Argument(help: "Latents (.npy).") var latents: String
    @Option(name: .shortAndLong, help: "Output signal (.npy).") var output: String
    @Flag(help: "Overwrite OUT if it exists.") var force = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        let outURL = URL(fileURLWithPath: output)
        try OutputPolicy(force: force).check(outURL, inputs: [URL(fileURLWithPath: latents)])
        let codec = try loadModel(model)
        let rank = codec.modality == .image ? 3 : 2
        let y = try dropBatch(try readTensor(latents), rank: rank, what: latents)
        do {
            try codec.checkLatents(y)
        } catch let e as WallocError {
            throw WallocError("\(latents): \(e.message)")
        }
        let x = try codec.decode(y)
        try FileIO.writeAtomically(NPY.encode(x), to: outURL)
    }
}

func checkFinite(_ t: Tensor, what: String) throws {
    if let i = t.scalars.firstIndex(where: { !$0.isFinite }) {
        throw WallocError("\(what): contains a non-finite value (\(t.scalars[i])) at flat index \(i)")
    }
}
