import Foundation
import Testing
import Walloc

/// Runs the `walloc` executable built next to the test bundle.
enum CLI {
    static let executable: URL? = {
        var candidates = [URL]()
        let arg0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        candidates.append(arg0.deletingLastPathComponent())
        candidates.append(Bundle.main.bundleURL)
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for dir in candidates {
            let url = dir.appendingPathComponent("walloc")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }()

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    /// Runs `walloc arguments`, with `environment` added to this process's environment.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let exe = try #require(executable, "the walloc executable was not found next to the test bundle")
        let p = Process()
        p.executableURL = exe
        p.arguments = arguments
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

@Suite("walloc latents / reconstruct / info")
struct CLITests {
    let model = Fixtures.reference("codec2d_light").path

    @Test("latents and reconstruct reproduce the reference, and refuse to overwrite")
    func roundTrip() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let latents = dir.appendingPathComponent("y.npy").path
        let output = dir.appendingPathComponent("x.npy").path
        // A leading batch dimension of 1 is accepted.
        var input = try Fixtures.npy("codec2d_light/input.npy")
        input.reshape([1] + input.shape)
        let inputPath = dir.appendingPathComponent("input.npy").path
        try NPY.write(input, to: URL(fileURLWithPath: inputPath))

        var r = try CLI.run(["latents", "--model", model, inputPath, "-o", latents])
        #expect(r.status == 0, "\(r.stderr)")
        let y = try NPY.read(URL(fileURLWithPath: latents))
        let refY = try Fixtures.npy("codec2d_light/latent.npy")
        #expect(y.shape == refY.shape)
        #expect(zip(y.scalars, refY.scalars).filter { $0 != $1 }.count <= y.count / 1000)

        // Parity on the exact float32 path; the default (bf16 decoder networks where the CPU has
        // bf16 dot products) stays close.
        r = try CLI.run(["reconstruct", "--model", model, latents, "-o", output, "--precision", "fp32"])
        #expect(r.status == 0, "\(r.stderr)")
        let x = try NPY.read(URL(fileURLWithPath: output))
        #expect(x.shape == [3, 64, 96])
        #expect(x.maxAbsDifference(try Fixtures.npy("codec2d_light/output.npy")) < 2e-3)
        r = try CLI.run(["reconstruct", "--model", model, latents, "-o", output, "--force"])
        #expect(r.status == 0, "\(r.stderr)")
        let xAuto = try NPY.read(URL(fileURLWithPath: output))
        print("reconstruct at the default precision: max difference \(xAuto.maxAbsDifference(x))")
        #expect(xAuto.maxAbsDifference(x) < 0.05)

        // Existing output: refused without --force, replaced with it; an input is never replaced.
        r = try CLI.run(["reconstruct", "--model", model, latents, "-o", output])
        #expect(r.status != 0 && r.stderr.contains("--force"))
        r = try CLI.run(["reconstruct", "--model", model, latents, "-o", output, "--force"])
        #expect(r.status == 0)
        r = try CLI.run(["reconstruct", "--model", model, latents, "-o", latents, "--force"])
        #expect(r.status != 0 && r.stderr.contains("input"))
        #expect(try NPY.read(URL(fileURLWithPath: latents)) == y)
    }

    @Test("Bad inputs: clear message, non-zero exit, no output file")
    func badInputs() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.npy").path
        func write(_ t: Tensor, _ name: String) throws -> String {
            let p = dir.appendingPathComponent(name).path
            try NPY.write(t, to: URL(fileURLWithPath: p))
            return p
        }
        let f8 = dir.appendingPathComponent("f8.npy").path
        try ErrorTests.npy(descr: "<f8", shape: [3, 8, 8], payload: Array(repeating: 0, count: 8 * 192)).write(to: URL(fileURLWithPath: f8))
        var bad = Tensor(zeros: [12, 8, 12])
        bad.scalars[7] = 300
        let cases: [([String], String)] = [
            (["latents", "--model", "/nonexistent", f8, "-o", out], "does not exist"),
            (["latents", "--model", model, f8, "-o", out], "'<f8'"),
            (["latents", "--model", model, try write(Tensor(zeros: [3, 60, 64]), "odd.npy"), "-o", out], "multiple of 2^J"),
            (["latents", "--model", model, try write(Tensor(zeros: [4, 64, 64]), "c4.npy"), "-o", out], "channel"),
            (["latents", "--model", model, try write(Tensor(zeros: [2, 3, 64, 64]), "b2.npy"), "-o", out], "batch of 2"),
            (["reconstruct", "--model", model, try write(bad, "range.npy"), "-o", out], "outside the 8-bit quantiser's range"),
            (["reconstruct", "--model", model, try write(Tensor(zeros: [5, 8, 12]), "c5.npy"), "-o", out], "12 channels"),
            (["reconstruct", "--model", model, dir.appendingPathComponent("missing.npy").path, "-o", out], "no such file"),
            (["info", "--model", dir.path], "config.json"),
        ]
        for (args, message) in cases {
            let r = try CLI.run(args)
            #expect(r.status != 0, "\(args) succeeded")
            #expect(r.stderr.contains(message), "\(args): stderr was \(r.stderr)")
            #expect(!r.stderr.contains("Fatal error"))
            #expect(!FileManager.default.fileExists(atPath: out))
        }
        // Nothing but the inputs is left behind (no temporary files).
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(names.allSatisfy { !$0.hasPrefix(".") }, "left behind: \(names)")
    }

    @Test("info describes the model")
    func info() throws {
        let r = try CLI.run(["info", "--model", model, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(json["type"] as? String == "Codec2D")
        #expect(json["latent_dim"] as? Int == 12)
        #expect(json["wavelet_bands"] as? Int == 192)
        #expect(json["dimensionality_reduction"] as? Double == 16)
        #expect(json["encoder_parameters"] as? Int == 12 * 192 + 12)
        #expect(json["example_latent_shape"] as? [Int] == [12, 64, 96])
    }
}
