import Foundation
import WallocMedia
import WallocTensor

/// Deterministic synthetic signals for benchmarks: music-like audio and photo-like images of any
/// size, generated piece by piece so that very long or very large inputs need little memory.
public enum SyntheticSignals {
    /// A few partials per channel with slowly varying loudness, plus a little noise; peaks stay
    /// below 0.8. Every sample is a function of its absolute frame index, so pieces generated
    /// separately concatenate to the same signal as one call.
    /// - Returns: `[channels, frames]` samples starting at frame `start`.
    public static func audio(channels: Int, frames: Int, start: Int = 0, sampleRate: Int = 44_100) -> Tensor {
        precondition(channels >= 1 && frames >= 0 && start >= 0 && sampleRate >= 1)
        let partials: [(frequency: Double, amplitude: Double)] = [(110, 0.30), (220.5, 0.15), (331.7, 0.10), (1_245.3, 0.04)]
        return Tensor(uninitializedShape: [channels, frames]) { out in
            let p = out.baseAddress!
            parallelChunks(frames, minChunk: 1 << 14) { range in
                for ch in 0..<channels {
                    // Each channel is detuned and phase-shifted a little, so stereo is not mono twice.
                    let detune = 1 + 0.003 * Double(ch), shift = 0.7 * Double(ch)
                    for i in range {
                        let t = Double(start + i) / Double(sampleRate)
                        let envelope = 0.75 + 0.25 * sin(2 * Double.pi * 0.23 * t + shift)
                        var v = 0.0
                        for (f, a) in partials { v += a * sin(2 * Double.pi * f * detune * t + shift) }
                        p[ch * frames + i] = Float(envelope * v + 0.02 * noise(UInt64(start + i), UInt64(ch)))
                    }
                }
            }
        }
    }

    /// Writes `frames` frames of `audio(...)` to a WAV/FLAC file, a piece at a time; the file
    /// appears atomically when complete. Returns the URL.
    @discardableResult
    public static func writeAudio(to url: URL, channels: Int, frames: Int, sampleRate: Int = 44_100, bitDepth: Int = 16,
                                  piece: Int = 1 << 18) throws -> URL {
        guard channels >= 1, frames >= 1, piece >= 1 else {
            throw WallocError("synthetic audio needs at least one channel and one frame, got \(channels) x \(frames)")
        }
        let writer = try AudioWriter(url: url, channels: channels, sampleRate: sampleRate, bitDepth: bitDepth)
        var done = 0
        while done < frames {
            let n = min(piece, frames - done)
            try writer.write(audio(channels: channels, frames: n, start: done, sampleRate: sampleRate))
            done += n
        }
        try writer.finish()
        return url
    }

    /// A photo-like image `[channels, height, width]` in [0, 1] (RGB for 3 channels): smooth
    /// gradients, a blob and stripes of varying frequency, and a little noise.
    public static func image(width: Int, height: Int, channels: Int = 3) -> Tensor {
        precondition(width >= 1 && height >= 1 && channels >= 1)
        let plane = width * height
        return Tensor(uninitializedShape: [channels, height, width]) { out in
            let p = out.baseAddress!
            parallelChunks(height, minChunk: 16) { rows in
                for y in rows {
                    let v = Double(y) / Double(height)
                    for x in 0..<width {
                        let u = Double(x) / Double(width)
                        let stripes = 0.12 * sin(40 * u * (1 + v) + 8 * v)
                        let blob = 0.25 * exp(-((u - 0.35) * (u - 0.35) + (v - 0.6) * (v - 0.6)) * 18)
                        let base = 0.35 + 0.3 * u * v + blob + stripes
                        for c in 0..<channels {
                            let tint = [0.05, 0.0, -0.07][c % 3] * (1 - v)
                            let n = 0.015 * noise(UInt64(y * width + x), UInt64(c))
                            p[c * plane + y * width + x] = Float(min(1, max(0, base + tint + n)))
                        }
                    }
                }
            }
        }
    }

    /// Uniform noise in [-1, 1) from a hash of (index, stream) (SplitMix64's finaliser).
    static func noise(_ index: UInt64, _ stream: UInt64) -> Double {
        var z = index &* 0x9E37_79B9_7F4A_7C15 &+ (stream &+ 1) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 52) - 1
    }
}
