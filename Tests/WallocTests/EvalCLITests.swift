import Foundation
import Testing
import Walloc

@Suite("walloc eval")
struct EvalCLITests {
    let model = Fixtures.reference("codec2d_light").path
    static let metrics = Fixtures.root.appendingPathComponent("metrics")

    /// A data folder: two good photos, an unreadable file, a too-small image, an audio file.
    func makeData(_ dir: URL) throws -> URL {
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        for name in ["rgb_3scales_ref.png", "rgb_odd_4scales_ref.png"] {
            try FileManager.default.copyItem(at: EvalCLITests.metrics.appendingPathComponent(name), to: data.appendingPathComponent(name))
        }
        try Data("not an image".utf8).write(to: data.appendingPathComponent("broken.png"))
        try ImageIO.write(Tensor(repeating: 0.5, shape: [3, 8, 9]), to: data.appendingPathComponent("tiny.png"))
        try AudioIO.write(Tensor(zeros: [1, 800]), sampleRate: 8000, to: data.appendingPathComponent("sound.wav"))
        try Data("ignored".utf8).write(to: data.appendingPathComponent("notes.txt"))
        return data
    }

    @Test("End to end: every codec and setting measured, bad files reported and skipped, exit status 1")
    func endToEnd() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try makeData(dir)
        let json = dir.appendingPathComponent("out.json"), csv = dir.appendingPathComponent("out.csv")
        let svg = dir.appendingPathComponent("out.svg")
        let args = ["eval", "--model", model, data.path, "--qualities", "jpeg:30,70", "--qualities", "20",
                    "--json", json.path, "--csv", csv.path, "--plot", svg.path]
        let r = try CLI.run(args)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(!r.stderr.contains("Fatal error"))
        for name in ["broken.png", "tiny.png", "sound.wav"] {
            #expect(r.stderr.contains("\(name): skipped"), "\(r.stderr)")
        }
        #expect(r.stderr.contains("too small") && r.stderr.contains("audio file"))
        #expect(r.stderr.contains("[1/5] broken.png") && r.stderr.contains("rgb_3scales_ref.png: codec2d_light"))
        #expect(r.stderr.contains("3 of 5 file(s) could not be evaluated"))
        #expect(r.stdout.contains("BD-rate") && r.stdout.contains("q=70"))

        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        let summary = try #require(object["summary"] as? [[String: Any]])
        // walloc + jpeg q=30, q=70 + webp, avif, jxl at q=20.
        #expect(summary.map { "\($0["codec"]!) \($0["setting"]!)" } == ["walloc codec2d_light", "jpeg q=30", "jpeg q=70", "webp q=20", "avif q=20", "jxl q=20"])
        #expect(summary.allSatisfy { $0["files"] as? Int == 2 })
        for s in summary {
            for key in ["bpp", "psnr", "ssim", "ms_ssim", "encode_ms", "decode_ms"] {
                #expect(s[key] is Double, "\(s["codec"]!): \(key) missing")
            }
        }
        #expect(summary[0]["dimensionality_reduction"] as? Double == 16)
        let rows = try #require(object["rows"] as? [[String: Any]])
        #expect(rows.count == 12)
        // The walloc row's bits per pixel is the real .wlc size.
        let ours = try #require(rows.first { $0["codec"] as? String == "walloc" && $0["file"] as? String == "rgb_3scales_ref.png" })
        let bytes = try #require(ours["bytes"] as? Int)
        #expect(abs((ours["bpp"] as! Double) - Double(8 * bytes) / Double(64 * 80)) < 1e-9)
        let jpeg = try #require(rows.first { $0["codec"] as? String == "jpeg" && $0["setting"] as? String == "q=70" })
        #expect((jpeg["psnr"] as! Double) > 28)
        #expect((object["failures"] as? [[String: Any]])?.count == 3)
        #expect((object["bd_rate"] as? [[String: Any]])?.count == 8)

        let lines = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 13 && lines[0].hasPrefix("file,codec,setting,"))
        let plot = try String(contentsOf: svg, encoding: .utf8)
        #expect(plot.hasPrefix("<?xml") && plot.contains("<polyline") && plot.hasSuffix("</svg>\n"))

        // Outputs are not replaced without --force; nothing else is left behind.
        let again = try CLI.run(args)
        #expect(again.status != 0 && again.stderr.contains("--force"))
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(names == ["data", "out.csv", "out.json", "out.svg"])
    }

    @Test("Good files only: exit status 0; --baselines none; --quiet prints nothing")
    func cleanRun() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = EvalCLITests.metrics.appendingPathComponent("rgb_3scales_ref.png").path
        let json = dir.appendingPathComponent("r.json").path
        let r = try CLI.run(["eval", "--model", model, file, "--baselines", "none", "--json", json, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.isEmpty && r.stderr.isEmpty)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
        #expect((object["summary"] as? [[String: Any]])?.count == 1)
    }

    @Test("Audio: SNR, SI-SDR, log-mel and kbps against Vorbis; wrong channel count skipped")
    func audio() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let n = 8000
        var stereo = Tensor(zeros: [2, n])
        for c in 0..<2 {
            let step = 0.05 + 0.03 * Double(c)
            for i in 0..<n { stereo.scalars[c * n + i] = Float(0.3 * sin(Double(i) * step)) }
        }
        try AudioIO.write(stereo, sampleRate: 16_000, to: dir.appendingPathComponent("stereo.wav"))
        let three = Tensor(shape: [3, n], scalars: stereo.scalars + Array(stereo.scalars.prefix(n)))
        try AudioIO.write(three, sampleRate: 16_000, to: dir.appendingPathComponent("three.wav"))
        let json = dir.appendingPathComponent("a.json"), csv = dir.appendingPathComponent("a.csv")
        let r = try CLI.run(["eval", "--model", Fixtures.reference("codec1d_light").path, dir.appendingPathComponent("stereo.wav").path,
                             dir.appendingPathComponent("three.wav").path, "--baselines", "vorbis", "--qualities", "vorbis:10,60",
                             "--json", json.path, "--csv", csv.path])
        #expect(r.status == 1 && r.stderr.contains("three.wav: skipped") && r.stderr.contains("channel"), "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        #expect(object["modality"] as? String == "audio")
        let summary = try #require(object["summary"] as? [[String: Any]])
        #expect(summary.map { "\($0["codec"]!) \($0["setting"]!)" } == ["walloc codec1d_light", "vorbis q=10", "vorbis q=60"])
        #expect(summary.allSatisfy { $0["kbps"] is Double && $0["snr"] is Double && $0["si_sdr"] is Double })
        #expect((summary[2]["snr"] as! Double) > (summary[1]["snr"] as! Double))
        let header = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n")[0]
        #expect(header == "file,codec,setting,parameter,channels,frames,sample_rate,bytes,kbps,snr,si_sdr,log_mel,energy_db_0k_2k,energy_db_2k_4k,energy_db_4k_8k,energy_db_8k_16k,energy_db_16k_up,compression_ratio,dimensionality_reduction,encode_ms,decode_ms")
        #expect(summary.allSatisfy { $0["log_mel"] is Double })
    }

    @Test("Usage errors: unknown baseline, bad qualities, missing model, no default model")
    func usageErrors() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = EvalCLITests.metrics.appendingPathComponent("rgb_3scales_ref.png").path
        let json = dir.appendingPathComponent("r.json").path
        var cases: [([String], String)] = [
            (["eval", "--model", model, file, "--baselines", "bmp", "--json", json], "unknown baseline 'bmp'"),
            (["eval", "--model", model, file, "--qualities", "jpeg:5,200", "--json", json], "qualities 0-100"),
            (["eval", "--model", model, file, "--baselines", "jpeg", "--qualities", "webp:50", "--json", json], "'webp'"),
            (["eval", "--model", dir.path, file, "--json", json], "config.json"),
            (["eval", "--model", model, dir.appendingPathComponent("none.png").path, "--json", json], "no such file"),
        ]
        if DefaultModels.directory(for: .image) == nil {
            cases.append((["eval", file, "--json", json], "no default image model is installed"))
        }
        for (args, message) in cases {
            let r = try CLI.run(args)
            #expect(r.status != 0, "\(args) succeeded")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: json))
        }
    }
}
