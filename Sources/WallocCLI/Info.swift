import ArgumentParser
import Foundation
import Walloc

/// `walloc info --model DIR`: what a model is and what it does to a signal's size.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe a model (--model DIR) or a .wlc file.",
        discussion: "For a model: type, shapes, parameter counts, dimensionality reduction. For a .wlc file: its header."
    )

    @Argument(help: "A .wlc file to describe.") var file: String?
    @Option(help: "Model directory (config.json + model.safetensors).") var model: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        if let file { return try describe(file: file) }
        guard let model else { throw ValidationError("give a .wlc file or --model DIR") }
        let codec = try loadModel(model)
        let c = codec.config
        let counts = codec.parameterCounts
        let example: [Int] = c.modality == .image ? [512, 768] : [65_536]
        let signalShape = [c.channels] + example
        let latentShape = codec.latentShape(signalSize: example)
        var info: [(String, Any)] = [
            ("type", c.type.rawValue),
            ("modality", c.modality.rawValue),
            ("channels", c.channels),
            ("J", c.J),
            ("wavelet_bands", c.bandChannels),
            ("latent_dim", c.latentDim),
            ("latent_bits", c.latentBits),
            ("latent_range", [codec.quantizer.representableRange.lowerBound, codec.quantizer.representableRange.upperBound]),
            ("encoder", encoderName(codec)),
            ("decoder", decoderName(codec)),
            ("encoder_parameters", counts.encoder),
            ("decoder_parameters", counts.decoder),
            ("post_filter_parameters", counts.postFilter),
            ("dimensionality_reduction", c.dimensionalityReduction),
            ("example_signal_shape", signalShape),
            ("example_latent_shape", latentShape),
        ]
        if let rate = c.rate {
            info += [("quality_range", [Quality.range.lowerBound, Quality.range.upperBound]), ("default_quality", rate.defaultQuality),
                     ("step_at_quality_1", Double(rate.maxStep)), ("step_at_quality_100", Double(rate.minStep)),
                     ("quality_conditioned_decoder", rate.condition), ("encoder_deadzone", Double(rate.deadzone)), ("encoder_rd_lambda", Double(rate.rdLambda))]
            if !rate.downscale.isEmpty {
                // Settings up to `up_to` code the image shrunk by `scale`, at quality Q + offset.
                info.append(("encoder_downscale", rate.downscale.map { "q<=\($0.upTo): x\($0.scale) at q+\($0.qualityOffset)" }.joined(separator: ", ")))
            }
        }
        if c.modality == .image {
            let t = codec.decodeTiling
            info.append(("decode_tile", c.decodeTile == nil
                ? "whole up to \(t.size)x\(t.size) latent positions (no decode_tile in config.json), then tiles with \(t.overlap) of context"
                : "\(t.size)x\(t.size) latent positions, \(t.overlap) of context (decode_tile)"))
        }
        if let e = c.envelope {
            info += [("envelope_channels", c.envelopeChannels), ("envelope_window", e.window), ("envelope_step_db", Double(e.stepDB))]
        }
        if let ne = c.Ne { info.insert(("Ne", ne), at: 4) }
        if let nd = c.Nd { info.insert(("Nd", nd), at: 4) }
        try emit(info)
    }

    private func describe(file path: String) throws {
        let data = try FileIO.read(URL(fileURLWithPath: path))
        let f: WLCFile
        do { f = try WLCFile.decode(data) } catch let e as WallocError { throw WallocError("\(path): \(e.message)") }
        let h = f.header
        // A downscaled image's latents code a smaller image, decoded at its own quality and enlarged back.
        let coded: [(String, Any)] = h.downscaling.map { [("coded_size", $0.size), ("coded_quality", $0.quality)] } ?? []
        var info: [(String, Any)] = [
            ("format_version", h.version), ("model", h.modelName),
            ("model_fingerprint", h.fingerprint.map { String(format: "%02x", $0) }.joined()),
            ("modality", h.modality == .image ? "image" : "audio"), ("shape", h.originalShape),
            ("latent_shape", h.latentShape), ("latent_bits", h.latentBits), ("quality", h.quality.map { $0 as Any } ?? "none (fixed-rate model)"),
        ] + coded + [
            ("coding", ["rans", "webp", "png"][Int(h.coding.rawValue)]),
            ("padding_before", h.paddingBefore), ("padding_after", h.paddingAfter),
            ("file_bytes", data.count), ("payload_bytes", f.payload.count),
        ]
        let s = h.originalShape
        if h.modality == .image {
            info.append(("bits_per_pixel", Double(data.count * 8) / Double(s[1] * s[2])))
        } else {
            info += [("sample_rate", h.sampleRate), ("gain", Double(h.gain)), ("offset", Double(h.offset)),
                     ("kbps", Double(data.count * 8) / (Double(s[1]) / Double(max(1, h.sampleRate))) / 1000)]
        }
        if h.bitDepth > 0 {
            let raw = s.reduce(1, *) * (h.bitDepth == 24 ? 3 : h.bitDepth / 8)
            info.append(("compression_ratio", Double(raw) / Double(data.count)))
        }
        try emit(info)
    }

    /// Prints `info` as JSON or as aligned lines (decimals to 4 significant digits; the
    /// dimensionality reduction as a factor).
    private func emit(_ info: [(String, Any)]) throws {
        if json {
            let data = try JSONSerialization.data(withJSONObject: Dictionary(uniqueKeysWithValues: info), options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        for (k, v) in info {
            let value: String
            switch v {
            case let a as [Int]: value = "[" + a.map(String.init).joined(separator: ", ") + "]"
            case let d as Double: value = k == "dimensionality_reduction" ? String(format: "%.2fx", d) : String(format: "%.4g", d)
            default: value = "\(v)"
            }
            print("\(k.padding(toLength: max(24, k.count), withPad: " ", startingAt: 0)) \(value)")
        }
    }

    private func encoderName(_ codec: Codec) -> String {
        switch codec.encoder {
        case .pointwise2D: return "lightweight (1x1 linear)"
        case .vae: return "VAE encoder (diffusers)"
        case .pointwise1D: return "lightweight (pointwise linear)"
        case .oobleck: return "Oobleck encoder"
        }
    }

    private func decoderName(_ codec: Codec) -> String {
        switch codec.decoder {
        case .pointwise2D: return "linear (1x1)"
        case .vae: return "VAE decoder (diffusers)"
        case .oobleck: return "Oobleck decoder"
        }
    }
}
