import Foundation
import WallocFuzz

// `walloc-fuzz`: the libFuzzer driver for the fuzz targets (docs/fuzzing.md).
//
// Built by `make fuzz` with `-sanitize=fuzzer,address` and `-D WALLOC_LIBFUZZER`: libFuzzer's
// `main` runs the target named by the environment variable WALLOC_FUZZ_TARGET. A plain build is a
// replay tool instead: `walloc-fuzz TARGET FILE...` runs files through a target and prints what
// each gave, and `walloc-fuzz seeds DIR` writes the seed corpus.

#if WALLOC_LIBFUZZER
/// The target of this process, from WALLOC_FUZZ_TARGET.
let selectedTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["WALLOC_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("walloc-fuzz: set WALLOC_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return target
}()

/// Loads what the target keeps for the whole run (the default models) before fuzzing starts, so
/// libFuzzer's per-input leak check sees only what an input allocates.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    do {
        try selectedTarget.prepare()
    } catch {
        FileHandle.standardError.write(Data("walloc-fuzz: \(error)\n".utf8))
        exit(2)
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    selectedTarget.run(data)
    return 0
}
#else
@main
struct Replay {
    static func main() {
        let args = CommandLine.arguments.dropFirst()
        if args.first == "seeds", args.count == 2 {
            do {
                let n = try FuzzSeeds.write(to: URL(fileURLWithPath: args.last!))
                print("wrote \(n) seed files under \(args.last!)")
            } catch {
                print("walloc-fuzz seeds: \(error)"); exit(1)
            }
            return
        }
        guard let name = args.first, let target = FuzzTarget(rawValue: name), args.count >= 2 else {
            print("usage: walloc-fuzz TARGET FILE...   replays inputs through a target")
            print("       walloc-fuzz seeds DIR        writes the seed corpus (DIR/<target>/...)")
            print("make fuzz builds the libFuzzer driver instead (docs/fuzzing.md)")
            print("targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
            exit(2)
        }
        for path in args.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else {
                print("\(path): cannot read"); exit(1)
            }
            do {
                try target.body(data)
                print("\(path): accepted")
            } catch {
                print("\(path): refused: \(error)")
            }
        }
    }
}
#endif
