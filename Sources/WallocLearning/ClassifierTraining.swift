import Foundation
import WallocIO
import WallocNN
import WallocTensor
import WallocTraining
import WallocWavelets

/// How stored dataset values become classifier inputs: space-to-depth by `spaceToDepth` (so a
/// resized baseline `[3, 4h, 4w]` becomes `[12, 2h, 2w]`... the latents' shape), or the wavelet
/// packet transform over `waveletLevels` levels (a full-resolution signal `[3, 8h, 8w]` becomes
/// `[192, h, w]` for 3 levels, invertibly), then per-channel standardisation with statistics of
/// the training set.
public struct InputTransform: Codable, Sendable, Equatable {
    /// One item as stored, `[C, H, W]` or `[C, L]`.
    public var storedShape: [Int]
    public var spaceToDepth: Int
    /// Levels of the bior4.4 wavelet packet transform applied to each item (0: none).
    public var waveletLevels: Int
    /// Per input channel (after space-to-depth or the wavelet transform): mean and 1/std of the training set.
    public var mean: [Float]
    public var scale: [Float]

    enum CodingKeys: String, CodingKey {
        case storedShape = "stored_shape", spaceToDepth = "space_to_depth", waveletLevels = "wavelet_levels", mean, scale
    }

    public init(storedShape: [Int], spaceToDepth: Int, waveletLevels: Int = 0) throws {
        guard storedShape.count == 2 || storedShape.count == 3 else { throw WallocError("items must be [C, H, W] or [C, L], got \(storedShape)") }
        guard spaceToDepth >= 1, storedShape.dropFirst().allSatisfy({ $0 >= spaceToDepth }) else {
            throw WallocError("space-to-depth factor \(spaceToDepth) does not fit items of shape \(storedShape)")
        }
        guard waveletLevels >= 0, waveletLevels == 0 || spaceToDepth == 1,
              storedShape.dropFirst().allSatisfy({ $0 % (1 << waveletLevels) == 0 }) else {
            throw WallocError("a \(waveletLevels)-level wavelet transform needs sizes divisible by \(1 << waveletLevels) and no space-to-depth; items are \(storedShape)")
        }
        self.storedShape = storedShape
        self.spaceToDepth = spaceToDepth
        self.waveletLevels = waveletLevels
        let f = spaceToDepth << waveletLevels
        let c = storedShape[0] * Int(pow(Double(f), Double(storedShape.count - 1)))
        mean = [Float](repeating: 0, count: c)
        scale = [Float](repeating: 1, count: c)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        storedShape = try c.decode([Int].self, forKey: .storedShape)
        spaceToDepth = try c.decode(Int.self, forKey: .spaceToDepth)
        waveletLevels = try c.decodeIfPresent(Int.self, forKey: .waveletLevels) ?? 0
        mean = try c.decode([Float].self, forKey: .mean)
        scale = try c.decode([Float].self, forKey: .scale)
    }

    /// The classifier's input shape for one item.
    public var inputShape: [Int] {
        let s = spaceToDepth << waveletLevels
        if storedShape.count == 3 { return [storedShape[0] * s * s, storedShape[1] / s, storedShape[2] / s] }
        return [storedShape[0] * s, storedShape[1] / s]
    }

    /// The wavelet coefficients `[n, ...inputShape]` of items `indices` (with `waveletLevels` > 0).
    func coefficients(_ data: LabeledDataset, _ indices: [Int]) throws -> Tensor {
        let per = data.itemCount
        let raw = Tensor(uninitializedShape: [indices.count] + storedShape) { dst in
            data.values.withUnsafeBufferPointer { vb in
                for (b, i) in indices.enumerated() {
                    let src = vb.baseAddress! + i * per
                    for j in 0..<per { dst[b * per + j] = Float(src[j]) }
                }
            }
        }
        return storedShape.count == 3 ? try WaveletPacket.analysis2D(raw, levels: waveletLevels)
                                      : try WaveletPacket.analysis1D(raw, levels: waveletLevels)
    }

    /// For each input value (channel-major), the index of the stored value it takes.
    public func gatherMap() -> [Int32] {
        let s = spaceToDepth, shape = inputShape
        var map = [Int32]()
        map.reserveCapacity(shape.reduce(1, *))
        if storedShape.count == 3 {
            let h = storedShape[1], w = storedShape[2]
            for oc in 0..<shape[0] {
                let c = oc / (s * s), dy = (oc / s) % s, dx = oc % s
                for y in 0..<shape[1] { for x in 0..<shape[2] { map.append(Int32((c * h + y * s + dy) * w + x * s + dx)) } }
            }
        } else {
            let l = storedShape[1]
            for oc in 0..<shape[0] {
                let c = oc / s, d = oc % s
                for t in 0..<shape[1] { map.append(Int32(c * l + t * s + d)) }
            }
        }
        return map
    }

    /// Sets the mean and scale from the items of `data` (all of them).
    public mutating func fit(_ data: LabeledDataset) throws {
        let map = gatherMap(), channels = inputShape[0], plane = map.count / channels, per = data.itemCount
        var sum = [Double](repeating: 0, count: channels), squares = sum
        if waveletLevels > 0 {
            var start = 0
            while start < data.count {
                let idx = Array(start..<min(data.count, start + 64))
                let y = try coefficients(data, idx)
                y.withUnsafeBufferPointer { yb in
                    for b in 0..<idx.count {
                        for c in 0..<channels {
                            var s: Double = 0, q: Double = 0
                            for p in 0..<plane { let v = Double(yb[(b * channels + c) * plane + p]); s += v; q += v * v }
                            sum[c] += s; squares[c] += q
                        }
                    }
                }
                start += idx.count
            }
        } else {
            data.values.withUnsafeBufferPointer { vb in
                for item in 0..<data.count {
                    let base = vb.baseAddress! + item * per
                    for c in 0..<channels {
                        var s: Double = 0, q: Double = 0
                        for p in 0..<plane { let v = Double(base[Int(map[c * plane + p])]); s += v; q += v * v }
                        sum[c] += s; squares[c] += q
                    }
                }
            }
        }
        let n = Double(max(1, data.count * plane))
        for c in 0..<channels {
            let m = sum[c] / n, variance = max(0, squares[c] / n - m * m)
            mean[c] = Float(m)
            scale[c] = Float(1 / max(variance.squareRoot(), 1e-3))
        }
    }

    /// The inputs `[n, ...inputShape]` for items `indices` of `data`.
    public func batch(_ data: LabeledDataset, _ indices: [Int], map: [Int32]) throws -> Tensor {
        let shape = inputShape, per = data.itemCount, count = map.count
        let channels = shape[0], plane = count / channels
        if waveletLevels > 0 {
            var y = try coefficients(data, indices)
            y.withUnsafeMutableBufferPointer { yb in
                for b in 0..<indices.count {
                    for c in 0..<channels {
                        let m = mean[c], sc = scale[c], base = (b * channels + c) * plane
                        for p in 0..<plane { yb[base + p] = (yb[base + p] - m) * sc }
                    }
                }
            }
            return y
        }
        var out = Tensor(uninitialized: [indices.count] + shape)
        out.withUnsafeMutableBufferPointer { ob in
            data.values.withUnsafeBufferPointer { vb in
                map.withUnsafeBufferPointer { mb in
                    parallelFor(indices.count) { b in
                        let src = vb.baseAddress! + indices[b] * per, dst = ob.baseAddress! + b * count
                        for c in 0..<channels {
                            let m = mean[c], sc = scale[c]
                            for p in 0..<plane {
                                let j = c * plane + p
                                dst[j] = (Float(src[Int(mb[j])]) - m) * sc
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// Hyper-parameters of classifier training.
public struct ClassifierTrainingOptions: Codable, Sendable, Equatable {
    public var epochs = 10
    public var batchSize = 32
    /// Peak learning rate (AdamW), reached after `warmupEpochs`, then a cosine down to 1% of it.
    public var lr: Float = 2e-3
    public var weightDecay: Float = 0.05
    public var warmupEpochs: Double = 1
    /// Gradient clipping (global norm).
    public var clip: Float = 5
    public var seed: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case epochs, batchSize = "batch_size", lr, weightDecay = "weight_decay", warmupEpochs = "warmup_epochs", clip, seed
    }
}

/// One epoch's figures.
public struct EpochRecord: Codable, Sendable, Equatable {
    public var epoch: Int
    public var trainLoss: Float
    public var trainAccuracy: Float
    public var testLoss: Float?
    public var testAccuracy: Float?
    /// Wall seconds of the training pass (batches, forward, backward, update).
    public var seconds: Double
    public var lr: Float

    enum CodingKeys: String, CodingKey {
        case epoch, trainLoss = "train_loss", trainAccuracy = "train_accuracy", testLoss = "test_loss"
        case testAccuracy = "test_accuracy", seconds, lr
    }
}

/// Trains a `Classifier` with AdamW on a `LabeledDataset` held in memory: shuffled mini-batches
/// (deterministic for a seed), softmax cross-entropy, linear warm-up then cosine decay, gradient
/// clipping.
public struct ClassifierTrainer: Sendable {
    public var model: Classifier
    public let transform: InputTransform
    public let options: ClassifierTrainingOptions
    public private(set) var optimizer: AdamW
    public private(set) var schedule: LearningRateSchedule
    public private(set) var step = 0
    public private(set) var history: [EpochRecord] = []
    let map: [Int32]
    let stepsPerEpoch: Int

    public init(model: Classifier, transform: InputTransform, options: ClassifierTrainingOptions, trainingItems: Int) throws {
        guard options.epochs >= 1, options.batchSize >= 1, options.lr > 0, options.warmupEpochs >= 0 else {
            throw WallocError("training needs epochs >= 1, batch size >= 1, a positive learning rate and warmup >= 0")
        }
        guard transform.inputShape[0] == model.config.inputChannels, transform.inputShape.count == model.config.spatialRank + 1 else {
            throw WallocError("inputs \(transform.inputShape) do not fit a classifier taking \(model.config.inputChannels) channels (rank \(model.config.spatialRank))")
        }
        self.model = model
        self.transform = transform
        self.options = options
        map = transform.gatherMap()
        stepsPerEpoch = (trainingItems + options.batchSize - 1) / options.batchSize
        optimizer = AdamW(weightDecay: options.weightDecay)
        let warmup = Int((options.warmupEpochs * Double(stepsPerEpoch)).rounded())
        schedule = LearningRateSchedule(peak: options.lr, warmupSteps: max(1, warmup), minimum: options.lr * 0.01)
        schedule.cosineSteps = max(1, options.epochs * stepsPerEpoch - warmup)
    }

    /// One pass over `data` in a shuffled order; `progress(batch, batches, smoothedLoss)`.
    public mutating func trainEpoch(_ data: LabeledDataset, progress: (Int, Int, Float) -> Void = { _, _, _ in }) throws -> (loss: Float, accuracy: Float, seconds: Double) {
        guard data.itemShape == transform.storedShape else { throw WallocError("training items \(data.itemShape) do not match \(transform.storedShape)") }
        if let bad = data.labels.firstIndex(where: { $0 < 0 || Int($0) >= model.config.classes }) {
            throw WallocError("item \(data.names[bad]) has label \(data.labels[bad]), outside 0..<\(model.config.classes)")
        }
        let started = Date()
        var rng = SplitMix64(seed: options.seed &+ UInt64(history.count) &* 0x9E37_79B9)
        var order = Array(0..<data.count)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.below(i + 1)) }
        var lossSum: Double = 0, correct = 0
        var smooth: Float?
        let batches = (order.count + options.batchSize - 1) / options.batchSize
        for b in 0..<batches {
            let idx = Array(order[(b * options.batchSize)..<min(order.count, (b + 1) * options.batchSize)])
            let x = try transform.batch(data, idx, map: map)
            let labels = idx.map { Int(data.labels[$0]) }
            let (logits, tape) = model.forward(training: x)
            let (loss, g) = SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels)
            var grads = Gradients()
            model.backward(tape, g, into: &grads)
            grads.clip(maxNorm: options.clip)
            optimizer.update(&model, gradients: grads, lr: schedule.rate(step: step))
            step += 1
            lossSum += Double(loss) * Double(idx.count)
            correct += zip(ClassifierTrainer.argmax(logits), labels).filter { $0 == $1 }.count
            smooth = smooth.map { 0.95 * $0 + 0.05 * loss } ?? loss
            progress(b + 1, batches, smooth!)
        }
        return (Float(lossSum / Double(max(1, data.count))), Float(correct) / Float(max(1, data.count)), Date().timeIntervalSince(started))
    }

    /// Trains `options.epochs` epochs, evaluating on `test` after each; returns the history.
    public mutating func train(_ data: LabeledDataset, test: LabeledDataset?,
                               progress: (_ epoch: Int, _ batch: Int, _ batches: Int, _ loss: Float) -> Void = { _, _, _, _ in },
                               epochDone: (EpochRecord) -> Void = { _ in }, shouldStop: () -> Bool = { false }) throws -> [EpochRecord] {
        while history.count < options.epochs {
            let epoch = history.count + 1
            let lr = schedule.rate(step: step)
            let r = try trainEpoch(data) { progress(epoch, $0, $1, $2) }
            var record = EpochRecord(epoch: epoch, trainLoss: r.loss, trainAccuracy: r.accuracy, seconds: r.seconds, lr: lr)
            if let test {
                let e = try ClassifierTrainer.evaluate(model, transform: transform, on: test)
                record.testLoss = e.loss
                record.testAccuracy = e.accuracy
            }
            history.append(record)
            epochDone(record)
            if shouldStop() { break }
        }
        return history
    }

    /// Mean loss, accuracy and predictions over the labelled items of `data`.
    public static func evaluate(_ model: Classifier, transform: InputTransform, on data: LabeledDataset,
                                batchSize: Int = 128) throws -> (loss: Float, accuracy: Float, predictions: [Int]) {
        guard data.itemShape == transform.storedShape else {
            throw WallocError("items \(data.itemShape) do not match the classifier's \(transform.storedShape)")
        }
        let map = transform.gatherMap()
        var predictions = [Int]()
        var lossSum: Double = 0, correct = 0, labelled = 0
        var start = 0
        while start < data.count {
            let idx = Array(start..<min(data.count, start + batchSize))
            let logits = model.logits(try transform.batch(data, idx, map: map))
            let p = argmax(logits)
            predictions += p
            let known = idx.indices.filter { data.labels[idx[$0]] >= 0 && Int(data.labels[idx[$0]]) < model.config.classes }
            if !known.isEmpty {
                let k = model.config.classes
                var sub = Tensor(uninitialized: [known.count, k])
                for (r, i) in known.enumerated() { for j in 0..<k { sub.scalars[r * k + j] = logits.scalars[i * k + j] } }
                let labels = known.map { Int(data.labels[idx[$0]]) }
                lossSum += Double(SoftmaxCrossEntropy.lossAndGradient(logits: sub, labels: labels).loss) * Double(known.count)
                correct += zip(known.map { p[$0] }, labels).filter { $0 == $1 }.count
                labelled += known.count
            }
            start += idx.count
        }
        return (Float(lossSum / Double(max(1, labelled))), Float(correct) / Float(max(1, labelled)), predictions)
    }

    static func argmax(_ logits: Tensor) -> [Int] {
        let n = logits.shape[0], k = logits.shape[1]
        return (0..<n).map { s in
            var best = 0
            for j in 1..<k where logits.scalars[s * k + j] > logits.scalars[s * k + best] { best = j }
            return best
        }
    }
}
