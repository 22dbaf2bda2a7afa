import Foundation
import WallocCoding
import WallocModels
import WallocNN
import WallocTensor

/// What replaces rounding in a training pass.
public enum TrainingQuantization: Sendable {
    /// The reference's way: uniform noise in [-0.5, 0.5) (shaped like the latents) is added in the
    /// companded domain.
    case noise(Tensor)
    /// Variable-rate models: each sample of the batch is quantised at its own quality setting
    /// (fractional qualities interpolate the steps), with real rounding: the decoder trains on
    /// exactly what it will decode. The gradient passes the rounding unchanged (straight-through).
    case qualities([Float])
}

/// The training-time entropy bottleneck between the encoder and the decoder network, shared by
/// the 2D and 1D passes.
struct BottleneckTape {
    /// The encoder's output.
    var encoded: Tensor
    /// Companding quantiser only: the noisy uniform-domain latents and their ToNormal.
    var noisy: Tensor?
    var normal: Tensor
    /// Variable-rate models: per sample, the factors from `normal` to the network's input.
    var inputGains: [[Float]]?
}

extension Codec {
    /// Encoder output -> the normalised dequantised latents the skip path sees (`normal`) and the
    /// decoder network's input (the same, then the normalised `side` channels (the spectral
    /// envelope) when given, then, for a conditioned variable-rate model, each sample's quality).
    func trainingBottleneck(_ encoded: Tensor, _ quantization: TrainingQuantization, side: Tensor? = nil) throws
        -> (normal: Tensor, decoderInput: Tensor, tape: BottleneckTape) {
        let n = encoded.shape[0]
        switch quantization {
        case .noise(let noise):
            guard !config.isVariableRate else { throw WallocError("a variable-rate model trains with qualities, not noise") }
            guard noise.shape == encoded.shape else {
                throw WallocError("noise shape \(noise.shape) does not match the latent shape \(encoded.shape)")
            }
            var uniform = encoded
            quantizer.toUniform(&uniform)
            let noisy = Elementwise.sum(uniform, noise)
            var normal = noisy
            quantizer.toNormal(&normal)
            let input = side.map { Tensor.concatenateChannels(normal, $0) } ?? normal
            return (normal, input, BottleneckTape(encoded: encoded, noisy: noisy, normal: normal))
        case .qualities(let qualities):
            guard let rate = config.rate else { throw WallocError("a fixed-rate model trains with noise, not qualities") }
            guard qualities.count == n else { throw WallocError("\(qualities.count) qualities for a batch of \(n)") }
            let limit = Float(quantizer.maxLevel), deadzone = rate.deadzone
            var normal = encoded
            let plane = encoded.count / max(1, n)
            if rate.rdLambda > 0 {
                // As files are written: each sample in its own steps, rate-distortion optimised levels.
                let steps = qualities.map { rate.step(quality: $0) }, c = encoded.shape[1]
                Codec.scaleSampleChannels(&normal, steps.map { [Float](repeating: 1 / $0, count: c) })
                try roundAsWritten(&normal)
                Codec.scaleSampleChannels(&normal, steps.map { [Float](repeating: $0, count: c) })
            } else {
                normal.withUnsafeMutableBufferPointer { b in
                    for s in 0..<n {
                        let step = rate.step(quality: qualities[s])
                        let p = b.baseAddress! + s * plane
                        parallelChunks(plane, minChunk: 1 << 14) { r in
                            for i in r { p[i] = Quantizer.level(p[i] / step, deadzone: deadzone, limit: limit) * step }
                        }
                    }
                }
            }
            if let latentScale { normal.scaleChannels(by: latentScale.scalars) }
            let gains = qualities.map { networkInputGains(quality: $0) ?? [Float](repeating: 1, count: config.latentDim) }
            var network = normal
            Codec.scaleSampleChannels(&network, gains)
            var input = side.map { Tensor.concatenateChannels(network, $0) } ?? network
            if rate.condition {
                input = input.appendingChannels(1) { s, _, plane in plane.update(repeating: rate.conditioning(quality: qualities[s])) }
            }
            return (normal, input, BottleneckTape(encoded: encoded, noisy: nil, normal: normal, inputGains: gains))
        }
    }

    /// Multiplies channel `c` of sample `n` (`[N, C, ...]`) by `gains[n][c]` in place.
    static func scaleSampleChannels(_ x: inout Tensor, _ gains: [[Float]]) {
        let n = x.shape[0], c = x.shape[1], plane = x.count / max(1, n * c)
        x.withUnsafeMutableBufferPointer { b in
            parallelFor(n * c) { row in VectorMath.scale(b.baseAddress! + row * plane, count: plane, by: gains[row / c][row % c]) }
        }
    }

    /// The gradient at the encoder's output from the gradients at the skip path's input and at
    /// the decoder network's input (whose extra quality channel is dropped), added up.
    func trainingBottleneckBackward(_ tape: BottleneckTape, dNormal: Tensor?, dDecoderInput: Tensor) -> Tensor {
        var d = dDecoderInput.leadingChannels(config.latentDim)
        if let gains = tape.inputGains { Codec.scaleSampleChannels(&d, gains) }
        if let dNormal { d = Elementwise.sum(d, dNormal) }
        if let noisy = tape.noisy {
            d = quantizer.toNormalBackward(input: noisy, output: tape.normal, d)
            return quantizer.toUniformBackward(input: tape.encoded, d)
        }
        if let latentScale { d.scaleChannels(by: latentScale.scalars) }
        return d
    }

    /// The decoder network's output in the band domain (and, applied to a gradient, its
    /// backward): scaled by `band_scale` and, with `step_scaled_output`, by each sample's relative
    /// step (variable-rate models).
    func scaledDecoderOutput(_ x: Tensor, _ quantization: TrainingQuantization) -> Tensor {
        guard bandScale != nil || config.rate?.stepScaledOutput == true else { return x }
        var y = x
        if let bandScale { y.scaleChannels(by: bandScale.scalars) }
        if let rate = config.rate, rate.stepScaledOutput, case .qualities(let qualities) = quantization {
            let n = y.shape[0], plane = y.count / max(1, n)
            y.withUnsafeMutableBufferPointer { b in
                for s in 0..<n { VectorMath.scale(b.baseAddress! + s * plane, count: plane, by: rate.outputGain(quality: qualities[s])) }
            }
        }
        return y
    }
}

extension Codec {
    /// Integer levels for one signal's real-valued latents `[C, ...]` (in quantiser steps) as
    /// `Compressor` writes them: rate-distortion optimised when the model sets `rate.rd_lambda`
    /// (its `latent_dim` channels), else `roundLatents`.
    func levelsAsWritten(_ y: Tensor) throws -> Tensor {
        guard let rate = config.rate, rate.rdLambda > 0 else {
            var q = y
            roundLatents(&q)
            return q
        }
        return try RateDistortionQuantizer.quantize(y, bits: config.latentBits, lambda: rate.rdLambda, channels: config.latentDim,
                                                    initialDeadzone: rate.deadzone)
    }

    /// `levelsAsWritten` for real-valued latents `[C, ...]` or `[N, C, ...]`, in place.
    func roundAsWritten(_ y: inout Tensor) throws {
        guard let rate = config.rate, rate.rdLambda > 0 else { roundLatents(&y); return }
        if y.rank == (modality == .image ? 3 : 2) { y = try levelsAsWritten(y); return }
        let n = y.shape[0], plane = y.count / max(1, n), shape = Array(y.shape.dropFirst())
        let levels = try (0..<n).map { s in
            try levelsAsWritten(Tensor(shape: shape, scalars: Array(y.scalars[(s * plane)..<((s + 1) * plane)]))).scalars
        }
        y = Tensor(shape: y.shape, scalars: Array(levels.joined()))
    }
}
