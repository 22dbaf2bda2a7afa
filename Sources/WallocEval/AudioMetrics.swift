import Foundation
import WallocNN
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

    /// Frequency bands (Hz) whose energy change `spectralComparison` reports.
    public static let energyBands: [(name: String, low: Double, high: Double)] = [
        ("energy_db_0k_2k", 0, 2000), ("energy_db_2k_4k", 2000, 4000), ("energy_db_4k_8k", 4000, 8000),
        ("energy_db_8k_16k", 8000, 16000), ("energy_db_16k_up", 16000, .infinity),
    ]

    /// The log-mel distance (docs/evaluation.md: 80 HTK mel bands from 0 to fs/2, n_fft 2048,
    /// hop 512, Hann window, power spectrum, `log10(mel + 1e-5)`, the mean absolute difference
    /// over channels, bands and frames) and, per band of `energyBands`, the decoded signal's energy
    /// relative to the reference's in dB (nil where the reference has none).
    public static func spectralComparison(_ reference: Tensor, _ test: Tensor, sampleRate: Int) throws
        -> (logMelDistance: Double, bandEnergies: [String: Double]) {
        let (c, l) = try dimensions(reference, test)
        let spectrogram = LogMelSpectrogram(sampleRate: sampleRate)
        guard l > spectrogram.nFFT / 2 else {
            throw WallocError("the log-mel distance needs more than \(spectrogram.nFFT / 2) samples per channel, got \(l)")
        }
        let a = spectrogram.forward(reference.reshaped([c, l])), b = spectrogram.forward(test.reshaped([c, l]))
        var total = 0.0
        for i in 0..<a.logMel.count { total += Double(abs(a.logMel[i] - b.logMel[i])) }
        var energies = [String: Double]()
        for band in energyBands {
            var ea = 0.0, eb = 0.0
            for k in 0..<spectrogram.bins {
                let f = spectrogram.frequency(ofBin: k)
                guard f >= band.low && f < band.high else { continue }
                for ch in 0..<c { ea += Double(a.powerSums[ch * spectrogram.bins + k]); eb += Double(b.powerSums[ch * spectrogram.bins + k]) }
            }
            if ea > 0 { energies[band.name] = 10 * log10(max(eb, 1e-30) / ea) }
        }
        return (total / Double(a.logMel.count), energies)
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
