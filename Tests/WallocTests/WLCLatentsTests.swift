import Foundation
import Testing
import Walloc

/// `walloc latents` on `.wlc` files: the latents a file stores, entropy-decoded only, alone and as a dataset.
@Suite("walloc latents from .wlc files")
struct WLCLatentsTests {
    /// A smooth test picture with some texture (values in [0, 1]), `[3, h, w]`.
    static func picture(h: Int, w: Int, seed: UInt64) -> Tensor {
        let noise = randomTensor([3, h, w], seed: seed)
        var x = Tensor(zeros: [3, h, w])
        let phase = Float(seed % 7)
        for c in 0..<3 {
            for y in 0..<h {
                for i in 0..<w {
                    let v = 0.5 + 0.3 * sin(Float(y) / 5 + phase + Float(c)) * cos(Float(i) / 7 - phase) + 0.1 * noise.scalars[(c * h + y) * w + i]
                    x.scalars[(c * h + y) * w + i] = min(1, max(0, v))
                }
            }
        }
        return x
    }

    static func npy(_ path: String) throws -> Tensor { try NPY.read(URL(fileURLWithPath: path)) }

    @Test("one .wlc file: exactly the latents walloc latents gives for the image; --quality and other models refused")
    func oneFile() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let png = dir.appendingPathComponent("p.png").path, wlc = dir.appendingPathComponent("p.wlc").path
        try ImageIO.write(Self.picture(h: 45, w: 70, seed: 3), to: URL(fileURLWithPath: png), format: .png)
        var r = try CLI.run(["encode", png, "-o", wlc, "--quality", "35"])
        #expect(r.status == 0, "\(r.stderr)")
        let fromFile = dir.appendingPathComponent("f.npy").path, fromImage = dir.appendingPathComponent("i.npy").path
        r = try CLI.run(["latents", wlc, "-o", fromFile])
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLI.run(["latents", png, "--quality", "35", "-o", fromImage])
        #expect(r.status == 0, "\(r.stderr)")
        let a = try Self.npy(fromFile), b = try Self.npy(fromImage)
        #expect(a.shape == [64, 8, 11] && a == b)  // 45 x 70 with the smooth margin: 64 x 88
        #expect(a.scalars.contains { $0 != 0 } && a.scalars.allSatisfy { $0 == $0.rounded() })
        // The file's setting is the one used; asking for another is an error, as is another model.
        r = try CLI.run(["latents", wlc, "--quality", "50", "-o", dir.appendingPathComponent("q.npy").path])
        #expect(r.status != 0 && r.stderr.contains("quality") && r.stderr.contains("35"))
        r = try CLI.run(["latents", wlc, "--model", Fixtures.reference("codec2d_light").path, "-o", dir.appendingPathComponent("m.npy").path])
        #expect(r.status != 0 && r.stderr.contains("fingerprint"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("q.npy").path))
        // A damaged file is refused, and nothing is written.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: wlc))
        bytes[bytes.count - 9] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: wlc))
        r = try CLI.run(["latents", wlc, "-o", dir.appendingPathComponent("d.npy").path])
        #expect(r.status != 0 && r.stderr.contains("corrupt"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("d.npy").path))
    }

    /// Images of 40 x 48 at setting 40 (coded as they are), and of 80 x 96 at setting 20, which the
    /// default RGB model codes at half size (`rate.downscale`): the same latent shape either way
    /// (with `--downscale`, as the files).
    @Test("a dataset of .wlc files gives the shards of the original images; mixed settings and resizing refused",
          arguments: [(40, 48, 40), (80, 96, 20)])
    func dataset(height: Int, width: Int, quality: Int) throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pngs = dir.appendingPathComponent("png"), wlcs = dir.appendingPathComponent("wlc")
        for (c, name) in ["a", "b"].enumerated() {
            try FileManager.default.createDirectory(at: pngs.appendingPathComponent(name), withIntermediateDirectories: true)
            for i in 0..<3 {
                try ImageIO.write(Self.picture(h: height, w: width, seed: UInt64(10 * c + i)),
                                  to: pngs.appendingPathComponent("\(name)/\(i).png"), format: .png)
            }
            let r = try CLI.run(["encode", pngs.appendingPathComponent(name).path, "-o", wlcs.appendingPathComponent(name).path, "--quality", "\(quality)"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let fromPNG = dir.appendingPathComponent("s-png"), fromWLC = dir.appendingPathComponent("s-wlc")
        // --downscale: the images shrink where walloc encode shrinks them, so the shards match.
        var r = try CLI.run(["latents", pngs.path, "-o", fromPNG.path, "--quality", "\(quality)", "--shard-size", "4", "--downscale"])
        #expect(r.status == 0, "\(r.stderr)")
        if quality == 20 {  // without it, every setting keeps the full-size grid
            let full = dir.appendingPathComponent("s-full")
            r = try CLI.run(["latents", pngs.path, "-o", full.path, "--quality", "20"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try DatasetManifest.read(full.appendingPathComponent(DatasetManifest.fileName)).itemShape == [64, 12, 14])
        }
        r = try CLI.run(["latents", wlcs.path, "-o", fromWLC.path, "--shard-size", "4"])  // the files' setting
        #expect(r.status == 0, "\(r.stderr)")
        let mp = try DatasetManifest.read(fromPNG.appendingPathComponent(DatasetManifest.fileName))
        let mw = try DatasetManifest.read(fromWLC.appendingPathComponent(DatasetManifest.fileName))
        #expect(mw.itemShape == [64, 7, 8] && mw.itemShape == mp.itemShape && mw.model == mp.model && mw.model.quality == quality)
        #expect(mw.preparation.signalShape == mp.preparation.signalShape && mw.shardCount == 2)
        for s in 0..<2 {
            let a = try Safetensors.read(fromPNG.appendingPathComponent(DatasetManifest.shardFileName(s)))
            let b = try Safetensors.read(fromWLC.appendingPathComponent(DatasetManifest.shardFileName(s)))
            #expect(a.tensors["latents"] != nil && a.tensors["latents"]!.shape == [s == 0 ? 4 : 2, 64, 7, 8])
            #expect(a.tensors["latents"] == b.tensors["latents"] && a.tensors["labels"] == b.tensors["labels"])
            #expect(a.metadata["data_sha256"] == b.metadata["data_sha256"])
        }
        // Another setting, resizing and the resized baseline do not apply to .wlc files.
        r = try CLI.run(["latents", wlcs.path, "-o", dir.appendingPathComponent("x").path, "--quality", "60"])
        #expect(r.status != 0 && r.stderr.contains("quality \(quality)"))
        r = try CLI.run(["latents", wlcs.path, "-o", dir.appendingPathComponent("y").path, "--size", "32x32"])
        #expect(r.status != 0 && r.stderr.contains("--size"))
        r = try CLI.run(["latents", wlcs.path, "-o", dir.appendingPathComponent("z").path, "--resized"])
        #expect(r.status != 0 && r.stderr.contains("--resized"))
        // One file at another setting is named.
        r = try CLI.run(["encode", pngs.appendingPathComponent("b/2.png").path, "-o", wlcs.appendingPathComponent("b/2.wlc").path, "--quality", "70", "--force"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLI.run(["latents", wlcs.path, "-o", dir.appendingPathComponent("w").path])
        #expect(r.status != 0 && r.stderr.contains("2.wlc") && r.stderr.contains("quality 70"))
    }
}
