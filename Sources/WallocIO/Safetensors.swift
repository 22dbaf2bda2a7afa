import Foundation
import WallocTensor

/// The element types a safetensors file can store that Walloc reads and writes.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case u8 = "U8", i8 = "I8", i16 = "I16", i32 = "I32", i64 = "I64"

    /// Bytes per element.
    public var width: Int {
        switch self {
        case .u8, .i8: return 1
        case .f16, .bf16, .i16: return 2
        case .f32, .i32: return 4
        case .f64, .i64: return 8
        }
    }

    public var isInteger: Bool { [.u8, .i8, .i16, .i32, .i64].contains(self) }

    /// The values an integer type holds that float32 represents exactly.
    var integerRange: ClosedRange<Float>? {
        switch self {
        case .u8: return 0...255
        case .i8: return -128...127
        case .i16: return -32768...32767
        case .i32, .i64: return -16_777_216...16_777_216
        default: return nil
        }
    }
}

/// A minimal reader and writer for the safetensors format: an 8-byte little-endian header
/// length, a JSON header mapping names to `{dtype, shape, data_offsets}`, then raw data.
///
/// Tensors are held as float32 whatever their stored type: F16, BF16 and F64 are converted;
/// integer types (U8, I8, I16, I32, I64) are converted exactly (I32 and I64 values beyond ±2^24,
/// which float32 cannot hold exactly, are rejected). `dtypes` records each tensor's stored type,
/// and `encode` writes that type back (F32 by default), so integer data such as latents and labels
/// round-trip as integers and Python's `safetensors` reads them as int8/int16/int64 arrays.
/// Everything in the header is validated against the file size before any data is touched.
public struct Safetensors: Sendable {
    /// Tensors by name.
    public private(set) var tensors: [String: Tensor]
    /// The stored element type of each tensor (absent: F32).
    public var dtypes: [String: SafetensorsDType]
    /// The optional `__metadata__` string map.
    public private(set) var metadata: [String: String]

    public init(tensors: [String: Tensor], dtypes: [String: SafetensorsDType] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.dtypes = dtypes
        self.metadata = metadata
    }

    /// One tensor's entry in a file's header.
    public struct Entry: Sendable, Equatable {
        public var dtype: SafetensorsDType
        public var shape: [Int]
        /// Byte range within the data section (which starts at `Header.dataStart`).
        public var offsets: Range<Int>

        public init(dtype: SafetensorsDType, shape: [Int], offsets: Range<Int>) {
            self.dtype = dtype; self.shape = shape; self.offsets = offsets
        }
    }

    /// A file's header: its entries, its metadata and where the data section starts.
    public struct Header: Sendable {
        public var entries: [String: Entry]
        public var metadata: [String: String]
        public var dataStart: Int
    }

    /// Reads only the header of a safetensors file (not the data), checked against the file size.
    public static func readHeader(_ url: URL) throws -> Header {
        guard let handle = FileHandle(forReadingAtPath: url.path) else { throw WallocError("\(url.path): cannot be opened") }
        defer { try? handle.close() }
        do {
            let size = Int(try handle.seekToEnd())
            try handle.seek(toOffset: 0)
            let prefix = try handle.read(upToCount: 8) ?? Data()
            guard prefix.count == 8 else { throw WallocError("not a safetensors file: shorter than its 8-byte header length") }
            let n = headerLength(prefix)
            guard n >= 2, n <= UInt64(size - 8), n <= 100_000_000 else {
                throw WallocError("not a safetensors file: header length \(n) does not fit the file size \(size)")
            }
            let json = try handle.read(upToCount: Int(n)) ?? Data()
            guard json.count == Int(n) else { throw WallocError("truncated safetensors header") }
            return try parseHeader(json, dataSize: size - 8 - Int(n))
        } catch let error as WallocError {
            throw WallocError("\(url.path): \(error.message)")
        } catch {
            throw WallocError("\(url.path): cannot be read (\(error.localizedDescription))")
        }
    }

    private static func headerLength(_ d: Data) -> UInt64 {
        d.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }

    private static func parseHeader(_ bytes: Data, dataSize: Int) throws -> Header {
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: bytes)
        } catch {
            throw WallocError("malformed safetensors header: not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw WallocError("malformed safetensors header: not a JSON object") }
        var entries = [String: Entry]()
        var metadata = [String: String]()
        for (name, entry) in header {
            if name == "__metadata__" {
                guard let m = entry as? [String: Any] else { throw WallocError("malformed safetensors header: __metadata__ is not an object") }
                for (k, v) in m { metadata[k] = (v as? String) ?? "\(v)" }
                continue
            }
            guard let e = entry as? [String: Any], let dtypeName = e["dtype"] as? String,
                  let shapeAny = e["shape"] as? [Any], let offsAny = e["data_offsets"] as? [Any], offsAny.count == 2
            else { throw WallocError("malformed safetensors header: entry '\(name)' lacks dtype, shape or data_offsets") }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw WallocError("tensor '\(name)' has dtype \(dtypeName); supported: \(SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let shape = try shapeAny.map { v -> Int in
                guard let i = (v as? NSNumber)?.intValue, i >= 0, i <= Int(Int32.max) else {
                    throw WallocError("malformed safetensors header: '\(name)' has a bad shape")
                }
                return i
            }
            let offs = try offsAny.map { v -> Int in
                guard let i = (v as? NSNumber)?.intValue, i >= 0 else {
                    throw WallocError("malformed safetensors header: '\(name)' has bad data offsets")
                }
                return i
            }
            var count = 1
            for d in shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o, p <= dataSize else { throw WallocError("malformed safetensors header: '\(name)' shape \(shape) exceeds the file") }
                count = p
            }
            guard offs[0] <= offs[1], offs[1] <= dataSize, offs[1] - offs[0] == count * dtype.width else {
                throw WallocError("malformed safetensors header: '\(name)' data offsets \(offs) do not match shape \(shape) (\(dtypeName)) within \(dataSize) data bytes")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, offsets: offs[0]..<offs[1])
        }
        return Header(entries: entries, metadata: metadata, dataStart: 8 + bytes.count)
    }

    /// Reads a safetensors file.
    /// Each tensor's bytes are read from the file straight into its storage (one copy, no
    /// file-sized buffer: a model's weights load in about half the time of reading the file whole
    /// and then copying it).
    public static func read(_ url: URL) throws -> Safetensors {
        try FileIO.requireFile(url)
        let header = try readHeader(url)
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { throw WallocError("\(url.path): cannot be opened") }
        defer { close(fd) }
        do {
            // Tensors are read concurrently (reading is mostly copying from the page cache and
            // faulting in new memory), largest first.
            let entries = header.entries.sorted { ($0.value.offsets.count, $0.key) > ($1.value.offsets.count, $1.key) }
            let results = Locked([Result<Tensor, Error>?](repeating: nil, count: entries.count))
            parallelFor(entries.count) { i in
                let (name, e) = entries[i]
                let r = Result { () throws -> Tensor in
                    let count = e.shape.reduce(1, *)
                    let offset = header.dataStart + e.offsets.lowerBound
                    let values: [Float]
                    if e.dtype == .f32, Int(littleEndian: 1) == 1 {
                        values = try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                            try readFully(fd, into: UnsafeMutableRawBufferPointer(buffer), at: offset)
                            initialized = count
                        }
                    } else {
                        let bytes = try [UInt8](unsafeUninitializedCapacity: e.offsets.count) { buffer, initialized in
                            try readFully(fd, into: UnsafeMutableRawBufferPointer(buffer), at: offset)
                            initialized = e.offsets.count
                        }
                        values = bytes.withUnsafeBytes { convert($0, dtype: e.dtype, count: count) }
                    }
                    try checkIntegers(values, name: name, dtype: e.dtype)
                    return Tensor(shape: e.shape, scalars: values)
                }
                results.withLock { $0[i] = r }
            }
            var tensors = [String: Tensor]()
            var dtypes = [String: SafetensorsDType]()
            for (i, r) in results.withLock({ $0 }).enumerated() {
                tensors[entries[i].key] = try r!.get()
                dtypes[entries[i].key] = entries[i].value.dtype
            }
            return Safetensors(tensors: tensors, dtypes: dtypes, metadata: header.metadata)
        } catch let error as WallocError {
            throw WallocError("\(url.path): \(error.message)")
        }
    }

    /// Fills `buffer` from the file at `offset`, or throws (the file ended or could not be read).
    private static func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw WallocError(n == 0 ? "truncated safetensors data" : "cannot be read (errno \(errno))") }
            done += n
        }
    }

    /// Integer tensors must hold values float32 represents exactly.
    private static func checkIntegers(_ values: [Float], name: String, dtype: SafetensorsDType) throws {
        if let range = dtype.integerRange, dtype == .i32 || dtype == .i64,
           let bad = values.firstIndex(where: { !range.contains($0) }) {
            throw WallocError("tensor '\(name)' (\(dtype.rawValue)) holds a value beyond ±2^24 at index \(bad), which float32 cannot represent exactly")
        }
    }

    /// Decodes safetensors bytes.
    public static func decode(_ data: Data) throws -> Safetensors {
        guard data.count >= 8 else { throw WallocError("not a safetensors file: shorter than its 8-byte header length") }
        let n = headerLength(data)
        guard n >= 2, n <= UInt64(data.count - 8), n <= 100_000_000 else {
            throw WallocError("not a safetensors file: header length \(n) does not fit the file size \(data.count)")
        }
        let headerEnd = 8 + Int(n)
        let header = try parseHeader(data.subdata(in: (data.startIndex + 8)..<(data.startIndex + headerEnd)),
                                     dataSize: data.count - headerEnd)
        var tensors = [String: Tensor]()
        var dtypes = [String: SafetensorsDType]()
        for (name, e) in header.entries {
            let start = data.startIndex + headerEnd + e.offsets.lowerBound
            let count = e.shape.reduce(1, *)
            let values = data[start..<(start + e.offsets.count)].withUnsafeBytes { convert($0, dtype: e.dtype, count: count) }
            try checkIntegers(values, name: name, dtype: e.dtype)
            tensors[name] = Tensor(shape: e.shape, scalars: values)
            dtypes[name] = e.dtype
        }
        return Safetensors(tensors: tensors, dtypes: dtypes, metadata: header.metadata)
    }

    private static func convert(_ p: UnsafeRawBufferPointer, dtype: SafetensorsDType, count: Int) -> [Float] {
        switch dtype {
        case .f32:
            #if _endian(little)
            // A straight copy (the element-wise map took 12 ms for the RGB model's 1.7 M weights).
            return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                if count > 0 { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: p[0..<(4 * count)])) }
                initialized = count
            }
            #else
            return (0..<count).map { Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            #endif
        case .f64:
            return (0..<count).map { Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
        case .bf16:
            return (0..<count).map { Float(bitPattern: UInt32(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
        case .f16:
            return (0..<count).map { halfToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
        case .u8:
            return (0..<count).map { Float(p[$0]) }
        case .i8:
            return (0..<count).map { Float(Int8(bitPattern: p[$0])) }
        case .i16:
            return (0..<count).map { Float(Int16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
        case .i32:
            return (0..<count).map { Float(Int32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
        case .i64:
            return (0..<count).map { Float(Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
        }
    }

    private static func halfToFloat(_ h: UInt16) -> Float {
        let sign: Float = (h & 0x8000) != 0 ? -1 : 1
        let exp = Int((h >> 10) & 0x1F), frac = Float(h & 0x3FF)
        if exp == 0 { return sign * frac * 0x1p-24 }
        if exp == 31 { return frac == 0 ? sign * .infinity : .nan }
        return sign * (1 + frac / 1024) * Float(sign: .plus, exponent: exp - 15, significand: 1)
    }

    /// Values per task when checking and converting large tensors in parallel.
    static let chunk = 1 << 20

    /// The index of the first value that is not an integer inside `range`, if any.
    static func firstNonInteger(_ t: Tensor, in range: ClosedRange<Float>) -> Int? {
        t.withUnsafeBufferPointer { src in
            let lo = range.lowerBound, hi = range.upperBound
            let chunks = (src.count + chunk - 1) / chunk
            var firstBad = [Int](repeating: Int.max, count: chunks)
            firstBad.withUnsafeMutableBufferPointer { bad in
                parallelFor(chunks) { c in
                    for i in (c * chunk)..<min(src.count, (c + 1) * chunk) {
                        let v = src[i]
                        if !(v >= lo && v <= hi && v.rounded(.towardZero) == v) { bad[c] = i; return }
                    }
                }
            }
            return firstBad.first { $0 != Int.max }
        }
    }

    /// Integer values (checked by the caller) as little-endian `dtype` bytes, in parallel pieces.
    static func store(_ src: UnsafeBufferPointer<Float>, as dtype: SafetensorsDType, into out: UnsafeMutableRawBufferPointer) {
        func values<T: FixedWidthInteger>(_: T.Type) {
            let dst = out.baseAddress!.assumingMemoryBound(to: T.self)
            parallelFor((src.count + chunk - 1) / chunk) { c in
                for i in (c * chunk)..<min(src.count, (c + 1) * chunk) { dst[i] = T(truncatingIfNeeded: Int64(src[i])).littleEndian }
            }
        }
        switch dtype {
        case .u8: values(UInt8.self)
        case .i8: values(Int8.self)
        case .i16: values(Int16.self)
        case .i32: values(Int32.self)
        default: values(Int64.self)
        }
    }

    /// The bytes of a safetensors file holding these tensors, each in its type from `dtypes`
    /// (F32 when absent; written types: F32 and the integer types), names sorted. Throws when an
    /// integer tensor holds a value that is not an integer in its type's range.
    public func encode() throws -> Data {
        let (header, body) = try encodeParts(addingMetadata: { _ in [:] })
        return header + body
    }

    /// `encode()` in two parts, the header (with its length) and the data section, with
    /// metadata computed from the data section (for example its digest); the tensors are
    /// converted once, and a caller can write the parts without joining them.
    public func encodeParts(addingMetadata extra: (Data) -> [String: String]) throws -> (header: Data, body: Data) {
        var entries = [String]()
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!, dtype = dtypes[name] ?? .f32
            guard dtype == .f32 || dtype.isInteger else {
                throw WallocError("tensor '\(name)': writing \(dtype.rawValue) is not supported (F32 or an integer type)")
            }
            if let range = dtype.integerRange, let bad = Safetensors.firstNonInteger(t, in: range) {
                throw WallocError("tensor '\(name)': value \(t.scalars[bad]) at index \(bad) is not an integer that \(dtype.rawValue) holds")
            }
            let bytes = t.count * dtype.width
            entries.append("\(jsonString(name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var body = Data(count: offset)
        body.withUnsafeMutableBytes { out in
            var at = 0
            for name in names {
                let t = tensors[name]!, dtype = dtypes[name] ?? .f32
                let part = UnsafeMutableRawBufferPointer(rebasing: out[at..<(at + t.count * dtype.width)])
                t.withUnsafeBufferPointer { src in
                    if dtype == .f32 { part.copyMemory(from: UnsafeRawBufferPointer(src)) } else { Safetensors.store(src, as: dtype, into: part) }
                }
                at += t.count * dtype.width
            }
        }
        let all = metadata.merging(extra(body)) { $1 }
        if !all.isEmpty {
            let m = all.keys.sorted().map { "\(jsonString($0)):\(jsonString(all[$0]!))" }.joined(separator: ",")
            entries.insert("\"__metadata__\":{\(m)}", at: 0)
        }
        var header = "{" + entries.joined(separator: ",") + "}"
        while (8 + header.utf8.count) % 8 != 0 { header += " " }
        var data = Data()
        data.reserveCapacity(8 + header.utf8.count)
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        return (data, body)
    }

    /// Writes the file atomically.
    public func write(to url: URL) throws {
        try FileIO.writeAtomically(encode(), to: url)
    }

    private func jsonString(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if c.value < 0x20 { out += String(format: "\\u%04x", c.value) } else { out.unicodeScalars.append(c) }
            }
        }
        return out + "\""
    }
}
