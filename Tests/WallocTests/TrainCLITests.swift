import Foundation
import Testing
import Walloc

@Suite("walloc train")
struct TrainCLITests {
    /// A folder of small PNG photos-to-be (smooth colour patterns) and a recipe for a tiny model.
    static func setUp(steps: Int, checkpointEvery: Int) throws -> (dir: URL, recipe: String, data: String) {
        let dir = try Fixtures.temporaryDirectory()
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        for i in 0..<4 {
            var t = Tensor(zeros: [3, 40, 48])
            for c in 0..<3 {
                for y in 0..<40 { for x in 0..<48 { t.scalars[(c * 40 + y) * 48 + x] = 0.5 + 0.4 * sin(Float(x * (i + 1) + y * (c + 1)) / 9) } }
            }
            try ImageIO.write(t, to: data.appendingPathComponent("img\(i).png"))
        }
        try Data("not an image".utf8).write(to: data.appendingPathComponent("broken.png"))
        let recipe = dir.appendingPathComponent("recipe.json")
        try Data("""
            {"model": {"type": "Codec2D", "channels": 3, "J": 2, "Nd": 32, "latent_dim": 6, "latent_bits": 8,
                       "lightweight_encode": true, "linear_skip": true},
             "training": {"steps": \(steps), "batch_size": 2, "crop": 16, "lr": 1e-3, "warmup": 2, "schedule": "cosine",
                          "validate_every": 5, "checkpoint_every": \(checkpointEvery), "hold_out": 1, "validation_crop": 32},
             "init": {"method": "pca", "scale": 3}}
            """.utf8).write(to: recipe)
        return (dir, recipe.path, data.path)
    }

    static func trainerStep(_ checkpoint: URL) throws -> Int {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: checkpoint.appendingPathComponent("trainer.json"))) as? [String: Any]
        return try #require(json?["step"] as? Int)
    }

    /// The validation entries of a run's training-log.json.
    static func validation(_ out: URL) throws -> [[String: Any]] {
        let log = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("training-log.json"))) as? [String: Any]
        return try #require(log?["validation"] as? [[String: Any]])
    }

    @Test("Trains, writes a usable model, refuses to clobber a run, resumes with more steps")
    func trainAndResume() throws {
        let (dir, recipe, data) = try Self.setUp(steps: 6, checkpointEvery: 3)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("model")
        var r = try CLI.run(["train", "--config", recipe, "--data", data, "-o", out.path, "--threads", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("broken.png") && r.stderr.contains("skipped"))
        #expect(r.stderr.contains("3 training and 1 validation signals"))
        for name in ["config.json", "model.safetensors", "entropy.json", "training-log.json", "checkpoint/trainer.json"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(name).path), "\(name) missing")
        }
        let compressor = try Compressor.load(modelDirectory: out)
        #expect(compressor.entropyModel != nil)
        #expect(try Self.trainerStep(out.appendingPathComponent("checkpoint")) == 6)

        r = try CLI.run(["train", "--config", recipe, "--data", data, "-o", out.path, "--threads", "1"])
        #expect(r.status != 0 && r.stderr.contains("--resume"))
        r = try CLI.run(["train", "--config", recipe, "--data", data, "-o", out.path, "--threads", "1", "--resume", "--steps", "9"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("resuming at step 6"))
        #expect(try Self.trainerStep(out.appendingPathComponent("checkpoint")) == 9)
        #expect(try Self.validation(out).compactMap { $0["step"] as? Int } == [0, 5, 6, 9])

        r = try CLI.run(["train", "--config", recipe, "--data", dir.appendingPathComponent("nothing-here").path, "-o", dir.appendingPathComponent("m2").path])
        #expect(r.status != 0 && r.stderr.contains("no such file"))
    }

    @Test("--precision bf16 says which products run; data.extra_max_sides adds each image at a smaller scale")
    func precisionAndScales() throws {
        let (dir, recipe, data) = try Self.setUp(steps: 2, checkpointEvery: 2)
        defer { try? FileManager.default.removeItem(at: dir) }
        var text = try String(contentsOfFile: recipe, encoding: .utf8)
        text = text.replacingOccurrences(of: #""init": {"#, with: #""data": {"extra_max_sides": [24, 4000]}, "init": {"#)
        try Data(text.utf8).write(to: URL(fileURLWithPath: recipe))
        let out = dir.appendingPathComponent("model")
        let r = try CLI.run(["train", "--config", recipe, "--data", data, "-o", out.path, "--threads", "1", "--precision", "bf16"])
        #expect(r.status == 0, "\(r.stderr)")
        let bf16 = Kernels.trainingDecoder(precision: .bf16) { Kernels.trainsInBF16 }
        #expect(r.stderr.contains(bf16 ? "training convolutions: bf16" : "training convolutions: fp32"), "\(r.stderr)")
        // 3 images at 48 px, and again at 24 (4000 is not smaller, so not added).
        #expect(r.stderr.contains("6 training and 1 validation signals"), "\(r.stderr)")
        text = text.replacingOccurrences(of: "[24, 4000]", with: "[2]")
        try Data(text.utf8).write(to: URL(fileURLWithPath: recipe))
        let bad = try CLI.run(["train", "--config", recipe, "--data", data, "-o", dir.appendingPathComponent("m2").path])
        #expect(bad.status != 0 && bad.stderr.contains("data.extra_max_sides must be at least 2^J = 4"), "\(bad.stderr)")
    }

    @Test("A run killed mid-way resumes from its last checkpoint and reaches the same step count")
    func killAndResume() throws {
        let (dir, recipe, data) = try Self.setUp(steps: 400, checkpointEvery: 2)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("model")
        let exe = try #require(CLI.executable)
        let p = Process()
        p.executableURL = exe
        p.arguments = ["train", "--config", recipe, "--data", data, "-o", out.path, "--threads", "1", "--quiet"]
        try p.run()
        let checkpoint = out.appendingPathComponent("checkpoint")
        let deadline = Date().addingTimeInterval(60)
        while (try? Self.trainerStep(checkpoint)) ?? 0 < 6 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let reached = try Self.trainerStep(checkpoint)
        #expect(reached >= 6 && reached < 400)
        // Nothing half-written is left where a reader would look.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { !$0.hasPrefix(".") }
        #expect(Set(leftovers).isSubset(of: ["checkpoint", "training-log.json"]))
        _ = try Codec.load(from: checkpoint.appendingPathComponent("model"))
        let r = try CLI.run(["train", "--config", recipe, "--data", data, "-o", out.path, "--threads", "1", "--resume", "--steps", "\(reached + 4)"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.trainerStep(checkpoint) == reached + 4)
        _ = try Codec.load(from: out)
    }

    @Test("A checkpoint left under its hidden name by a run killed mid-swap is put back on resuming")
    func restoresCheckpointSetAside() throws {
        let (dir, recipe, data) = try Self.setUp(steps: 4, checkpointEvery: 2)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("model")
        var r = try CLI.run(["train", "--config", recipe, "--data", data, "-o", out.path, "--threads", "1", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        // --quiet: nothing but errors (the unreadable broken.png is a warning, not an error).
        #expect(!r.stderr.contains("loading") && !r.stderr.contains("train "), "\(r.stderr)")
        let checkpoint = out.appendingPathComponent("checkpoint")
        let step = try Self.trainerStep(checkpoint)
        try FileManager.default.moveItem(at: checkpoint, to: out.appendingPathComponent(".checkpoint.old-0000"))
        r = try CLI.run(["train", "--config", recipe, "--data", data, "-o", out.path, "--threads", "1", "--quiet", "--resume", "--steps", "\(step + 2)"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.trainerStep(checkpoint) == step + 2)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: out.path)).contains { $0.hasPrefix(".checkpoint") })
    }

    @Test("Fine-tuning: init from a trained model starts where it ended; a model that does not fit is refused")
    func fineTune() throws {
        let (dir, recipe, data) = try Self.setUp(steps: 6, checkpointEvery: 3)
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = dir.appendingPathComponent("first")
        var r = try CLI.run(["train", "--config", recipe, "--data", data, "-o", first.path, "--threads", "1"])
        try #require(r.status == 0, "\(r.stderr)")
        func fineTuneRecipe(latentDim: Int) throws -> String {
            var text = try String(contentsOfFile: recipe, encoding: .utf8)
            text = text.replacingOccurrences(of: #""init": {"method": "pca", "scale": 3}"#, with: #""init": {"method": "model", "path": "\#(first.path)"}"#)
            text = text.replacingOccurrences(of: #""latent_dim": 6"#, with: #""latent_dim": \#(latentDim)"#)
            let url = dir.appendingPathComponent("fine-\(latentDim).json")
            try Data(text.utf8).write(to: url)
            return url.path
        }
        let second = dir.appendingPathComponent("second")
        r = try CLI.run(["train", "--config", try fineTuneRecipe(latentDim: 6), "--data", data, "-o", second.path, "--threads", "1", "--steps", "2"])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("starting from the trained model"))
        // Step 0 of the second run validates the first run's final weights.
        let end = try #require(try Self.validation(first).last?["psnr"] as? Double), start = try #require(try Self.validation(second).first?["psnr"] as? Double)
        #expect(abs(end - start) < 1e-4, "\(end) vs \(start)")
        r = try CLI.run(["train", "--config", try fineTuneRecipe(latentDim: 5), "--data", data, "-o", dir.appendingPathComponent("third").path, "--threads", "1"])
        #expect(r.status != 0 && r.stderr.contains("does not fit"), "\(r.stderr)")
    }
}
