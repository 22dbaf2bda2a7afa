import Foundation
import WallocModels

/// The default models shipped with the package, found without any path from the user. Searched in
/// order: `WALLOC_MODELS` (colon-separated folders; one with `image/` and `audio/` overrides the defaults), the SwiftPM resource bundle next to
/// the executable (`Walloc_WallocPipeline.resources/Models`, what `swift build` makes),
/// `../share/walloc/models` beside the executable's folder (what `make install` makes), and the
/// source tree this module was built from.
public enum DefaultModels {
    /// The folders searched, in order.
    public static var searchPath: [URL] {
        var roots = [URL]()
        for part in (ProcessInfo.processInfo.environment["WALLOC_MODELS"] ?? "").split(separator: ":") where !part.isEmpty {
            roots.append(URL(fileURLWithPath: String(part)))
        }
        if let exe = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            let dir = exe.deletingLastPathComponent()
            roots.append(dir.appendingPathComponent("Walloc_WallocPipeline.resources/Models"))
            roots.append(dir.deletingLastPathComponent().appendingPathComponent("share/walloc/models"))
        }
        // Not `Bundle.module`: its accessor stops the process when the bundle has moved.
        roots.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Models"))
        return roots
    }

    /// The model directory for `modality`, or nil when none is installed.
    public static func directory(for modality: Modality) -> URL? {
        for root in searchPath {
            let dir = root.appendingPathComponent(modality.rawValue)
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent(Codec.configFileName).path) { return dir }
        }
        return nil
    }
}
