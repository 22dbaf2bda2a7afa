import CSndFile
import Foundation
import WallocIO
import WallocTensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads an audio file in pieces, for long recordings with bounded memory.
public final class AudioReader {
    /// The file being read.
    public let url: URL
    /// Channels per frame.
    public let channels: Int
    /// Frames per second.
    public let sampleRate: Int
    /// Frames in the file.
    public let frames: Int
    /// The next frame `read(frames:)` returns.
    public private(set) var position = 0
    /// Bits per sample of the file's encoding (8, 16, 24 or 32; 32 for float; 16 for lossy codecs).
    public let bitDepth: Int

    private var handle: OpaquePointer?
    /// The file's size: a header's frame count is trusted for one allocation only up to
    /// `trustedSamplesPerByte` samples per byte of file.
    private let fileBytes: Int
    /// Far above what lossless and lossy audio codecs reach on real recordings (FLAC about 2-4,
    /// Vorbis and Opus about 10-30); only near-silence compresses further.
    static let trustedSamplesPerByte = 64
    private let readsFloat: Bool
    private var scratchInt: [Int32] = []
    private var scratchFloat: [Float] = []

    /// Opens an audio file (any format libsndfile reads).
    public init(url: URL) throws {
        self.url = url
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw WallocError("\(url.path): no such file")
        }
        guard !isDirectory.boolValue else { throw WallocError("\(url.path): is a directory, expected a file") }
        var info = SF_INFO()
        guard let handle = sf_open(url.path, Int32(SFM_READ), &info) else {
            throw WallocError("\(url.path): cannot read audio: \(SndFile.openError())")
        }
        guard info.channels >= 1, Int(info.channels) <= AudioLimits.maxChannels, info.samplerate >= 1,
              info.frames >= 0, info.frames < 1 << 48 else {
            sf_close(handle)
            throw WallocError("\(url.path): invalid audio header (\(info.channels) channels, \(info.samplerate) Hz, \(info.frames) frames)")
        }
        channels = Int(info.channels)
        sampleRate = Int(info.samplerate)
        frames = Int(info.frames)
        fileBytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        readsFloat = SndFile.isFloatEncoding(info.format)
        bitDepth = SndFile.bitDepth(info.format)
        self.handle = handle
    }

    deinit {
        if let handle { sf_close(handle) }
    }

    /// Reads up to `count` frames as `[C, n]`: n = count except near the end, 0 at the end.
    /// A file that ends before its header says (truncated) raises an error.
    public func read(frames count: Int) throws -> Tensor {
        guard let handle else { throw WallocError("\(url.path): reader is closed") }
        guard count >= 0 else { throw WallocError("\(url.path): cannot read \(count) frames") }
        let n = min(count, frames - position)
        guard n <= AudioLimits.maxSamples / channels else {
            throw WallocError("\(url.path): \(n) frames x \(channels) channels is more than \(AudioLimits.maxSamples) samples in one read")
        }
        // A header can claim far more frames than the file holds (a 42-byte FLAC file claimed
        // 800 million samples; found by fuzzing). Beyond what the file's size makes plausible,
        // read in pieces, so memory follows what is really decoded and a short file fails early.
        let piece = max(1, (1 << 22) / channels)
        if n > piece, n * channels > Self.trustedSamplesPerByte * fileBytes {
            return try readInPieces(n, piece: piece)
        }
        let block = max(1, SndFile.blockSamples / channels)
        var out = Tensor(uninitialized: [channels, n])
        try out.withUnsafeMutableBufferPointer { dst in
            var done = 0
            while done < n {
                let want = min(block, n - done)
                let got: Int
                if readsFloat {
                    if scratchFloat.count < want * channels { scratchFloat = [Float](repeating: 0, count: block * channels) }
                    got = scratchFloat.withUnsafeMutableBufferPointer { buffer in
                        let got = Int(sf_readf_float(handle, buffer.baseAddress, sf_count_t(want)))
                        SampleConversion.deinterleave(UnsafePointer(buffer.baseAddress!), pixels: max(0, got), channels: channels,
                                                      into: dst.baseAddress!, planeStride: n, offset: done)
                        return got
                    }
                } else {
                    if scratchInt.count < want * channels { scratchInt = [Int32](repeating: 0, count: block * channels) }
                    got = scratchInt.withUnsafeMutableBufferPointer { buffer in
                        let got = Int(sf_readf_int(handle, buffer.baseAddress, sf_count_t(want)))
                        SampleConversion.deinterleave(buffer.baseAddress!, frames: max(0, got), channels: channels,
                                                      scale: 1 / 2_147_483_648, into: dst.baseAddress!,
                                                      rowStride: n, offset: done)
                        return got
                    }
                }
                guard got == want else {
                    let reason = sf_error(handle) != 0 ? String(cString: sf_strerror(handle)) : "truncated file"
                    throw WallocError("\(url.path): cannot read audio after frame \(position + done + max(0, got)) of \(frames): \(reason)")
                }
                done += got
            }
        }
        position += n
        return out
    }

    /// `read(frames: n)` as pieces of `piece` frames, joined once all of them were read.
    private func readInPieces(_ n: Int, piece: Int) throws -> Tensor {
        var parts = [Tensor]()
        var done = 0
        while done < n {
            let part = try read(frames: min(piece, n - done))
            parts.append(part)
            done += part.shape[1]
        }
        var out = Tensor(uninitialized: [channels, n])
        out.withUnsafeMutableBufferPointer { dst in
            var offset = 0
            for part in parts {
                let m = part.shape[1]
                part.withUnsafeBufferPointer { src in
                    for c in 0..<channels { (dst.baseAddress! + c * n + offset).update(from: src.baseAddress! + c * m, count: m) }
                }
                offset += m
            }
        }
        return out
    }

    /// Moves to frame `frame` (0...frames).
    public func seek(frame: Int) throws {
        guard let handle else { throw WallocError("\(url.path): reader is closed") }
        guard frame >= 0, frame <= frames else {
            throw WallocError("\(url.path): cannot seek to frame \(frame) of \(frames)")
        }
        if frame == frames { // some decoders (Vorbis) cannot seek to the very end; nothing is left to read
            position = frame
            return
        }
        guard sf_seek(handle, sf_count_t(frame), SEEK_SET) == sf_count_t(frame) else {
            throw WallocError("\(url.path): cannot seek to frame \(frame): \(String(cString: sf_strerror(handle)))")
        }
        position = frame
    }
}

/// Writes an audio file in pieces to a `PendingFile` that `finish()` puts into place; a writer
/// released without `finish()` (or a killed process) leaves nothing behind.
public final class AudioWriter {
    /// The file being written.
    public let url: URL
    /// Channels per frame.
    public let channels: Int
    /// Frames per second.
    public let sampleRate: Int
    /// The container and encoding family.
    public let format: AudioFormat
    /// Frames written so far.
    public private(set) var framesWritten = 0

    private var handle: OpaquePointer?
    private let pending: PendingFile
    private let integerBits: Int? // nil: float samples
    private var scratchInt: [Int32] = []
    private var scratchFloat: [Float] = []

    /// Starts writing. `format` defaults to the one the extension names; `bitDepth`: WAV 16, 24
    /// or 32 (float), FLAC 16 or 24, ignored for OGG; `quality` (0...1) applies to OGG only.
    public init(url: URL, channels: Int, sampleRate: Int, format: AudioFormat? = nil, bitDepth: Int = 16,
                quality: Double? = nil) throws {
        self.url = url
        let resolved: AudioFormat
        do {
            resolved = try format ?? AudioFormat(fileExtension: url.pathExtension)
        } catch let error as WallocError {
            throw WallocError("\(url.path): \(error.message)")
        }
        guard channels >= 1, channels <= AudioLimits.maxChannels else {
            throw WallocError("\(url.path): channel count must be 1-\(AudioLimits.maxChannels), got \(channels)")
        }
        guard sampleRate >= 1, sampleRate <= Int(Int32.max) else {
            throw WallocError("\(url.path): invalid sample rate \(sampleRate)")
        }
        let subtype: Int
        switch (resolved, bitDepth) {
        case (.wav, 16), (.flac, 16): subtype = SF_FORMAT_PCM_16; integerBits = 16
        case (.wav, 24), (.flac, 24): subtype = SF_FORMAT_PCM_24; integerBits = 24
        case (.wav, 32): subtype = SF_FORMAT_FLOAT; integerBits = nil
        case (.ogg, _): subtype = SF_FORMAT_VORBIS; integerBits = nil
        default:
            throw WallocError("\(url.path): \(resolved.rawValue) cannot hold \(bitDepth)-bit samples (WAV: 16, 24, 32 float; FLAC: 16, 24)")
        }
        if let quality, resolved != .ogg || !(0...1).contains(quality) {
            throw WallocError("\(url.path): quality \(quality) applies to OGG only, in 0...1")
        }
        let major = switch resolved {
        case .wav: SF_FORMAT_WAV
        case .flac: SF_FORMAT_FLAC
        case .ogg: SF_FORMAT_OGG
        }
        var info = SF_INFO()
        info.samplerate = Int32(sampleRate)
        info.channels = Int32(channels)
        info.format = Int32(major | subtype)
        guard sf_format_check(&info) == Int32(SF_TRUE) else {
            throw WallocError("\(url.path): \(resolved.rawValue) cannot hold \(channels) channels at \(sampleRate) Hz")
        }
        pending = try PendingFile(for: url)
        guard let handle = sf_open(pending.path.path, Int32(SFM_WRITE), &info) else {
            let reason = SndFile.openError()
            pending.discard()
            throw WallocError("\(url.path): cannot write \(resolved.rawValue) (\(channels) channels, \(sampleRate) Hz): \(reason)")
        }
        self.handle = handle
        self.channels = channels
        self.sampleRate = sampleRate
        self.format = resolved
        if var quality {
            sf_command(handle, Int32(SFC_SET_VBR_ENCODING_QUALITY), &quality, Int32(MemoryLayout<Double>.size))
        }
    }

    deinit {
        if let handle {
            sf_close(handle)
            pending.discard()
        }
    }

    /// Appends `[C, n]` frames (or `[n]` for mono).
    public func write(_ chunk: Tensor) throws {
        guard let handle else { throw WallocError("\(url.path): writer is already finished") }
        let n: Int
        if chunk.rank == 2 && chunk.shape[0] == channels {
            n = chunk.shape[1]
        } else if chunk.rank == 1 && channels == 1 {
            n = chunk.shape[0]
        } else {
            throw WallocError("\(url.path): expected samples of shape [\(channels), L], got \(chunk.shape)")
        }
        let block = max(1, SndFile.blockSamples / channels)
        try chunk.withUnsafeBufferPointer { src in
            var done = 0
            while done < n {
                let want = min(block, n - done)
                let written: Int
                if let bits = integerBits {
                    if scratchInt.count < want * channels { scratchInt = [Int32](repeating: 0, count: block * channels) }
                    written = scratchInt.withUnsafeMutableBufferPointer { buffer in
                        SampleConversion.interleave(src.baseAddress!, rowStride: n, offset: done, frames: want,
                                                    channels: channels, bits: bits, into: buffer.baseAddress!)
                        return Int(sf_writef_int(handle, buffer.baseAddress, sf_count_t(want)))
                    }
                } else {
                    if scratchFloat.count < want * channels { scratchFloat = [Float](repeating: 0, count: block * channels) }
                    written = scratchFloat.withUnsafeMutableBufferPointer { buffer in
                        SampleConversion.interleave(src.baseAddress!, planeStride: n, offset: done, pixels: want,
                                                    channels: channels, into: buffer.baseAddress!)
                        return Int(sf_writef_float(handle, buffer.baseAddress, sf_count_t(want)))
                    }
                }
                guard written == want else {
                    throw WallocError("\(url.path): cannot write audio: \(String(cString: sf_strerror(handle)))")
                }
                done += want
                framesWritten += want
            }
        }
    }

    /// Completes the file and renames it into place.
    public func finish() throws {
        guard let handle else { throw WallocError("\(url.path): writer is already finished") }
        self.handle = nil
        let status = sf_close(handle)
        guard status == 0 else {
            pending.discard()
            throw WallocError("\(url.path): cannot finish audio file: \(String(cString: sf_error_number(status)))")
        }
        try pending.commit()
    }
}
