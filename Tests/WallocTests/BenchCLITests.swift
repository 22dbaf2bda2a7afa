import Foundation
import Testing
import Walloc

@Suite("walloc bench: stages, audio, peak memory, argument checks")
struct BenchCLITests {
    static func json(_ r: CLI.Result) throws -> [[String: Any]] {
        #expect(r.status == 0, "\(r.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], "not JSON: \(r.stdout)")
    }

    static let stages = ["wpt_s", "encode_s", "entropy_encode_s", "entropy_decode_s", "decode_s", "file_encode_s", "file_decode_s"]

    @Test("Image and audio stages: every stage timed, latent counts and coded sizes reported, temporary files removed")
    func stages() throws {
        let tmp = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        let env = ["TMPDIR": tmp.path]
        var rows = try Self.json(try CLI.run(["bench", "--size", "64x48", "--nd", "32", "--warmup", "0", "--repeat", "1", "--json"], environment: env))
        #expect(rows.count == 1)
        var row = rows[0]
        #expect(row["modality"] as? String == "image")
        #expect(row["shape"] as? [Int] == [3, 48, 64])
        #expect(row["latents"] as? Int == 12 * 6 * 8)
        for key in Self.stages { #expect((row[key] as? Double ?? 0) > 0, "\(key)") }
        #expect((row["latent_bytes"] as? Int ?? 0) > 0 && (row["wlc_bytes"] as? Int ?? 0) > (row["latent_bytes"] as? Int ?? 0))

        // One second of audio, cut to a multiple of 2^8: 172 latent steps plus the two end steps.
        rows = try Self.json(try CLI.run(["bench", "--audio", "1", "--nd", "32", "--warmup", "0", "--repeat", "1", "--json"], environment: env))
        row = rows[0]
        #expect(row["modality"] as? String == "audio")
        #expect(row["shape"] as? [Int] == [2, 172 * 256])
        #expect(row["latents"] as? Int == 32 * 174)
        for key in Self.stages { #expect((row[key] as? Double ?? 0) > 0, "\(key)") }
        #expect(row["input_file_bytes"] as? Int == 44 + 2 * 2 * 172 * 256)

        // An audio model implies audio; --skip-files leaves the file stages out.
        rows = try Self.json(try CLI.run(["bench", "--model", Fixtures.reference("codec1d_light").path, "--audio", "0.5", "--skip-files",
                                          "--warmup", "0", "--repeat", "1", "--json"], environment: env))
        #expect(rows[0]["shape"] as? [Int] == [2, 22_050 / 32 * 32])
        #expect(rows[0]["file_encode_s"] == nil && (rows[0]["decode_s"] as? Double ?? 0) > 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path).isEmpty)
    }

    @Test("Peak memory: encode and decode run as children, each measured, against 4x the float32 signal; nothing left behind")
    func peakMemory() throws {
        let tmp = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        let env = ["TMPDIR": tmp.path]
        var rows = try Self.json(try CLI.run(["bench", "--peak-memory", "--model", Fixtures.reference("codec1d_light").path,
                                              "--audio", "2", "--json"], environment: env))
        #expect(rows.count == 1)
        var row = rows[0]
        #expect(row["modality"] as? String == "audio")
        #expect(row["signal_float32_bytes"] as? Int == 2 * 88_200 * 4)
        #expect(row["bound_bytes"] as? Int == 4 * 2 * 88_200 * 4)
        #expect(row["input_file_bytes"] as? Int == 44 + 2 * 88_200 * 2)
        for key in ["encode_peak_bytes", "decode_peak_bytes", "model_only_peak_bytes"] {
            // At least the executable and its libraries, at most what this machine could hold.
            let v = row[key] as? Int ?? 0
            #expect(v > 4 << 20 && v < 8 << 30, "\(key) = \(v)")
        }
        #expect((row["wlc_bytes"] as? Int ?? 0) > 0)

        rows = try Self.json(try CLI.run(["bench", "--peak-memory", "--model", Fixtures.reference("codec2d_light").path,
                                          "--size", "80x48", "--json"], environment: env))
        row = rows[0]
        #expect(row["modality"] as? String == "image")
        #expect(row["signal_float32_bytes"] as? Int == 3 * 80 * 48 * 4)
        #expect((row["decode_peak_bytes"] as? Int ?? 0) > 4 << 20)

        // Without --model: both modalities, default models or random stand-ins. The children's
        // readings do not include memory the benchmark process used to build a random model.
        rows = try Self.json(try CLI.run(["bench", "--peak-memory", "--audio", "1", "--size", "64x64", "--json"], environment: env))
        #expect(rows.map { $0["modality"] as? String } == ["audio", "image"])
        for row in rows {
            let idle = row["model_only_peak_bytes"] as? Int ?? 0
            #expect(idle > 4 << 20 && idle < 256 << 20, "\(row["modality"] ?? ""): walloc info peak \(idle)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path).isEmpty)
    }

    @Test("Bad arguments: a clear message and a non-zero exit")
    func badArguments() throws {
        let cases: [([String], String)] = [
            (["--audio", "0"], "--audio"),
            (["--audio", "-2"], "--audio"),
            (["--audio", "nan"], "--audio"),
            (["--size", "64x"], "--size"),
            (["--size", "0x10"], "--size"),
            (["--metrics", "--peak-memory"], "separate modes"),
            (["--peak-memory", "--input", "x.npy"], "--input"),
            (["--repeat", "0"], "--repeat"),
            (["--nd", "abc", "--size", "16x16"], "--nd"),
            (["--audio", "0.001", "--nd", "32"], "shorter than one latent step"),
            (["--model", Fixtures.reference("codec2d_light").path, "--audio", "1"], "audio (Codec1D) model"),
        ]
        for (args, message) in cases {
            let r = try CLI.run(["bench"] + args)
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
    }
}
