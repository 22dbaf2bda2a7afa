import Foundation
import WallocCoding
import WallocIO
import WallocMedia
import WallocModels
import WallocPipeline
import WallocTensor

/// The parsers that read untrusted bytes, one fuzz target each (docs/fuzzing.md).
///
/// `run` feeds one input to a target. A clean error (`throw`) is the expected answer to bad
/// bytes; a crash, a trap (a failed precondition, an integer overflow, an out-of-range index), a
/// sanitizer report, a hang or unbounded memory is a finding. The libFuzzer driver
/// (`walloc-fuzz`, `make fuzz`) and the regression tests (FuzzRegressionTests) call the same
/// function.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// The `.wlc` container and header (`WLCFile.decode`), and the header re-encoded.
    case container
    /// A whole `.wlc` file to integer latents with the default models (header checks against
    /// the model, then the rANS coder or the WebP/PNG latent images).
    case wlc
    /// The rANS latent payload decoder alone, on a shape, bit depth and table choice taken from
    /// the first 4 bytes.
    case rans
    /// The WebP/PNG latent-image payload decoder, on a shape taken from the first 3 bytes.
    case latentImage = "latent-image"
    /// The safetensors reader (header and tensors).
    case safetensors
    /// The `.npy` reader.
    case npy
    /// A model's `config.json`.
    case config
    /// A model's `entropy.json` (default entropy tables).
    case entropy
    /// PNG, JPEG, WebP and TIFF through Debian's libpng, libjpeg-turbo, libwebp and libtiff.
    case image
    /// WAV, FLAC and OGG/Vorbis (and the rest of libsndfile's formats) through libsndfile.
    case audio

    /// Loads what the target keeps for the whole run: the default models for `wlc` and `rans`.
    public func prepare() throws {
        switch self {
        case .wlc: _ = try FuzzModels.image(); _ = try FuzzModels.audio()
        case .rans: _ = try FuzzModels.image()
        default: break
        }
    }

    /// Runs one input; errors are swallowed (they are the right answer), anything else is not.
    public func run(_ data: Data) {
        do { try body(data) } catch {}
    }

    /// Runs one input, passing a thrown error on (the regression tests look at both kinds).
    public func body(_ data: Data) throws {
        switch self {
        case .container:
            let file = try WLCFile.decode(data)
            _ = try WLCFile.decode(file.encode())
        case .wlc:
            let file = try WLCFile.decode(data)
            let compressor = file.header.originalShape.count == 2 ? try FuzzModels.audio() : try FuzzModels.image()
            _ = try compressor.latents(of: file)
        case .rans:
            guard data.count >= 4 else { throw WallocError("short input") }
            let b = [UInt8](data.prefix(4))
            let payload = data.dropFirst(4)
            let withTables = b[3] & 1 == 1
            let model = withTables ? try FuzzModels.image().entropyModel : nil
            let bits = withTables ? 12 : [8, 12, 16, 4][Int(b[3] >> 1) & 3]
            let channels = withTables ? 64 : 1 + Int(b[0] % 16)
            let shape = b[3] & 0x80 == 0 ? [channels, 1 + Int(b[1] % 32), 1 + Int(b[2] % 32)] : [channels, 1 + Int(b[1]) * 8 + Int(b[2] % 8)]
            _ = try LatentCoder.decode(Data(payload), shape: shape, bits: bits, defaults: model)
        case .latentImage:
            guard data.count >= 3 else { throw WallocError("short input") }
            let b = [UInt8](data.prefix(3))
            _ = try LatentImage.decode(Data(data.dropFirst(3)), shape: [1 + Int(b[0] % 64), 1 + Int(b[1] % 32), 1 + Int(b[2] % 32)], bits: 8)
        case .safetensors:
            _ = try Safetensors.decode(data)
        case .npy:
            _ = try NPY.decode(data)
        case .config:
            let config = try ModelConfig.decode(data, name: "config.json")
            _ = try ModelConfig.decode(config.encoded(), name: "config.json (re-encoded)")
        case .entropy:
            _ = try Compressor.entropyModel(data, name: "entropy.json")
        case .image:
            _ = try ImageIO.decode(data, name: "image")
        case .audio:
            // libsndfile reads files: the input goes through a file in memory-backed /dev/shm
            // where there is one.
            let url = FuzzModels.scratchFile()
            try data.write(to: url)
            defer { try? FileManager.default.removeItem(at: url) }
            _ = try AudioIO.read(url)
        }
    }
}

/// The default models, loaded once per process.
enum FuzzModels {
    private static let models = Locked<[Modality: Compressor]>([:])

    static func image() throws -> Compressor { try load(.image) }
    static func audio() throws -> Compressor { try load(.audio) }

    private static func load(_ modality: Modality) throws -> Compressor {
        try models.withLock { models in
            if let c = models[modality] { return c }
            guard let dir = DefaultModels.directory(for: modality) else {
                fatalError("walloc-fuzz: the default \(modality.rawValue) model was not found (searched \(DefaultModels.searchPath.map(\.path)))")
            }
            let c = try Compressor.load(modelDirectory: dir)
            models[modality] = c
            return c
        }
    }

    /// A per-process scratch file path.
    static func scratchFile() -> URL {
        let shm = URL(fileURLWithPath: "/dev/shm")
        let dir = FileManager.default.fileExists(atPath: shm.path) ? shm : FileManager.default.temporaryDirectory
        return dir.appendingPathComponent("walloc-fuzz-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).bin")
    }
}
