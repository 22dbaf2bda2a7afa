/// Copies of sub-ranges along the last axes, and joining along the last axis.
extension Tensor {
    /// The elements whose last-axis index lies in `range` (leading axes kept): `[..., n]` -> `[..., range.count]`.
    public func lastAxis(_ range: Range<Int>) -> Tensor {
        let n = shape[rank - 1], rows = count / max(1, n), m = range.count
        precondition(range.lowerBound >= 0 && range.upperBound <= n, "lastAxis: \(range) outside 0..<\(n)")
        return Tensor(uninitializedShape: Array(shape.dropLast()) + [m]) { dst in
            withUnsafeBufferPointer { src in
                for r in 0..<rows { (dst.baseAddress! + r * m).update(from: src.baseAddress! + r * n + range.lowerBound, count: m) }
            }
        }
    }

    /// The window `rows x columns` of the last two axes: `[..., h, w]` -> `[..., rows.count, columns.count]`.
    public func window(rows: Range<Int>, columns: Range<Int>) -> Tensor {
        let h = shape[rank - 2], w = shape[rank - 1], planes = count / max(1, h * w)
        precondition(rows.lowerBound >= 0 && rows.upperBound <= h && columns.lowerBound >= 0 && columns.upperBound <= w,
                     "window \(rows) x \(columns) outside \(h) x \(w)")
        let hh = rows.count, ww = columns.count
        return Tensor(uninitializedShape: Array(shape.dropLast(2)) + [hh, ww]) { dst in
            withUnsafeBufferPointer { src in
                for p in 0..<planes {
                    for y in 0..<hh {
                        (dst.baseAddress! + (p * hh + y) * ww)
                            .update(from: src.baseAddress! + (p * h + rows.lowerBound + y) * w + columns.lowerBound, count: ww)
                    }
                }
            }
        }
    }

    /// Joins tensors with equal leading axes along the last axis.
    public static func concatenateLastAxis(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty, "concatenateLastAxis: no tensors")
        if parts.count == 1 { return parts[0] }
        let lead = Array(parts[0].shape.dropLast())
        let rows = Tensor.count(of: lead)
        let widths = parts.map { $0.shape.last! }
        precondition(parts.allSatisfy { Array($0.shape.dropLast()) == lead }, "concatenateLastAxis: leading axes differ")
        let total = widths.reduce(0, +)
        return Tensor(uninitializedShape: lead + [total]) { dst in
            var offset = 0
            for (part, w) in zip(parts, widths) {
                part.withUnsafeBufferPointer { src in
                    for r in 0..<rows { (dst.baseAddress! + r * total + offset).update(from: src.baseAddress! + r * w, count: w) }
                }
                offset += w
            }
        }
    }
}
