import Foundation
import WallocIO
import WallocModels
import WallocNN
import WallocTensor

/// Hyper-parameters of a training run (stored in checkpoints as `trainer.json`).
public struct TrainingConfig: Codable, Sendable, Equatable {
    public var batchSize = 8
    /// Side of the square random crops taken from the training images, or length in samples of
    /// the random segments taken from the training clips (audio); a multiple of 2^J.
    public var cropSize = 128
    public var learningRate: Float = 1e-3
    public var warmupSteps = 1000
    public var plateauFactor: Float = 0.5
    public var plateauPatience = 5
    public var minimumLearningRate: Float = 1e-6
    public var weightDecay: Float = 1e-2
    public var beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8
    /// Gradient clipping by global norm (`nil`: none).
    public var maxGradientNorm: Float? = 1.0
    /// Weight ϕ of the wavelet-domain MSE (the reference's `tf_loss`).
    public var tfWeight: Float = 0
    /// How the signal-domain error enters the loss (default `.mse`).
    public var distortion: TrainingObjective.Distortion?
    /// Audio: a log-mel term (`SpectralLoss`).
    public var spectral: SpectralLoss?
    public var seed: UInt64 = 0
    /// Cosine decay from the peak rate to `minimumLearningRate` over this many steps after the
    /// warm-up, instead of reduce-on-plateau (nil: reduce-on-plateau, as the reference).
    public var cosineDecaySteps: Int?
    /// Parameters left unchanged: every parameter whose name starts with one of these prefixes
    /// (e.g. `"encoder."` keeps a PCA-initialised encoder, and with it the bit rate, fixed).
    public var frozen: [String]?
    /// Variable-rate models: each sample of a batch is quantised at a quality drawn uniformly
    /// from this range (`[low, high]`, within 1...100; default the whole range).
    public var qualityRange: [Float]?

    public init() {}

    /// The quality range a variable-rate model trains over.
    public var qualities: ClosedRange<Float> {
        guard let r = qualityRange, r.count == 2 else { return 1...100 }
        return r[0]...r[1]
    }

    /// The qualities a variable-rate model is validated at: both ends and the middle of the range.
    public var validationQualities: [Int] {
        let r = qualities
        return Array(Set([r.lowerBound, (r.lowerBound + r.upperBound) / 2, r.upperBound].map { Int($0.rounded()) })).sorted()
    }
}

/// Trains a `Codec` on `[C, H, W]` images (Codec2D, LinearCodec2D) or `[C, L]` audio clips
/// (Codec1D), as the reference does: additive uniform noise instead of rounding, loss
/// `MSE(x, x̂) + ϕ·MSE(X, X̂)`, AdamW, warm-up then reduce-on-plateau, gradient clipping.
/// Deterministic for a seed and a thread count.
public struct Trainer: Sendable {
    public private(set) var codec: Codec
    public let config: TrainingConfig
    public private(set) var optimizer: AdamW
    public private(set) var schedule: LearningRateSchedule
    /// Updates taken so far.
    public private(set) var stepCount = 0
    public private(set) var rng: SplitMix64
    /// The loss a step minimises (from `config`).
    public let objective: TrainingObjective
    /// The training images, `[C, H, W]` each, or audio clips, `[C, L]` each.
    public let data: [Tensor]

    /// Checks the data against the codec and the crop size.
    public init(codec: Codec, config: TrainingConfig, data: [Tensor]) throws {
        let f = codec.config.downsampling
        guard config.batchSize >= 1 else { throw WallocError("batch size must be at least 1, got \(config.batchSize)") }
        guard config.cropSize >= f, config.cropSize % f == 0 else {
            throw WallocError("crop size \(config.cropSize) must be a positive multiple of 2^J = \(f)")
        }
        if let m = codec.config.smoothMargin, codec.modality == .image {
            guard m < config.cropSize else { throw WallocError("crop size \(config.cropSize) must exceed the model's smooth_margin (\(m))") }
        }
        guard !data.isEmpty else { throw WallocError(codec.modality == .audio ? "no training clips" : "no training images") }
        if codec.modality == .audio {
            for (i, clip) in data.enumerated() {
                guard clip.rank == 2, clip.shape[0] == codec.config.channels else {
                    throw WallocError("training clip \(i) has shape \(clip.shape); the model needs [\(codec.config.channels), L]")
                }
                guard clip.shape[1] >= config.cropSize else {
                    throw WallocError("training clip \(i) (\(clip.shape[1]) samples) is shorter than the \(config.cropSize)-sample segment")
                }
            }
        }
        for (i, image) in data.enumerated() where codec.modality == .image {
            guard image.rank == 3, image.shape[0] == codec.config.channels else {
                throw WallocError("training image \(i) has shape \(image.shape); the model needs [\(codec.config.channels), H, W]")
            }
            guard image.shape[1] >= config.cropSize, image.shape[2] >= config.cropSize else {
                throw WallocError("training image \(i) (\(image.shape[1])x\(image.shape[2])) is smaller than the \(config.cropSize)-pixel crop")
            }
        }
        self.codec = codec
        self.config = config
        self.data = data
        optimizer = AdamW(beta1: config.beta1, beta2: config.beta2, eps: config.eps, weightDecay: config.weightDecay)
        schedule = LearningRateSchedule(peak: config.learningRate, warmupSteps: config.warmupSteps, factor: config.plateauFactor,
                                        patience: config.plateauPatience, minimum: config.minimumLearningRate)
        schedule.cosineSteps = config.cosineDecaySteps
        rng = SplitMix64(seed: config.seed)
        objective = TrainingObjective(tfWeight: config.tfWeight, distortion: config.distortion ?? .mse, spectral: config.spectral)
    }

    /// The learning rate of the next update.
    public var learningRate: Float { schedule.rate(step: stepCount) }

    /// A batch `[batchSize, C, crop, crop]` of random crops of random training images, or
    /// `[batchSize, C, crop]` of random segments of random training clips.
    public mutating func nextBatch() -> Tensor {
        let c = codec.config.channels, s = config.cropSize, n = config.batchSize
        if codec.modality == .audio {
            var batch = Tensor(uninitialized: [n, c, s])
            for b in 0..<n {
                let clip = data[rng.below(data.count)]
                let l = clip.shape[1], t0 = rng.below(l - s + 1)
                clip.withUnsafeBufferPointer { src in
                    batch.withUnsafeMutableBufferPointer { dst in
                        for ch in 0..<c {
                            (dst.baseAddress! + (b * c + ch) * s).update(from: src.baseAddress! + ch * l + t0, count: s)
                        }
                    }
                }
            }
            return batch
        }
        // A model with a smooth margin sees crops as files are coded: crops of s − margin padded
        // with the margin back to s (s is a multiple of 2^J, so the margin is exactly that).
        let margin = codec.config.smoothMargin ?? 0, inner = s - margin
        var batch = Tensor(uninitialized: [n, c, s, s])
        for b in 0..<n {
            let image = data[rng.below(data.count)]
            let h = image.shape[1], w = image.shape[2]
            let y0 = rng.below(h - inner + 1), x0 = rng.below(w - inner + 1)
            var crop = Tensor(uninitialized: [c, inner, inner])
            for ch in 0..<c {
                for y in 0..<inner {
                    let src = (ch * h + y0 + y) * w + x0, dst = (ch * inner + y) * inner
                    for x in 0..<inner { crop.scalars[dst + x] = image.scalars[src + x] }
                }
            }
            if margin > 0 { crop = SignalPreparation.padSmooth(crop, multiple: codec.config.downsampling, margin: margin).0 }
            batch.withUnsafeMutableBufferPointer { dst in
                crop.withUnsafeBufferPointer { src in (dst.baseAddress! + b * c * s * s).update(from: src.baseAddress!, count: c * s * s) }
            }
        }
        return batch
    }

    /// One training update on `batch` (`[N, C, H, W]` or `[N, C, L]`, values in [-0.5, 0.5]): noise from the
    /// trainer's generator, forward, backward, clipping, AdamW. Returns the loss and the PSNR
    /// (dB, of the clamped reconstruction) before the update.
    @discardableResult
    public mutating func step(batch: Tensor) throws -> (loss: Float, psnr: Float) {
        try codec.checkSignal(batch)
        let audio = codec.modality == .audio
        guard batch.rank == (audio ? 3 : 4) else {
            throw WallocError("a training batch must be \(audio ? "[N, C, L]" : "[N, C, H, W]"), got \(batch.shape)")
        }
        let quantization: TrainingQuantization
        if codec.config.isVariableRate {
            let r = config.qualities
            quantization = .qualities((0..<batch.shape[0]).map { _ in r.lowerBound + (r.upperBound - r.lowerBound) * rng.uniform() })
        } else {
            var shape = codec.latentShape(signalSize: Array(batch.shape.dropFirst(2)))
            shape[0] = codec.config.latentDim  // the encoder's channels (envelope channels are exact)
            var noise = Tensor(uninitialized: [batch.shape[0]] + shape)
            for i in 0..<noise.count { noise.scalars[i] = rng.uniform() - 0.5 }
            quantization = .noise(noise)
        }
        var (losses, gradients) = try codec.lossAndGradients(batch: batch, quantization: quantization, objective: objective)
        guard losses.loss.isFinite else { throw WallocError("training diverged at step \(stepCount): loss is \(losses.loss)") }
        if let frozen = config.frozen, !frozen.isEmpty { gradients.remove { name in frozen.contains { name.hasPrefix($0) } } }
        if let maxNorm = config.maxGradientNorm { gradients.clip(maxNorm: maxNorm) }
        optimizer.update(&codec, gradients: gradients, lr: learningRate)
        stepCount += 1
        return (losses.loss, losses.psnr)
    }

    /// `step(batch: nextBatch())`.
    @discardableResult
    public mutating func step() throws -> (loss: Float, psnr: Float) {
        try step(batch: nextBatch())
    }

    /// Evaluation-mode (rounded latents) mean loss and PSNR over `images` (`[C, H, W]` each, cropped
    /// to multiples of 2^J; for audio, `[C, L]` clips trimmed to a multiple of 2^J), recorded in the
    /// reduce-on-plateau schedule once warm-up is over.
    ///
    /// A variable-rate model is validated at `config.validationQualities`: the loss and PSNR are
    /// means over them, `perQuality` gives each quality's mean PSNR.
    @discardableResult
    public mutating func validate(on images: [Tensor]) throws -> (loss: Float, psnr: Float, perQuality: [(Int, Float)]) {
        let r = try validationResult(on: images)
        if stepCount >= schedule.warmupSteps { schedule.record(validationLoss: r.loss) }
        return r
    }

    /// Validation without touching the schedule; `perQuality` lists (quality, mean PSNR) for
    /// variable-rate models and is empty otherwise.
    public func validationResult(on images: [Tensor]) throws -> (loss: Float, psnr: Float, perQuality: [(Int, Float)]) {
        guard codec.config.isVariableRate else {
            let r = try Trainer.validationLosses(codec, on: images)
            return (r.loss, r.psnr, [])
        }
        var loss: Float = 0, psnr: Float = 0, each = [(Int, Float)]()
        let qualities = config.validationQualities
        for q in qualities {
            let r = try Trainer.validationLosses(try codec.withQuality(q), on: images)
            loss += r.loss / Float(qualities.count); psnr += r.psnr / Float(qualities.count)
            each.append((q, r.psnr))
        }
        return (loss, psnr, each)
    }

    static func validationLosses(_ codec: Codec, on images: [Tensor]) throws -> (loss: Float, psnr: Float) {
        guard !images.isEmpty else { throw WallocError("no validation images") }
        let f = codec.config.downsampling
        var loss: Double = 0, psnr: Double = 0
        for (i, image) in images.enumerated() {
            if codec.modality == .audio {
                guard image.rank == 2, image.shape[0] == codec.config.channels, image.shape[1] >= f else {
                    throw WallocError("validation clip \(i) has shape \(image.shape); the model needs [\(codec.config.channels), L] with L ≥ \(f)")
                }
                let c = image.shape[0], l = image.shape[1], lt = l / f * f
                var x = image
                if lt != l {
                    x = Tensor(uninitialized: [c, lt])
                    for ch in 0..<c { for t in 0..<lt { x.scalars[ch * lt + t] = image.scalars[ch * l + t] } }
                }
                let r = try codec.evaluationLosses(x)
                loss += Double(r.loss); psnr += Double(r.psnr)
                continue
            }
            guard image.rank == 3, image.shape[0] == codec.config.channels, image.shape[1] >= f, image.shape[2] >= f else {
                throw WallocError("validation image \(i) has shape \(image.shape); the model needs [\(codec.config.channels), H, W] with H, W ≥ \(f)")
            }
            let h = image.shape[1] / f * f, w = image.shape[2] / f * f
            var x = image
            if h != image.shape[1] || w != image.shape[2] {
                x = Tensor(uninitialized: [image.shape[0], h, w])
                for c in 0..<image.shape[0] {
                    for y in 0..<h {
                        for xx in 0..<w { x.scalars[(c * h + y) * w + xx] = image.scalars[(c * image.shape[1] + y) * image.shape[2] + xx] }
                    }
                }
            }
            let r = try codec.evaluationLosses(x)
            loss += Double(r.loss); psnr += Double(r.psnr)
        }
        return (Float(loss / Double(images.count)), Float(psnr / Double(images.count)))
    }

    // MARK: checkpoints

    struct State: Codable {
        var config: TrainingConfig
        var step: Int
        var adamSteps: Int
        var rng: SplitMix64
        var schedule: LearningRateSchedule
    }

    static let stateFile = "trainer.json", optimizerFile = "optimizer.safetensors", modelFolder = "model"

    /// Writes a checkpoint directory: `model/` (a model directory), `optimizer.safetensors`
    /// (AdamW moments as `exp_avg.<name>` / `exp_avg_sq.<name>`) and `trainer.json` (config, step,
    /// generator and schedule state). The directory is assembled next to `directory` and renamed
    /// into place, so a killed run leaves either the old or the new checkpoint.
    public func saveCheckpoint(to directory: URL) throws {
        let fm = FileManager.default
        let parent = directory.deletingLastPathComponent()
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let tmp = parent.appendingPathComponent(".\(directory.lastPathComponent).tmp-\(UUID().uuidString)")
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        do {
            try codec.save(to: tmp.appendingPathComponent(Trainer.modelFolder))
            var moments = [String: Tensor]()
            for (k, v) in optimizer.firstMoments { moments["exp_avg." + k] = v }
            for (k, v) in optimizer.secondMoments { moments["exp_avg_sq." + k] = v }
            try Safetensors(tensors: moments, metadata: [:]).write(to: tmp.appendingPathComponent(Trainer.optimizerFile))
            let state = State(config: config, step: stepCount, adamSteps: optimizer.steps, rng: rng, schedule: schedule)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try FileIO.writeAtomically(encoder.encode(state), to: tmp.appendingPathComponent(Trainer.stateFile))
            if fm.fileExists(atPath: directory.path) {
                let old = parent.appendingPathComponent(".\(directory.lastPathComponent).old-\(UUID().uuidString)")
                try fm.moveItem(at: directory, to: old)
                try fm.moveItem(at: tmp, to: directory)
                try? fm.removeItem(at: old)
            } else {
                try fm.moveItem(at: tmp, to: directory)
            }
        } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
    }

    /// Resumes from a checkpoint written by `saveCheckpoint(to:)`, continuing exactly where it stopped.
    public static func resume(from directory: URL, data: [Tensor]) throws -> Trainer {
        let stateURL = directory.appendingPathComponent(stateFile)
        let state: State
        do {
            state = try JSONDecoder().decode(State.self, from: try FileIO.read(stateURL))
        } catch let e as WallocError {
            throw e
        } catch {
            throw WallocError("\(stateURL.path): not a valid trainer state (\(error))")
        }
        let codec = try Codec.load(from: directory.appendingPathComponent(modelFolder))
        var trainer = try Trainer(codec: codec, config: state.config, data: data)
        let optimizerURL = directory.appendingPathComponent(optimizerFile)
        let moments = try Safetensors.read(optimizerURL).tensors
        let shapes = Dictionary(uniqueKeysWithValues: codec.namedParameters().map { ($0.0, $0.1.shape) })
        for (k, v) in moments {
            let (prefix, name): (String, String)
            if k.hasPrefix("exp_avg_sq.") { (prefix, name) = ("exp_avg_sq.", String(k.dropFirst(11))) }
            else if k.hasPrefix("exp_avg.") { (prefix, name) = ("exp_avg.", String(k.dropFirst(8))) }
            else { throw WallocError("\(optimizerURL.path): unexpected tensor '\(k)'") }
            guard let shape = shapes[name], shape == v.shape else {
                throw WallocError("\(optimizerURL.path): '\(k)' does not match a model parameter of the same shape")
            }
            if prefix == "exp_avg." { trainer.optimizer.firstMoments[name] = v } else { trainer.optimizer.secondMoments[name] = v }
        }
        trainer.optimizer.steps = state.adamSteps
        trainer.stepCount = state.step
        trainer.rng = state.rng
        trainer.schedule = state.schedule
        return trainer
    }
}
