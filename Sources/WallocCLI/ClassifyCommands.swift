import ArgumentParser
import Foundation
import Walloc

/// `walloc classify`: a small convolutional classifier on dataset latents (or the resized baseline).
struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Train or evaluate a classifier on dataset latents made by walloc latents.",
        subcommands: [ClassifyTrain.self, ClassifyEval.self]
    )
}

struct ClassifyTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a convolutional classifier on a folder of latent shards.",
        discussion: """
        TRAIN (and --test) are folders written by walloc latents (latents or --resized baselines). The \
        classifier: stages of (convolution, GroupNorm, SiLU) x --convs, max pooling between stages, global \
        pooling (--head avg or max), a linear head; 2D for images, 1D for audio. Inputs are standardised per channel \
        with the training set's statistics; --space-to-depth auto folds a resized baseline into the \
        latents' channel count ([3, 4h, 4w] -> [12, 2h, 2w] for a 16x RGB model), so both runs train the \
        same network. A full-resolution signal (--signal) goes through the codec's wavelet packet transform \
        (--wavelet auto: J levels of bior4.4, invertible) onto the latents' grid ([3, 8h, 8w] -> [192, h, w] \
        for J = 3). AdamW, linear warm-up then cosine decay, gradient clipping; deterministic for a seed \
        and a thread count. OUT gets classifier.json (configuration, input statistics, per-epoch history) \
        and model.safetensors.
        """
    )

    @Argument(help: "Training dataset folder.") var train: String
    @Option(help: "Test dataset folder, evaluated after every epoch.") var test: String?
    @Option(name: .shortAndLong, help: "Output classifier folder.") var output: String
    @Option(help: "Epochs.") var epochs = 10
    @Option(help: "Batch size.") var batchSize = 32
    @Option(help: "Peak learning rate.") var lr: Float = 2e-3
    @Option(help: "AdamW weight decay.") var weightDecay: Float = 0.05
    @Option(help: "Warm-up epochs.") var warmup: Double = 1
    @Option(help: "Channels per stage, comma-separated.") var widths = "32,64,128"
    @Option(help: "Convolutions per stage.") var convs = 2
    @Option(help: "Kernel size.") var kernel = 3
    @Option(help: "Max-pooling window between stages.") var pool = 2
    @Option(help: "Space-to-depth factor for the inputs, or auto.") var spaceToDepth = "auto"
    @Option(help: "Levels of the bior4.4 wavelet packet transform applied to the inputs, or auto (the codec's J for --signal datasets, else none).")
    var wavelet = "auto"
    @Option(help: "Global pooling before the linear head: avg or max.") var head = "avg"
    @Option(help: "Random seed (initialisation and batch order).") var seed: UInt64 = 0
    @Flag(help: "Overwrite OUT if it holds a classifier.") var force = false
    @Flag(help: "Print nothing but errors.") var quiet = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply(defaultPrecision: .fp32)
        let outURL = URL(fileURLWithPath: output)
        if FileManager.default.fileExists(atPath: outURL.appendingPathComponent(ClassifierStore.descriptionFile).path) && !force {
            throw WallocError("\(output): already holds a classifier (use --force to replace it)")
        }
        let data = try LabeledDataset.load(URL(fileURLWithPath: train))
        let testData = try test.map { try LabeledDataset.load(URL(fileURLWithPath: $0)) }
        let m = data.manifest
        guard m.classes.count >= 2 else { throw WallocError("\(train): needs at least two classes, has \(m.classes.count)") }
        if let t = testData?.manifest {
            guard t.itemShape == m.itemShape, t.representation == m.representation, t.model.fingerprint == m.model.fingerprint,
                  t.classes == m.classes else {
                throw WallocError("\(test!): holds \(t.representation.rawValue) \(t.itemShape) of classes \(t.classes), the training set \(m.representation.rawValue) \(m.itemShape) of \(m.classes)")
            }
        }
        let levels = try waveletLevels(m)
        let factor = levels > 0 && spaceToDepth == "auto" ? 1 : try spaceToDepthFactor(m)
        var transform = try InputTransform(storedShape: m.itemShape, spaceToDepth: factor, waveletLevels: levels)
        try transform.fit(data)
        let widthList = widths.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !widthList.isEmpty else { throw ValidationError("--widths must be comma-separated integers") }
        let config = ClassifierConfig(spatialRank: m.itemShape.count - 1, inputChannels: transform.inputShape[0], classes: m.classes.count,
                                      widths: widthList, convsPerStage: convs, kernelSize: kernel, pool: pool, head: head)
        let model = try Classifier(config: config, seed: seed)
        var options = ClassifierTrainingOptions()
        options.epochs = epochs; options.batchSize = batchSize; options.lr = lr; options.weightDecay = weightDecay
        options.warmupEpochs = warmup; options.seed = seed
        var trainer = try ClassifierTrainer(model: model, transform: transform, options: options, trainingItems: data.count)
        let bytes = data.count * m.itemBytes
        if !quiet {
            print("\(m.representation.rawValue) \(m.itemShape) \(m.dtype) -> inputs \(transform.inputShape); \(data.count) training item(s)"
                  + (testData.map { ", \($0.count) test item(s)" } ?? "") + ", \(m.classes.count) classes, \(model.parameterCount) parameters, "
                  + "\(bytes) input bytes")
        }
        installStopHandlers()
        let bar = ProgressBar(total: epochs, label: "classify", enabled: !quiet)
        let history = try trainer.train(data, test: testData, progress: { epoch, batch, batches, loss in
            if bar.isTerminal { bar.update(epoch - 1, info: String(format: "epoch %d batch %d/%d loss %.3f", epoch, batch, batches, loss)) }
        }, epochDone: { r in
            var line = String(format: "epoch %d/%d: train loss %.4f, accuracy %.2f%%", r.epoch, epochs, r.trainLoss, 100 * r.trainAccuracy)
            if let a = r.testAccuracy, let l = r.testLoss { line += String(format: " | test loss %.4f, accuracy %.2f%%", l, 100 * a) }
            line += String(format: " | %.1f s", r.seconds)
            if !quiet { bar.print(line) }
            bar.update(r.epoch)
        }, shouldStop: { stopRequested != 0 })
        bar.finish()
        let description = ClassifierDescription(
            config: config, transform: transform, classes: m.classes, representation: m.representation, modelFingerprint: m.model.fingerprint,
            dtype: m.dtype, trainingItems: data.count, trainingInputBytes: bytes, options: options, history: history,
            parameters: trainer.model.parameterCount)
        try ClassifierStore.save(trainer.model, description: description, to: outURL)
        if stopRequested != 0 {
            printError("interrupted after epoch \(history.count); the classifier so far is saved in \(output)")
            throw ExitCode(130)
        }
    }

    /// `--wavelet`: a number of levels, or auto (the codec's J for a full-resolution signal, which
    /// puts it on the latents' grid, invertibly; none otherwise).
    func waveletLevels(_ m: DatasetManifest) throws -> Int {
        if wavelet == "auto" { return m.representation == .signal ? m.model.J : 0 }
        guard let levels = Int(wavelet), (0...12).contains(levels) else { throw ValidationError("--wavelet must be 0-12 or auto") }
        return levels
    }

    /// `--space-to-depth`: a number, or auto (a resized baseline folded into the latents' channel count).
    func spaceToDepthFactor(_ m: DatasetManifest) throws -> Int {
        if spaceToDepth != "auto" {
            guard let f = Int(spaceToDepth), f >= 1 else { throw ValidationError("--space-to-depth must be a positive integer or auto") }
            return f
        }
        guard m.representation == .resized else { return 1 }
        let rank = Double(m.itemShape.count - 1), c = m.itemShape[0]
        let f = Int((pow(Double(m.model.latentDim) / Double(c), 1 / rank)).rounded())
        return f >= 1 && c * Int(pow(Double(f), rank)) == m.model.latentDim ? f : 1
    }
}

struct ClassifyEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a trained classifier on a folder of latent shards.",
        discussion: "Prints the accuracy and loss over the labelled items; --predictions writes 'name<TAB>class' lines."
    )

    @Option(help: "Classifier folder (from walloc classify train).") var model: String
    @Argument(help: "Dataset folder.") var data: String
    @Option(help: "Write each item's predicted class to this file.") var predictions: String?
    @Flag(help: "Print one JSON object: items, accuracy, loss, and for decoded inputs the codec and mean coded bytes.") var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply(defaultPrecision: .fp32)
        let (classifier, description) = try ClassifierStore.load(URL(fileURLWithPath: model))
        let set = try LabeledDataset.load(URL(fileURLWithPath: data))
        let m = set.manifest
        guard m.representation == description.representation, m.model.fingerprint == description.modelFingerprint else {
            throw WallocError("\(data): holds \(m.representation.rawValue) of codec \(m.model.fingerprint), the classifier was trained on \(description.representation.rawValue) of \(description.modelFingerprint)")
        }
        guard m.classes.isEmpty || m.classes == description.classes else {
            throw WallocError("\(data): classes \(m.classes) differ from the classifier's \(description.classes)")
        }
        let r = try ClassifierTrainer.evaluate(classifier, transform: description.transform, on: set)
        if json {
            var object: [String: Any] = ["items": set.count, "accuracy": Double(r.accuracy), "loss": Double(r.loss)]
            if let name = m.preparation.roundTrip, let bytes = set.codedBytes {
                object["round_trip"] = name
                object["mean_coded_bytes"] = Double(bytes.reduce(0, +)) / Double(max(1, bytes.count))
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(String(format: "%d item(s): accuracy %.2f%%, loss %.4f", set.count, 100 * r.accuracy, r.loss))
        }
        if let predictions {
            let lines = zip(set.names, r.predictions).map { "\($0)\t\(description.classes[$1])\n" }.joined()
            try FileIO.writeAtomically(Data(lines.utf8), to: URL(fileURLWithPath: predictions))
        }
    }
}
