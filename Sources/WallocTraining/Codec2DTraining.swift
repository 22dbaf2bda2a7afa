import Foundation
import WallocModels
import WallocNN
import WallocTensor
import WallocWavelets

/// The losses of one training-mode forward pass, as the reference's `forward` returns them.
public struct TrainingLosses: Sendable, Equatable {
    /// `mse + tfWeight · tfLoss`, the value the gradients are taken of.
    public var loss: Float
    /// The distortion in the signal domain, `x̂` before the clamp: `MSE(x, x̂)`, or the
    /// objective's normalised or logarithmic form.
    public var mse: Float
    /// `MSE(X, X̂)` over the wavelet bands.
    public var tfLoss: Float
    /// PSNR in dB of the clamped reconstruction (signal range 1).
    public var psnr: Float
    /// The spectral (log-mel) term before its weight, 0 without one.
    public var spectral: Float = 0

    public init(loss: Float, mse: Float, tfLoss: Float, psnr: Float, spectral: Float = 0) {
        self.loss = loss; self.mse = mse; self.tfLoss = tfLoss; self.psnr = psnr; self.spectral = spectral
    }
}

extension Codec {
    /// Training-mode forward and backward pass of a codec on a batch `x` of `[N, C, H, W]`
    /// (`Codec2D`, `LinearCodec2D`) or `[N, C, L]` (`Codec1D`, see `lossAndGradients1D`):
    /// rounding is replaced by adding `noise` (same shape as the latents, values in [-0.5, 0.5));
    /// the loss is `MSE(x, x̂) + tfWeight · MSE(X, X̂)`.
    /// Returns the losses and the gradient of the loss for every parameter.
    public func lossAndGradients(batch x: Tensor, noise: Tensor, tfWeight: Float = 0) throws -> (TrainingLosses, Gradients) {
        try lossAndGradients(batch: x, quantization: .noise(noise), tfWeight: tfWeight)
    }

    /// Training-mode forward and backward pass with the given stand-in for rounding: the
    /// reference's noise, or (variable-rate models) a quality setting per sample.
    public func lossAndGradients(batch x: Tensor, quantization: TrainingQuantization, tfWeight: Float = 0) throws -> (TrainingLosses, Gradients) {
        try lossAndGradients(batch: x, quantization: quantization, objective: TrainingObjective(tfWeight: tfWeight))
    }

    /// Training-mode forward and backward pass minimising `objective` (its normalised MSE and
    /// spectral term apply to audio).
    public func lossAndGradients(batch x: Tensor, quantization: TrainingQuantization, objective: TrainingObjective) throws -> (TrainingLosses, Gradients) {
        if modality == .audio { return try lossAndGradients1D(batch: x, quantization: quantization, objective: objective) }
        let tfWeight = objective.tfWeight
        guard x.rank == 4 else { throw WallocError("a training batch must be [N, C, H, W], got \(x.shape)") }
        try checkSignal(x)
        let bands = try analysis(x)
        let encoded: Tensor
        enum EncoderTape { case pointwise(Conv2dTape), vae(VAETape) }
        let encoderTape: EncoderTape
        switch encoder {
        case .pointwise2D(let m): let (y, t) = m.forward(training: bands); encoded = y; encoderTape = .pointwise(t)
        case .vae(let m): let (y, t) = m.forward(training: bands); encoded = y; encoderTape = .vae(t)
        default: throw WallocError("2D training does not support this encoder")
        }
        let (normal, input, bottleneck) = try trainingBottleneck(encoded, quantization)
        var decoded: Tensor
        enum DecoderTape { case pointwise(Conv2dTape), vae(VAETape) }
        let decoderTape: DecoderTape
        switch decoder {
        case .pointwise2D(let m): let (y, t) = m.forward(training: input); decoded = y; decoderTape = .pointwise(t)
        case .vae(let m): let (y, t) = Kernels.trainingDecoder { m.forward(training: input) }; decoded = y; decoderTape = .vae(t)
        default: throw WallocError("2D training does not support this decoder")
        }
        decoded = scaledDecoderOutput(decoded, quantization)
        var skipTape: Conv2dTape?
        var skipLayer: Conv2d?
        if case .pointwise2D(let m)? = skip {
            if config.refinesLatents {
                // The network's output corrects the latents; the skip path maps them to the bands.
                let (s, t) = m.forward(training: Elementwise.sum(normal, decoded))
                decoded = s
                skipTape = t
            } else {
                let (s, t) = m.forward(training: normal)
                decoded = Elementwise.sum(decoded, s)
                skipTape = t
            }
            skipLayer = m
        }
        let xHat = try synthesis(decoded)

        // Losses and their gradients.
        let (mse, dxHat) = objective.distortionAndGradient(xHat, x)
        let (tf, dDecodedTF) = Codec.mseAndGradient(decoded, bands)
        let psnr = Codec.clampedPSNR(xHat, x)
        var dDecoded = WaveletAdjoint.synthesis2D(dxHat, levels: config.J)
        if tfWeight != 0 {
            dDecoded.withUnsafeMutableBufferPointer { db in
                dDecodedTF.withUnsafeBufferPointer { tb in
                    VectorMath.axpy(tfWeight, tb.baseAddress!, into: db.baseAddress!, count: db.count)
                }
            }
        }

        // Backward through the decoder and the skip path, the bottleneck, the encoder.
        var gradients = Gradients()
        var dSkip: Tensor?
        if let skipLayer, let skipTape { dSkip = skipLayer.backward(skipTape, dDecoded, prefix: "skip", into: &gradients) }
        // The network's output gradient: at the bands, or (refining the latents) at the skip's input.
        let dNetwork = scaledDecoderOutput(config.refinesLatents ? dSkip! : dDecoded, quantization)
        let dInput: Tensor
        switch (decoder, decoderTape) {
        case (.pointwise2D(let m), .pointwise(let t)): dInput = m.backward(t, dNetwork, prefix: "decoder.1", into: &gradients)
        case (.vae(let m), .vae(let t)):
            dInput = Kernels.trainingDecoder { m.backward(t, dNetwork, prefix: "decoder.1", into: &gradients) }
        default: throw WallocError("internal error: decoder tape mismatch")
        }
        let dEncoded = trainingBottleneckBackward(bottleneck, dNormal: dSkip, dDecoderInput: dInput)
        switch (encoder, encoderTape) {
        case (.pointwise2D(let m), .pointwise(let t)):
            _ = m.backward(t, dEncoded, prefix: "encoder.0", into: &gradients, inputGradient: false)
        case (.vae(let m), .vae(let t)):
            _ = m.backward(t, dEncoded, prefix: "encoder.0", into: &gradients, inputGradient: false)
        default: throw WallocError("internal error: encoder tape mismatch")
        }
        let losses = TrainingLosses(loss: mse + tfWeight * tf, mse: mse, tfLoss: tf, psnr: psnr)
        return (losses, gradients)
    }

    /// Evaluation-mode losses (rounded latents) on `[N, C, H, W]` or `[C, H, W]` (2D codecs), or
    /// `[N, C, L]` or `[C, L]` (`Codec1D`, post filter included).
    public func evaluationLosses(_ x: Tensor) throws -> TrainingLosses {
        if modality == .audio { return try evaluationLosses1D(x) }
        try checkSignal(x)
        let bands = try analysis(x)
        var y = encodeBands(bands)
        try roundAsWritten(&y)
        let decoded = decodeBands(y)
        let xHat = try synthesis(decoded)
        let mse = Codec.mseAndGradient(xHat, x).0, tf = Codec.mseAndGradient(decoded, bands).0
        return TrainingLosses(loss: mse, mse: mse, tfLoss: tf, psnr: Codec.clampedPSNR(xHat, x))
    }

    /// `mean((a − b)²)` and its gradient with respect to `a`, `2(a − b)/count`.
    static func mseAndGradient(_ a: Tensor, _ b: Tensor) -> (Float, Tensor) {
        precondition(a.shape == b.shape, "MSE shapes differ: \(a.shape) vs \(b.shape)")
        let n = a.count, scale = 2 / Float(max(1, n))
        var g = Tensor(uninitialized: a.shape)
        var total: Double = 0
        for i in 0..<n {
            let d = a.scalars[i] - b.scalars[i]
            total += Double(d) * Double(d)
            g.scalars[i] = scale * d
        }
        return (Float(total / Double(max(1, n))), g)
    }
}
