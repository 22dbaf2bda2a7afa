import Foundation
import WallocTensor

/// The SSIM statistics of one channel with the standard Gaussian window (11 taps, sigma 1.5),
/// evaluated at the 'valid' window positions only (the window never leaves the image; this is
/// what scikit-image's border crop of `filter radius` pixels amounts to).
///
/// Separable filtering in double precision: each task takes a strip of output rows, filters the
/// rows it needs horizontally into local buffers (the five moments x, y, x², y², xy), then
/// vertically, and sums the SSIM and contrast-structure maps over the strip.
enum SSIMKernel {
    static let radius = 5
    static let window = 2 * radius + 1
    static let sigma = 1.5
    static let k1 = 0.01, k2 = 0.03

    /// The normalised Gaussian taps g[0...10].
    static let taps: [Double] = {
        let g = (0..<window).map { i -> Double in
            let x = Double(i - radius)
            return exp(-x * x / (2 * sigma * sigma))
        }
        let s = g.reduce(0, +)
        return g.map { $0 / s }
    }()

    /// Means of the SSIM map and of the contrast-structure map over the valid positions of one
    /// `height x width` channel (row-major). Needs `height, width >= 11`.
    static func means(_ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>, height: Int, width: Int,
                      dataRange: Double) -> (ssim: Double, cs: Double) {
        precondition(height >= window && width >= window)
        let outH = height - window + 1, outW = width - window + 1
        // Fixed strips, summed in order: the result does not depend on the thread count.
        let stripRows = 32
        let strips = (outH + stripRows - 1) / stripRows
        let sums = UnsafeMutableBufferPointer<Double>.allocate(capacity: 2 * strips)
        defer { sums.deallocate() }
        let c1 = (k1 * dataRange) * (k1 * dataRange), c2 = (k2 * dataRange) * (k2 * dataRange)
        let g = taps
        g.withUnsafeBufferPointer { gp in
            parallelFor(strips) { s in
                let r0 = s * stripRows, r1 = min(outH, r0 + stripRows)
                let (ssim, cs) = strip(x, y, width: width, outW: outW, rows: r0..<r1, g: gp.baseAddress!, c1: c1, c2: c2)
                sums[2 * s] = ssim
                sums[2 * s + 1] = cs
            }
        }
        var ssim = 0.0, cs = 0.0
        for s in 0..<strips { ssim += sums[2 * s]; cs += sums[2 * s + 1] }
        let n = Double(outH * outW)
        return (ssim / n, cs / n)
    }

    /// Sums of the SSIM and contrast-structure maps over output rows `rows`.
    private static func strip(_ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>, width: Int, outW: Int,
                              rows: Range<Int>, g: UnsafePointer<Double>, c1: Double, c2: Double) -> (Double, Double) {
        let inRows = rows.count + window - 1
        // Horizontally filtered moments of the input rows this strip needs: 5 planes of inRows x outW.
        let plane = inRows * outW
        let h = UnsafeMutablePointer<Double>.allocate(capacity: 5 * plane)
        defer { h.deallocate() }
        let products = UnsafeMutablePointer<Double>.allocate(capacity: 3 * width)
        defer { products.deallocate() }
        for r in 0..<inRows {
            let xr = x + (rows.lowerBound + r) * width, yr = y + (rows.lowerBound + r) * width
            let pxx = products, pyy = products + width, pxy = products + 2 * width
            for j in 0..<width { pxx[j] = xr[j] * xr[j] }
            for j in 0..<width { pyy[j] = yr[j] * yr[j] }
            for j in 0..<width { pxy[j] = xr[j] * yr[j] }
            let row = r * outW
            filterRow(xr, into: h + row, count: outW, g: g)
            filterRow(yr, into: h + plane + row, count: outW, g: g)
            for m in 0..<3 { filterRow(products + m * width, into: h + (2 + m) * plane + row, count: outW, g: g) }
        }
        // Vertical filtering and the SSIM terms, one output row at a time.
        let acc = UnsafeMutablePointer<Double>.allocate(capacity: 5 * outW)
        defer { acc.deallocate() }
        var ssimSum = 0.0, csSum = 0.0
        for o in 0..<rows.count {
            for m in 0..<5 {
                let a = acc + m * outW
                let base = h + m * plane + o * outW
                let gc = g[radius]
                let mid = base + radius * outW
                for j in 0..<outW { a[j] = gc * mid[j] }
                for k in 0..<radius {
                    let gk = g[k]
                    let top = base + k * outW, bottom = base + (window - 1 - k) * outW
                    for j in 0..<outW { a[j] += gk * (top[j] + bottom[j]) }
                }
            }
            let mx = acc, my = acc + outW, mxx = acc + 2 * outW, myy = acc + 3 * outW, mxy = acc + 4 * outW
            // The SSIM terms four columns at a time (a reduction the compiler does not vectorise).
            typealias V = SIMD4<Double>
            func load(_ p: UnsafeMutablePointer<Double>, _ j: Int) -> V { UnsafeRawPointer(p + j).loadUnaligned(as: V.self) }
            let (vc1, vc2) = (V(repeating: c1), V(repeating: c2))
            var sumSSIM = V(), sumCS = V()
            var j = 0
            while j + 4 <= outW {
                let ux = load(mx, j), uy = load(my, j)
                let vx = load(mxx, j) - ux * ux, vy = load(myy, j) - uy * uy, vxy = load(mxy, j) - ux * uy
                let cs = (2 * vxy + vc2) / (vx + vy + vc2)
                let l = (2 * ux * uy + vc1) / (ux * ux + uy * uy + vc1)
                sumCS += cs
                sumSSIM += l * cs
                j += 4
            }
            var rowSSIM = sumSSIM.sum(), rowCS = sumCS.sum()
            while j < outW {
                let ux = mx[j], uy = my[j]
                let vx = mxx[j] - ux * ux, vy = myy[j] - uy * uy, vxy = mxy[j] - ux * uy
                let cs = (2 * vxy + c2) / (vx + vy + c2)
                let l = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1)
                rowCS += cs
                rowSSIM += l * cs
                j += 1
            }
            ssimSum += rowSSIM
            csSum += rowCS
        }
        return (ssimSum, csSum)
    }

    /// out[j] = sum_k g[k] src[j + k] for j in 0..<count, using the window's symmetry.
    @inline(__always)
    private static func filterRow(_ src: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>, count: Int,
                                  g: UnsafePointer<Double>) {
        let gc = g[radius]
        for j in 0..<count { out[j] = gc * src[j + radius] }
        for k in 0..<radius {
            let gk = g[k], far = window - 1 - k
            for j in 0..<count { out[j] += gk * (src[j + k] + src[j + far]) }
        }
    }

    /// 2x2 average pooling of a `height x width` plane into `(height / 2) x (width / 2)` (an odd
    /// last row or column is dropped).
    static func pool(_ src: UnsafePointer<Double>, height: Int, width: Int, into dst: UnsafeMutablePointer<Double>) {
        let h2 = height / 2, w2 = width / 2
        parallelChunks(h2, minChunk: 16) { range in
            for i in range {
                let a = src + 2 * i * width, b = a + width, o = dst + i * w2
                for j in 0..<w2 {
                    o[j] = 0.25 * ((a[2 * j] + a[2 * j + 1]) + (b[2 * j] + b[2 * j + 1]))
                }
            }
        }
    }
}
