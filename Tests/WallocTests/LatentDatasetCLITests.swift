import Foundation
import Testing
import Walloc

@Suite("walloc latents over datasets, merge, classify")
struct LatentDatasetCLITests {
    let model = Fixtures.reference("codec2d_light").path

    /// Two classes of small PNGs of different sizes.
    static func dataset(at root: URL, perClass: Int = 3) throws {
        for (c, name) in ["a", "b"].enumerated() {
            let folder = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for i in 0..<perClass {
                var x = randomTensor([3, 30 + 4 * i, 41 + c], seed: UInt64(10 * c + i))
                for j in 0..<x.count { x.scalars[j] += 0.5 }
                try ImageIO.write(x, to: folder.appendingPathComponent("\(i).png"), format: .png)
            }
        }
    }

    @Test("convert, resume, two workers, merge, verify a corrupted shard")
    func workflow() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try Self.dataset(at: data)
        let one = dir.appendingPathComponent("one").path
        var r = try CLI.run(["latents", "--model", model, data.path, "-o", one, "--size", "32x24", "--shard-size", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("6 image item(s), 2 class(es), latents [12, 3, 4] I8: converted 6 item(s) into 3 shard(s)"))
        r = try CLI.run(["latents", "--model", model, data.path, "-o", one, "--size", "32x24", "--shard-size", "2"])
        #expect(r.status == 0 && r.stdout.contains("converted 0 item(s) into 0 shard(s) (kept 3 finished shard(s))"), "\(r.stdout)")
        let a = dir.appendingPathComponent("a").path, b = dir.appendingPathComponent("b").path
        for (w, out) in [(1, a), (2, b)] {
            r = try CLI.run(["latents", "--model", model, data.path, "-o", out, "--size", "32x24", "--shard-size", "2", "--shard", "\(w)/2"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let merged = dir.appendingPathComponent("merged").path
        r = try CLI.run(["latents", "merge", a, b, "-o", merged])
        #expect(r.status == 0 && r.stdout.contains("3 shard(s), 6 item(s)"), "\(r.stderr)")
        for name in ["manifest.json", "shard-00000.safetensors", "shard-00001.safetensors", "shard-00002.safetensors"] {
            #expect(try Data(contentsOf: URL(fileURLWithPath: one).appendingPathComponent(name))
                    == Data(contentsOf: URL(fileURLWithPath: merged).appendingPathComponent(name)), "\(name)")
        }
        r = try CLI.run(["latents", "merge", "--verify", merged])
        #expect(r.status == 0 && r.stdout.contains("verified"))
        let shard = URL(fileURLWithPath: merged).appendingPathComponent("shard-00001.safetensors")
        var bytes = try Data(contentsOf: shard)
        bytes[bytes.count - 3] ^= 1
        try bytes.write(to: shard)
        r = try CLI.run(["latents", "merge", "--verify", merged])
        #expect(r.status != 0 && r.stderr.contains("shard-00001.safetensors: SHA-256 mismatch"), "\(r.stderr)")
    }

    @Test("--shard auto in a (simulated) Slurm job array: the workers' shards merge into one worker's")
    func shardAuto() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try Self.dataset(at: data)
        let one = dir.appendingPathComponent("one").path, shared = dir.appendingPathComponent("shared").path
        var r = try CLI.run(["latents", "--model", model, data.path, "-o", one, "--size", "32x24", "--shard-size", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        for task in 1...3 {  // sbatch --array=1-3
            r = try CLI.run(["latents", "--model", model, data.path, "-o", shared, "--size", "32x24", "--shard-size", "2", "--shard", "auto"],
                            environment: ["SLURM_ARRAY_TASK_ID": "\(task)", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stderr.contains("worker \(task) of 3 (Slurm array task \(task))"))
        }
        r = try CLI.run(["latents", "merge", shared])
        #expect(r.status == 0, "\(r.stderr)")
        for name in try FileManager.default.contentsOfDirectory(atPath: one) {
            #expect(try Data(contentsOf: URL(fileURLWithPath: one + "/" + name)) == Data(contentsOf: URL(fileURLWithPath: shared + "/" + name)), "\(name)")
        }
        r = try CLI.run(["latents", "--model", model, data.path, "-o", dir.appendingPathComponent("k").path, "--size", "32x24", "--shard", "auto"],
                        environment: ["JOB_COMPLETION_INDEX": "0"])
        #expect(r.status != 0 && r.stderr.contains("auto/N"))
    }

    @Test("errors: a file as a dataset output, bad --size and --shard, dataset options on one signal")
    func errors() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try Self.dataset(at: data)
        let file = dir.appendingPathComponent("file.txt")
        try Data("x".utf8).write(to: file)
        let npy = dir.appendingPathComponent("x.npy")
        try NPY.write(Tensor(zeros: [3, 16, 16]), to: npy)
        let cases: [([String], String)] = [
            (["latents", "--model", model, data.path, "-o", file.path, "--size", "32x24"], "is a file"),
            (["latents", "--model", model, data.path, "-o", dir.appendingPathComponent("o").path, "--size", "32"], "WxH"),
            (["latents", "--model", model, data.path, "-o", dir.appendingPathComponent("o").path, "--size", "32x24", "--shard", "3/2"], "1 <= I <= N"),
            (["latents", "--model", model, data.path, "-o", dir.appendingPathComponent("o").path], "--size"),
            (["latents", "--model", model, npy.path, "-o", dir.appendingPathComponent("y.npy").path, "--size", "16x16"], "apply to datasets"),
            (["latents", "merge", dir.path], "no manifest.json"),
        ]
        for (args, message) in cases {
            let r = try CLI.run(args)
            #expect(r.status != 0 && r.stderr.contains(message), "\(args): \(r.stderr)")
        }
    }

    @Test("classify train and eval on latents and on the resized baseline")
    func classify() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try Self.dataset(at: data, perClass: 4)
        for (name, extra) in [("lat", [String]()), ("res", ["--resized"])] {
            let out = dir.appendingPathComponent(name).path
            var r = try CLI.run(["latents", "--model", model, data.path, "-o", out, "--size", "32x32"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let clf = dir.appendingPathComponent("clf-\(name)").path
            r = try CLI.run(["classify", "train", out, "--test", out, "-o", clf, "--epochs", "2", "--widths", "8", "--convs", "1", "--batch-size", "4"])
            #expect(r.status == 0, "\(r.stderr)")
            // Both runs see [12, 4, 4]: the resized [3, 8, 8] folds by 2 (space-to-depth).
            #expect(r.stdout.contains("-> inputs [12, 4, 4]; 8 training item(s), 8 test item(s), 2 classes"), "\(r.stdout)")
            #expect(r.stdout.contains("epoch 2/2"))
            r = try CLI.run(["classify", "eval", "--model", clf, out, "--predictions", dir.appendingPathComponent("p-\(name).tsv").path])
            #expect(r.status == 0 && r.stdout.contains("8 item(s): accuracy"), "\(r.stderr)")
            let lines = try String(contentsOf: dir.appendingPathComponent("p-\(name).tsv"), encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 8 && lines[0].hasPrefix("a/0.png\t"))
            r = try CLI.run(["classify", "train", out, "-o", clf, "--epochs", "1"])
            #expect(r.status != 0 && r.stderr.contains("--force"))
        }
    }
}
