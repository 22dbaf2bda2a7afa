import Foundation
import WallocIO
import WallocModels
import WallocTensor

/// What a dataset folder's shards hold.
public enum DatasetRepresentation: String, Codable, Sendable {
    /// The codec's integer latents.
    case latents
    /// The prepared input resized to as many values as the latents hold (the baseline).
    case resized
    /// The prepared input at full resolution (8-bit pixels, 16-bit samples), optionally after a
    /// codec's round trip (`ConversionOptions.roundTrip`): the upper bound, and what a model
    /// trained on originals sees from decoded files.
    case signal
}

/// The JSON manifest of a folder of latent shards (`manifest.json`, or
/// `manifest-part-I-of-N.json` for worker `I` of `N`): the model, the preparation, the shapes,
/// the classes and every shard with its item count and SHA-256.
///
/// Shard `s` holds items `s·shardSize ..< min(items, (s+1)·shardSize)` of the listing's order; it is
/// `shard-SSSSS.safetensors` with the tensors `latents` (or `resized`, see `tensor`) `[n, ...]`
/// in `dtype`, `labels` int64 `[n]`, and the metadata keys `names` (a JSON array of the items'
/// names), `dataset_id`, `shard`, `first` and `format` (and `coded_bytes`, a JSON array of each
/// item's compressed size, after a codec round trip).
public struct DatasetManifest: Codable, Sendable, Equatable {
    public static let fileName = "manifest.json"
    public static let formatName = "walloc-latents"

    public struct Model: Codable, Sendable, Equatable {
        public init(fingerprint: String, type: String, channels: Int, J: Int, latentDim: Int, latentBits: Int, quality: Int? = nil) {
            self.fingerprint = fingerprint; self.type = type; self.channels = channels; self.J = J; self.latentDim = latentDim; self.latentBits = latentBits
            self.quality = quality
        }

        /// `Codec.fingerprintHex`.
        public var fingerprint: String
        public var type: String
        public var channels: Int
        public var J: Int
        public var latentDim: Int
        public var latentBits: Int
        /// The quality setting a variable-rate model encoded at (absent for fixed-rate models).
        public var quality: Int?

        enum CodingKeys: String, CodingKey {
            case fingerprint, type, channels, J = "J", latentDim = "latent_dim", latentBits = "latent_bits", quality
        }
    }

    public struct Preparation: Codable, Sendable, Equatable {
        public init(size: [Int]?, seconds: Double?, sampleRate: Int?, signalShape: [Int], values: String, roundTrip: String? = nil) {
            self.size = size; self.seconds = seconds; self.sampleRate = sampleRate; self.signalShape = signalShape; self.values = values
            self.roundTrip = roundTrip
        }

        /// `[width, height]` every image was resized (area) and centre-cropped to, if given.
        public var size: [Int]?
        /// The clip length in seconds audio was cut or zero-padded to, if given.
        public var seconds: Double?
        /// The audio sample rate (every file's).
        public var sampleRate: Int?
        /// The signal the codec saw, `[C, H, W]` or `[C, L]` (after padding to a multiple of 2^J).
        public var signalShape: [Int]
        /// How the stored values relate to the signal.
        public var values: String
        /// The codec and setting every item went through before it was stored (`jpeg:50`,
        /// `opus:24`, `walloc:45`), if any; each shard's `coded_bytes` metadata gives the sizes.
        public var roundTrip: String?

        enum CodingKeys: String, CodingKey {
            case size, seconds, sampleRate = "sample_rate", signalShape = "signal_shape", values, roundTrip = "round_trip"
        }
    }

    public struct Shard: Codable, Sendable, Equatable {
        public init(index: Int, file: String, first: Int, count: Int, bytes: Int, sha256: String) {
            self.index = index; self.file = file; self.first = first; self.count = count; self.bytes = bytes; self.sha256 = sha256
        }

        public var index: Int
        public var file: String
        /// Index of the shard's first item in the dataset.
        public var first: Int
        public var count: Int
        public var bytes: Int
        public var sha256: String
    }

    public struct Worker: Codable, Sendable, Equatable {
        public init(index: Int, count: Int) {
            self.index = index; self.count = count
        }

        public var index: Int
        public var count: Int
    }

    public var format = DatasetManifest.formatName
    public var version = 1
    /// SHA-256 over the model fingerprint, the options and every item's name and label: shards and
    /// manifests of the same conversion carry the same identity.
    public var datasetID: String
    public var modality: Modality
    public var representation: DatasetRepresentation
    /// The shards' data tensor: "latents", "resized" or "signal".
    public var tensor: String
    /// "I8", "I16" (latents; audio baselines) or "U8" (image baselines).
    public var dtype: String
    /// One item's shape: `[latent_dim, h, w]` / `[latent_dim, l]`, or the resized signal's.
    public var itemShape: [Int]
    public var model: Model
    public var preparation: Preparation
    public var classes: [String]
    public var items: Int
    public var shardSize: Int
    public var shardCount: Int
    /// Set in a worker's partial manifest.
    public var worker: Worker?
    /// The shards this manifest covers, by index.
    public var shards: [Shard]

    public init(datasetID: String, modality: Modality, representation: DatasetRepresentation, tensor: String, dtype: String,
                itemShape: [Int], model: Model, preparation: Preparation, classes: [String], items: Int, shardSize: Int,
                shardCount: Int, worker: Worker? = nil, shards: [Shard] = []) {
        self.datasetID = datasetID; self.modality = modality; self.representation = representation; self.tensor = tensor
        self.dtype = dtype; self.itemShape = itemShape; self.model = model; self.preparation = preparation; self.classes = classes
        self.items = items; self.shardSize = shardSize; self.shardCount = shardCount; self.worker = worker; self.shards = shards
    }

    enum CodingKeys: String, CodingKey {
        case format, version, datasetID = "dataset_id", modality, representation, tensor, dtype, itemShape = "item_shape"
        case model, preparation, classes, items, shardSize = "shard_size", shardCount = "shard_count", worker, shards
    }

    public static func shardFileName(_ index: Int) -> String { String(format: "shard-%05d.safetensors", index) }

    public static func partFileName(worker: Int, of count: Int) -> String { "manifest-part-\(worker)-of-\(count).json" }

    /// The items shard `index` holds.
    public func itemRange(ofShard index: Int) -> Range<Int> { (index * shardSize)..<min(items, (index + 1) * shardSize) }

    /// Bytes of one item's values.
    public var itemBytes: Int { itemShape.reduce(1, *) * (SafetensorsDType(rawValue: dtype)?.width ?? 1) }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self) + Data("\n".utf8)
    }

    public func write(to url: URL) throws {
        try FileIO.writeAtomically(encoded(), to: url)
    }

    public static func read(_ url: URL) throws -> DatasetManifest {
        let data = try FileIO.read(url)
        let m: DatasetManifest
        do {
            m = try JSONDecoder().decode(DatasetManifest.self, from: data)
        } catch {
            throw WallocError("\(url.path): not a latent dataset manifest (\(error))")
        }
        guard m.format == formatName, m.version == 1 else {
            throw WallocError("\(url.path): format \(m.format) version \(m.version) is not \(formatName) version 1")
        }
        guard m.shardSize > 0, m.items >= 0, m.shardCount == (m.items + m.shardSize - 1) / m.shardSize else {
            throw WallocError("\(url.path): inconsistent item count \(m.items), shard size \(m.shardSize) and shard count \(m.shardCount)")
        }
        return m
    }

    /// The manifests in a dataset folder: `manifest.json` and any partial manifests.
    public static func manifests(in folder: URL) throws -> [(url: URL, manifest: DatasetManifest)] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDir), isDir.boolValue else {
            throw WallocError("\(folder.path): no such folder")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0 == fileName || ($0.hasPrefix("manifest-part-") && $0.hasSuffix(".json")) }.sorted()
        return try names.map { (folder.appendingPathComponent($0), try read(folder.appendingPathComponent($0))) }
    }

    /// Whether `other` describes the same conversion (everything but the shard list and worker).
    public func sameConversion(as other: DatasetManifest) -> Bool {
        var a = self, b = other
        a.shards = []; b.shards = []; a.worker = nil; b.worker = nil
        return a == b
    }
}
