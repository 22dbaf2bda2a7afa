import Foundation

/// Line charts as standalone SVG: one or more panels side by side, each with axes, ticks, grid,
/// axis labels and one polyline with markers per series, and a legend shared by all panels.
public struct SVGPlot: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// Drawn thicker and first in the legend.
        public var highlighted: Bool

        public init(name: String, points: [(x: Double, y: Double)], highlighted: Bool = false) {
            self.name = name
            self.points = points
            self.highlighted = highlighted
        }
    }

    public struct Panel: Sendable {
        public var title: String
        public var xLabel: String
        public var yLabel: String
        public var series: [Series]
        /// Start the x axis at 0 (rates).
        public var xFromZero: Bool

        public init(title: String, xLabel: String, yLabel: String, series: [Series], xFromZero: Bool = true) {
            self.title = title
            self.xLabel = xLabel
            self.yLabel = yLabel
            self.series = series
            self.xFromZero = xFromZero
        }
    }

    public var title: String
    public var panels: [Panel]

    public init(title: String, panels: [Panel]) {
        self.title = title
        self.panels = panels
    }

    static let palette = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]
    static let panelWidth = 520.0, panelHeight = 400.0
    static let margin = (left: 70.0, right: 20.0, top: 40.0, bottom: 55.0)

    /// The SVG document.
    public func render() -> String {
        let names = panels.flatMap { $0.series }.reduce(into: [(String, Bool)]()) { acc, s in
            if !acc.contains(where: { $0.0 == s.name }) { acc.append((s.name, s.highlighted)) }
        }
        let legendRows = (names.count + 5) / 6
        let width = SVGPlot.panelWidth * Double(max(1, panels.count))
        let height = 36 + SVGPlot.panelHeight + 16 + 22 * Double(legendRows)
        var svg = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" viewBox="0 0 \(f(width)) \(f(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(width / 2))" y="22" text-anchor="middle" font-size="16" font-weight="bold">\(escape(title))</text>

        """
        for (i, panel) in panels.enumerated() {
            svg += renderPanel(panel, index: i, originX: SVGPlot.panelWidth * Double(i), originY: 36, names: names.map(\.0))
        }
        // Legend, centred under the panels, six entries per row.
        let entryWidth = min(160.0, width / Double(min(6, max(1, names.count))))
        for (k, (name, highlighted)) in names.enumerated() {
            let row = k / 6, col = k % 6
            let inRow = min(6, names.count - row * 6)
            let x0 = (width - entryWidth * Double(inRow)) / 2 + entryWidth * Double(col)
            let y = 36 + SVGPlot.panelHeight + 18 + 22 * Double(row)
            let color = SVGPlot.palette[k % SVGPlot.palette.count]
            svg += "<g class=\"legend-entry\">"
            svg += "<line x1=\"\(f(x0))\" y1=\"\(f(y))\" x2=\"\(f(x0 + 28))\" y2=\"\(f(y))\" stroke=\"\(color)\" stroke-width=\"\(highlighted ? 3 : 2)\"/>"
            svg += marker(k, x: x0 + 14, y: y, color: color)
            svg += "<text x=\"\(f(x0 + 34))\" y=\"\(f(y + 4))\">\(escape(name))</text></g>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    private func renderPanel(_ panel: Panel, index: Int, originX: Double, originY: Double, names: [String]) -> String {
        let m = SVGPlot.margin
        let (x0, y0) = (originX + m.left, originY + m.top)
        let (w, h) = (SVGPlot.panelWidth - m.left - m.right, SVGPlot.panelHeight - m.top - m.bottom)
        let finite = panel.series.flatMap { $0.points }.filter { $0.x.isFinite && $0.y.isFinite }
        let xs = finite.map(\.x), ys = finite.map(\.y)
        let xAxis = SVGPlot.axis(min: panel.xFromZero ? 0 : (xs.min() ?? 0), max: xs.max() ?? 1)
        let yAxis = SVGPlot.axis(min: ys.min() ?? 0, max: ys.max() ?? 1)
        func px(_ x: Double) -> Double { x0 + (x - xAxis.lo) / (xAxis.hi - xAxis.lo) * w }
        func py(_ y: Double) -> Double { y0 + h - (y - yAxis.lo) / (yAxis.hi - yAxis.lo) * h }

        var s = "<g class=\"panel\">\n"
        s += "<clipPath id=\"clip\(index)\"><rect x=\"\(f(x0))\" y=\"\(f(y0))\" width=\"\(f(w))\" height=\"\(f(h))\"/></clipPath>\n"
        s += "<text x=\"\(f(x0 + w / 2))\" y=\"\(f(y0 - 12))\" text-anchor=\"middle\" font-size=\"14\">\(escape(panel.title))</text>\n"
        // Grid and ticks.
        for t in xAxis.ticks {
            let x = px(t)
            s += "<line class=\"grid\" x1=\"\(f(x))\" y1=\"\(f(y0))\" x2=\"\(f(x))\" y2=\"\(f(y0 + h))\" stroke=\"#e0e0e0\"/>"
            s += "<line x1=\"\(f(x))\" y1=\"\(f(y0 + h))\" x2=\"\(f(x))\" y2=\"\(f(y0 + h + 5))\" stroke=\"black\"/>"
            s += "<text class=\"tick\" x=\"\(f(x))\" y=\"\(f(y0 + h + 18))\" text-anchor=\"middle\">\(SVGPlot.label(t, step: xAxis.step))</text>\n"
        }
        for t in yAxis.ticks {
            let y = py(t)
            s += "<line class=\"grid\" x1=\"\(f(x0))\" y1=\"\(f(y))\" x2=\"\(f(x0 + w))\" y2=\"\(f(y))\" stroke=\"#e0e0e0\"/>"
            s += "<line x1=\"\(f(x0 - 5))\" y1=\"\(f(y))\" x2=\"\(f(x0))\" y2=\"\(f(y))\" stroke=\"black\"/>"
            s += "<text class=\"tick\" x=\"\(f(x0 - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(SVGPlot.label(t, step: yAxis.step))</text>\n"
        }
        s += "<rect x=\"\(f(x0))\" y=\"\(f(y0))\" width=\"\(f(w))\" height=\"\(f(h))\" fill=\"none\" stroke=\"black\"/>\n"
        s += "<text class=\"axis-label\" x=\"\(f(x0 + w / 2))\" y=\"\(f(y0 + h + 40))\" text-anchor=\"middle\">\(escape(panel.xLabel))</text>\n"
        s += "<text class=\"axis-label\" transform=\"translate(\(f(originX + 18)) \(f(y0 + h / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(panel.yLabel))</text>\n"
        // Series: highlighted ones drawn last (on top).
        let ordered = panel.series.enumerated().sorted { ($0.element.highlighted ? 1 : 0) < ($1.element.highlighted ? 1 : 0) }
        for (_, series) in ordered {
            let k = names.firstIndex(of: series.name) ?? 0
            let color = SVGPlot.palette[k % SVGPlot.palette.count]
            let points = series.points.filter { $0.x.isFinite && $0.y.isFinite }.sorted { $0.x < $1.x }
            s += "<g class=\"series\" clip-path=\"url(#clip\(index))\"><title>\(escape(series.name))</title>"
            if points.count >= 2 {
                let list = points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
                s += "<polyline points=\"\(list)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(series.highlighted ? 3 : 2)\" stroke-linejoin=\"round\"/>"
            }
            for p in points { s += marker(k, x: px(p.x), y: py(p.y), color: color) }
            s += "</g>\n"
        }
        return s + "</g>\n"
    }

    /// A marker shape per series: circle, square, triangle, diamond.
    private func marker(_ k: Int, x: Double, y: Double, color: String) -> String {
        let r = 4.0
        switch k % 4 {
        case 0: return "<circle class=\"marker\" cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"\(f(r))\" fill=\"\(color)\"/>"
        case 1: return "<rect class=\"marker\" x=\"\(f(x - r))\" y=\"\(f(y - r))\" width=\"\(f(2 * r))\" height=\"\(f(2 * r))\" fill=\"\(color)\"/>"
        case 2: return "<polygon class=\"marker\" points=\"\(f(x)),\(f(y - r - 1)) \(f(x + r + 1)),\(f(y + r)) \(f(x - r - 1)),\(f(y + r))\" fill=\"\(color)\"/>"
        default: return "<polygon class=\"marker\" points=\"\(f(x)),\(f(y - r - 1)) \(f(x + r + 1)),\(f(y)) \(f(x)),\(f(y + r + 1)) \(f(x - r - 1)),\(f(y))\" fill=\"\(color)\"/>"
        }
    }

    /// An axis range padded by 3% and widened to whole multiples of a "nice" tick step (1, 2 or
    /// 5 x 10^k), about five ticks.
    public static func axis(min lo0: Double, max hi0: Double) -> (lo: Double, hi: Double, step: Double, ticks: [Double]) {
        var lo = lo0, hi = hi0
        if hi - lo < 1e-9 * max(1, abs(hi)) { lo -= max(0.5, abs(lo) * 0.05); hi += max(0.5, abs(hi) * 0.05) }
        // A little headroom so that no marker sits on the frame (an axis starting at 0 stays there).
        let pad = 0.03 * (hi - lo)
        if lo != 0 { lo = lo > 0 ? max(0, lo - pad) : lo - pad } // never pad across 0
        hi += pad
        let raw = (hi - lo) / 5
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        lo = (lo / step).rounded(.down) * step
        hi = (hi / step).rounded(.up) * step
        var ticks = [Double]()
        var t = lo
        while t <= hi + step * 1e-6 {
            ticks.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return (lo, hi, step, ticks)
    }

    /// A tick label with as many decimals as the step needs.
    public static func label(_ v: Double, step: Double) -> String {
        let decimals = max(0, Int((-log10(step)).rounded(.up)))
        return String(format: "%.\(decimals)f", v)
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

extension EvalReport {
    /// Rate-distortion plots of the summary: PSNR and MS-SSIM (dB) against bits per pixel for
    /// images, SNR and SI-SDR against kbps for audio; one series per codec.
    public func plot(title: String) -> SVGPlot {
        let codecs = summaries.map(\.codec).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        func series(_ metric: String) -> [SVGPlot.Series] {
            codecs.map { c in
                SVGPlot.Series(name: c, points: summaries.filter { $0.codec == c }.compactMap { s in
                    guard let x = s.means[modality.rateMetric], let y = s.means[metric] else { return nil }
                    return (x, y)
                }, highlighted: c == Evaluator.codecName)
            }
        }
        let rate = modality == .image ? "bits per pixel" : "kbps"
        let panels: [SVGPlot.Panel] = modality == .image
            ? [SVGPlot.Panel(title: "PSNR", xLabel: rate, yLabel: "PSNR (dB)", series: series("psnr")),
               SVGPlot.Panel(title: "MS-SSIM", xLabel: rate, yLabel: "MS-SSIM (dB) = -10 log10(1 - MS-SSIM)", series: series("ms_ssim_db"))]
            : [SVGPlot.Panel(title: "SNR", xLabel: rate, yLabel: "SNR (dB)", series: series("snr")),
               SVGPlot.Panel(title: "SI-SDR", xLabel: rate, yLabel: "SI-SDR (dB)", series: series("si_sdr"))]
        return SVGPlot(title: title, panels: panels)
    }
}
