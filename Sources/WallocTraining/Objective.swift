import Foundation
import WallocModels
import WallocNN
import WallocTensor

/// A log-mel term of the training loss (audio): the mean absolute difference between the
/// log-mel spectrograms (`LogMelSpectrogram`) of the decoded and the original segments, at one or
/// more FFT sizes (hop a quarter of each), weighted by `weight`.
///
/// Training segments are level-normalised (peak 0.5, about half a typical file's level), so the
/// default floor is the evaluation's `1e-5` divided by 4: the loss then sees quiet bands as the
/// metric does on files at their own level.
public struct SpectralLoss: Codable, Sendable, Equatable {
    public var weight: Float
    public var fftSizes: [Int]
    public var floor: Float
    public var sampleRate: Int
    public var mels: Int

    enum CodingKeys: String, CodingKey { case weight, fftSizes = "fft_sizes", floor, sampleRate = "sample_rate", mels }

    public init(weight: Float, fftSizes: [Int] = [2048], floor: Float = 2.5e-6, sampleRate: Int = 44_100, mels: Int = 80) {
        self.weight = weight; self.fftSizes = fftSizes; self.floor = floor; self.sampleRate = sampleRate; self.mels = mels
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        weight = try c.decode(Float.self, forKey: .weight)
        fftSizes = try c.decodeIfPresent([Int].self, forKey: .fftSizes) ?? [2048]
        floor = try c.decodeIfPresent(Float.self, forKey: .floor) ?? 2.5e-6
        sampleRate = try c.decodeIfPresent(Int.self, forKey: .sampleRate) ?? 44_100
        mels = try c.decodeIfPresent(Int.self, forKey: .mels) ?? 80
    }

    public func validate() throws {
        guard weight >= 0, weight.isFinite else { throw WallocError("spectral.weight must be a non-negative number") }
        guard !fftSizes.isEmpty, fftSizes.allSatisfy({ $0 >= 16 && $0 % 4 == 0 && $0 <= 1 << 16 }) else {
            throw WallocError("spectral.fft_sizes must be multiples of 4 from 16 to 65536, got \(fftSizes)")
        }
        guard floor > 0, floor.isFinite else { throw WallocError("spectral.floor must be positive") }
        guard (1000...768_000).contains(sampleRate) else { throw WallocError("spectral.sample_rate \(sampleRate) is out of range") }
        guard (1...512).contains(mels) else { throw WallocError("spectral.mels must be from 1 to 512") }
    }

    /// The spectrograms this loss compares (built once per trainer).
    func spectrograms() -> [LogMelSpectrogram] {
        fftSizes.map { LogMelSpectrogram(sampleRate: sampleRate, nFFT: $0, hop: $0 / 4, mels: mels, floor: floor) }
    }

    /// The mean over FFT sizes of the mean absolute log-mel difference of `xHat` against `x`
    /// (`[N, C, L]`), unweighted, and the gradient of `weight` times it at `xHat`.
    func lossAndGradient(_ xHat: Tensor, _ x: Tensor, spectrograms: [LogMelSpectrogram]) -> (Float, Tensor) {
        var total: Double = 0
        var gradient = Tensor(zeros: xHat.shape)
        for s in spectrograms where x.shape.last! > s.nFFT / 2 {
            let a = s.forward(xHat, tape: true), b = s.forward(x)
            let n = a.logMel.count, scale = weight / Float(n * spectrograms.count)
            var d = [Float](repeating: 0, count: n)
            var sum: Double = 0
            for i in 0..<n {
                let diff = a.logMel[i] - b.logMel[i]
                sum += Double(abs(diff))
                d[i] = diff > 0 ? scale : (diff < 0 ? -scale : 0)
            }
            total += sum / Double(n)
            let g = s.backward(a.tape!, d)
            gradient.withUnsafeMutableBufferPointer { gb in
                g.withUnsafeBufferPointer { VectorMath.add($0.baseAddress!, into: gb.baseAddress!, count: gb.count) }
            }
        }
        return (Float(total / Double(spectrograms.count)), gradient)
    }
}

/// What a training step minimises, beyond the reference's `MSE(x, x̂) + ϕ·MSE(X, X̂)`.
public struct TrainingObjective: Sendable {
    /// How the signal-domain error enters the loss.
    public enum Distortion: String, Codable, Sendable {
        /// The batch's mean squared error (the reference's loss).
        case mse
        /// Audio: each segment's squared error divided by the segment's mean square, so quiet
        /// passages weigh as much as loud ones (the mean of 1/SNR).
        case normalizedMSE = "normalized_mse"
        /// The mean over samples of `ln(MSE_n + 1e-4·P_n + 1e-10)` (`P_n` the sample's mean
        /// square): every sample's error counts relative to its own size, so a variable-rate
        /// model's coarse settings, whose errors are many times larger, do not drown the fine
        /// ones (the mean PSNR, or SNR, is what it maximises, up to 40 dB above the signal).
        case logMSE = "log_mse"
    }

    /// Weight ϕ of the wavelet-domain MSE.
    public var tfWeight: Float = 0
    public var distortion: Distortion = .mse
    /// Audio: a log-mel term.
    public var spectral: SpectralLoss?
    let spectrograms: [LogMelSpectrogram]

    public init(tfWeight: Float = 0, distortion: Distortion = .mse, spectral: SpectralLoss? = nil) {
        self.tfWeight = tfWeight; self.distortion = distortion; self.spectral = spectral
        spectrograms = spectral?.spectrograms() ?? []
    }

    /// The distortion of a batch (`[N, ...]`) and its gradient at `xHat`.
    public func distortionAndGradient(_ xHat: Tensor, _ x: Tensor) -> (Float, Tensor) {
        switch distortion {
        case .mse: return Codec.mseAndGradient(xHat, x)
        case .normalizedMSE: return Codec.normalizedMSEAndGradient(xHat, x)
        case .logMSE: return Codec.logMSEAndGradient(xHat, x)
        }
    }

    /// The signal-domain loss terms of a batch and the gradient of their sum at `xHat`: the
    /// distortion and the weighted spectral term.
    func signalLoss(_ xHat: Tensor, _ x: Tensor) -> (mse: Float, spectral: Float, gradient: Tensor) {
        var (mse, g) = distortionAndGradient(xHat, x)
        var spectralLoss: Float = 0
        if let spectral, spectral.weight > 0 {
            let (l, sg) = spectral.lossAndGradient(xHat, x, spectrograms: spectrograms)
            spectralLoss = l
            g.withUnsafeMutableBufferPointer { gb in
                sg.withUnsafeBufferPointer { VectorMath.add($0.baseAddress!, into: gb.baseAddress!, count: gb.count) }
            }
        }
        if mse.isNaN { mse = .infinity }
        return (mse, spectralLoss, g)
    }
}

extension Codec {
    /// The mean over samples `n` of `ln(mean((a − b)²) + 1e-4·mean(b²) + 1e-10)` (`[N, ...]`) and
    /// its gradient at `a`.
    static func logMSEAndGradient(_ a: Tensor, _ b: Tensor) -> (Float, Tensor) {
        precondition(a.shape == b.shape, "MSE shapes differ: \(a.shape) vs \(b.shape)")
        let n = a.shape[0], per = a.count / max(1, n)
        var g = Tensor(uninitialized: a.shape)
        var total: Double = 0
        for s in 0..<n {
            var power: Double = 0, error: Double = 0
            for i in (s * per)..<((s + 1) * per) {
                let v = Double(b.scalars[i]), d = Double(a.scalars[i]) - v
                power += v * v
                error += d * d
            }
            let inner = error / Double(per) + 1e-4 * power / Double(per) + 1e-10
            total += Foundation.log(inner)
            let scale = Float(2 / (Double(per) * inner * Double(n)))
            for i in (s * per)..<((s + 1) * per) { g.scalars[i] = scale * (a.scalars[i] - b.scalars[i]) }
        }
        return (Float(total / Double(max(1, n))), g)
    }

    /// The mean over samples `n` of `mean((a − b)²) / (mean(b²) + 1e-8)` (`[N, ...]`) and its
    /// gradient at `a`.
    static func normalizedMSEAndGradient(_ a: Tensor, _ b: Tensor) -> (Float, Tensor) {
        precondition(a.shape == b.shape, "MSE shapes differ: \(a.shape) vs \(b.shape)")
        let n = a.shape[0], per = a.count / max(1, n)
        var g = Tensor(uninitialized: a.shape)
        var total: Double = 0
        for s in 0..<n {
            var power: Double = 0, error: Double = 0
            for i in (s * per)..<((s + 1) * per) {
                let v = Double(b.scalars[i]), d = Double(a.scalars[i]) - v
                power += v * v
                error += d * d
            }
            let denominator = power / Double(per) + 1e-8
            total += error / Double(per) / denominator
            let scale = Float(2 / (Double(per) * denominator * Double(n)))
            for i in (s * per)..<((s + 1) * per) { g.scalars[i] = scale * (a.scalars[i] - b.scalars[i]) }
        }
        return (Float(total / Double(max(1, n))), g)
    }
}
