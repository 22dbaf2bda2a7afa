import ArgumentParser
import Foundation
import Walloc

/// `walloc bench` (images) and `walloc bench --audio SECONDS`: the time of every stage of the
/// codec and of the whole-file pipeline on one signal, medians after warm-up.
struct PipelineBench {
    /// Sample rate of synthetic audio and of the WAV files the file stages read.
    static let sampleRate = 44_100

    var warmup: Int
    var repetitions: Int
    /// Also time `.wlc` files made from (and decoded to) PNG / WAV files.
    var files = true

    /// The random models timed without `--model`: image Codec2D(J=3, latent_dim=12) or audio
    /// Codec1D(J=8, latent_dim=32), lightweight encoders, one per decoder width.
    static func randomModels(modality: Modality, nd: String?) throws -> [Compressor] {
        try randomConfigs(modality: modality, nd: nd).map { Compressor(codec: try Codec(config: $0.config, seed: 1), name: $0.name) }
    }

    /// The configurations (and names) of `randomModels`.
    static func randomConfigs(modality: Modality, nd: String?) throws -> [(config: ModelConfig, name: String)] {
        let widths = nd ?? (modality == .image ? "128,768" : "256")
        return try widths.split(separator: ",").map { w in
            guard let v = Int(w.trimmingCharacters(in: .whitespaces)), v >= 1 else { throw ValidationError("bad --nd value '\(w)'") }
            switch modality {
            case .image:
                return (ModelConfig(type: .codec2D, channels: 3, J: 3, Nd: v, latentDim: 12, latentBits: 8, lightweightEncode: true),
                        "Codec2D J=3 latent_dim=12 Nd=\(v)")
            case .audio:
                return (ModelConfig(type: .codec1D, channels: 2, J: 8, Nd: v, latentDim: 32, latentBits: 8, lightweightEncode: true, postFilter: false),
                        "Codec1D stereo J=8 latent_dim=32 Nd=\(v)")
            }
        }
    }

    /// The signal a model is timed on: `--input`, else a synthetic image of `size` or
    /// `seconds` of synthetic audio (cut to a multiple of 2^J).
    static func signal(for codec: Codec, input: String?, size: (width: Int, height: Int), seconds: Double) throws -> Tensor {
        if let input { return try dropBatch(try readTensor(input), rank: codec.modality == .image ? 3 : 2, what: input) }
        let c = codec.config.channels
        switch codec.modality {
        case .image:
            return SignalPreparation.imageToSignal(SyntheticSignals.image(width: size.width, height: size.height, channels: c))
        case .audio:
            let f = codec.config.downsampling
            let frames = Int(seconds * Double(sampleRate)) / f * f
            guard frames >= f else { throw ValidationError("--audio \(seconds) is shorter than one latent step (\(f) samples)") }
            return SyntheticSignals.audio(channels: c, frames: frames, sampleRate: sampleRate)
        }
    }

    /// Times every stage; returns one JSON-ready row (seconds are medians).
    func run(_ compressor: Compressor, signal x: Tensor) throws -> [String: Any] {
        let codec = compressor.codec
        try codec.checkSignal(x)
        let bits = codec.config.latentBits
        func median(_ body: () throws -> Void) throws -> Double {
            Stopwatch.median(try Stopwatch.measure(warmup: warmup, repetitions: repetitions, body))
        }
        var row: [String: Any] = ["model": compressor.name, "modality": codec.modality.rawValue, "shape": x.shape,
                                  "threads": Threading.count, "kernels": Kernels.summary]
        row["wpt_s"] = try median { _ = try codec.analysis(x) }
        row["encode_s"] = try median { _ = try codec.encode(x) }
        let latents = try codec.encode(x)
        let payload = try LatentCoder.encode(latents, bits: bits, defaults: compressor.entropyModel)
        row["latents"] = latents.count
        row["latent_bytes"] = payload.count
        row["entropy_encode_s"] = try median { _ = try LatentCoder.encode(latents, bits: bits, defaults: compressor.entropyModel) }
        row["entropy_decode_s"] = try median {
            _ = try LatentCoder.decode(payload, shape: latents.shape, bits: bits, defaults: compressor.entropyModel)
        }
        row["decode_s"] = try median { _ = try codec.decode(latents) }
        if files { try timeFiles(compressor, signal: x, into: &row) }
        return row
    }

    /// `walloc encode` / `walloc decode` of a PNG or WAV file holding the signal, in process.
    func timeFiles(_ compressor: Compressor, signal x: Tensor, into row: inout [String: Any]) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let wlc = dir.appendingPathComponent("x.wlc")
        let input: URL, output: URL
        let encodeFile: () throws -> Void, decodeFile: () throws -> Void
        switch compressor.codec.modality {
        case .image:
            input = dir.appendingPathComponent("x.png")
            output = dir.appendingPathComponent("y.png")
            try ImageIO.write(SignalPreparation.signalToImage(x), to: input, format: .png, bitDepth: 8)
            encodeFile = { try FileIO.writeAtomically(try compressor.compress(image: try ImageIO.read(input)).file.encode(), to: wlc) }
            decodeFile = {
                guard case .image(let pixels, _) = try compressor.decompress(try WLCFile.decode(try FileIO.read(wlc))) else {
                    throw WallocError("the bench's .wlc file did not decode to an image")
                }
                try ImageIO.write(pixels, to: output, format: .png, bitDepth: 8)
            }
        case .audio:
            input = dir.appendingPathComponent("x.wav")
            output = dir.appendingPathComponent("y.wav")
            let writer = try AudioWriter(url: input, channels: x.shape[0], sampleRate: PipelineBench.sampleRate, bitDepth: 16)
            try writer.write(x)
            try writer.finish()
            encodeFile = { try FileIO.writeAtomically(try compressor.compress(audioFile: input).encode(), to: wlc) }
            decodeFile = { try compressor.decompress(try WLCFile.decode(try FileIO.read(wlc)), toAudioFile: output) }
        }
        // Encode and decode alternate so both see the same machine conditions.
        try encodeFile()
        var enc = [Double](), dec = [Double]()
        for rep in 0..<repetitions {
            enc += try Stopwatch.measure(warmup: rep == 0 ? warmup : 0, repetitions: 1, encodeFile)
            dec += try Stopwatch.measure(warmup: rep == 0 ? warmup : 0, repetitions: 1, decodeFile)
        }
        row["file_encode_s"] = Stopwatch.median(enc)
        row["file_decode_s"] = Stopwatch.median(dec)
        row["input_file_bytes"] = fileSize(input)
        row["wlc_bytes"] = fileSize(wlc)
    }

    /// One block of text per row: each stage's median, and its rate (megapixels or seconds of
    /// audio per second).
    static func describe(_ row: [String: Any]) -> String {
        let shape = row["shape"] as? [Int] ?? []
        let audio = row["modality"] as? String == Modality.audio.rawValue
        let amount = audio ? Double(shape.last ?? 0) / Double(sampleRate) : Double(shape.dropFirst().reduce(1, *)) / 1e6
        var lines = ["\(row["model"] ?? "")  \(shape)  threads=\(row["threads"] ?? "")  kernels: \(row["kernels"] ?? "")"
            + (audio ? String(format: "  (%.1f s at %d Hz)", amount, sampleRate) : "")]
        let stages = [("wpt_s", "WPT"), ("encode_s", "encode (to latents)"), ("entropy_encode_s", "entropy encode"),
                      ("entropy_decode_s", "entropy decode"), ("decode_s", "decode (from latents)"),
                      ("file_encode_s", audio ? "file encode (WAV -> .wlc)" : "file encode (PNG -> .wlc)"),
                      ("file_decode_s", audio ? "file decode (.wlc -> WAV)" : "file decode (.wlc -> PNG)")]
        for (key, name) in stages {
            guard let t = row[key] as? Double else { continue }
            let rate = audio ? String(format: "%8.1fx real time", amount / t) : String(format: "%8.2f MP/s", amount / t)
            lines.append("  " + name.padding(toLength: 27, withPad: " ", startingAt: 0) + String(format: "%10.2f ms  ", t * 1e3) + rate)
        }
        if let n = row["latents"] as? Int, let b = row["latent_bytes"] as? Int {
            let per = audio ? String(format: "%.1f kbit/s", Double(8 * b) / amount / 1e3)
                            : String(format: "%.4f bpp", Double(8 * b) / (amount * 1e6))
            lines.append(String(format: "  latents %d, coded %d bytes (%.3f bit/latent, %@)", n, b, Double(8 * b) / Double(n), per))
        }
        return lines.joined(separator: "\n")
    }
}
