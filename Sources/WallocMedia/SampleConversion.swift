import WallocTensor

/// Conversions between interleaved file samples and planar float32 buffers.
///
/// Planar buffers hold `channels` planes of `planeStride` floats; a run of `pixels` interleaved
/// pixels maps to positions `offset ..< offset + pixels` of planes `firstChannel ..<
/// firstChannel + channels`. Integer samples map to [0, 1] by value / max; on the way back floats
/// are clamped to [0, 1] (NaN to 0) and rounded to nearest.
enum SampleConversion {
    /// Runs `body` over `0..<pixels`, in parallel when the work is large enough to pay for it.
    @inline(__always)
    static func forEachRange(_ pixels: Int, channels: Int, _ body: (Range<Int>) -> Void) {
        if pixels * channels < 1 << 17 { body(0..<pixels); return }
        parallelChunks(pixels, minChunk: max(1024, (1 << 15) / max(1, channels)), body)
    }

    static func deinterleave<T: FixedWidthInteger & UnsignedInteger>(
        _ src: UnsafePointer<T>, pixels: Int, channels: Int,
        into dst: UnsafeMutablePointer<Float>, planeStride: Int, firstChannel: Int = 0, offset: Int = 0
    ) {
        let maxValue = Float(T.max) // divide (not multiply by 1/max): k/max is then correctly rounded
        forEachRange(pixels, channels: channels) { range in
            for c in 0..<channels {
                let plane = dst + (firstChannel + c) * planeStride + offset
                for p in range { plane[p] = Float(src[p * channels + c]) / maxValue }
            }
        }
    }

    static func deinterleave(
        _ src: UnsafePointer<Float>, pixels: Int, channels: Int,
        into dst: UnsafeMutablePointer<Float>, planeStride: Int, firstChannel: Int = 0, offset: Int = 0
    ) {
        forEachRange(pixels, channels: channels) { range in
            for c in 0..<channels {
                let plane = dst + (firstChannel + c) * planeStride + offset
                for p in range { plane[p] = src[p * channels + c] }
            }
        }
    }

    static func interleave<T: FixedWidthInteger & UnsignedInteger>(
        _ src: UnsafePointer<Float>, planeStride: Int, firstChannel: Int = 0, offset: Int = 0,
        pixels: Int, channels: Int, into dst: UnsafeMutablePointer<T>
    ) {
        let maxValue = Float(T.max)
        forEachRange(pixels, channels: channels) { range in
            for c in 0..<channels {
                let plane = src + (firstChannel + c) * planeStride + offset
                var start = range.lowerBound
                if T.self == UInt8.self {
                    start = interleaveBytes(plane, range, channel: c, channels: channels,
                                            into: UnsafeMutableRawPointer(dst).assumingMemoryBound(to: UInt8.self))
                }
                for p in start..<range.upperBound {
                    let v = plane[p] * maxValue
                    let clamped: Float = v > 0 ? (v < maxValue ? v : maxValue) : 0 // NaN -> 0
                    dst[p * channels + c] = T(clamped + 0.5)
                }
            }
        }
    }

    /// 8-bit samples of one channel, 16 at a time, as the scalar loop computes them (clamped to
    /// [0, 255], plus 0.5, truncated; NaN -> 0; masked replacement and `floor`, which vectorise);
    /// returns where the scalar loop takes over.
    @inline(__always)
    private static func interleaveBytes(_ plane: UnsafePointer<Float>, _ range: Range<Int>, channel c: Int, channels: Int,
                                        into dst: UnsafeMutablePointer<UInt8>) -> Int {
        typealias V = SIMD16<Float>
        var p = range.lowerBound
        let zero = V(repeating: 0), top = V(repeating: 255), magic = V(repeating: 8_388_608)
        while p + 16 <= range.upperBound {
            var v = UnsafeRawPointer(plane + p).loadUnaligned(as: V.self) * 255
            v.replace(with: zero, where: .!(v .> zero))  // NaN and negatives -> 0
            v.replace(with: top, where: v .> top)
            let t = (v + 0.5).rounded(.down)
            let q = SIMD16<UInt8>(truncatingIfNeeded: unsafeBitCast(t + magic, to: SIMD16<UInt32>.self) &- 0x4B00_0000)
            let out = dst + p * channels + c
            for j in 0..<16 { out[j * channels] = q[j] }
            p += 16
        }
        return p
    }

    static func interleave(
        _ src: UnsafePointer<Float>, planeStride: Int, firstChannel: Int = 0, offset: Int = 0,
        pixels: Int, channels: Int, into dst: UnsafeMutablePointer<Float>
    ) {
        forEachRange(pixels, channels: channels) { range in
            for c in 0..<channels {
                let plane = src + (firstChannel + c) * planeStride + offset
                for p in range { dst[p * channels + c] = plane[p] }
            }
        }
    }

    /// Interleaves a whole `[C, H, W]` tensor into a new integer buffer.
    static func interleaved<T: FixedWidthInteger & UnsignedInteger>(
        _ pixels: Tensor, channels: Int, count: Int, as _: T.Type
    ) -> [T] {
        count * channels == 0 ? [] : [T](unsafeUninitializedCapacity: count * channels) { buffer, initialized in
            pixels.withUnsafeBufferPointer { src in
                interleave(src.baseAddress!, planeStride: count, pixels: count, channels: channels,
                           into: buffer.baseAddress!)
            }
            initialized = count * channels
        }
    }
}

// MARK: - Signed audio samples

extension SampleConversion {
    /// Interleaved `Int32` frames (integer samples scaled to the full 32-bit range) to planar
    /// floats, multiplied by `scale`.
    static func deinterleave(
        _ src: UnsafePointer<Int32>, frames: Int, channels: Int, scale: Float,
        into dst: UnsafeMutablePointer<Float>, rowStride: Int, offset: Int
    ) {
        for c in 0..<channels {
            let row = dst + c * rowStride + offset
            for f in 0..<frames { row[f] = Float(src[f * channels + c]) * scale }
        }
    }

    /// Planar floats in [-1, 1] to interleaved signed `bits`-bit samples placed in the top bits of
    /// an `Int32` (libsndfile's int convention): `round(x * 2^(bits-1))`, clamped, NaN to 0.
    static func interleave(
        _ src: UnsafePointer<Float>, rowStride: Int, offset: Int, frames: Int, channels: Int,
        bits: Int, into dst: UnsafeMutablePointer<Int32>
    ) {
        let scale = Float(1 << (bits - 1))
        let low = -scale, high = scale - 1
        let shift = Int32(32 - bits)
        for c in 0..<channels {
            let row = src + c * rowStride + offset
            for f in 0..<frames {
                let v = (row[f] * scale).rounded()
                let clamped: Float = v > low ? (v < high ? v : high) : (v.isNaN ? 0 : low)
                dst[f * channels + c] = Int32(clamped) << shift
            }
        }
    }
}
