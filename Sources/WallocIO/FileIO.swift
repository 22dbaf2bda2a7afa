import Foundation
import WallocTensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File reading and atomic writing with messages that name the file.
public enum FileIO {
    /// Reads a whole file; missing files, directories and unreadable files get a clear error.
    public static func read(_ url: URL) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw WallocError("\(url.path): no such file")
        }
        guard !isDirectory.boolValue else { throw WallocError("\(url.path): is a directory, expected a file") }
        do {
            return try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw WallocError("\(url.path): cannot be read (\(error.localizedDescription))")
        }
    }

    /// Writes `data` to `url` through a temporary file in the same directory and a rename, so a
    /// reader never sees a partial file and a failure leaves no output behind.
    public static func writeAtomically(_ data: Data, to url: URL) throws {
        try writeAtomically(to: url) { tmp in try data.write(to: tmp) }
    }

    /// Runs `produce` to write a temporary file next to `url`, then renames it over `url`.
    /// The temporary file is removed when `produce` throws.
    public static func writeAtomically(to url: URL, _ produce: (URL) throws -> Void) throws {
        let dir = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw WallocError("\(url.path): the folder \(dir.path) does not exist")
        }
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try produce(tmp)
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            if let e = error as? WallocError { throw e }
            throw WallocError("\(url.path): cannot be written (\(error.localizedDescription))")
        }
        guard rename(tmp.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw WallocError("\(url.path): cannot be written (\(reason))")
        }
    }
}
