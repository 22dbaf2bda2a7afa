import ArgumentParser
import Foundation
import Walloc

/// `walloc bench --peak-memory`: the peak resident memory of `walloc encode` and `walloc decode`,
/// each a child process of this same executable, on a long synthetic WAV and a large synthetic
/// PNG, against 4x the float32 size of the signal (issue #3's bound for a 10-minute WAV).
struct PeakMemoryBench {
    /// A model directory; nil: the embedded defaults (or random models where none is embedded).
    var model: String?
    var seconds: Double
    var size: (width: Int, height: Int)
    var threads: Int?
    var json: Bool

    /// The bound: peak memory at most this many times the float32 size of the signal.
    static let bound = 4

    /// This executable's path (children run the same build).
    static func executable() -> String {
        #if os(Linux)
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if n > 0 { return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        #endif
        return Bundle.main.executablePath ?? CommandLine.arguments[0]
    }

    /// The model directory for `modality`, and a note when it is a random stand-in saved in `dir`.
    func modelDirectory(_ modality: Modality, in dir: URL) throws -> (path: String, note: String?) {
        if let model { return (model, nil) }
        if let url = DefaultModels.directory(for: modality) { return (url.path, nil) }
        let name = try PipelineBench.randomConfigs(modality: modality, nd: nil)[0].name
        let url = dir.appendingPathComponent("random-\(modality.rawValue)")
        // Built by another process, so that this one stays small (see `ChildProcess`).
        try check(try ChildProcess.run(PeakMemoryBench.executable(), ["bench", "--synthesize", url.path, "--random-model", modality.rawValue]),
                  "bench --synthesize")
        return (url.path, "no default \(modality.rawValue) model is embedded: measured with a random \(name) (same size as a real one; pass --model DIR)")
    }

    func run() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-peak-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let modalities: [Modality]
        if let model {
            modalities = [try ModelConfig.read(URL(fileURLWithPath: model).appendingPathComponent(Codec.configFileName)).modality]
        } else {
            modalities = [.audio, .image]
        }
        var rows = [[String: Any]]()
        for modality in modalities {
            let (modelPath, note) = try modelDirectory(modality, in: dir)
            if let note { printError("note: \(note)") }
            let channels = try ModelConfig.read(URL(fileURLWithPath: modelPath).appendingPathComponent(Codec.configFileName)).channels
            var row = try measure(modality, channels: channels, model: modelPath, in: dir)
            row["model"] = note == nil ? modelPath : "random (no default model embedded)"
            rows.append(row)
            if !json { print(PeakMemoryBench.describe(row)) }
        }
        if json { try printJSON(rows) }
    }

    /// Synthesises the input, then runs and measures the encoder and the decoder.
    func measure(_ modality: Modality, channels: Int, model: String, in dir: URL) throws -> [String: Any] {
        let input: URL, output: URL, samples: Int
        var row: [String: Any] = ["modality": modality.rawValue, "threads": threads ?? Threading.count]
        switch modality {
        case .audio:
            let frames = Int(seconds * Double(PipelineBench.sampleRate))
            guard frames >= 1 else { throw ValidationError("--audio \(seconds) s holds no samples") }
            input = dir.appendingPathComponent("long.wav")
            output = dir.appendingPathComponent("long-decoded.wav")
            samples = channels * frames
            row["input"] = String(format: "%.0f s, %d channels, %d Hz, 16-bit WAV", seconds, channels, PipelineBench.sampleRate)
        case .image:
            input = dir.appendingPathComponent("large.png")
            output = dir.appendingPathComponent("large-decoded.png")
            samples = channels * size.width * size.height
            row["input"] = "\(size.width)x\(size.height), \(channels) channel(s), 8-bit PNG"
        }
        let exe = PeakMemoryBench.executable()
        // Made by another process, so that this one stays small (see `ChildProcess`).
        try check(try ChildProcess.run(exe, ["bench", "--synthesize", input.path, "--channels", String(channels),
                                             "--audio", String(seconds), "--size", "\(size.width)x\(size.height)"]), "bench --synthesize")
        let wlc = dir.appendingPathComponent("\(modality.rawValue).wlc")
        let common = ["--model", model, "--quiet"] + (threads.map { ["--threads", String($0)] } ?? [])
        let encode = try ChildProcess.run(exe, ["encode", input.path, "-o", wlc.path] + common)
        try check(encode, "encode")
        let decode = try ChildProcess.run(exe, ["decode", wlc.path, "-o", output.path] + common)
        try check(decode, "decode")
        // What the executable needs before touching any signal: loading the model.
        let idle = try ChildProcess.run(exe, ["info", "--model", model])
        try check(idle, "info")
        let float32 = samples * MemoryLayout<Float>.size
        row["input_file_bytes"] = fileSize(input)
        row["wlc_bytes"] = fileSize(wlc)
        row["signal_float32_bytes"] = float32
        row["bound_bytes"] = PeakMemoryBench.bound * float32
        row["encode_peak_bytes"] = encode.peakBytes
        row["decode_peak_bytes"] = decode.peakBytes
        row["model_only_peak_bytes"] = idle.peakBytes
        row["encode_s"] = encode.seconds
        row["decode_s"] = decode.seconds
        row["within_bound"] = max(encode.peakBytes, decode.peakBytes) <= PeakMemoryBench.bound * float32
        try? FileManager.default.removeItem(at: input)
        try? FileManager.default.removeItem(at: output)
        return row
    }

    /// Writes the synthetic input: the random model of `randomModel` (a modality) as a model
    /// directory, else a 16-bit WAV of `seconds` (`.wav`) or an 8-bit PNG of `size`.
    static func synthesize(to url: URL, randomModel: String?, channels: Int, seconds: Double, size: (width: Int, height: Int)) throws {
        if let randomModel {
            guard let modality = Modality(rawValue: randomModel) else { throw ValidationError("--random-model must be image or audio") }
            try PipelineBench.randomModels(modality: modality, nd: nil)[0].codec.save(to: url)
        } else if url.pathExtension.lowercased() == "wav" {
            try SyntheticSignals.writeAudio(to: url, channels: channels, frames: Int(seconds * Double(PipelineBench.sampleRate)),
                                            sampleRate: PipelineBench.sampleRate)
        } else {
            try ImageIO.write(SyntheticSignals.image(width: size.width, height: size.height, channels: channels), to: url,
                              format: .png, bitDepth: 8)
        }
    }

    func check(_ r: ChildProcess.Result, _ what: String) throws {
        guard r.status == 0 else {
            throw WallocError("walloc \(what) failed (exit status \(r.status)): \(r.standardError.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    static func describe(_ row: [String: Any]) -> String {
        func mb(_ key: String) -> String { String(format: "%.1f MB", Double(row[key] as? Int ?? 0) / 1e6) }
        let bound = Double(row["bound_bytes"] as? Int ?? 1)
        func share(_ key: String) -> String { String(format: "%.2fx the bound", Double(row[key] as? Int ?? 0) / bound) }
        return """
        \(row["modality"] ?? "") peak memory: \(row["input"] ?? "") (\(mb("input_file_bytes")); float32 signal \(mb("signal_float32_bytes")), \
        bound 4x = \(mb("bound_bytes"))), model \(row["model"] ?? ""), threads=\(row["threads"] ?? "")
          walloc encode  peak RSS \(mb("encode_peak_bytes"))  (\(share("encode_peak_bytes")))  \(String(format: "%.1f s", row["encode_s"] as? Double ?? 0))
          walloc decode  peak RSS \(mb("decode_peak_bytes"))  (\(share("decode_peak_bytes")))  \(String(format: "%.1f s", row["decode_s"] as? Double ?? 0))
          walloc info (loads the model only)  peak RSS \(mb("model_only_peak_bytes"))
          .wlc \(row["wlc_bytes"] ?? 0) bytes; \((row["within_bound"] as? Bool) == true ? "within" : "ABOVE") the bound
        """
    }
}
