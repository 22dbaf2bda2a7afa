import WallocTensor

/// Image resizing by area averaging (a box filter over the exact footprint of each output pixel,
/// like OpenCV's `INTER_AREA` when shrinking): each output sample is the mean of the input
/// region it covers, with fractional weights at the region's edges. Used to shrink training
/// photos and to make "same number of values" baselines; enlarging repeats samples.
public enum Resize {
    /// `[C, H, W]` -> `[C, height, width]`.
    public static func area(_ x: Tensor, height: Int, width: Int) -> Tensor {
        precondition(x.rank == 3 && height > 0 && width > 0, "Resize.area expects [C, H, W] and a positive size")
        let c = x.shape[0], h = x.shape[1], w = x.shape[2]
        if h == height && w == width { return x }
        let rows = footprints(from: h, to: height), cols = footprints(from: w, to: width)
        // Horizontal pass into [C, H, width], then vertical into [C, height, width].
        var mid = Tensor(uninitialized: [c, h, width])
        x.withUnsafeBufferPointer { xb in
            mid.withUnsafeMutableBufferPointer { mb in
                let src = xb.baseAddress!, dst = mb.baseAddress!
                parallelFor(c * h) { r in
                    let row = src + r * w, out = dst + r * width
                    for o in 0..<width {
                        var s: Float = 0
                        for (i, wt) in zip(cols.index[o], cols.weight[o]) { s += wt * row[i] }
                        out[o] = s
                    }
                }
            }
        }
        var out = Tensor(zeros: [c, height, width])
        mid.withUnsafeBufferPointer { mb in
            out.withUnsafeMutableBufferPointer { ob in
                let src = mb.baseAddress!, dst = ob.baseAddress!
                parallelFor(c * height) { r in
                    let ch = r / height, o = r % height
                    let out = dst + r * width
                    for (i, wt) in zip(rows.index[o], rows.weight[o]) {
                        VectorMath.axpy(wt, src + (ch * h + i) * width, into: out, count: width)
                    }
                }
            }
        }
        return out
    }

    /// Shrinks `x` (`[C, H, W]`) so that its longer side is at most `maxSide`, keeping the aspect
    /// ratio (sizes rounded to the nearest integer, at least 1); returns `x` when it already fits.
    public static func fit(_ x: Tensor, maxSide: Int) -> Tensor {
        let h = x.shape[1], w = x.shape[2]
        guard max(h, w) > maxSide else { return x }
        let s = Double(maxSide) / Double(max(h, w))
        return area(x, height: max(1, Int((Double(h) * s).rounded())), width: max(1, Int((Double(w) * s).rounded())))
    }

    /// For each of `m` outputs over `n` inputs: the inputs it covers and their weights (summing to 1).
    static func footprints(from n: Int, to m: Int) -> (index: [[Int]], weight: [[Float]]) {
        var index = [[Int]](), weight = [[Float]]()
        let scale = Double(n) / Double(m)
        for o in 0..<m {
            if scale <= 1 {
                // Enlarging: the input sample under the output pixel's centre.
                index.append([min(n - 1, Int((Double(o) + 0.5) * scale))]); weight.append([1])
                continue
            }
            let a = Double(o) * scale, b = Double(o + 1) * scale
            var idx = [Int](), wts = [Float]()
            var i = Int(a)
            while Double(i) < b && i < n {
                let overlap = min(b, Double(i + 1)) - max(a, Double(i))
                if overlap > 1e-12 { idx.append(i); wts.append(Float(overlap / scale)) }
                i += 1
            }
            index.append(idx); weight.append(wts)
        }
        return (index, weight)
    }
}
