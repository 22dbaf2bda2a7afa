import Foundation

/// A value behind a lock: an `NSLock` (a pthread mutex), which ThreadSanitizer intercepts. Used
/// instead of the Synchronization module's `Mutex`, inside whose `withLock` an earlier
/// ThreadSanitizer run reported races (`make test-sanitized`).
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    /// Runs `body` with the value, holding the lock.
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// ThreadSanitizer's happens-before annotations, for synchronisation it cannot see (the worker
/// pool's spin waits). Without ThreadSanitizer in the process they do nothing.
enum ThreadSanitizer {
    typealias Annotation = @convention(c) (UnsafeRawPointer?) -> Void
    /// `__tsan_acquire` / `__tsan_release` when the ThreadSanitizer runtime is linked in.
    static let hooks: (acquire: Annotation, release: Annotation)? = {
        let handle = dlopen(nil, RTLD_NOW)
        guard let a = dlsym(handle, "__tsan_acquire"), let r = dlsym(handle, "__tsan_release") else { return nil }
        return (unsafeBitCast(a, to: Annotation.self), unsafeBitCast(r, to: Annotation.self))
    }()

    @inline(__always) static func acquire(_ address: UnsafeRawPointer) { hooks?.acquire(address) }
    @inline(__always) static func release(_ address: UnsafeRawPointer) { hooks?.release(address) }
}
