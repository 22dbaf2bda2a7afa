import Foundation
import WallocIO
import WallocTensor

/// The kind of signal a model compresses.
public enum Modality: String, Codable, Sendable {
    case image, audio
}

/// A model's constructor arguments, as the reference takes them, plus its `type`.
///
/// Stored as `config.json` in a model directory, with the reference's key names
/// (`channels`, `J`, `Ne`, `Nd`, `latent_dim`, `latent_bits`, `lightweight_encode`, `post_filter`).
public struct ModelConfig: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case codec2D = "Codec2D"
        case codec1D = "Codec1D"
        case linearCodec2D = "LinearCodec2D"
    }

    public var type: Kind
    public var channels: Int
    public var J: Int
    public var Ne: Int?
    public var Nd: Int?
    public var latentDim: Int
    public var latentBits: Int
    public var lightweightEncode: Bool?
    public var postFilter: Bool?
    /// Walloc extension (not in the reference): a linear path from the latents to the bands, a
    /// 1x1 convolution (`skip.weight`, `skip.bias`) added to the decoder's output, so that the
    /// decoder network learns only what a linear decoder misses. Absent or false in reference models.
    public var linearSkip: Bool?
    /// Walloc extension: a variable-rate model's quality-to-step mapping (`RateConfig`). Such a
    /// model quantises with a uniform step chosen by a quality setting instead of the reference's
    /// companding quantiser, and has two fixed normalisation vectors among its parameters:
    /// `latent_scale` (`[latent_dim]`, applied to the dequantised latents before the decoder and
    /// the skip path) and `band_scale` (`[bands]`, applied to the decoder network's output).
    public var rate: RateConfig?
    /// Walloc extension (Codec1D): spectral-envelope side channels (`EnvelopeConfig`).
    public var envelope: EnvelopeConfig?
    /// Walloc extension (variable-rate Codec2D with `linear_skip`): the decoder network outputs a
    /// correction to the normalised latents instead of to the bands, and the linear skip path maps
    /// the corrected latents to the bands. The network then refines what was quantised (in units
    /// of the step, with `step_scaled_output`) and cannot add anything outside the encoder's
    /// subspace, which at fine settings is detail it could only guess.
    public var refineLatents: Bool?
    /// Walloc extension (images): the tiles the model decodes large images in (`decode_tile`), a
    /// property of how it was trained (its attention sees the context sizes of training). Without
    /// it an image decodes whole up to a memory bound (`Codec.decodeTiling`), as the reference's
    /// `forward()` does.
    public var decodeTile: DecodeTile?
    /// Walloc extension (images), encoder-side: pad each axis by at least this many pixels with a
    /// margin that makes the wavelet transform's periodic continuation smooth
    /// (`SignalPreparation.padSmooth`; decoding crops it, as it crops any padding). Without it,
    /// images are reflect-padded to a multiple of 2^J only, as the reference does. Not part of the
    /// fingerprint: decoding does not depend on it.
    public var smoothMargin: Int?

    enum CodingKeys: String, CodingKey {
        case type, channels, J, Ne, Nd
        case latentDim = "latent_dim", latentBits = "latent_bits"
        case lightweightEncode = "lightweight_encode", postFilter = "post_filter"
        case linearSkip = "linear_skip", rate, envelope
        case refineLatents = "refine_latents"
        case decodeTile = "decode_tile"
        case smoothMargin = "smooth_margin"
    }

    public init(type: Kind, channels: Int, J: Int, Ne: Int? = nil, Nd: Int? = nil, latentDim: Int, latentBits: Int,
                lightweightEncode: Bool? = nil, postFilter: Bool? = nil, linearSkip: Bool? = nil, rate: RateConfig? = nil,
                envelope: EnvelopeConfig? = nil, refineLatents: Bool? = nil) {
        self.type = type; self.channels = channels; self.J = J; self.Ne = Ne; self.Nd = Nd
        self.latentDim = latentDim; self.latentBits = latentBits
        self.lightweightEncode = lightweightEncode; self.postFilter = postFilter
        self.linearSkip = linearSkip; self.rate = rate; self.envelope = envelope; self.refineLatents = refineLatents
    }

    /// Whether the decoder network refines the latents (`refine_latents`).
    public var refinesLatents: Bool { refineLatents == true }

    /// Envelope channels: `channels · envelope.groups`, or 0.
    public var envelopeChannels: Int { envelope.map { channels * $0.groups } ?? 0 }
    /// Channels of the integer latents: the encoder's `latent_dim` plus the envelope channels.
    public var latentChannels: Int { latentDim + envelopeChannels }

    /// Whether the model has the linear skip path (`linear_skip`).
    public var hasLinearSkip: Bool { linearSkip == true }
    /// Whether the model takes a quality setting (`rate`).
    public var isVariableRate: Bool { rate != nil }
    /// Channels entering the decoder network: the latents, plus the quality channel of a
    /// conditioned variable-rate model.
    public var decoderInputChannels: Int { latentDim + envelopeChannels + (rate?.condition == true ? 1 : 0) }

    /// Image models are 2D, audio models 1D.
    public var modality: Modality { type == .codec1D ? .audio : .image }
    /// Wavelet bands per input channel: `4^J` (2D) or `2^J` (1D).
    public var bandsPerChannel: Int { modality == .image ? 1 << (2 * J) : 1 << J }
    /// Channels entering the encoder: `channels · bandsPerChannel`.
    public var bandChannels: Int { channels * bandsPerChannel }
    /// Input values per latent value (ignoring Codec1D's two extra latent steps).
    public var dimensionalityReduction: Double { Double(bandChannels) / Double(latentDim) }
    /// Signal samples per latent position along each axis: `2^J`.
    public var downsampling: Int { 1 << J }

    /// Reads and validates `config.json`.
    public static func read(_ url: URL) throws -> ModelConfig {
        try decode(FileIO.read(url), name: url.path)
    }

    /// Decodes and validates the text of a `config.json`; `name` labels error messages.
    public static func decode(_ data: Data, name: String) throws -> ModelConfig {
        let config: ModelConfig
        do {
            config = try JSONDecoder().decode(ModelConfig.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw WallocError("\(name): missing field '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw WallocError("\(name): field '\(field)' has the wrong type (\(context.debugDescription))")
        } catch let DecodingError.dataCorrupted(context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw WallocError("\(name): \(field.isEmpty ? "not valid JSON" : "bad value for '\(field)'") (\(context.debugDescription))")
        } catch {
            throw WallocError("\(name): not a valid model configuration (\(error))")
        }
        do {
            try config.validate()
        } catch let e as WallocError {
            throw WallocError("\(name): \(e.message)")
        }
        return config
    }

    /// The JSON text of this configuration (sorted keys, indented).
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// Checks that the reference could build this model.
    public func validate() throws {
        guard channels >= 1 else { throw WallocError("channels must be at least 1, got \(channels)") }
        guard (0...8).contains(J) else { throw WallocError("J must be in 0...8, got \(J)") }
        guard latentDim >= 1 else { throw WallocError("latent_dim must be at least 1, got \(latentDim)") }
        guard (2...16).contains(latentBits) else { throw WallocError("latent_bits must be in 2...16, got \(latentBits)") }
        if refinesLatents {
            guard type == .codec2D, hasLinearSkip, rate != nil else {
                throw WallocError("refine_latents needs a variable-rate Codec2D with linear_skip")
            }
        }
        if let envelope {
            guard type == .codec1D else { throw WallocError("envelope applies to Codec1D (audio) models") }
            try envelope.validate(bands: bandsPerChannel)
        }
        if let rate {
            try rate.validate()
            guard rate.downscale.isEmpty || modality == .image else { throw WallocError("rate.downscale applies to image models") }
        }
        if let decodeTile {
            guard modality == .image else { throw WallocError("decode_tile applies to image models") }
            guard decodeTile.size >= 1, decodeTile.overlap >= 0 else {
                throw WallocError("decode_tile needs size >= 1 and overlap >= 0, got \(decodeTile.size) and \(decodeTile.overlap)")
            }
        }
        if let smoothMargin {
            guard modality == .image else { throw WallocError("smooth_margin applies to image models") }
            guard (0...256).contains(smoothMargin) else { throw WallocError("smooth_margin must be from 0 to 256 pixels, got \(smoothMargin)") }
        }
        if hasLinearSkip && type == .linearCodec2D {
            throw WallocError("linear_skip applies to Codec2D and Codec1D; a LinearCodec2D's decoder is linear already")
        }
        switch type {
        case .linearCodec2D:
            break
        case .codec2D:
            guard let nd = Nd, nd >= 32, nd % 32 == 0 else {
                throw WallocError("Codec2D needs Nd, a positive multiple of 32 (the decoder's group norms have 32 groups), got \(Nd.map(String.init) ?? "none")")
            }
            guard let light = lightweightEncode else { throw WallocError("Codec2D needs lightweight_encode (true or false)") }
            if !light {
                guard let ne = Ne, ne >= 32, ne % 32 == 0 else {
                    throw WallocError("Codec2D with the full encoder needs Ne, a positive multiple of 32, got \(Ne.map(String.init) ?? "none")")
                }
            }
        case .codec1D:
            guard let nd = Nd, nd / latentDim >= 1 else {
                throw WallocError("Codec1D needs Nd of at least latent_dim (\(latentDim)), got \(Nd.map(String.init) ?? "none")")
            }
            guard let light = lightweightEncode else { throw WallocError("Codec1D needs lightweight_encode (true or false)") }
            if !light {
                guard let ne = Ne, ne / latentDim >= 1 else {
                    throw WallocError("Codec1D with the Oobleck encoder needs Ne of at least latent_dim (\(latentDim)), got \(Ne.map(String.init) ?? "none")")
                }
            }
            guard postFilter != nil else { throw WallocError("Codec1D needs post_filter (true or false)") }
        }
    }
}

/// Decoder tiles of an image model (`decode_tile` in config.json): latent grids larger than
/// `size` x `size` positions decode in tiles of about that size with `overlap` positions of
/// context on each side, blended across the overlaps.
public struct DecodeTile: Codable, Equatable, Sendable {
    public var size: Int
    public var overlap: Int

    public init(size: Int, overlap: Int) {
        self.size = size
        self.overlap = overlap
    }
}
