import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import Walloc

/// Counts elements by name and collects text while checking that the document is well-formed.
final class XMLCounter: NSObject, XMLParserDelegate {
    var counts = [String: Int]()
    var text = ""
    var classes = [String: Int]()
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        counts[name, default: 0] += 1
        if let c = attributes["class"] { classes[c, default: 0] += 1 }
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    static func parse(_ svg: String) -> XMLCounter? {
        let counter = XMLCounter()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = counter
        return parser.parse() ? counter : nil
    }
}

@Suite("Reports and plots")
struct ReportTests {
    static func rows() -> [EvalRow] {
        var rows = [EvalRow]()
        for file in ["a.png", "b&c.png"] {
            let offset = file == "a.png" ? 0.0 : 1.0
            rows.append(EvalRow(file: file, codec: "walloc", setting: "RGB_16x", parameter: nil, shape: [3, 64, 96], sampleRate: nil, bytes: 900,
                                metrics: ["bpp": 0.5 + offset * 0.1, "psnr": 33 + offset, "ssim": 0.9, "ms_ssim": 0.98, "ms_ssim_db": 17, "compression_ratio": 48],
                                dimensionalityReduction: 16, encodeSeconds: 0.01, decodeSeconds: 0.02))
            for (q, bpp, psnr) in [(20, 0.3, 29.0), (50, 0.6, 32.0), (80, 1.2, 35.0)] {
                rows.append(EvalRow(file: file, codec: "jpeg", setting: "q=\(q)", parameter: Double(q), shape: [3, 64, 96], sampleRate: nil, bytes: 1000,
                                    metrics: ["bpp": bpp + offset * 0.1, "psnr": psnr + offset, "ssim": 0.8, "ms_ssim": 0.95, "ms_ssim_db": psnr / 2, "compression_ratio": 20],
                                    dimensionalityReduction: nil, encodeSeconds: 0.001, decodeSeconds: 0.001))
            }
        }
        return rows
    }

    static let report = EvalReport(modality: .image, models: [("RGB_16x", "/m/RGB_16x", "Codec2D", 16)],
                                   baselines: [("jpeg", "libjpeg-turbo")], rows: rows(), failures: [("bad.png", "not an image")])

    @Test("Summaries are means per (codec, setting) in order; BD-rates per baseline and metric")
    func summaries() throws {
        let s = ReportTests.report.summaries
        #expect(s.map(\.setting) == ["RGB_16x", "q=20", "q=50", "q=80"])
        #expect(s.allSatisfy { $0.files == 2 })
        #expect(abs(s[0].means["psnr"]! - 33.5) < 1e-12 && abs(s[0].means["bpp"]! - 0.55) < 1e-12)
        #expect(abs(s[2].means["bpp"]! - 0.65) < 1e-12)
        let bd = ReportTests.report.bdRates
        #expect(bd.map(\.metric) == ["psnr", "ms_ssim_db"])
        // walloc at 33.5 dB / 0.55 bpp; jpeg passes 33.5 dB between 0.65 and 1.25 bpp: fewer bits.
        let psnr = try bd[0].result.get()
        #expect(psnr.method == "point" && psnr.percent < -10)
    }

    @Test("JSON: summary objects, per-file rows, BD-rates, failures; CSV: one line per row")
    func jsonAndCSV() throws {
        let object = try #require(try JSONSerialization.jsonObject(with: ReportTests.report.json()) as? [String: Any])
        let summary = try #require(object["summary"] as? [[String: Any]])
        #expect(summary.count == 4)
        #expect(summary.first?["codec"] as? String == "walloc" && summary.first?["dimensionality_reduction"] as? Double == 16)
        #expect((object["rows"] as? [[String: Any]])?.count == 8)
        #expect((object["failures"] as? [[String: Any]])?.first?["file"] as? String == "bad.png")
        #expect((object["bd_rate"] as? [[String: Any]])?.count == 2)
        // Quality at 0.25 / 0.5 / 1 bpp: jpeg's curve spans 0.35...1.3 bpp (means of both files).
        let atRate = try #require(object["quality_at_rate"] as? [[String: Any]])
        #expect(atRate.count == 4)
        let jpegPSNR = try #require(atRate.first { $0["codec"] as? String == "jpeg" && $0["metric"] as? String == "psnr" })
        let values = try #require(jpegPSNR["values"] as? [Any])
        #expect(values[0] is NSNull && values[2] is Double && values[1] is Double)
        #expect((values[1] as! Double) > 29.5 && (values[1] as! Double) < 32.5)
        let csv = String(decoding: ReportTests.report.csv(), as: UTF8.self)
        let lines = csv.split(separator: "\n")
        #expect(lines.count == 9)
        #expect(lines[0] == "file,codec,setting,parameter,channels,height,width,bytes,bpp,psnr,ssim,ms_ssim,ms_ssim_db,compression_ratio,dimensionality_reduction,encode_ms,decode_ms")
        #expect(lines.allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == 17 })
        #expect(lines[1].hasPrefix("a.png,walloc,RGB_16x,,3,64,96,900,0.5,33,"))
        // Non-finite values: null in JSON.
        var rows = ReportTests.rows()
        rows[0].metrics["psnr"] = .infinity
        let inf = EvalReport(modality: .image, models: [], baselines: [], rows: rows, failures: [])
        let text = String(decoding: try inf.json(), as: UTF8.self)
        #expect(text.contains("\"psnr\" : null"))
        #expect(EvalReport.quote("a,\"b\"") == "\"a,\"\"b\"\"\"")
    }

    @Test("The table lists every setting and the BD-rates")
    func table() {
        let t = ReportTests.report.table()
        #expect(t.contains("walloc") && t.contains("q=80") && t.contains("BD-rate") && t.contains("vs jpeg, PSNR:"))
    }

    @Test("SVG: well-formed, two panels, a polyline per multi-point series, markers, labels, legend")
    func svg() throws {
        let svg = ReportTests.report.plot(title: "A <test> & plot").render()
        let xml = try #require(XMLCounter.parse(svg), "not well-formed XML")
        #expect(xml.counts["svg"] == 1)
        #expect(xml.classes["panel"] == 2)
        // jpeg has 3 points (a polyline in each panel); walloc has one point (markers only).
        #expect(xml.counts["polyline"] == 2)
        #expect(xml.classes["series"] == 4)
        #expect(xml.classes["marker"]! == 2 * (3 + 1) + 2)
        #expect(xml.classes["legend-entry"] == 2)
        #expect(xml.classes["axis-label"] == 4)
        #expect((xml.classes["tick"] ?? 0) >= 12)
        #expect(xml.text.contains("A <test> & plot"))
        #expect(xml.text.contains("bits per pixel") && xml.text.contains("PSNR (dB)"))
    }

    @Test("Nice axis ticks")
    func ticks() {
        let a = SVGPlot.axis(min: 0, max: 1.9)
        #expect(a.lo == 0 && a.hi == 2 && a.step == 0.5 && a.ticks == [0, 0.5, 1, 1.5, 2])
        // Data reaching a tick gets headroom.
        let top = SVGPlot.axis(min: 10, max: 25)
        #expect(top.hi > 25 && top.lo < 10)
        let b = SVGPlot.axis(min: 27.3, max: 41.2)
        #expect(b.step == 5 && b.lo == 25 && b.hi == 45)
        let flat = SVGPlot.axis(min: 3, max: 3)
        #expect(flat.lo < 3 && flat.hi > 3)
        #expect(SVGPlot.label(0.25, step: 0.05) == "0.25" && SVGPlot.label(30, step: 5) == "30")
    }
}
