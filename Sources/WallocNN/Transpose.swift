#if canImport(CDNNL)
/// Layout changes between Walloc's `NCHW` windows and oneDNN's channels-last pieces, with the
/// conversions the convolutions want on the way: to bfloat16 or to int8 going in, a per-channel
/// scale and bias coming out of int8 products.
enum Transpose {
    /// What a channels-last copy holds: float32, bfloat16 (rounded to nearest even), or int8
    /// `round(x · inverseScale)` clamped to ±127.
    enum Element {
        case float32, bfloat16
        case int8(inverseScale: Float)

        var bytes: Int {
            switch self {
            case .float32: return 4
            case .bfloat16: return 2
            case .int8: return 1
            }
        }
    }

    /// `[n, c, rows, cols]` float32 rows of planes with `planeRows` rows -> `[n, rows, cols, c]`
    /// of `element`. Blocks of 8 channels x 8 columns are transposed in registers (a plain
    /// element loop, with its plane-sized stride, took 35% as long as the convolutions themselves
    /// on 32-column tiles).
    static func toChannelsLast(_ src: UnsafePointer<Float>, samples: Int, channels c: Int, rows: Int, cols: Int, planeRows: Int,
                               into dst: UnsafeMutableRawPointer, element: Element) {
        let plane = planeRows * cols
        for n in 0..<samples {
            for y in 0..<rows {
                let from = src + n * c * plane + y * cols
                let row = (n * rows + y) * cols * c
                var ch0 = 0
                while ch0 + 8 <= c {
                    var x0 = 0
                    while x0 + 8 <= cols {
                        transposed(UnsafeRawPointer(from + ch0 * plane + x0), stride: plane) { j, v in
                            store(v, element, dst, at: row + (x0 + j) * c + ch0)
                        }
                        x0 += 8
                    }
                    toChannelsLast(from, plane: plane, channels: ch0..<(ch0 + 8), columns: x0..<cols, c: c, into: dst, at: row, element: element)
                    ch0 += 8
                }
                toChannelsLast(from, plane: plane, channels: ch0..<c, columns: 0..<cols, c: c, into: dst, at: row, element: element)
            }
        }
    }

    /// Eight consecutive channels of one position, converted, at element index `index` of `dst`.
    @inline(__always) private static func store(_ v: SIMD8<Float>, _ element: Element, _ dst: UnsafeMutableRawPointer, at index: Int) {
        switch element {
        case .float32:
            (dst + 4 * index).storeBytes(of: v, as: SIMD8<Float>.self)
        case .bfloat16:
            let bits = unsafeBitCast(v, to: SIMD8<UInt32>.self)
            let rounded = SIMD8<UInt16>(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) &>> 16)
            (dst + 2 * index).storeBytes(of: rounded, as: SIMD8<UInt16>.self)
        case .int8(let inverseScale):
            (dst + index).storeBytes(of: quantized(v, inverseScale), as: SIMD8<Int8>.self)
        }
    }

    /// `round(v · inverseScale)` (to nearest even) clamped to ±127: adding 1.5 · 2^23 leaves the
    /// rounded integer in the low mantissa bits. (Masked replacement, not the standard library's
    /// `clamped`, which is not vectorised.)
    @inline(__always) static func quantized(_ v: SIMD8<Float>, _ inverseScale: Float) -> SIMD8<Int8> {
        var y = v * inverseScale
        let lo = SIMD8<Float>(repeating: -127), hi = SIMD8<Float>(repeating: 127)
        y.replace(with: lo, where: y .< lo)
        y.replace(with: hi, where: y .> hi)
        let magic = unsafeBitCast(y + 12_582_912, to: SIMD8<Int32>.self) &- 0x4B40_0000
        return SIMD8<Int8>(truncatingIfNeeded: magic)
    }

    /// The element loop for what the 8 x 8 blocks leave.
    private static func toChannelsLast(_ from: UnsafePointer<Float>, plane: Int, channels: Range<Int>, columns: Range<Int>, c: Int,
                                       into dst: UnsafeMutableRawPointer, at row: Int, element: Element) {
        switch element {
        case .float32:
            let to = dst.assumingMemoryBound(to: Float.self) + row
            for x in columns { for ch in channels { to[x * c + ch] = from[ch * plane + x] } }
        case .bfloat16:
            let to = dst.assumingMemoryBound(to: UInt16.self) + row
            for x in columns { for ch in channels { to[x * c + ch] = BFloat16.from(from[ch * plane + x]) } }
        case .int8(let inverseScale):
            let to = dst.assumingMemoryBound(to: Int8.self) + row
            for x in columns {
                for ch in channels {
                    // The scalar form of `quantized`: clamp, then round to nearest even.
                    let y = min(127, max(-127, from[ch * plane + x] * inverseScale))
                    to[x * c + ch] = Int8(y.rounded(.toNearestOrEven))
                }
            }
        }
    }

    /// The largest magnitude in `[n, c, rows, cols]` rows of planes with `planeRows` rows (0 for
    /// none; NaNs are skipped).
    static func maximumMagnitude(_ src: UnsafePointer<Float>, samples: Int, channels c: Int, rows: Int, cols: Int, planeRows: Int) -> Float {
        let plane = planeRows * cols
        var m = SIMD8<Float>(repeating: 0), tail: Float = 0
        for n in 0..<samples {
            for ch in 0..<c {
                // The window's rows are contiguous within a plane.
                let p = src + (n * c + ch) * plane, count = rows * cols
                var i = 0
                while i + 8 <= count {
                    // |v| by clearing the sign bits; masked replacement (not `pointwiseMax`) vectorises.
                    let v = unsafeBitCast(UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: SIMD8<Float>.self)
                    m.replace(with: v, where: v .> m)
                    i += 8
                }
                while i < count { tail = max(tail, abs(p[i])); i += 1 }
            }
        }
        return max(m.max(), tail)
    }

    /// `[n, rows, cols, c]` float32 -> rows of `[n, c, planeRows, cols]` planes, each value of
    /// channel `ch` times `multipliers[ch]` plus `bias[ch]` when given.
    static func fromChannelsLast(_ src: UnsafePointer<Float>, samples: Int, channels c: Int, rows: Int, cols: Int, planeRows: Int,
                                 into dst: UnsafeMutablePointer<Float>,
                                 multipliers: UnsafePointer<Float>? = nil, bias: UnsafePointer<Float>? = nil) {
        let plane = planeRows * cols
        @inline(__always) func scaled(_ v: Float, _ ch: Int) -> Float {
            (multipliers.map { v * $0[ch] } ?? v) + (bias?[ch] ?? 0)
        }
        for n in 0..<samples {
            for y in 0..<rows {
                let from = src + (n * rows + y) * cols * c
                let to = dst + n * c * plane + y * cols
                var x0 = 0
                while x0 + 8 <= cols {
                    var ch0 = 0
                    while ch0 + 8 <= c {
                        transposed(UnsafeRawPointer(from + x0 * c + ch0), stride: c) { k, v in
                            var out = v
                            if let multipliers { out *= multipliers[ch0 + k] }
                            if let bias { out += bias[ch0 + k] }
                            UnsafeMutableRawPointer(to + (ch0 + k) * plane + x0).storeBytes(of: out, as: SIMD8<Float>.self)
                        }
                        ch0 += 8
                    }
                    for ch in ch0..<c { for x in x0..<(x0 + 8) { to[ch * plane + x] = scaled(from[x * c + ch], ch) } }
                    x0 += 8
                }
                for ch in 0..<c { for x in x0..<cols { to[ch * plane + x] = scaled(from[x * c + ch], ch) } }
            }
        }
    }

    /// The 8 x 8 block of floats at `p` (rows `stride` floats apart), transposed: `body(j, v)`
    /// gets column `j` of the block as `v`.
    @inline(__always) private static func transposed(_ p: UnsafeRawPointer, stride: Int, _ body: (Int, SIMD8<Float>) -> Void) {
        let s = 4 * stride
        let r0 = p.loadUnaligned(as: SIMD8<Float>.self), r1 = p.loadUnaligned(fromByteOffset: s, as: SIMD8<Float>.self)
        let r2 = p.loadUnaligned(fromByteOffset: 2 * s, as: SIMD8<Float>.self), r3 = p.loadUnaligned(fromByteOffset: 3 * s, as: SIMD8<Float>.self)
        let r4 = p.loadUnaligned(fromByteOffset: 4 * s, as: SIMD8<Float>.self), r5 = p.loadUnaligned(fromByteOffset: 5 * s, as: SIMD8<Float>.self)
        let r6 = p.loadUnaligned(fromByteOffset: 6 * s, as: SIMD8<Float>.self), r7 = p.loadUnaligned(fromByteOffset: 7 * s, as: SIMD8<Float>.self)
        for j in 0..<8 { body(j, SIMD8(r0[j], r1[j], r2[j], r3[j], r4[j], r5[j], r6[j], r7[j])) }
    }
}
#endif
