import Foundation
import Testing
import Walloc

@Suite("Dataset latents: shards, manifest, resume, worker split, merge")
struct DatasetTests {
    let codec: Codec
    init() throws { codec = try Fixtures.model("codec2d_light") }

    @Test("round trip: shards hold the codec's latents of the prepared images, labels, names; the manifest describes them")
    func roundTrip() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = try makeImageDataset(at: dir.appendingPathComponent("data"), perClass: 4)
        let out = dir.appendingPathComponent("out")
        let summary = try convert(dir.appendingPathComponent("data"), out, codec: codec) { $0.size = [40, 32]; $0.shardSize = 3 }
        let m = try DatasetManifest.read(out.appendingPathComponent(DatasetManifest.fileName))
        #expect(m == summary.manifest)
        #expect(m.items == 8 && m.shardCount == 3 && m.shardSize == 3)
        #expect(m.classes == ["cat", "dog"])
        #expect(m.itemShape == [12, 4, 5] && m.dtype == "I8" && m.tensor == "latents")
        #expect(m.preparation.signalShape == [3, 32, 40] && m.preparation.size == [40, 32])
        #expect(m.model.fingerprint == codec.fingerprintHex)
        #expect(m.shards.map(\.count) == [3, 3, 2] && m.shards.map(\.first) == [0, 3, 6])
        for s in m.shards {
            let url = out.appendingPathComponent(s.file)
            #expect(try SHA256Digest.hex(fileAt: url) == s.sha256)
        }
        // Shard 1 holds items 3, 4, 5: cat/img3, dog/img0, dog/img1.
        let shard = try Safetensors.read(out.appendingPathComponent("shard-00001.safetensors"))
        #expect(shard.dtypes["latents"] == .i8 && shard.dtypes["labels"] == .i64)
        #expect(shard.tensors["labels"]!.scalars == [0, 1, 1])
        #expect(shard.metadata["names"] == #"["cat/img3.png","dog/img0.png","dog/img1.png"]"#)
        let latents = shard.tensors["latents"]!
        #expect(latents.shape == [3, 12, 4, 5])
        for (k, file) in [files[3], files[4], files[5]].enumerated() {
            let pixels = DatasetConverter.coverCrop(try ImageIO.read(file).pixels, width: 40, height: 32)
            let y = try codec.encode(SignalPreparation.imageToSignal(pixels))
            #expect(latents.slice(k) == y, "item \(k)")
        }
        #expect(latents.scalars.contains { $0 != 0 })
        // Loading the whole dataset back.
        let data = try LabeledDataset.load(out)
        #expect(data.count == 8 && data.labels == [0, 0, 0, 0, 1, 1, 1, 1])
        #expect(data.names[4] == "dog/img0.png")
        #expect(Array(data.values[(4 * 240)..<(5 * 240)]).map(Float.init) == latents.slice(1).scalars)
    }

    @Test("resized baseline: as many values as the latents, area-resized 8-bit pixels")
    func resizedImages() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = try makeImageDataset(at: dir.appendingPathComponent("data"), perClass: 2)
        let out = dir.appendingPathComponent("out")
        try convert(dir.appendingPathComponent("data"), out, codec: codec) { $0.size = [40, 32]; $0.representation = .resized }
        let m = try DatasetManifest.read(out.appendingPathComponent(DatasetManifest.fileName))
        // 16x fewer values: [3, 32, 40] -> [3, 8, 10] (240 values, as the latents [12, 4, 5]).
        #expect(m.itemShape == [3, 8, 10] && m.dtype == "U8" && m.tensor == "resized")
        let shard = try Safetensors.read(out.appendingPathComponent("shard-00000.safetensors"))
        let pixels = DatasetConverter.coverCrop(try ImageIO.read(files[0]).pixels, width: 40, height: 32)
        let expected = Resize.area(pixels, height: 8, width: 10).scalars.map { min(255, max(0, ($0 * 255).rounded())) }
        #expect(shard.tensors["resized"]!.slice(0).scalars == expected)
    }

    @Test("resume keeps finished shards, re-encodes missing or damaged ones, and the result is identical")
    func resume() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data"), out = dir.appendingPathComponent("out")
        try makeImageDataset(at: data, perClass: 4)
        try convert(data, out, codec: codec) { $0.size = [40, 32]; $0.shardSize = 3 }
        let before = try contents(out)
        var s = try convert(data, out, codec: codec) { $0.size = [40, 32]; $0.shardSize = 3 }
        #expect(s.keptShards == 3 && s.encodedShards == 0 && s.encodedItems == 0)
        try FileManager.default.removeItem(at: out.appendingPathComponent("shard-00002.safetensors"))
        try corrupt(out.appendingPathComponent("shard-00000.safetensors"))
        // A leftover of a killed write is removed.
        try Data("partial".utf8).write(to: out.appendingPathComponent(".shard-00001.safetensors.tmp-123"))
        s = try convert(data, out, codec: codec) { $0.size = [40, 32]; $0.shardSize = 3 }
        #expect(s.keptShards == 1 && s.encodedShards == 2 && s.encodedItems == 5)
        #expect(try contents(out) == before)
        // --force converts everything again.
        s = try convert(data, out, codec: codec) { $0.size = [40, 32]; $0.shardSize = 3; $0.force = true }
        #expect(s.keptShards == 0 && s.encodedShards == 3)
        #expect(try contents(out) == before)
    }

    @Test("N workers with --shard I/N write exactly what one worker writes; merge gives the same manifest")
    func workerSplit() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try makeImageDataset(at: data, perClass: 5)
        let single = dir.appendingPathComponent("single")
        try convert(data, single, codec: codec) { $0.size = [40, 32]; $0.shardSize = 2 }
        var parts = [URL]()
        for w in 1...3 {
            let part = dir.appendingPathComponent("part\(w)")
            let s = try convert(data, part, codec: codec) { $0.size = [40, 32]; $0.shardSize = 2; $0.worker = w; $0.workers = 3 }
            #expect(s.manifest.worker == .init(index: w, count: 3))
            #expect(s.manifest.shards.map(\.index) == Array(stride(from: w - 1, to: 5, by: 3)))
            #expect(s.manifestURL.lastPathComponent == "manifest-part-\(w)-of-3.json")
            parts.append(part)
        }
        // Merging before every worker has finished fails, naming the missing shards.
        #expect(throws: WallocError.self) { try DatasetShards.check(Array(parts.prefix(2))) }
        do { _ = try DatasetShards.check(Array(parts.prefix(2))) } catch let e as WallocError { #expect(e.message.contains("missing shards 2")) }
        let merged = dir.appendingPathComponent("merged")
        try DatasetShards.merge(parts, into: merged)
        let one = try contents(single), union = try contents(merged)
        #expect(one.keys.filter { $0.hasPrefix("shard-") }.count == 5)
        for (name, bytes) in one { #expect(union[name] == bytes, "\(name)") }
        // Merging in place (every part in one folder, as workers sharing a disk write them).
        let shared = dir.appendingPathComponent("shared")
        for w in 1...3 { try convert(data, shared, codec: codec) { $0.size = [40, 32]; $0.shardSize = 2; $0.worker = w; $0.workers = 3 } }
        try DatasetShards.merge([shared], into: shared)
        #expect(try Data(contentsOf: shared.appendingPathComponent("manifest.json")) == one["manifest.json"])
    }

    @Test("verify and merge catch a corrupted, truncated or foreign shard, and parts of another conversion")
    func verification() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data"), out = dir.appendingPathComponent("out")
        try makeImageDataset(at: data, perClass: 3)
        try convert(data, out, codec: codec) { $0.size = [40, 32]; $0.shardSize = 2 }
        #expect(try DatasetShards.check([out]).manifest.items == 6)
        func problem() -> String {
            do { _ = try DatasetShards.check([out]); return "" } catch { return (error as? WallocError)?.message ?? "\(error)" }
        }
        let shard = out.appendingPathComponent("shard-00001.safetensors")
        let good = try Data(contentsOf: shard)
        try corrupt(shard)
        #expect(problem().contains("SHA-256 mismatch"))
        #expect(throws: WallocError.self) { try LabeledDataset.load(out) }
        try good.prefix(good.count - 10).write(to: shard)
        #expect(problem().contains("bytes, the manifest says"))
        try FileManager.default.removeItem(at: shard)
        #expect(problem().contains("missing"))
        try good.write(to: shard)
        #expect(problem().isEmpty)
        // Another conversion (other size) in another folder cannot be merged with this one.
        let other = dir.appendingPathComponent("other")
        try convert(data, other, codec: codec) { $0.size = [48, 32]; $0.shardSize = 2 }
        #expect(throws: WallocError.self) { try DatasetShards.merge([out, other], into: out) }
        // ... nor converted into the same folder without --force.
        #expect(throws: WallocError.self) { try convert(data, out, codec: codec) { $0.size = [48, 32]; $0.shardSize = 2 } }
        try convert(data, out, codec: codec) { $0.size = [48, 32]; $0.shardSize = 2; $0.force = true }
        #expect(try DatasetShards.check([out]).manifest.preparation.size == [48, 32])
    }

    @Test("list files: relative paths, integer or named labels, unlabelled lines")
    func listFile() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try makeImageDataset(at: dir.appendingPathComponent("data"), perClass: 2)
        let list = dir.appendingPathComponent("list.tsv")
        try "# comment\ndata/cat/img0.png\t2\n\ndata/dog/img1.png\t0\n".write(to: list, atomically: true, encoding: .utf8)
        var listing = try DatasetListing.read(list.path)
        #expect(listing.classes == ["0", "1", "2"] && listing.items.map(\.label) == [2, 0] && listing.items[0].name == "data/cat/img0.png")
        try "data/cat/img0.png\tzebra\ndata/dog/img1.png\tant\ndata/dog/img0.png\n".write(to: list, atomically: true, encoding: .utf8)
        listing = try DatasetListing.read(list.path)
        #expect(listing.classes == ["ant", "zebra"] && listing.items.map(\.label) == [1, 0, -1])
        let out = dir.appendingPathComponent("out")
        try convert(list, out, codec: codec) { $0.size = [40, 32] }
        #expect(try LabeledDataset.load(out).labels == [1, 0, -1])
        try "data/cat/img0.png\t1\nmissing.png\t0\n".write(to: list, atomically: true, encoding: .utf8)
        #expect(throws: WallocError.self) { try DatasetListing.read(list.path) }
    }

    @Test("errors: sizes that do not stack, mixed media, wrong modality")
    func errors() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try makeImageDataset(at: data, perClass: 3)  // 36x50 and 42x54: 40x56 and 48x56 once padded
        do {
            try convert(data, dir.appendingPathComponent("out"), codec: codec)
            Issue.record("images of different sizes were accepted without --size")
        } catch let e as WallocError {
            #expect(e.message.contains("--size"))
        }
        try AudioIO.write(Tensor(zeros: [2, 100]), sampleRate: 8000, to: data.appendingPathComponent("dog/x.wav"))
        #expect(throws: WallocError.self) { try DatasetListing.read(data.path) }
        try FileManager.default.removeItem(at: data.appendingPathComponent("dog/x.wav"))
        try ImageIO.write(noise([3, 8, 8], seed: 1), to: data.appendingPathComponent("loose.png"), format: .png)
        #expect(throws: WallocError.self) { try DatasetListing.read(data.path) }
        let audioCodec = try Fixtures.model("codec1d_light")
        try FileManager.default.removeItem(at: data.appendingPathComponent("loose.png"))
        #expect(throws: WallocError.self) { try convert(data, dir.appendingPathComponent("out2"), codec: audioCodec) }
    }

    @Test("audio: clips cut or padded to --seconds, level-normalised; latents and the low-pass baseline")
    func audio() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try makeAudioDataset(at: data)
        let audioCodec = try Fixtures.model("codec1d_light")
        let out = dir.appendingPathComponent("out")
        // 0.07 s at 16 kHz = 1120 samples -> 1120 (a multiple of 2^5 = 32).
        try convert(data, out, codec: audioCodec) { $0.seconds = 0.07 }
        let m = try DatasetManifest.read(out.appendingPathComponent(DatasetManifest.fileName))
        #expect(m.preparation.signalShape == [2, 1120] && m.preparation.sampleRate == 16000)
        #expect(m.itemShape == [16, 1120 / 32 + 2] && m.dtype == "I8")
        let shard = try Safetensors.read(out.appendingPathComponent("shard-00000.safetensors"))
        // Item 1 (a/clip1, 1050 frames) is padded with zeros after level normalisation.
        let samples = try AudioIO.read(data.appendingPathComponent("a/clip1.wav")).samples
        var x = SignalPreparation.normalize(samples, SignalPreparation.audioLevel(of: samples))
        var padded = Tensor(zeros: [2, 1120])
        for c in 0..<2 { for i in 0..<1050 { padded.scalars[c * 1120 + i] = x.scalars[c * 1050 + i] } }
        x = padded
        #expect(shard.tensors["latents"]!.slice(1) == (try audioCodec.encode(x)))
        let resized = dir.appendingPathComponent("resized")
        try convert(data, resized, codec: audioCodec) { $0.seconds = 0.07; $0.representation = .resized }
        let r = try DatasetManifest.read(resized.appendingPathComponent(DatasetManifest.fileName))
        // As many values as the latents [16, 37] (two boundary frames included): 592 / 2 = 296 samples per channel.
        #expect(r.itemShape == [2, 296] && r.dtype == "I16")
        let expected = Resample.lowpass(x, length: 296).scalars.map { min(32767, max(-32767, ($0 * 65534).rounded())) }
        #expect(try Safetensors.read(resized.appendingPathComponent("shard-00000.safetensors")).tensors["resized"]!.slice(1).scalars == expected)
        // Without --seconds, clips of different lengths do not stack.
        #expect(throws: WallocError.self) { try convert(data, dir.appendingPathComponent("out3"), codec: audioCodec) }
    }

    @Test("the values do not depend on the thread count")
    func threads() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir); Threading.setCount(Threading.defaultCount) }
        let data = dir.appendingPathComponent("data")
        try makeImageDataset(at: data, perClass: 3)
        Threading.setCount(1)
        try convert(data, dir.appendingPathComponent("one"), codec: codec) { $0.size = [40, 32] }
        Threading.setCount(3)
        try convert(data, dir.appendingPathComponent("three"), codec: codec) { $0.size = [40, 32] }
        #expect(try contents(dir.appendingPathComponent("one")) == contents(dir.appendingPathComponent("three")))
    }
}
