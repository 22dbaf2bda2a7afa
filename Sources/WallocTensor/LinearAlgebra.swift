#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Dense linear algebra beyond GEMM, through the platform's LAPACK (OpenBLAS on Linux,
/// Accelerate on Apple platforms).
public enum LinearAlgebra {
    /// Eigenvalues (descending) and eigenvectors of the symmetric `n x n` matrix `a` (row-major;
    /// only symmetry is assumed, both triangles are read as one). `vectors` is row-major `n x n`
    /// with eigenvector `k` in column `k`, matching `values[k]`.
    public static func symmetricEigen(_ a: [Float], n: Int) throws -> (values: [Float], vectors: [Float]) {
        precondition(a.count == n * n, "symmetricEigen: \(a.count) values for a \(n)x\(n) matrix")
        if n == 0 { return ([], []) }
        // Column-major for LAPACK; a symmetric matrix reads the same either way.
        var m = a
        var w = [Float](repeating: 0, count: n)
        var info: Int32 = 0
        var jobz = Int8(UInt8(ascii: "V")), uplo = Int8(UInt8(ascii: "L"))
        var nn = Int32(n), lda = Int32(n)
        var lwork: Int32 = -1, liwork: Int32 = -1
        var workQuery: Float = 0
        var iworkQuery: Int32 = 0
        ssyevd_(&jobz, &uplo, &nn, &m, &lda, &w, &workQuery, &lwork, &iworkQuery, &liwork, &info)
        guard info == 0 else { throw WallocError("LAPACK ssyevd workspace query failed (info \(info))") }
        lwork = Int32(workQuery.rounded(.up)); liwork = iworkQuery
        var work = [Float](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        ssyevd_(&jobz, &uplo, &nn, &m, &lda, &w, &work, &lwork, &iwork, &liwork, &info)
        guard info == 0 else { throw WallocError("LAPACK ssyevd failed to converge (info \(info))") }
        // LAPACK: ascending values, eigenvector k in column k (column-major: m[k*n + i]).
        var values = [Float](repeating: 0, count: n)
        var vectors = [Float](repeating: 0, count: n * n)
        for k in 0..<n {
            let src = n - 1 - k
            values[k] = w[src]
            for i in 0..<n { vectors[i * n + k] = m[src * n + i] }
        }
        return (values, vectors)
    }
}
