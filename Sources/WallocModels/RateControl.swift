import Foundation
import WallocTensor

/// A quality setting: an integer from 1 (smallest files) to 100 (best quality), as JPEG, WebP
/// and AVIF have.
public enum Quality {
    public static let range: ClosedRange<Int> = 1...100

    /// Checks a user's setting.
    public static func validate(_ q: Int) throws {
        guard range.contains(q) else { throw WallocError("quality must be an integer from 1 to 100, got \(q)") }
    }
}

/// The `rate` section of a variable-rate model's `config.json` (a Walloc extension): how a
/// quality setting becomes the quantiser's step. This type is the one place that maps quality to
/// quantisation.
///
/// The encoder's latents are divided by the step `Δ(Q)` and rounded; the decoder multiplies them
/// back and, with `condition`, also receives `c(Q) = 2(Q − 1)/99 − 1 ∈ [−1, 1]` as one more input
/// channel. `Δ(Q)` falls geometrically from `max_step` at Q = 1 to `min_step` at Q = 100, so each
/// quality step changes the rate by about the same factor. With `step_scaled_output`, the decoder
/// network's output (the correction it adds to the linear path) is multiplied by
/// `Δ(Q)/√(min_step·max_step)`: the network predicts the quantisation error in units of the step,
/// so its corrections shrink with the error at fine settings instead of adding noise to them.
public struct RateConfig: Codable, Equatable, Sendable {
    /// The step at quality 1 (coarsest).
    public var maxStep: Float
    /// The step at quality 100 (finest).
    public var minStep: Float
    /// The setting used when none is given.
    public var defaultQuality: Int
    /// Whether the decoder receives `c(Q)` as an extra input channel.
    public var condition: Bool
    /// Whether the decoder network's output is scaled by the relative step.
    public var stepScaledOutput: Bool
    /// The encoder's dead zone: latents with `|y/Δ| < ½ + deadzone` become 0 (0 = plain
    /// rounding; below 0.5). Zeros are the cheapest values to code, so a wider zero bin trades a
    /// little error for fewer bits. It changes what the encoder writes, not how files decode, and
    /// is not part of the fingerprint; training rounds with it too.
    public var deadzone: Float
    /// Rate-distortion optimised quantisation when above 0 (`rd_lambda`): writing files, the
    /// encoder lowers a latent by one level toward zero wherever that saves more than `error² /
    /// rd_lambda` bits in the latent coder's context model (errors in steps; see
    /// WallocCoding's `RateDistortionQuantizer`). Encoder-side like `deadzone`, which then sets the
    /// starting point; not part of the fingerprint; training quantises with it too when set.
    public var rdLambda: Float
    /// Images: settings at which the encoder codes a smaller image (`downscale`, ascending
    /// `up_to`); encoder-side, not part of the fingerprint (the file says what it did).
    public var downscale: [Downscale]

    /// At settings up to `up_to`, an image is shrunk by `scale` (a triangle filter) and coded at
    /// quality `Q + quality_offset` (at most 100); decoding enlarges it back (Lanczos-3). At low
    /// rates a smaller image at a finer step beats the full image at a coarse one, and the offset
    /// keeps the file sizes of a setting about where they were.
    public struct Downscale: Codable, Equatable, Sendable {
        public var upTo: Int
        public var scale: Double
        public var qualityOffset: Int
        /// Images whose coded size would have a side below this are coded at full size.
        public static let minimumSide = 32

        enum CodingKeys: String, CodingKey { case upTo = "up_to", scale, qualityOffset = "quality_offset" }

        public init(upTo: Int, scale: Double, qualityOffset: Int) {
            self.upTo = upTo; self.scale = scale; self.qualityOffset = qualityOffset
        }

        /// The coded size of a side of `n` pixels.
        public func size(_ n: Int) -> Int { max(1, Int((Double(n) * scale).rounded())) }
    }

    enum CodingKeys: String, CodingKey {
        case maxStep = "max_step", minStep = "min_step", defaultQuality = "default_quality", condition
        case stepScaledOutput = "step_scaled_output", deadzone, rdLambda = "rd_lambda", downscale
    }

    public init(maxStep: Float, minStep: Float, defaultQuality: Int, condition: Bool = true, stepScaledOutput: Bool = false,
                deadzone: Float = 0, rdLambda: Float = 0, downscale: [Downscale] = []) {
        self.maxStep = maxStep; self.minStep = minStep; self.defaultQuality = defaultQuality; self.condition = condition
        self.stepScaledOutput = stepScaledOutput; self.deadzone = deadzone; self.rdLambda = rdLambda
        self.downscale = downscale
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxStep = try c.decode(Float.self, forKey: .maxStep)
        minStep = try c.decode(Float.self, forKey: .minStep)
        defaultQuality = try c.decodeIfPresent(Int.self, forKey: .defaultQuality) ?? 75
        condition = try c.decodeIfPresent(Bool.self, forKey: .condition) ?? true
        stepScaledOutput = try c.decodeIfPresent(Bool.self, forKey: .stepScaledOutput) ?? false
        deadzone = try c.decodeIfPresent(Float.self, forKey: .deadzone) ?? 0
        rdLambda = try c.decodeIfPresent(Float.self, forKey: .rdLambda) ?? 0
        downscale = try c.decodeIfPresent([Downscale].self, forKey: .downscale) ?? []
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(maxStep, forKey: .maxStep)
        try c.encode(minStep, forKey: .minStep)
        try c.encode(defaultQuality, forKey: .defaultQuality)
        try c.encode(condition, forKey: .condition)
        if stepScaledOutput { try c.encode(true, forKey: .stepScaledOutput) }
        if deadzone != 0 { try c.encode(deadzone, forKey: .deadzone) }
        if rdLambda != 0 { try c.encode(rdLambda, forKey: .rdLambda) }
        if !downscale.isEmpty { try c.encode(downscale, forKey: .downscale) }
    }

    public func validate() throws {
        guard minStep > 0, minStep.isFinite, maxStep.isFinite, maxStep >= minStep else {
            throw WallocError("rate: need 0 < min_step ≤ max_step, got min_step \(minStep), max_step \(maxStep)")
        }
        guard deadzone >= 0, deadzone < 0.5 else {
            throw WallocError("rate.deadzone must be at least 0 and below 0.5, got \(deadzone)")
        }
        guard rdLambda >= 0, rdLambda <= 10 else {
            throw WallocError("rate.rd_lambda must be from 0 to 10, got \(rdLambda)")
        }
        guard Quality.range.contains(defaultQuality) else {
            throw WallocError("rate.default_quality must be from 1 to 100, got \(defaultQuality)")
        }
        var previous = 0
        for d in downscale {
            guard d.upTo > previous, d.upTo <= 100 else {
                throw WallocError("rate.downscale: up_to must rise from 1 to at most 100, got \(d.upTo) after \(previous)")
            }
            guard d.scale >= 0.25, d.scale < 1 else { throw WallocError("rate.downscale: scale must be from 0.25 to below 1, got \(d.scale)") }
            guard (0...99).contains(d.qualityOffset) else {
                throw WallocError("rate.downscale: quality_offset must be from 0 to 99, got \(d.qualityOffset)")
            }
            previous = d.upTo
        }
    }

    /// The downscaling an image is coded with at setting `q`, if any, and the quality it is coded at.
    public func downscaling(quality q: Int) -> (rule: Downscale, quality: Int)? {
        guard let d = downscale.first(where: { q <= $0.upTo }) else { return nil }
        return (d, min(Quality.range.upperBound, q + d.qualityOffset))
    }

    /// The quantiser step at a (possibly fractional, for training) quality in 1...100.
    public func step(quality q: Float) -> Float {
        let t = (min(max(q, 1), 100) - 1) / 99
        return Float(exp(Double(log(maxStep)) + Double(t) * (Double(log(minStep)) - Double(log(maxStep)))))
    }

    /// The factor on the decoder network's output: `Δ(Q)/√(min_step·max_step)` with
    /// `step_scaled_output`, else 1.
    public func outputGain(quality q: Float) -> Float {
        stepScaledOutput ? step(quality: q) / (minStep * maxStep).squareRoot() : 1
    }

    /// The decoder's conditioning value `2(Q − 1)/99 − 1`.
    public func conditioning(quality q: Float) -> Float {
        2 * (min(max(q, 1), 100) - 1) / 99 - 1
    }
}
