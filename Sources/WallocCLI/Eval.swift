import ArgumentParser
import Foundation
import Walloc

/// `walloc eval`: rate and quality of Walloc models against conventional codecs.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure models against JPEG, WebP, AVIF and JPEG XL (images) or Opus and Vorbis (audio).",
        discussion: """
        Every file in DATA (files, or directories: their image/audio files) is compressed to a real \
        .wlc bitstream and decoded with each model, and coded by each baseline at each quality \
        setting. Images: bits per pixel, PSNR, SSIM, MS-SSIM; audio: kbps, SNR, SI-SDR. Writes \
        per-file rows and per-(codec, setting) means to --json (and --csv, --plot SVG), prints a \
        table and the BD-rates of walloc against each baseline. Several --model options make a \
        rate-distortion curve of models. Files that cannot be evaluated (unreadable, wrong \
        modality, too small) are reported and skipped; the exit status is then 1. \
        --qualities takes CODEC:Q1,Q2,... (repeatable; qualities 0-100) or Q1,Q2,... for every \
        baseline; walloc:Q1,Q2,... sets the qualities (1-100) variable-rate models are measured \
        at (default 1,10,20,...,100), each one a point of walloc's curve. --bd-range LO,HI limits \
        the BD-rates to the settings whose mean rate lies in [LO, HI] (bpp or kbps). Metric \
        definitions and baseline settings: docs/evaluation.md.
        """
    )

    @Argument(help: "Data files or directories.") var data: [String]
    @Option(help: "Model directory (repeatable; default: the installed default model).") var model: [String] = []
    @Option(help: "Baselines, comma-separated: jpeg,webp,avif,jxl for images, opus,vorbis for audio, or none (default: all for the modality).")
    var baselines: String?
    @Option(help: "Baseline qualities: CODEC:Q1,Q2,... (repeatable) or Q1,Q2,... for every baseline.") var qualities: [String] = []
    @Option(name: .customLong("bd-range"), help: "BD-rates over the settings whose mean rate lies in LO,HI (bpp or kbps).")
    var bdRange: String?
    @Option(help: "Write the results as JSON here.") var json: String
    @Option(help: "Also write one CSV row per (file, codec, setting) here.") var csv: String?
    @Option(help: "Also write rate-distortion plots (SVG) here.") var plot: String?
    @Option(help: "Also write a self-contained visual report (HTML) here: charts, and per file the original beside walloc and each baseline at the closest rate (crops, differences; spectrograms and players for audio).")
    var html: String?
    @Option(help: "The walloc quality setting the HTML report shows (default: the model's default).") var htmlQuality: Int?
    @Option(help: "Shrink images whose longer side exceeds this many pixels before evaluating (area averaging).") var maxSide: Int?
    @Option(help: "Cut audio longer than this many seconds to its middle this long before evaluating.") var maxSeconds: Double?
    @Option(help: ArgumentHelp("Decoder tile and overlap in latent positions, TILE,OVERLAP (images; experiments).", visibility: .hidden))
    var tiling: String?
    @Flag(name: .customLong("no-downscale"), help: "Images: code every setting at full size, as walloc encode --no-downscale does.")
    var noDownscale = false
    @Flag(help: "Overwrite existing outputs.") var force = false
    @Flag(help: "Print nothing but errors.") var quiet = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        let outputs = [json, csv, plot, html].compactMap { $0 }.map { URL(fileURLWithPath: $0) }
        guard Set(outputs.map(\.standardizedFileURL.path)).count == outputs.count else {
            throw ValidationError("--json, --csv, --plot and --html must name different files")
        }
        if let htmlQuality, !Quality.range.contains(htmlQuality) { throw ValidationError("--html-quality must be from 1 to 100") }
        if htmlQuality != nil && html == nil { throw ValidationError("--html-quality needs --html") }
        let (files, _) = try expandInputs(data) { $0 == .image || $0 == .audio }
        let policy = OutputPolicy(force: force)
        for out in outputs { try policy.check(out, inputs: files) }

        // Models: the given directories, or the default model for the data's modality.
        var compressors = [Compressor]()
        var paths = [String]()
        if model.isEmpty {
            let allAudio = files.allSatisfy { Evaluator.modality(ofFile: $0) == .audio }
            let modality: Modality = allAudio ? .audio : .image
            let dir = try defaultModelDirectory(modality)
            compressors.append(try Compressor.load(modelDirectory: dir))
            paths.append(dir.path)
        } else {
            for m in model {
                compressors.append(try Compressor.load(modelDirectory: URL(fileURLWithPath: m)))
                paths.append(m)
            }
        }
        if let tiling {
            let parts = tiling.split(separator: ",").compactMap { Int($0) }
            guard parts.count == 2, parts[0] >= 1, parts[1] >= 0 else { throw ValidationError("--tiling takes TILE,OVERLAP") }
            for i in compressors.indices { compressors[i].tile = parts[0]; compressors[i].overlap = parts[1] }
        }
        for i in compressors.indices { compressors[i].downscales = !noDownscale }
        var evaluator = try Evaluator(compressors: compressors)
        if let maxSide {
            guard maxSide >= 16 else { throw ValidationError("--max-side must be at least 16") }
            evaluator.maxSide = maxSide
        }
        if let maxSeconds {
            guard maxSeconds >= 0.1, maxSeconds.isFinite else { throw ValidationError("--max-seconds must be at least 0.1") }
            evaluator.maxSeconds = maxSeconds
        }
        let modality = evaluator.modality
        try configureBaselines(&evaluator)

        var rows = [EvalRow]()
        var failures = [(file: String, error: String)]()
        for (i, file) in files.enumerated() {
            let progress = "[\(i + 1)/\(files.count)] \(file.lastPathComponent)"
            let start = DispatchTime.now().uptimeNanoseconds
            do {
                let fileRows = try evaluator.evaluate(file)
                rows += fileRows
                if !quiet {
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                    let ours = fileRows.filter { $0.codec == Evaluator.codecName }.map { r in
                        modality == .image
                            ? String(format: "%@ %.3f bpp %.2f dB", r.setting, r.metrics["bpp"] ?? .nan, r.metrics["psnr"] ?? .nan)
                            : String(format: "%@ %.1f kbps %.2f dB SNR", r.setting, r.metrics["kbps"] ?? .nan, r.metrics["snr"] ?? .nan)
                    }.joined(separator: ", ")
                    let others = fileRows.count - fileRows.filter { $0.codec == Evaluator.codecName }.count
                    printError("\(progress): \(ours); \(others) baseline setting(s) (\(String(format: "%.1f", seconds)) s)")
                }
            } catch let e as WallocError {
                let message = e.message.hasPrefix(file.path) ? String(e.message.dropFirst(file.path.count + 2)) : e.message
                failures.append((file.path, message))
                printError("\(progress): skipped: \(message)")
            }
        }

        let report = EvalReport(
            modality: modality,
            models: zip(compressors, paths).map { ($0.name, $1, $0.codec.config.type.rawValue, $0.codec.config.dimensionalityReduction) },
            baselines: evaluator.imageBaselines.map { ($0.codec.rawValue, $0.codec.settings) }
                + evaluator.audioBaselines.map { ($0.codec.rawValue, $0.codec.settings) },
            rows: rows, failures: failures, bdRateRange: try parsedBDRange())
        try FileIO.writeAtomically(try report.json(), to: URL(fileURLWithPath: json))
        if let csv { try FileIO.writeAtomically(report.csv(), to: URL(fileURLWithPath: csv)) }
        if let plot {
            let names = compressors.map(\.name).joined(separator: ", ")
            let count = Set(rows.map(\.file)).count
            let svg = report.plot(title: "\(names) vs baselines, \(count) file\(count == 1 ? "" : "s")").render()
            try FileIO.writeAtomically(Data(svg.utf8), to: URL(fileURLWithPath: plot))
        }
        if let html {
            var samples = [FileSamples]()
            let done = Set(rows.map(\.file))
            let kept = files.filter { done.contains($0.lastPathComponent) }
            for (i, file) in kept.enumerated() {
                if !quiet { printError("[\(i + 1)/\(kept.count)] \(file.lastPathComponent): report pictures") }
                samples.append(try evaluator.samples(file, rows: rows, quality: htmlQuality))
            }
            let names = compressors.map(\.name).joined(separator: ", ")
            let page = try HTMLReport(report: report, files: samples, title: "\(names) vs baselines").render()
            try FileIO.writeAtomically(Data(page.utf8), to: URL(fileURLWithPath: html))
            if !quiet { printError("wrote \(html) (\(page.utf8.count / 1_000_000) MB)") }
        }
        if !quiet { print(report.table()) }
        if !failures.isEmpty {
            printError("\(failures.count) of \(files.count) file(s) could not be evaluated")
            throw ExitCode(1)
        }
    }

    /// --bd-range LO,HI.
    func parsedBDRange() throws -> ClosedRange<Double>? {
        guard let bdRange else { return nil }
        let parts = bdRange.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, parts[0] >= 0, parts[1] > parts[0] else { throw ValidationError("--bd-range takes LO,HI with 0 ≤ LO < HI") }
        return parts[0]...parts[1]
    }

    /// Applies --baselines and --qualities.
    private func configureBaselines(_ evaluator: inout Evaluator) throws {
        let names = (baselines ?? (evaluator.modality == .image ? "jpeg,webp,avif,jxl" : "opus,vorbis"))
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        let selected = names == ["none"] ? [] : names
        var perCodec = [String: [Int]](), everyCodec: [Int]?
        for spec in qualities {
            let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
            let list = try Eval.parseQualities(parts.last ?? "", spec: spec)
            if parts.count == 2 && parts[0].lowercased() == Evaluator.codecName {
                guard list.allSatisfy({ Quality.range.contains($0) }) else { throw ValidationError("walloc qualities must be from 1 to 100") }
                evaluator.modelQualities = list
                continue
            }
            if parts.count == 2 {
                let codec = evaluator.modality == .image ? try ImageBaseline(name: parts[0]).rawValue : try AudioBaseline(name: parts[0]).rawValue
                perCodec[codec] = list
            } else {
                everyCodec = list
            }
        }
        var used = Set<String>()
        for name in selected {
            if evaluator.modality == .image {
                let codec = try ImageBaseline(name: name)
                guard used.insert(codec.rawValue).inserted else { continue }
                let list = perCodec[codec.rawValue] ?? everyCodec ?? codec.defaultQualities
                guard list.allSatisfy({ (0...100).contains($0) }) else { throw ValidationError("--qualities for \(codec.rawValue): qualities 0-100") }
                evaluator.imageBaselines.append((codec, list))
            } else {
                let codec = try AudioBaseline(name: name)
                guard used.insert(codec.rawValue).inserted else { continue }
                let list = perCodec[codec.rawValue] ?? everyCodec ?? codec.defaultQualities
                guard list.allSatisfy(codec.validQualities.contains) else {
                    throw ValidationError("--qualities for \(codec.rawValue) must be \(codec.validQualities.lowerBound)-\(codec.validQualities.upperBound)\(codec == .opus ? " (kbps)" : "")")
                }
                evaluator.audioBaselines.append((codec, list))
            }
        }
        if let unused = perCodec.keys.sorted().first(where: { !used.contains($0) }) {
            throw ValidationError("--qualities names '\(unused)', which is not among the baselines (\(selected.joined(separator: ",")))")
        }
    }

    static func parseQualities(_ text: String, spec: String) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil && (0...1000).contains($0!) }) else {
            throw ValidationError("--qualities '\(spec)': expected CODEC:Q1,Q2,... or Q1,Q2,... with qualities 0-100 (Opus: kbps)")
        }
        return values.map { $0! }.reduce(into: [Int]()) { if !$0.contains($1) { $0.append($1) } } // drop repeats
    }
}
