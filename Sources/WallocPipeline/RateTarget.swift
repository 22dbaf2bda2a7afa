import Foundation
import WallocTensor
import WallocCoding
import WallocModels

/// A size target for a variable-rate model: bits per pixel (images) or kilobits per second
/// (audio), of the whole `.wlc` file.
public enum RateTarget: Sendable, Equatable {
    case bitsPerPixel(Double)
    case kilobitsPerSecond(Double)

    /// The file's rate in the target's unit.
    public func measure(_ file: WLCFile) throws -> Double {
        let h = file.header, bits = Double(file.encode().count * 8), s = h.originalShape
        switch self {
        case .bitsPerPixel:
            guard h.modality == .image else { throw WallocError("a bits-per-pixel target needs an image") }
            return bits / Double(s[1] * s[2])
        case .kilobitsPerSecond:
            guard h.modality == .audio, h.sampleRate > 0 else { throw WallocError("a kbps target needs audio with a sample rate") }
            return bits / (Double(s[1]) / Double(h.sampleRate)) / 1000
        }
    }

    var value: Double {
        switch self { case .bitsPerPixel(let v), .kilobitsPerSecond(let v): return v }
    }

    var description: String {
        switch self {
        case .bitsPerPixel(let v): return String(format: "%.4g bpp", v)
        case .kilobitsPerSecond(let v): return String(format: "%.4g kbps", v)
        }
    }
}

extension Compressor {
    /// What a rate search found.
    public struct TargetResult: Sendable {
        public var file: WLCFile
        /// The quality setting used.
        public var quality: Int
        /// The file's rate in the target's unit.
        public var rate: Double
    }

    /// The most encodes `compress(toTarget:)` makes: settings 1 and 100, then a binary search of 1...100.
    public static let maximumTargetTrials = 9

    /// Encodes at the highest quality setting whose file is no larger than `target` (a binary
    /// search over 1...100; `encode` compresses the signal with the compressor it is given).
    /// Fails, saying what the smallest setting gives, when even quality 1 is too large; when even
    /// quality 100 is below the target, that file is returned.
    public func compress(toTarget target: RateTarget, _ encode: (Compressor) throws -> WLCFile) throws -> TargetResult {
        guard codec.config.isVariableRate else {
            throw WallocError("model '\(name)' has one fixed rate; a size target needs a variable-rate model")
        }
        guard target.value > 0, target.value.isFinite else { throw WallocError("the size target must be positive, got \(target.value)") }
        var cache = [Int: (WLCFile, Double)]()
        func trial(_ q: Int) throws -> (WLCFile, Double) {
            if let hit = cache[q] { return hit }
            let file = try encode(try withQuality(q))
            let r = (file, try target.measure(file))
            cache[q] = r
            return r
        }
        let lowest = try trial(Quality.range.lowerBound)
        guard lowest.1 <= target.value else {
            throw WallocError(String(format: "the target %@ cannot be met: the smallest setting (quality 1) gives %.4g", target.description, lowest.1))
        }
        var lo = Quality.range.lowerBound, hi = Quality.range.upperBound  // lo meets the target
        if try trial(hi).1 <= target.value { lo = hi }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if try trial(mid).1 <= target.value { lo = mid } else { hi = mid }
        }
        let best = try trial(lo)
        return TargetResult(file: best.0, quality: lo, rate: best.1)
    }
}
