import Foundation
import WallocModels

/// The default models shipped inside the package (SwiftPM resources), found without any path
/// from the user. `WALLOC_MODELS` (a folder with `image/` and `audio/`) overrides them.
public enum DefaultModels {
    /// The model directory for `modality`, or nil when none is installed.
    public static func directory(for modality: Modality) -> URL? {
        var roots = [URL]()
        if let env = ProcessInfo.processInfo.environment["WALLOC_MODELS"], !env.isEmpty {
            roots.append(URL(fileURLWithPath: env))
        }
        if let bundled = Bundle.module.resourceURL?.appendingPathComponent("Models") { roots.append(bundled) }
        for root in roots {
            let dir = root.appendingPathComponent(modality.rawValue)
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent(Codec.configFileName).path) { return dir }
        }
        return nil
    }
}
