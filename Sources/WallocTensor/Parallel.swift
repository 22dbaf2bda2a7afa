import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The number of threads Walloc's kernels may use.
public enum Threading {
    private static let current = Atomic<Int>(0)

    /// Threads in use: 1 inside `serially`, else the value set with `setCount`, else the
    /// machine's active processor count.
    public static var count: Int {
        if serialScope.value != nil { return 1 }
        let n = current.load(ordering: .relaxed)
        return n > 0 ? n : defaultCount
    }

    /// The machine's active processor count.
    public static var defaultCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Runs `body` with every kernel it calls on the calling thread alone (`count` is 1 there),
    /// whatever the thread count: for running independent work items side by side on the worker
    /// pool, and for results that must not depend on the thread count.
    public static func serially<R>(_ body: () throws -> R) rethrows -> R {
        try serialScope.run(1, body)
    }

    /// Whether the calling thread runs inside `serially` (whatever the thread count).
    public static var isSerial: Bool { serialScope.value != nil }

    /// Set while the calling thread runs `serially`.
    private static let serialScope = ThreadScope()

    /// Sets the thread count for Walloc's kernels (BLAS runs single-threaded inside them).
    public static func setCount(_ n: Int) {
        current.store(max(1, n), ordering: .relaxed)
    }
}

/// A fork-join pool of persistent worker threads, like an OpenMP parallel-for.
///
/// `DispatchQueue.concurrentPerform` was measured to run most back-to-back calls on the calling
/// thread alone on Linux (it could not reserve width on its root queue), so Walloc keeps its
/// own workers: they spin briefly after a job (work usually follows work) and then park.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    private let lock = NSCondition()
    private var workers = 0
    /// Incremented for every job; workers wait for it to change.
    private let generation = Atomic<Int>(0)
    private let next = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private var job: (@Sendable (Int) -> Void)?
    private var iterations = 0
    /// The current job's generation and its number of helpers, `generation << 16 | helpers`, in
    /// one atomic, so a worker never pairs one job's generation with another job's helpers.
    private let roster = Atomic<Int>(0)
    /// Addresses for ThreadSanitizer's annotations of the spin waits: a job published to the
    /// workers, and the workers' part of it finished.
    private let markers = UnsafeMutableRawPointer.allocate(byteCount: 2, alignment: 1)
    private var published: UnsafeRawPointer { UnsafeRawPointer(markers) }
    private var finished: UnsafeRawPointer { UnsafeRawPointer(markers + 1) }

    /// Runs `body` for `0..<iterations` on up to `threads` threads (the caller included).
    /// A nested or concurrent call runs inline on its own thread.
    func run(_ iterations: Int, threads: Int, _ body: (Int) -> Void) {
        let helpers = min(threads, iterations, 1 << 16) - 1
        guard helpers > 0, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for i in 0..<iterations { body(i) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { escapable in
            let work = unsafeBitCast(escapable, to: (@Sendable (Int) -> Void).self)
            lock.lock()
            // A new worker starts from the generation before this job, so it picks this job up.
            let before = generation.load(ordering: .acquiring)
            while workers < helpers { spawnWorker(index: workers, seen: before); workers += 1 }
            job = work
            self.iterations = iterations
            roster.store((before + 1) << 16 | helpers, ordering: .releasing)
            next.store(0, ordering: .relaxed)
            pending.store(helpers, ordering: .relaxed)
            ThreadSanitizer.release(published)
            generation.add(1, ordering: .releasing)
            lock.broadcast()
            lock.unlock()
            drain(work, iterations)
            // Wait for the helpers to finish their last index.
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins > 1000 { sched_yield() }
            }
            ThreadSanitizer.acquire(finished)
            lock.lock()
            job = nil
            lock.unlock()
        }
    }

    private func drain(_ work: @Sendable (Int) -> Void, _ n: Int) {
        while true {
            let i = next.add(1, ordering: .relaxed).oldValue
            if i >= n { break }
            work(i)
        }
    }

    /// Runs the current job's remaining indices. Its copy of the job closure is a local of this
    /// function, so it is released when the function returns, before the worker reports
    /// completion: `withoutActuallyEscaping` in `run` checks that no copy outlives the job.
    @inline(never)
    private func runJob() {
        lock.lock()
        let work = job, n = iterations
        lock.unlock()
        if let work { drain(work, n) }
    }

    private func spawnWorker(index: Int, seen: Int) {
        let thread = Thread { [self] in workerLoop(index: index, seen: seen) }
        thread.stackSize = 1 << 22
        thread.start()
    }

    private func workerLoop(index: Int, seen start: Int) {
        var seen = start
        while true {
            // Spin for a while (about 100 µs) before parking.
            var spins = 0
            while generation.load(ordering: .acquiring) == seen && spins < 20_000 { spins += 1 }
            if generation.load(ordering: .acquiring) == seen {
                lock.lock()
                while generation.load(ordering: .acquiring) == seen { lock.wait() }
                lock.unlock()
            }
            // A worker descheduled between reading the generation and the job's helpers could
            // pair one job's generation with the next job's helpers, run that job twice and report
            // it finished twice (a crash seen with more threads than cores). The roster carries
            // its generation: a newer one means the job this worker woke for is over, and it was
            // not one of its helpers (the job could not have finished without them).
            seen = generation.load(ordering: .acquiring)
            let r = roster.load(ordering: .acquiring)
            let active = r >> 16 == seen && index < r & 0xFFFF
            ThreadSanitizer.acquire(published)
            if active {
                runJob()
                ThreadSanitizer.release(finished)
                pending.subtract(1, ordering: .releasing)
            }
        }
    }
}

/// Runs `body(i)` for every `i` in `0..<iterations`, spread over `Threading.count` threads
/// (dynamic scheduling: each thread takes the next index). Runs inline for one iteration or one
/// thread. `body` must be safe to call concurrently for distinct indices; the kernels hand it raw
/// buffer pointers, and that contract is theirs.
public func parallelFor(_ iterations: Int, _ body: (Int) -> Void) {
    if iterations <= 0 { return }
    let threads = Threading.count
    if iterations == 1 || threads == 1 {
        for i in 0..<iterations { body(i) }
        return
    }
    WorkerPool.shared.run(iterations, threads: threads, body)
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

/// How kernels whose results depend on how work is split (BLAS blocks) split it: by the shape
/// alone, so that results are bit-identical whatever the thread count.
public enum Partition {
    /// The number of blocks a dimension is cut into when it is not cut by cache size. Four is
    /// what the kernels were tuned with on 2 threads; eight (narrower BLAS calls) made the default
    /// stereo decoder's 256-channel convolutions 3.6x slower on an AVX2 EPYC (BENCHMARKS.md).
    public static let pieces = 4

    /// A block size for `count` elements: about `count / pieces`, rounded up to a multiple of 16,
    /// at least `minimum` (and never more than `count`).
    public static func block(_ count: Int, minimum: Int = 64) -> Int {
        let even = ((count + pieces - 1) / pieces + 15) / 16 * 16
        return max(1, min(count, max(minimum, even)))
    }
}
