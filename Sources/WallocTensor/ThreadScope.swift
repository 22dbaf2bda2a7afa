#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value the calling thread holds while it runs a closure (`run`), and nil elsewhere: for
/// settings that apply to one call on one thread (`Threading.serially`, `Kernels.decoding`).
public final class ThreadScope: Sendable {
    private let key: pthread_key_t

    public init() {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        self.key = key
    }

    /// The value of the innermost `run` on the calling thread, or nil outside any.
    public var value: Int? { pthread_getspecific(key).map { Int(bitPattern: $0) } }

    /// Runs `body` with `value` (not 0) as the calling thread's value, then restores the previous one.
    public func run<R>(_ value: Int, _ body: () throws -> R) rethrows -> R {
        precondition(value != 0, "a ThreadScope value must not be 0")
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: value))
        defer { pthread_setspecific(key, previous) }
        return try body()
    }
}
