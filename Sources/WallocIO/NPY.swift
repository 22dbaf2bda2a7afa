import Foundation
import WallocTensor

/// Reading and writing NumPy `.npy` files holding little-endian float32 arrays.
///
/// Versions 1.0, 2.0 and 3.0 headers are read; C-order and Fortran-order arrays are both
/// accepted (Fortran order is converted). Other dtypes are rejected with a message that says how
/// to convert them. Files are written as version 1.0 (2.0 when the header needs it).
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Reads a float32 array from `url`.
    public static func read(_ url: URL) throws -> Tensor {
        let data = try FileIO.read(url)
        do {
            return try decode(data)
        } catch let error as WallocError {
            throw WallocError("\(url.path): \(error.message)")
        }
    }

    /// Decodes the bytes of an `.npy` file.
    public static func decode(_ data: Data) throws -> Tensor {
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw WallocError("not a NumPy .npy file (bad magic)")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw WallocError("truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw WallocError("unsupported .npy format version \(major).\(bytes[7]) (1.0, 2.0 and 3.0 are read)")
        }
        guard headerStart + headerLength <= data.count else { throw WallocError("truncated .npy header") }
        let headerData = data.subdata(in: (data.startIndex + headerStart)..<(data.startIndex + headerStart + headerLength))
        guard let header = String(data: headerData, encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw WallocError("unreadable .npy header")
        }
        let (descr, fortran, shape) = try parseHeader(header)
        guard descr == "<f4" || descr == "=f4" || (descr == "|f4") else {
            throw WallocError("array dtype is '\(descr)', but float32 little-endian ('<f4') is required; convert it with `a.astype('<f4')`")
        }
        let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        let payload = data.count - headerStart - headerLength
        guard count != Int.max, count.multipliedReportingOverflow(by: 4).partialValue == payload, !count.multipliedReportingOverflow(by: 4).overflow else {
            throw WallocError("array of shape \(shape) needs \(count) float32 values, but the file holds \(payload) bytes of data")
        }
        var scalars = [Float](repeating: 0, count: count)
        scalars.withUnsafeMutableBytes { dst in
            data.withUnsafeBytes { src in
                dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(headerStart + headerLength)...]))
            }
        }
        #if _endian(big)
        for i in 0..<count { scalars[i] = Float(bitPattern: UInt32(littleEndian: scalars[i].bitPattern)) }
        #endif
        if fortran && shape.count > 1 {
            scalars = fortranToC(scalars, shape: shape)
        }
        return Tensor(shape: shape, scalars: scalars)
    }

    /// Writes `tensor` to `url` atomically (temporary file, then rename).
    public static func write(_ tensor: Tensor, to url: URL) throws {
        try FileIO.writeAtomically(encode(tensor), to: url)
    }

    /// The bytes of an `.npy` file holding `tensor`.
    public static func encode(_ tensor: Tensor) -> Data {
        let shapeText: String
        switch tensor.shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(tensor.shape[0]),)"
        default: shapeText = "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        let useV2 = header.utf8.count + 11 > 65_535
        let prefix = useV2 ? 12 : 10
        let total = (prefix + header.utf8.count + 1 + 63) / 64 * 64
        header += String(repeating: " ", count: total - prefix - header.utf8.count - 1) + "\n"
        var data = Data(magic)
        data.append(contentsOf: useV2 ? [2, 0] : [1, 0])
        let n = header.utf8.count
        if useV2 {
            data.append(contentsOf: [UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)])
        } else {
            data.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
        }
        data.append(contentsOf: Array(header.utf8))
        tensor.scalars.withUnsafeBytes { raw in
            #if _endian(big)
            for v in tensor.scalars { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            #else
            data.append(contentsOf: raw)
            #endif
        }
        return data
    }

    /// Parses the Python-literal header dictionary: `descr`, `fortran_order`, `shape`.
    static func parseHeader(_ header: String) throws -> (String, Bool, [Int]) {
        func value(of key: String) throws -> Substring {
            guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else {
                throw WallocError("malformed .npy header: no '\(key)' in \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            var rest = header[keyRange.upperBound...].drop { $0 == " " }
            guard rest.first == ":" else { throw WallocError("malformed .npy header near '\(key)'") }
            rest = rest.dropFirst().drop { $0 == " " }
            return rest
        }
        let d = try value(of: "descr")
        guard let q = d.first, q == "'" || q == "\"", let end = d.dropFirst().firstIndex(of: q) else {
            throw WallocError("malformed .npy header: descr is not a string (structured dtypes are not supported)")
        }
        let descr = String(d[d.index(after: d.startIndex)..<end])
        let f = try value(of: "fortran_order")
        let fortran: Bool
        if f.hasPrefix("True") { fortran = true } else if f.hasPrefix("False") { fortran = false } else {
            throw WallocError("malformed .npy header: fortran_order is neither True nor False")
        }
        let s = try value(of: "shape")
        guard s.first == "(", let close = s.firstIndex(of: ")") else { throw WallocError("malformed .npy header: shape is not a tuple") }
        var shape = [Int]()
        for part in s[s.index(after: s.startIndex)..<close].split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
            if t.isEmpty { continue }
            guard let v = Int(t), v >= 0 else { throw WallocError("malformed .npy header: bad dimension '\(t)'") }
            shape.append(v)
        }
        return (descr, fortran, shape)
    }

    /// Reorders column-major data into row-major order.
    static func fortranToC(_ a: [Float], shape: [Int]) -> [Float] {
        let rank = shape.count
        var out = [Float](repeating: 0, count: a.count)
        var fStrides = [Int](repeating: 1, count: rank)
        for d in 1..<rank { fStrides[d] = fStrides[d - 1] * shape[d - 1] }
        var index = [Int](repeating: 0, count: rank)
        for i in 0..<a.count {
            var src = 0
            for d in 0..<rank { src += index[d] * fStrides[d] }
            out[i] = a[src]
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return out
    }
}
