import Foundation
import WallocIO
import WallocModels
import WallocNN
import WallocTensor

/// Everything `walloc train` needs besides the data: the model to build, the optimisation, how
/// files become signals, and how the weights start. Read from a JSON file:
///
///     {"model": {config.json fields},
///      "training": {"steps": 20000, "batch_size": 8, "crop": 128, "lr": 1e-3, "warmup": 500,
///                   "schedule": "cosine", "min_lr": 1e-6, "weight_decay": 0.01, "clip": 1.0,
///                   "tf_weight": 0, "frozen": ["encoder."], "seed": 0, "validate_every": 500,
///                   "checkpoint_every": 500, "hold_out": 3, "validation_crop": 512},
///      "data": {"max_side": 1280, "max_seconds": 600},
///      "init": {"method": "pca", "scale": 3.0, "samples_per_signal": 20000}}
///
/// Only `model` is required; see docs/training.md for every field and its default.
public struct TrainingRecipe: Codable, Sendable, Equatable {
    public struct Training: Codable, Sendable, Equatable {
        public var steps: Int?
        public var batchSize: Int?
        public var crop: Int?
        public var lr: Float?
        public var warmup: Int?
        /// "plateau" (reduce-on-plateau, the reference's) or "cosine".
        public var schedule: String?
        public var minLR: Float?
        public var weightDecay: Float?
        public var clip: Float?
        public var tfWeight: Float?
        public var frozen: [String]?
        public var seed: UInt64?
        public var validateEvery: Int?
        public var checkpointEvery: Int?
        public var holdOut: Int?
        public var validationCrop: Int?
        /// Variable-rate models: the `[low, high]` quality range training draws from.
        public var quality: [Float]?
        /// How the signal-domain error enters the loss: "mse" (default), "normalized_mse" or "log_mse".
        public var distortion: TrainingObjective.Distortion?
        /// Audio: a log-mel term in the loss.
        public var spectral: SpectralLoss?
        /// Precision of the convolution products in training passes: "fp32" (default), "bf16" or
        /// "auto" (bf16 where oneDNN runs and the CPU has bf16 dot products; `Kernels.gemm`).
        public var precision: Kernels.Precision?

        enum CodingKeys: String, CodingKey {
            case steps, crop, lr, warmup, schedule, clip, frozen, seed, quality, spectral, distortion, precision
            case batchSize = "batch_size", minLR = "min_lr", weightDecay = "weight_decay", tfWeight = "tf_weight"
            case validateEvery = "validate_every", checkpointEvery = "checkpoint_every", holdOut = "hold_out"
            case validationCrop = "validation_crop"
        }
        public init() {}
    }

    public struct Data: Codable, Sendable, Equatable {
        public var maxSide: Int?
        /// Images: each training image is also added shrunk to each of these longer sides (a
        /// multi-scale training set; validation uses `max_side` alone).
        public var extraMaxSides: [Int]?
        public var maxSeconds: Double?
        enum CodingKeys: String, CodingKey { case maxSide = "max_side", extraMaxSides = "extra_max_sides", maxSeconds = "max_seconds" }
        public init() {}
    }

    public struct Initialization: Codable, Sendable, Equatable {
        /// "random" (PyTorch's default initialisation), "pca" (see `PCAInitialization`) or "model"
        /// (every parameter from the trained model directory at `path`, to fine-tune it: its
        /// network must be the recipe's; the `rate` section may differ).
        public var method: String
        public var scale: Float?
        public var samplesPerSignal: Int?
        /// Variable-rate models: the band weighting exponent of the PCA start (0: none).
        public var bandWeighting: Float?
        /// "model": the trained model's directory (relative to the working directory).
        public var path: String?
        enum CodingKeys: String, CodingKey {
            case method, scale, samplesPerSignal = "samples_per_signal", bandWeighting = "band_weighting", path
        }
        public init(method: String = "random") { self.method = method }
    }

    public var model: ModelConfig
    public var training: Training
    public var data: Data
    public var initialization: Initialization

    enum CodingKeys: String, CodingKey { case model, training, data, initialization = "init" }

    public init(model: ModelConfig, training: Training = Training(), data: Data = Data(), initialization: Initialization = Initialization()) {
        self.model = model; self.training = training; self.data = data; self.initialization = initialization
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(ModelConfig.self, forKey: .model)
        training = try c.decodeIfPresent(Training.self, forKey: .training) ?? Training()
        data = try c.decodeIfPresent(Data.self, forKey: .data) ?? Data()
        initialization = try c.decodeIfPresent(Initialization.self, forKey: .initialization) ?? Initialization()
        model.decodeTile = model.decodeTile ?? TrainingRecipe.decodeTile(for: model, crop: training.crop)
    }

    /// The decoder tiles a trained image model gets when its recipe names none: three training
    /// crops of latent positions with 8 of context (48 and 8 for 128-pixel crops at J = 3, the
    /// tiles measured best for the default RGB model), as its attention only ever saw crops.
    public static func decodeTile(for model: ModelConfig, crop: Int?) -> DecodeTile? {
        guard model.type == .codec2D else { return nil }
        let positions = (crop ?? 128) / model.downsampling
        return DecodeTile(size: max(16, 3 * positions), overlap: 8)
    }

    /// Reads and checks a recipe file.
    public static func read(_ url: URL) throws -> TrainingRecipe {
        let bytes = try FileIO.read(url)
        let recipe: TrainingRecipe
        do {
            recipe = try JSONDecoder().decode(TrainingRecipe.self, from: bytes)
        } catch let DecodingError.keyNotFound(key, context) {
            let path = (context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
            throw WallocError("\(url.path): missing field '\(path)'")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw WallocError("\(url.path): field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch let DecodingError.dataCorrupted(context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            if field == "training.precision" {
                throw WallocError("\(url.path): bad value for 'training.precision' (fp32, bf16 or auto)")
            }
            throw WallocError("\(url.path): \(field.isEmpty ? "not valid JSON" : "bad value for '\(field)'")")
        } catch {
            throw WallocError("\(url.path): not a valid training recipe (\(error))")
        }
        do { try recipe.validate() } catch let e as WallocError { throw WallocError("\(url.path): \(e.message)") }
        return recipe
    }

    /// Checks the values a run depends on.
    public func validate() throws {
        try model.validate()
        let t = training
        if let s = t.steps, s < 1 { throw WallocError("training.steps must be at least 1") }
        if let b = t.batchSize, b < 1 { throw WallocError("training.batch_size must be at least 1") }
        if let c = t.crop, c < model.downsampling || c % model.downsampling != 0 {
            throw WallocError("training.crop \(c) must be a positive multiple of 2^J = \(model.downsampling)")
        }
        if let lr = t.lr, !(lr > 0 && lr.isFinite) { throw WallocError("training.lr must be positive") }
        if let s = t.schedule, s != "plateau" && s != "cosine" { throw WallocError("training.schedule must be \"plateau\" or \"cosine\", got \"\(s)\"") }
        if let v = t.validateEvery, v < 1 { throw WallocError("training.validate_every must be at least 1") }
        if let v = t.checkpointEvery, v < 1 { throw WallocError("training.checkpoint_every must be at least 1") }
        if let h = t.holdOut, h < 0 { throw WallocError("training.hold_out must not be negative") }
        if let q = t.quality {
            guard model.isVariableRate else { throw WallocError("training.quality applies to variable-rate models (a \"rate\" section in the model)") }
            guard q.count == 2, q[0] >= 1, q[1] <= 100, q[0] <= q[1] else {
                throw WallocError("training.quality must be [low, high] with 1 ≤ low ≤ high ≤ 100, got \(q)")
            }
        }
        if let spectral = t.spectral {
            guard model.modality == .audio else { throw WallocError("training.spectral applies to audio models") }
            try spectral.validate()
        }
        if let b = initialization.bandWeighting, b != 0 {
            guard model.isVariableRate, b.isFinite, b > 0, b <= 2 else { throw WallocError("init.band_weighting must be in (0, 2] and needs a variable-rate model") }
        }
        if let m = data.maxSide, m < model.downsampling { throw WallocError("data.max_side must be at least 2^J = \(model.downsampling)") }
        for m in data.extraMaxSides ?? [] where m < model.downsampling {
            throw WallocError("data.extra_max_sides must be at least 2^J = \(model.downsampling), got \(m)")
        }
        if data.extraMaxSides?.isEmpty == false && model.modality != .image { throw WallocError("data.extra_max_sides applies to images only") }
        switch initialization.method {
        case "random": break
        case "pca":
            if let s = initialization.scale, !(s > 0 && s.isFinite) { throw WallocError("init.scale must be positive") }
        case "model":
            guard let p = initialization.path, !p.isEmpty else { throw WallocError("init.method \"model\" needs init.path, a trained model's directory") }
        default: throw WallocError("init.method must be \"random\", \"pca\" or \"model\", got \"\(initialization.method)\"")
        }
    }

    /// Total optimisation steps (default 10,000).
    public var steps: Int { training.steps ?? 10_000 }

    /// The trainer's configuration: the recipe's values over `TrainingConfig`'s defaults.
    public var trainingConfig: TrainingConfig {
        var c = TrainingConfig()
        let t = training
        if let v = t.batchSize { c.batchSize = v }
        c.cropSize = t.crop ?? (model.modality == .image ? 128 : 32_768)
        if let v = t.lr { c.learningRate = v }
        c.warmupSteps = t.warmup ?? min(1000, max(1, steps / 20))
        if let v = t.minLR { c.minimumLearningRate = v }
        if let v = t.weightDecay { c.weightDecay = v }
        if let v = t.clip { c.maxGradientNorm = v > 0 ? v : nil }
        if let v = t.tfWeight { c.tfWeight = v }
        if let v = t.seed { c.seed = v }
        c.frozen = t.frozen
        c.qualityRange = t.quality
        c.distortion = t.distortion
        c.spectral = t.spectral
        if t.schedule == "cosine" { c.cosineDecaySteps = max(1, steps - c.warmupSteps) }
        return c
    }

    public var dataOptions: TrainingData.Options {
        TrainingData.Options(maxSide: data.maxSide, maxSeconds: data.maxSeconds)
    }
}
