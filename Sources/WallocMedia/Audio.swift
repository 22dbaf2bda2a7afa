import CSndFile
import Foundation
import WallocTensor

/// The audio file formats `AudioIO` writes (reading accepts anything libsndfile opens).
public enum AudioFormat: String, Sendable, CaseIterable {
    case wav, flac, ogg

    /// The format a file name extension stands for (`wav`, `flac`, `ogg`/`oga`), case-insensitive.
    public init(fileExtension: String) throws {
        var ext = fileExtension.lowercased()
        if ext.hasPrefix(".") { ext.removeFirst() }
        switch ext {
        case "wav", "wave": self = .wav
        case "flac": self = .flac
        case "ogg", "oga": self = .ogg
        default:
            throw WallocError("unknown audio file extension '\(fileExtension)' (expected .wav, .flac or .ogg)")
        }
    }
}

/// Limits on audio handled in one piece.
public enum AudioLimits {
    /// The most samples (frames × channels, 4 GiB of float32) `AudioIO.read` or one
    /// `AudioReader.read` returns; stream longer files in pieces.
    public static let maxSamples = 1 << 30
    /// The most channels (libsndfile's limit).
    public static let maxChannels = 1024
}

/// Decoded audio.
public struct Audio: Sendable {
    /// Samples as `[C, L]` float32. Integer files map to [-1, 1) by value / 2^(bits-1); float
    /// and lossy (Vorbis, ...) files are passed through as decoded.
    public var samples: Tensor
    /// Frames per second.
    public var sampleRate: Int
    /// Bits per sample of the file it came from (nil when not read from a file).
    public var bitDepth: Int?

    public init(samples: Tensor, sampleRate: Int, bitDepth: Int? = nil) {
        self.samples = samples
        self.sampleRate = sampleRate
        self.bitDepth = bitDepth
    }

    /// The number of channels (C).
    public var channels: Int { samples.shape[0] }
    /// The number of frames (L).
    public var frames: Int { samples.shape[1] }
}

/// Whole-file audio reading and writing through libsndfile (WAV, FLAC, OGG/Vorbis and more).
public enum AudioIO {
    /// Reads a whole audio file as `[C, L]` float32.
    public static func read(_ url: URL) throws -> Audio {
        let reader = try AudioReader(url: url)
        let (samples, overflow) = reader.frames.multipliedReportingOverflow(by: reader.channels)
        guard !overflow, samples <= AudioLimits.maxSamples else {
            throw WallocError("\(url.path): \(reader.frames) frames x \(reader.channels) channels is more than \(AudioLimits.maxSamples) samples; read it in pieces with AudioReader")
        }
        return Audio(samples: try reader.read(frames: reader.frames), sampleRate: reader.sampleRate, bitDepth: reader.bitDepth)
    }

    /// Writes `[C, L]` (or `[L]`, mono) float32 samples atomically (temporary file and rename).
    ///
    /// Integer encodings round `x * 2^(bits-1)` to nearest and clamp to the integer range.
    /// - Parameters:
    ///   - format: defaults to the one the file extension names.
    ///   - bitDepth: WAV: 16, 24 or 32 (float, stored unclamped); FLAC: 16 or 24; ignored for OGG.
    ///   - quality: OGG/Vorbis quality 0...1 (libsndfile's default when nil).
    public static func write(_ samples: Tensor, sampleRate: Int, to url: URL, format: AudioFormat? = nil,
                             bitDepth: Int = 16, quality: Double? = nil) throws {
        guard samples.rank == 1 || samples.rank == 2 else {
            throw WallocError("\(url.path): audio samples must have shape [C, L] or [L], got \(samples.shape)")
        }
        let channels = samples.rank == 1 ? 1 : samples.shape[0]
        let writer = try AudioWriter(url: url, channels: channels, sampleRate: sampleRate, format: format,
                                     bitDepth: bitDepth, quality: quality)
        try writer.write(samples)
        try writer.finish()
    }
}

/// libsndfile helpers shared by the reader and writer.
enum SndFile {
    /// Frames converted per libsndfile call (bounded scratch memory).
    static let blockSamples = 1 << 16

    /// The message for the last failed `sf_open`.
    static func openError() -> String {
        String(cString: sf_error_number(sf_error(nil)))
    }

    /// Bits per sample of an encoding (lossy codecs count as 16).
    static func bitDepth(_ format: Int32) -> Int {
        switch Int(format) & SF_FORMAT_SUBMASK {
        case SF_FORMAT_PCM_S8, SF_FORMAT_PCM_U8: return 8
        case SF_FORMAT_PCM_24: return 24
        case SF_FORMAT_PCM_32, SF_FORMAT_FLOAT, SF_FORMAT_DOUBLE: return 32
        default: return 16
        }
    }

    /// Whether samples of this encoding are read as floats (else as full-range ints).
    static func isFloatEncoding(_ format: Int32) -> Bool {
        let subtype = Int(format) & SF_FORMAT_SUBMASK
        return [SF_FORMAT_FLOAT, SF_FORMAT_DOUBLE, SF_FORMAT_VORBIS, SF_FORMAT_OPUS,
                SF_FORMAT_MPEG_LAYER_I, SF_FORMAT_MPEG_LAYER_II, SF_FORMAT_MPEG_LAYER_III].contains(subtype)
    }
}
