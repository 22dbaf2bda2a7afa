import ArgumentParser
import Foundation
import Walloc

/// `walloc latents`: a signal or a whole dataset -> integer latents.
struct Latents: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latents",
        abstract: "Encode a signal or a dataset to integer latents (no entropy coding).",
        discussion: """
        walloc latents [--model DIR] INPUT.npy -o Y.npy: one signal (or image, audio or .wlc file: the \
        latents a .wlc file stores). walloc latents [--model DIR] DATA -o OUT: \
        a dataset (a folder with one sub-folder per class, or a list file of 'path<TAB>label' lines) to \
        sharded .safetensors files of integer latents with a manifest (see docs/compressed-learning.md). \
        walloc latents merge OUT...: check and merge the outputs of several --shard workers.
        """,
        subcommands: [LatentsConvert.self, LatentsMerge.self],
        defaultSubcommand: LatentsConvert.self
    )
}

struct LatentsConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Encode a signal (.npy) or a dataset to integer latents (the default subcommand).",
        discussion: """
        A .npy INPUT is a float32 signal of shape [C, H, W] (images) or [C, L] (audio), optionally with a \
        leading batch dimension of 1, values in [-0.5, 0.5], sizes multiples of 2^J; OUT holds the integer \
        latents a .wlc file of it stores (quantised as walloc encode does), as float32 [latent_dim, h, w] \
        or [latent_dim, l].

        An image or audio INPUT gives the latents walloc encode would store for it; a .wlc INPUT the \
        latents it stores, only entropy-decoded (no decoder, no encoder; the model is checked by its \
        fingerprint, and the file's quality setting is used).

        Any other INPUT is a dataset: a folder with one sub-folder per class (names sorted = class \
        indices), or a list file of 'path<TAB>label' lines. Items may be images, audio or .wlc files \
        (read at the setting the first .wlc file was encoded with unless --quality is given; all must \
        share it and one size). OUT becomes a folder of shard-NNNNN.safetensors \
        files (int8 latents when latent_bits <= 8, else int16; int64 labels; item names in the metadata) and \
        manifest.json (model fingerprint, shapes, classes, shards with counts and SHA-256). Images are \
        prepared like walloc encode does (and with --size brought to one size), audio is level-normalised \
        (and with --seconds cut or padded to one length). Running the command again keeps finished shards \
        and converts the rest; --shard I/N converts every N-th shard so that N workers split a dataset \
        without talking to each other (then: walloc latents merge). --resized stores the input resized to \
        as many values as the latents instead (the baseline for compressed-domain learning). --signal stores \
        the prepared input at full resolution (8-bit pixels, 16-bit samples); with --through CODEC:SETTING \
        (jpeg:Q, webp:Q, avif:Q, jxl:Q, opus:KBPS, vorbis:Q, walloc:Q) each item is first encoded and \
        decoded by that codec, and each shard records the items' compressed sizes (machine perceptual \
        quality: docs/mpq.md).
        """
    )

    @Option(help: "Model directory (default: the embedded model for the input's modality).") var model: String?
    @Argument(help: "Input signal (.npy), dataset folder or list file.") var input: String
    @Option(name: .shortAndLong, help: "Output latents (.npy) or dataset folder.") var output: String
    @Option(help: "Variable-rate models: the quality setting, 1-100 (default: the model's).") var quality: Int?
    @Option(help: "Datasets: resize (area) and centre-crop every image to WxH.") var size: String?
    @Option(help: "Datasets: cut or zero-pad every audio clip to S seconds.") var seconds: Double?
    @Option(help: "Datasets: convert only shards I, I+N, ... (1-based I of N workers); 'auto' reads I and N from a Slurm job array, 'auto/N' I from a Slurm array or a Kubernetes Indexed Job.")
    var shard: String?
    @Option(help: "Datasets: items per shard (default: about 64 MiB of values per shard).") var shardSize: Int?
    @Flag(help: "Datasets: store the input resized to as many values as the latents (area for images, low-pass for audio).")
    var resized = false
    @Flag(help: "Datasets: store the prepared input at full resolution (8-bit pixels, 16-bit samples).")
    var signal = false
    @Option(help: "Datasets, with --signal: code and decode every item with CODEC:SETTING first (jpeg:50, webp:40, avif:50, jxl:50, opus:24, vorbis:20, walloc:45).")
    var through: String?
    @Flag(help: "Images: shrink them at the settings the model codes smaller, as walloc encode does, for the latents and for --through walloc:Q (default: every setting at full size, one latent grid for all settings).")
    var downscale = false
    @Flag(help: "Overwrite OUT (a .npy), or convert every shard again (datasets).") var force = false
    @Flag(help: "Print nothing but errors.") var quiet = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory)
        let kind = exists && !isDirectory.boolValue ? try? InputKind(URL(fileURLWithPath: input)) : nil
        if let kind {
            guard size == nil, seconds == nil, shard == nil, shardSize == nil, !resized, !signal, through == nil else {
                throw ValidationError("--size, --seconds, --shard, --shard-size, --resized, --signal and --through apply to datasets, not to one signal")
            }
            switch kind {
            case .signal: try convertSignal()
            case .bitstream: try convertBitstream()
            case .image, .audio: try convertMediaFile(kind)
            }
        } else {
            try convertDataset()
        }
    }

    func convertSignal() throws {
        let outURL = URL(fileURLWithPath: output)
        try OutputPolicy(force: force).check(outURL, inputs: [URL(fileURLWithPath: input)])
        let given = try model.map { try Compressor.load(modelDirectory: URL(fileURLWithPath: $0)) }
        let raw = try readTensor(input)
        var c = try given ?? compressor(model: nil, modality: raw.rank == 2 ? .audio : .image)
        if let quality { c = try c.withQuality(quality) }
        let codec = c.codec
        let rank = codec.modality == .image ? 3 : 2
        let x = try dropBatch(raw, rank: rank, what: input)
        try codec.checkSignal(x)
        try checkFinite(x, what: input)
        let peak = x.scalars.reduce(Float(0)) { max($0, abs($1)) }
        if peak > 0.5 + 1e-3 {
            printError("warning: \(input): values reach \(peak), outside [-0.5, 0.5]; the models expect signals scaled to that range")
        }
        // The latents a .wlc file of this signal holds (the model's quantiser included).
        let y = try c.fileLatents(ofSignal: x)
        try FileIO.writeAtomically(NPY.encode(y), to: outURL)
    }

    /// One image or audio file: the latents `walloc encode` would store (prepared, padded and
    /// encoded the same way), as a float32 .npy of integers.
    func convertMediaFile(_ kind: InputKind) throws {
        let inURL = URL(fileURLWithPath: input), outURL = URL(fileURLWithPath: output)
        try OutputPolicy(force: force).check(outURL, inputs: [inURL])
        let modality: Modality = kind == .audio ? .audio : .image
        var c = try compressor(model: model, modality: modality)
        if let quality { c = try c.withQuality(quality) }
        c.downscales = downscale
        let file: WLCFile  // a model of the other modality is refused by `compress`
        do {
            file = modality == .image ? try c.compress(image: try ImageIO.read(inURL)).file : try c.compress(audioFile: inURL)
        } catch let e as WallocError where !e.message.hasPrefix(input) {
            throw WallocError("\(input): \(e.message)")
        }
        try FileIO.writeAtomically(NPY.encode(try c.latents(of: file)), to: outURL)
    }

    /// One `.wlc` file: the integer latents it stores, entropy-decoded only (no decoder, no
    /// encoder), as a float32 .npy of integers. The model is checked by its fingerprint.
    func convertBitstream() throws {
        let inURL = URL(fileURLWithPath: input), outURL = URL(fileURLWithPath: output)
        try OutputPolicy(force: force).check(outURL, inputs: [inURL])
        let latents: Tensor
        do {
            let file = try WLCFile.decode(try FileIO.read(inURL))
            if let quality, file.header.quality != quality {
                throw ValidationError("--quality does not apply to a .wlc file: it stores latents at the setting it was encoded with (\(file.header.quality.map(String.init) ?? "none"))")
            }
            var cache = [String: Compressor]()
            latents = try compressor(for: file.header, model: model, cache: &cache).latents(of: file)
        } catch let e as WallocError where !e.message.hasPrefix(input) {
            throw WallocError("\(input): \(e.message)")
        }
        try FileIO.writeAtomically(NPY.encode(latents), to: outURL)
    }

    func convertDataset() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw WallocError("\(output): is a file; a dataset's latents go to a folder")
        }
        let listing = try DatasetListing.read(input)
        var c = try compressor(model: model, modality: listing.modality)
        // A dataset of .wlc files is read at the setting its files were encoded with.
        var setting = quality
        if setting == nil, c.codec.config.isVariableRate, let wlc = listing.items.first(where: { DatasetListing.isBitstream($0.url) }) {
            setting = try? WLCFile.decode(try FileIO.read(wlc.url)).header.quality
        }
        if let setting { c = try c.withQuality(setting) }
        guard !(resized && signal) else { throw ValidationError("give --resized or --signal, not both") }
        guard through == nil || signal else { throw ValidationError("--through codes the full-resolution input: give --signal too") }
        var options = ConversionOptions()
        options.representation = resized ? .resized : signal ? .signal : .latents
        c.downscales = downscale  // the latents, and walloc:Q round trips
        if let through {
            let codec = try CodecRoundTrip(through, modality: listing.modality, compressor: c)
            options.roundTrip = SignalRoundTrip(name: codec.name) { x, rate in try codec(x, sampleRate: rate) }
        }
        options.seconds = seconds
        options.shardSize = shardSize
        options.force = force
        if let size {
            let parts = size.lowercased().split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2 else { throw ValidationError("--size must be WxH, e.g. 256x256") }
            options.size = parts
        }
        if let shard {
            let w = try WorkerShard.parse(shard)
            (options.worker, options.workers) = (w.index, w.count)
            if w.source != "given" && !quiet { printError("--shard \(shard): worker \(w.index) of \(w.count) (\(w.source))") }
        }
        let converter = try DatasetConverter(compressor: c, listing: listing, options: options)
        installStopHandlers()
        let label = options.workers > 1 ? "latents \(options.worker)/\(options.workers)" : "latents"
        var bar: ProgressBar?
        let summary: ConversionSummary
        do {
            summary = try converter.run(output: URL(fileURLWithPath: output), progress: { done, total in
                if bar == nil { bar = ProgressBar(total: total, label: label, enabled: !quiet) }
                bar?.update(done)
            }, shouldStop: { stopRequested != 0 })
        } catch is ConversionInterrupted {
            bar?.finish()
            printError("interrupted; finished shards are kept: run the same command again to continue")
            throw ExitCode(130)
        }
        bar?.finish()
        if !quiet {
            let m = summary.manifest
            let kept = summary.keptShards > 0 ? " (kept \(summary.keptShards) finished shard(s))" : ""
            print("\(m.items) \(listing.modality.rawValue) item(s), \(m.classes.count) class(es), \(m.representation.rawValue) \(m.itemShape) \(m.dtype): "
                  + "converted \(summary.encodedItems) item(s) into \(summary.encodedShards) shard(s)\(kept) -> \(summary.manifestURL.path)")
            if options.workers > 1 {
                print("worker \(options.worker) of \(options.workers) done; once every worker has finished: walloc latents merge OUT... -o OUT")
            } else if let name = m.preparation.roundTrip {
                let bytes = try DatasetShards.codedBytes(summary.manifestURL.deletingLastPathComponent(), manifest: m) ?? []
                let mean = Double(bytes.reduce(0, +)) / Double(max(1, bytes.count))
                let shape = m.preparation.signalShape
                let rate = m.modality == .image
                    ? String(format: "%.4f bpp", mean * 8 / Double(shape[1] * shape[2]))
                    : String(format: "%.2f kbps", mean * 8 * Double(m.preparation.sampleRate ?? 0) / Double(shape[1]) / 1000)
                print("\(name): \(String(format: "%.1f", mean)) bytes per item on average, \(rate)")
            }
        }
    }
}

/// `walloc latents merge`: checks and merges the outputs of `--shard` workers.
struct LatentsMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Check and merge dataset latents written by several --shard workers.",
        discussion: """
        FOLDERS hold manifest.json or manifest-part-I-of-N.json files of one conversion. Every shard must be \
        present exactly once, with the size, SHA-256, shapes and identity its manifest records. The complete \
        manifest.json goes to OUT (default: the first folder), and shards living elsewhere are copied there. \
        With --verify nothing is written: the folders are only checked (exit status 1 on any problem).
        """
    )

    @Argument(help: "Dataset folders.") var folders: [String]
    @Option(name: .shortAndLong, help: "Output folder (default: the first folder).") var output: String?
    @Flag(help: "Only check; write nothing.") var verify = false
    @Flag(help: "Print nothing but errors.") var quiet = false

    func run() throws {
        let urls = folders.map { URL(fileURLWithPath: $0) }
        let report: DatasetShards.Report
        if verify {
            guard output == nil else { throw ValidationError("--verify writes nothing; leave out --output") }
            report = try DatasetShards.check(urls)
        } else {
            report = try DatasetShards.merge(urls, into: URL(fileURLWithPath: output ?? folders[0]))
        }
        if !quiet {
            let m = report.manifest
            let what = verify ? "verified" : "merged into \((output ?? folders[0]) + "/" + DatasetManifest.fileName)"
            print("\(m.shardCount) shard(s), \(m.items) item(s), \(report.bytes) bytes: sizes, SHA-256 and shapes match; \(what)")
        }
    }
}

/// `walloc reconstruct`: integer latents -> clamped signal.
struct Reconstruct: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconstruct",
        abstract: "Decode integer latents to the clamped reconstruction.",
        discussion: """
        LATENTS is a float32 .npy [latent_dim, h, w] or [latent_dim, l] (a leading batch dimension \
        of 1 accepted) of integers in the quantiser's range. A .npy OUT is the signal clamped to \
        [-0.5, 0.5], as the reference forward() returns it in eval mode. An image OUT (png, webp, \
        tiff, jpg) gets the signal + 0.5 as pixels; an audio OUT (wav, flac, ogg) the signal as \
        samples at --sample-rate (latents carry no padding or level: use walloc decode on a .wlc \
        file for the original size and loudness).
        """
    )

    @Option(help: "Model directory (default: the embedded model for the latents' rank).") var model: String?
    @Argument(help: "Latents (.npy).") var latents: String
    @Option(name: .shortAndLong, help: "Output: .npy signal, image or audio file.") var output: String
    @Option(help: "Audio outputs: sample rate in Hz.") var sampleRate: Int = 44_100
    @Option(help: "Variable-rate models: the quality setting the latents were made at (default: the model's; for the latents of a downscaled image, the file's coded_quality in walloc info).") var quality: Int?
    @Flag(help: "Overwrite OUT if it exists.") var force = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        let outURL = URL(fileURLWithPath: output)
        try OutputPolicy(force: force).check(outURL, inputs: [URL(fileURLWithPath: latents)])
        let ext = outURL.pathExtension.lowercased()
        let kind = try InputKind(outURL)
        guard kind != .bitstream else { throw ValidationError("OUT must be .npy, an image or an audio file") }
        let raw = try readTensor(latents)
        let codec = try atQuality(quality, model.map(loadModel) ?? defaultCodec(raw.rank == 2 ? .audio : .image))
        if kind != .signal && kind != (codec.modality == .image ? .image : .audio) {
            throw ValidationError("\(output): the model codes \(codec.modality.rawValue); write a .npy or \(codec.modality == .image ? "an image" : "an audio") file")
        }
        guard (1...10_000_000).contains(sampleRate) else { throw ValidationError("--sample-rate must be 1...10000000") }
        let rank = codec.modality == .image ? 3 : 2
        let y = try dropBatch(raw, rank: rank, what: latents)
        do {
            try codec.checkLatents(y)
        } catch let e as WallocError {
            throw WallocError("\(latents): \(e.message)")
        }
        switch kind {
        case .image:
            try ImageIO.write(SignalPreparation.signalToImage(try codec.decodeTiled(y)), to: outURL, format: try ImageFormat(fileExtension: ext))
        case .audio:
            try AudioIO.write(try codec.decode(y), sampleRate: sampleRate, to: outURL)
        default:
            try FileIO.writeAtomically(NPY.encode(try codec.decode(y)), to: outURL)
        }
    }
}

/// `codec` at quality `q` when one is given (an error for fixed-rate models).
func atQuality(_ q: Int?, _ codec: Codec) throws -> Codec {
    guard let q else { return codec }
    return try codec.withQuality(q)
}

func checkFinite(_ t: Tensor, what: String) throws {
    if let i = t.scalars.firstIndex(where: { !$0.isFinite }) {
        throw WallocError("\(what): contains a non-finite value (\(t.scalars[i])) at flat index \(i)")
    }
}
