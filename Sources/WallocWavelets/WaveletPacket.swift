import WallocTensor

/// The wavelet packet transform WaLLoC sandwiches its autoencoder between: `J` levels of the
/// periodised bior4.4 filter bank, every band split again at each level.
///
/// Band order matches the reference (`b (c f) h w`): after each level, every input channel is
/// replaced by its bands in place, approximation first. In 2D the four bands of a channel are
/// (LL, low-along-width/high-along-height, high-along-width/low-along-height, HH), as
/// `pytorch_wavelets` orders them. Leading dimensions (batch, channels) are folded together, so
/// `[C, H, W]`, `[N, C, H, W]`, `[C, L]` and `[N, C, L]` are all accepted.
public enum WaveletPacket {
    /// Forward 2D transform: `[..., C, H, W]` -> `[..., C·4^J, H/2^J, W/2^J]`.
    public static func analysis2D(_ x: Tensor, levels: Int) throws -> Tensor {
        guard x.rank >= 3 else { throw WallocError("2D wavelet transform needs [C, H, W] or [N, C, H, W], got \(x.shape)") }
        let h = x.shape[x.rank - 2], w = x.shape[x.rank - 1]
        try checkDivisible(h, levels, "height"); try checkDivisible(w, levels, "width")
        var planes = x.shape[x.rank - 3], lead = Array(x.shape.dropLast(3))
        var cur = x, ch = h, cw = w
        for _ in 0..<levels {
            cur = level2D(cur, planes: Tensor.count(of: lead) * planes, height: ch, width: cw, inverse: false)
            planes *= 4; ch /= 2; cw /= 2
        }
        lead.append(contentsOf: [planes, ch, cw])
        cur.reshape(lead)
        return cur
    }

    /// Inverse 2D transform: `[..., C·4^J, h, w]` -> `[..., C, h·2^J, w·2^J]`.
    public static func synthesis2D(_ x: Tensor, levels: Int) throws -> Tensor {
        guard x.rank >= 3 else { throw WallocError("2D wavelet synthesis needs [C, h, w] or [N, C, h, w], got \(x.shape)") }
        var planes = x.shape[x.rank - 3]
        let bands = 1 << (2 * levels)
        guard planes % bands == 0 else {
            throw WallocError("2D wavelet synthesis over \(levels) levels needs a multiple of \(bands) channels, got \(planes)")
        }
        var lead = Array(x.shape.dropLast(3))
        var cur = x, ch = x.shape[x.rank - 2], cw = x.shape[x.rank - 1]
        for _ in 0..<levels {
            planes /= 4
            cur = level2D(cur, planes: Tensor.count(of: lead) * planes, height: ch * 2, width: cw * 2, inverse: true)
            ch *= 2; cw *= 2
        }
        lead.append(contentsOf: [planes, ch, cw])
        cur.reshape(lead)
        return cur
    }

    /// Forward 1D transform: `[..., C, L]` -> `[..., C·2^J, L/2^J]`.
    public static func analysis1D(_ x: Tensor, levels: Int) throws -> Tensor {
        guard x.rank >= 2 else { throw WallocError("1D wavelet transform needs [C, L] or [N, C, L], got \(x.shape)") }
        let n = x.shape[x.rank - 1]
        try checkDivisible(n, levels, "length")
        var planes = x.shape[x.rank - 2], lead = Array(x.shape.dropLast(2))
        var cur = x, len = n
        for _ in 0..<levels {
            cur = level1D(cur, rows: Tensor.count(of: lead) * planes, length: len, inverse: false)
            planes *= 2; len /= 2
        }
        lead.append(contentsOf: [planes, len])
        cur.reshape(lead)
        return cur
    }

    /// Inverse 1D transform: `[..., C·2^J, l]` -> `[..., C, l·2^J]`.
    public static func synthesis1D(_ x: Tensor, levels: Int) throws -> Tensor {
        guard x.rank >= 2 else { throw WallocError("1D wavelet synthesis needs [C, l] or [N, C, l], got \(x.shape)") }
        var planes = x.shape[x.rank - 2]
        guard planes % (1 << levels) == 0 else {
            throw WallocError("1D wavelet synthesis over \(levels) levels needs a multiple of \(1 << levels) channels, got \(planes)")
        }
        var lead = Array(x.shape.dropLast(2))
        var cur = x, len = x.shape[x.rank - 1]
        for _ in 0..<levels {
            planes /= 2
            cur = level1D(cur, rows: Tensor.count(of: lead) * planes, length: len * 2, inverse: true)
            len *= 2
        }
        lead.append(contentsOf: [planes, len])
        cur.reshape(lead)
        return cur
    }

    private static func checkDivisible(_ n: Int, _ levels: Int, _ what: String) throws {
        guard levels >= 0 else { throw WallocError("the number of wavelet levels must be at least 0, got \(levels)") }
        guard n > 0, n % (1 << levels) == 0 else {
            throw WallocError("\(what) \(n) is not a positive multiple of 2^\(levels) = \(1 << levels), as \(levels) wavelet levels need")
        }
    }

    /// Rows per parallel task, so that each task does a few hundred KB of work.
    private static func rowsPerTask(_ rowLength: Int) -> Int { max(1, 16_384 / max(1, rowLength)) }

    /// One 2D level over `planes` planes; `height` x `width` is the full-resolution size.
    private static func level2D(_ x: Tensor, planes: Int, height: Int, width: Int, inverse: Bool) -> Tensor {
        let h2 = height / 2, w2 = width / 2, plane = height * width
        var scratch = Tensor(uninitialized: [planes * plane])
        var out = Tensor(uninitialized: [planes * plane])
        x.withUnsafeBufferPointer { xb in
            scratch.withUnsafeMutableBufferPointer { sb in
                out.withUnsafeMutableBufferPointer { ob in
                    let src = xb.baseAddress!, tmp = sb.baseAddress!, dst = ob.baseAddress!
                    if !inverse {
                        // Rows: plane p -> tmp[p] = [lo half (height x w2) | hi half (height x w2)].
                        let rpt = rowsPerTask(width)
                        let tasksPerPlane = (height + rpt - 1) / rpt
                        parallelFor(planes * tasksPerPlane) { task in
                            let p = task / tasksPerPlane, r0 = (task % tasksPerPlane) * rpt
                            withUnsafeTemporaryAllocation(of: Float.self, capacity: FilterBank.scratchCount(w2)) { s in
                                for r in r0..<min(height, r0 + rpt) {
                                    let lo = tmp + p * plane + r * w2
                                    FilterBank.analyzeRow(src + p * plane + r * width, n: width, range: 0..<w2,
                                                          lo: lo, hi: lo + height * w2, scratch: s.baseAddress!)
                                }
                            }
                        }
                        // Columns: bands (4p + 0, 1) from the lo half, (4p + 2, 3) from the hi half.
                        let cpt = rowsPerTask(w2)
                        let colTasks = (h2 + cpt - 1) / cpt
                        parallelFor(planes * 2 * colTasks) { task in
                            let ph = task / colTasks, m0 = (task % colTasks) * cpt
                            let p = ph / 2, half = ph % 2
                            let band = dst + (4 * p + 2 * half) * h2 * w2
                            FilterBank.analyzeColumns(tmp + p * plane + half * height * w2, height: height, width: w2,
                                                      range: m0..<min(h2, m0 + cpt), lo: band, hi: band + h2 * w2)
                        }
                    } else {
                        // Columns: bands (4p, 4p+1) -> tmp lo half; (4p+2, 4p+3) -> tmp hi half.
                        let cpt = rowsPerTask(w2)
                        let colTasks = (h2 + cpt - 1) / cpt
                        parallelFor(planes * 2 * colTasks) { task in
                            let ph = task / colTasks, p0 = (task % colTasks) * cpt
                            let p = ph / 2, half = ph % 2
                            let band = src + (4 * p + 2 * half) * h2 * w2
                            FilterBank.synthesizeColumns(lo: band, hi: band + h2 * w2, height2: h2, width: w2,
                                                         range: p0..<min(h2, p0 + cpt), y: tmp + p * plane + half * height * w2)
                        }
                        let rpt = rowsPerTask(width)
                        let tasksPerPlane = (height + rpt - 1) / rpt
                        parallelFor(planes * tasksPerPlane) { task in
                            let p = task / tasksPerPlane, r0 = (task % tasksPerPlane) * rpt
                            withUnsafeTemporaryAllocation(of: Float.self, capacity: FilterBank.scratchCount(w2)) { s in
                                for r in r0..<min(height, r0 + rpt) {
                                    let lo = tmp + p * plane + r * w2
                                    FilterBank.synthesizeRow(lo: lo, hi: lo + height * w2, n2: w2, range: 0..<w2,
                                                             y: dst + p * plane + r * width, scratch: s.baseAddress!)
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// One 1D level over `rows` rows of full length `length`; long rows are split into segments.
    private static func level1D(_ x: Tensor, rows: Int, length: Int, inverse: Bool) -> Tensor {
        let n2 = length / 2
        let segment = 8192
        let segs = (n2 + segment - 1) / segment
        var out = Tensor(uninitialized: [rows * length])
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                let src = xb.baseAddress!, dst = ob.baseAddress!
                parallelFor(rows * segs) { task in
                    let r = task / segs, s0 = (task % segs) * segment
                    let range = s0..<min(n2, s0 + segment)
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: FilterBank.scratchCount(range.count)) { s in
                        if !inverse {
                            FilterBank.analyzeRow(src + r * length, n: length, range: range,
                                                  lo: dst + 2 * r * n2, hi: dst + (2 * r + 1) * n2, scratch: s.baseAddress!)
                        } else {
                            FilterBank.synthesizeRow(lo: src + 2 * r * n2, hi: src + (2 * r + 1) * n2, n2: n2, range: range,
                                                     y: dst + r * length, scratch: s.baseAddress!)
                        }
                    }
                }
            }
        }
        return out
    }
}
