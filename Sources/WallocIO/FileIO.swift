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
        try requireFile(url)
        do {
            return try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw WallocError("\(url.path): cannot be read (\(error.localizedDescription))")
        }
    }

    /// Throws unless `url` names an existing file (not a directory), with the messages `read` gives.
    public static func requireFile(_ url: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw WallocError("\(url.path): no such file")
        }
        guard !isDirectory.boolValue else { throw WallocError("\(url.path): is a directory, expected a file") }
    }

    /// Writes `data` to `url` through a temporary file in the same directory and a rename, so a
    /// reader never sees a partial file and a failure leaves no output behind.
    public static func writeAtomically(_ data: Data, to url: URL) throws {
        try writeAtomically(to: url) { tmp in try data.write(to: tmp) }
    }

    /// Runs `produce` to write the file for `url` (see `PendingFile`), then puts it into place.
    /// Nothing is left behind when `produce` throws, nor, on Linux, when the process is killed.
    public static func writeAtomically(to url: URL, _ produce: (URL) throws -> Void) throws {
        let pending = try PendingFile(for: url)
        do {
            try produce(pending.path)
        } catch {
            pending.discard()
            if let e = error as? WallocError { throw e }
            throw WallocError("\(url.path): cannot be written (\(error.localizedDescription))")
        }
        try pending.commit()
    }
}

/// A file being written for `url` that no one sees until `commit()`.
///
/// On Linux it is an unnamed file in `url`'s folder (`O_TMPFILE`), written through
/// `/proc/self/fd/N`; `commit()` links it as `url` (or, to replace a file, under a hidden name
/// renamed over `url`). A process killed while writing (even by `kill -9`) leaves nothing behind:
/// the kernel frees the unnamed file; only a kill between the two system calls of a replacing
/// commit leaves the hidden name.
/// Where the file system has no `O_TMPFILE`, it is a hidden `.NAME.tmp-RANDOM` file next to
/// `url`, removed on failure (but left by a killed process).
public final class PendingFile: @unchecked Sendable {
    /// The final destination.
    public let url: URL
    /// Where producers write: open it by path (create and truncate), write, close.
    public let path: URL
    /// The unnamed file's descriptor, or -1 for a hidden named file.
    private var descriptor: Int32
    private var done = false

    public init(for url: URL) throws {
        self.url = url
        let dir = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw WallocError("\(url.path): the folder \(dir.path) does not exist")
        }
        descriptor = -1
        #if os(Linux)
        if access("/proc/self/fd", X_OK) == 0 {
            // O_TMPFILE is __O_TMPFILE | O_DIRECTORY, a macro Swift does not import.
            descriptor = open(dir.path, 0o20000000 | O_DIRECTORY | O_RDWR | O_CLOEXEC, 0o666)
        }
        #endif
        path = descriptor >= 0 ? URL(fileURLWithPath: "/proc/self/fd/\(descriptor)") : PendingFile.hiddenName(for: url)
    }

    deinit { discard() }

    static func hiddenName(for url: URL) -> URL {
        url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(UInt32.random(in: 0...UInt32.max))")
    }

    /// Names the written file `url`, replacing what was there.
    public func commit() throws {
        precondition(!done, "PendingFile committed or discarded twice")
        done = true
        defer { if descriptor >= 0 { close(descriptor); descriptor = -1 } }
        var source = path
        #if os(Linux)
        if descriptor >= 0 {
            // Nothing at `url` yet: name the file there in one step (a kill leaves nothing behind).
            if linkat(AT_FDCWD, path.path, AT_FDCWD, url.path, AT_SYMLINK_FOLLOW) == 0 { return }
            // linkat cannot replace a file: link under a hidden name, then rename over `url` (a kill
            // between the two leaves the hidden name).
            source = PendingFile.hiddenName(for: url)
            guard linkat(AT_FDCWD, path.path, AT_FDCWD, source.path, AT_SYMLINK_FOLLOW) == 0 else {
                throw WallocError("\(url.path): cannot be written (\(String(cString: strerror(errno))))")
            }
        }
        #endif
        guard rename(source.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(source.path)
            throw WallocError("\(url.path): cannot be written (\(reason))")
        }
    }

    /// Drops what was written.
    public func discard() {
        guard !done else { return }
        done = true
        if descriptor >= 0 {
            close(descriptor)
            descriptor = -1
        } else {
            unlink(path.path)
        }
    }
}
