import Foundation
import Testing
import Walloc

@Suite("Dataset signals: full-resolution inputs, and inputs decoded after a codec round trip")
struct SignalDatasetTests {
    let codec: Codec
    init() throws { codec = try Fixtures.model("codec2d_light") }

    @Test("--signal stores the prepared image as 8-bit pixels; a round trip stores what it decoded and each item's size")
    func images() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        let files = try makeImageDataset(at: data, perClass: 2)
        let plain = dir.appendingPathComponent("plain")
        try convert(data, plain, codec: codec) { $0.size = [40, 32]; $0.representation = .signal }
        let m = try DatasetManifest.read(plain.appendingPathComponent(DatasetManifest.fileName))
        #expect(m.itemShape == [3, 32, 40] && m.dtype == "U8" && m.tensor == "signal" && m.preparation.roundTrip == nil)
        let pixels = DatasetConverter.coverCrop(try ImageIO.read(files[1]).pixels, width: 40, height: 32)
        let expected = pixels.scalars.map { min(255, max(0, ($0 * 255).rounded())) }
        let shard = try Safetensors.read(plain.appendingPathComponent("shard-00000.safetensors"))
        #expect(shard.tensors["signal"]!.slice(1).scalars == expected)
        #expect(shard.metadata["coded_bytes"] == nil)
        #expect(try LabeledDataset.load(plain).codedBytes == nil)

        // A stand-in codec: halves the pixels and reports 100 + the first pixel's 8-bit value as its size.
        let halve = SignalRoundTrip(name: "halve:1") { x, rate in
            #expect(rate == 0)
            var y = x
            for i in 0..<y.count { y.scalars[i] *= 0.5 }
            return (y, 100 + Int((x.scalars[0] * 255).rounded()))
        }
        let decoded = dir.appendingPathComponent("decoded")
        try convert(data, decoded, codec: codec) { $0.size = [40, 32]; $0.representation = .signal; $0.roundTrip = halve; $0.shardSize = 3 }
        let d = try DatasetManifest.read(decoded.appendingPathComponent(DatasetManifest.fileName))
        #expect(d.preparation.roundTrip == "halve:1" && d.itemShape == m.itemShape)
        #expect(d.datasetID != m.datasetID)
        let set = try LabeledDataset.load(decoded)
        let sizes = try files.map { 100 + Int((DatasetConverter.coverCrop(try ImageIO.read($0).pixels, width: 40, height: 32).scalars[0] * 255).rounded()) }
        #expect(set.codedBytes == sizes)
        let halved = pixels.scalars.map { min(255, max(0, ($0 * 0.5 * 255).rounded())) }
        #expect(Array(set.values[(3 * 32 * 40)..<(2 * 3 * 32 * 40)]).map(Float.init) == halved)
        // The shard metadata holds the sizes of its own items.
        let second = try Safetensors.readHeader(decoded.appendingPathComponent("shard-00001.safetensors"))
        #expect(second.metadata["coded_bytes"] == "[\(sizes[3])]")

        // A round trip needs the full-resolution representation.
        #expect(throws: WallocError.self) { try convert(data, dir.appendingPathComponent("bad"), codec: codec) { $0.size = [40, 32]; $0.roundTrip = halve } }
        // A round trip that changes the shape is an error naming the codec.
        let crop = SignalRoundTrip(name: "crop:1") { x, _ in (Tensor(zeros: [3, 8, 8]), 1) }
        let e = #expect(throws: WallocError.self) {
            try convert(data, dir.appendingPathComponent("bad2"), codec: codec) { $0.size = [40, 32]; $0.representation = .signal; $0.roundTrip = crop }
        }
        #expect(e?.message.contains("crop:1 decoded [3, 8, 8]") == true, "\(e?.message ?? "no error")")
    }

    @Test("--signal stores level-normalised audio as 16-bit samples, with the sample rate passed to the round trip")
    func audio() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try makeAudioDataset(at: data)
        let audioCodec = try Fixtures.model("codec1d_light")
        let out = dir.appendingPathComponent("out")
        let identity = SignalRoundTrip(name: "same:0") { x, rate in
            #expect(rate == 16000)
            return (x, x.shape[1])
        }
        try convert(data, out, codec: audioCodec) { $0.seconds = 0.07; $0.representation = .signal; $0.roundTrip = identity }
        let m = try DatasetManifest.read(out.appendingPathComponent(DatasetManifest.fileName))
        #expect(m.itemShape == [2, 1120] && m.dtype == "I16" && m.preparation.sampleRate == 16000)
        let samples = try AudioIO.read(data.appendingPathComponent("b/clip0.wav")).samples
        let x = SignalPreparation.normalize(samples, SignalPreparation.audioLevel(of: samples))
        let set = try LabeledDataset.load(out)
        #expect(set.codedBytes == [Int](repeating: 1120, count: 6))
        // Item 3 is b/clip0 (970 frames, then zeros).
        let stored = Array(set.values[(3 * 2240)..<(4 * 2240)])
        #expect((0..<970).allSatisfy { stored[$0] == Int16(min(32767, max(-32767, (x.scalars[$0] * 65534).rounded()))) })
        #expect(stored[1000] == 0 && stored[1120 + 969] == Int16(min(32767, max(-32767, (x.scalars[970 + 969] * 65534).rounded()))))
    }
}
