import Foundation
import WallocIO
import WallocModels
import WallocTensor

/// Checking, merging and loading folders of latent shards.
public enum DatasetShards {
    /// What `check` found.
    public struct Report: Sendable {
        public var manifest: DatasetManifest
        /// Where each shard lives.
        public var locations: [Int: URL]
        public var bytes: Int
    }

    /// Checks the manifests in `folders` (complete or partial, from any number of workers): they
    /// must describe the same conversion and together cover every shard exactly once (a shard
    /// present twice must be the same bytes); every shard file must match its size, SHA-256,
    /// shapes and identity. Throws listing every problem found. Returns the complete manifest.
    public static func check(_ folders: [URL]) throws -> Report {
        guard !folders.isEmpty else { throw WallocError("no dataset folders given") }
        var found = [(url: URL, folder: URL, manifest: DatasetManifest)]()
        for folder in folders {
            let ms = try DatasetManifest.manifests(in: folder)
            if ms.isEmpty { throw WallocError("\(folder.path): no \(DatasetManifest.fileName) or manifest-part-*.json (not a finished conversion)") }
            found += ms.map { ($0.url, folder, $0.manifest) }
        }
        let reference = found[0]
        for f in found.dropFirst() where !f.manifest.sameConversion(as: reference.manifest) {
            let why = f.manifest.datasetID != reference.manifest.datasetID ? "a different conversion (dataset_id differs)" : "different settings"
            throw WallocError("\(f.url.path) and \(reference.url.path) describe \(why); only parts of one conversion can be merged")
        }
        let m = reference.manifest
        var problems = [String]()
        var records = [Int: (shard: DatasetManifest.Shard, folder: URL)]()
        for f in found {
            for s in f.manifest.shards {
                guard (0..<m.shardCount).contains(s.index) else {
                    problems.append("\(f.url.path): shard index \(s.index) outside 0..<\(m.shardCount)"); continue
                }
                let range = m.itemRange(ofShard: s.index)
                if s.file != DatasetManifest.shardFileName(s.index) || s.first != range.lowerBound || s.count != range.count {
                    problems.append("\(f.url.path): shard \(s.index) record (\(s.file), first \(s.first), count \(s.count)) does not match the layout")
                    continue
                }
                if let existing = records[s.index] {
                    if existing.shard.sha256 != s.sha256 {
                        problems.append("shard \(s.index) differs between \(existing.folder.path) and \(f.folder.path)")
                    }
                    continue
                }
                records[s.index] = (s, f.folder)
            }
        }
        let missing = (0..<m.shardCount).filter { records[$0] == nil }
        if !missing.isEmpty {
            let list = missing.prefix(20).map(String.init).joined(separator: ", ") + (missing.count > 20 ? ", ..." : "")
            problems.append("missing shards \(list) of \(m.shardCount) (a worker has not finished?)")
        }
        var bytes = 0
        var locations = [Int: URL]()
        for index in records.keys.sorted() {
            let (s, folder) = records[index]!
            let url = folder.appendingPathComponent(s.file)
            locations[index] = url
            bytes += s.bytes
            if let problem = verifyShard(url, record: s, manifest: m) { problems.append(problem) }
        }
        if !problems.isEmpty {
            throw WallocError(problems.count == 1 ? problems[0] : "\(problems.count) problems:\n  " + problems.joined(separator: "\n  "))
        }
        var complete = m
        complete.worker = nil
        complete.shards = records.keys.sorted().map { records[$0]!.shard }
        return Report(manifest: complete, locations: locations, bytes: bytes)
    }

    /// Checks one shard file against its record; returns the problem, if any.
    public static func verifyShard(_ url: URL, record s: DatasetManifest.Shard, manifest m: DatasetManifest) -> String? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path), let size = attributes[.size] as? Int else {
            return "\(url.path): missing"
        }
        guard size == s.bytes else { return "\(url.path): \(size) bytes, the manifest says \(s.bytes) (truncated or replaced)" }
        do {
            let digest = try SHA256Digest.hex(fileAt: url)
            guard digest == s.sha256 else { return "\(url.path): SHA-256 mismatch (corrupted or replaced)" }
            if let problem = checkHeader(try Safetensors.readHeader(url), url: url, record: s, manifest: m) { return problem }
        } catch let e as WallocError {
            return e.message
        } catch {
            return "\(url.path): \(error)"
        }
        return nil
    }

    /// Checks a shard's header against its record: the data tensor's dtype and shape, the labels,
    /// and the conversion identity and shard index in the metadata.
    static func checkHeader(_ header: Safetensors.Header, url: URL, record s: DatasetManifest.Shard, manifest m: DatasetManifest) -> String? {
        guard let data = header.entries[m.tensor], data.dtype.rawValue == m.dtype, data.shape == [s.count] + m.itemShape else {
            return "\(url.path): no \(m.dtype) tensor '\(m.tensor)' of shape \([s.count] + m.itemShape)"
        }
        guard let labels = header.entries["labels"], labels.dtype == .i64, labels.shape == [s.count] else {
            return "\(url.path): no int64 'labels' of shape [\(s.count)]"
        }
        guard header.metadata["dataset_id"] == m.datasetID, header.metadata["shard"] == String(s.index) else {
            return "\(url.path): belongs to another conversion or shard"
        }
        return nil
    }

    /// Checks `folders` and writes the complete manifest to `output`, copying there any shard that
    /// lives elsewhere. Returns the report.
    @discardableResult
    public static func merge(_ folders: [URL], into output: URL) throws -> Report {
        let report = try check(folders)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let out = output.standardizedFileURL.resolvingSymlinksInPath().path
        for (index, url) in report.locations.sorted(by: { $0.key < $1.key })
        where url.deletingLastPathComponent().standardizedFileURL.resolvingSymlinksInPath().path != out {
            let target = output.appendingPathComponent(DatasetManifest.shardFileName(index))
            try FileIO.writeAtomically(try FileIO.read(url), to: target)
        }
        try report.manifest.write(to: output.appendingPathComponent(DatasetManifest.fileName))
        return report
    }
}

/// A whole dataset in memory: the stored integers (`[Int16]`, item after item) and labels.
extension DatasetShards {
    /// Each item's compressed size, from the shard headers of a folder whose items went through a
    /// codec round trip (nil otherwise); reads no item data.
    public static func codedBytes(_ folder: URL, manifest m: DatasetManifest) throws -> [Int]? {
        guard m.preparation.roundTrip != nil else { return nil }
        var sizes = [Int](repeating: 0, count: m.items)
        for s in m.shards {
            let url = folder.appendingPathComponent(s.file)
            for (i, n) in try codedBytes(try Safetensors.readHeader(url), url: url, count: s.count).enumerated() { sizes[s.first + i] = n }
        }
        return sizes
    }

    /// The `coded_bytes` metadata of one shard of `count` items.
    static func codedBytes(_ header: Safetensors.Header, url: URL, count: Int) throws -> [Int] {
        guard let json = header.metadata["coded_bytes"], let list = try? JSONDecoder().decode([Int].self, from: Data(json.utf8)),
              list.count == count else {
            throw WallocError("\(url.path): no coded_bytes for its \(count) item(s) (the manifest names a round trip)")
        }
        return list
    }
}

public struct LabeledDataset: Sendable {
    public var manifest: DatasetManifest
    /// `count · itemShape.product` stored values (latents, 8-bit pixels or 16-bit samples).
    public var values: [Int16]
    public var labels: [Int32]
    public var names: [String]
    /// Each item's compressed size in bytes, when the items went through a codec round trip
    /// (`DatasetManifest.Preparation.roundTrip`).
    public var codedBytes: [Int]?
    public var count: Int { labels.count }
    public var itemShape: [Int] { manifest.itemShape }
    public var itemCount: Int { manifest.itemShape.reduce(1, *) }

    public init(manifest: DatasetManifest, values: [Int16], labels: [Int32], names: [String]) {
        precondition(values.count == labels.count * manifest.itemShape.reduce(1, *) && names.count == labels.count, "dataset sizes do not agree")
        self.manifest = manifest; self.values = values; self.labels = labels; self.names = names
    }

    /// Loads a folder with a complete `manifest.json`, checking every shard's SHA-256.
    public static func load(_ folder: URL) throws -> LabeledDataset {
        let url = folder.appendingPathComponent(DatasetManifest.fileName)
        guard FileManager.default.fileExists(atPath: url.path) else {
            let parts = (try? DatasetManifest.manifests(in: folder)) ?? []
            throw WallocError(parts.isEmpty ? "\(folder.path): no \(DatasetManifest.fileName) (convert the data with walloc latents first)"
                              : "\(folder.path): holds only partial manifests; merge them with walloc latents merge")
        }
        let m = try DatasetManifest.read(url)
        guard m.shards.map(\.index) == Array(0..<m.shardCount) else { throw WallocError("\(url.path): does not list every shard") }
        guard let dtype = SafetensorsDType(rawValue: m.dtype), [.u8, .i8, .i16].contains(dtype) else {
            throw WallocError("\(url.path): dtype \(m.dtype) is not U8, I8 or I16")
        }
        let per = m.itemShape.reduce(1, *)
        var values = [Int16](repeating: 0, count: m.items * per)
        var labels = [Int32](repeating: -1, count: m.items)
        var names = [String](repeating: "", count: m.items)
        var codedBytes: [Int]? = m.preparation.roundTrip == nil ? nil : [Int](repeating: 0, count: m.items)
        for s in m.shards {
            let shardURL = folder.appendingPathComponent(s.file)
            let data = try FileIO.read(shardURL)
            guard data.count == s.bytes, SHA256Digest.hex(data) == s.sha256 else {
                throw WallocError("\(shardURL.path): size or SHA-256 does not match the manifest (corrupted or replaced)")
            }
            let header = try Safetensors.readHeader(shardURL)
            if let problem = DatasetShards.checkHeader(header, url: shardURL, record: s, manifest: m) { throw WallocError(problem) }
            let entry = header.entries[m.tensor]!, labelEntry = header.entries["labels"]!
            data.withUnsafeBytes { raw in
                let base = header.dataStart
                values.withUnsafeMutableBufferPointer { vb in
                    let dst = vb.baseAddress! + s.first * per
                    let src = raw.baseAddress! + base + entry.offsets.lowerBound
                    for i in 0..<(s.count * per) {
                        switch dtype {
                        case .u8: dst[i] = Int16(src.load(fromByteOffset: i, as: UInt8.self))
                        case .i8: dst[i] = Int16(src.load(fromByteOffset: i, as: Int8.self))
                        default: dst[i] = Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))
                        }
                    }
                }
                for i in 0..<s.count {
                    let v = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: base + labelEntry.offsets.lowerBound + 8 * i, as: Int64.self))
                    labels[s.first + i] = Int32(clamping: v)
                }
            }
            if let json = header.metadata["names"], let list = try? JSONDecoder().decode([String].self, from: Data(json.utf8)), list.count == s.count {
                for (i, n) in list.enumerated() { names[s.first + i] = n }
            }
            if codedBytes != nil {
                for (i, n) in try DatasetShards.codedBytes(header, url: shardURL, count: s.count).enumerated() { codedBytes![s.first + i] = n }
            }
        }
        var set = LabeledDataset(manifest: m, values: values, labels: labels, names: names)
        set.codedBytes = codedBytes
        return set
    }
}
