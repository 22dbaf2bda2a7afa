import Foundation
import WallocTensor

/// Full-reference image quality metrics for pixels in [0, 1] (`[C, H, W]` or `[H, W]` float32).
///
/// Definitions (see docs/evaluation.md): PSNR over all samples with data range 1; SSIM with the
/// 11-tap Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, population covariances, averaged
/// over the valid window positions and then over channels; MS-SSIM after Wang et al. (2003) with
/// five scales, 2x2 average pooling between them and the weights (0.0448, 0.2856, 0.3001, 0.2363,
/// 0.1333), per channel and then averaged. 8-bit images compared on [0, 1] give the same PSNR as
/// on [0, 255] with peak 255.
public enum ImageMetrics {
    /// The MS-SSIM scale weights of Wang, Simoncelli & Bovik (2003).
    public static let msSSIMWeights: [Double] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    /// The smallest side SSIM accepts (the Gaussian window's size).
    public static let minimumSide = SSIMKernel.window

    /// Mean squared error over all samples.
    public static func mse(_ reference: Tensor, _ test: Tensor) throws -> Double {
        _ = try planes(reference, test, minimumSide: 1)
        let n = reference.count
        let chunks = max(1, min(64, n / 65_536))
        var partial = [Double](repeating: 0, count: chunks)
        reference.withUnsafeBufferPointer { a in
            test.withUnsafeBufferPointer { b in
                partial.withUnsafeMutableBufferPointer { out in
                    parallelFor(chunks) { c in
                        let lo = c * n / chunks, hi = (c + 1) * n / chunks
                        var s = 0.0
                        for i in lo..<hi {
                            let d = Double(a[i]) - Double(b[i])
                            s += d * d
                        }
                        out[c] = s
                    }
                }
            }
        }
        return partial.reduce(0, +) / Double(n)
    }

    /// Peak signal-to-noise ratio in dB, `10 log10(dataRange² / MSE)`; infinite for identical
    /// images.
    public static func psnr(_ reference: Tensor, _ test: Tensor, dataRange: Double = 1) throws -> Double {
        let e = try mse(reference, test)
        return e == 0 ? .infinity : 10 * log10(dataRange * dataRange / e)
    }

    /// Structural similarity: per channel the mean of the SSIM map over the valid window
    /// positions, then the mean over channels. Images need at least 11 pixels on each side.
    public static func ssim(_ reference: Tensor, _ test: Tensor, dataRange: Double = 1) throws -> Double {
        let (c, h, w) = try planes(reference, test, minimumSide: minimumSide)
        var total = 0.0
        withDoublePlanes(reference, test, channels: c, plane: h * w) { x, y in
            total += SSIMKernel.means(x, y, height: h, width: w, dataRange: dataRange).ssim
        }
        return total / Double(c)
    }

    /// The number of MS-SSIM scales an image of this size gets: up to 5, as long as the coarsest
    /// scale is still at least 11 pixels on each side.
    public static func msSSIMScales(height: Int, width: Int) -> Int {
        var (h, w, scales) = (height, width, 0)
        while scales < msSSIMWeights.count && min(h, w) >= minimumSide {
            scales += 1
            h /= 2
            w /= 2
        }
        return scales
    }

    /// Multi-scale SSIM: contrast-structure means at scales 1..M-1 and the SSIM mean at scale M,
    /// each clamped to >= 0 and raised to its weight. Images too small for five scales (under
    /// 176 pixels on a side) use the scales that fit, with their weights renormalised to sum to 1.
    public static func msSSIM(_ reference: Tensor, _ test: Tensor, dataRange: Double = 1) throws -> Double {
        try structuralSimilarity(reference, test, dataRange: dataRange).msSSIM
    }

    /// SSIM and MS-SSIM together (SSIM is MS-SSIM's first scale, computed once).
    public static func structuralSimilarity(_ reference: Tensor, _ test: Tensor,
                                            dataRange: Double = 1) throws -> (ssim: Double, msSSIM: Double) {
        let (c, h, w) = try planes(reference, test, minimumSide: minimumSide)
        let scales = msSSIMScales(height: h, width: w)
        let weights = msSSIMWeights.prefix(scales)
        let norm = weights.reduce(0, +)
        var totalSSIM = 0.0, totalMS = 0.0
        let half = (h / 2) * (w / 2)
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: 2 * (half + (h / 4) * (w / 4)))
        defer { scratch.deallocate() }
        withDoublePlanes(reference, test, channels: c, plane: h * w) { x0, y0 in
            var x = x0, y = y0, sh = h, sw = w
            var value = 1.0
            // Pooled scales alternate between two regions of the scratch buffer.
            for s in 0..<scales {
                let m = SSIMKernel.means(x, y, height: sh, width: sw, dataRange: dataRange)
                if s == 0 { totalSSIM += m.ssim }
                let term = s == scales - 1 ? m.ssim : m.cs
                value *= pow(max(term, 0), weights[s] / norm)
                if s == scales - 1 { break }
                let px = s % 2 == 0 ? scratch : scratch + 2 * half
                let py = px + (sh / 2) * (sw / 2)
                SSIMKernel.pool(x, height: sh, width: sw, into: px)
                SSIMKernel.pool(y, height: sh, width: sw, into: py)
                (x, y, sh, sw) = (UnsafePointer(px), UnsafePointer(py), sh / 2, sw / 2)
            }
            totalMS += value
        }
        return (totalSSIM / Double(c), totalMS / Double(c))
    }

    /// MS-SSIM on a decibel scale, `-10 log10(1 - value)` (infinite at 1).
    public static func decibels(msSSIM value: Double) -> Double {
        value >= 1 ? .infinity : -10 * log10(1 - value)
    }

    /// Checks that two images have the same `[C, H, W]` / `[H, W]` shape with sides of at least
    /// `minimumSide`, and returns (C, H, W).
    static func planes(_ a: Tensor, _ b: Tensor, minimumSide: Int) throws -> (Int, Int, Int) {
        guard a.shape == b.shape else {
            throw WallocError("images to compare have different shapes: \(a.shape) and \(b.shape)")
        }
        let dims: (Int, Int, Int)
        switch a.rank {
        case 2: dims = (1, a.shape[0], a.shape[1])
        case 3: dims = (a.shape[0], a.shape[1], a.shape[2])
        default: throw WallocError("images must have shape [C, H, W] or [H, W], got \(a.shape)")
        }
        guard dims.0 >= 1, min(dims.1, dims.2) >= minimumSide else {
            throw WallocError("image of \(dims.2)x\(dims.1) pixels is too small: SSIM needs at least \(minimumSide)x\(minimumSide)")
        }
        return dims
    }

    /// Hands each channel of both images to `body` as double-precision planes.
    private static func withDoublePlanes(_ a: Tensor, _ b: Tensor, channels: Int, plane: Int,
                                         _ body: (UnsafePointer<Double>, UnsafePointer<Double>) throws -> Void) rethrows {
        let x = UnsafeMutablePointer<Double>.allocate(capacity: plane)
        let y = UnsafeMutablePointer<Double>.allocate(capacity: plane)
        defer { x.deallocate(); y.deallocate() }
        for ch in 0..<channels {
            a.withUnsafeBufferPointer { src in
                let base = src.baseAddress! + ch * plane
                parallelChunks(plane, minChunk: 1 << 16) { r in for i in r { x[i] = Double(base[i]) } }
            }
            b.withUnsafeBufferPointer { src in
                let base = src.baseAddress! + ch * plane
                parallelChunks(plane, minChunk: 1 << 16) { r in for i in r { y[i] = Double(base[i]) } }
            }
            try body(x, y)
        }
    }
}
