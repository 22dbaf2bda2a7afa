import ArgumentParser
import Foundation
import Walloc

/// Kinds of files the CLI reads, by extension.
enum InputKind {
    case image, audio, signal, bitstream

    init(_ url: URL) throws {
        switch url.pathExtension.lowercased() {
        case "png", "jpg", "jpeg", "webp", "tif", "tiff": self = .image
        case "wav", "flac", "ogg": self = .audio
        case "npy": self = .signal
        case "wlc": self = .bitstream
        default: throw WallocError("\(url.path): unsupported file type '.\(url.pathExtension)' (images: png jpg webp tiff; audio: wav flac ogg; tensors: npy; bitstreams: wlc)")
        }
    }
}

/// Expands inputs: files as given, directories to the files inside them (sorted) whose kind is
/// in `kinds`.
func expandInputs(_ paths: [String], kinds: (InputKind) -> Bool) throws -> (files: [URL], fromDirectory: Bool) {
    var files = [URL](), fromDirectory = false
    for p in paths {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else { throw WallocError("\(p): no such file or directory") }
        if isDir.boolValue {
            fromDirectory = true
            let names = try FileManager.default.contentsOfDirectory(atPath: p).sorted()
            for n in names where !n.hasPrefix(".") {
                let u = URL(fileURLWithPath: p).appendingPathComponent(n)
                if let k = try? InputKind(u), kinds(k) { files.append(u) }
            }
        } else {
            files.append(URL(fileURLWithPath: p))
        }
    }
    if files.isEmpty { throw WallocError("no input files") }
    return (files, fromDirectory)
}

/// Where each output goes: OUT itself for one file, else OUT/<stem>.<ext>.
func outputPlan(_ inputs: [URL], fromDirectory: Bool, output: String, ext: String) throws -> [URL] {
    var isDir: ObjCBool = false
    let exists = FileManager.default.fileExists(atPath: output, isDirectory: &isDir)
    if inputs.count == 1 && !fromDirectory && !(exists && isDir.boolValue) {
        return [URL(fileURLWithPath: output)]
    }
    if exists && !isDir.boolValue { throw WallocError("\(output): several inputs need a directory as output, and this is a file") }
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    var seen = Set<String>()
    return try inputs.map { u in
        let name = u.deletingPathExtension().lastPathComponent + "." + ext
        guard seen.insert(name).inserted else { throw WallocError("two inputs would both be written to \(output)/\(name)") }
        return URL(fileURLWithPath: output).appendingPathComponent(name)
    }
}

func fileSize(_ url: URL) -> Int {
    (try? FileManager.default.attributesOfItem(atPath: url.resolvingSymlinksInPath().path)[.size] as? Int) ?? 0
}

/// Runs `body` on each file in turn: a file that fails is reported (its path once) and the others
/// go on; exit status 1 when any failed.
func forEachFile(_ files: [URL], bar: ProgressBar, _ body: (Int, URL) throws -> Void) throws {
    var failures = 0
    for (i, input) in files.enumerated() {
        do { try body(i, input) } catch let e as WallocError {
            failures += 1
            let message = e.message.hasPrefix(input.path + ": ") ? String(e.message.dropFirst(input.path.count + 2)) : e.message
            printError("error: \(input.path): \(message)")
        }
        bar.update(i + 1)
    }
    if failures > 0 { throw ExitCode(1) }
}

/// The embedded default model's directory for `modality`, or a clear error.
func defaultModelDirectory(_ modality: Modality) throws -> URL {
    guard let url = DefaultModels.directory(for: modality) else {
        throw WallocError("no default \(modality.rawValue) model is installed; pass --model DIR")
    }
    return url
}

/// The embedded default codec for `modality` (weights only: no entropy tables, no fingerprint).
func defaultCodec(_ modality: Modality) throws -> Codec {
    try Codec.load(from: defaultModelDirectory(modality))
}

/// Finds the model: `--model DIR`, else the default model for the modality.
func compressor(model: String?, modality: Modality) throws -> Compressor {
    try Compressor.load(modelDirectory: model.map { URL(fileURLWithPath: $0) } ?? defaultModelDirectory(modality))
}

/// The model that made a file: `--model DIR` (checked later against the file), else the default
/// model for its modality when the fingerprints match, else the installed model with the file's
/// fingerprint (`ModelRegistry`). `cache` holds models already loaded, by fingerprint.
func compressor(for header: WLCHeader, model: String?, cache: inout [String: Compressor]) throws -> Compressor {
    let hex = header.fingerprint.map { String(format: "%02x", $0) }.joined()
    if let model {
        if let c = cache["dir:" + model] { return c }
        let c = try Compressor.load(modelDirectory: URL(fileURLWithPath: model))
        cache["dir:" + model] = c
        return c
    }
    if let c = cache[hex] { return c }
    let modality: Modality = header.modality == .image ? .image : .audio
    let preferred = DefaultModels.directory(for: modality)
    if let preferred, let c = try? Compressor.load(modelDirectory: preferred), header.isMade(byModelWithFingerprint: c.fingerprint) {
        cache[hex] = c
        return c
    }
    let c = try Compressor.load(modelDirectory: try ModelRegistry.directory(fingerprint: header.fingerprint))
    cache[hex] = c
    return c
}

struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Compress images, audio or .npy signals to .wlc files.",
        discussion: """
        One input: OUT is the output file. Several inputs or a directory: OUT is a directory and each \
        input becomes OUT/<name>.wlc. Images are scaled to [-0.5, 0.5] and padded to a multiple of \
        2^J (reflect padding, or the model's smooth margin; cropped back on decoding); an alpha \
        channel the model does not take is dropped. At low settings the default RGB model codes \
        a smaller image (rate.downscale) that decoding enlarges back. Audio has its DC removed and its peak scaled to 0.5; both are restored on decoding. \
        Variable-rate models (the defaults) take --quality, or find the highest quality whose file \
        meets --target-bpp (images) or --target-kbps (audio).
        """
    )
    @Argument(help: "Input files or directories.") var inputs: [String]
    @Option(name: .shortAndLong, help: "Output file or directory.") var output: String
    @Option(help: "Model directory (default: the embedded model for the input's modality).") var model: String?
    @Option(help: "Latent coding: rans (default), webp or png (the reference's lossless latent images).") var coding: String = "rans"
    @Option(help: "Quality from 1 (smallest file) to 100 (best), variable-rate models only (default: the model's).") var quality: Int?
    @Option(name: .customLong("target-bpp"), help: "Images: the highest quality whose file has at most this many bits per pixel.")
    var targetBPP: Double?
    @Option(name: .customLong("target-kbps"), help: "Audio: the highest quality whose file has at most this many kilobits per second.")
    var targetKbps: Double?
    @Flag(help: "Overwrite existing outputs.") var force = false
    @Flag(name: .customLong("force-name"), help: "Write the .wlc bitstream even under a name that says another format (such as .webp).")
    var forceName = false
    @Flag(name: .customLong("no-downscale"), help: "Images: code every setting at full size (the default RGB model shrinks images at settings 1-46; full size keeps small text legible there, at a lower PSNR on photographs).")
    var noDownscale = false
    @Flag(help: "Print nothing but errors.") var quiet = false
    @OptionGroup var compute: ComputeOptions

    /// Extensions of formats a `.wlc` file is not: an output named so would mislead.
    static let otherFormats: Set<String> = ["png", "jpg", "jpeg", "webp", "avif", "heic", "jxl", "jp2", "gif", "bmp", "tif", "tiff",
                                            "wav", "flac", "ogg", "opus", "mp3", "m4a", "aac", "npy", "npz", "safetensors", "json", "txt"]

    func validate() throws {
        if [quality != nil, targetBPP != nil, targetKbps != nil].filter({ $0 }).count > 1 {
            throw ValidationError("give at most one of --quality, --target-bpp and --target-kbps")
        }
        if let quality, !Quality.range.contains(quality) { throw ValidationError("--quality must be from 1 to 100, got \(quality)") }
        for (name, v) in [("--target-bpp", targetBPP), ("--target-kbps", targetKbps)] {
            if let v, !(v > 0 && v.isFinite) { throw ValidationError("\(name) must be a positive number") }
        }
    }

    func run() throws {
        try compute.apply()
        guard let mode = ["rans": WLCHeader.Coding.rans, "webp": .webp, "png": .png][coding] else {
            throw ValidationError("--coding must be rans, webp or png")
        }
        let (files, fromDir) = try expandInputs(inputs) { $0 != .bitstream }
        let outs = try outputPlan(files, fromDirectory: fromDir, output: output, ext: "wlc")
        if outs.count == 1, !forceName, case let ext = outs[0].pathExtension.lowercased(), Encode.otherFormats.contains(ext) {
            throw WallocError("\(outs[0].path): walloc encode writes a .wlc bitstream, not a .\(ext) file; name it .wlc (walloc decode makes .\(ext) files), or give --force-name to keep this name")
        }
        let policy = OutputPolicy(force: force)
        var cache = [String: Compressor]()
        let bar = ProgressBar(total: files.count, label: "encode", enabled: !quiet && files.count > 1)
        try forEachFile(files, bar: bar) { i, input in
            let out = outs[i]
            try policy.check(out, inputs: files)
            let kind = try InputKind(input)
            let modality: Modality = kind == .audio ? .audio : .image
            let key = model ?? modality.rawValue
            var c = try cache[key] ?? compressor(model: model, modality: modality)
            cache[key] = c
            c.coding = mode
            c.downscales = !noDownscale
            if let quality { c = try c.withQuality(quality) }
            var note = ""
            var finishBar: () -> Void = {}
            let target = try rateTarget(for: kind)
            let encode: (Compressor) throws -> WLCFile
            switch kind {
            case .image:
                // Without a size target the image is encoded once: it is handed over, so its pixels
                // become the signal in place (an image-sized buffer less at the peak).
                var held: Image? = try ImageIO.read(input)
                let once = target == nil
                encode = { c in
                    guard let image = held else { throw WallocError("\(input.path): the image was already encoded") }
                    if once { held = nil }
                    let (f, dropped) = try c.compress(image: consume image)
                    if dropped { note = " (alpha channel dropped)" }
                    return f
                }
            case .audio:
                // Long recordings stream through in pieces; a bar shows when one file is long.
                // A size target encodes several times (at most 9 trials of the binary search): one bar for the search.
                let trials = target == nil ? 1 : Compressor.maximumTargetTrials
                let single = ProgressBar(total: 1000 * trials, label: "  \(input.lastPathComponent)", enabled: !quiet && files.count == 1, delay: 1)
                var trial = 0
                encode = { c in
                    defer { trial += 1 }
                    let info = trials > 1 ? "trying quality \(c.quality ?? 0)" : ""
                    return try c.compress(audioFile: input) {
                        single.update(min(1000 * trials - 1, 1000 * trial + Int($0 * 1000)), info: info)
                    }
                }
                finishBar = { if trial > 0 { single.update(1000 * trials, info: "done", force: true) } }
            case .signal:
                let rank = c.codec.modality == .image ? 3 : 2
                let signal = try dropBatch(try readTensor(input.path), rank: rank, what: input.path)
                encode = { c in try c.compress(signal: signal) }
            case .bitstream: throw WallocError("\(input.path) is already a .wlc file")
            }
            let file: WLCFile
            if let target {
                let found = try c.compress(toTarget: target, encode)
                finishBar()
                file = found.file
                note += " (quality \(found.quality))"
            } else {
                file = try encode(c)
                if let q = c.quality, quality == nil { note += " (quality \(q))" }
            }
            let data = file.encode()
            try FileIO.writeAtomically(data, to: out)
            if !quiet {
                let h = file.header, s = h.originalShape
                let unit = h.modality == .image
                    ? String(format: "%.3f bpp", Double(data.count * 8) / Double(s[1] * s[2]))
                    : String(format: "%.1f kbps", Double(data.count * 8) / (Double(s[1]) / Double(max(1, h.sampleRate))) / 1000)
                // Against the uncompressed samples at the input's bit depth, and against the input file.
                let raw = Double(s.reduce(1, *) * max(1, h.bitDepth == 0 ? 32 : h.bitDepth)) / 8
                let ratios = String(format: "%.1f:1 vs uncompressed, %.1f:1 vs the input file", raw / Double(max(1, data.count)),
                                    Double(fileSize(input)) / Double(max(1, data.count)))
                if let d = h.downscaling { note += " (coded at \(d.size[1])x\(d.size[0]), quality \(d.quality))" }
                let progress = files.count > 1 ? "[\(i + 1)/\(files.count)] " : ""
                bar.print("\(progress)\(input.lastPathComponent) -> \(out.lastPathComponent): \(data.count) bytes, \(unit), \(ratios)\(note)")
            }
        }
    }
}

extension Encode {
    /// The size target for an input of this kind, if one was asked for.
    func rateTarget(for kind: InputKind) throws -> RateTarget? {
        if let targetBPP {
            guard kind != .audio else { throw WallocError("--target-bpp applies to images; use --target-kbps for audio") }
            return .bitsPerPixel(targetBPP)
        }
        if let targetKbps {
            guard kind == .audio else { throw WallocError("--target-kbps applies to audio; use --target-bpp for images") }
            return .kilobitsPerSecond(targetKbps)
        }
        return nil
    }
}

struct Decode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decompress .wlc files to images, audio or .npy.",
        discussion: """
        The output format comes from OUT's extension (png, webp, tiff, jpg, npy; wav, flac, ogg), \
        or from --format when OUT is a directory (default: png for images, wav for audio, npy for \
        signals). The model must be the one that encoded the file: without --model it is found by the \
        fingerprint the file records, among the default models, the folders in WALLOC_MODELS, \
        ~/.local/share/walloc/models and the installed models (walloc models lists them).
        """
    )
    @Argument(help: ".wlc files or directories.") var inputs: [String]
    @Option(name: .shortAndLong, help: "Output file or directory.") var output: String
    @Option(help: "Model directory (default: the installed model with the file's fingerprint; see walloc models).") var model: String?
    @Option(help: "Output format for directory outputs (png, webp, tiff, jpg, npy, wav, flac, ogg).") var format: String?
    @Flag(help: "Overwrite existing outputs.") var force = false
    @Flag(help: "Print nothing but errors.") var quiet = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        let (files, fromDir) = try expandInputs(inputs) { $0 == .bitstream }
        var cache = [String: Compressor]()
        let policy = OutputPolicy(force: force)
        let bar = ProgressBar(total: files.count, label: "decode", enabled: !quiet && files.count > 1)
        try forEachFile(files, bar: bar) { i, input in
            let file = try WLCFile.decode(try FileIO.read(input))
            let modality: Modality = file.header.modality == .image ? .image : .audio
            let defaultExt = file.header.bitDepth == 0 ? "npy" : (modality == .image ? "png" : "wav")
            let out = try outputPlan([input], fromDirectory: fromDir || files.count > 1, output: output, ext: format ?? defaultExt)[0]
            try policy.check(out, inputs: files)
            let c = try compressor(for: file.header, model: model, cache: &cache)
            let ext = out.pathExtension.lowercased()
            if modality == .audio && file.header.bitDepth != 0 && ext != "npy" {
                // Straight to the audio file, piece by piece.
                _ = try AudioFormat(fileExtension: ext)
                let single = ProgressBar(total: 1000, label: "  \(input.lastPathComponent)", enabled: !quiet && files.count == 1, delay: 1)
                try c.decompress(file, toAudioFile: out) { single.update(Int($0 * 1000)) }
            } else {
                // Large images take a while: a bar when one file is decoding (after a second).
                let single = ProgressBar(total: 1000, label: "  \(input.lastPathComponent)",
                                         enabled: !quiet && files.count == 1 && modality == .image, delay: 1)
                let decoded = try c.decompress(file) { single.update(min(999, Int($0 * 1000))) }
                single.update(1000, info: "done", force: true)
                switch decoded {
                case .signal(let x): try writeNPY(x, ext: ext, to: out)
                case .image(let pixels, let depth):
                    if ext == "npy" { try writeNPY(pixels, ext: ext, to: out); break }
                    let format = try ImageFormat(fileExtension: ext)
                    let bits = format == .png ? min(16, max(8, depth)) : (format == .tiff ? depth : 8)
                    try ImageIO.write(pixels, to: out, format: format, bitDepth: bits, quality: format == .jpeg || format == .webp ? 95 : nil)
                case .audio(let samples, _, _):
                    try writeNPY(samples, ext: ext, to: out)
                }
            }
            if !quiet {
                let progress = files.count > 1 ? "[\(i + 1)/\(files.count)] " : ""
                bar.print("\(progress)\(input.lastPathComponent) -> \(out.path)")
            }
        }
    }

    func writeNPY(_ t: Tensor, ext: String, to url: URL) throws {
        guard ext == "npy" else { throw WallocError("a raw signal can only be written as .npy, not .\(ext)") }
        try FileIO.writeAtomically(NPY.encode(t), to: url)
    }
}
