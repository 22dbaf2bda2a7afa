import ArgumentParser
import Foundation
import Walloc

/// `walloc-experiments`: datasets and reports for the compressed-domain learning experiment
/// (docs/compressed-learning.md). Run through scripts/compressed-learning.sh.
@main
struct Experiments: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "walloc-experiments",
        abstract: "Datasets and reports for the compressed-domain learning experiment.",
        subcommands: [Glyphs.self, Speech.self, FullHD.self, Report.self, MPQReport.self]
    )
}

/// Writes `OUT/.done` with the generation parameters, so a finished dataset is not made twice.
func markDone(_ out: URL, _ description: String) throws {
    try FileIO.writeAtomically(Data(description.utf8), to: out.appendingPathComponent(".done"))
}

func isDone(_ out: URL, _ description: String) -> Bool {
    (try? String(contentsOf: out.appendingPathComponent(".done"), encoding: .utf8)) == description
}

struct Glyphs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render the small-text dataset: OUT/train/<word>/*.png and OUT/test/<word>/*.png.")
    @Option(name: .shortAndLong, help: "Output folder.") var out: String
    @Option(help: "Training images.") var train = 8000
    @Option(help: "Test images.") var test = 2000
    @Option(help: "Image side in pixels.") var size = 128
    @Option(help: "Smallest text size (pixels per em).") var minPixels = 14
    @Option(help: "Largest text size (pixels per em).") var maxPixels = 20
    @Option(help: "Words (one class each), comma-separated.") var words = GlyphDataset.defaultWords.joined(separator: ",")
    @Option(help: "Random seed.") var seed: UInt64 = 1

    func run() throws {
        let url = URL(fileURLWithPath: out)
        let description = "glyphs train=\(train) test=\(test) size=\(size) px=\(minPixels)-\(maxPixels) words=\(words) seed=\(seed)\n"
        if isDone(url, description) { print("\(out): already generated"); return }
        try? FileManager.default.removeItem(at: url)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        var g = GlyphDataset()
        g.size = size; g.minPixels = minPixels; g.maxPixels = maxPixels; g.texts = words.split(separator: ",").map(String.init); g.seed = seed
        let start = Date()
        try g.generate(out: url, train: train, test: test) { done, total in
            FileHandle.standardError.write(Data("\rglyphs \(done)/\(total)".utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        try markDone(url, description)
        print(String(format: "%@: %d training and %d test images in %.1f s", out, train, test, Date().timeIntervalSince(start)))
    }
}

struct Speech: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Synthesise the spoken-word dataset: OUT/train/<word>/*.flac and OUT/test/<word>/*.flac.")
    @Option(name: .shortAndLong, help: "Output folder.") var out: String
    @Option(help: "Training clips.") var train = 6000
    @Option(help: "Test clips.") var test = 1500
    @Option(help: "Clip length in seconds.") var seconds = 1.0
    @Option(help: "Words (one class each), comma-separated.") var words = "sip,ship,chip,tip,dip,zip,lip,nip,hip,kip"
    @Option(help: "Random seed.") var seed: UInt64 = 1

    func run() throws {
        let url = URL(fileURLWithPath: out)
        let description = "speech train=\(train) test=\(test) seconds=\(seconds) words=\(words) seed=\(seed)\n"
        if isDone(url, description) { print("\(out): already generated"); return }
        try? FileManager.default.removeItem(at: url)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        var s = SpeechDataset()
        s.seconds = seconds; s.words = words.split(separator: ",").map(String.init); s.seed = seed
        let start = Date()
        try s.generate(out: url, train: train, test: test) { done, total in
            FileHandle.standardError.write(Data("\rspeech \(done)/\(total)".utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        try markDone(url, description)
        print(String(format: "%@: %d training and %d test clips in %.1f s", out, train, test, Date().timeIntervalSince(start)))
    }
}

struct FullHD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fullhd",
        abstract: "Write COUNT 1920x1080 JPEG crops of the wallpapers to OUT (conversion throughput).")
    @Option(name: .shortAndLong, help: "Output folder.") var out: String
    @Option(help: "Images.") var count = 1000
    @Option(help: "Random seed.") var seed: UInt64 = 1

    func run() throws {
        let url = URL(fileURLWithPath: out)
        let description = "fullhd count=\(count) seed=\(seed)\n"
        if isDone(url, description) { print("\(out): already generated"); return }
        try? FileManager.default.removeItem(at: url)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let start = Date()
        try FullHDImages(seed: seed).generate(out: url, count: count) { done, total in
            FileHandle.standardError.write(Data("\rfullhd \(done)/\(total)".utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        try markDone(url, description)
        print(String(format: "%@: %d images in %.1f s", out, count, Date().timeIntervalSince(start)))
    }
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A Markdown table comparing classifiers (folders from walloc classify train).")
    @Argument(help: "Classifier folders.") var classifiers: [String]

    func run() throws {
        print("| input | stored item | classifier input | bytes per item | training input bytes | test accuracy (last epoch) | best test accuracy | training time per epoch (median) | epochs | seed |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for c in classifiers {
            let (_, d) = try ClassifierStore.load(URL(fileURLWithPath: c))
            let times = d.history.map(\.seconds).sorted()
            let median = times.isEmpty ? 0 : times[times.count / 2]
            let last = d.history.last?.testAccuracy.map { String(format: "%.2f%%", 100 * $0) } ?? "-"
            let best = d.history.compactMap(\.testAccuracy).max().map { String(format: "%.2f%%", 100 * $0) } ?? "-"
            let what = d.representation == .latents ? "WaLLoC latents" : "resized input"
            let perItem = d.trainingInputBytes / max(1, d.trainingItems)
            print("| \(what) | \(d.transform.storedShape) \(d.dtype) | \(d.transform.inputShape) | \(perItem) | \(d.trainingInputBytes) | \(last) | \(best) | \(String(format: "%.1f s", median)) | \(d.history.count) | \(d.options.seed) |")
        }
    }
}
