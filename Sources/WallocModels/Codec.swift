import WallocNN
import WallocTensor
import WallocWavelets

/// A WaLLoC codec: wavelet packet transform, encoder, entropy bottleneck, decoder, inverse
/// transform. One type covers the reference's `Codec2D`, `Codec1D` and `LinearCodec2D`.
///
/// Signals are `[C, H, W]` / `[C, L]` or batched `[N, C, H, W]` / `[N, C, L]`, values in
/// [-0.5, 0.5]. Latents are `[latent_dim, h, w]` / `[latent_dim, l]` (batched likewise).
public struct Codec: Module {
    /// The encoder variants of the reference.
    public enum Encoder: Sendable {
        /// A 1x1 convolution from the wavelet bands to the latent channels (2D).
        case pointwise2D(Conv2d)
        /// diffusers' VAE encoder.
        case vae(VAEEncoder)
        /// A kernel-1 convolution with padding 1 (so latents are two steps longer than the bands).
        case pointwise1D(Conv1d)
        /// diffusers' Oobleck encoder.
        case oobleck(OobleckEncoder)
    }

    /// The decoder variants of the reference.
    public enum Decoder: Sendable {
        case pointwise2D(Conv2d)
        case vae(VAEDecoder)
        case oobleck(OobleckDecoder)
    }

    public let config: ModelConfig
    public var encoder: Encoder
    public var decoder: Decoder
    /// Codec1D's optional kernel-129 convolution applied after synthesis.
    public var postFilter: Conv1d?
    /// The optional linear path from the latents (after ToNormal) to the bands (`linear_skip`, a
    /// Walloc extension): a 1x1 convolution whose output is added to the decoder's. For Codec1D it
    /// sees the latents without their first and last step, which the decoder also drops.
    public var skip: LinearSkip?

    /// The linear skip path's layer.
    public enum LinearSkip: Sendable {
        case pointwise2D(Conv2d)
        case pointwise1D(Conv1d)
    }
    /// The quality setting (1...100) a variable-rate model encodes and decodes at; 0 for
    /// fixed-rate models. Set it with `withQuality(_:)` or by assignment.
    public var quality: Int
    /// Variable-rate models: the fixed normalisation of the dequantised latents (`latent_scale`,
    /// `[latent_dim]`) and of the decoder network's output (`band_scale`, `[bands]`).
    public var latentScale: Tensor?
    public var bandScale: Tensor?
    /// Audio models with an `envelope`: computes its side channels.
    public let envelope: SpectralEnvelope?

    /// The entropy bottleneck at the current quality: the reference's companding quantiser, or a
    /// variable-rate model's uniform quantiser with step `Δ(quality)`.
    public var quantizer: Quantizer {
        guard let rate = config.rate else { return Quantizer(bits: config.latentBits) }
        return Quantizer(bits: config.latentBits, step: rate.step(quality: Float(quality)), deadzone: rate.deadzone)
    }

    /// This codec at another quality setting (variable-rate models only).
    public func withQuality(_ q: Int) throws -> Codec {
        guard config.isVariableRate else { throw WallocError("this model has one fixed rate; it takes no quality setting") }
        try Quality.validate(q)
        var c = self
        c.quality = q
        return c
    }

    /// Builds a codec with freshly initialised parameters (PyTorch's default layer initialisation,
    /// deterministic for a seed).
    public init(config: ModelConfig, seed: UInt64 = 0) throws {
        var initializer = ParameterInitializer(seed: seed)
        try self.init(config: config, initializer: &initializer)
    }

    init(config: ModelConfig, initializer: inout ParameterInitializer) throws {
        try config.validate()
        self.config = config
        quality = config.rate?.defaultQuality ?? 0
        envelope = config.envelope.map { SpectralEnvelope(config: $0, channels: config.channels, bandsPerChannel: config.bandsPerChannel) }
        let bands = config.bandChannels, latent = config.latentDim, decoderIn = config.decoderInputChannels
        if config.isVariableRate {
            latentScale = Tensor(repeating: 1, shape: [latent])
            if !config.refinesLatents { bandScale = Tensor(repeating: 1, shape: [bands]) }
        }
        // The decoder network's output: corrections to the latents, or the bands.
        let networkOut = config.refinesLatents ? latent : bands
        switch config.type {
        case .linearCodec2D:
            encoder = .pointwise2D(Conv2d(inChannels: bands, outChannels: latent, kernelSize: 1, initializer: &initializer))
            decoder = .pointwise2D(Conv2d(inChannels: decoderIn, outChannels: bands, kernelSize: 1, initializer: &initializer))
        case .codec2D:
            if config.hasLinearSkip {
                skip = .pointwise2D(Conv2d(inChannels: latent, outChannels: bands, kernelSize: 1, initializer: &initializer))
            }
            if config.lightweightEncode == true {
                encoder = .pointwise2D(Conv2d(inChannels: bands, outChannels: latent, kernelSize: 1, initializer: &initializer))
            } else {
                encoder = .vae(VAEEncoder(inChannels: bands, outChannels: latent, width: config.Ne!, initializer: &initializer))
            }
            decoder = .vae(VAEDecoder(inChannels: decoderIn, outChannels: networkOut, width: config.Nd!, initializer: &initializer))
        case .codec1D:
            if config.hasLinearSkip {
                skip = .pointwise1D(Conv1d(inChannels: latent, outChannels: bands, kernelSize: 1, initializer: &initializer))
            }
            if config.lightweightEncode == true {
                encoder = .pointwise1D(Conv1d(inChannels: bands, outChannels: latent, kernelSize: 1, padding: 1, initializer: &initializer))
            } else {
                let m = config.Ne! / latent
                encoder = .oobleck(OobleckEncoder(hidden: latent, audioChannels: bands, strides: [1, 1], multiples: [m, m],
                                                  initializer: &initializer))
            }
            let m = config.Nd! / latent
            decoder = .oobleck(OobleckDecoder(channels: latent, inputChannels: decoderIn, audioChannels: bands,
                                              strides: [1, 1], multiples: [m, m], initializer: &initializer))
            if config.postFilter == true {
                postFilter = Conv1d(inChannels: config.channels, outChannels: config.channels, kernelSize: 129, padding: 64,
                                    initializer: &initializer)
            }
        }
    }

    // MARK: parameters

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        switch encoder {
        case .pointwise2D(var m): try m.visitParameters(prefix: key(prefix, "encoder.0"), body); encoder = .pointwise2D(m)
        case .vae(var m): try m.visitParameters(prefix: key(prefix, "encoder.0"), body); encoder = .vae(m)
        case .pointwise1D(var m): try m.visitParameters(prefix: key(prefix, "encoder.0"), body); encoder = .pointwise1D(m)
        case .oobleck(var m): try m.visitParameters(prefix: key(prefix, "encoder.0"), body); encoder = .oobleck(m)
        }
        switch decoder {
        case .pointwise2D(var m): try m.visitParameters(prefix: key(prefix, "decoder.1"), body); decoder = .pointwise2D(m)
        case .vae(var m): try m.visitParameters(prefix: key(prefix, "decoder.1"), body); decoder = .vae(m)
        case .oobleck(var m): try m.visitParameters(prefix: key(prefix, "decoder.1"), body); decoder = .oobleck(m)
        }
        if postFilter != nil { try postFilter!.visitParameters(prefix: key(prefix, "post"), body) }
        switch skip {
        case .pointwise2D(var m)?: try m.visitParameters(prefix: key(prefix, "skip"), body); skip = .pointwise2D(m)
        case .pointwise1D(var m)?: try m.visitParameters(prefix: key(prefix, "skip"), body); skip = .pointwise1D(m)
        case nil: break
        }
        if latentScale != nil { try body(key(prefix, "latent_scale"), &latentScale!) }
        if bandScale != nil { try body(key(prefix, "band_scale"), &bandScale!) }
    }

    public mutating func parametersDidChange() {
        switch encoder {
        case .pointwise2D(var m): m.parametersDidChange(); encoder = .pointwise2D(m)
        case .vae(var m): m.parametersDidChange(); encoder = .vae(m)
        case .pointwise1D(var m): m.parametersDidChange(); encoder = .pointwise1D(m)
        case .oobleck(var m): m.parametersDidChange(); encoder = .oobleck(m)
        }
        switch decoder {
        case .pointwise2D(var m): m.parametersDidChange(); decoder = .pointwise2D(m)
        case .vae(var m): m.parametersDidChange(); decoder = .vae(m)
        case .oobleck(var m): m.parametersDidChange(); decoder = .oobleck(m)
        }
        postFilter?.parametersDidChange()
        switch skip {
        case .pointwise2D(var m)?: m.parametersDidChange(); skip = .pointwise2D(m)
        case .pointwise1D(var m)?: m.parametersDidChange(); skip = .pointwise1D(m)
        case nil: break
        }
    }

    /// Parameter counts of the encoder, the decoder (with the linear skip path) and the post filter.
    public var parameterCounts: (encoder: Int, decoder: Int, postFilter: Int) {
        var e = 0, d = 0, p = 0
        for (name, t) in namedParameters() {
            if name.hasPrefix("encoder.") { e += t.count } else if name.hasPrefix("decoder.") || name.hasPrefix("skip.") { d += t.count } else { p += t.count }
        }
        return (e, d, p)
    }

    // MARK: shapes

    public var modality: Modality { config.modality }

    /// The latent shape (without batch) for a signal of the given spatial size (`[H, W]` or `[L]`).
    public func latentShape(signalSize: [Int]) -> [Int] {
        let f = config.downsampling
        switch modality {
        case .image: return [config.latentChannels] + signalSize.map { $0 / f }
        case .audio: return [config.latentChannels, signalSize[0] / f + 2]
        }
    }

    /// The signal size (`[H, W]` or `[L]`) that latents of spatial size `latentSize` decode to.
    public func signalSize(latentSize: [Int]) -> [Int] {
        let f = config.downsampling
        switch modality {
        case .image: return latentSize.map { $0 * f }
        case .audio: return [(latentSize[0] - 2) * f]
        }
    }

    /// Adds a batch dimension of 1 when `x` has none; returns whether one was added.
    func batched(_ x: Tensor, rank: Int) -> (Tensor, Bool) {
        x.rank == rank - 1 ? (x.reshaped([1] + x.shape), true) : (x, false)
    }

    func unbatched(_ x: Tensor, _ added: Bool) -> Tensor {
        added ? x.reshaped(Array(x.shape.dropFirst())) : x
    }

    var spatialRank: Int { modality == .image ? 2 : 1 }

    /// Checks a signal's shape: channel count, rank, and sizes divisible by `2^J`.
    public func checkSignal(_ x: Tensor) throws {
        let r = spatialRank + 1
        guard x.rank == r || (x.rank == r + 1) else {
            throw WallocError("\(config.type.rawValue) expects a signal of shape \(modality == .image ? "[C, H, W]" : "[C, L]") (optionally with a leading batch dimension), got \(x.shape)")
        }
        let c = x.shape[x.rank - r]
        guard c == config.channels else {
            throw WallocError("the model takes \(config.channels) channel(s), the signal has \(c)")
        }
        let f = config.downsampling
        for (axis, n) in x.shape.suffix(spatialRank).enumerated() where n <= 0 || n % f != 0 {
            let name = modality == .audio ? "length" : (axis == 0 ? "height" : "width")
            throw WallocError("signal \(name) \(n) is not a positive multiple of 2^J = \(f); pad it first")
        }
    }

    /// Checks a latent tensor's shape and values.
    public func checkLatents(_ y: Tensor) throws {
        let r = spatialRank + 1
        guard y.rank == r || y.rank == r + 1 else {
            throw WallocError("\(config.type.rawValue) expects latents of shape \(modality == .image ? "[latent_dim, h, w]" : "[latent_dim, l]") (optionally with a leading batch dimension), got \(y.shape)")
        }
        let c = y.shape[y.rank - r]
        guard c == config.latentChannels else {
            throw WallocError("the model's latents have \(config.latentChannels) channels, the tensor has \(c)")
        }
        let minimum = modality == .audio ? 3 : 1
        for n in y.shape.suffix(spatialRank) where n < minimum {
            throw WallocError("latent size \(n) is too small (at least \(minimum) needed)")
        }
        try quantizer.validate(y)
    }

    // MARK: stages

    /// Wavelet packet analysis: signal -> bands.
    public func analysis(_ x: Tensor) throws -> Tensor {
        modality == .image ? try WaveletPacket.analysis2D(x, levels: config.J) : try WaveletPacket.analysis1D(x, levels: config.J)
    }

    /// Wavelet packet synthesis: bands -> signal (no post filter, no clamp).
    public func synthesis(_ bands: Tensor) throws -> Tensor {
        modality == .image ? try WaveletPacket.synthesis2D(bands, levels: config.J) : try WaveletPacket.synthesis1D(bands, levels: config.J)
    }

    /// Encoder and ToUniform: bands -> real-valued latents (before rounding).
    public func encodeBands(_ bands: Tensor) -> Tensor {
        let (x, added) = batched(bands, rank: spatialRank + 2)
        var y: Tensor
        switch encoder {
        case .pointwise2D(let m): y = m(x)
        case .vae(let m): y = m(x)
        case .pointwise1D(let m): y = m(x)
        case .oobleck(let m): y = m(x)
        }
        quantizer.toUniform(&y)
        if let envelope { y = Tensor.concatenateChannels(y, envelope.values(x)) }
        return unbatched(y, added)
    }

    /// ToNormal and decoder: latents -> bands. A variable-rate model dequantises with its step,
    /// normalises by `latent_scale`, appends the quality channel for the decoder network and
    /// scales its output by `band_scale`.
    public func decodeBands(_ latents: Tensor) -> Tensor {
        var (y, added) = batched(latents, rank: spatialRank + 2)
        var side: Tensor?
        if let envelope {
            side = envelope.normalized(y.channels(config.latentDim..<config.latentChannels))
            y = y.leadingChannels(config.latentDim)
        }
        quantizer.toNormal(&y)
        if let latentScale { y.scaleChannels(by: latentScale.scalars) }
        var network = y
        if let gains = networkInputGains(quality: Float(quality)) { network.scaleChannels(by: gains) }
        let input = decoderInput(side.map { Tensor.concatenateChannels(network, $0) } ?? network, quality: Float(quality))
        // The decoder network runs on the kernels and precision `Kernels` selects.
        var x: Tensor = Kernels.decoding {
            switch decoder {
            case .pointwise2D(let m): m(input)
            case .vae(let m): m(input)
            case .oobleck(let m): m(input)
            }
        }
        if let bandScale { x.scaleChannels(by: bandScale.scalars) }
        if let gain = config.rate?.outputGain(quality: Float(quality)), gain != 1 { x.scale(by: gain) }
        if config.refinesLatents, case .pointwise2D(let m)? = skip {
            // The corrected latents through the linear path.
            x.withUnsafeMutableBufferPointer { xb in
                y.withUnsafeBufferPointer { yb in VectorMath.add(yb.baseAddress!, into: xb.baseAddress!, count: xb.count) }
            }
            x = m(x)
        } else if let skip {
            addSkip(skip, latents: y, to: &x)
        }
        return unbatched(x, added)
    }

    /// Variable-rate models: per latent channel, `min(1, 1/(latent_scale·Δ))`, the factor from
    /// the normalised latents `ẑ·latent_scale` (what the skip path sees) to the decoder network's
    /// input `ẑ / max(σ, Δ)`: a channel whose step exceeds its spread takes the values 0 and ±1
    /// instead of rare large spikes. Nil for fixed-rate models and for models whose decoder is
    /// the linear path itself (no `linear_skip`).
    public func networkInputGains(quality q: Float) -> [Float]? {
        guard let rate = config.rate, let latentScale, skip != nil else { return nil }
        let step = rate.step(quality: q)
        return latentScale.scalars.map { min(1, 1 / ($0 * step)) }
    }

    /// The decoder network's input for normalised latents `y` (batched, envelope channels
    /// included): `y`, with the conditioning channel `c(quality)` appended when the model has one.
    public func decoderInput(_ y: Tensor, quality q: Float) -> Tensor {
        guard let rate = config.rate, rate.condition else { return y }
        return y.appendingConstantChannels(1, value: rate.conditioning(quality: q))
    }

    /// Adds the linear skip path's output for normal-domain latents `y` (batched) to the bands `x`.
    func addSkip(_ skip: LinearSkip, latents y: Tensor, to x: inout Tensor) {
        let s: Tensor
        switch skip {
        case .pointwise2D(let m): s = m(y)
        case .pointwise1D(let m): s = m(Codec.dropEnds(y))
        }
        precondition(s.shape == x.shape, "linear skip output \(s.shape) does not match the decoder's \(x.shape)")
        x.withUnsafeMutableBufferPointer { xb in
            s.withUnsafeBufferPointer { sb in
                parallelChunks(xb.count, minChunk: 1 << 15) { r in
                    VectorMath.add(sb.baseAddress! + r.lowerBound, into: xb.baseAddress! + r.lowerBound, count: r.count)
                }
            }
        }
    }

    /// `[N, C, L]` -> `[N, C, L − 2]` without the first and last step (Codec1D latents -> band positions).
    public static func dropEnds(_ y: Tensor) -> Tensor {
        let n = y.shape[0], c = y.shape[1], l = y.shape[2]
        return Tensor(uninitializedShape: [n, c, l - 2]) { dst in
            y.withUnsafeBufferPointer { src in
                for r in 0..<(n * c) { (dst.baseAddress! + r * (l - 2)).update(from: src.baseAddress! + r * l + 1, count: l - 2) }
            }
        }
    }

    /// Synthesis, post filter (Codec1D) and clamp to [-0.5, 0.5]: bands -> signal.
    public func reconstruct(bands: Tensor) throws -> Tensor {
        var x = try synthesis(bands)
        if let postFilter {
            let (b, added) = batched(x, rank: 3)
            x = unbatched(postFilter(b), added)
        }
        x.withUnsafeMutableBufferPointer { p in
            parallelChunks(p.count, minChunk: 1 << 15) { r in
                VectorMath.map(p.baseAddress! + r.lowerBound, count: r.count) { VectorMath.clamp($0, -0.5, 0.5) }
            }
        }
        return x
    }

    /// Signal -> integer latents (analysis, encoder, ToUniform, round). With `rounded` false, the
    /// latents before rounding (in quantiser steps for a variable-rate model), for an encoder that
    /// quantises them itself.
    public func encode(_ x: Tensor, rounded: Bool = true) throws -> Tensor {
        try checkSignal(x)
        var y = encodeBands(try analysis(x))
        if rounded { roundLatents(&y) }
        return y
    }

    /// Rounds real-valued latents `[C, ...]` or `[N, C, ...]` (from `encodeBands`) to the integers
    /// a bitstream holds; the dead zone of a variable-rate model applies to the encoder's
    /// `latent_dim` channels, not to envelope channels after them.
    public func roundLatents(_ y: inout Tensor) {
        quantizer.round(&y, deadzoneChannels: config.latentDim, channelAxis: y.rank == spatialRank + 2 ? 1 : 0)
    }

    /// Integer latents -> signal, as the reference `forward()` in eval mode returns it.
    public func decode(_ latents: Tensor) throws -> Tensor {
        try checkLatents(latents)
        return try reconstruct(bands: decodeBands(latents))
    }
}
