import ArgumentParser
import Foundation
import Walloc

/// `walloc train`: trains a codec on folders of images, audio or .npy tensors.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a codec on your own images, audio or .npy tensors.",
        discussion: """
        CONFIG is a training recipe (JSON): {"model": {config.json fields}, "training": {...}, \
        "data": {...}, "init": {...}}; see docs/training.md. DATA are files or directories \
        (searched recursively). OUT becomes a model directory (config.json, model.safetensors, \
        entropy.json, training-log.json) with a resumable checkpoint in OUT/checkpoint, written \
        every checkpoint_every steps and when the run is interrupted (Ctrl-C). A killed run \
        continues from its last checkpoint with --resume. Runs are deterministic for a seed, \
        a thread count and a precision. --precision sets the precision of the training passes' \
        convolutions (default: the recipe's training.precision, else fp32; bf16 keeps float32 \
        parameters, gradients and accumulation) and of validation decodes (default fp32).
        """
    )

    @Option(help: "Training recipe (JSON).") var config: String
    @Option(name: .customLong("data"), parsing: .upToNextOption, help: "Training files or directories.") var data: [String]
    @Option(name: .customLong("validation"), parsing: .upToNextOption,
            help: "Held-out files or directories (default: training.hold_out files set aside from DATA).") var validation: [String] = []
    @Option(name: .shortAndLong, help: "Output model directory.") var out: String
    @Option(help: "Total training steps (overrides the recipe).") var steps: Int?
    @Option(help: "Batch size (overrides the recipe).") var batchSize: Int?
    @Option(help: "Crop size: pixels per side for images, samples for audio (overrides the recipe).") var crop: Int?
    @Option(help: "Peak learning rate (overrides the recipe).") var lr: Float?
    @Option(help: "Random seed (overrides the recipe).") var seed: UInt64?
    @Flag(help: "Continue from OUT/checkpoint.") var resume = false
    @Flag(help: "Start over even if OUT already holds a run.") var force = false
    @Flag(help: "Print nothing but errors.") var quiet = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply(defaultPrecision: .fp32)
        var recipe = try TrainingRecipe.read(URL(fileURLWithPath: config))
        if let steps { recipe.training.steps = steps }
        if let batchSize { recipe.training.batchSize = batchSize }
        if let crop { recipe.training.crop = crop }
        if let lr { recipe.training.lr = lr }
        if let seed { recipe.training.seed = seed }
        try recipe.validate()
        // --precision (parsed by compute.apply) sets the training passes' products too; else the
        // recipe's, else fp32.
        Kernels.setTrainingPrecision(compute.precision != nil ? Kernels.precision : recipe.training.precision ?? .fp32)
        if Kernels.trainingPrecision != .fp32 {
            log("training convolutions: \(Kernels.trainingDecoder({ Kernels.trainsInBF16 }) ? "bf16 (oneDNN matmul, float32 accumulation)" : "fp32 (this CPU or build has no bf16 products)")")
        }
        let outURL = URL(fileURLWithPath: out)
        let checkpoint = outURL.appendingPathComponent("checkpoint")
        // A run killed between moving the old checkpoint aside and moving the new one in left only
        // the old one, under a hidden name: put it back.
        if !FileManager.default.fileExists(atPath: checkpoint.path),
           let old = ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).first(where: { $0.hasPrefix(".checkpoint.old-") }) {
            try FileManager.default.moveItem(at: outURL.appendingPathComponent(old), to: checkpoint)
        }
        let hasRun = FileManager.default.fileExists(atPath: checkpoint.path)
        if resume && !hasRun { throw WallocError("\(out): no checkpoint to resume from (\(checkpoint.path) is missing)") }
        if !resume && hasRun && !force {
            throw WallocError("\(out): already holds a training run; use --resume to continue it or --force to start over")
        }
        if !resume && hasRun { try FileManager.default.removeItem(at: checkpoint) }
        // Leftovers of a run killed while it wrote a checkpoint or the model.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
        where name.hasPrefix(".checkpoint.tmp-") || name.hasPrefix(".checkpoint.old-") || name.hasPrefix(".model-") {
            try? FileManager.default.removeItem(at: outURL.appendingPathComponent(name))
        }

        let session = try TrainingSession(recipe: recipe, data: data, validation: validation, quiet: quiet, log: log)
        var trainer: Trainer
        var history = TrainingLog(recipe: recipe, command: CommandLine.arguments.joined(separator: " "))
        if resume {
            trainer = try Trainer.resume(from: checkpoint, data: session.training)
            if let old = try? TrainingLog.read(outURL) { history = old.truncated(to: trainer.stepCount) }
            log("resuming at step \(trainer.stepCount) of \(recipe.steps)")
        } else {
            var codec: Codec
            if recipe.initialization.method == "model", let path = recipe.initialization.path {
                codec = try Codec.fineTuning(from: URL(fileURLWithPath: path), config: recipe.model)
                log("starting from the trained model \(path)")
            } else {
                codec = try Codec(config: recipe.model, seed: recipe.training.seed ?? 0)
            }
            if recipe.initialization.method == "pca" {
                let scale = recipe.initialization.scale ?? 3
                let report = try PCAInitialization.apply(to: &codec, signals: session.training, scale: scale,
                                                         samplesPerSignal: recipe.initialization.samplesPerSignal ?? 20_000,
                                                         seed: recipe.training.seed ?? 0,
                                                         bandWeighting: recipe.initialization.bandWeighting ?? 0)
                log(String(format: "PCA initialisation: %d band vectors, the %d components explain %.2f%% of the band variance",
                           report.samples, recipe.model.latentDim, 100 * report.explainedVariance))
            }
            trainer = try Trainer(codec: codec, config: recipe.trainingConfig, data: session.training)
        }

        if !resume && !session.validation.isEmpty {
            let v = try trainer.validate(on: session.validation)
            history.validation.append(.init(step: 0, loss: v.loss, psnr: v.psnr, lr: 0))
            log(String(format: "step 0: validation loss %.3e, PSNR %.2f dB", v.loss, v.psnr) + perQuality(v.perQuality))
        }
        installStopHandlers()
        let total = recipe.steps
        let validateEvery = recipe.training.validateEvery ?? 500
        let checkpointEvery = recipe.training.checkpointEvery ?? 500
        let bar = ProgressBar(total: total, label: "train", enabled: !quiet)
        var smoothLoss: Double?, smoothPSNR: Double?
        var lastValidation = ""
        let started = Date()
        let wallBefore = history.wallSeconds
        func save() throws {
            try trainer.saveCheckpoint(to: checkpoint)
            history.wallSeconds = wallBefore + Date().timeIntervalSince(started)
            try history.write(outURL)
        }
        while trainer.stepCount < total {
            let lrNow = trainer.learningRate
            let r = try trainer.step()
            smoothLoss = smoothLoss.map { 0.98 * $0 + 0.02 * Double(r.loss) } ?? Double(r.loss)
            smoothPSNR = smoothPSNR.map { 0.98 * $0 + 0.02 * Double(r.psnr) } ?? Double(r.psnr)
            let step = trainer.stepCount
            if step % 50 == 0 || step == total { history.steps.append(.init(step: step, loss: r.loss, psnr: r.psnr, lr: lrNow)) }
            if !session.validation.isEmpty && (step % validateEvery == 0 || step == total) {
                let v = try trainer.validate(on: session.validation)
                history.validation.append(.init(step: step, loss: v.loss, psnr: v.psnr, lr: trainer.learningRate))
                lastValidation = String(format: " | val %.2f dB", v.psnr)
                if !quiet && !bar.isTerminal {
                    log(String(format: "step %d: validation loss %.3e, PSNR %.2f dB", step, v.loss, v.psnr) + perQuality(v.perQuality))
                }
            }
            bar.update(step, info: String(format: "loss %.3e, PSNR %.2f dB, lr %.2e", smoothLoss!, smoothPSNR!, lrNow) + lastValidation)
            if step % checkpointEvery == 0 { try save() }
            if stopRequested != 0 {
                try save()
                bar.finish()
                log("interrupted at step \(step); checkpoint saved, continue with --resume")
                throw ExitCode(130)
            }
        }
        try save()
        try finishModel(trainer: trainer, session: session, outURL: outURL)
        log(String(format: "done: %d steps in %@; model written to %@", total, ProgressBar.duration(history.wallSeconds), out))
    }

    /// Writes the trained model, with default entropy tables fitted on the training signals' latents.
    func finishModel(trainer: Trainer, session: TrainingSession, outURL: URL) throws {
        let codec = trainer.codec
        let tmp = outURL.appendingPathComponent(".model-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try codec.save(to: tmp)
        var latents = [Tensor]()
        // About a megapixel per image, six seconds at 44.1 kHz per recording.
        let cropSize = codec.config.modality == .audio ? 1 << 18 : 1024
        for x in session.training.prefix(64) {
            let (padded, _) = SignalPreparation.padToMultiple(TrainingData.centreCrop(x, size: cropSize, multiple: 1),
                                                               multiple: codec.config.downsampling)
            latents.append(try codec.encode(padded))
        }
        if codec.config.latentBits <= 15 {
            let model = try LatentModel.fit(latents: latents, bits: codec.config.latentBits)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try FileIO.writeAtomically(encoder.encode(model), to: tmp.appendingPathComponent(Compressor.entropyFileName))
        }
        for name in [Codec.configFileName, Codec.weightsFileName, Compressor.entropyFileName] {
            let src = tmp.appendingPathComponent(name), dst = outURL.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: src.path) else { continue }
            // rename(2) replaces an existing file atomically.
            guard rename(src.path, dst.path) == 0 else {
                throw WallocError("\(dst.path): cannot write (\(String(cString: strerror(errno))))")
            }
        }
    }

    /// " (q1 27.31, q50 30.12, q100 35.02)" for a variable-rate model's validation, "" otherwise.
    func perQuality(_ each: [(Int, Float)]) -> String {
        each.isEmpty ? "" : " (" + each.map { String(format: "q%d %.2f", $0.0, $0.1) }.joined(separator: ", ") + ")"
    }

    func log(_ message: String) {
        if !quiet { printError(message) }
    }
}

/// The signals of a training run, loaded once.
struct TrainingSession {
    var training: [Tensor] = []
    var validation: [Tensor] = []

    init(recipe: TrainingRecipe, data: [String], validation validationPaths: [String], quiet: Bool = false,
         log: (String) -> Void) throws {
        let modality = recipe.model.modality
        var files = try TrainingData.files(in: data, modality: modality)
        guard !files.isEmpty else { throw WallocError("no \(modality.rawValue) or .npy files in \(data.joined(separator: ", "))") }
        var held = try validationPaths.isEmpty ? [] : TrainingData.files(in: validationPaths, modality: modality)
        if validationPaths.isEmpty, let n = recipe.training.holdOut, n > 0 {
            guard n < files.count else { throw WallocError("hold_out \(n) leaves no training files (\(files.count) found)") }
            // A seeded choice, so the split is reproducible.
            var rng = SplitMix64(seed: (recipe.training.seed ?? 0) ^ 0x5EED)
            for _ in 0..<n { held.append(files.remove(at: rng.below(files.count))) }
            held.sort { $0.path < $1.path }
        }
        let options = recipe.dataOptions
        let channels = recipe.model.channels
        let f = recipe.model.downsampling
        let crop = recipe.trainingConfig.cropSize
        let bar = ProgressBar(total: files.count + held.count, label: "loading", enabled: !quiet, logInterval: 10)
        var done = 0, skipped = 0
        for url in files {
            do {
                // The signal, then (multi-scale recipes) the same image shrunk further.
                let scales = try TrainingData.loadScales(url, modality: modality, channels: channels, options: options,
                                                         extraMaxSides: recipe.data.extraMaxSides ?? [])
                if scales[0].shape.dropFirst().allSatisfy({ $0 >= crop }) { training.append(scales[0]) } else {
                    log("warning: \(url.path): smaller than the \(crop)-sample crop; skipped"); skipped += 1
                }
                training += scales.dropFirst().filter { $0.shape.dropFirst().allSatisfy { $0 >= crop } }
            } catch let e as WallocError {
                log("warning: \(e.message); skipped"); skipped += 1
            }
            done += 1; bar.update(done)
        }
        let validationCrop = recipe.training.validationCrop ?? 512
        for url in held {
            do {
                let x = try TrainingData.load(url, modality: modality, channels: channels, options: options)
                validation.append(TrainingData.centreCrop(x, size: modality == .image ? validationCrop : 1 << 20, multiple: f))
            } catch let e as WallocError {
                log("warning: \(e.message); skipped"); skipped += 1
            }
            done += 1; bar.update(done)
        }
        guard !training.isEmpty else { throw WallocError("none of the \(files.count) training files could be used") }
        log("\(training.count) training and \(validation.count) validation signals\(skipped > 0 ? " (\(skipped) skipped)" : "")")
    }
}

/// `OUT/training-log.json`: the recipe, the command, losses every 50 steps, validations, wall time.
struct TrainingLog: Codable {
    struct Point: Codable { var step: Int; var loss: Float; var psnr: Float; var lr: Float }
    var recipe: TrainingRecipe
    var command: String
    var wallSeconds: Double = 0
    var steps: [Point] = []
    var validation: [Point] = []

    enum CodingKeys: String, CodingKey { case recipe, command, wallSeconds = "wall_seconds", steps, validation }

    init(recipe: TrainingRecipe, command: String) { self.recipe = recipe; self.command = command }

    static let fileName = "training-log.json"

    static func read(_ dir: URL) throws -> TrainingLog {
        try JSONDecoder().decode(TrainingLog.self, from: try FileIO.read(dir.appendingPathComponent(fileName)))
    }

    func write(_ dir: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileIO.writeAtomically(encoder.encode(self), to: dir.appendingPathComponent(TrainingLog.fileName))
    }

    /// The log as it was at `step` (entries after it came from work the checkpoint does not hold).
    func truncated(to step: Int) -> TrainingLog {
        var copy = self
        copy.steps = steps.filter { $0.step <= step }
        copy.validation = validation.filter { $0.step <= step }
        return copy
    }
}
