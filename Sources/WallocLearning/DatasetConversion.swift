import Foundation
import WallocCoding
import WallocIO
import WallocMedia
import WallocModels
import WallocPipeline
import WallocTensor
import WallocTraining

/// How a dataset becomes shards.
public struct ConversionOptions: Sendable {
    public var representation: DatasetRepresentation = .latents
    /// `[width, height]`: every image is resized (area) to cover this size and centre-cropped to it.
    public var size: [Int]?
    /// Every audio clip is cut or zero-padded to this many seconds (then to a multiple of 2^J samples).
    public var seconds: Double?
    /// Items per shard (default: about 64 MiB of values per shard).
    public var shardSize: Int?
    /// This worker (1-based) of `workers`: it converts the shards whose index is `worker − 1` modulo `workers`.
    public var worker = 1, workers = 1
    /// Re-encode this worker's shards even when finished ones exist, and replace another conversion's files.
    public var force = false
    /// A codec round trip every item goes through before it is stored (`.signal` only).
    public var roundTrip: SignalRoundTrip?

    public init() {}
}

/// A lossy codec's encode-and-decode, applied to each prepared item before it is stored (the
/// "machine perceptual quality" protocol: what a model trained on originals sees from decoded files).
public struct SignalRoundTrip: Sendable {
    /// The codec and its setting, for example `jpeg:50` (recorded in the manifest and dataset id).
    public var name: String
    /// Codes and decodes one item: images as `[C, H, W]` pixels in [0, 1], audio as the
    /// level-normalised `[C, L]` clip with its sample rate. Returns the decoded item (same shape)
    /// and the compressed size in bytes. Called concurrently, one item per call.
    public var apply: @Sendable (_ signal: Tensor, _ sampleRate: Int) throws -> (decoded: Tensor, bytes: Int)

    public init(name: String, apply: @escaping @Sendable (_ signal: Tensor, _ sampleRate: Int) throws -> (decoded: Tensor, bytes: Int)) {
        self.name = name
        self.apply = apply
    }
}

/// What a conversion did.
public struct ConversionSummary: Sendable {
    /// The manifest written: complete for one worker, this worker's part otherwise.
    public var manifest: DatasetManifest
    public var manifestURL: URL
    public var encodedItems: Int
    public var encodedShards: Int
    /// Finished shards found and kept.
    public var keptShards: Int
}

/// Thrown when `shouldStop` asks a conversion to stop; finished shards are kept.
public struct ConversionInterrupted: Error {}

/// Turns a dataset listing into shards of integer latents (or of the resized baseline) with a
/// manifest; see `DatasetManifest` for the layout.
///
/// Items are prepared the way the pipeline prepares them (images to [-0.5, 0.5], audio level-
/// normalised), optionally brought to a fixed size, and encoded several at a time on the worker
/// pool, each with its kernels on one thread (`Threading.serially`), so the values do not depend
/// on the thread count or on how shards are split between workers. Latents are those a `.wlc`
/// file of the prepared item holds (`Compressor.fileLatents(ofImageSignal:)` / `(ofSignal:)`, with
/// the model's dead zone, rate-distortion quantiser and, for images, downscaling). `.wlc` items are only entropy-decoded
/// (`Compressor.latents(of:)`): no decoder, no encoder, checked by the model's fingerprint; they
/// must have been encoded at the conversion's quality setting, and take no `size` or `seconds`.
/// Shards are written atomically; a finished shard of the same conversion is kept and skipped
/// when the command runs again.
public struct DatasetConverter: Sendable {
    public let compressor: Compressor
    public let listing: DatasetListing
    public let options: ConversionOptions

    /// The model (at the conversion's quality setting): `compressor.codec`.
    public let codec: Codec

    /// A conversion with a bare codec (no default entropy tables: `.wlc` items that use them
    /// cannot be read; give a `Compressor` loaded from the model directory for those).
    public init(codec: Codec, listing: DatasetListing, options: ConversionOptions) throws {
        let compressor = Compressor(codec: codec, name: "model")
        try DatasetConverter.check(codec: codec, listing: listing, options: options)
        self.compressor = compressor
        self.codec = codec
        self.listing = listing
        self.options = options
    }

    public init(compressor: Compressor, listing: DatasetListing, options: ConversionOptions) throws {
        try DatasetConverter.check(codec: compressor.codec, listing: listing, options: options)
        self.compressor = compressor
        self.codec = compressor.codec
        self.listing = listing
        self.options = options
    }

    static func check(codec: Codec, listing: DatasetListing, options: ConversionOptions) throws {
        guard codec.modality == listing.modality else {
            throw WallocError("the dataset holds \(listing.modality.rawValue) files, the model codes \(codec.modality.rawValue)")
        }
        guard options.workers >= 1, (1...options.workers).contains(options.worker) else {
            throw WallocError("--shard \(options.worker)/\(options.workers): expected I/N with 1 <= I <= N")
        }
        if let size = options.size {
            guard listing.modality == .image else { throw WallocError("--size applies to images; use --seconds for audio") }
            guard size.count == 2, size.allSatisfy({ $0 > 0 && $0 <= 65536 }) else { throw WallocError("--size must be WxH with positive sizes") }
        }
        if let s = options.seconds {
            guard listing.modality == .audio else { throw WallocError("--seconds applies to audio; use --size for images") }
            guard s > 0, s <= 3600 else { throw WallocError("--seconds must be in (0, 3600]") }
        }
        if let k = options.shardSize, k < 1 { throw WallocError("--shard-size must be at least 1") }
        if options.roundTrip != nil && options.representation != .signal {
            throw WallocError("a codec round trip (--through) applies to the full-resolution signal (--signal)")
        }
        if let wlc = listing.items.first(where: { DatasetListing.isBitstream($0.url) }) {
            guard options.representation == .latents else {
                throw WallocError("\(wlc.url.path): --\(options.representation.rawValue) needs the original files; a .wlc file holds latents")
            }
            guard options.size == nil, options.seconds == nil else {
                throw WallocError("\(wlc.url.path): a .wlc file's latents keep the size they were encoded at; --size and --seconds apply to original files only")
            }
        }
    }

    /// The stored type of the values.
    public var dtype: SafetensorsDType {
        switch options.representation {
        case .latents: return codec.config.latentBits <= 8 ? .i8 : .i16
        case .resized, .signal: return listing.modality == .image ? .u8 : .i16
        }
    }

    /// Signal values per stored latent value for a prepared signal of `shape`, counting every
    /// stored latent (envelope channels and boundary frames included): about `C·4^J / latent_dim`
    /// for images and `C·2^J / latent_dim` for audio.
    public func valueRatio(signal shape: [Int]) -> Double {
        Double(shape.reduce(1, *)) / Double(codec.latentShape(signalSize: Array(shape.dropFirst())).reduce(1, *))
    }

    // MARK: preparation

    /// An item ready to be represented: an original's signal as the codec takes it (pixels in
    /// [0, 1], `[C, H, W]` padded to a multiple of 2^J, for images; the level-normalised clip
    /// `[C, L]` for audio), or a `.wlc` file's latents; with the signal shape (for a `.wlc` file,
    /// the padded shape it was encoded from) and the sample rate (0 for images).
    enum Prepared { case signal(Tensor), latents(Tensor) }

    func prepare(_ item: DatasetItem, frames target: Int?) throws -> (item: Prepared, shape: [Int], rate: Int) {
        if DatasetListing.isBitstream(item.url) {
            let file = try WLCFile.decode(try FileIO.read(item.url))
            let h = file.header
            let q = codec.config.isVariableRate ? codec.quality : nil
            if let fq = h.quality, let q, fq != q {
                throw WallocError("encoded at quality \(fq), the conversion's quality is \(q) (give --quality \(fq), or encode every file at one setting)")
            }
            let latents = try compressor.latents(of: file)
            let padded = zip(h.codedSize, zip(h.paddingBefore, h.paddingAfter)).map { $0 + $1.0 + $1.1 }
            return (.latents(latents), [codec.config.channels] + padded, h.sampleRate)
        }
        let f = codec.config.downsampling, channels = codec.config.channels
        if listing.modality == .image {
            var pixels = try TrainingData.matchChannels(try ImageIO.read(item.url).pixels, channels: channels, name: item.url.path)
            if let size = options.size { pixels = DatasetConverter.coverCrop(pixels, width: size[0], height: size[1]) }
            if options.representation == .latents {
                // Unpadded: the latents pad it (and shrink it at a downscaled setting) as files do
                // (a model's smooth margin included), so they equal those of the image's .wlc
                // file; the shape is the padded one of the image the latents code.
                return (.signal(pixels), compressor.paddedShape(try compressor.codedShape(imageShape: pixels.shape)), 0)
            }
            let x = SignalPreparation.padToMultiple(pixels, multiple: f).0
            return (.signal(x), x.shape, 0)
        }
        let reader = try AudioReader(url: item.url)
        let want = target ?? ((reader.frames + f - 1) / f * f)
        var samples = try reader.read(frames: min(reader.frames, want))
        if samples.shape[0] == 1 && channels > 1 {
            samples = Tensor(shape: [channels, samples.shape[1]], scalars: Array([[Float]](repeating: samples.scalars, count: channels).joined()))
        }
        guard samples.shape[0] == channels else {
            throw WallocError("\(item.url.path): \(samples.shape[0]) channel(s), the model takes \(channels)")
        }
        var x = SignalPreparation.normalize(samples, SignalPreparation.audioLevel(of: samples))
        if x.shape[1] < want {
            let n = x.shape[1]
            var padded = Tensor(zeros: [channels, want])
            for c in 0..<channels { for i in 0..<n { padded.scalars[c * want + i] = x.scalars[c * n + i] } }
            x = padded
        }
        return (.signal(x), x.shape, reader.sampleRate)
    }

    /// Resizes (area) `pixels` so that they cover `width` x `height`, then centre-crops to it.
    public static func coverCrop(_ pixels: Tensor, width: Int, height: Int) -> Tensor {
        let h = pixels.shape[1], w = pixels.shape[2]
        if h == height && w == width { return pixels }
        let s = max(Double(width) / Double(w), Double(height) / Double(h))
        let rh = max(height, Int((Double(h) * s).rounded())), rw = max(width, Int((Double(w) * s).rounded()))
        let resized = Resize.area(pixels, height: rh, width: rw)
        let y0 = (rh - height) / 2, x0 = (rw - width) / 2
        let c = pixels.shape[0]
        return Tensor(uninitializedShape: [c, height, width]) { dst in
            resized.withUnsafeBufferPointer { src in
                for ch in 0..<c {
                    for y in 0..<height {
                        (dst.baseAddress! + (ch * height + y) * width).update(from: src.baseAddress! + (ch * rh + y0 + y) * rw + x0, count: width)
                    }
                }
            }
        }
    }

    /// The stored values (integers held as floats) of a prepared item, and its compressed size
    /// after the round trip, if there is one.
    func represent(_ prepared: Prepared, sampleRate: Int) throws -> (values: Tensor, codedBytes: Int?) {
        let x: Tensor
        switch prepared {
        case .latents(let y): return (y, nil)
        case .signal(let s): x = s
        }
        // A round trip (checked to come with `.signal` only) replaces the item by what its codec decodes.
        guard let roundTrip = options.roundTrip else { return (try represent(x), nil) }
        let r = try roundTrip.apply(x, sampleRate)
        guard r.decoded.shape == x.shape else {
            throw WallocError("\(roundTrip.name) decoded \(r.decoded.shape) from \(x.shape)")
        }
        return (try represent(r.decoded), r.bytes)
    }

    func represent(_ x: Tensor) throws -> Tensor {
        switch (options.representation, listing.modality) {
        case (.signal, _): return DatasetConverter.storedSamples(x, modality: listing.modality)
        case (.latents, .image): return try compressor.fileLatents(ofImageSignal: SignalPreparation.imageToSignal(x))
        case (.latents, .audio): return try compressor.fileLatents(ofSignal: x)
        case (.resized, .image):
            let (h, w) = resizedSize(x.shape)
            return DatasetConverter.storedSamples(Resize.area(x, height: h, width: w), modality: .image)
        case (.resized, .audio):
            return DatasetConverter.storedSamples(Resample.lowpass(x, length: resizedLength(x.shape)), modality: .audio)
        }
    }

    /// Pixels in [0, 1] as 8-bit values; level-normalised samples (peak 0.5) times 65534, as 16-bit values.
    static func storedSamples(_ x: Tensor, modality: Modality) -> Tensor {
        var r = x
        if modality == .image {
            for i in 0..<r.count { r.scalars[i] = min(255, max(0, (r.scalars[i] * 255).rounded())) }
        } else {
            for i in 0..<r.count { r.scalars[i] = min(32767, max(-32767, (r.scalars[i] * 65534).rounded())) }
        }
        return r
    }

    /// The resized baseline holds as many values as the latents (and, for 16-bit audio, as many bytes as 12-16-bit latents).
    func resizedSize(_ shape: [Int]) -> (Int, Int) {
        let s = valueRatio(signal: shape).squareRoot()
        return (max(1, Int((Double(shape[1]) / s).rounded())), max(1, Int((Double(shape[2]) / s).rounded())))
    }

    func resizedLength(_ shape: [Int]) -> Int { max(1, Int((Double(shape[1]) / valueRatio(signal: shape)).rounded())) }

    /// The stored item shape for a prepared signal shape.
    func itemShape(signal shape: [Int]) -> [Int] {
        switch options.representation {
        case .latents: return codec.latentShape(signalSize: Array(shape.dropFirst()))
        case .resized:
            if listing.modality == .image { let (h, w) = resizedSize(shape); return [shape[0], h, w] }
            return [shape[0], resizedLength(shape)]
        case .signal: return shape
        }
    }

    var valuesDescription: String {
        switch (options.representation, listing.modality) {
        case (.latents, _):
            return "integer latents of the codec (|y| <= \(codec.quantizer.maxLevel)); as float32 they decode with walloc reconstruct"
        case (.resized, .image):
            return "8-bit pixels (0-255) of the prepared image resized by area averaging to as many values as the latents"
        case (.resized, .audio):
            return "the level-normalised signal (peak 0.5) low-pass resampled to as many values as the latents, times 65534 (16-bit)"
        case (.signal, .image):
            return "8-bit pixels (0-255) of the prepared image at full resolution" + (options.roundTrip.map { ", decoded after \($0.name)" } ?? "")
        case (.signal, .audio):
            return "the level-normalised signal (peak 0.5) at full resolution, times 65534 (16-bit)" + (options.roundTrip.map { ", decoded after \($0.name)" } ?? "")
        }
    }

    // MARK: running

    /// Converts this worker's shards into `output` (created if needed) and writes its manifest.
    /// `progress(done, total)` reports items; `shouldStop` is polled between groups of items.
    public func run(output: URL, progress: (Int, Int) -> Void = { _, _ in },
                    shouldStop: () -> Bool = { false }) throws -> ConversionSummary {
        let fm = FileManager.default
        try fm.createDirectory(at: output, withIntermediateDirectories: true)
        let f = codec.config.downsampling
        // The first item fixes the shapes (and, for audio, the sample rate and clip length).
        let first = listing.items[0]
        var targetFrames: Int?
        var rate = 0
        if listing.modality == .audio, let s = options.seconds {
            rate = try AudioReader(url: first.url).sampleRate
            targetFrames = Int((s * Double(rate)).rounded(.up) + Double(f - 1)) / f * f
        }
        let (_, signalShape, firstRate) = try Threading.serially { try prepare(first, frames: targetFrames) }
        if listing.modality == .audio { rate = firstRate }
        let itemShape = self.itemShape(signal: signalShape)
        let itemBytes = itemShape.reduce(1, *) * dtype.width
        let shardSize = options.shardSize ?? max(1, min(listing.items.count, (64 << 20) / max(1, itemBytes)))
        let c = codec.config
        var manifest = DatasetManifest(
            datasetID: "", modality: listing.modality, representation: options.representation,
            tensor: options.representation.rawValue, dtype: dtype.rawValue, itemShape: itemShape,
            model: .init(fingerprint: codec.fingerprintHex, type: c.type.rawValue, channels: c.channels, J: c.J,
                         latentDim: c.latentDim, latentBits: c.latentBits, quality: c.isVariableRate ? codec.quality : nil),
            preparation: .init(size: options.size, seconds: options.seconds, sampleRate: listing.modality == .audio ? rate : nil,
                               signalShape: signalShape, values: valuesDescription, roundTrip: options.roundTrip?.name),
            classes: listing.classes, items: listing.items.count, shardSize: shardSize,
            shardCount: (listing.items.count + shardSize - 1) / shardSize, worker: nil, shards: [])
        manifest.datasetID = datasetID(manifest)
        if options.workers > 1 { manifest.worker = .init(index: options.worker, count: options.workers) }

        let assigned = (0..<manifest.shardCount).filter { $0 % options.workers == options.worker - 1 }
        try clean(output, manifest: manifest, assigned: assigned)

        var records = [DatasetManifest.Shard]()
        var done = 0, encodedItems = 0, encodedShards = 0, kept = 0
        let total = assigned.reduce(0) { $0 + manifest.itemRange(ofShard: $1).count }
        var toEncode = [Int]()
        for s in assigned {
            let url = output.appendingPathComponent(DatasetManifest.shardFileName(s))
            let range = manifest.itemRange(ofShard: s)
            if !options.force, fm.fileExists(atPath: url.path), let record = finishedShard(url, index: s, manifest: manifest) {
                records.append(record)
                kept += 1
                done += range.count
                continue
            }
            toEncode.append(s)
        }
        progress(done, total)
        let group = max(1, 2 * Threading.count)
        for s in toEncode {
            let range = manifest.itemRange(ofShard: s)
            let per = itemShape.reduce(1, *)
            var values = Tensor(uninitialized: [range.count] + itemShape)
            var codedBytes = [Int](repeating: 0, count: range.count)
            var start = range.lowerBound
            while start < range.upperBound {
                let items = Array(listing.items[start..<min(range.upperBound, start + group)])
                var results = [Result<(values: Tensor, codedBytes: Int?), Error>?](repeating: nil, count: items.count)
                results.withUnsafeMutableBufferPointer { rb in
                    parallelFor(items.count) { i in
                        rb[i] = Result {
                            try Threading.serially {
                                let (x, shape, r) = try prepare(items[i], frames: targetFrames)
                                guard shape == signalShape else {
                                    let hint = DatasetListing.isBitstream(items[i].url) || DatasetListing.isBitstream(first.url)
                                        ? "encode every file at one size"
                                        : listing.modality == .image ? "give --size WxH to bring every image to one size" : "give --seconds S to bring every clip to one length"
                                    throw WallocError("\(items[i].url.path): prepared to \(shape), the first item to \(signalShape); \(hint)")
                                }
                                if listing.modality == .audio && r != rate {
                                    throw WallocError("\(items[i].url.path): sample rate \(r) Hz, the first item's is \(rate) Hz")
                                }
                                return try represent(x, sampleRate: r)
                            }
                        }
                    }
                }
                for (i, r) in results.enumerated() {
                    switch r! {
                    case .success(let (y, bytes)):
                        precondition(y.shape == itemShape, "item shape \(y.shape) != \(itemShape)")
                        codedBytes[start - range.lowerBound + i] = bytes ?? 0
                        let offset = (start - range.lowerBound + i) * per
                        values.withUnsafeMutableBufferPointer { vb in
                            y.withUnsafeBufferPointer { (vb.baseAddress! + offset).update(from: $0.baseAddress!, count: per) }
                        }
                    case .failure(let e as WallocError):
                        let path = items[i].url.path
                        throw e.message.hasPrefix(path) ? e : WallocError("\(path): \(e.message)")
                    case .failure(let e):
                        throw WallocError("\(items[i].url.path): \(e)")
                    }
                }
                start += items.count
                done += items.count
                encodedItems += items.count
                progress(done, total)
                if shouldStop() { throw ConversionInterrupted() }
            }
            records.append(try writeShard(s, values: values, range: range, codedBytes: options.roundTrip == nil ? nil : codedBytes,
                                          manifest: manifest, to: output))
            encodedShards += 1
        }
        manifest.shards = records.sorted { $0.index < $1.index }
        let name = options.workers == 1 ? DatasetManifest.fileName : DatasetManifest.partFileName(worker: options.worker, of: options.workers)
        let url = output.appendingPathComponent(name)
        try manifest.write(to: url)
        return ConversionSummary(manifest: manifest, manifestURL: url, encodedItems: encodedItems, encodedShards: encodedShards, keptShards: kept)
    }

    /// The conversion's identity: the format, the model (with its quality setting and the
    /// encoder's quantiser, which the fingerprint leaves out), the options and every item's name
    /// and label.
    func datasetID(_ m: DatasetManifest) -> String {
        var text = "\(DatasetManifest.formatName)/\(m.version)\nmodel=\(m.model.fingerprint)\nrepresentation=\(m.representation.rawValue)\n"
        if let name = m.preparation.roundTrip { text += "round_trip=\(name)\n" }
        // Encoder-side downscaling (not in the fingerprint), when the conversion applies it,
        // changes the latents and walloc round trips; absent otherwise, so older ids still hold.
        let rules = codec.config.rate?.downscale ?? []
        let walloc = m.preparation.roundTrip?.hasPrefix("walloc") == true
        if !rules.isEmpty && compressor.downscales && (walloc || m.representation == .latents) {
            text += "downscale=" + rules.map { "\($0.upTo):\($0.scale):\($0.qualityOffset)" }.joined(separator: ",") + "\n"
        }
        if m.representation == .latents {
            let r = codec.config.rate
            text += "quality=\(m.model.quality.map(String.init) ?? "-")\nquantizer=file;deadzone=\(r?.deadzone ?? 0);rd_lambda=\(r?.rdLambda ?? 0)\n"
        }
        text += "size=\(m.preparation.size.map { "\($0)" } ?? "-")\nseconds=\(m.preparation.seconds.map { "\($0)" } ?? "-")\n"
        text += "signal=\(m.preparation.signalShape)\nshard_size=\(m.shardSize)\nclasses=\(m.classes.joined(separator: "\u{1F}"))\n"
        for item in listing.items { text += "\(item.name)\t\(item.label)\n" }
        return SHA256Digest.hex(text)
    }

    /// Removes this worker's leftovers of killed runs, and refuses (or with `force` removes) files
    /// of another conversion.
    func clean(_ output: URL, manifest: DatasetManifest, assigned: [Int]) throws {
        let fm = FileManager.default
        let mine = Set(assigned.map(DatasetManifest.shardFileName))
        let ownManifest = options.workers == 1 ? DatasetManifest.fileName : DatasetManifest.partFileName(worker: options.worker, of: options.workers)
        for name in try fm.contentsOfDirectory(atPath: output.path) {
            let url = output.appendingPathComponent(name)
            if name.hasPrefix("."), let range = name.range(of: ".tmp-") {
                let target = String(name.dropFirst().prefix(upTo: range.lowerBound))
                if mine.contains(target) || target == ownManifest { try? fm.removeItem(at: url) }
                continue
            }
            var foreign = false
            if name.hasPrefix("shard-") && name.hasSuffix(".safetensors") {
                // Unreadable shards are not judged here: this worker's are encoded again, others are
                // left to `walloc latents merge` to report.
                if let id = (try? Safetensors.readHeader(url))?.metadata["dataset_id"] { foreign = id != manifest.datasetID }
            } else if name == DatasetManifest.fileName || (name.hasPrefix("manifest-part-") && name.hasSuffix(".json")) {
                foreign = (try? DatasetManifest.read(url))?.datasetID != manifest.datasetID
            }
            guard foreign else { continue }
            if !options.force {
                throw WallocError("\(output.path): \(name) belongs to another conversion (other model, options or inputs); use --force to replace it, or another folder")
            }
            try fm.removeItem(at: url)
        }
    }

    /// The record of a finished shard of this conversion at `url`, or nil when it is missing,
    /// of another conversion, or damaged (its data no longer matches the digest in its metadata).
    func finishedShard(_ url: URL, index: Int, manifest: DatasetManifest) -> DatasetManifest.Shard? {
        guard let header = try? Safetensors.readHeader(url), header.metadata["dataset_id"] == manifest.datasetID,
              let data = try? FileIO.read(url), data.count >= header.dataStart else { return nil }
        let range = manifest.itemRange(ofShard: index)
        let record = DatasetManifest.Shard(index: index, file: url.lastPathComponent, first: range.lowerBound, count: range.count,
                                           bytes: data.count, sha256: SHA256Digest.hex(data))
        guard DatasetShards.checkHeader(header, url: url, record: record, manifest: manifest) == nil,
              header.metadata["data_sha256"] == SHA256Digest.hex(data.subdata(in: (data.startIndex + header.dataStart)..<data.endIndex))
        else { return nil }
        return record
    }

    func writeShard(_ index: Int, values: Tensor, range: Range<Int>, codedBytes: [Int]?, manifest: DatasetManifest,
                    to output: URL) throws -> DatasetManifest.Shard {
        let names = listing.items[range].map(\.name)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let namesJSON = String(decoding: try encoder.encode(names), as: UTF8.self)
        let labels = Tensor(shape: [range.count], scalars: listing.items[range].map { Float($0.label) })
        var metadata = ["format": "\(DatasetManifest.formatName)/\(manifest.version)", "dataset_id": manifest.datasetID,
                        "shard": String(index), "first": String(range.lowerBound), "names": namesJSON]
        if let codedBytes { metadata["coded_bytes"] = "[" + codedBytes.map(String.init).joined(separator: ",") + "]" }
        let tensors = [manifest.tensor: values, "labels": labels], dtypes = [manifest.tensor: dtype, "labels": SafetensorsDType.i64]
        // The data section's digest goes into the metadata, so a damaged shard is found on resuming.
        let (header, body) = try Safetensors(tensors: tensors, dtypes: dtypes, metadata: metadata)
            .encodeParts { ["data_sha256": SHA256Digest.hex($0)] }
        let url = output.appendingPathComponent(DatasetManifest.shardFileName(index))
        // Writing and the whole file's digest (for the manifest) overlap.
        var written: Result<Void, Error> = .success(()), digest = ""
        parallelFor(2) { task in
            if task == 0 {
                written = Result {
                    try FileIO.writeAtomically(to: url) { tmp in
                        try header.write(to: tmp)
                        guard let handle = FileHandle(forWritingAtPath: tmp.path) else {
                            throw WallocError("\(url.path): cannot be written")
                        }
                        defer { try? handle.close() }
                        try handle.seekToEnd()
                        try handle.write(contentsOf: body)
                    }
                }
            } else {
                digest = SHA256Digest.hex([header, body])
            }
        }
        try written.get()
        return DatasetManifest.Shard(index: index, file: url.lastPathComponent, first: range.lowerBound, count: range.count,
                                     bytes: header.count + body.count, sha256: digest)
    }
}
