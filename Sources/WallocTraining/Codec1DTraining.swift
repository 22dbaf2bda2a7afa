import Foundation
import WallocModels
import WallocNN
import WallocTensor
import WallocWavelets

extension Codec {
    /// Training-mode forward and backward pass of a `Codec1D` on a batch `x` of `[N, C, L]`
    /// (called through `lossAndGradients(batch:quantization:objective:)`): wavelet packet analysis,
    /// the encoder (kernel-1 convolution with padding 1, or the Oobleck encoder), the training
    /// bottleneck (noise or per-sample qualities, latents `[N, latent_dim, L/2^J + 2]`), the Oobleck
    /// decoder, synthesis and the optional post filter. The loss is the objective's (normalised)
    /// `MSE(x, x̂) + tfWeight · MSE(X, X̂) + λ · log-mel distance` with `x̂` after the post filter
    /// and before the clamp.
    func lossAndGradients1D(batch x: Tensor, quantization: TrainingQuantization, objective: TrainingObjective) throws -> (TrainingLosses, Gradients) {
        let tfWeight = objective.tfWeight
        guard x.rank == 3 else { throw WallocError("a Codec1D training batch must be [N, C, L], got \(x.shape)") }
        try checkSignal(x)
        let bands = try analysis(x)
        enum EncoderTape { case pointwise(Conv1dTape), oobleck(OobleckTape) }
        let encoded: Tensor
        let encoderTape: EncoderTape
        switch encoder {
        case .pointwise1D(let m): let (y, t) = m.forward(training: bands); encoded = y; encoderTape = .pointwise(t)
        case .oobleck(let m): let (y, t) = m.forward(training: bands); encoded = y; encoderTape = .oobleck(t)
        default: throw WallocError("Codec1D training does not support this encoder")
        }
        guard case .oobleck(let dec) = decoder else { throw WallocError("Codec1D training needs the Oobleck decoder") }
        let side = envelope.map { $0.normalized($0.values(bands)) }
        let (normal, input, bottleneck) = try trainingBottleneck(encoded, quantization, side: side)
        var (decoded, decoderTape) = dec.forward(training: input)
        decoded = scaledDecoderOutput(decoded, quantization)
        // The linear skip path sees the latents without their first and last step.
        var skipTape: Conv1dTape?
        var skipLayer: Conv1d?
        if case .pointwise1D(let m)? = skip {
            let (s, t) = m.forward(training: Codec.dropEnds(normal))
            decoded = Elementwise.sum(decoded, s)
            skipTape = t; skipLayer = m
        }
        let synthesized = try synthesis(decoded)
        var xHat = synthesized
        var postTape: Conv1dTape?
        if let postFilter { (xHat, postTape) = postFilter.forward(training: synthesized) }

        // Losses and their gradients.
        let (mse, spectral, dxHat) = objective.signalLoss(xHat, x)
        let (tf, dDecodedTF) = Codec.mseAndGradient(decoded, bands)
        let psnr = Codec.clampedPSNR(xHat, x)
        var gradients = Gradients()
        var dSynth = dxHat
        if let postFilter, let postTape {
            dSynth = postFilter.backward(postTape, dxHat, prefix: "post", into: &gradients)
        }
        var dDecoded = WaveletAdjoint.synthesis1DFast(dSynth, levels: config.J)
        if tfWeight != 0 {
            dDecoded.withUnsafeMutableBufferPointer { db in
                dDecodedTF.withUnsafeBufferPointer { tb in
                    VectorMath.axpy(tfWeight, tb.baseAddress!, into: db.baseAddress!, count: db.count)
                }
            }
        }
        // Decoder and skip path, the bottleneck, the encoder.
        let dInput = dec.backward(decoderTape, scaledDecoderOutput(dDecoded, quantization), prefix: "decoder.1", into: &gradients)
        var dSkip: Tensor?
        if let skipLayer, let skipTape {
            let dInner = skipLayer.backward(skipTape, dDecoded, prefix: "skip", into: &gradients)
            let n = normal.shape[0], c = normal.shape[1], l = normal.shape[2]
            var padded = Tensor(zeros: normal.shape)
            padded.withUnsafeMutableBufferPointer { db in
                dInner.withUnsafeBufferPointer { ib in
                    for r in 0..<(n * c) { (db.baseAddress! + r * l + 1).update(from: ib.baseAddress! + r * (l - 2), count: l - 2) }
                }
            }
            dSkip = padded
        }
        let dEncoded = trainingBottleneckBackward(bottleneck, dNormal: dSkip, dDecoderInput: dInput)
        switch (encoder, encoderTape) {
        case (.pointwise1D(let m), .pointwise(let t)):
            _ = m.backward(t, dEncoded, prefix: "encoder.0", into: &gradients, inputGradient: false)
        case (.oobleck(let m), .oobleck(let t)):
            _ = m.backward(t, dEncoded, prefix: "encoder.0", into: &gradients, inputGradient: false)
        default: throw WallocError("internal error: encoder tape mismatch")
        }
        let weight = objective.spectral?.weight ?? 0
        return (TrainingLosses(loss: mse + tfWeight * tf + weight * spectral, mse: mse, tfLoss: tf, psnr: psnr, spectral: spectral), gradients)
    }

    /// Evaluation-mode losses (rounded latents, post filter applied) of a `Codec1D` on
    /// `[N, C, L]` or `[C, L]`.
    func evaluationLosses1D(_ x: Tensor) throws -> TrainingLosses {
        try checkSignal(x)
        let batch = x.rank == 2 ? x.reshaped([1] + x.shape) : x
        let bands = try analysis(batch)
        var y = encodeBands(bands)
        try roundAsWritten(&y)
        let decoded = decodeBands(y)
        var xHat = try synthesis(decoded)
        if let postFilter { xHat = postFilter(xHat) }
        let mse = Codec.mseAndGradient(xHat, batch).0, tf = Codec.mseAndGradient(decoded, bands).0
        return TrainingLosses(loss: mse, mse: mse, tfLoss: tf, psnr: Codec.clampedPSNR(xHat, batch))
    }

    /// PSNR in dB (signal range 1) of `xHat` clamped to [-0.5, 0.5] against `x`.
    static func clampedPSNR(_ xHat: Tensor, _ x: Tensor) -> Float {
        var squares: Double = 0
        xHat.withUnsafeBufferPointer { hb in
            x.withUnsafeBufferPointer { xb in
                for i in 0..<x.count {
                    let d = Double(min(max(hb[i], -0.5), 0.5) - xb[i])
                    squares += d * d
                }
            }
        }
        return Float(10 * log10(1 / max(squares / Double(max(1, x.count)), 1e-12)))
    }
}
