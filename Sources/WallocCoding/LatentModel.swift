import Foundation
import WallocTensor

/// Default entropy model shipped with a codec (`entropy.json`): per latent channel, the predictor
/// and one token table per context bucket, fitted on training latents. Streams use a default
/// table wherever it codes a context in fewer bits than the alternatives (a parametric table or
/// one sent in the stream), which is what keeps small inputs small.
public struct LatentModel: Sendable, Codable, Equatable {
    /// The context model the tables belong to (this coder's is 2).
    public let version: Int
    public let bits: Int
    /// Per channel: predictor mode (see docs/entropy-coding.md).
    public let predictors: [Int]
    /// Per channel: one table per context bucket (16), each covering every token.
    public let tables: [[FrequencyTable]]

    public static let currentVersion = 2

    private let prepared = PreparedModel()

    private enum CodingKeys: String, CodingKey { case version, bits, predictors, tables, frequencies }

    public init(bits: Int, predictors: [Int], tables: [[FrequencyTable]]) throws {
        self.version = LatentModel.currentVersion
        self.bits = bits
        self.predictors = predictors
        self.tables = tables
        try validate()
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard let version = try c.decodeIfPresent(Int.self, forKey: .version) else {
            throw WallocError("the entropy model was made for an older latent coder; refit it (LatentModel.fit) for this version")
        }
        guard version == LatentModel.currentVersion else {
            throw WallocError("entropy model version \(version) is not supported (this coder reads version \(LatentModel.currentVersion))")
        }
        self.version = version
        bits = try c.decode(Int.self, forKey: .bits)
        predictors = try c.decode([Int].self, forKey: .predictors)
        if let packed = try c.decodeIfPresent(String.self, forKey: .frequencies) {
            tables = try LatentModel.unpack(packed, bits: bits, channels: predictors.count)
        } else {
            tables = try c.decode([[FrequencyTable]].self, forKey: .tables)
        }
        try validate()
    }

    /// Writes the compact form: every table is a 12-bit table over all tokens, so the
    /// frequencies go as one base64 string of little-endian UInt16, channel by channel, bucket by
    /// bucket (`frequencies`). Foundation's JSON parser took 30 ms for the RGB model's 1,024
    /// tables as number arrays (`tables`, which older files hold and which is still read) and 65
    /// ms for the stereo model's, on every `walloc encode` and `decode`.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(bits, forKey: .bits)
        try c.encode(predictors, forKey: .predictors)
        var bytes = [UInt8]()
        bytes.reserveCapacity(2 * tables.count * Buckets.count * Tokens.count(bits: bits))
        for channel in tables {
            for table in channel { for f in table.frequencies { bytes.append(UInt8(f & 0xFF)); bytes.append(UInt8(f >> 8)) } }
        }
        try c.encode(Data(bytes).base64EncodedString(), forKey: .frequencies)
    }

    /// The tables of the compact form (see `encode(to:)`).
    private static func unpack(_ packed: String, bits: Int, channels: Int) throws -> [[FrequencyTable]] {
        guard (1...16).contains(bits) else { throw WallocError("entropy model: latent_bits must be 1...16, got \(bits)") }
        let count = Tokens.count(bits: bits)
        guard let data = Data(base64Encoded: packed), channels > 0,
              data.count == 2 * channels * Buckets.count * count else {
            throw WallocError("entropy model: the packed frequencies are not \(channels) x \(Buckets.count) tables of \(count) 16-bit values in base64")
        }
        let values = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [UInt16] in
            (0..<(raw.count / 2)).map { (i: Int) -> UInt16 in
                let lo = UInt16(raw[2 * i]), hi = UInt16(raw[2 * i + 1])
                return lo | (hi << 8)
            }
        }
        return try (0..<channels).map { ch in
            try (0..<Buckets.count).map { b in
                let start = (ch * Buckets.count + b) * count
                return try FrequencyTable(precision: FrequencyTable.codingPrecision, first: 0, frequencies: Array(values[start..<(start + count)]))
            }
        }
    }

    public static func == (x: LatentModel, y: LatentModel) -> Bool {
        x.version == y.version && x.bits == y.bits && x.predictors == y.predictors && x.tables == y.tables
    }

    private func validate() throws {
        guard (1...16).contains(bits) else { throw WallocError("entropy model: latent_bits must be 1...16, got \(bits)") }
        guard !tables.isEmpty, tables.count == predictors.count else {
            throw WallocError("entropy model: \(predictors.count) predictors for \(tables.count) channels")
        }
        let count = Tokens.count(bits: bits)
        for (ch, t) in tables.enumerated() {
            guard (0..<Predictors.count).contains(predictors[ch]) else { throw WallocError("entropy model: unknown predictor \(predictors[ch]) (channel \(ch))") }
            guard t.count == Buckets.count else { throw WallocError("entropy model: channel \(ch) has \(t.count) tables, expected \(Buckets.count)") }
            for table in t {
                guard table.precision == FrequencyTable.codingPrecision, table.covers(alphabet: count), table.frequencies.count == count else {
                    throw WallocError("entropy model: channel \(ch) has a table that is not a 12-bit table over all \(count) tokens")
                }
            }
        }
    }

    public var channels: Int { tables.count }

    /// Coding structures, built once per model value.
    func coding() -> PreparedModel.Coding { prepared.coding(self) }

    /// One row's decoding table (`channel · 16 + bucket`), made on first use (see `PreparedModel`).
    func decodeTable(row: Int) -> UnsafePointer<UInt8> { prepared.decodeTable(self, row: row) }

    // MARK: fitting

    /// Fits default tables on latent tensors `[C, H, W]` or `[C, L]` (each a signal's integer
    /// latents, all with the same channel count).
    public static func fit(latents: [Tensor], bits: Int) throws -> LatentModel {
        guard let first = latents.first else { throw WallocError("no latents to fit an entropy model on") }
        _ = try LatentCoder.alphabet(bits: bits)
        let channels = first.shape[0]
        let count = Tokens.count(bits: bits)
        var inputs = [(layout: Layout, values: [Int32])]()
        for y in latents {
            let layout = try LatentCoder.layout(y.shape)
            guard layout.channels == channels, layout.oneD == (first.rank == 2) else {
                throw WallocError("latent tensors for fitting must share their channel count and rank, got \(first.shape) and \(y.shape)")
            }
            inputs.append((layout, try LatentCoder.integers(y, bits: bits).values))
        }
        // Predictor per channel: the smallest sum of absolute residuals over all inputs.
        var l1 = [[Int64]](repeating: [Int64](repeating: 0, count: Predictors.count), count: channels)
        for input in inputs {
            for (ch, s) in Analysis.sums(values: input.values, layout: input.layout, bits: bits).enumerated() {
                for m in 0..<Predictors.count { l1[ch][m] += s[m] }
            }
        }
        let predictors = l1.map { s in s.indices.min { s[$0] < s[$1] }! }
        // Token histograms per channel and bucket, as the encoder counts them (no cross terms).
        var hist = [UInt32](repeating: 0, count: channels * LatentCoder.histogramSize)
        for input in inputs {
            var plans = [ChannelPlan](repeating: ChannelPlan(), count: channels)
            for ch in 0..<channels { plans[ch].predictor = predictors[ch] }
            let h = input.values.withUnsafeBufferPointer { v in
                LatentCoder.histograms(values: v.baseAddress!, layout: input.layout, plans: plans, bits: bits)
            }
            for i in hist.indices { hist[i] &+= h[i] }
        }
        var tables = [[FrequencyTable]]()
        for ch in 0..<channels {
            var row = [FrequencyTable]()
            let used = (0..<Buckets.count).filter { b in (0..<count).contains { hist[ch * LatentCoder.histogramSize + b * 64 + $0] > 0 } }
            for b in 0..<Buckets.count {
                // Empty buckets borrow the nearest used bucket's statistics.
                let src = used.min { abs($0 - b) < abs($1 - b) } ?? b
                let h = (0..<count).map { UInt64(hist[ch * LatentCoder.histogramSize + src * 64 + $0]) }
                row.append(try FrequencyTable(histogram: h, coverAll: true))
            }
            tables.append(row)
        }
        return try LatentModel(bits: bits, predictors: predictors, tables: tables)
    }
}

/// A model's tables in coding form, built on first use and shared by copies of the model.
final class PreparedModel: @unchecked Sendable {
    struct Coding: @unchecked Sendable {
        let count: Int
        /// Encoder symbols, `channel · 16 + bucket` rows of 64.
        let encode: UnsafeMutablePointer<EncodeSymbol>
        /// Code lengths, `channel · 16 + bucket` rows of `count`.
        let costs: [Float]
        /// Decoding tables, `channel · 16 + bucket` blocks of `CodingTables.decodeSize` bytes.
        let decode: UnsafeMutablePointer<UInt8>
    }

    private let state = Locked<Coding?>(nil)
    /// Decoding tables made one row at a time (`decodeTable`), for decoders that need no
    /// encoding tables: a file uses the rows its channel plans name, not all of them.
    private let decodeRows = Locked<[Int: UnsafeMutablePointer<UInt8>]>([:])

    /// The decoding table of `row` (`channel · 16 + bucket`): from the full tables when they are
    /// made, else made for this row alone and kept.
    func decodeTable(_ model: LatentModel, row: Int) -> UnsafePointer<UInt8> {
        if let c = state.withLock({ $0 }) { return UnsafePointer(c.decode + row * CodingTables.decodeSize) }
        return decodeRows.withLock { rows in
            if let t = rows[row] { return UnsafePointer(t) }
            let t = UnsafeMutablePointer<UInt8>.allocate(capacity: CodingTables.decodeSize)
            let f = model.tables[row / Buckets.count][row % Buckets.count].dense(count: Tokens.count(bits: model.bits))
            f.withUnsafeBufferPointer { CodingTables.buildDecode($0.baseAddress!, count: f.count, into: t) }
            rows[row] = t
            return UnsafePointer(t)
        }
    }

    func coding(_ model: LatentModel) -> Coding {
        state.withLock { c in
            if let c { return c }
            let count = Tokens.count(bits: model.bits)
            let rows = model.channels * Buckets.count
            let encode = UnsafeMutablePointer<EncodeSymbol>.allocate(capacity: rows * Tokens.maximumCount)
            let decode = UnsafeMutablePointer<UInt8>.allocate(capacity: rows * CodingTables.decodeSize)
            var costs = [Float]()
            for ch in 0..<model.channels {
                for b in 0..<Buckets.count {
                    let row = ch * Buckets.count + b
                    let f = model.tables[ch][b].dense(count: count)
                    f.withUnsafeBufferPointer { fp in
                        CodingTables.buildEncode(fp.baseAddress!, count: count, into: encode + row * Tokens.maximumCount)
                        CodingTables.buildDecode(fp.baseAddress!, count: count, into: decode + row * CodingTables.decodeSize)
                    }
                    costs += CodingTables.costs(f)
                }
            }
            let made = Coding(count: count, encode: encode, costs: costs, decode: decode)
            c = made
            return made
        }
    }

    deinit {
        state.withLock { c in
            c?.encode.deallocate()
            c?.decode.deallocate()
        }
        decodeRows.withLock { rows in for t in rows.values { t.deallocate() } }
    }
}
