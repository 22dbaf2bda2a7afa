import ArgumentParser
import Foundation
import Walloc

/// `walloc models`: the models `walloc decode` can find by fingerprint.
struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List the models walloc finds (decode picks a file's model among them by fingerprint).",
        discussion: """
        Searched in order: the folders in WALLOC_MODELS (colon-separated), $XDG_DATA_HOME/walloc/models \
        (default ~/.local/share/walloc/models), the installed models (../share/walloc/models beside the \
        executable) and the embedded defaults. A folder counts when it is a model directory or holds \
        model directories one level down.
        """
    )
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() throws {
        var problems = [String]()
        let entries = ModelRegistry.entries { url, why in problems.append("\(url.path): \(why)") }
        if json {
            try printJSON(["folders": ModelRegistry.folders.map(\.path),
                           "models": entries.map { e -> [String: Any] in
                               var d: [String: Any] = ["name": e.name, "path": e.url.path, "fingerprint": e.fingerprintHex,
                                                       "modality": e.codec.modality.rawValue, "type": e.codec.config.type.rawValue,
                                                       "latent_dim": e.codec.config.latentDim, "latent_bits": e.codec.config.latentBits]
                               if let r = e.codec.config.rate { d["default_quality"] = r.defaultQuality; d["qualities"] = [1, 100] }
                               return d
                           },
                           "skipped": problems])
            return
        }
        print("folders searched: " + ModelRegistry.folders.map(\.path).joined(separator: ", "))
        if entries.isEmpty { print("no models found") }
        let rows = entries.map { e -> [String] in
            let c = e.codec.config
            let rates = c.rate.map { "quality 1-100 (default \($0.defaultQuality))" } ?? "fixed rate"
            return [e.name, e.codec.modality.rawValue, rates, "\(c.latentDim) x \(c.latentBits)-bit", e.fingerprintHex, e.url.path]
        }
        let header = ["name", "modality", "rates", "latents", "fingerprint", "path"]
        let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max()! }
        for row in [header] + rows {
            print(row.enumerated().map { i, v in i == row.count - 1 ? v : v.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
        for p in problems { printError("skipped \(p)") }
    }
}
