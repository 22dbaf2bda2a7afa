import Foundation
import Testing
import Walloc

/// The oneDNN kernels behind decoder networks (`Kernels`) against the BLAS kernels, which the
/// parity suite holds to the reference: float32 within float rounding, bfloat16 within its
/// precision, the same bits at every thread count.
@Suite("Kernels: oneDNN against BLAS, fp32 and bf16")
struct KernelTests {
    static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        let count = shape.reduce(1, *)
        return Tensor(shape: shape, scalars: (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(state >> 40) / Float(1 << 24) - 0.5
        })
    }

    /// Largest difference relative to the largest magnitude of `reference`.
    static func relativeError(_ x: Tensor, _ reference: Tensor) -> Float {
        x.maxAbsDifference(reference) / max(1e-12, reference.scalars.map(abs).max() ?? 0)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let n, ci, co, h, w, k, padding, dilation: Int
        let bias: Bool
        var testDescription: String { "n\(n) \(ci)->\(co) \(h)x\(w) k\(k) p\(padding) d\(dilation)\(bias ? "" : " no bias")" }

        /// The case's layer (weights from `seed`) and a random input (from `inputSeed`).
        func layer(seed: UInt64, inputSeed: UInt64) -> (Conv2d, Tensor) {
            var initializer = ParameterInitializer(seed: seed)
            let conv = Conv2d(inChannels: ci, outChannels: co, kernelSize: k, padding: padding, dilation: dilation,
                              bias: bias, initializer: &initializer)
            return (conv, KernelTests.random([n, ci, h, w], seed: inputSeed))
        }
    }

    static let cases: [Case] = [
        Case(n: 1, ci: 16, co: 24, h: 12, w: 20, k: 3, padding: 1, dilation: 1, bias: true),
        Case(n: 2, ci: 5, co: 7, h: 13, w: 9, k: 3, padding: 2, dilation: 2, bias: false),
        Case(n: 1, ci: 32, co: 8, h: 70, w: 11, k: 3, padding: 1, dilation: 1, bias: true),   // several row pieces
        Case(n: 1, ci: 8, co: 12, h: 7, w: 6, k: 1, padding: 0, dilation: 1, bias: true),
        Case(n: 1, ci: 6, co: 6, h: 17, w: 15, k: 5, padding: 1, dilation: 1, bias: true),    // output smaller than input
        Case(n: 1, ci: 3, co: 4, h: 2, w: 3, k: 3, padding: 1, dilation: 1, bias: true),
        Case(n: 2, ci: 13, co: 17, h: 10, w: 19, k: 3, padding: 1, dilation: 1, bias: true),  // 8 x 8 transposes and their remainders
    ]

    @Test("Conv2d: oneDNN fp32 equals BLAS, bf16 within bfloat16 precision, same bits on one thread as on all", arguments: cases)
    func convolution(_ c: Case) throws {
        let (conv, x) = c.layer(seed: 7, inputSeed: 3)
        let blas = conv(x)
        let fp32 = Kernels.decoding(precision: .fp32) { conv(x) }
        let bf16 = Kernels.decoding(precision: .bf16) { conv(x) }
        #expect(fp32.shape == blas.shape && bf16.shape == blas.shape)
        let e32 = Self.relativeError(fp32, blas), e16 = Self.relativeError(bf16, blas)
        print("\(c.testDescription): fp32 \(e32), bf16 \(e16) (\(Kernels.summary))")
        #expect(e32 < 1e-5)
        // bfloat16 keeps 8 significant bits: inputs and weights each within 2^-9 relative.
        // Without bf16 dot products, bf16 falls back to Winograd float32 for 3x3 convolutions.
        let hasBF16 = Kernels.backend == .onednn && Kernels.decoding(precision: .bf16, { Kernels.effectivePrecision }) == .bf16
        #expect(e16 < (hasBF16 ? 2e-2 : 2e-5))
        let serial = Threading.serially { Kernels.decoding(precision: .bf16) { conv(x) } }
        let same = serial.scalars == bf16.scalars
        #expect(same)
    }

    static let winogradCases: [Case] = [
        Case(n: 1, ci: 16, co: 24, h: 12, w: 20, k: 3, padding: 1, dilation: 1, bias: true),
        Case(n: 2, ci: 13, co: 17, h: 10, w: 19, k: 3, padding: 1, dilation: 1, bias: false),  // partial blocks, two samples
        Case(n: 1, ci: 3, co: 4, h: 2, w: 3, k: 3, padding: 1, dilation: 1, bias: true),       // smaller than one block
        Case(n: 1, ci: 5, co: 3, h: 1, w: 1, k: 3, padding: 1, dilation: 1, bias: true),
        Case(n: 1, ci: 128, co: 128, h: 32, w: 70, k: 3, padding: 1, dilation: 1, bias: true), // a decoder layer, 144 block columns
        Case(n: 1, ci: 4, co: 5, h: 40, w: 420, k: 3, padding: 1, dilation: 1, bias: true),    // 1120 block columns: two product pieces
        Case(n: 1, ci: 6, co: 6, h: 17, w: 15, k: 5, padding: 1, dilation: 1, bias: true),    // not 3x3: the direct path
        Case(n: 2, ci: 5, co: 7, h: 13, w: 9, k: 3, padding: 2, dilation: 2, bias: false),     // dilated: the direct path
    ]

    @Test("Conv2d at .winograd: F(4x4, 3x3) within float32 rounding of the direct convolution, the same bits on one thread",
          arguments: winogradCases)
    func winograd(_ c: Case) throws {
        let (conv, x) = c.layer(seed: 17, inputSeed: 4)
        let direct = conv(x)
        let fast = Kernels.decoding(precision: .winograd) { conv(x) }
        #expect(fast.shape == direct.shape)
        let e = Self.relativeError(fast, direct)
        print("\(c.testDescription): winograd \(e)")
        #expect(e < 2e-5)
        let applies = Winograd.applies(kernel: conv.kernel, padding: conv.padding, dilation: conv.dilation)
        #expect(applies == (c.k == 3 && c.padding == 1 && c.dilation == 1))
        if applies {
            // Rounding differs from the direct product: proof that the Winograd path ran.
            #expect(e > 0)
            // The transform matches the formula on one output: Σ w·x over the 3x3 neighbourhood.
            let y = c.h / 2, xx = c.w / 2, o = c.co - 1
            var sum = Double(conv.bias?.scalars[o] ?? 0)
            for i in 0..<c.ci {
                for ky in 0..<3 {
                    for kx in 0..<3 {
                        let yy = y + ky - 1, xc = xx + kx - 1
                        guard yy >= 0 && yy < c.h && xc >= 0 && xc < c.w else { continue }
                        sum += Double(conv.weight.scalars[((o * c.ci + i) * 3 + ky) * 3 + kx]) * Double(x.scalars[(i * c.h + yy) * c.w + xc])
                    }
                }
            }
            let got = fast.scalars[(o * c.h + y) * c.w + xx]
            #expect(abs(Double(got) - sum) < 1e-4 * max(1, abs(sum)))
        }
        let serial = Threading.serially { Kernels.decoding(precision: .winograd) { conv(x) } }
        let same = serial.scalars == fast.scalars
        #expect(same)
    }

    static let int8Cases: [Case] = [
        Case(n: 1, ci: 16, co: 16, h: 12, w: 20, k: 3, padding: 1, dilation: 1, bias: true),   // one piece
        Case(n: 2, ci: 13, co: 13, h: 10, w: 19, k: 3, padding: 1, dilation: 1, bias: false),  // two samples, block remainders
        Case(n: 1, ci: 32, co: 32, h: 70, w: 11, k: 3, padding: 1, dilation: 1, bias: true),   // several row pieces
        Case(n: 1, ci: 16, co: 24, h: 12, w: 20, k: 3, padding: 1, dilation: 1, bias: true),   // not width-to-width: bf16
        Case(n: 1, ci: 8, co: 8, h: 7, w: 6, k: 1, padding: 0, dilation: 1, bias: true),       // not 3x3: bf16
    ]

    /// The int8 path's arithmetic in float: weights rounded per output channel, the input (one
    /// piece) at one scale (both as `x · (1 / s)` rounded to nearest even), an exact float32
    /// convolution of those.
    static func int8Reference(_ conv: Conv2d, _ x: Tensor) -> Tensor {
        var q = conv
        let per = conv.weight.count / conv.outChannels
        var w = conv.weight.scalars
        for o in 0..<conv.outChannels {
            let m = w[(o * per)..<((o + 1) * per)].map(abs).max() ?? 0
            let s = m > 0 ? m / 127 : 1
            for i in (o * per)..<((o + 1) * per) { w[i] = (w[i] * (1 / s)).rounded(.toNearestOrEven) * s }
        }
        q.weight = Tensor(shape: conv.weight.shape, scalars: w)
        q.parametersDidChange()
        let m = x.scalars.map(abs).max() ?? 0
        let s = m > 0 ? m / 127 : 1
        return q(Tensor(shape: x.shape, scalars: x.scalars.map { ($0 * (1 / s)).rounded(.toNearestOrEven) * s }))
    }

    @Test("Conv2d at .int8: width-to-width 3x3 convolutions from int8 products (the same sums as float32 on rounded operands), other layers bf16",
          arguments: int8Cases)
    func int8(_ c: Case) throws {
        let (conv, x) = c.layer(seed: 23, inputSeed: 5)
        let exact = conv(x)
        let int8 = Kernels.decoding(precision: .int8) { conv(x) }
        let bf16 = Kernels.decoding(precision: .bf16) { conv(x) }
        #expect(int8.shape == exact.shape)
        let runsInt8 = Kernels.decoding(precision: .int8) { Kernels.int8Convolutions }
        let eligible = c.k == 3 && c.ci == c.co && c.dilation == 1
        let error = Self.relativeError(int8, exact)
        print("\(c.testDescription): int8 \(error) (int8 convolutions: \(runsInt8))")
        if runsInt8 && eligible {
            // 8-bit operands: within a few percent of the largest output.
            #expect(error > 0 && error < 3e-2)
            if c.h <= 16 {
                // One piece: the same as float32 on the rounded operands, up to float rounding.
                #expect(Self.relativeError(int8, Self.int8Reference(conv, x)) < 1e-5)
            }
        } else {
            // Elsewhere .int8 is .bf16 (or its fallback).
            let same = int8.scalars == bf16.scalars
            #expect(same)
        }
        // Inside `Threading.serially` (decoder tiles) a convolution is one piece: with one input
        // scale, the float32 result on the rounded operands; where there was one piece anyway, the
        // same bits as above. Outside, the pieces are cut by shape, so one thread gives the same.
        let serial = Threading.serially { Kernels.decoding(precision: .int8) { conv(x) } }
        if runsInt8 && eligible {
            #expect(Self.relativeError(serial, Self.int8Reference(conv, x)) < 1e-5)
        }
        if c.h <= 16 || !(runsInt8 && eligible) {
            let sameSerial = serial.scalars == int8.scalars
            #expect(sameSerial)
        }
        let before = Threading.count
        defer { Threading.setCount(before) }
        Threading.setCount(1)
        let oneThread = Kernels.decoding(precision: .int8) { conv(x) }
        let sameOnOneThread = oneThread.scalars == int8.scalars
        #expect(sameOnOneThread)
    }

    /// int8 weights carry per-channel compensation sums after the weights; their buffer is zeroed
    /// before the reorder fills it. (Without that, long `walloc eval` runs, where the CLI keeps
    /// freed memory for reuse, now and then decoded a photo to noise; this check guards the
    /// arithmetic on reused memory, though it did not catch the fault alone.)
    @Test("Conv2d at .int8: weights packed into reused, non-zero memory still give the exact int8 result")
    func int8ReusedMemory() throws {
        guard Kernels.decoding(precision: .int8, { Kernels.int8Convolutions }) else { return }
        Allocator.retainFreedMemory()
        for _ in 0..<8 {
            // Blocks about the size of a 128-channel 3x3 layer's int8 weights, filled and freed.
            for size in [147_968, 148_032, 160_000, 200_000] {
                let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
                p.initializeMemory(as: UInt8.self, repeating: 0xA5, count: size)
                p.deallocate()
            }
            var initializer = ParameterInitializer(seed: 29)
            let conv = Conv2d(inChannels: 128, outChannels: 128, kernelSize: 3, padding: 1, initializer: &initializer)
            let x = Self.random([1, 128, 12, 20], seed: 6)
            let int8 = Kernels.decoding(precision: .int8) { conv(x) }
            #expect(Self.relativeError(int8, Self.int8Reference(conv, x)) < 1e-5)
        }
    }

    /// Pieces of one primitive run on several threads at once: each execution must have its own
    /// scratchpad (a shared one gave different results run to run).
    @Test("Concurrent pieces: a 128-channel 3x3 convolution and an attention layer repeated, every result equal")
    func concurrency() throws {
        var initializer = ParameterInitializer(seed: 13)
        let conv = Conv2d(inChannels: 128, outChannels: 128, kernelSize: 3, padding: 1, initializer: &initializer)
        let layer = SpatialSelfAttention(channels: 128, groups: 32, initializer: &initializer)
        let x = Self.random([1, 128, 64, 96], seed: 9)
        let blas = conv(x)
        for precision in [Kernels.Precision.fp32, .bf16, .int8] {
            let first = Kernels.decoding(precision: precision) { conv(x) }
            let attended = Kernels.decoding(precision: precision) { layer(first) }
            #expect(Self.relativeError(first, blas) < (precision == .fp32 ? 1e-5 : (precision == .bf16 ? 2e-2 : 3e-2)))
            for _ in 0..<4 {
                let again = Kernels.decoding(precision: precision) { conv(x) }
                // (Booleans: Swift Testing would diff arrays of 786,432 floats element by element.)
                let sameConvolution = again.scalars == first.scalars
                let sameAttention = Kernels.decoding(precision: precision) { layer(first) }.scalars == attended.scalars
                #expect(sameConvolution, "\(precision) convolution differs between runs")
                #expect(sameAttention, "\(precision) attention differs between runs")
            }
        }
    }

    @Test("Attention: bf16 products within bfloat16 precision of float32, fp32 equal to BLAS")
    func attention() throws {
        var initializer = ParameterInitializer(seed: 11)
        let layer = SpatialSelfAttention(channels: 32, groups: 8, initializer: &initializer)
        let x = Self.random([1, 32, 20, 24], seed: 5)
        let blas = layer(x)
        let fp32 = Kernels.decoding(precision: .fp32) { layer(x) }
        let bf16 = Kernels.decoding(precision: .bf16) { layer(x) }
        let same = fp32.scalars == blas.scalars
        #expect(same)
        let e16 = Self.relativeError(bf16, blas)
        print("attention bf16 relative error \(e16)")
        #expect(e16 < 2e-2)
        #expect(e16 > 0 || Kernels.decoding(precision: .bf16, { Kernels.effectivePrecision }) == .fp32)
    }

    @Test("Attention at .winograd above 2048 positions: keys in blocks with a running softmax, within float32 rounding")
    func keyBlockedAttention() throws {
        var initializer = ParameterInitializer(seed: 19)
        let layer = SpatialSelfAttention(channels: 32, groups: 8, initializer: &initializer)
        // 4900 positions: two full key blocks and a partial one; ten query blocks, the last partial.
        let x = Self.random([1, 32, 70, 70], seed: 6)
        let blas = layer(x)
        let fast = Kernels.decoding(precision: .winograd) { layer(x) }
        let e = Self.relativeError(fast, blas)
        print("key-blocked attention relative error \(e)")
        #expect(e < 1e-5)
        #expect(e > 0)  // a different summation order: proof that the key-blocked path ran
        let serial = Threading.serially { Kernels.decoding(precision: .winograd) { layer(x) } }
        let same = serial.scalars == fast.scalars
        #expect(same)
    }

    @Test("Settings: the backend and precision names, and what the command line accepts")
    func settings() throws {
        #expect(Kernels.precision == .fp32)
        #expect(Kernels.summary.hasPrefix(Kernels.backend.rawValue))
        let r = try CLI.run(["decode", "x.wlc", "-o", "y.png", "--precision", "half"])
        #expect(r.status != 0 && r.stderr.contains("--precision must be one of: auto, fp32, bf16"))
        let k = try CLI.run(["decode", "x.wlc", "-o", "y.png", "--kernels", "mkl"])
        #expect(k.status != 0 && k.stderr.contains("--kernels must be one of: onednn, blas"))
    }

    /// bf16 training passes spread their column tiles over the workers (`forEachTile16`, weight
    /// gradient groups): the result must not depend on the thread count.
    @Test("bf16 training passes of a convolution: the same bits on one thread as on all")
    func trainingThreads() {
        var initializer = ParameterInitializer(seed: 9)
        let conv = Conv2d(inChannels: 16, outChannels: 24, kernelSize: 3, padding: 1, initializer: &initializer)
        let x = Self.random([4, 16, 20, 20], seed: 21), g = Self.random([4, 24, 20, 20], seed: 22)
        func pass() -> [Float] {
            Kernels.trainingDecoder(precision: .bf16) {
                let (y, tape) = conv.forward(training: x)
                var grads = Gradients()
                let dx = conv.backward(tape, g, prefix: "c", into: &grads)
                return y.scalars + dx.scalars + grads["c.weight"]!.scalars + grads["c.bias"]!.scalars
            }
        }
        let parallel = pass(), serial = Threading.serially { pass() }
        let same = parallel == serial
        #expect(same)
    }

    /// Training's products (`Kernels.gemm`): the BLAS result in fp32; in bf16, within bfloat16
    /// precision, for plain and transposed B, strided rows and accumulation into C.
    @Test("Training GEMM: bf16 within bfloat16 precision of BLAS (plain, transposed B, strided, accumulating)",
          arguments: [false, true])
    func trainingGEMM(transB: Bool) {
        let m = 37, n = 70, k = 150, lda = k + 3, ldb = (transB ? k : n) + 5, ldc = n + 2
        let a = Self.random([m * lda], seed: 11).scalars, b = Self.random([(transB ? n : k) * ldb], seed: 12).scalars
        let c0 = Self.random([m * ldc], seed: 13).scalars
        func run(bf16: Bool, beta: Float) -> Tensor {
            var c = c0
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        Kernels.gemm(bf16: bf16, transB: transB, m: m, n: n, k: k, a: ap.baseAddress!, lda: lda,
                                     b: bp.baseAddress!, ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: ldc)
                    }
                }
            }
            return Tensor(shape: [m * ldc], scalars: c)
        }
        let bf16Runs = Kernels.trainingDecoder(precision: .bf16) { Kernels.trainsInBF16 }
        for beta: Float in [0, 1] {
            var reference = Tensor(shape: [m * ldc], scalars: c0)
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    reference.withUnsafeMutableBufferPointer { cp in
                        BLAS.gemm(transB: transB, m: m, n: n, k: k, a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                                  beta: beta, c: cp.baseAddress!, ldc: ldc)
                    }
                }
            }
            let fp32 = run(bf16: false, beta: beta), bf16 = run(bf16: bf16Runs, beta: beta)
            let same = fp32.scalars == reference.scalars
            #expect(same)
            let e = Self.relativeError(bf16, reference)
            #expect(e < (bf16Runs ? 1e-2 : 1e-7), "beta \(beta): relative error \(e)")
            if bf16Runs { #expect(e > 0) }
            // Padding columns of C beyond n are never written.
            var untouched = true
            for i in 0..<m { for j in n..<ldc where bf16.scalars[i * ldc + j] != c0[i * ldc + j] { untouched = false } }
            #expect(untouched)
        }
    }
}
