import WallocTensor

/// 8-bit interleaved pixels for the C codec libraries, and back.
enum PixelPacking {
    /// `[C, H, W]` floats in [0, 1] to interleaved 8-bit samples (clamped, rounded to nearest,
    /// NaN to 0), as WallocMedia's encoders do.
    static func interleaved8(_ pixels: Tensor) -> [UInt8] {
        let (c, n) = (pixels.shape[0], pixels.shape[1] * pixels.shape[2])
        return c * n == 0 ? [] : [UInt8](unsafeUninitializedCapacity: c * n) { out, initialized in
            pixels.withUnsafeBufferPointer { src in
                parallelChunks(n, minChunk: 1 << 15) { range in
                    for ch in 0..<c {
                        let plane = src.baseAddress! + ch * n
                        for p in range {
                            let v = plane[p] * 255
                            out[p * c + ch] = UInt8((v > 0 ? (v < 255 ? v : 255) : 0) + 0.5)
                        }
                    }
                }
            }
            initialized = c * n
        }
    }

    /// Interleaved 8-bit samples (rows `stride` bytes apart) to `[C, H, W]` floats in [0, 1].
    static func planar(_ src: UnsafePointer<UInt8>, channels c: Int, height h: Int, width w: Int, stride: Int) -> Tensor {
        Tensor(uninitializedShape: [c, h, w]) { dst in
            parallelChunks(h, minChunk: 16) { rows in
                for y in rows {
                    let row = src + y * stride
                    for ch in 0..<c {
                        let out = dst.baseAddress! + ch * h * w + y * w
                        for x in 0..<w { out[x] = Float(row[x * c + ch]) / 255 }
                    }
                }
            }
        }
    }

    /// Rounds `[C, H, W]` floats in [0, 1] to the `bits`-bit grid (what writing them to an
    /// integer image file keeps).
    static func quantized(_ pixels: Tensor, bits: Int) -> Tensor {
        let maxValue = Float((1 << bits) - 1)
        var out = pixels
        out.withUnsafeMutableBufferPointer { p in
            parallelChunks(p.count, minChunk: 1 << 16) { range in
                for i in range {
                    let v = p[i] * maxValue
                    p[i] = ((v > 0 ? (v < maxValue ? v : maxValue) : 0) + 0.5).rounded(.down) / maxValue
                }
            }
        }
        return out
    }
}
