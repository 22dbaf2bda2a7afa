import Foundation
import WallocModels
import WallocNN
import WallocTensor

/// Starts a codec from the linear solution: the principal components of its wavelet band
/// vectors.
///
/// The lightweight encoder becomes `z = α·Vᵀ(X − μ)` (V: the `latent_dim` leading eigenvectors of
/// the band covariance, μ: the band mean), the linear skip path (when the model has one) its
/// inverse `X̂ = V·ẑ/α + μ`, and the decoder network's last layer is zeroed, so the codec starts
/// exactly as the PCA codec and training only adds what the linear path misses. `α` sets the
/// quantisation step relative to the signal (ToUniform divides by `(2^(b−1) − 1)/1.85` before the
/// normal CDF): larger values mean finer latents, higher rates and higher fidelity.
public enum PCAInitialization {
    /// What the fit found.
    public struct Report: Sendable {
        /// Band vectors the covariance was estimated from.
        public var samples: Int
        /// All eigenvalues of the band covariance, descending.
        public var eigenvalues: [Float]
        /// Fraction of the band variance the kept components explain.
        public var explainedVariance: Double
    }

    /// Fits the components on `signals` (`[C, H, W]` images or `[C, L]` clips, values in
    /// [-0.5, 0.5]; each is trimmed to a multiple of 2^J) using up to `samplesPerSignal` randomly
    /// chosen band vectors of each, and writes them into `codec`.
    ///
    /// Variable-rate models (`rate` in the configuration) start as a weighted PCA codec instead:
    /// each band `c` is weighted by `w_c = (rms_c / median rms)^(−bandWeighting)` (0: no
    /// weighting; 0.5 shapes the quantisation noise like the square root of the band's level,
    /// which suits audio), the encoder is the orthonormal projection `z = Vᵀ(w ⊙ (X − μ))`
    /// (uniform steps on it are then optimal for the weighted error), `latent_scale` = `1/σ_k`
    /// (the components' standard deviations), the skip path (or a linear decoder) is the inverse
    /// `X̂ = μ + (V (σ ⊙ u)) / w` of the normalised latents `u`, and `band_scale` = `1/w`, so the
    /// decoder network also works in the weighted domain. `alpha` is not used.
    @discardableResult
    public static func apply(to codec: inout Codec, signals: [Tensor], scale alpha: Float,
                             samplesPerSignal: Int = 20_000, seed: UInt64 = 0, bandWeighting: Float = 0) throws -> Report {
        let config = codec.config
        guard alpha > 0, alpha.isFinite else { throw WallocError("the PCA scale must be positive, got \(alpha)") }
        switch codec.encoder {
        case .pointwise2D, .pointwise1D: break
        default: throw WallocError("PCA initialisation needs the lightweight (linear) encoder")
        }
        guard !signals.isEmpty else { throw WallocError("no signals to fit the PCA initialisation on") }
        let d = config.bandChannels, k = config.latentDim
        guard k <= d else { throw WallocError("latent_dim \(k) exceeds the \(d) wavelet bands") }

        // Band vectors, sampled: one [d, take] block per signal, then side by side as [d, n].
        var rng = SplitMix64(seed: seed)
        var blocks = [(values: [Float], width: Int)]()
        let f = config.downsampling
        for (i, s) in signals.enumerated() {
            let bands = try codec.analysis(try trim(s, multiple: f, rank: config.modality == .image ? 3 : 2, index: i))
            let positions = bands.count / d
            let take = min(samplesPerSignal, positions)
            let chosen = (0..<take).map { take == positions ? $0 : rng.below(positions) }
            var block = [Float](repeating: 0, count: d * take)
            bands.withUnsafeBufferPointer { b in
                for c in 0..<d { for (j, p) in chosen.enumerated() { block[c * take + j] = b[c * positions + p] } }
            }
            blocks.append((block, take))
        }
        let n = blocks.reduce(0) { $0 + $1.width }
        guard n >= 2 else { throw WallocError("too few band vectors (\(n)) to fit the PCA initialisation") }
        var x = [Float](repeating: 0, count: d * n)
        var col = 0
        for (block, w) in blocks {
            for c in 0..<d { for j in 0..<w { x[c * n + col + j] = block[c * w + j] } }
            col += w
        }

        // Mean, band weights and covariance (GEMM on the centred, weighted samples).
        var mean = [Float](repeating: 0, count: d), rms = [Float](repeating: 0, count: d)
        for c in 0..<d {
            var s = 0.0, s2 = 0.0
            for j in 0..<n { s += Double(x[c * n + j]) }
            mean[c] = Float(s / Double(n))
            for j in 0..<n { x[c * n + j] -= mean[c]; s2 += Double(x[c * n + j]) * Double(x[c * n + j]) }
            rms[c] = Float((s2 / Double(n)).squareRoot())
        }
        let variableRate = config.isVariableRate
        guard bandWeighting == 0 || variableRate else { throw WallocError("band weighting applies to variable-rate models only") }
        let medianRMS = max(rms.sorted()[d / 2], 1e-12)
        let weights = rms.map { bandWeighting == 0 ? Float(1) : Float(pow(Double(max($0, medianRMS * 1e-4) / medianRMS), Double(-bandWeighting))) }
        if bandWeighting != 0 {
            for c in 0..<d { for j in 0..<n { x[c * n + j] *= weights[c] } }
        }
        var cov = [Float](repeating: 0, count: d * d)
        x.withUnsafeBufferPointer { xb in
            cov.withUnsafeMutableBufferPointer { cb in
                BLAS.gemm(transB: true, m: d, n: d, k: n, alpha: 1 / Float(max(1, n - 1)), a: xb.baseAddress!, lda: n,
                          b: xb.baseAddress!, ldb: n, c: cb.baseAddress!, ldc: d)
            }
        }
        let (values, vectors) = try LinearAlgebra.symmetricEigen(cov, n: d)
        let total = values.reduce(0.0) { $0 + Double(max(0, $1)) }
        let kept = values.prefix(k).reduce(0.0) { $0 + Double(max(0, $1)) }

        // Encoder: W[k, c] = a V[c, k] w[c], b[k] = −a Σ_c V[c, k] w[c] μ[c], with a = α (fixed rate) or 1.
        let a: Float = variableRate ? 1 : alpha
        let sigma = (0..<k).map { Float(Double(max(values[$0], 1e-20)).squareRoot()) }
        var encoderWeight = [Float](repeating: 0, count: k * d), encoderBias = [Float](repeating: 0, count: k)
        for j in 0..<k {
            var dot: Float = 0
            for c in 0..<d {
                encoderWeight[j * d + c] = a * vectors[c * d + j] * weights[c]
                dot += vectors[c * d + j] * weights[c] * mean[c]
            }
            encoderBias[j] = -a * dot
        }
        // Skip: W[c, k] = V[c, k] / α (fixed rate), or V[c, k] σ[k] / w[c] on the normalised latents.
        var skipWeight = [Float](repeating: 0, count: d * k)
        for c in 0..<d {
            for j in 0..<k { skipWeight[c * k + j] = variableRate ? vectors[c * d + j] * sigma[j] / weights[c] : vectors[c * d + j] / alpha }
        }
        let decoderInputs = config.decoderInputChannels

        let lastDecoderLayer: String
        switch codec.decoder {
        case .vae: lastDecoderLayer = "decoder.1.conv_out."
        case .oobleck: lastDecoderLayer = "decoder.1.conv2."
        case .pointwise2D: lastDecoderLayer = ""
        }
        let linearDecoder: Bool
        if case .pointwise2D = codec.decoder { linearDecoder = true } else { linearDecoder = false }
        guard linearDecoder || codec.skip != nil else {
            throw WallocError("PCA initialisation of a \(config.type.rawValue) needs linear_skip: true (the linear path the components initialise)")
        }
        codec.visitParameters(prefix: "") { name, t in
            switch name {
            case "encoder.0.weight": t = Tensor(shape: t.shape, scalars: encoderWeight)
            case "encoder.0.bias": t = Tensor(shape: t.shape, scalars: encoderBias)
            case "skip.weight" where !linearDecoder: t = Tensor(shape: t.shape, scalars: skipWeight)
            case "skip.bias" where !linearDecoder: t = Tensor(shape: t.shape, scalars: mean)
            case "decoder.1.weight" where linearDecoder:
                // A conditioned linear decoder's quality input starts unused.
                var w = [Float](repeating: 0, count: d * decoderInputs)
                for c in 0..<d { for j in 0..<k { w[c * decoderInputs + j] = skipWeight[c * k + j] } }
                t = Tensor(shape: t.shape, scalars: w)
            case "latent_scale": t = Tensor(shape: t.shape, scalars: sigma.map { 1 / $0 })
            case "band_scale" where !linearDecoder: t = Tensor(shape: t.shape, scalars: weights.map { 1 / $0 })
            case "decoder.1.bias" where linearDecoder: t = Tensor(shape: t.shape, scalars: mean)
            default:
                // The decoder network's last layer starts at zero (its gain, for weight-normalised layers).
                if !lastDecoderLayer.isEmpty, name.hasPrefix(lastDecoderLayer),
                   ["weight", "bias", "weight_g"].contains(String(name.dropFirst(lastDecoderLayer.count))) {
                    t = Tensor(zeros: t.shape)
                }
            }
        }
        codec.parametersDidChange()
        return Report(samples: n, eigenvalues: values, explainedVariance: total > 0 ? kept / total : 0)
    }

    /// Crops the spatial axes to multiples of `multiple` (top-left corner kept).
    static func trim(_ s: Tensor, multiple f: Int, rank: Int, index: Int) throws -> Tensor {
        guard s.rank == rank else { throw WallocError("signal \(index) has shape \(s.shape); expected rank \(rank)") }
        let sizes = s.shape.dropFirst().map { $0 / f * f }
        guard sizes.allSatisfy({ $0 > 0 }) else { throw WallocError("signal \(index) (\(s.shape)) is smaller than 2^J = \(f)") }
        if Array(s.shape.dropFirst()) == sizes { return s }
        let c = s.shape[0]
        if rank == 2 {
            let l = s.shape[1], m = sizes[0]
            return Tensor(uninitializedShape: [c, m]) { dst in
                s.withUnsafeBufferPointer { src in for ch in 0..<c { (dst.baseAddress! + ch * m).update(from: src.baseAddress! + ch * l, count: m) } }
            }
        }
        let h = s.shape[1], w = s.shape[2], hh = sizes[0], ww = sizes[1]
        return Tensor(uninitializedShape: [c, hh, ww]) { dst in
            s.withUnsafeBufferPointer { src in
                for ch in 0..<c { for y in 0..<hh { (dst.baseAddress! + (ch * hh + y) * ww).update(from: src.baseAddress! + (ch * h + y) * w, count: ww) } }
            }
        }
    }
}
