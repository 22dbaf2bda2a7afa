import CTIFF
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An in-memory file for libtiff's client I/O, which also collects libtiff's error messages for
/// that one handle (no global handler state).
final class TIFFMemoryFile {
    private let source: UnsafeRawBufferPointer?
    private(set) var sink: [UInt8] = []
    private var position = 0
    /// The first error libtiff reported, prefixed by the module that reported it.
    private(set) var error: String?

    /// A read-only file over `bytes`, which must outlive the handle.
    init(reading bytes: UnsafeRawBufferPointer) { source = bytes }
    /// An empty, growing file to write to.
    init() { source = nil }

    private var size: Int { source?.count ?? sink.count }

    /// Opens a libtiff handle on this file; `mode` is libtiff's ("r", "w", "w8" for BigTIFF).
    /// The file must stay alive until the handle is closed.
    func open(name: String, mode: String) -> OpaquePointer? {
        guard let options = TIFFOpenOptionsAlloc() else { return nil }
        defer { TIFFOpenOptionsFree(options) }
        let me = Unmanaged.passUnretained(self).toOpaque()
        TIFFOpenOptionsSetErrorHandlerExtR(options, { _, user, module, format, arguments in
            guard let user, let format, let arguments else { return 1 }
            let file = Unmanaged<TIFFMemoryFile>.fromOpaque(user).takeUnretainedValue()
            if file.error == nil {
                var text = [CChar](repeating: 0, count: 512)
                vsnprintf(&text, text.count, format, arguments)
                let message = cString(text)
                let prefix = module.map { String(cString: $0) + ": " } ?? ""
                file.error = prefix + message
            }
            return 1
        }, me)
        TIFFOpenOptionsSetWarningHandlerExtR(options, { _, _, _, _, _ in 1 }, nil) // silence warnings
        return TIFFClientOpenExt(
            name, mode, me,
            { handle, buffer, count in
                guard let handle, let buffer else { return -1 }
                return Unmanaged<TIFFMemoryFile>.fromOpaque(handle).takeUnretainedValue().read(buffer, Int(count))
            },
            { handle, buffer, count in
                guard let handle, let buffer else { return -1 }
                return Unmanaged<TIFFMemoryFile>.fromOpaque(handle).takeUnretainedValue().write(buffer, Int(count))
            },
            { handle, offset, whence in
                guard let handle else { return UInt64.max }
                return Unmanaged<TIFFMemoryFile>.fromOpaque(handle).takeUnretainedValue().seek(offset, whence)
            },
            { _ in 0 },
            { handle in
                guard let handle else { return 0 }
                return UInt64(Unmanaged<TIFFMemoryFile>.fromOpaque(handle).takeUnretainedValue().size)
            },
            { _, _, _ in 0 }, // no memory mapping: libtiff reads through the procs above
            { _, _, _ in },
            options
        )
    }

    private func read(_ buffer: UnsafeMutableRawPointer, _ count: Int) -> tmsize_t {
        guard let source, count >= 0 else { return -1 }
        let n = max(0, min(count, source.count - position))
        if n > 0, let base = source.baseAddress { buffer.copyMemory(from: base + position, byteCount: n) }
        position += n
        return tmsize_t(n)
    }

    private func write(_ buffer: UnsafeMutableRawPointer, _ count: Int) -> tmsize_t {
        guard source == nil, count >= 0 else { return -1 }
        let (end, overflow) = position.addingReportingOverflow(count)
        guard !overflow else { return -1 }
        if end > sink.count { sink.append(contentsOf: repeatElement(0, count: end - sink.count)) }
        sink.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: position).copyMemory(from: buffer, byteCount: count) }
        position = end
        return tmsize_t(count)
    }

    private func seek(_ offset: UInt64, _ whence: Int32) -> UInt64 {
        let delta = Int64(bitPattern: offset)
        let base: Int64
        switch whence {
        case SEEK_SET: base = 0
        case SEEK_CUR: base = Int64(position)
        case SEEK_END: base = Int64(size)
        default: return UInt64.max
        }
        let (target, overflow) = base.addingReportingOverflow(delta)
        // Writes may seek past the end (the gap is zero-filled); reads may not.
        let limit: Int64 = source == nil ? 1 << 40 : Int64(size)
        guard !overflow, target >= 0, target <= limit else { return UInt64.max }
        position = Int(target)
        return UInt64(target)
    }
}
