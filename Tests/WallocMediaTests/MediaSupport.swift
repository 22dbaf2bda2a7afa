import Foundation
import Testing
import Walloc

/// A temporary folder removed when the value is released.
final class TemporaryFolder {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-media-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
    /// Names of the entries in the folder, sorted.
    func contents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
    }
}

/// A small deterministic generator (SplitMix64) so failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum MediaFixtures {
    /// Random samples already on the integer grid k / (2^bits - 1), so integer formats hold them exactly.
    static func quantizedImage(channels: Int, height: Int, width: Int, bits: Int, seed: UInt64 = 1) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        let maxValue = UInt64((1 << bits) - 1)
        let n = channels * height * width
        let scalars = (0..<n).map { _ in Float(rng.next() % (maxValue + 1)) / Float(maxValue) }
        return Tensor(shape: [channels, height, width], scalars: scalars)
    }

    /// Random floats of all magnitudes and signs (float TIFF stores them unchanged).
    static func floatImage(channels: Int, height: Int, width: Int, seed: UInt64 = 2) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        let scalars = (0..<(channels * height * width)).map { _ in
            Float.random(in: -1...1, using: &rng) * pow(10, Float.random(in: -6...6, using: &rng))
        }
        return Tensor(shape: [channels, height, width], scalars: scalars)
    }

    /// A smooth colour image: low-frequency sinusoids per channel, in [0.1, 0.9].
    static func smoothImage(channels: Int, height: Int, width: Int) -> Tensor {
        var scalars = [Float](repeating: 0, count: channels * height * width)
        for c in 0..<channels {
            for y in 0..<height {
                for x in 0..<width {
                    let u = Float(x) / Float(width), v = Float(y) / Float(height)
                    let value = 0.5 + 0.4 * sin(2 * .pi * (u * 1.5 + v * 0.7) + Float(c) * 1.3) * cos(2 * .pi * v * 0.8)
                    scalars[(c * height + y) * width + x] = value
                }
            }
        }
        return Tensor(shape: [channels, height, width], scalars: scalars)
    }

    /// Random audio on the signed integer grid k / 2^(bits-1), k in [-2^(bits-1), 2^(bits-1) - 1].
    static func quantizedAudio(channels: Int, frames: Int, bits: Int, seed: UInt64 = 3) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        let half = Int64(1) << (bits - 1)
        let scalars = (0..<(channels * frames)).map { _ in
            Float(Int64.random(in: -half...(half - 1), using: &rng)) / Float(half)
        }
        return Tensor(shape: [channels, frames], scalars: scalars)
    }

    /// A mixture of tones per channel, amplitude at most 0.8.
    static func tones(channels: Int, frames: Int, sampleRate: Int) -> Tensor {
        var scalars = [Float](repeating: 0, count: channels * frames)
        for c in 0..<channels {
            let f1 = 220 * Float(c + 1), f2 = 330 + 50 * Float(c)
            for t in 0..<frames {
                let time = Float(t) / Float(sampleRate)
                scalars[c * frames + t] = 0.5 * sin(2 * .pi * f1 * time) + 0.3 * sin(2 * .pi * f2 * time)
            }
        }
        return Tensor(shape: [channels, frames], scalars: scalars)
    }
}

/// Peak signal-to-noise ratio in dB for signals with peak 1.
func psnr(_ a: Tensor, _ b: Tensor) -> Double {
    var sum = 0.0
    for (x, y) in zip(a.scalars, b.scalars) { sum += Double(x - y) * Double(x - y) }
    let mse = sum / Double(a.count)
    return mse == 0 ? .infinity : 10 * log10(1 / mse)
}

/// Signal-to-noise ratio in dB of `estimate` against `reference`.
func snr(_ reference: Tensor, _ estimate: Tensor) -> Double {
    var signal = 0.0, noise = 0.0
    for (x, y) in zip(reference.scalars, estimate.scalars) {
        signal += Double(x) * Double(x)
        noise += Double(x - y) * Double(x - y)
    }
    return noise == 0 ? .infinity : 10 * log10(signal / noise)
}

/// Runs `body` and returns the WallocError it throws, recording an issue if it throws something
/// else or nothing.
@discardableResult
func expectWallocError(_ sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> WallocError? {
    do {
        try body()
        Issue.record("expected a WallocError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as WallocError {
        return error
    } catch {
        Issue.record("expected a WallocError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Short descriptions in failure messages (the default prints every scalar).
extension Tensor: CustomTestStringConvertible {
    public var testDescription: String {
        let head = scalars.prefix(6).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), first: [\(head)\(count > 6 ? ", ..." : "")], sum: \(scalars.reduce(0, +)))"
    }
}
