import Dispatch
import Synchronization

/// The number of threads Walloc's kernels (and the BLAS library) may use.
public enum Threading {
    private static let current = Atomic<Int>(0)

    /// Threads in use: the value set with `setCount`, else the machine's active processor count.
    public static var count: Int {
        let n = current.load(ordering: .relaxed)
        return n > 0 ? n : defaultCount
    }

    /// The machine's active processor count.
    public static var defaultCount: Int { max(1, systemProcessorCount()) }

    /// Sets the thread count for Walloc's kernels (BLAS runs single-threaded inside them).
    public static func setCount(_ n: Int) {
        current.store(max(1, n), ordering: .relaxed)
    }
}

#if canImport(Glibc)
import Glibc
private func systemProcessorCount() -> Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
#elseif canImport(Darwin)
import Darwin
private func systemProcessorCount() -> Int { Int(sysconf(_SC_NPROCESSORS_ONLN)) }
#else
private func systemProcessorCount() -> Int { 1 }
#endif

/// Runs `body(i)` for every `i` in `0..<iterations`, spread over `Threading.count` threads
/// (dynamic scheduling: each worker takes the next index). Runs inline for one iteration or
/// one thread. `body` must be safe to call concurrently for distinct indices.
public func parallelFor(_ iterations: Int, _ body: (Int) -> Void) {
    if iterations <= 0 { return }
    let workers = min(iterations, Threading.count)
    if workers == 1 {
        for i in 0..<iterations { body(i) }
        return
    }
    // The kernels hand raw buffer pointers to `body`; the data-race freedom of distinct
    // indices is the caller's contract, so the closure is passed on as @Sendable unchecked.
    withoutActuallyEscaping(body) { escapable in
        let work = unsafeBitCast(escapable, to: (@Sendable (Int) -> Void).self)
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                if i >= iterations { break }
                work(i)
            }
        }
    }
}

/// Splits `0..<count` into about `Threading.count * oversubscribe` contiguous ranges of at least
/// `minChunk` elements and runs `body` on them in parallel.
public func parallelChunks(_ count: Int, minChunk: Int = 1, oversubscribe: Int = 4, _ body: (Range<Int>) -> Void) {
    if count <= 0 { return }
    let pieces = max(1, min(Threading.count * oversubscribe, count / max(1, minChunk)))
    if pieces == 1 { body(0..<count); return }
    let step = (count + pieces - 1) / pieces
    parallelFor((count + step - 1) / step) { p in
        body((p * step)..<min(count, (p + 1) * step))
    }
}
