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
    public let codec: Codec
    /// A name for the model, stored in bitstreams (the model directory's name by default).
    public let name: String
    /// Default entropy tables shipped with the model (`entropy.json`), if any.
    public let entropyModel: LatentModel?
    /// How the latents are coded when compressing (rANS by default).
    public var coding: WLCHeader.Coding = .rans
    /// Images whose latent grid exceeds `tile` x `tile` decode in tiles with `overlap` positions of
    /// context (`Codec.decodeTiled`).
    public var tile = Codec.defaultDecodeTile, overlap = Codec.defaultDecodeOverlap
    /// The model's fingerprint (computed once: it hashes every weight).
    public let fingerprint: [UInt8]

    public static let entropyFileName = "entropy.json"

    public init(codec: Codec, name: String, entropyModel: LatentModel? = nil) {
        self.codec = codec
        self.name = name
        self.entropyModel = entropyModel
        fingerprint = codec.fingerprint
    }

    /// Loads a model directory, with its default entropy tables when it has them.
    public static func load(modelDirectory url: URL) throws -> Compressor {
        let codec = try Codec.load(from: url)
        var model: LatentModel?
        let entropyURL = url.appendingPathComponent(entropyFileName)
        if FileManager.default.fileExists(atPath: entropyURL.path) {
            do {
                model = try JSONDecoder().decode(LatentModel.self, from: try FileIO.read(entropyURL))
            } catch {
                throw WallocError("\(entropyURL.path): not a valid entropy model (\(error))")
            }
        }
        return Compressor(codec: codec, name: url.standardizedFileURL.lastPathComponent, entropyModel: model)
    }

    // MARK: compression

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
        let c = pixels.shape[0], want = codec.config.channels
        if c == want + 1 && (want == 1 || want == 3) {
            pixels = Tensor(shape: [want] + Array(pixels.shape.dropFirst()), scalars: Array(pixels.scalars.prefix(want * pixels.count / c)))
            dropped = true
        } else if c != want {
            throw WallocError("the image has \(c) channel(s), the model takes \(want)")
        }
        let shape = pixels.shape
        SignalPreparation.imageToSignal(&pixels)
        return (try compress(prepared: pixels, original: shape, bitDepth: bitDepth, level: .identity, sampleRate: 0), dropped)
    }

    /// Compresses audio samples (any level; DC is removed and the peak scaled to 0.5).
    public func compress(audio: Audio) throws -> WLCFile {
        guard codec.modality == .audio else { throw WallocError("this model codes images, not audio") }
        let want = codec.config.channels
        guard audio.samples.shape[0] == want else {
            throw WallocError("the audio has \(audio.samples.shape[0]) channel(s), the model takes \(want)")
        }
        let level = SignalPreparation.audioLevel(of: audio.samples)
        let signal = SignalPreparation.normalize(audio.samples, level)
        return try compress(prepared: signal, original: audio.samples.shape, bitDepth: audio.bitDepth ?? 16, level: level,
                            sampleRate: audio.sampleRate)
    }

    /// Compresses a raw signal (`[C, H, W]` / `[C, L]`, values in [-0.5, 0.5]) as given.
    public func compress(signal: Tensor) throws -> WLCFile {
        try compress(prepared: signal, original: signal.shape, bitDepth: 0, level: .identity, sampleRate: 0)
    }

    func compress(prepared x: Tensor, original: [Int], bitDepth: Int, level: AudioLevel, sampleRate: Int) throws -> WLCFile {
        let rank = codec.modality == .image ? 3 : 2
        guard x.rank == rank, x.shape.allSatisfy({ $0 > 0 }) else {
            throw WallocError("expected a signal of rank \(rank) with non-zero sizes, got \(x.shape)")
        }
        if let bad = x.scalars.first(where: { !$0.isFinite }) { throw WallocError("the signal contains a non-finite value (\(bad))") }
        let (padded, padding) = SignalPreparation.padToMultiple(x, multiple: codec.config.downsampling)
        let latents = codec.modality == .image ? try codec.encodeTiled(padded) : try codec.encodeStreaming(TensorSource(padded))
        return try package(latents: latents, original: original, padding: padding, bitDepth: bitDepth, level: level,
                           sampleRate: sampleRate)
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
        let header = WLCHeader(fingerprint: fingerprint, modelName: name,
                               modality: codec.modality == .image ? .image : .audio, originalShape: original,
                               sampleRate: sampleRate, bitDepth: bitDepth, paddingBefore: padding.before,
                               paddingAfter: padding.after, gain: level.gain, offset: level.offset,
                               latentShape: latents.shape, latentBits: bits, coding: coding)
        return WLCFile(header: header, payload: payload)
    }

    // MARK: decompression

    /// Checks a file's header against this model and decodes its integer latents.
    public func latents(of file: WLCFile) throws -> Tensor {
        let h = file.header
        try h.checkModel(fingerprint: fingerprint, name: name)
        guard h.latentBits == codec.config.latentBits else { throw WallocError("the file's latents are \(h.latentBits)-bit, the model's \(codec.config.latentBits)-bit") }
        // The header's shapes must agree with each other and with the model before decoding.
        let spatial = Array(h.originalShape.dropFirst())
        let paddedSize = zip(spatial, zip(h.paddingBefore, h.paddingAfter)).map { $0 + $1.0 + $1.1 }
        guard h.originalShape[0] == codec.config.channels,
              paddedSize.allSatisfy({ $0 % codec.config.downsampling == 0 }),
              codec.latentShape(signalSize: paddedSize) == h.latentShape else {
            throw WallocError("corrupt .wlc file: shapes \(h.originalShape) (padding \(h.paddingBefore)/\(h.paddingAfter)) and latents \(h.latentShape) do not fit this model")
        }
        switch h.coding {
        case .rans: return try LatentCoder.decode(file.payload, shape: h.latentShape, bits: h.latentBits, defaults: entropyModel)
        case .webp, .png: return try LatentImage.decode(file.payload, shape: h.latentShape, bits: h.latentBits)
        }
    }

    /// Decodes a `.wlc` file made with this model (whole, in memory; see
    /// `decompress(_:toAudioFile:)` for long audio).
    public func decompress(_ file: WLCFile) throws -> DecodedSignal {
        let h = file.header
        let latents = try latents(of: file)
        let x: Tensor
        if codec.modality == .image {
            x = try codec.decodeTiled(latents, tile: tile, overlap: overlap)
        } else {
            var parts = [Tensor]()
            try codec.decodeStreaming(latents) { _, piece in parts.append(piece) }
            x = Tensor.concatenateLastAxis(parts)
        }
        let cropped = SignalPreparation.crop(x, padding: Padding(before: h.paddingBefore, after: h.paddingAfter))
        if h.bitDepth == 0 { return .signal(cropped) }
        switch h.modality {
        case .image: return .image(pixels: SignalPreparation.signalToImage(cropped), bitDepth: h.bitDepth)
        case .audio:
            let samples = SignalPreparation.denormalize(cropped, AudioLevel(gain: h.gain, offset: h.offset))
            return .audio(samples: samples, sampleRate: h.sampleRate, bitDepth: h.bitDepth)
        }
    }
}
