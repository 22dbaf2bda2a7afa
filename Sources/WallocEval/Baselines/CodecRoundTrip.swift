import Foundation
import WallocCoding
import WallocMedia
import WallocModels
import WallocPipeline
import WallocTensor

/// One codec at one setting as an encode-then-decode of a single signal, named `codec:setting`:
/// `jpeg:Q`, `webp:Q`, `avif:Q`, `jxl:Q` (images, quality 0-100 as in `ImageBaseline`),
/// `opus:KBPS`, `vorbis:Q` (audio, as in `AudioBaseline`) and `walloc:Q` (either, a variable-rate
/// model's quality setting, through real `.wlc` bytes). Used to build datasets of decoded inputs
/// (`walloc latents --signal --through`), the machine-perceptual-quality protocol.
public struct CodecRoundTrip: Sendable {
    /// `codec:setting`, normalised (`jpg:50` becomes `jpeg:50`).
    public let name: String
    let run: @Sendable (Tensor, Int) throws -> (decoded: Tensor, bytes: Int)

    /// Parses `spec` for a signal of `modality`; `compressor` codes `walloc:Q`.
    public init(_ spec: String, modality: Modality, compressor: Compressor) throws {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let setting = Int(parts[1]) else {
            throw WallocError("--through '\(spec)': expected CODEC:SETTING, for example jpeg:50, webp:40, avif:50, opus:24, walloc:45")
        }
        let codec = parts[0].lowercased()
        if codec == "walloc" {
            guard compressor.codec.config.isVariableRate else {
                throw WallocError("--through walloc:\(setting): the model has one fixed rate; give a variable-rate model")
            }
            let c = try compressor.withQuality(setting)
            name = "walloc:\(setting)"
            switch modality {
            case .image:
                run = { x, _ in
                    let file = try c.compress(image: Image(pixels: x, bitDepth: 8, isFloat: false, format: .png)).file
                    let data = file.encode()
                    guard case .image(let pixels, _) = try c.decompress(try WLCFile.decode(data)) else { throw WallocError("walloc: not an image") }
                    return (pixels, data.count)
                }
            case .audio:
                run = { x, rate in
                    let data = try c.compress(audio: Audio(samples: x, sampleRate: rate, bitDepth: 16)).encode()
                    guard case .audio(let samples, _, _) = try c.decompress(try WLCFile.decode(data)) else { throw WallocError("walloc: not audio") }
                    return (samples, data.count)
                }
            }
            return
        }
        switch modality {
        case .image:
            let baseline: ImageBaseline
            do { baseline = try ImageBaseline(name: codec) } catch {
                throw WallocError("--through '\(spec)': unknown image codec '\(parts[0])' (expected jpeg, webp, avif, jxl or walloc)")
            }
            guard (0...100).contains(setting) else { throw WallocError("--through '\(spec)': \(baseline.rawValue) quality must be 0-100") }
            name = "\(baseline.rawValue):\(setting)"
            run = { x, _ in
                guard x.shape[0] == 3 else { throw WallocError("\(baseline.rawValue) takes RGB images, got \(x.shape[0]) channel(s)") }
                let data = try baseline.encode(x, quality: setting, threads: 1)
                let decoded = try baseline.decode(data, threads: 1)
                return (decoded, data.count)
            }
        case .audio:
            let baseline: AudioBaseline
            do { baseline = try AudioBaseline(name: codec) } catch {
                throw WallocError("--through '\(spec)': unknown audio codec '\(parts[0])' (expected opus, vorbis or walloc)")
            }
            guard baseline.validQualities.contains(setting) else {
                throw WallocError("--through '\(spec)': \(baseline.rawValue) setting must be \(baseline.validQualities.lowerBound)-\(baseline.validQualities.upperBound)")
            }
            name = "\(baseline.rawValue):\(setting)"
            run = { x, rate in
                let r = try baseline.roundTrip(x, sampleRate: rate, quality: setting)
                return (r.decoded, r.data.count)
            }
        }
    }

    /// Codes and decodes one signal (images: `[C, H, W]` pixels in [0, 1]; audio: `[C, L]`
    /// samples and their rate): the decoded signal, of the same shape, and the compressed bytes.
    public func callAsFunction(_ x: Tensor, sampleRate: Int = 0) throws -> (decoded: Tensor, bytes: Int) {
        try run(x, sampleRate)
    }
}
