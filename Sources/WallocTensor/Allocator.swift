#if canImport(Glibc)
import Glibc
#endif

/// Process-wide allocator tuning for large tensor workloads.
public enum Allocator {
    /// Asks glibc's malloc to keep freed memory for reuse instead of returning every large block to
    /// the kernel (blocks over 128 KB are `mmap`ed by default, so each new tensor costs page faults
    /// and zeroing). Measured on `walloc bench` (768x512 RGB): WPT 13 ms -> 5.4 ms. Process-global,
    /// so the library never calls it by itself; the CLI does. No effect outside glibc.
    public static func retainFreedMemory() {
        #if canImport(Glibc)
        // `mallopt` lives in <malloc.h>, which the Glibc module does not export; look it up instead.
        typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: MallOpt.self)
        let trimThreshold: Int32 = -1, topPad: Int32 = -2, mmapThreshold: Int32 = -3  // M_* in malloc.h
        _ = mallopt(mmapThreshold, 256 << 20)
        _ = mallopt(trimThreshold, 512 << 20)
        _ = mallopt(topPad, 64 << 20)
        #endif
    }
}
