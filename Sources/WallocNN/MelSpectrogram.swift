import Foundation
import WallocTensor

/// Log-mel spectrograms, the audio quality measure Walloc evaluates and trains with
/// (docs/evaluation.md):
///
/// - frames of `nFFT` samples every `hop` samples, the signal reflect-padded by `nFFT/2` at both
///   ends (`torch.stft(center=True)`): `1 + L/hop` frames;
/// - a Hann window (periodic), the power spectrum `|X_k|²` of bins `0...nFFT/2`;
/// - `mels` triangular filters on the HTK mel scale `2595 log10(1 + f/700)` from 0 to `fs/2`,
///   peak 1, no area normalisation;
/// - `log10(mel power + floor)`.
///
/// The DFT is a matrix product with a windowed cosine/sine basis (OpenBLAS), so the same code runs
/// forward for the metric and backward for training.
public struct LogMelSpectrogram: Sendable {
    public let sampleRate: Int, nFFT: Int, hop: Int, mels: Int
    public let floor: Float
    /// `[nFFT, 2·bins]`: columns `2k` and `2k+1` are `w[n]·cos(2πnk/N)` and `w[n]·sin(2πnk/N)`.
    let basis: [Float]
    /// `[mels, bins]`.
    let filters: [Float]
    public var bins: Int { nFFT / 2 + 1 }

    public init(sampleRate: Int, nFFT: Int = 2048, hop: Int = 512, mels: Int = 80, floor: Float = 1e-5) {
        precondition(nFFT >= 4 && nFFT % 2 == 0 && hop >= 1 && mels >= 1 && sampleRate > 0)
        self.sampleRate = sampleRate; self.nFFT = nFFT; self.hop = hop; self.mels = mels; self.floor = floor
        let bins = nFFT / 2 + 1
        var basis = [Float](repeating: 0, count: nFFT * 2 * bins)
        for n in 0..<nFFT {
            let w = 0.5 - 0.5 * cos(2 * Double.pi * Double(n) / Double(nFFT))
            for k in 0..<bins {
                // (n·k) mod N keeps the angle small and exact.
                let angle = 2 * Double.pi * Double((n * k) % nFFT) / Double(nFFT)
                basis[n * 2 * bins + 2 * k] = Float(w * cos(angle))
                basis[n * 2 * bins + 2 * k + 1] = Float(w * sin(angle))
            }
        }
        self.basis = basis
        func mel(_ f: Double) -> Double { 2595 * log10(1 + f / 700) }
        func hz(_ m: Double) -> Double { 700 * (pow(10, m / 2595) - 1) }
        let top = mel(Double(sampleRate) / 2)
        let edges = (0..<(mels + 2)).map { hz(top * Double($0) / Double(mels + 1)) }
        var filters = [Float](repeating: 0, count: mels * bins)
        for m in 0..<mels {
            let lo = edges[m], centre = edges[m + 1], hi = edges[m + 2]
            for k in 0..<bins {
                let f = Double(k) * Double(sampleRate) / Double(nFFT)
                let v = max(0, min((f - lo) / (centre - lo), (hi - f) / (hi - centre)))
                filters[m * bins + k] = Float(v)
            }
        }
        self.filters = filters
    }

    /// Frames of a signal of `length` samples.
    public func frameCount(length: Int) -> Int { 1 + length / hop }

    /// What the backward pass needs.
    public struct Tape: Sendable {
        /// `[rows, frames, 2·bins]` spectra and `[rows, frames, mels]` mel powers.
        public var spectra: [Float], melPower: [Float]
        public var rows: Int, length: Int, frames: Int
    }

    /// The result of `forward`.
    public struct Output: Sendable {
        /// `[rows, frames, mels]`, row-major.
        public var logMel: [Float]
        /// `[rows, bins]`: each row's power spectrum summed over its frames.
        public var powerSums: [Float]
        /// With `tape: true`, what `backward` needs.
        public var tape: Tape?
        public var rows: Int, frames: Int
    }

    /// Log-mel spectrogram of each row of `x` (`[..., L]`, any leading shape, `L > nFFT/2`).
    /// Frames are transformed in blocks, so memory stays small without the tape.
    public func forward(_ x: Tensor, tape keep: Bool = false) -> Output {
        let length = x.shape.last!, rows = x.count / max(1, length)
        precondition(length > nFFT / 2, "a log-mel spectrogram needs more than \(nFFT / 2) samples, got \(length)")
        let frames = frameCount(length: length), bins = self.bins, width = 2 * bins
        var spectra = [Float](repeating: 0, count: keep ? rows * frames * width : 0)
        var melPower = [Float](repeating: 0, count: keep ? rows * frames * mels : 0)
        var logMel = [Float](repeating: 0, count: rows * frames * mels)
        var powerSums = [Float](repeating: 0, count: rows * bins)
        let pad = nFFT / 2, nFFT = self.nFFT, hop = self.hop, mels = self.mels, floor = self.floor
        let block = 128
        x.withUnsafeBufferPointer { xb in
            spectra.withUnsafeMutableBufferPointer { sb in
                melPower.withUnsafeMutableBufferPointer { mb in
                    logMel.withUnsafeMutableBufferPointer { lb in
                        powerSums.withUnsafeMutableBufferPointer { psb in
                            basis.withUnsafeBufferPointer { basis in
                                filters.withUnsafeBufferPointer { fb in
                                    let blocks = (frames + block - 1) / block
                                    // Rows in parallel, each row's blocks in order (its power sums stay private).
                                    parallelFor(rows) { r in
                                        let signal = xb.baseAddress! + r * length
                                        var frameMatrix = [Float](repeating: 0, count: block * nFFT)
                                        var spectrum = [Float](repeating: 0, count: block * width)
                                        var power = [Float](repeating: 0, count: block * bins)
                                        var mel = [Float](repeating: 0, count: block * mels)
                                        for b in 0..<blocks {
                                            let f0 = b * block, count = min(block, frames - f0)
                                            for f in 0..<count {
                                                for n in 0..<nFFT {
                                                    frameMatrix[f * nFFT + n] = signal[LogMelSpectrogram.reflect((f0 + f) * hop + n - pad, length)]
                                                }
                                            }
                                            frameMatrix.withUnsafeBufferPointer { fm in
                                                spectrum.withUnsafeMutableBufferPointer { sp in
                                                    BLAS.gemm(m: count, n: width, k: nFFT, a: fm.baseAddress!, lda: nFFT,
                                                              b: basis.baseAddress!, ldb: width, c: sp.baseAddress!, ldc: width)
                                                }
                                            }
                                            for i in 0..<(count * bins) {
                                                power[i] = spectrum[2 * i] * spectrum[2 * i] + spectrum[2 * i + 1] * spectrum[2 * i + 1]
                                                psb[r * bins + i % bins] += power[i]
                                            }
                                            power.withUnsafeBufferPointer { pb in
                                                mel.withUnsafeMutableBufferPointer { mp in
                                                    BLAS.gemm(transB: true, m: count, n: mels, k: bins, a: pb.baseAddress!, lda: bins,
                                                              b: fb.baseAddress!, ldb: bins, c: mp.baseAddress!, ldc: mels)
                                                }
                                            }
                                            let at = (r * frames + f0) * mels
                                            for i in 0..<(count * mels) { lb[at + i] = log10(max(mel[i], 0) + floor) }
                                            if keep {
                                                (sb.baseAddress! + (r * frames + f0) * width).update(from: spectrum, count: count * width)
                                                (mb.baseAddress! + at).update(from: mel, count: count * mels)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let tape = keep ? Tape(spectra: spectra, melPower: melPower, rows: rows, length: length, frames: frames) : nil
        return Output(logMel: logMel, powerSums: powerSums, tape: tape, rows: rows, frames: frames)
    }

    /// The centre frequency in Hz of FFT bin `k`.
    public func frequency(ofBin k: Int) -> Double { Double(k) * Double(sampleRate) / Double(nFFT) }

    /// The gradient at the signal (`[rows·L]`, flat) of a loss whose gradient at the log-mel
    /// spectrogram is `gradLogMel` (`[rows, frames, mels]`).
    public func backward(_ tape: Tape, _ gradLogMel: [Float]) -> [Float] {
        let rows = tape.rows, length = tape.length, frames = tape.frames, bins = self.bins, width = 2 * bins
        let pad = nFFT / 2, nFFT = self.nFFT, hop = self.hop, mels = self.mels, floor = self.floor
        var grad = [Float](repeating: 0, count: rows * length)
        let ln10 = Float(M_LN10)
        grad.withUnsafeMutableBufferPointer { gb in
            tape.spectra.withUnsafeBufferPointer { sb in
                tape.melPower.withUnsafeBufferPointer { mb in
                    gradLogMel.withUnsafeBufferPointer { lb in
                        basis.withUnsafeBufferPointer { basis in
                            filters.withUnsafeBufferPointer { fb in
                                parallelFor(rows) { r in
                                    // d log10(m + floor) / dm, then through the filters to the power spectrum.
                                    var dMel = [Float](repeating: 0, count: frames * mels)
                                    for i in 0..<(frames * mels) {
                                        let m = mb[r * frames * mels + i]
                                        dMel[i] = m > 0 ? lb[r * frames * mels + i] / (ln10 * (m + floor)) : 0
                                    }
                                    var dPower = [Float](repeating: 0, count: frames * bins)
                                    dMel.withUnsafeBufferPointer { dm in
                                        dPower.withUnsafeMutableBufferPointer { dp in
                                            BLAS.gemm(m: frames, n: bins, k: mels, a: dm.baseAddress!, lda: mels,
                                                      b: fb.baseAddress!, ldb: bins, c: dp.baseAddress!, ldc: bins)
                                        }
                                    }
                                    // |X|² = re² + im²: the spectrum's gradient is 2·(re, im)·dPower.
                                    let spectrum = sb.baseAddress! + r * frames * width
                                    var dSpectrum = [Float](repeating: 0, count: frames * width)
                                    for i in 0..<(frames * bins) {
                                        dSpectrum[2 * i] = 2 * spectrum[2 * i] * dPower[i]
                                        dSpectrum[2 * i + 1] = 2 * spectrum[2 * i + 1] * dPower[i]
                                    }
                                    var dFrames = [Float](repeating: 0, count: frames * nFFT)
                                    dSpectrum.withUnsafeBufferPointer { ds in
                                        dFrames.withUnsafeMutableBufferPointer { df in
                                            BLAS.gemm(transB: true, m: frames, n: nFFT, k: width, a: ds.baseAddress!, lda: width,
                                                      b: basis.baseAddress!, ldb: width, c: df.baseAddress!, ldc: nFFT)
                                        }
                                    }
                                    // Overlap-add back through the framing and the reflect padding.
                                    let out = gb.baseAddress! + r * length
                                    for f in 0..<frames {
                                        for n in 0..<nFFT { out[LogMelSpectrogram.reflect(f * hop + n - pad, length)] += dFrames[f * nFFT + n] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return grad
    }

    /// The index a reflect-padded signal reads at `i` (no edge repeat, as `torch.nn.functional.pad`).
    @inline(__always)
    static func reflect(_ i: Int, _ n: Int) -> Int {
        if n == 1 { return 0 }
        var j = i
        let period = 2 * (n - 1)
        j %= period
        if j < 0 { j += period }
        return j < n ? j : period - j
    }
}
