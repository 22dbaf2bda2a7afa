import Foundation
import WallocTensor
import WallocModels
import WallocMedia
import WallocCoding

/// The prepared signal of an audio file (level-normalised, reflect-padded to a multiple of
/// 2^J), read from the file on demand: the codec's periodic indices wrap around the padded
/// length, the padding mirrors the file's ends.
///
/// Reads go forward only (some decoders, Vorbis among them, cannot seek back precisely): the
/// file's first and last `edge` frames, which the wrap-around and the mirrored padding need out of
/// order, are read once up front; the rest is read in order, keeping the last window so the
/// overlap between consecutive pieces is not read twice.
final class AudioFileSource: SignalSource {
    let reader: AudioReader
    let level: AudioLevel
    let padding: Padding
    /// The model's channels; a mono file is repeated into each.
    let channels: Int
    let length: Int
    private let head: Tensor, tail: Tensor
    private var window = Tensor(zeros: [1, 0])
    private var windowStart = 0

    init(reader: AudioReader, level: AudioLevel, multiple: Int, edge: Int, channels: Int) throws {
        self.reader = reader
        self.level = level
        self.channels = channels
        let total = (multiple - reader.frames % multiple) % multiple
        padding = Padding(before: [total / 2], after: [total - total / 2])
        length = reader.frames + total
        let n = min(reader.frames, edge + total)
        try reader.seek(frame: 0)
        head = try reader.read(frames: n)
        do {
            try reader.seek(frame: reader.frames - n)
        } catch {
            // Decoders that cannot seek there: read up to it.
            try reader.seek(frame: 0)
            while reader.position < reader.frames - n { _ = try reader.read(frames: min(1 << 18, reader.frames - n - reader.position)) }
        }
        tail = try reader.read(frames: n)
        try reader.seek(frame: 0)
        window = Tensor(zeros: [reader.channels, 0])
    }

    func read(_ range: Range<Int>) throws -> Tensor {
        // Split where the periodic index wraps, so each piece maps to one window of the file.
        var parts = [Tensor]()
        var i = range.lowerBound
        while i < range.upperBound {
            let wrapped = ((i % length) + length) % length
            let n = min(range.upperBound - i, length - wrapped)
            parts.append(try readUnwrapped(wrapped..<(wrapped + n)))
            i += n
        }
        return Tensor.concatenateLastAxis(parts)
    }

    /// Padded-signal samples `range` (inside `0..<length`).
    private func readUnwrapped(_ range: Range<Int>) throws -> Tensor {
        let frames = reader.frames, before = padding.before[0]
        let sources = range.map { SignalPreparation.mirror($0 - before, frames) }
        let lo = sources.min()!, hi = sources.max()! + 1
        let (block, start) = try original(lo..<hi)
        let n = range.count, c = channels, w = block.shape[1], fileChannels = block.shape[0]
        var out = Tensor(uninitialized: [c, n])
        out.withUnsafeMutableBufferPointer { dst in
            block.withUnsafeBufferPointer { src in
                for ch in 0..<c {
                    let from = (ch % fileChannels) * w - start
                    for (k, s) in sources.enumerated() { dst[ch * n + k] = (src[from + s] - level.offset) * level.gain }
                }
            }
        }
        return out
    }

    /// A block of file frames covering `range`, and the frame its first column holds.
    private func original(_ range: Range<Int>) throws -> (Tensor, Int) {
        let frames = reader.frames
        if range.upperBound <= head.shape[1] { return (head, 0) }
        if range.lowerBound >= frames - tail.shape[1] { return (tail, frames - tail.shape[1]) }
        let windowEnd = windowStart + window.shape[1]
        if range.lowerBound < windowStart || range.lowerBound > windowEnd {
            // Out of order: start a new window here.
            try reader.seek(frame: range.lowerBound)
            window = try reader.read(frames: range.count)
            windowStart = range.lowerBound
            return (window, windowStart)
        }
        if range.upperBound > windowEnd {
            if reader.position != windowEnd { try reader.seek(frame: windowEnd) }
            let more = try reader.read(frames: range.upperBound - windowEnd)
            window = Tensor.concatenateLastAxis([window.lastAxis((range.lowerBound - windowStart)..<window.shape[1]), more])
            windowStart = range.lowerBound
        }
        return (window, windowStart)
    }
}

extension Compressor {
    /// Frames read per block when measuring a file's level.
    static let levelBlock = 1 << 18

    /// The level normalisation of an audio file (mean and peak), in one streaming pass; equal to
    /// `SignalPreparation.audioLevel` of the whole signal.
    static func audioLevel(of reader: AudioReader) throws -> AudioLevel {
        try reader.seek(frame: 0)
        var sum = 0.0
        var lo = Float.infinity, hi = -Float.infinity
        while reader.position < reader.frames {
            let block = try reader.read(frames: levelBlock)
            block.withUnsafeBufferPointer { b in
                for v in b { sum += Double(v); lo = min(lo, v); hi = max(hi, v) }
            }
        }
        let mean = Float(sum / Double(max(1, reader.frames * reader.channels)))
        let peak = reader.frames == 0 ? 0 : max(hi - mean, mean - lo)
        return AudioLevel(gain: 1 / (2 * (peak + 1e-8)), offset: mean)
    }

    /// Compresses an audio file without loading it whole: one pass measures its level, a second
    /// encodes it in pieces of `chunk` latent steps (the result equals `compress(audio:)`).
    /// `progress` receives the fraction done.
    public func compress(audioFile url: URL, chunk: Int = 4096, progress: ((Double) -> Void)? = nil) throws -> WLCFile {
        guard codec.modality == .audio else { throw WallocError("this model codes images, not audio") }
        let reader = try AudioReader(url: url)
        guard SignalPreparation.channelsFit(reader.channels, model: codec.config.channels) else {
            throw WallocError("the audio has \(reader.channels) channel(s), the model takes \(codec.config.channels)")
        }
        guard reader.frames > 0 else { throw WallocError("the audio file holds no samples") }
        let level = try Compressor.audioLevel(of: reader)
        let f = codec.config.downsampling
        let source = try AudioFileSource(reader: reader, level: level, multiple: f,
                                         edge: (codec.encoderRadius + Codec.waveletMargin + 2) * f, channels: codec.config.channels)
        let latents = try fileLatents { rounded in
            try codec.encodeStreaming(source, chunk: chunk, rounded: rounded) { done, total in progress?(Double(done) / Double(total)) }
        }
        return try package(latents: latents, original: [reader.channels, reader.frames], padding: source.padding,
                           bitDepth: reader.bitDepth, level: level, sampleRate: reader.sampleRate)
    }

    /// Decodes an audio `.wlc` file straight into an audio file (format from `url`'s extension),
    /// piece by piece; the output appears atomically when complete.
    public func decompress(_ file: WLCFile, toAudioFile url: URL, bitDepth: Int? = nil, chunk: Int = 4096,
                           progress: ((Double) -> Void)? = nil) throws {
        let h = file.header
        guard h.modality == .audio else { throw WallocError("this file holds an image, not audio") }
        let latents = try latents(of: file)
        let codec = try codec(for: h)
        let c = h.originalShape[0], frames = h.originalShape[1], before = h.paddingBefore[0]
        let level = AudioLevel(gain: h.gain, offset: h.offset)
        let depth = bitDepth ?? ([16, 24, 32].contains(h.bitDepth) ? h.bitDepth : 16)
        let format = try AudioFormat(fileExtension: url.pathExtension)
        let writer = try AudioWriter(url: url, channels: c, sampleRate: max(1, h.sampleRate), format: format,
                                     bitDepth: format == .flac ? min(depth, 24) : depth)
        let total = Double(frames + before)
        try codec.decodeStreaming(latents, chunk: chunk) { range, piece in
            let lo = max(range.lowerBound, before), hi = min(range.upperBound, before + frames)
            if lo < hi {
                var part = piece.lastAxis((lo - range.lowerBound)..<(hi - range.lowerBound))
                if part.shape[0] != c { part = SignalPreparation.averageChannels(part) }
                try writer.write(SignalPreparation.denormalize(part, level))
            }
            progress?(min(1, Double(range.upperBound) / total))
        }
        try writer.finish()
    }
}
