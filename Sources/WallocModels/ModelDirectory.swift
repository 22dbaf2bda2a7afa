import Foundation
import WallocNN
import WallocIO
import WallocTensor
import WallocWavelets

/// A model on disk is a directory holding `config.json` (the reference's constructor arguments
/// plus `"type"`) and `model.safetensors` (the reference `state_dict()`, float32).
extension Codec {
    public static let configFileName = "config.json"
    public static let weightsFileName = "model.safetensors"

    /// Loads a model directory, checking every parameter's presence and shape against the
    /// configuration, rejecting unknown parameters, and checking the wavelet filter buffers the
    /// reference stores (`wt.*`, `iwt.*`) are bior4.4.
    public static func load(from directory: URL) throws -> Codec {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) else {
            throw WallocError("model directory \(directory.path) does not exist")
        }
        guard isDirectory.boolValue else {
            throw WallocError("\(directory.path) is not a model directory (expected a folder with \(configFileName) and \(weightsFileName))")
        }
        let config = try ModelConfig.read(directory.appendingPathComponent(configFileName))
        let weightsURL = directory.appendingPathComponent(weightsFileName)
        let weights = try Safetensors.read(weightsURL)
        do {
            return try Codec(config: config, parameters: weights.tensors)
        } catch let e as WallocError {
            throw WallocError("\(weightsURL.path): \(e.message)")
        }
    }

    /// Builds a codec from a configuration and a `state_dict`-style parameter map.
    public init(config: ModelConfig, parameters: [String: Tensor]) throws {
        var placeholders = ParameterInitializer.forLoading
        try self.init(config: config, initializer: &placeholders)
        let used = try load(from: parameters)
        for (name, tensor) in parameters.sorted(by: { $0.key < $1.key }) where !used.contains(name) {
            if let expected = Codec.waveletBuffers(modality: config.modality)[name] {
                guard tensor.count == expected.count,
                      zip(tensor.scalars, expected).allSatisfy({ abs($0 - $1) <= 1e-6 }) else {
                    throw WallocError("wavelet filter buffer '\(name)' is not bior4.4; only the reference's bior4.4 transform is supported")
                }
                continue
            }
            throw WallocError("unexpected parameter '\(name)' (shape \(tensor.shape)) for a \(config.type.rawValue) with this configuration; is config.json right?")
        }
    }

    /// The wavelet filter buffers the reference keeps in its `state_dict`, by key.
    static func waveletBuffers(modality: Modality) -> [String: [Float]] {
        switch modality {
        case .image:
            return ["wt.h0_col": Bior44.h0, "wt.h0_row": Bior44.h0, "wt.h1_col": Bior44.h1, "wt.h1_row": Bior44.h1,
                    "iwt.g0_col": Bior44.g0, "iwt.g0_row": Bior44.g0, "iwt.g1_col": Bior44.g1, "iwt.g1_row": Bior44.g1]
        case .audio:
            return ["wt.h0": Bior44.h0, "wt.h1": Bior44.h1, "iwt.g0": Bior44.g0, "iwt.g1": Bior44.g1]
        }
    }

    /// Writes `config.json` and `model.safetensors` (with the wavelet buffers, as the reference's
    /// `state_dict()` has them) into `directory`, creating it if needed; each file atomically.
    public func save(to directory: URL, metadata: [String: String] = [:]) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var tensors = [String: Tensor]()
        for (name, t) in namedParameters() { tensors[name] = t }
        for (name, values) in Codec.waveletBuffers(modality: modality) {
            let shape: [Int]
            if modality == .audio { shape = [1, 1, values.count] } else {
                shape = name.hasSuffix("_col") ? [1, 1, values.count, 1] : [1, 1, 1, values.count]
            }
            tensors[name] = Tensor(shape: shape, scalars: values)
        }
        try Safetensors(tensors: tensors, metadata: metadata).write(to: directory.appendingPathComponent(Codec.weightsFileName))
        try FileIO.writeAtomically(config.encoded(), to: directory.appendingPathComponent(Codec.configFileName))
    }
}
