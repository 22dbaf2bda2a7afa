import Foundation
import WallocTensor

/// WaLLoC's entropy bottleneck around the integer latents, as the reference computes it:
///
/// - `ToUniform`: `2·latentMax·(Φ(x / scale) − ½)` with Φ the standard normal CDF,
/// - `Round`: round half to even (training replaces it with additive uniform noise),
/// - `ToNormal`: `scale · Φ⁻¹(clamp(y / (2·latentMax) + ½, 0.0001, 0.9999))`.
///
/// With `bits` latent bits, `scale = (2^(bits−1) − 1) / 1.85` and
/// `latentMax = 2^(bits−1) − 1 + 0.5 − 0.001`, so rounded latents lie in `±(2^(bits−1) − 1)`.
///
/// Variable-rate models (a Walloc extension) use a uniform quantiser instead: `toUniform` divides
/// by `step`, `toNormal` multiplies by it, and rounding clamps to `±(2^(bits−1) − 1)`. Its zero
/// bin may be widened by `deadzone` steps on each side (`level(_:)`).
public struct Quantizer: Sendable, Equatable {
    public let bits: Int
    /// The uniform quantiser's step; nil for the reference's companding quantiser.
    public let step: Float?
    /// Uniform quantiser: how much wider than ½ step each half of the zero bin is (0 = plain
    /// rounding). An encoder-side choice: decoding is the same whatever it is.
    public let deadzone: Float

    /// The reference's companding quantiser.
    public init(bits: Int) {
        precondition(bits >= 2 && bits <= 16, "latent bits must be in 2...16")
        self.bits = bits
        step = nil
        deadzone = 0
    }

    /// A uniform quantiser with step `step` and a zero bin widened by `deadzone` steps per side.
    public init(bits: Int, step: Float, deadzone: Float = 0) {
        precondition(bits >= 2 && bits <= 16, "latent bits must be in 2...16")
        precondition(step > 0 && step.isFinite, "the quantiser step must be positive")
        precondition(deadzone >= 0 && deadzone < 0.5, "the dead zone must be in [0, 0.5)")
        self.bits = bits
        self.step = step
        self.deadzone = deadzone
    }

    /// The uniform quantiser's level for `u` (in steps): 0 when `|u| < ½ + deadzone`, else `u`
    /// rounded half to even; clamped to `±limit`.
    @inline(__always)
    public static func level(_ u: Float, deadzone: Float, limit: Float) -> Float {
        abs(u) < 0.5 + deadzone ? 0 : min(max(u.rounded(.toNearestOrEven), -limit), limit)
    }

    /// `(2^(bits−1) − 1) / 1.85`, the reference's scale (computed in double, applied in float).
    public var scale: Double { Double((1 << (bits - 1)) - 1) / 1.85 }
    /// `2^(bits−1) − 1 + 0.5 − 1e−3`.
    public var latentMax: Double { Double((1 << (bits - 1)) - 1) + 0.5 - 1e-3 }
    /// The largest magnitude a rounded latent takes.
    public var maxLevel: Int { (1 << (bits - 1)) - 1 }
    /// The integer values a stream of this many bits can hold (the reference's `to_bytes` range).
    public var representableRange: ClosedRange<Int> { -(1 << (bits - 1))...((1 << (bits - 1)) - 1) }

    /// ToUniform in place (uniform quantiser: division by the step).
    public func toUniform(_ x: inout Tensor) {
        if let step { x.scale(by: 1 / step); return }
        let s = Float(scale), twoMax = Float(2 * latentMax), sqrt2 = Float(2.0.squareRoot())
        x.withUnsafeMutableBufferPointer { b in
            parallelChunks(b.count, minChunk: 4096) { r in
                for i in r {
                    let cdf = 0.5 * (1 + Foundation.erf(b[i] / s / sqrt2))
                    b[i] = twoMax * (cdf - 0.5)
                }
            }
        }
    }

    /// Rounds half to even in place (uniform quantiser: `level(_:)`). With `channelAxis`, the
    /// dead zone applies only to channels below `deadzoneChannels` on that axis (an audio model's
    /// envelope channels follow its latents and are rounded plainly).
    public func round(_ x: inout Tensor, deadzoneChannels: Int = .max, channelAxis: Int = 0) {
        let limit = Float(maxLevel)
        guard step != nil else {
            x.withUnsafeMutableBufferPointer { b in
                parallelChunks(b.count, minChunk: 4096) { r in for i in r { b[i] = b[i].rounded(.toNearestOrEven) } }
            }
            return
        }
        // One channel plane at a time, so each knows its dead zone without per-value index math.
        let channels = x.rank > channelAxis ? x.shape[channelAxis] : 1
        let plane = max(1, x.count / max(1, x.rank > channelAxis ? x.shape[...channelAxis].reduce(1, *) : 1))
        x.withUnsafeMutableBufferPointer { b in
            parallelFor(b.count / plane) { row in
                let dz = row % channels < deadzoneChannels ? deadzone : 0, p = b.baseAddress! + row * plane
                for i in 0..<plane { p[i] = Quantizer.level(p[i], deadzone: dz, limit: limit) }
            }
        }
    }

    /// Adds uniform noise in [-0.5, 0.5) in place (the training-time stand-in for rounding).
    public func addNoise(_ x: inout Tensor, initializer: inout ParameterInitializer) {
        for i in 0..<x.count { x.scalars[i] += initializer.uniform() - 0.5 }
    }

    /// ToNormal in place (uniform quantiser: multiplication by the step).
    public func toNormal(_ x: inout Tensor) {
        if let step { x.scale(by: step); return }
        let twoMax = Float(2 * latentMax), s = Float(scale), sqrt2 = Float(2.0.squareRoot())
        x.withUnsafeMutableBufferPointer { b in
            parallelChunks(b.count, minChunk: 4096) { r in
                for i in r {
                    let u = min(max(b[i] / twoMax + 0.5, 0.0001), 0.9999)
                    b[i] = s * (Quantizer.erfinv(2 * u - 1) * sqrt2)
                }
            }
        }
    }

    /// Checks that every value is an integer within `representableRange`; throws naming the
    /// first offending value otherwise.
    public func validate(_ latents: Tensor) throws {
        let lo = Float(representableRange.lowerBound), hi = Float(representableRange.upperBound)
        for (i, v) in latents.scalars.enumerated() where !(v >= lo && v <= hi) || v.rounded() != v {
            if v.isFinite && v >= lo && v <= hi {
                throw WallocError("latent value \(v) at index \(i) is not an integer; latents are the rounded encoder outputs")
            }
            throw WallocError("latent value \(v) at index \(i) is outside the \(bits)-bit quantiser's range \(representableRange.lowerBound)...\(representableRange.upperBound)")
        }
    }

    /// Inverse error function, float in and out, computed in double (initial rational
    /// approximation refined by two Newton steps on `erf`).
    @inlinable
    public static func erfinv(_ y: Float) -> Float {
        let x = Double(y)
        if x <= -1 { return -.infinity }
        if x >= 1 { return .infinity }
        // Giles (2010) single-precision approximation as the starting point.
        var w = -Foundation.log((1 - x) * (1 + x))
        var p: Double
        if w < 5 {
            w -= 2.5
            p = 2.81022636e-08
            p = 3.43273939e-07 + p * w; p = -3.5233877e-06 + p * w; p = -4.39150654e-06 + p * w
            p = 0.00021858087 + p * w; p = -0.00125372503 + p * w; p = -0.00417768164 + p * w
            p = 0.246640727 + p * w; p = 1.50140941 + p * w
        } else {
            w = w.squareRoot() - 3
            p = -0.000200214257
            p = 0.000100950558 + p * w; p = 0.00134934322 + p * w; p = -0.00367342844 + p * w
            p = 0.00573950773 + p * w; p = -0.0076224613 + p * w; p = 0.00943887047 + p * w
            p = 1.00167406 + p * w; p = 2.83297682 + p * w
        }
        var r = p * x
        let twoOverSqrtPi = 2 / Double.pi.squareRoot()
        for _ in 0..<2 {
            r -= (Foundation.erf(r) - x) / (twoOverSqrtPi * Foundation.exp(-r * r))
        }
        return Float(r)
    }
}
