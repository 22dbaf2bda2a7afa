import Foundation
import WallocTensor

/// A minimal reader and writer for the safetensors format: an 8-byte little-endian header
/// length, a JSON header mapping names to `{dtype, shape, data_offsets}`, then raw data.
///
/// F32 tensors are read as they are; F16, BF16 and F64 are converted to float32. Everything in the
/// header is validated against the file size before any data is touched.
public struct Safetensors: Sendable {
    /// Tensors by name.
    public private(set) var tensors: [String: Tensor]
    /// The optional `__metadata__` string map.
    public private(set) var metadata: [String: String]

    public init(tensors: [String: Tensor], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Reads a safetensors file.
    public static func read(_ url: URL) throws -> Safetensors {
        let data = try FileIO.read(url)
        do {
            return try decode(data)
        } catch let error as WallocError {
            throw WallocError("\(url.path): \(error.message)")
        }
    }

    /// Decodes safetensors bytes.
    public static func decode(_ data: Data) throws -> Safetensors {
        guard data.count >= 8 else { throw WallocError("not a safetensors file: shorter than its 8-byte header length") }
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n >= 2, n <= UInt64(data.count - 8), n <= 100_000_000 else {
            throw WallocError("not a safetensors file: header length \(n) does not fit the file size \(data.count)")
        }
        let headerEnd = 8 + Int(n)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data.subdata(in: (data.startIndex + 8)..<(data.startIndex + headerEnd)))
        } catch {
            throw WallocError("malformed safetensors header: not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw WallocError("malformed safetensors header: not a JSON object") }
        let dataSize = data.count - headerEnd
        var tensors = [String: Tensor]()
        var metadata = [String: String]()
        for (name, entry) in header {
            if name == "__metadata__" {
                guard let m = entry as? [String: Any] else { throw WallocError("malformed safetensors header: __metadata__ is not an object") }
                for (k, v) in m { metadata[k] = (v as? String) ?? "\(v)" }
                continue
            }
            guard let e = entry as? [String: Any], let dtype = e["dtype"] as? String,
                  let shapeAny = e["shape"] as? [Any], let offsAny = e["data_offsets"] as? [Any], offsAny.count == 2
            else { throw WallocError("malformed safetensors header: entry '\(name)' lacks dtype, shape or data_offsets") }
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
            let width: Int
            switch dtype {
            case "F32": width = 4
            case "F16", "BF16": width = 2
            case "F64": width = 8
            default: throw WallocError("tensor '\(name)' has dtype \(dtype); only F32 (or F16, BF16, F64, converted) is supported")
            }
            guard offs[0] <= offs[1], offs[1] <= dataSize, offs[1] - offs[0] == count * width else {
                throw WallocError("malformed safetensors header: '\(name)' data offsets \(offs) do not match shape \(shape) (\(dtype)) within \(dataSize) data bytes")
            }
            let start = data.startIndex + headerEnd + offs[0]
            let raw = data.subdata(in: start..<(start + count * width))
            tensors[name] = Tensor(shape: shape, scalars: convert(raw, dtype: dtype, count: count))
        }
        return Safetensors(tensors: tensors, metadata: metadata)
    }

    private static func convert(_ raw: Data, dtype: String, count: Int) -> [Float] {
        raw.withUnsafeBytes { (p: UnsafeRawBufferPointer) -> [Float] in
            switch dtype {
            case "F32":
                return (0..<count).map { Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            case "F64":
                return (0..<count).map { Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
            case "BF16":
                return (0..<count).map { Float(bitPattern: UInt32(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
            default:  // F16
                return (0..<count).map { halfToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
            }
        }
    }

    private static func halfToFloat(_ h: UInt16) -> Float {
        let sign: Float = (h & 0x8000) != 0 ? -1 : 1
        let exp = Int((h >> 10) & 0x1F), frac = Float(h & 0x3FF)
        if exp == 0 { return sign * frac * 0x1p-24 }
        if exp == 31 { return frac == 0 ? sign * .infinity : .nan }
        return sign * (1 + frac / 1024) * Float(sign: .plus, exponent: exp - 15, significand: 1)
    }

    /// The bytes of a safetensors file holding these tensors as F32, names sorted.
    public func encode() throws -> Data {
        var entries = [String]()
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            let bytes = t.count * 4
            entries.append("\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        if !metadata.isEmpty {
            let m = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }.joined(separator: ",")
            entries.insert("\"__metadata__\":{\(m)}", at: 0)
        }
        var header = "{" + entries.joined(separator: ",") + "}"
        while (8 + header.utf8.count) % 8 != 0 { header += " " }
        var data = Data()
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        for name in names {
            tensors[name]!.scalars.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        return data
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
