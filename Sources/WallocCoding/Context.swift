/// Spatial prediction and context selection shared by the encoder and the decoder.
///
/// Symbols are latents shifted to `0..<alphabet`. Each symbol is predicted from already coded
/// neighbours (images: LOCO-I's median predictor over left `a`, top `b`, top-left `c`; audio:
/// the previous value) and the residual `(u − prediction) mod alphabet` is coded with the table of
/// one of up to four contexts, chosen by the local activity `|a − c| + |b − c|` against per-channel
/// thresholds.
struct Neighbourhood {
    let width: Int
    let height: Int
    let half: Int32

    /// Prediction and activity for position `i` of a row-major `height x width` plane.
    @inline(__always)
    func predict(_ u: UnsafePointer<UInt16>, _ i: Int, x: Int, y: Int) -> (pred: Int32, activity: Int32) {
        let a: Int32, b: Int32, c: Int32
        if height == 1 {
            a = x > 0 ? Int32(u[i - 1]) : half
            c = x > 1 ? Int32(u[i - 2]) : a
            b = a
        } else if y == 0 {
            a = x > 0 ? Int32(u[i - 1]) : half
            b = a; c = a
        } else if x == 0 {
            b = Int32(u[i - width]); a = b; c = b
        } else {
            a = Int32(u[i - 1]); b = Int32(u[i - width]); c = Int32(u[i - width - 1])
        }
        let lo = min(a, b), hi = max(a, b)
        let pred = c >= hi ? lo : (c <= lo ? hi : a + b - c)
        return (pred, abs(a - c) + abs(b - c))
    }
}

/// Context index for an activity: the number of thresholds it exceeds.
@inline(__always)
func contextIndex(_ activity: Int32, _ t: (Int32, Int32, Int32)) -> Int {
    (activity > t.0 ? 1 : 0) + (activity > t.1 ? 1 : 0) + (activity > t.2 ? 1 : 0)
}
