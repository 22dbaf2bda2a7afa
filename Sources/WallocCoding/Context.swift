/// Prediction and context selection shared by the encoder and the decoder.
///
/// Each latent channel is a plane of `rows × cols` symbols (images: `h × w`; audio: one row of
/// `L`). Symbols are coded in raster order; a symbol's already coded neighbours are
/// `a, b, c, d` = left, above, above-left, above-right (images) or the 1st…4th previous samples
/// (audio). Each channel predicts its values with one of `Predictor.all` and codes the residual
/// token (see `Tokens`) with the table of one of 16 contexts ("buckets"), chosen by the activity
/// `2(t_a + t_b) + t_c + t_d + t_x`: the neighbours' tokens plus the token of the previous channel
/// at the same position (`t_x`; channels are coded one after the other, so it is known).

/// Neighbourhood layout of a zero-padded working plane: out-of-plane neighbours read as zero.
struct PlaneGeometry {
    let rows: Int
    let cols: Int
    let oneD: Bool
    let left: Int
    let top: Int
    let stride: Int
    /// Offsets of neighbours a, b, c, d.
    let oa: Int, ob: Int, oc: Int, od: Int

    init(rows: Int, cols: Int, oneD: Bool) {
        self.rows = rows
        self.cols = cols
        self.oneD = oneD
        if oneD {
            left = 4; top = 0; stride = cols + 4
            oa = -1; ob = -2; oc = -3; od = -4
        } else {
            left = 1; top = 1; stride = cols + 2
            oa = -1; ob = -stride; oc = -stride - 1; od = -stride + 1
        }
    }

    /// Elements of a working plane.
    var area: Int { (rows + top) * stride }
    /// Plane index of (row, 0).
    @inline(__always) func origin(_ row: Int) -> Int { (row + top) * stride + left }
}

/// Context buckets.
enum Buckets {
    static let count = 16
    /// Largest activity: 7 token weights of at most 63.
    static let maximumActivity = 7 * 63
    /// Smallest activity of each bucket (about a factor 1.4 apart).
    static let thresholds: [Int] = [0, 1, 2, 3, 4, 6, 8, 11, 15, 21, 29, 41, 57, 81, 113, 161]

    /// Bucket of each activity `0...maximumActivity`.
    static let lookup: [UInt8] = (0...maximumActivity).map { s in UInt8(thresholds.lastIndex { $0 <= s }!) }
}

/// A spatial predictor from the neighbours a, b, c (values in the latent range), for one value
/// and for eight at a time.
protocol Predictor {
    static func predict(_ a: Int32, _ b: Int32, _ c: Int32) -> Int32
    static func predict(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>, _ c: SIMD8<Int32>) -> SIMD8<Int32>
}

enum PredictZero: Predictor {
    @inline(__always) static func predict(_ a: Int32, _ b: Int32, _ c: Int32) -> Int32 { 0 }
    @inline(__always) static func predict(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>, _ c: SIMD8<Int32>) -> SIMD8<Int32> { .zero }
}
enum PredictA: Predictor {
    @inline(__always) static func predict(_ a: Int32, _ b: Int32, _ c: Int32) -> Int32 { a }
    @inline(__always) static func predict(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>, _ c: SIMD8<Int32>) -> SIMD8<Int32> { a }
}
enum PredictB: Predictor {
    @inline(__always) static func predict(_ a: Int32, _ b: Int32, _ c: Int32) -> Int32 { b }
    @inline(__always) static func predict(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>, _ c: SIMD8<Int32>) -> SIMD8<Int32> { b }
}
/// LOCO-I's median edge detector.
enum PredictMedian: Predictor {
    @inline(__always) static func predict(_ a: Int32, _ b: Int32, _ c: Int32) -> Int32 {
        let lo = min(a, b), hi = max(a, b)
        return c >= hi ? lo : (c <= lo ? hi : a &+ b &- c)
    }
    @inline(__always) static func predict(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>, _ c: SIMD8<Int32>) -> SIMD8<Int32> {
        // (pointwiseMin / pointwiseMax are not inlined as vector operations.)
        let less = b .< a
        let lo = a.replacing(with: b, where: less), hi = b.replacing(with: a, where: less)
        return (a &+ b &- c).replacing(with: hi, where: c .<= lo).replacing(with: lo, where: c .>= hi)
    }
}
enum PredictAverage: Predictor {
    @inline(__always) static func predict(_ a: Int32, _ b: Int32, _ c: Int32) -> Int32 { (a &+ b) >> 1 }
    @inline(__always) static func predict(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>, _ c: SIMD8<Int32>) -> SIMD8<Int32> { (a &+ b) &>> 1 }
}
enum PredictGradient: Predictor {
    @inline(__always) static func predict(_ a: Int32, _ b: Int32, _ c: Int32) -> Int32 { a &+ b &- c }
    @inline(__always) static func predict(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>, _ c: SIMD8<Int32>) -> SIMD8<Int32> { a &+ b &- c }
}
enum PredictExtrapolate: Predictor {
    @inline(__always) static func predict(_ a: Int32, _ b: Int32, _ c: Int32) -> Int32 { 2 &* a &- b }
    @inline(__always) static func predict(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>, _ c: SIMD8<Int32>) -> SIMD8<Int32> { a &+ a &- b }
}

enum Predictors {
    /// Mode numbers as stored in streams (see `Kernels.tokenize(predictor:_:)`).
    static let names = ["none", "a", "b", "median", "average", "gradient", "extrapolate"]
    static let count = 7
}

/// `v` wrapped into the `bits`-bit signed range.
@inline(__always)
func wrap(_ v: Int32, half: Int32, mask: Int32) -> Int32 { ((v &+ half) & mask) &- half }
