import Foundation
import WallocModels
import WallocTensor

/// Every model this machine has, found by fingerprint so that `walloc decode` needs no `--model`
/// for a file made with a model it has.
///
/// Searched, in order: the folders in `WALLOC_MODELS` (colon-separated), the user's models folder
/// (`$XDG_DATA_HOME/walloc/models`, by default `~/.local/share/walloc/models`), the installed
/// models (`../share/walloc/models` beside the executable's folder, what `make install` writes) and
/// the embedded defaults. A folder counts when it is a model directory (`config.json` and
/// `model.safetensors`) or holds model directories one level down.
public enum ModelRegistry {
    /// One model directory found.
    public struct Entry: Sendable {
        public var url: URL
        /// The directory's name (what files made with it record).
        public var name: String { url.lastPathComponent }
        public var codec: Codec
        public var fingerprintHex: String
    }

    /// The folders searched, in order (each may or may not exist).
    public static var folders: [URL] {
        let env = ProcessInfo.processInfo.environment
        var roots = [URL]()
        for part in (env["WALLOC_MODELS"] ?? "").split(separator: ":") where !part.isEmpty {
            roots.append(URL(fileURLWithPath: String(part)))
        }
        if let data = env["XDG_DATA_HOME"], !data.isEmpty {
            roots.append(URL(fileURLWithPath: data).appendingPathComponent("walloc/models"))
        } else if let home = env["HOME"], !home.isEmpty {
            roots.append(URL(fileURLWithPath: home).appendingPathComponent(".local/share/walloc/models"))
        }
        for root in DefaultModels.searchPath where !roots.contains(root) { roots.append(root) }
        return roots
    }

    /// The model directories in `folders`, in search order, without duplicates.
    public static func directories() -> [URL] {
        let fm = FileManager.default
        func isModel(_ u: URL) -> Bool {
            fm.fileExists(atPath: u.appendingPathComponent(Codec.configFileName).path)
                && fm.fileExists(atPath: u.appendingPathComponent(Codec.weightsFileName).path)
        }
        var seen = Set<String>(), out = [URL]()
        for root in folders {
            var candidates = [root]
            if let names = try? fm.contentsOfDirectory(atPath: root.path) {
                candidates += names.sorted().filter { !$0.hasPrefix(".") }.map { root.appendingPathComponent($0) }
            }
            for dir in candidates where isModel(dir) {
                let key = dir.resolvingSymlinksInPath().standardizedFileURL.path
                if seen.insert(key).inserted { out.append(dir) }
            }
        }
        return out
    }

    /// Every model found (a directory that does not load is skipped; `problems` gets its reason).
    /// A copy of a model already found (same name and fingerprint, e.g. the build's resource
    /// bundle and the source tree's defaults) is listed once, where lookup finds it first.
    public static func entries(problems: ((URL, String) -> Void)? = nil) -> [Entry] {
        var seen = Set<String>()
        return directories().compactMap { dir -> Entry? in
            do {
                let codec = try Codec.load(from: dir)
                return Entry(url: dir, codec: codec, fingerprintHex: codec.fingerprintHex)
            } catch {
                problems?(dir, (error as? WallocError)?.message ?? "\(error)")
                return nil
            }
        }.filter { seen.insert($0.fingerprintHex + "/" + $0.name).inserted }
    }

    /// The directory of the first model found with this fingerprint, or whose fingerprint begins
    /// with these bytes (a `.wlc` file stores the first 8 of them; at least 8 are needed).
    public static func directory(fingerprint: [UInt8]) throws -> URL {
        let hex = fingerprint.map { String(format: "%02x", $0) }.joined()
        if fingerprint.count >= 8 {
            for dir in directories() {
                if let codec = try? Codec.load(from: dir), codec.fingerprintHex.hasPrefix(hex) { return dir }
            }
        }
        let searched = folders.map(\.path).joined(separator: ", ")
        let what = fingerprint.count < 16 ? "a fingerprint beginning with" : "the fingerprint"
        throw WallocError("no installed model has \(what) \(hex) (searched \(searched)); put the model directory in one of those folders or in WALLOC_MODELS, or pass --model DIR")
    }
}
