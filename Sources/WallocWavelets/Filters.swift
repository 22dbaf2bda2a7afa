/// The CDF 9/7 biorthogonal wavelet (`bior4.4`) filter bank, float32 values exactly as the
/// reference (`pytorch_wavelets`, from PyWavelets) registers them as buffers.
///
/// Indexing convention, for a periodic signal `x` of even length `N` and `m` in `0..<N/2`:
///
///     lo[m] = Σ_j h0[j] · x[(2m + j − 4) mod N]        hi[m] likewise with h1
///     y[(2m + j − 4) mod N] += g0[j] · lo[m] + g1[j] · hi[m]
///
/// which is the reference's periodised analysis (`afb1d`) and synthesis (`sfb1d`) wherever the
/// reference is itself exact (signal length at least 10).
public enum Bior44 {
    /// Filter length.
    public static let length = 10
    /// Offset of tap 0 relative to `2m`.
    public static let offset = 4

    /// Analysis lowpass as applied by correlation (reversed `dec_lo`).
    public static let h0: [Float] = [
        0.03782845661044121, -0.02384946495294571, -0.11062440276145935, 0.3774028420448303,
        0.8526986837387085, 0.3774028420448303, -0.11062440276145935, -0.02384946495294571,
        0.03782845661044121, 0.0,
    ]
    /// Analysis highpass as applied by correlation (reversed `dec_hi`).
    public static let h1: [Float] = [
        0.0, -0.0, -0.0645388811826706, 0.040689416229724884, 0.418092280626297,
        -0.788485586643219, 0.418092280626297, 0.040689416229724884, -0.0645388811826706, -0.0,
    ]
    /// Synthesis lowpass (`rec_lo`).
    public static let g0: [Float] = [
        0.0, -0.0645388811826706, -0.040689416229724884, 0.418092280626297, 0.788485586643219,
        0.418092280626297, -0.040689416229724884, -0.0645388811826706, 0.0, 0.0,
    ]
    /// Synthesis highpass (`rec_hi`).
    public static let g1: [Float] = [
        0.0, -0.03782845661044121, -0.02384946495294571, 0.11062440276145935, 0.3774028420448303,
        -0.8526986837387085, 0.3774028420448303, 0.11062440276145935, -0.02384946495294571,
        -0.03782845661044121,
    ]
}
