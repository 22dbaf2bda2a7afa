import Foundation

/// The results of an evaluation and their JSON, CSV and text forms (see docs/evaluation.md).
public struct EvalReport: Sendable {
    public var modality: EvalModality
    /// The Walloc models: name, directory, type, dimensionality reduction.
    public var models: [(name: String, path: String, type: String, dimensionalityReduction: Double)]
    /// The baselines and their settings description.
    public var baselines: [(codec: String, settings: String)]
    public var rows: [EvalRow]
    public var failures: [(file: String, error: String)]
    public var summaries: [EvalSummary]
    public var bdRates: [BDRateEntry]
    /// The rate interval BD-rates were computed on (nil: every setting).
    public var bdRateRange: ClosedRange<Double>?

    /// Rates at which `qualityAtRates` interpolates each codec's curve.
    public var referenceRates: [Double] { modality == .image ? [0.25, 0.5, 1] : [24, 32, 64] }

    /// Per codec and quality metric (PSNR and MS-SSIM; SNR and SI-SDR), the mean quality
    /// interpolated at each of `referenceRates` (nil outside the codec's rate range or for a
    /// single setting).
    public var qualityAtRates: [(codec: String, metric: String, values: [Double?])] {
        let codecs = summaries.map(\.codec).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let metrics = modality == .image ? ["psnr", "ms_ssim"] : ["snr", "si_sdr", "log_mel"]
        return codecs.flatMap { codec in
            metrics.map { metric in
                let curve = summaries.filter { $0.codec == codec }.compactMap { s -> RDPoint? in
                    guard let r = s.means[modality.rateMetric], let q = s.means[metric] else { return nil }
                    return RDPoint(rate: r, quality: q)
                }
                return (codec, metric, referenceRates.map { BDRate.quality(at: $0, on: curve) })
            }
        }
    }

    public init(modality: EvalModality, models: [(name: String, path: String, type: String, dimensionalityReduction: Double)],
                baselines: [(codec: String, settings: String)], rows: [EvalRow], failures: [(file: String, error: String)],
                bdRateRange: ClosedRange<Double>? = nil) {
        self.modality = modality
        self.models = models
        self.baselines = baselines
        self.rows = rows
        self.failures = failures
        summaries = EvalSummary.summarize(rows)
        self.bdRateRange = bdRateRange
        bdRates = BDRateEntry.compute(test: Evaluator.codecName, summaries: summaries, modality: modality, rateRange: bdRateRange)
    }

    // MARK: JSON

    /// The report as pretty-printed JSON with sorted keys; non-finite numbers are `null`.
    public func json() throws -> Data {
        let summary: [[String: Any]] = summaries.map { s in
            var o: [String: Any] = ["codec": s.codec, "setting": s.setting, "files": s.files,
                                    "encode_ms": s.encodeSeconds * 1e3, "decode_ms": s.decodeSeconds * 1e3]
            if let p = s.parameter { o["parameter"] = p }
            if let d = s.dimensionalityReduction { o["dimensionality_reduction"] = d }
            for (k, v) in s.means { o[k] = v }
            return o
        }
        let rowObjects: [[String: Any]] = rows.map { r in
            var o: [String: Any] = ["file": r.file, "codec": r.codec, "setting": r.setting, "bytes": r.bytes, "shape": r.shape,
                                    "encode_ms": r.encodeSeconds * 1e3, "decode_ms": r.decodeSeconds * 1e3]
            if let p = r.parameter { o["parameter"] = p }
            if let s = r.sampleRate { o["sample_rate"] = s }
            if let d = r.dimensionalityReduction { o["dimensionality_reduction"] = d }
            for (k, v) in r.metrics { o[k] = v }
            return o
        }
        let bd: [[String: Any]] = bdRates.map { e in
            var o: [String: Any] = ["test": e.test, "anchor": e.anchor, "metric": e.metric, "rate": modality.rateMetric]
            if let r = bdRateRange { o["rate_range"] = [r.lowerBound, r.upperBound] }
            switch e.result {
            case .success(let r):
                o["percent"] = r.percent
                o["method"] = r.method
                o["quality_range"] = [r.qualityRange.lowerBound, r.qualityRange.upperBound]
            case .failure(let f):
                o["error"] = f.message
            }
            return o
        }
        let root: [String: Any] = [
            "modality": modality.rawValue,
            "models": models.map { ["name": $0.name, "path": $0.path, "type": $0.type, "dimensionality_reduction": $0.dimensionalityReduction] },
            "baselines": baselines.map { ["codec": $0.codec, "settings": $0.settings] },
            "summary": summary,
            "rows": rowObjects,
            "bd_rate": bd,
            "quality_at_rate": qualityAtRates.map { e -> [String: Any] in
                ["codec": e.codec, "metric": e.metric, "rates": referenceRates,
                 "values": e.values.map { $0.map { $0 as Any } ?? NSNull() }]
            },
            "failures": failures.map { ["file": $0.file, "error": $0.error] },
        ]
        return try JSONSerialization.data(withJSONObject: EvalReport.sanitize(root), options: [.prettyPrinted, .sortedKeys])
    }

    /// Replaces non-finite doubles by NSNull (JSON has no infinity or NaN).
    static func sanitize(_ value: Any) -> Any {
        switch value {
        case let d as Double: return d.isFinite ? d : NSNull()
        case let a as [Any]: return a.map(sanitize)
        case let o as [String: Any]: return o.mapValues(sanitize)
        default: return value
        }
    }

    // MARK: CSV

    /// The CSV header for this modality.
    public var csvColumns: [String] {
        let shape = modality == .image ? ["channels", "height", "width"] : ["channels", "frames", "sample_rate"]
        return ["file", "codec", "setting", "parameter"] + shape + ["bytes"] + modality.metricNames
            + ["dimensionality_reduction", "encode_ms", "decode_ms"]
    }

    /// One line per (file, codec, setting), RFC 4180 quoting; empty cells for missing values.
    public func csv() -> Data {
        var lines = [csvColumns.joined(separator: ",")]
        for r in rows {
            var cells = [EvalReport.quote(r.file), EvalReport.quote(r.codec), EvalReport.quote(r.setting), EvalReport.number(r.parameter)]
            cells += r.shape.map(String.init)
            if modality == .audio { cells.append(r.sampleRate.map(String.init) ?? "") }
            cells.append(String(r.bytes))
            cells += modality.metricNames.map { EvalReport.number(r.metrics[$0]) }
            cells += [EvalReport.number(r.dimensionalityReduction), EvalReport.number(r.encodeSeconds * 1e3),
                      EvalReport.number(r.decodeSeconds * 1e3)]
            lines.append(cells.joined(separator: ","))
        }
        return Data((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// A CSV cell, quoted when it holds a comma, quote or line break.
    public static func quote(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    static func number(_ v: Double?) -> String {
        guard let v else { return "" }
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        return String(format: "%.6g", v)
    }

    // MARK: text

    /// The summary table and the BD-rates as text.
    public func table() -> String {
        let quality = modality == .image ? ["psnr", "ssim", "ms_ssim"] : ["snr", "si_sdr", "log_mel"]
        let titles = ["codec", "setting", modality.rateMetric] + quality.map { $0.uppercased().replacingOccurrences(of: "_", with: "-") }
            + ["enc ms", "dec ms", "files"]
        var table = [titles]
        for s in summaries {
            var cells = [s.codec, s.setting, String(format: modality == .image ? "%.3f" : "%.1f", s.means[modality.rateMetric] ?? .nan)]
            cells += quality.map { k in String(format: (k.contains("ssim") && k != "si_sdr") || k == "log_mel" ? "%.4f" : "%.2f", s.means[k] ?? .nan) }
            cells += [String(format: "%.1f", s.encodeSeconds * 1e3), String(format: "%.1f", s.decodeSeconds * 1e3), String(s.files)]
            table.append(cells)
        }
        let widths = titles.indices.map { c in table.map { $0[c].count }.max()! }
        var out = table.map { row in
            row.enumerated().map { c, cell in
                c < 2 ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                      : String(repeating: " ", count: widths[c] - cell.count) + cell
            }.joined(separator: "  ")
        }
        let atRates = qualityAtRates.filter { $0.values.contains { $0 != nil } }
        if !atRates.isEmpty {
            let unit = modality == .image ? "bpp" : "kbps"
            out.append("")
            out.append("Mean quality at " + referenceRates.map { String(format: "%g", $0) }.joined(separator: " / ") + " \(unit) (interpolated):")
            let nameWidth = atRates.map(\.codec.count).max()!
            for e in atRates {
                let unitless = e.metric == "ms_ssim" || e.metric == "log_mel"
                let values = e.values.map { $0.map { String(format: unitless ? "%.4f" : "%.2f", $0) } ?? "-" }.joined(separator: " / ")
                let label = e.metric.uppercased().replacingOccurrences(of: "_", with: "-")
                out.append("  \(e.codec.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(label) \(values)\(unitless ? "" : " dB")")
            }
        }
        if !bdRates.isEmpty {
            out.append("")
            let range = bdRateRange.map { String(format: ", settings between %g and %g %@", $0.lowerBound, $0.upperBound, modality.rateMetric) } ?? ""
            out.append("BD-rate of \(Evaluator.codecName) (negative: fewer bits at equal quality\(range)):")
            for e in bdRates {
                let label = "  vs \(e.anchor), \(e.metric == "ms_ssim_db" ? "MS-SSIM (dB)" : e.metric.uppercased().replacingOccurrences(of: "_", with: "-")):"
                switch e.result {
                case .success(let r):
                    let how = r.method == "point"
                        ? String(format: "at %.2f (one %@ point)", r.qualityRange.lowerBound, Evaluator.codecName)
                        : String(format: "over %.2f...%.2f, %@", r.qualityRange.lowerBound, r.qualityRange.upperBound, r.method)
                    out.append("\(label) \(String(format: "%+.1f%%", r.percent)) \(how)")
                case .failure(let f):
                    out.append("\(label) n/a (\(f.message))")
                }
            }
        }
        return out.joined(separator: "\n")
    }
}
