import Foundation
import Testing
import Walloc

enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func model(_ name: String) throws -> Codec {
        try Codec.load(from: root.appendingPathComponent("reference").appendingPathComponent(name))
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-learning-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Pseudo-random values in [0, 1).
func noise(_ shape: [Int], seed: UInt64) -> Tensor {
    var rng = SplitMix64(seed: seed)
    let n = Tensor.count(of: shape)
    return Tensor(shape: shape, scalars: (0..<n).map { _ in rng.uniform() })
}

/// A class-folder image dataset: `classes` folders of `perClass` PNGs each, sizes varying
/// around 40x56 (so `--size` is needed to stack them).
@discardableResult
func makeImageDataset(at root: URL, classes: [String] = ["cat", "dog"], perClass: Int = 4, seed: UInt64 = 1) throws -> [URL] {
    var files = [URL]()
    for (c, name) in classes.enumerated() {
        let folder = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for i in 0..<perClass {
            let h = 36 + 3 * i, w = 50 + 2 * i + c
            let url = folder.appendingPathComponent("img\(i).png")
            try ImageIO.write(noise([3, h, w], seed: seed &* 100 &+ UInt64(c * 10 + i)), to: url, format: .png)
            files.append(url)
        }
    }
    return files
}

/// A class-folder audio dataset of stereo WAV clips of varying lengths.
func makeAudioDataset(at root: URL, classes: [String] = ["a", "b"], perClass: Int = 3) throws {
    for (c, name) in classes.enumerated() {
        let folder = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for i in 0..<perClass {
            let n = 900 + 150 * i + 70 * c
            var x = noise([2, n], seed: UInt64(50 + c * 10 + i))
            for j in 0..<x.count { x.scalars[j] = x.scalars[j] - 0.5 }
            try AudioIO.write(x, sampleRate: 16000, to: folder.appendingPathComponent("clip\(i).wav"), bitDepth: 16)
        }
    }
}

/// Runs a conversion of `input` into `output`.
@discardableResult
func convert(_ input: URL, _ output: URL, codec: Codec, _ configure: (inout ConversionOptions) -> Void = { _ in }) throws -> ConversionSummary {
    var options = ConversionOptions()
    configure(&options)
    return try DatasetConverter(codec: codec, listing: try DatasetListing.read(input.path), options: options).run(output: output)
}

/// The files of a folder with their bytes.
func contents(_ folder: URL) throws -> [String: Data] {
    var out = [String: Data]()
    for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
        out[name] = try Data(contentsOf: folder.appendingPathComponent(name))
    }
    return out
}

/// Flips one byte of a file (at `offset` from the end).
func corrupt(_ url: URL, offsetFromEnd: Int = 5) throws {
    var d = try Data(contentsOf: url)
    d[d.count - offsetFromEnd] ^= 0x40
    try d.write(to: url)
}
