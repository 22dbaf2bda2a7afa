import Foundation
import Testing
import WallocFuzz

/// Every fuzz target's seed corpus (fuzz/corpus) is accepted, and every input a fuzzing run found
/// (fuzz/regressions) is refused with an error instead of the crash, trap or hang it once caused.
@Suite("Fuzz targets: seed corpus and regressions")
struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fuzz")

    static func files(_ kind: String, _ target: FuzzTarget) throws -> [URL] {
        let dir = root.appendingPathComponent(kind).appendingPathComponent(target.rawValue)
        guard FileManager.default.fileExists(atPath: dir.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }.sorted { $0.path < $1.path }
    }

    @Test("each seed is a valid input its target accepts", arguments: FuzzTarget.allCases)
    func seeds(target: FuzzTarget) throws {
        let seeds = try Self.files("corpus", target)
        #expect(seeds.count >= 1, "no seeds for \(target.rawValue)")
        for url in seeds {
            #expect(throws: Never.self, "\(target.rawValue)/\(url.lastPathComponent)") { try target.body(try Data(contentsOf: url)) }
        }
    }

    @Test("each finding is refused with an error", arguments: FuzzTarget.allCases)
    func regressions(target: FuzzTarget) throws {
        for url in try Self.files("regressions", target) {
            #expect(throws: (any Error).self, "\(target.rawValue)/\(url.lastPathComponent)") { try target.body(try Data(contentsOf: url)) }
        }
    }

    @Test("the seed writer makes exactly the committed seed corpus")
    func seedCorpusIsCurrent() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-seeds-test-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FuzzSeeds.write(to: dir)
        for target in FuzzTarget.allCases {
            let made = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent(target.rawValue).path).sorted()
            let committed = try Self.files("corpus", target).map(\.lastPathComponent)
            #expect(Set(made).isSubset(of: Set(committed)), "\(target.rawValue): seeds not committed: \(Set(made).subtracting(committed).sorted())")
        }
    }

    /// Found by fuzzing: a 42-byte FLAC header claims 271 million frames of 3 channels. Reading
    /// it allocated all of them up front (3.25 GB) before finding the file short; now memory
    /// follows what is decoded, and a 2 GB address-space limit is plenty for a clean error.
    @Test("a tiny FLAC file claiming 800 million samples is refused without allocating them")
    func flacClaimingHugeLength() throws {
        let prlimit = URL(fileURLWithPath: "/usr/bin/prlimit")
        // Sanitizer builds reserve terabytes of address space for their shadow memory, so the
        // limit only applies to plain builds.
        let sanitized = dlsym(dlopen(nil, RTLD_NOW), "__asan_init") != nil || dlsym(dlopen(nil, RTLD_NOW), "__tsan_init") != nil
        guard !sanitized, FileManager.default.isExecutableFile(atPath: prlimit.path), let walloc = CLI.executable else { return }
        let flac = Self.root.appendingPathComponent("regressions/audio/flac-claims-800M-samples.flac").path
        let p = Process()
        p.executableURL = prlimit
        p.arguments = ["--as=2000000000", walloc.path, "compare", flac, flac]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationReason == .exit && p.terminationStatus == 1, "\(message)")
        #expect(message.contains("truncated file"), "\(message)")
    }

    /// Found by fuzzing: 141 bytes of lossless WebP declare 3082x3075 pixels for a 10x6 latent
    /// image, and were decoded (half a second, 9.5 million pixels) before the shape check refused
    /// them. The size is now read from the header first.
    @Test("a latent image that declares millions of pixels is refused from its header")
    func latentImageRefusedFromHeader() throws {
        let data = try Data(contentsOf: Self.root.appendingPathComponent("regressions/latent-image/declares-3082x3075-pixels.bin"))
        do {
            try FuzzTarget.latentImage.body(data)
            Issue.record("accepted")
        } catch {
            #expect("\(error)".contains("3082x3075 pixels, expected 10x6"), "\(error)")
        }
    }
}
