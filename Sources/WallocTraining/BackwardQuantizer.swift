import Foundation
import WallocNN
import WallocTensor

extension Quantizer {
    /// Gradient of ToUniform `y = 2·latentMax·(Φ(x/scale) − ½)` at the input `x`:
    /// `dy/dx = 2·latentMax·φ(x/scale)/scale`.
    public func toUniformBackward(input x: Tensor, _ gradOutput: Tensor) -> Tensor {
        let s = scale, twoMax = 2 * latentMax
        let c = twoMax / (s * (2 * Double.pi).squareRoot())
        var dx = Tensor(uninitialized: x.shape)
        x.withUnsafeBufferPointer { xb in
            gradOutput.withUnsafeBufferPointer { gb in
                dx.withUnsafeMutableBufferPointer { db in
                    parallelChunks(x.count, minChunk: 4096) { r in
                        for i in r {
                            let z = Double(xb[i]) / s
                            db[i] = gb[i] * Float(c * Foundation.exp(-0.5 * z * z))
                        }
                    }
                }
            }
        }
        return dx
    }

    /// Gradient of ToNormal `z = scale·Φ⁻¹(clamp(y/(2·latentMax) + ½, 1e-4, 0.9999))` at the input
    /// `y`, given its output `z`: `dz/dy = scale·√(2π)·exp(w²/2)/(2·latentMax)` with `w = z/scale`,
    /// and zero where the clamp is active (PyTorch's Hardtanh passes no gradient at or beyond its limits).
    public func toNormalBackward(input y: Tensor, output z: Tensor, _ gradOutput: Tensor) -> Tensor {
        let s = scale, twoMax = 2 * latentMax
        let c = s * (2 * Double.pi).squareRoot() / twoMax
        let lo = Float(0.0001), hi = Float(0.9999), twoMaxF = Float(twoMax)
        var dy = Tensor(uninitialized: y.shape)
        y.withUnsafeBufferPointer { yb in
            z.withUnsafeBufferPointer { zb in
                gradOutput.withUnsafeBufferPointer { gb in
                    dy.withUnsafeMutableBufferPointer { db in
                        parallelChunks(y.count, minChunk: 4096) { r in
                            for i in r {
                                let u = yb[i] / twoMaxF + 0.5
                                if u <= lo || u >= hi { db[i] = 0; continue }
                                let w = Double(zb[i]) / s
                                db[i] = gb[i] * Float(c * Foundation.exp(0.5 * w * w))
                            }
                        }
                    }
                }
            }
        }
        return dy
    }
}
