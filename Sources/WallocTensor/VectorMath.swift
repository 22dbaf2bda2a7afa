/// Vectorised element-wise math on float buffers (SIMD16 lanes, scalar tail).
public enum VectorMath {
    public typealias V = SIMD16<Float>

    /// Lane-wise clamp. (The standard library's `clamped` and `pointwiseMin/Max` are not
    /// vectorised and cost ~100x more; masked `replace` is.)
    @inlinable @inline(__always)
    public static func clamp(_ v: V, _ lo: Float, _ hi: Float) -> V {
        var r = v
        let l = V(repeating: lo), h = V(repeating: hi)
        r.replace(with: l, where: r .< l)
        r.replace(with: h, where: r .> h)
        return r
    }

    /// `e^x` for 16 lanes: Cody-Waite range reduction and a degree-6 polynomial (Cephes `expf`);
    /// relative error below 2e-7 over the float range. Inputs are clamped to [-87.3, 88.7].
    @inlinable @inline(__always)
    public static func exp(_ v: V) -> V {
        var x = clamp(v, -87.33654, 88.72283)
        // n = round(x / ln 2) via the 1.5·2^23 trick: the integer lands in the low mantissa bits,
        // which avoids SIMD float-to-int conversions (not vectorised by the standard library).
        let magic = V(repeating: 12_582_912)
        let t = x * 1.44269504088896341 + magic
        let n = t - magic
        let ni = unsafeBitCast(t, to: SIMD16<Int32>.self) &- unsafeBitCast(magic, to: SIMD16<Int32>.self)
        x = x.addingProduct(n, V(repeating: -0.693359375))
        x = x.addingProduct(n, V(repeating: 2.12194440e-4))
        let z = x * x
        var y = V(repeating: 1.3981999507e-3).addingProduct(V(repeating: 1.9875691500e-4), x)
        y = V(repeating: 8.3334519073e-3).addingProduct(y, x)
        y = V(repeating: 4.1665795894e-2).addingProduct(y, x)
        y = V(repeating: 1.6666665459e-1).addingProduct(y, x)
        y = V(repeating: 5.0000001201e-1).addingProduct(y, x)
        y = (x + 1).addingProduct(y, z)
        let bits = (ni &+ 127) &<< 23
        return y * unsafeBitCast(bits, to: V.self)
    }

    /// Scalar `e^x` with the same polynomial as the vector form.
    @inlinable @inline(__always)
    public static func exp(_ x: Float) -> Float {
        exp(V(repeating: x))[0]
    }

    /// Applies `f` to every element of `buffer` in place, 16 lanes at a time.
    @inlinable @inline(__always)
    public static func map(_ buffer: UnsafeMutablePointer<Float>, count: Int, _ f: (V) -> V) {
        map(buffer, into: buffer, count: count, f)
    }

    /// Writes `f` of every element of `source` to `destination` (`count` elements each; they may
    /// be the same buffer), 16 lanes at a time.
    @inlinable @inline(__always)
    public static func map(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>, count: Int, _ f: (V) -> V) {
        var i = 0
        while i + 16 <= count {
            UnsafeMutableRawPointer(destination + i).storeBytes(of: f(UnsafeRawPointer(source + i).loadUnaligned(as: V.self)), as: V.self)
            i += 16
        }
        if i < count {
            var tail = V(repeating: 0)
            for j in 0..<(count - i) { tail[j] = source[i + j] }
            tail = f(tail)
            for j in 0..<(count - i) { destination[i + j] = tail[j] }
        }
    }

    /// SiLU `x * sigmoid(x)` in place.
    @inlinable
    public static func silu(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        map(buffer, count: count) { x in x / (1 + exp(-x)) }
    }

    /// Applies SiLU in place over a whole tensor, using all threads for large tensors.
    public static func silu(_ t: inout Tensor) {
        let n = t.count
        t.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            parallelChunks(n, minChunk: 1 << 15) { r in
                silu(base + r.lowerBound, count: r.count)
            }
        }
    }

    /// Numerically stable softmax of one row in place: `exp(x - max) / sum`.
    @inlinable
    public static func softmaxRow(_ row: UnsafeMutablePointer<Float>, count: Int) {
        scale(row, count: count, by: 1 / expShiftedRow(row, count: count))
    }

    /// Replaces a row by `exp(x - max(x))` and returns the sum of the new values (the softmax
    /// denominator), so callers can fold the normalisation into a later product.
    @inlinable
    public static func expShiftedRow(_ row: UnsafeMutablePointer<Float>, count: Int) -> Float {
        expRow(row, count: count, shift: maximum(row, count: count))
    }

    /// The largest of `count` values, 16 lanes at a time (a scalar `max` loop is not vectorised:
    /// it took about as long as the exponentials in the attention's softmax).
    @inlinable
    public static func maximum(_ row: UnsafePointer<Float>, count: Int) -> Float {
        var mv = V(repeating: -Float.infinity)
        var j = 0
        while j + 16 <= count {
            let x = UnsafeRawPointer(row + j).loadUnaligned(as: V.self)
            mv = mv.replacing(with: x, where: x .> mv)
            j += 16
        }
        var m = mv.max()
        while j < count { m = Swift.max(m, row[j]); j += 1 }
        return m
    }

    /// Replaces a row by `exp(x - shift)` and returns the sum of the new values.
    @inlinable
    public static func expRow(_ row: UnsafeMutablePointer<Float>, count: Int, shift m: Float) -> Float {
        let mv = V(repeating: m)
        var acc = V(repeating: 0)
        var i = 0
        while i + 16 <= count {
            let p = UnsafeMutableRawPointer(row + i)
            let e = exp(p.loadUnaligned(as: V.self) - mv)
            p.storeBytes(of: e, as: V.self)
            acc += e
            i += 16
        }
        var sum = acc.sum()
        while i < count {
            let e = exp(row[i] - m)
            row[i] = e
            sum += e
            i += 1
        }
        return sum
    }

    /// Multiplies `count` elements by `s` in place.
    @inlinable
    public static func scale(_ buffer: UnsafeMutablePointer<Float>, count: Int, by s: Float) {
        map(buffer, count: count) { $0 * s }
    }

    /// `y += x` element-wise.
    @inlinable
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count {
            let px = UnsafeRawPointer(x + i), py = UnsafeMutableRawPointer(y + i)
            py.storeBytes(of: py.loadUnaligned(as: V.self) + px.loadUnaligned(as: V.self), as: V.self)
            i += 16
        }
        while i < count { y[i] += x[i]; i += 1 }
    }

    /// `y += a * x` element-wise.
    @inlinable
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let av = V(repeating: a)
        while i + 16 <= count {
            let px = UnsafeRawPointer(x + i), py = UnsafeMutableRawPointer(y + i)
            py.storeBytes(of: py.loadUnaligned(as: V.self).addingProduct(av, px.loadUnaligned(as: V.self)), as: V.self)
            i += 16
        }
        while i < count { y[i] += a * x[i]; i += 1 }
    }
}

extension Tensor {
    /// Multiplies every element by `s` in place (all cores).
    public mutating func scale(by s: Float) {
        withUnsafeMutableBufferPointer { b in
            parallelChunks(b.count, minChunk: 1 << 15) { r in VectorMath.scale(b.baseAddress! + r.lowerBound, count: r.count, by: s) }
        }
    }

    /// Multiplies channel `c` (axis 1 of `[N, C, ...]`) by `factors[c]` in place.
    public mutating func scaleChannels(by factors: [Float]) {
        precondition(rank >= 2 && shape[1] == factors.count, "scaleChannels: \(factors.count) factors for shape \(shape)")
        let n = shape[0], c = shape[1], plane = count / max(1, n * c)
        withUnsafeMutableBufferPointer { b in
            parallelFor(n * c) { row in VectorMath.scale(b.baseAddress! + row * plane, count: plane, by: factors[row % c]) }
        }
    }

    /// `[N, C, ...]` with `extra` constant channels of `value` appended on axis 1: `[N, C + extra, ...]`.
    public func appendingConstantChannels(_ extra: Int, value: Float) -> Tensor {
        appendingChannels(extra) { _, _, row in row.update(repeating: value) }
    }

    /// `[N, C, ...]` with `extra` channels appended on axis 1, each plane filled by
    /// `fill(sample, channel, plane)` (channel counts from 0 among the new ones).
    public func appendingChannels(_ extra: Int, fill: (Int, Int, UnsafeMutableBufferPointer<Float>) -> Void) -> Tensor {
        precondition(rank >= 2, "appendingChannels needs [N, C, ...], got \(shape)")
        let n = shape[0], c = shape[1], plane = count / max(1, n * c)
        var newShape = shape
        newShape[1] = c + extra
        return Tensor(uninitializedShape: newShape) { dst in
            withUnsafeBufferPointer { src in
                for s in 0..<n {
                    (dst.baseAddress! + s * (c + extra) * plane).update(from: src.baseAddress! + s * c * plane, count: c * plane)
                    for e in 0..<extra {
                        fill(s, e, UnsafeMutableBufferPointer(start: dst.baseAddress! + (s * (c + extra) + c + e) * plane, count: plane))
                    }
                }
            }
        }
    }

    /// `[N, A, ...]` and `[N, B, ...]` -> `[N, A + B, ...]` (axis 1).
    public static func concatenateChannels(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.rank >= 2 && a.rank == b.rank && a.shape[0] == b.shape[0] && a.shape.dropFirst(2) == b.shape.dropFirst(2),
                     "concatenateChannels: \(a.shape) and \(b.shape)")
        let ca = a.shape[1], cb = b.shape[1]
        let plane = a.count / max(1, a.shape[0] * ca)
        return a.appendingChannels(cb) { s, e, dst in
            b.withUnsafeBufferPointer { src in dst.baseAddress!.update(from: src.baseAddress! + (s * cb + e) * plane, count: plane) }
        }
    }

    /// `[N, C, ...]` -> channels `range` on axis 1.
    public func channels(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 2 && range.lowerBound >= 0 && range.upperBound <= shape[1], "channels(\(range)) of \(shape)")
        let n = shape[0], c = shape[1], plane = count / max(1, n * c), k = range.count
        var newShape = shape
        newShape[1] = k
        return Tensor(uninitializedShape: newShape) { dst in
            withUnsafeBufferPointer { src in
                for s in 0..<n {
                    (dst.baseAddress! + s * k * plane).update(from: src.baseAddress! + (s * c + range.lowerBound) * plane, count: k * plane)
                }
            }
        }
    }

    /// `[N, C, ...]` -> its first `keep` channels on axis 1.
    public func leadingChannels(_ keep: Int) -> Tensor {
        precondition(rank >= 2 && keep <= shape[1], "leadingChannels(\(keep)) of \(shape)")
        if keep == shape[1] { return self }
        let n = shape[0], c = shape[1], plane = count / max(1, n * c)
        var newShape = shape
        newShape[1] = keep
        return Tensor(uninitializedShape: newShape) { dst in
            withUnsafeBufferPointer { src in
                for s in 0..<n { (dst.baseAddress! + s * keep * plane).update(from: src.baseAddress! + s * c * plane, count: keep * plane) }
            }
        }
    }
}
