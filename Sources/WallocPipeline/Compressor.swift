import Foundation
import WallocTensor
import WallocIO
import WallocModels
import WallocMedia
import WallocCoding

/// What a `.wlc` file decodes to.
public enum DecodedSignal: Sendable {
    /// Pixels `[C, H, W]` in [0, 1] and the original bit depth.
    case image(pixels: Tensor, bitDepth: Int)
    /// Samples `[C, L]` at their original level, the sample rate and original bit depth.
    case audio(samples: Tensor, sampleRate: Int, bitDepth: Int)
    /// A raw signal (from a `.npy` input), as the codec sees it.
    case signal(Tensor)
}

/// The whole pipeline: prepared signal -> latents -> entropy-coded `.wlc`, and back.
public struct Compressor: Sendable {
    public private(set) var codec: Codec
    /// A name for the model, stored in bitstreams (the model directory's name by default).
    public let name: String
    /// Default entropy tables shipped with the model (`entropy.json`), if any.
    public let entropyModel: LatentModel?
    /// How the latents are coded when compressing (rANS by default).
    public var coding: WLCHeader.Coding = .rans
    /// Whether images are coded smaller at the settings the model's `rate.downscale` names (the
    /// default). Off, every setting codes the image at its size: small text and fine detail
    /// survive low settings better, at a lower PSNR for photographs (docs/design.md).
    public var downscales = true
    /// Images whose latent grid exceeds `tile` x `tile` decode in tiles with `overlap` positions of
    /// context (`Codec.decodeTiled`); the model's `decode_tile` by default (`Codec.decodeTiling`).
    public var tile: Int, overlap: Int
    /// The model's fingerprint (computed once: it hashes every weight).
    public let fingerprint: [UInt8]

    public static let entropyFileName = "entropy.json"

    public init(codec: Codec, name: String, entropyModel: LatentModel? = nil) {
        self.codec = codec
        self.name = name
        self.entropyModel = entropyModel
        tile = codec.decodeTiling.size
        overlap = codec.decodeTiling.overlap
        fingerprint = codec.fingerprint
    }

    /// Loads a model directory, with its default entropy tables when it has them.
    public static func load(modelDirectory url: URL) throws -> Compressor {
        let codec = try Codec.load(from: url)
        var model: LatentModel?
        let entropyURL = url.appendingPathComponent(entropyFileName)
        if FileManager.default.fileExists(atPath: entropyURL.path) {
            model = try entropyModel(FileIO.read(entropyURL), name: entropyURL.path)
        }
        return Compressor(codec: codec, name: url.standardizedFileURL.lastPathComponent, entropyModel: model)
    }

    /// Decodes the text of an `entropy.json` (default entropy tables); `name` labels errors.
    public static func entropyModel(_ data: Data, name: String) throws -> LatentModel {
        do {
            return try JSONDecoder().decode(LatentModel.self, from: data)
        } catch {
            throw WallocError("\(name): not a valid entropy model (\(error))")
        }
    }

    // MARK: compression

    /// This compressor at another quality setting (variable-rate models only; 1...100).
    public func withQuality(_ q: Int) throws -> Compressor {
        var c = self
        c.codec = try codec.withQuality(q)
        return c
    }

    /// The quality setting compression uses: the codec's (variable-rate models), nil otherwise.
    public var quality: Int? { codec.config.isVariableRate ? codec.quality : nil }

    /// Compresses an image file's pixels. An alpha channel beyond what the model takes is
    /// dropped (`droppedAlpha` says so); other channel mismatches are errors.
    /// The image is consumed: when the caller holds no other reference, its pixels become the
    /// codec's signal in place (one image-sized buffer less at the peak).
    public func compress(image: consuming Image) throws -> (file: WLCFile, droppedAlpha: Bool) {
        guard codec.modality == .image else { throw WallocError("this model codes audio, not images") }
        let bitDepth = image.bitDepth
        var pixels = image.pixels
        image.pixels = Tensor(zeros: [1])
        var dropped = false
        var c = pixels.shape[0]
        let want = codec.config.channels
        // An alpha channel the model does not take (grey + alpha, RGB + alpha) is dropped.
        if (c == 2 || c == 4) && want != c && SignalPreparation.channelsFit(c - 1, model: want) {
            c -= 1
            pixels = Tensor(shape: [c] + Array(pixels.shape.dropFirst()), scalars: Array(pixels.scalars.prefix(c * pixels.count / (c + 1))))
            dropped = true
        }
        guard SignalPreparation.channelsFit(c, model: want) else {
            throw WallocError("the image has \(c) channel(s), the model takes \(want)")
        }
        let shape = pixels.shape
        // A grey image goes through a colour model as three equal channels (decoded to their mean).
        if c != want { pixels = SignalPreparation.replicateChannel(pixels, to: want) }
        SignalPreparation.imageToSignal(&pixels)
        // At low settings the model may code a smaller image at a finer step (`rate.downscale`).
        if let plan = try downscalePlan(imageShape: shape) {
            let small = Self.shrink(consume pixels, to: plan.downscaling)
            var file = try plan.coder.compress(prepared: small, original: shape, bitDepth: bitDepth, level: .identity, sampleRate: 0)
            file.header.quality = quality
            file.header.downscaling = plan.downscaling
            return (file, dropped)
        }
        // The signal is handed over (`consume`): padding copies it, and the unpadded copy is freed
        // then, not after encoding (an 8000 x 6000 photo would otherwise hold 576 MB more).
        return (try compress(prepared: consume pixels, original: shape, bitDepth: bitDepth, level: .identity, sampleRate: 0), dropped)
    }

    /// An image signal shrunk to a downscaled file's coded size (triangle filter).
    static func shrink(_ x: consuming Tensor, to d: WLCHeader.Downscaling) -> Tensor {
        Resize.resample(x, height: d.size[0], width: d.size[1], filter: .triangle)
    }

    /// The integer latents a `.wlc` file of an image holds, from its signal (`[C, H, W]` in
    /// [-0.5, 0.5], the model's channels): `fileLatents(ofSignal:)` of the image, or of the image
    /// shrunk as `compress(image:)` shrinks it at a setting the model downscales.
    public func fileLatents(ofImageSignal x: Tensor) throws -> Tensor {
        guard x.rank == 3, let plan = try downscalePlan(imageShape: x.shape) else { return try fileLatents(ofSignal: x) }
        return try plan.coder.fileLatents(ofSignal: Self.shrink(x, to: plan.downscaling))
    }

    /// The shape of the image a file of an image of `[C, H, W]` codes: the downscaled size at a
    /// setting the model downscales, else `shape`.
    public func codedShape(imageShape shape: [Int]) throws -> [Int] {
        guard let plan = try downscalePlan(imageShape: shape) else { return shape }
        return [shape[0]] + plan.downscaling.size
    }

    /// How an image of `[C, H, W]` is coded at this setting when the model downscales there
    /// (`RateConfig.downscale`): the compressor at the coded quality and the header's record of
    /// it; nil to code the image as it is (no rule, or a coded side under 32 pixels).
    public func downscalePlan(imageShape shape: [Int]) throws -> (coder: Compressor, downscaling: WLCHeader.Downscaling)? {
        guard downscales, codec.modality == .image, shape.count == 3, let q = quality,
              let (rule, coded) = codec.config.rate?.downscaling(quality: q) else { return nil }
        let size = shape.dropFirst().map(rule.size)
        guard size.allSatisfy({ $0 >= RateConfig.Downscale.minimumSide }) else { return nil }
        return (try withQuality(coded), .init(quality: coded, size: size))
    }

    /// Compresses audio samples (any level; DC is removed and the peak scaled to 0.5).
    public func compress(audio: Audio) throws -> WLCFile {
        guard codec.modality == .audio else { throw WallocError("this model codes images, not audio") }
        let want = codec.config.channels, c = audio.samples.shape[0]
        guard SignalPreparation.channelsFit(c, model: want) else {
            throw WallocError("the audio has \(c) channel(s), the model takes \(want)")
        }
        let level = SignalPreparation.audioLevel(of: audio.samples)
        var signal = SignalPreparation.normalize(audio.samples, level)
        // Mono goes through a stereo model as two equal channels (decoded to their mean).
        if c != want { signal = SignalPreparation.replicateChannel(signal, to: want) }
        return try compress(prepared: signal, original: audio.samples.shape, bitDepth: audio.bitDepth ?? 16, level: level,
                            sampleRate: audio.sampleRate)
    }

    /// Compresses a raw signal (`[C, H, W]` / `[C, L]`, values in [-0.5, 0.5]) as given.
    public func compress(signal: Tensor) throws -> WLCFile {
        try compress(prepared: signal, original: signal.shape, bitDepth: 0, level: .identity, sampleRate: 0)
    }

    func compress(prepared x: consuming Tensor, original: [Int], bitDepth: Int, level: AudioLevel, sampleRate: Int) throws -> WLCFile {
        let (latents, padding) = try preparedLatents(consume x)
        return try package(latents: latents, original: original, padding: padding, bitDepth: bitDepth, level: level,
                           sampleRate: sampleRate)
    }

    /// The integer latents a `.wlc` file of a prepared signal holds, without entropy coding: the
    /// signal (`[C, H, W]` image values in [-0.5, 0.5], or level-normalised `[C, L]` audio, as
    /// `compress(signal:)` takes them) is padded (`pad`) and encoded and quantised exactly as
    /// `compress` does, so the result equals `latents(of:)` of that file. Never downscaled, as
    /// `compress(signal:)`; `fileLatents(ofImageSignal:)` gives an image file's latents.
    public func fileLatents(ofSignal x: Tensor) throws -> Tensor { try preparedLatents(x).latents }

    /// Pads a signal (`[C, H, W]` or `[C, L]`) the way files are made: images of a model with
    /// `smooth_margin` get that smooth periodic margin (`SignalPreparation.padSmooth`), everything
    /// else (and reference checkpoints) the reference's reflect padding to a multiple of 2^J.
    public func pad(_ x: Tensor) -> (Tensor, Padding) {
        let f = codec.config.downsampling
        if let margin = smoothMargin(rank: x.rank) { return SignalPreparation.padSmooth(x, multiple: f, margin: margin) }
        return SignalPreparation.padToMultiple(x, multiple: f)
    }

    /// The shape `pad` gives a signal of shape `shape`.
    public func paddedShape(_ shape: [Int]) -> [Int] {
        let margin = smoothMargin(rank: shape.count) ?? 0
        return [shape[0]] + shape.dropFirst().map { SignalPreparation.paddedSize($0, multiple: codec.config.downsampling, margin: margin) }
    }

    /// The smooth margin `pad` gives a signal of this rank: the model's, for images.
    func smoothMargin(rank: Int) -> Int? { codec.modality == .image && rank == 3 ? codec.config.smoothMargin : nil }

    /// Checks, pads and encodes a prepared signal the way files are made.
    func preparedLatents(_ x: consuming Tensor) throws -> (latents: Tensor, padding: Padding) {
        let rank = codec.modality == .image ? 3 : 2
        guard x.rank == rank, x.shape.allSatisfy({ $0 > 0 }) else {
            throw WallocError("expected a signal of rank \(rank) with non-zero sizes, got \(x.shape)")
        }
        if let bad = x.scalars.first(where: { !$0.isFinite }) { throw WallocError("the signal contains a non-finite value (\(bad))") }
        guard x.shape[0] == codec.config.channels else {
            throw WallocError("the signal has \(x.shape[0]) channel(s), the model takes \(codec.config.channels)")
        }
        let (padded, padding) = pad(x)
        _ = consume x  // the caller's unpadded signal, freed here when it was handed over
        let latents = try fileLatents { rounded in
            codec.modality == .image ? try codec.encodeTiled(padded, rounded: rounded)
                                     : try codec.encodeStreaming(TensorSource(padded), rounded: rounded)
        }
        return (latents, padding)
    }

    /// The integer latents a file holds, from `encode(rounded:)`: the codec's own rounding, or,
    /// when the model sets `rate.rd_lambda`, its real-valued latents through rate-distortion
    /// optimised quantisation (the encoder's `latent_dim` channels; an audio model's envelope
    /// channels are rounded plainly).
    func fileLatents(_ encode: (_ rounded: Bool) throws -> Tensor) throws -> Tensor {
        guard let rate = codec.config.rate, rate.rdLambda > 0 else { return try encode(true) }
        return try RateDistortionQuantizer.quantize(try encode(false), bits: codec.config.latentBits, lambda: rate.rdLambda,
                                                    channels: codec.config.latentDim, initialDeadzone: rate.deadzone)
    }

    /// Entropy-codes latents and wraps them with the header that undoes the preparation.
    func package(latents: Tensor, original: [Int], padding: Padding, bitDepth: Int, level: AudioLevel,
                 sampleRate: Int) throws -> WLCFile {
        let bits = codec.config.latentBits
        let payload: Data
        switch coding {
        case .rans: payload = try LatentCoder.encode(latents, bits: bits, defaults: entropyModel)
        case .webp: payload = try LatentImage.encode(latents, bits: bits, format: .webp)
        case .png: payload = try LatentImage.encode(latents, bits: bits, format: .png)
        }
        let header = WLCHeader(fingerprint: Array(fingerprint.prefix(WLCFile.fingerprintLength)), modelName: name,
                               modality: codec.modality == .image ? .image : .audio, originalShape: original,
                               sampleRate: sampleRate, bitDepth: bitDepth, paddingBefore: padding.before,
                               paddingAfter: padding.after, gain: level.gain, offset: level.offset,
                               latentShape: latents.shape, latentBits: bits, coding: coding, quality: quality)
        return WLCFile(header: header, payload: payload)
    }

    // MARK: decompression

    /// Checks a file's header against this model and decodes its integer latents.
    public func latents(of file: WLCFile) throws -> Tensor {
        let h = file.header
        try h.checkModel(fingerprint: fingerprint, name: name)
        try checkQuality(of: h)
        guard h.latentBits == codec.config.latentBits else { throw WallocError("the file's latents are \(h.latentBits)-bit, the model's \(codec.config.latentBits)-bit") }
        // The header's shapes must agree with each other and with the model before decoding.
        let spatial = h.codedSize
        let paddedSize = zip(spatial, zip(h.paddingBefore, h.paddingAfter)).map { $0 + $1.0 + $1.1 }
        guard SignalPreparation.channelsFit(h.originalShape[0], model: codec.config.channels),
              paddedSize.allSatisfy({ $0 % codec.config.downsampling == 0 }),
              codec.latentShape(signalSize: paddedSize) == h.latentShape else {
            throw WallocError("corrupt .wlc file: shapes \(h.originalShape) (padding \(h.paddingBefore)/\(h.paddingAfter)) and latents \(h.latentShape) do not fit this model")
        }
        switch h.coding {
        case .rans: return try LatentCoder.decode(file.payload, shape: h.latentShape, bits: h.latentBits, defaults: entropyModel)
        case .webp, .png: return try LatentImage.decode(file.payload, shape: h.latentShape, bits: h.latentBits)
        }
    }

    /// A variable-rate model's file must carry a quality setting, a fixed-rate model's none.
    func checkQuality(of h: WLCHeader) throws {
        switch (codec.config.isVariableRate, h.quality) {
        case (true, nil): throw WallocError("corrupt .wlc file: no quality setting for the variable-rate model '\(name)'")
        case (false, let q?): throw WallocError("corrupt .wlc file: quality \(q) for the fixed-rate model '\(name)'")
        default: break
        }
    }

    /// The codec set to decode a file's latents: at the quality the file was encoded at.
    public func codec(for h: WLCHeader) throws -> Codec {
        guard let q = h.decodingQuality, codec.config.isVariableRate else { return codec }
        return try codec.withQuality(q)
    }

    /// Decodes a `.wlc` file made with this model (whole, in memory; see
    /// `decompress(_:toAudioFile:)` for long audio). Images report the fraction of decoder tiles
    /// done to `progress`.
    public func decompress(_ file: WLCFile, progress: ((Double) -> Void)? = nil) throws -> DecodedSignal {
        let h = file.header
        var latents = try latents(of: file)
        let codec = try codec(for: h)
        let x: Tensor
        if codec.modality == .image {
            // The latents are released before the wavelet synthesis (peak memory of large images).
            // Cropped as the synthesis writes it (no padded copy of a large image).
            x = try codec.decodeTiled(releasing: &latents, tile: tile, overlap: overlap,
                                      crop: Padding(before: h.paddingBefore, after: h.paddingAfter), progress: progress)
        } else {
            var parts = [Tensor]()
            try codec.decodeStreaming(latents) { _, piece in parts.append(piece) }
            x = Tensor.concatenateLastAxis(parts)
        }
        // Images are cropped already; audio here.
        var cropped = codec.modality == .image ? x : SignalPreparation.crop(x, padding: Padding(before: h.paddingBefore, after: h.paddingAfter))
        if h.originalShape[0] != cropped.shape[0] { cropped = SignalPreparation.averageChannels(cropped) }
        // A downscaled image is enlarged back to its original size.
        if h.downscaling != nil {
            cropped = Resize.resample(cropped, height: h.originalShape[1], width: h.originalShape[2], filter: .lanczos)
        }
        if h.bitDepth == 0 { return .signal(cropped) }
        switch h.modality {
        case .image: return .image(pixels: SignalPreparation.signalToImage(cropped), bitDepth: h.bitDepth)
        case .audio:
            let samples = SignalPreparation.denormalize(cropped, AudioLevel(gain: h.gain, offset: h.offset))
            return .audio(samples: samples, sampleRate: h.sampleRate, bitDepth: h.bitDepth)
        }
    }
}
