import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import WallocTensor

/// Which kernels run the convolutions of the decoder networks, and at what precision: the one
/// seam between the layers and the libraries that compute them.
///
/// - `Backend.onednn` (the default where Walloc is built with oneDNN): oneDNN's convolutions,
///   whose code oneDNN generates when it runs for the best instructions of this CPU (AVX2,
///   AVX-512, AVX-512 with bf16, AMX, or Arm's). `ONEDNN_MAX_CPU_ISA` (for example `AVX2`) limits it.
/// - `Backend.blas`: shifted GEMMs through the platform's BLAS (OpenBLAS, Accelerate).
///
/// Precision: `.bf16` (oneDNN backend) rounds a convolution's inputs and weights to bfloat16 and
/// accumulates in float32 (where the CPU has bf16 dot products); `.int8` is `.bf16` with the
/// decoder's width-to-width 3x3 convolutions (the resnet blocks') in int8: each piece's input
/// rounded to 8 bits at one scale, the weights per output channel, exact int32 sums (where the CPU
/// has AVX-512 VNNI or AMX as well as bf16; twice bf16's products per instruction); `.fp32` is
/// exact float32 (direct convolutions); `.winograd` is float32 with 3x3 convolutions by
/// Winograd's F(4x4, 3x3) (`Winograd`: a quarter of the multiplications, results within float32
/// rounding of `.fp32`'s). `.auto` is `.int8` where the CPU supports it, else `.bf16` where it
/// supports that, else `.winograd`. The library starts at `.fp32`;
/// the command line decodes at `.auto` (`--precision`). Only decoder networks use these kernels
/// (`decoding`); encoders and linear skip paths do not. Decoder networks' training passes have
/// their own setting (`trainingPrecision`, `trainingDecoder`, `gemm`).
public enum Kernels {
    public enum Backend: String, Sendable, CaseIterable {
        case onednn, blas
    }

    public enum Precision: String, Sendable, CaseIterable, Codable {
        case auto, fp32, bf16, winograd, int8
    }

    private static let backendCode = Atomic<Int>(-1)
    private static let precisionCode = Atomic<Int>(1)
    private static let trainingCode = Atomic<Int>(1)

    /// The backend in use: the value set with `setBackend`, else `WALLOC_KERNELS` from the
    /// environment (`onednn` or `blas`), else oneDNN where it is built in.
    public static var backend: Backend {
        let code = backendCode.load(ordering: .relaxed)
        if code >= 0 { return Backend.allCases[code] }
        return defaultBackend
    }

    /// The default backend (`WALLOC_KERNELS`, else oneDNN where available).
    public static let defaultBackend: Backend = {
        if let name = ProcessInfo.processInfo.environment["WALLOC_KERNELS"], let b = Backend(rawValue: name.lowercased()) {
            return b == .onednn && !OneDNN.isAvailable ? .blas : b
        }
        return OneDNN.isAvailable ? .onednn : .blas
    }()

    /// Selects the backend for the whole process (`.onednn` falls back to BLAS where oneDNN is
    /// not built in).
    public static func setBackend(_ b: Backend) {
        let chosen = b == .onednn && !OneDNN.isAvailable ? Backend.blas : b
        backendCode.store(Backend.allCases.firstIndex(of: chosen)!, ordering: .relaxed)
    }

    /// The precision setting (possibly `.auto`).
    public static var precision: Precision { Precision.allCases[precisionCode.load(ordering: .relaxed)] }

    /// Sets the precision for the whole process.
    public static func setPrecision(_ p: Precision) {
        precisionCode.store(Precision.allCases.firstIndex(of: p)!, ordering: .relaxed)
    }

    /// Runs a decoder network: only inside `decoding` (on the calling thread) do convolutions and
    /// attention use oneDNN and the precision setting; encoders, skip paths and everything else
    /// stay on exact float32 BLAS kernels. `precision`, when given, overrides the process-wide
    /// setting for this call only.
    public static func decoding<R>(precision: Precision? = nil, _ body: () throws -> R) rethrows -> R {
        try decodingScope.run(scopeCode(precision), body)
    }

    /// Whether the calling thread runs a decoder network with oneDNN.
    public static var active: Bool { backend == .onednn && decodingScope.value != nil }

    private static let decodingScope = ThreadScope(), trainingScope = ThreadScope()

    /// A scope's value: 1 for the process-wide precision, 2 + the index of an override.
    private static func scopeCode(_ precision: Precision?) -> Int {
        precision.map { Precision.allCases.firstIndex(of: $0)! + 2 } ?? 1
    }

    /// The precision a scope's value stands for (`processWide` for 1).
    private static func resolved(scopeCode code: Int, processWide: Precision) -> Precision {
        code >= 2 ? Precision.allCases[code - 2] : processWide
    }

    /// Whether `p` asks for reduced precision (`.auto`, `.bf16`, `.int8`): bf16 products where
    /// the machine has them, else Winograd float32.
    private static func reduces(_ p: Precision) -> Bool { p == .auto || p == .bf16 || p == .int8 }

    /// Whether `p` means bf16 on this machine (oneDNN with bf16 dot products); `.int8` runs
    /// everything but its int8 convolutions in bf16.
    private static func runsInBF16(_ p: Precision) -> Bool {
        reduces(p) && backend == .onednn && OneDNN.supportsBF16
    }

    /// Whether `p` means int8 width-to-width 3x3 convolutions on this machine.
    private static func runsInInt8(_ p: Precision) -> Bool {
        (p == .auto || p == .int8) && runsInBF16(p) && OneDNN.supportsInt8
    }

    /// Whether `p` means Winograd float32 on this machine: asked for, or `.auto`/`.bf16`/`.int8`
    /// without bf16.
    private static func runsWinograd(_ p: Precision) -> Bool {
        p == .winograd || (reduces(p) && !runsInBF16(p))
    }

    /// Whether the decoder network on the calling thread computes its 3x3 convolutions with
    /// `Winograd` (inside `decoding`, at `.winograd`, or at `.auto`/`.bf16` where bf16 is not
    /// available), on either backend.
    public static var winograd: Bool {
        guard let code = decodingScope.value else { return false }
        return runsWinograd(resolved(scopeCode: code, processWide: precision))
    }

    /// The precision of the decoder networks' oneDNN products now on the calling thread: `.fp32`
    /// or `.bf16` (never `.auto`; `.winograd` runs its other products in `.fp32`; with `.int8`
    /// everything but the int8 convolutions is `.bf16`).
    public static var effectivePrecision: Precision {
        runsInBF16(resolved(scopeCode: decodingScope.value ?? 1, processWide: precision)) ? .bf16 : .fp32
    }

    /// Whether the decoder network on the calling thread runs its width-to-width 3x3
    /// convolutions in int8 (inside `decoding`, at `.int8` or `.auto`, where the CPU has
    /// non-saturating int8 dot products and bf16).
    public static var int8Convolutions: Bool {
        guard let code = decodingScope.value else { return false }
        return runsInInt8(resolved(scopeCode: code, processWide: precision))
    }

    /// The process-wide precision of the decoder networks' convolution products in training
    /// passes (`gemm` inside `trainingDecoder`), forward and backward: `.fp32` (the default) or
    /// `.bf16`/`.auto` (bfloat16 copies of both operands, float32 accumulation, where oneDNN runs
    /// and the CPU has bf16 dot products). Parameters, gradients and optimiser state stay float32;
    /// encoders and skip paths always train in float32, so training quantises what files hold.
    public static var trainingPrecision: Precision { Precision.allCases[trainingCode.load(ordering: .relaxed)] }

    /// Sets the precision of the decoder networks' training products for the whole process.
    public static func setTrainingPrecision(_ p: Precision) {
        trainingCode.store(Precision.allCases.firstIndex(of: p)!, ordering: .relaxed)
    }

    /// Runs a decoder network's training pass (forward or backward) on the calling thread: only
    /// inside it does `trainsInBF16` follow the training precision. `precision`, when given,
    /// overrides the process-wide setting for this call only.
    public static func trainingDecoder<R>(precision: Precision? = nil, _ body: () throws -> R) rethrows -> R {
        try trainingScope.run(scopeCode(precision), body)
    }

    /// Whether convolution products on the calling thread run in bfloat16 now: inside
    /// `trainingDecoder`, at a bf16 or auto precision, where oneDNN has bf16. Read it before
    /// handing work to other threads, and pass it to `gemm`.
    public static var trainsInBF16: Bool {
        guard let code = trainingScope.value else { return false }
        return runsInBF16(resolved(scopeCode: code, processWide: trainingPrecision))
    }

    /// One line for logs and benchmarks: backend, precision and, for oneDNN, its version and the
    /// instruction set its convolutions use (e.g. "onednn 2.6.3 brgconv:avx512_core_bf16, bf16").
    public static var summary: String {
        let winograd = runsWinograd(precision) ? " (Winograd 3x3)" : ""
        switch backend {
        case .blas: return "blas, fp32" + winograd
        case .onednn:
            let p = effectivePrecision
            let int8 = runsInInt8(precision) ? ", int8 3x3 \(OneDNN.implementation(.s8))" : ""
            return "onednn \(OneDNN.version) \(OneDNN.implementation(p == .bf16 ? .bf16 : .f32)), \(p.rawValue)" + int8 + winograd
        }
    }
}
