import Foundation
import WallocTensor

/// The `envelope` section of an audio model's `config.json` (a Walloc extension): side
/// information that tells the decoder how loud each part of the spectrum is.
///
/// A uniform quantiser rounds quiet time-frequency regions to zero, and a decoder that must guess
/// their level from the rest guesses an average: too loud for quiet recordings, too quiet for
/// bright ones. The envelope sends the level instead: for each audio channel and each of `groups`
/// frequency groups of wavelet bands, the mean energy over `window` band positions centred on each
/// position, in dB, rounded to `step_db`. These are extra integer latent channels after the
/// encoder's (`latent_dim + channels · groups` in all); they change slowly, so the latent coder's
/// predictors make them cheap, and the quality setting does not change them.
///
/// Groups: band `b` of a channel (the reference's packet order) has frequency rank `g⁻¹(b)` (the
/// inverse Gray code: rank `r` covers `r…r+1` times `fs / 2^(J+1)`). Group 0 holds ranks
/// `0 ..< first_band`; the other `groups − 1` split `first_band ..< 2^J` at geometrically spaced
/// edges.
public struct EnvelopeConfig: Codable, Equatable, Sendable {
    public var groups: Int
    /// Band positions averaged per value (centred; clipped at the signal's ends).
    public var window: Int
    public var stepDB: Float
    public var firstBand: Int

    enum CodingKeys: String, CodingKey { case groups, window, stepDB = "step_db", firstBand = "first_band" }

    public init(groups: Int, window: Int = 32, stepDB: Float = 3, firstBand: Int = 12) {
        self.groups = groups; self.window = window; self.stepDB = stepDB; self.firstBand = firstBand
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        groups = try c.decode(Int.self, forKey: .groups)
        window = try c.decodeIfPresent(Int.self, forKey: .window) ?? 32
        stepDB = try c.decodeIfPresent(Float.self, forKey: .stepDB) ?? 3
        firstBand = try c.decodeIfPresent(Int.self, forKey: .firstBand) ?? 12
    }

    func validate(bands: Int) throws {
        guard groups >= 1, groups <= bands else { throw WallocError("envelope.groups must be from 1 to \(bands), got \(groups)") }
        guard (1...4096).contains(window) else { throw WallocError("envelope.window must be from 1 to 4096, got \(window)") }
        guard stepDB >= 0.1, stepDB <= 20 else { throw WallocError("envelope.step_db must be from 0.1 to 20, got \(stepDB)") }
        guard firstBand >= 1, firstBand < bands else { throw WallocError("envelope.first_band must be from 1 to \(bands - 1), got \(firstBand)") }
        guard groups == 1 || bands - firstBand >= groups - 1 else {
            throw WallocError("envelope: \(groups - 1) groups do not fit in the \(bands - firstBand) bands from first_band")
        }
    }
}

/// Computes a model's envelope channels from its wavelet bands (`EnvelopeConfig`).
public struct SpectralEnvelope: Sendable {
    public let config: EnvelopeConfig
    /// Audio channels and bands per channel.
    public let channels: Int, bands: Int
    /// For each band of a channel (packet order), its group.
    public let groupOfBand: [Int]
    /// Bands per group.
    public let groupSizes: [Int]

    public init(config: EnvelopeConfig, channels: Int, bandsPerChannel: Int) {
        self.config = config
        self.channels = channels
        bands = bandsPerChannel
        // Group edges in frequency rank.
        var edges = [0]
        if config.groups > 1 {
            let lo = Double(config.firstBand), hi = Double(bandsPerChannel)
            for i in 0..<config.groups {
                let e = Int((lo * pow(hi / lo, Double(i) / Double(config.groups - 1))).rounded())
                edges.append(max(e, edges.last! + 1))
            }
            edges[edges.count - 1] = bandsPerChannel
        } else {
            edges.append(bandsPerChannel)
        }
        var groupOfRank = [Int](repeating: 0, count: bandsPerChannel)
        for g in 0..<(edges.count - 1) { for r in edges[g]..<min(edges[g + 1], bandsPerChannel) { groupOfRank[r] = g } }
        groupOfBand = (0..<bandsPerChannel).map { groupOfRank[SpectralEnvelope.inverseGray($0)] }
        var sizes = [Int](repeating: 0, count: config.groups)
        for g in groupOfBand { sizes[g] += 1 }
        groupSizes = sizes
    }

    /// Envelope channels per signal: `channels · groups`.
    public var count: Int { channels * config.groups }

    /// The frequency rank of packet band `b` (inverse Gray code).
    public static func inverseGray(_ b: Int) -> Int {
        var r = b, shift = b >> 1
        while shift > 0 { r ^= shift; shift >>= 1 }
        return r
    }

    /// Integer envelope values `[N, count, m + 2]` of bands `[N, channels·bands, m]`: position
    /// `i` describes band position `i − 1`, the first and last repeating their neighbours (as the
    /// 1D encoder's latents, two steps longer than the bands).
    public func values(_ x: Tensor) -> Tensor {
        let n = x.shape[0], m = x.shape[2], g = config.groups, e = count
        let half = config.window / 2
        var out = Tensor(uninitialized: [n, e, m + 2])
        let step = config.stepDB
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                parallelFor(n * channels) { job in
                    let s = job / channels, c = job % channels
                    // Mean square per group and position, then prefix sums for the window.
                    var energy = [Double](repeating: 0, count: g * m)
                    for b in 0..<bands {
                        let row = xb.baseAddress! + (s * channels * bands + c * bands + b) * m
                        let grp = groupOfBand[b], w = 1 / Double(groupSizes[grp])
                        for t in 0..<m { energy[grp * m + t] += Double(row[t]) * Double(row[t]) * w }
                    }
                    for grp in 0..<g {
                        var prefix = [Double](repeating: 0, count: m + 1)
                        for t in 0..<m { prefix[t + 1] = prefix[t] + energy[grp * m + t] }
                        let dst = ob.baseAddress! + (s * e + c * g + grp) * (m + 2)
                        for t in 0..<m {
                            let a = max(0, t - half), b = min(m, t - half + config.window)
                            let mean = (prefix[b] - prefix[a]) / Double(max(1, b - a))
                            dst[t + 1] = (Float(10 * log10(mean + 1e-10)) / step).rounded(.toNearestOrEven)
                        }
                        dst[0] = dst[1]
                        dst[m + 1] = dst[m]
                    }
                }
            }
        }
        return out
    }

    /// The decoder network's view of integer envelope values: `(dB + 60) / 20`.
    public func normalized(_ v: Tensor) -> Tensor {
        var y = v
        let step = config.stepDB
        y.withUnsafeMutableBufferPointer { b in
            parallelChunks(b.count, minChunk: 1 << 14) { r in for i in r { b[i] = (b[i] * step + 60) / 20 } }
        }
        return y
    }
}
