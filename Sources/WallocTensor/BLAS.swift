#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
#endif

/// Single-precision matrix multiplication through the platform's CBLAS: OpenBLAS on Linux,
/// Accelerate on Apple platforms. All matrices are row-major.
public enum BLAS {
    /// `C = alpha * op(A) * op(B) + beta * C` with `op(A)` of shape `m x k` and `op(B)` of shape `k x n`.
    ///
    /// `lda`, `ldb`, `ldc` are the row strides of the matrices as stored (before transposition).
    @inlinable
    public static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        _ = singleThreaded
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m {
                let row = c + i * ldc
                if beta == 0 { row.update(repeating: 0, count: n) } else { for j in 0..<n { row[j] *= beta } }
            }
            return
        }
        #if canImport(Accelerate)
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        #else
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
        #endif
    }

    /// Sets the number of threads the BLAS library uses (no-op where the library decides itself).
    /// Walloc keeps BLAS single-threaded and parallelises with `parallelGemm` instead, so one
    /// thread pool serves both GEMMs and element-wise kernels.
    public static func setThreads(_ count: Int) {
        #if !canImport(Accelerate)
        openblas_set_num_threads(Int32(max(1, count)))
        if count <= 1 { stopServerThreads() }
        #endif
    }

    #if !canImport(Accelerate)
    /// Ends a threaded OpenBLAS's worker threads (`blas_thread_shutdown_`, which OpenBLAS itself
    /// calls before a fork; looked up at run time, as single-threaded builds lack it). Its
    /// constructor starts them when the process loads, and each spins on `sched_yield` for about
    /// 2^28 cycles before it sleeps: on 2 vCPUs, a third of a `walloc decode`'s time. A later
    /// multi-threaded BLAS call would start them again.
    private static func stopServerThreads() {
        typealias Shutdown = @convention(c) () -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "blas_thread_shutdown_") else { return }
        _ = unsafeBitCast(symbol, to: Shutdown.self)()
    }
    #endif

    /// `gemm` split into blocks of columns (or of rows, when there are more rows than columns)
    /// of `C`, each a single-threaded BLAS call, run on `Threading.count` workers.
    ///
    /// The blocks depend on the shape alone, never on the thread count: BLAS's result for a
    /// column depends on the block it is computed in, so this keeps every result bit-identical
    /// across `--threads` values (tested in DeterminismTests).
    public static func parallelGemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        if flops < 4e6 {
            gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                 beta: beta, c: c, ldc: ldc)
            return
        }
        if n >= m {
            let chunk = Partition.block(n)
            parallelFor((n + chunk - 1) / chunk) { p in
                let j = p * chunk, w = min(chunk, n - j)
                gemm(transA: transA, transB: transB, m: m, n: w, k: k, alpha: alpha, a: a, lda: lda,
                     b: transB ? b + j * ldb : b + j, ldb: ldb, beta: beta, c: c + j, ldc: ldc)
            }
        } else {
            let chunk = Partition.block(m)
            parallelFor((m + chunk - 1) / chunk) { p in
                let i = p * chunk, h = min(chunk, m - i)
                gemm(transA: transA, transB: transB, m: h, n: n, k: k, alpha: alpha, a: transA ? a + i : a + i * lda,
                     lda: lda, b: b, ldb: ldb, beta: beta, c: c + i * ldc, ldc: ldc)
            }
        }
    }

    /// Puts BLAS in single-threaded mode once (Walloc supplies the parallelism).
    @usableFromInline static let singleThreaded: Void = setThreads(1)
}
