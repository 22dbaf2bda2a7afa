import Foundation
import Testing
import Walloc

@Suite("Classifier training")
struct LearnerTests {
    /// Items `[classes + 1, 8, 8]` (2D) or `[classes + 1, 32]` (1D) of noise, with a bump at a random
    /// place in the channel of the item's class.
    static func synthetic(rank: Int, count: Int, classes: Int = 3, seed: UInt64) -> LabeledDataset {
        let shape = rank == 2 ? [classes + 1, 8, 8] : [classes + 1, 32]
        let plane = shape.dropFirst().reduce(1, *), per = plane * (classes + 1)
        var rng = SplitMix64(seed: seed)
        var values = [Int16](repeating: 0, count: count * per), labels = [Int32]()
        for i in 0..<count {
            for j in 0..<per { values[i * per + j] = Int16(rng.below(21)) - 10 }
            let label = rng.below(classes)
            labels.append(Int32(label))
            let at = rng.below(plane - 1)
            values[i * per + label * plane + at] += 40
            values[i * per + label * plane + at + 1] += 40
        }
        let m = DatasetManifest(
            datasetID: "test", modality: rank == 2 ? .image : .audio, representation: .latents, tensor: "latents", dtype: "I8",
            itemShape: shape, model: .init(fingerprint: "-", type: "-", channels: 1, J: 1, latentDim: classes + 1, latentBits: 8),
            preparation: .init(size: nil, seconds: nil, sampleRate: nil, signalShape: shape, values: "synthetic"),
            classes: (0..<classes).map(String.init), items: count, shardSize: count, shardCount: 1)
        return LabeledDataset(manifest: m, values: values, labels: labels, names: (0..<count).map { "item\($0)" })
    }

    @Test("a tiny classifier's loss falls and it learns a separable task, 2D and 1D", arguments: [2, 1])
    func learns(rank: Int) throws {
        let train = Self.synthetic(rank: rank, count: 384, seed: 1), test = Self.synthetic(rank: rank, count: 96, seed: 2)
        var transform = try InputTransform(storedShape: train.itemShape, spaceToDepth: 1)
        try transform.fit(train)
        #expect(abs(transform.mean[0]) < 2 && transform.scale[0] > 0.05 && transform.scale[0] < 0.2)
        let config = ClassifierConfig(spatialRank: rank, inputChannels: 4, classes: 3, widths: [8, 16], convsPerStage: 1, head: "max")
        var options = ClassifierTrainingOptions()
        options.epochs = 5; options.batchSize = 16; options.lr = 1e-2; options.warmupEpochs = 0.5; options.seed = 3
        var trainer = try ClassifierTrainer(model: try Classifier(config: config, seed: 4), transform: transform, options: options,
                                            trainingItems: train.count)
        let before = try ClassifierTrainer.evaluate(trainer.model, transform: transform, on: test)
        let history = try trainer.train(train, test: test)
        #expect(history.count == 5)
        #expect(history.last!.trainLoss < 0.5 * history.first!.trainLoss)
        #expect(history.last!.testLoss! < 0.5 * before.loss)
        #expect(history.last!.testAccuracy! > 0.9)
        // Saved and loaded, it predicts the same.
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = ClassifierDescription(config: config, transform: transform, classes: ["0", "1", "2"], representation: .latents,
                                      modelFingerprint: "-", dtype: "I8", trainingItems: train.count, trainingInputBytes: 0,
                                      options: options, history: history, parameters: trainer.model.parameterCount)
        try ClassifierStore.save(trainer.model, description: d, to: dir)
        let (loaded, description) = try ClassifierStore.load(dir)
        #expect(description.history == history && description.transform == transform)
        let again = try ClassifierTrainer.evaluate(loaded, transform: description.transform, on: test)
        #expect(again.predictions == (try ClassifierTrainer.evaluate(trainer.model, transform: transform, on: test)).predictions)
    }

    @Test("training is deterministic for a seed")
    func deterministic() throws {
        let train = Self.synthetic(rank: 2, count: 64, seed: 5)
        var transform = try InputTransform(storedShape: train.itemShape, spaceToDepth: 1)
        try transform.fit(train)
        func run() throws -> [Float] {
            var options = ClassifierTrainingOptions()
            options.epochs = 2; options.batchSize = 16; options.seed = 6
            var t = try ClassifierTrainer(model: try Classifier(config: .init(spatialRank: 2, inputChannels: 4, classes: 3, widths: [8], convsPerStage: 1), seed: 7),
                                          transform: transform, options: options, trainingItems: train.count)
            _ = try t.train(train, test: nil)
            return t.model.namedParameters().flatMap { $0.1.scalars }
        }
        #expect(try run() == run())
    }

    @Test("space-to-depth folds [C, H, W] into [C·s², H/s, W/s] (PyTorch's pixel_unshuffle order) and [C, L] into [C·s, L/s]")
    func spaceToDepth() throws {
        let t2 = try InputTransform(storedShape: [1, 4, 4], spaceToDepth: 2)
        #expect(t2.inputShape == [4, 2, 2])
        // Channel dy·2 + dx holds the pixels at (2y + dy, 2x + dx).
        #expect(t2.gatherMap() == [0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15])
        let t1 = try InputTransform(storedShape: [2, 6], spaceToDepth: 3)
        #expect(t1.inputShape == [6, 2])
        #expect(t1.gatherMap() == [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11])
        #expect(throws: WallocError.self) { try InputTransform(storedShape: [1, 4, 4], spaceToDepth: 5) }
    }

    @Test("the wavelet input transform: J-level packet coefficients of each item, standardised per band with the training statistics")
    func wavelet() throws {
        let shape = [2, 8, 16]
        let n = 5, per = shape.reduce(1, *)
        var rng = SplitMix64(seed: 9)
        let values = (0..<(n * per)).map { _ in Int16(rng.below(256)) }
        let manifest = DatasetManifest(
            datasetID: "x", modality: .image, representation: .signal, tensor: "signal", dtype: "U8", itemShape: shape,
            model: .init(fingerprint: "f", type: "codec2d", channels: 2, J: 2, latentDim: 8, latentBits: 8),
            preparation: .init(size: nil, seconds: nil, sampleRate: nil, signalShape: shape, values: "pixels"),
            classes: ["a", "b"], items: n, shardSize: n, shardCount: 1)
        let data = LabeledDataset(manifest: manifest, values: values, labels: [0, 1, 0, 1, 0], names: (0..<n).map { "\($0)" })
        var t = try InputTransform(storedShape: shape, spaceToDepth: 1, waveletLevels: 2)
        #expect(t.inputShape == [32, 2, 4])
        try t.fit(data)
        let items = Tensor(shape: [n] + shape, scalars: values.map(Float.init))
        let y = try WaveletPacket.analysis2D(items, levels: 2)
        // Band statistics over items and positions.
        let plane = 8
        for c in [0, 5, 31] {
            let v = (0..<n).flatMap { i in (0..<plane).map { Double(y.scalars[(i * 32 + c) * plane + $0]) } }
            let mean = v.reduce(0, +) / Double(v.count)
            let std = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
            #expect(abs(Double(t.mean[c]) - mean) < 1e-3 * max(1, abs(mean)))
            #expect(abs(Double(t.scale[c]) * std - 1) < 1e-4)
        }
        let x = try t.batch(data, [3, 1], map: t.gatherMap())
        #expect(x.shape == [2, 32, 2, 4])
        for (b, i) in [3, 1].enumerated() {
            for c in 0..<32 {
                for p in 0..<plane {
                    let want = (y.scalars[(i * 32 + c) * plane + p] - t.mean[c]) * t.scale[c]
                    #expect(abs(x.scalars[(b * 32 + c) * plane + p] - want) < 1e-4)
                }
            }
        }
        // Saved classifiers from before the option decode with no wavelet transform.
        let old = #"{"stored_shape":[2,8,16],"space_to_depth":2,"mean":[0],"scale":[1]}"#
        #expect(try JSONDecoder().decode(InputTransform.self, from: Data(old.utf8)).waveletLevels == 0)
        #expect(throws: WallocError.self) { try InputTransform(storedShape: [2, 12, 16], spaceToDepth: 1, waveletLevels: 3) }
        #expect(throws: WallocError.self) { try InputTransform(storedShape: shape, spaceToDepth: 2, waveletLevels: 1) }
    }
}
