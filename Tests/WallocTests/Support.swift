import Foundation
import Testing
import Walloc

/// Locations of test fixtures inside the repository (no dependency on anything outside it).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func reference(_ path: String) -> URL {
        root.appendingPathComponent("reference").appendingPathComponent(path)
    }

    static func npy(_ path: String) throws -> Tensor { try NPY.read(reference(path)) }

    /// A fresh temporary directory, removed by the caller.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Largest absolute difference divided by the reference's largest magnitude.
func relativeError(_ a: Tensor, _ reference: Tensor) -> Float {
    a.maxAbsDifference(reference) / max(reference.maxMagnitude, 1e-30)
}

/// Deterministic pseudo-random tensor with values in [-0.5, 0.5).
func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    let n = Tensor.count(of: shape)
    var v = [Float](repeating: 0, count: n)
    for i in 0..<n {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        v[i] = Float(state >> 40) / Float(1 << 24) - 0.5
    }
    return Tensor(shape: shape, scalars: v)
}
