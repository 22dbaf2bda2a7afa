import Foundation
import Testing
import Walloc

@Suite("walloc encode / decode / info / compare")
struct EncodeCLITests {
    let image = Fixtures.reference("codec2d_light").path
    let audio = Fixtures.reference("codec1d_light").path

    @Test("A folder in, a folder out, and back; a bad file is reported and skipped")
    func folders() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let inputs = dir.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: inputs, withIntermediateDirectories: true)
        for (i, (h, w)) in [(37, 53), (64, 40)].enumerated() {
            try ImageIO.write(RoundTripTests.pixels(channels: 3, height: h, width: w, seed: UInt64(i)), to: inputs.appendingPathComponent("p\(i).png"))
        }
        try Data([0x89, 0x50, 0x4E, 0x47, 1, 2, 3]).write(to: inputs.appendingPathComponent("broken.png"))
        let coded = dir.appendingPathComponent("coded").path
        var r = try CLI.run(["encode", "--model", image, inputs.path, "-o", coded])
        #expect(r.status == 1)
        #expect(r.stderr.contains("broken.png") && r.stdout.contains("p0.png -> p0.wlc") && r.stdout.contains("bpp"))
        let files = try FileManager.default.contentsOfDirectory(atPath: coded).sorted()
        #expect(files == ["p0.wlc", "p1.wlc"])
        // Existing outputs are kept unless --force.
        r = try CLI.run(["encode", "--model", image, inputs.appendingPathComponent("p0.png").path, "-o", coded + "/p0.wlc"])
        #expect(r.status == 1 && r.stderr.contains("--force"))
        r = try CLI.run(["encode", "--model", image, inputs.appendingPathComponent("p0.png").path, "-o", coded + "/p0.wlc", "--force", "--quiet"])
        #expect(r.status == 0 && r.stdout.isEmpty)

        let decoded = dir.appendingPathComponent("decoded").path
        r = try CLI.run(["decode", "--model", image, coded, "-o", decoded])
        #expect(r.status == 0, "\(r.stderr)")
        let back = try ImageIO.read(URL(fileURLWithPath: decoded + "/p0.png"))
        #expect(back.pixels.shape == [3, 37, 53])

        r = try CLI.run(["info", coded + "/p1.wlc", "--json"])
        #expect(r.status == 0)
        let info = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(info?["shape"] as? [Int] == [3, 64, 40] && info?["modality"] as? String == "image")

        r = try CLI.run(["compare", inputs.appendingPathComponent("p0.png").path, decoded + "/p0.png", "--wlc", coded + "/p0.wlc", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let m = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Double]
        #expect((m?["psnr_db"] ?? 0) > 5 && (m?["bits_per_pixel"] ?? 0) > 0 && (m?["ms_ssim"] ?? 2) <= 1)

        // Another model is refused, naming both.
        r = try CLI.run(["decode", "--model", Fixtures.root.appendingPathComponent("generated/codec2d_rgb_j4").path, coded + "/p0.wlc", "-o", dir.appendingPathComponent("x.png").path])
        #expect(r.status == 1 && r.stderr.contains("codec2d_light") && r.stderr.contains("codec2d_rgb_j4"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.png").path))
    }

    @Test("Audio to .wlc and back to FLAC; outputs never replace inputs; corrupt files fail cleanly")
    func audioAndErrors() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let wav = dir.appendingPathComponent("clip.wav")
        try AudioIO.write(StreamingTests.signal(channels: 2, length: 5000, seed: 1), sampleRate: 44_100, to: wav)
        let wlc = dir.appendingPathComponent("clip.wlc").path
        var r = try CLI.run(["encode", "--model", audio, wav.path, "-o", wlc])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("kbps"))
        let flac = dir.appendingPathComponent("clip.flac").path
        r = try CLI.run(["decode", "--model", audio, wlc, "-o", flac])
        #expect(r.status == 0, "\(r.stderr)")
        let back = try AudioIO.read(URL(fileURLWithPath: flac))
        #expect(back.samples.shape == [2, 5000] && back.sampleRate == 44_100)
        r = try CLI.run(["compare", wav.path, flac])
        #expect(r.status == 0 && r.stdout.contains("snr_db"))

        r = try CLI.run(["encode", "--model", audio, wav.path, "-o", wav.path, "--force", "--force-name"])
        #expect(r.status == 1 && r.stderr.contains("input"))
        // A bitstream is not written under another format's name unless asked to.
        for name in ["clip.webp", "clip.FLAC", "clip.npy"] {
            let misnamed = dir.appendingPathComponent(name).path
            r = try CLI.run(["encode", "--model", audio, wav.path, "-o", misnamed])
            #expect(r.status == 1 && r.stderr.contains("not a .") && r.stderr.contains("--force-name"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: misnamed))
        }
        let kept = dir.appendingPathComponent("clip.webp").path
        r = try CLI.run(["encode", "--model", audio, wav.path, "-o", kept, "--force-name"])
        #expect(r.status == 0)
        let keptFile = try WLCFile.decode(Data(contentsOf: URL(fileURLWithPath: kept)))
        #expect(keptFile.header.modality == .audio)
        r = try CLI.run(["encode", "--model", audio, wav.path, "-o", dir.appendingPathComponent("clip.bitstream").path])
        #expect(r.status == 0, "an unknown extension is not another format")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: wlc)))
        bytes[bytes.count / 2] ^= 0x10
        let bad = dir.appendingPathComponent("bad.wlc")
        try Data(bytes).write(to: bad)
        let out = dir.appendingPathComponent("bad.wav").path
        r = try CLI.run(["decode", "--model", audio, bad.path, "-o", out])
        #expect(r.status == 1 && r.stderr.contains("checksum"))
        #expect(!FileManager.default.fileExists(atPath: out))
        r = try CLI.run(["decode", "--model", audio, wav.path, "-o", out])
        #expect(r.status != 0)
    }
}
