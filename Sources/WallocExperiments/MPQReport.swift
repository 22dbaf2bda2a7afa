import ArgumentParser
import Foundation
import Walloc

/// `walloc-experiments mpq-report`: the tables and charts of scripts/mpq.sh (docs/mpq.md).
struct MPQReport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mpq-report",
        abstract: "Markdown tables and SVG charts from the TSV files of scripts/mpq.sh.",
        discussion: """
        Each TSV is DATA/mpq-TASK.tsv with the columns kind (original, decoded, latents), codec, setting, \
        mean coded bytes per item and test accuracy; the item size comes from \
        DATA/TASK/mpq/signal-test/manifest.json. Prints Markdown; writes mpq-TASK.svg into --svg-dir.
        """
    )

    @Argument(help: "mpq-image.tsv and/or mpq-audio.tsv.") var tables: [String]
    @Option(help: "Folder for the SVG charts.") var svgDir: String
    @Option(help: "The seed the run used (reported).") var seed: Int = 1
    @Option(help: "The run's wall time in seconds (reported).") var totalSeconds: Int?

    struct Row { var kind, codec, setting: String; var bytes, accuracy: Double }

    func run() throws {
        var out = "## Machine perceptual quality (\(ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withFullDate]))"
            + ", \(ProcessInfo.processInfo.activeProcessorCount) cores, seed \(seed))\n\n"
        for path in tables {
            let url = URL(fileURLWithPath: path)
            let task = url.deletingPathExtension().lastPathComponent.replacingOccurrences(of: "mpq-", with: "")
            let rows = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").dropFirst().compactMap { line -> Row? in
                let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                guard f.count == 5, let b = Double(f[3]), let a = Double(f[4]) else { return nil }
                return Row(kind: f[0], codec: f[1], setting: f[2], bytes: b, accuracy: a)
            }
            let manifestURL = url.deletingLastPathComponent().appendingPathComponent("\(task)/mpq/signal-test/manifest.json")
            let m = try DatasetManifest.read(manifestURL)
            let shape = m.preparation.signalShape
            let isImage = m.modality == .image
            let seconds = isImage ? 0 : Double(shape[1]) / Double(m.preparation.sampleRate ?? 1)
            let unit = isImage ? "bpp" : "kbps"
            func rate(_ bytes: Double) -> Double { isImage ? bytes * 8 / Double(shape[1] * shape[2]) : bytes * 8 / seconds / 1000 }
            func fmt(_ r: Double) -> String { String(format: isImage ? "%.3f" : "%.1f", r) }
            let what = isImage ? "\(shape[2])x\(shape[1]) RGB images" : String(format: "%.2f s clips, %d channels, %d Hz", seconds, shape[0], m.preparation.sampleRate ?? 0)
            out += "### \(task): \(m.classes.count) classes, \(what), \(m.items) test items\n\n"
            out += "| input | codec | setting | bytes per item | \(unit) | test accuracy |\n|---|---|---|---|---|---|\n"
            let order = ["original": 0, "decoded": 1, "latents": 2]
            let codecs = ["walloc", "walloc-full", "jpeg", "webp", "avif", "jxl", "opus", "vorbis"]
            func key(_ r: Row) -> (Int, Int, String, Double) { (order[r.kind] ?? 3, codecs.firstIndex(of: r.codec) ?? codecs.count, r.codec, r.bytes) }
            for r in rows.sorted(by: { key($0) < key($1) }) {
                let input = r.kind == "original" ? "original (upper bound)" : r.kind == "decoded" ? "decoded, classifier trained on originals" : "walloc latents, classifier trained on latents"
                out += "| \(input) | \(r.kind == "original" ? "-" : r.codec) | \(r.setting) | \(r.kind == "original" ? "-" : String(format: "%.0f", r.bytes)) | "
                    + "\(r.kind == "original" ? "-" : fmt(rate(r.bytes))) | \(String(format: "%.2f%%", 100 * r.accuracy)) |\n"
            }
            out += "\n"
            // The chart: accuracy against rate, one series per codec, the latents, and the originals as a level line.
            var series = [SVGPlot.Series]()
            let measured = rows.filter { $0.kind != "original" }
            let maxRate = measured.map { rate($0.bytes) }.max() ?? 1
            for codec in ["walloc"] + Set(measured.filter { $0.kind == "decoded" && $0.codec != "walloc" }.map(\.codec)).sorted() {  // walloc-full: --no-downscale files
                let points = measured.filter { $0.kind == "decoded" && $0.codec == codec }.sorted { $0.bytes < $1.bytes }
                    .map { (x: rate($0.bytes), y: 100 * $0.accuracy) }
                if !points.isEmpty { series.append(.init(name: "\(codec), decoded", points: points, highlighted: codec == "walloc")) }
            }
            for codec in Set(measured.filter { $0.kind == "latents" }.map(\.codec)).sorted() {  // walloc, walloc-full
                let latents = measured.filter { $0.kind == "latents" && $0.codec == codec }.sorted { $0.bytes < $1.bytes }
                    .map { (x: rate($0.bytes), y: 100 * $0.accuracy) }
                series.append(.init(name: "\(codec) latents", points: latents, highlighted: codec == "walloc"))
            }
            if let o = rows.first(where: { $0.kind == "original" }) {
                series.append(.init(name: "original (upper bound)", points: [(x: 0, y: 100 * o.accuracy), (x: maxRate, y: 100 * o.accuracy)]))
            }
            let plot = SVGPlot(title: "Machine perceptual quality: \(task) task", panels: [
                .init(title: isImage ? "classifier accuracy vs bits per pixel" : "classifier accuracy vs kbps",
                      xLabel: isImage ? "bits per pixel (whole files)" : "kbps (whole files)", yLabel: "test accuracy (%)", series: series)
            ])
            let svgURL = URL(fileURLWithPath: svgDir).appendingPathComponent("mpq-\(task).svg")
            try FileIO.writeAtomically(Data(plot.render().utf8), to: svgURL)
            if let time = try? String(contentsOf: url.deletingPathExtension().appendingPathExtension("time"), encoding: .utf8) {
                let parts = time.split(separator: "\t", maxSplits: 1)
                if parts.count == 2 { out += "Wall time (\(task)): \(parts[1].trimmingCharacters(in: .whitespacesAndNewlines)).\n\n" }
            }
        }
        if let totalSeconds { out += "Total wall time: \(totalSeconds) s.\n" }
        print(out, terminator: "")
    }
}
