import Foundation
import WallocTensor

/// Full-reference audio quality metrics for `[C, L]` (or `[L]`) float32 samples.
public enum AudioMetrics {
    /// Signal-to-noise ratio in dB over all samples: `10 log10(Σ x² / Σ (x − y)²)`; infinite for
    /// identical signals.
    public static func snr(_ reference: Tensor, _ test: Tensor) throws -> Double {
        let (c, l) = try dimensions(reference, test)
        var signal = 0.0, noise = 0.0
        reference.withUnsafeBufferPointer { x in
            test.withUnsafeBufferPointer { y in
                for i in 0..<(c * l) {
                    let a = Double(x[i]), d = a - Double(y[i])
                    signal += a * a
                    noise += d * d
                }
            }
        }
        return noise == 0 ? .infinity : 10 * log10(signal / noise)
    }

    /// Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019): per channel, both
    /// signals made zero-mean, `target = (<y, x> / <x, x>) x`, `10 log10(|target|² / |y − target|²)`;
    /// the mean over channels. A silent reference channel is an error.
    public static func siSDR(_ reference: Tensor, _ test: Tensor) throws -> Double {
        let (c, l) = try dimensions(reference, test)
        var total = 0.0
        try reference.withUnsafeBufferPointer { xs in
            try test.withUnsafeBufferPointer { ys in
                for ch in 0..<c {
                    let x = xs.baseAddress! + ch * l, y = ys.baseAddress! + ch * l
                    var mx = 0.0, my = 0.0
                    for i in 0..<l { mx += Double(x[i]); my += Double(y[i]) }
                    mx /= Double(l)
                    my /= Double(l)
                    var xx = 0.0, xy = 0.0
                    for i in 0..<l {
                        let a = Double(x[i]) - mx, b = Double(y[i]) - my
                        xx += a * a
                        xy += a * b
                    }
                    guard xx > 0 else { throw WallocError("SI-SDR is undefined: reference channel \(ch) is constant") }
                    let alpha = xy / xx
                    var target = 0.0, noise = 0.0
                    for i in 0..<l {
                        let t = alpha * (Double(x[i]) - mx), e = (Double(y[i]) - my) - t
                        target += t * t
                        noise += e * e
                    }
                    total += noise == 0 ? .infinity : 10 * log10(target / noise)
                }
            }
        }
        return total / Double(c)
    }

    private static func dimensions(_ a: Tensor, _ b: Tensor) throws -> (Int, Int) {
        guard a.shape == b.shape else {
            throw WallocError("signals to compare have different shapes: \(a.shape) and \(b.shape)")
        }
        switch a.rank {
        case 1 where a.shape[0] > 0: return (1, a.shape[0])
        case 2 where a.shape[0] > 0 && a.shape[1] > 0: return (a.shape[0], a.shape[1])
        default: throw WallocError("audio must have shape [C, L] or [L] with L > 0, got \(a.shape)")
        }
    }
}

/// Rate measures of a compressed file.
public enum RateMetrics {
    /// Bits per pixel: `8 * bytes / (width * height)`.
    public static func bitsPerPixel(bytes: Int, width: Int, height: Int) -> Double {
        Double(8 * bytes) / Double(width * height)
    }

    /// Kilobits per second: `8 * bytes / seconds / 1000`.
    public static func kilobitsPerSecond(bytes: Int, frames: Int, sampleRate: Int) -> Double {
        Double(8 * bytes) / (Double(frames) / Double(sampleRate)) / 1000
    }

    /// The size of the uncompressed samples (`samples * bitDepth / 8` bytes) over the compressed
    /// size.
    public static func compressionRatio(bytes: Int, samples: Int, bitDepth: Int) -> Double {
        Double(samples) * Double(bitDepth) / 8 / Double(max(1, bytes))
    }
}
