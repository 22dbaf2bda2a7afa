import Foundation
import WallocIO
import WallocMedia
import WallocNN
import WallocTensor

/// The visual comparison report (`walloc eval --html`): one self-contained HTML page with the
/// rate-distortion charts and summary, and per file the original beside Walloc and each baseline
/// at the closest rate. Images get synchronised 2x crops (click the overview to move them; they start on the most detailed window) and a
/// difference view; recordings get log-mel spectrograms and players. Every picture and sound is
/// embedded losslessly (WebP, FLAC), so the page shows exactly what each codec decoded.
public struct HTMLReport {
    public var report: EvalReport
    public var files: [FileSamples]
    public var title: String

    public init(report: EvalReport, files: [FileSamples], title: String) {
        self.report = report
        self.files = files
        self.title = title
    }

    /// The page.
    public func render() throws -> String {
        var body = "<h1>\(Self.escape(title))</h1>\n"
        body += "<p class=note>\(Self.escape(summaryLine))</p>\n"
        body += "<section class=charts>\(report.plot(title: title).render())</section>\n"
        body += "<details><summary>Means and BD-rates (click to open)</summary><pre>\(Self.escape(report.table()))</pre></details>\n"
        for (i, file) in files.enumerated() {
            body += report.modality == .image ? try imageSection(file, index: i) : try audioSection(file)
        }
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(Self.escape(title))</title>
        <style>\(Self.style)</style></head>
        <body>
        \(body)
        <script>\(Self.script)</script>
        </body></html>

        """
    }

    var summaryLine: String {
        let models = report.models.map { "\($0.name) (\($0.type))" }.joined(separator: ", ")
        let baselines = report.baselines.map(\.codec).joined(separator: ", ")
        let count = Set(report.rows.map(\.file)).count
        let what = report.modality == .image ? "image" : "recording"
        return "\(count) \(what)\(count == 1 ? "" : "s"); models: \(models); baselines: \(baselines.isEmpty ? "none" : baselines). "
            + "Each file shows Walloc at one setting and every baseline at the setting whose rate on that file is closest."
    }

    // MARK: images

    func imageSection(_ file: FileSamples, index: Int) throws -> String {
        guard let original = file.samples.first else { return "" }
        let (h, w) = (original.signal.shape[1], original.signal.shape[2])
        var images = "", crops = ""
        for (k, s) in file.samples.enumerated() {
            let id = "i\(index)-\(k)"
            images += "<img id=\"\(id)\" class=src alt=\"\(Self.escape(s.codec))\" src=\"data:image/webp;base64,\(try Self.webp(s.signal).base64EncodedString())\">\n"
            crops += "<figure><canvas class=crop data-src=\"\(id)\" data-orig=\"i\(index)-0\" width=256 height=256></canvas>"
                + "<figcaption><b>\(Self.escape(s.codec))</b> \(Self.escape(s.setting))<br>\(Self.escape(imageCaption(s)))</figcaption></figure>\n"
        }
        return """
        <section class=file data-w=\(w) data-h=\(h) data-crops=\(file.samples.count)>
        <h2>\(Self.escape(file.file)) <small>\(w)x\(h)</small></h2>
        <div class=row><figure class=ov><canvas class=overview data-src="i\(index)-0"></canvas>
        <figcaption>Click to move the crops (128x128 pixels, enlarged; #diff in the address starts in the difference view). <label><input type=checkbox class=diff> difference from the original, x4</label></figcaption></figure></div>
        <div class="row crops">\(crops)</div>
        <div hidden>\(images)</div>
        </section>

        """
    }

    func imageCaption(_ s: DecodedSample) -> String {
        Self.caption(s.metrics, [("bpp", "%.3f bpp"), ("psnr", "%.2f dB PSNR"), ("ms_ssim", "MS-SSIM %.4f")])
    }

    /// The metrics present in `formats`' order, joined by " · "; "reference" without the first
    /// (the rate), which only the original lacks.
    static func caption(_ metrics: [String: Double], _ formats: [(key: String, format: String)]) -> String {
        guard metrics[formats[0].key] != nil else { return "reference" }
        return formats.compactMap { f in metrics[f.key].map { String(format: f.format, $0) } }.joined(separator: " · ")
    }

    /// Lossless WebP of `[C, H, W]` pixels in [0, 1] (grey shown as RGB).
    static func webp(_ pixels: Tensor) throws -> Data {
        let (c, h, w) = (pixels.shape[0], pixels.shape[1], pixels.shape[2])
        let rgb = c == 3 ? pixels : Tensor.stack([pixels, pixels, pixels]).reshaped([3, h, w])
        return try ImageIO.encode(rgb, format: .webp, lossless: true)
    }

    // MARK: audio

    func audioSection(_ file: FileSamples) throws -> String {
        guard let rate = file.sampleRate, let original = file.samples.first else { return "" }
        let spectrogram = LogMelSpectrogram(sampleRate: rate, nFFT: 2048, hop: 512, mels: 128)
        let mels = file.samples.map { Self.logMel($0.signal, spectrogram) }
        let top = mels[0].max() ?? 0
        var figures = ""
        for (s, mel) in zip(file.samples, mels) {
            let png = try Self.spectrogramPNG(mel, mels: spectrogram.mels, top: top)
            figures += "<figure class=audio><img class=spec alt=\"log-mel spectrogram\" src=\"data:image/png;base64,\(png.base64EncodedString())\">"
                + "<figcaption><b>\(Self.escape(s.codec))</b> \(Self.escape(s.setting)) \(Self.escape(audioCaption(s)))<br>"
                + "<audio controls preload=none src=\"data:audio/flac;base64,\(try Self.flac(s.signal, sampleRate: rate).base64EncodedString())\"></audio></figcaption></figure>\n"
        }
        let seconds = Double(original.signal.shape.last ?? 0) / Double(rate)
        return """
        <section class=file>
        <h2>\(Self.escape(file.file)) <small>\(String(format: "%.1f s", seconds)), \(rate) Hz, \(original.signal.shape[0]) channel(s)</small></h2>
        <p class=note>Log-mel spectrograms: 128 mel bands from 0 Hz (bottom) to \(rate / 2) Hz (top), 80 dB of range under the original's peak.</p>
        <div class="row">\(figures)</div>
        </section>

        """
    }

    func audioCaption(_ s: DecodedSample) -> String {
        "· " + Self.caption(s.metrics, [("kbps", "%.1f kbps"), ("snr", "%.2f dB SNR"), ("log_mel", "log-mel %.3f")])
    }

    /// `[frames, mels]` log10 mel power, averaged over channels.
    static func logMel(_ x: Tensor, _ spectrogram: LogMelSpectrogram) -> [Float] {
        let out = spectrogram.forward(x)
        let plane = out.frames * spectrogram.mels
        var mean = [Float](repeating: 0, count: plane)
        for r in 0..<out.rows { for i in 0..<plane { mean[i] += out.logMel[r * plane + i] / Float(out.rows) } }
        return mean
    }

    /// A colour image of a log-mel spectrogram: frames across, mels upwards, `top - 8 ... top`
    /// (80 dB) through a dark-to-bright colour map.
    static func spectrogramPNG(_ mel: [Float], mels: Int, top: Float) throws -> Data {
        let frames = mel.count / mels
        var pixels = Tensor(zeros: [3, mels, frames])
        let stops: [(Float, Float, Float)] = [(0, 0, 0.02), (0.25, 0.05, 0.45), (0.65, 0.1, 0.45), (0.95, 0.45, 0.1), (1, 0.95, 0.6)]
        pixels.withUnsafeMutableBufferPointer { p in
            for t in 0..<frames {
                for m in 0..<mels {
                    let v = min(1, max(0, (mel[t * mels + m] - (top - 8)) / 8)) * Float(stops.count - 1)
                    let k = min(stops.count - 2, Int(v)), f = v - Float(k)
                    let a = stops[k], b = stops[k + 1]
                    let y = mels - 1 - m
                    p[y * frames + t] = a.0 + (b.0 - a.0) * f
                    p[(mels + y) * frames + t] = a.1 + (b.1 - a.1) * f
                    p[(2 * mels + y) * frames + t] = a.2 + (b.2 - a.2) * f
                }
            }
        }
        return try ImageIO.encode(pixels, format: .png)
    }

    /// 16-bit FLAC bytes of `[C, L]` samples.
    static func flac(_ samples: Tensor, sampleRate: Int) throws -> Data {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-report-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).flac")
        defer { try? FileManager.default.removeItem(at: url) }
        try AudioIO.write(samples, sampleRate: sampleRate, to: url, format: .flac, bitDepth: 16)
        return try FileIO.read(url)
    }

    // MARK: page

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static let style = """
    body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
    h1{font-size:22px}h2{font-size:17px;margin:8px 0}small{color:#666;font-weight:normal}
    .note{color:#555}.charts svg{max-width:100%;height:auto;background:#fff}
    .file{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px;margin:16px 0}
    .row{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}figure{margin:0}
    figcaption{font-size:12px;color:#333;max-width:220px}figure.ov figcaption{max-width:520px}
    canvas.overview{max-width:520px;cursor:crosshair;border:1px solid #ccc}
    canvas.crop{width:200px;height:200px;image-rendering:pixelated;border:1px solid #ccc}
    img.spec{width:420px;height:160px;image-rendering:pixelated;border:1px solid #ccc;display:block}
    audio{width:420px;margin-top:4px}pre{background:#fff;padding:8px;overflow-x:auto;font-size:12px}
    """

    /// Draws the overviews and keeps every crop of a file on the same region.
    static let script = """
    const C=128;
    function pixels(img,x,y){const c=document.createElement('canvas');c.width=C;c.height=C;
      const g=c.getContext('2d');g.drawImage(img,x,y,C,C,0,0,C,C);return g.getImageData(0,0,C,C);}
    // The crop starts on the most detailed 128x128 window of the original (gradient energy).
    function busiest(img,W,H){const c=document.createElement('canvas');c.width=W;c.height=H;
      const g=c.getContext('2d');g.drawImage(img,0,0);const d=g.getImageData(0,0,W,H).data;
      let best=-1,bx=0,by=0;
      for(let y=0;y+C<=H;y+=32)for(let x=0;x+C<=W;x+=32){let e=0;
        for(let v=y;v<y+C;v+=2)for(let u=x;u<x+C-1;u+=2){const i=4*(v*W+u);e+=Math.abs(d[i+1]-d[i+5]);}
        if(e>best){best=e;bx=x;by=y;}}
      return [bx,by];}
    function setup(sec){
      const W=+sec.dataset.w,H=+sec.dataset.h,ov=sec.querySelector('canvas.overview');
      const orig=document.getElementById(ov.dataset.src);
      const s=Math.min(1,520/W);ov.width=Math.round(W*s);ov.height=Math.round(H*s);
      let [cx,cy]=busiest(orig,W,H);
      const diff=sec.querySelector('input.diff');if(location.hash==='#diff')diff.checked=true;const crops=[...sec.querySelectorAll('canvas.crop')];
      function draw(){const g=ov.getContext('2d');g.drawImage(orig,0,0,ov.width,ov.height);
        g.strokeStyle='#ff0';g.lineWidth=2;g.strokeRect(cx*s,cy*s,C*s,C*s);
        const o=pixels(orig,cx,cy);
        for(const c of crops){const img=document.getElementById(c.dataset.src);const d=pixels(img,cx,cy);
          if(diff.checked){for(let i=0;i<d.data.length;i+=4)for(let k=0;k<3;k++)d.data[i+k]=Math.min(255,4*Math.abs(d.data[i+k]-o.data[i+k]));}
          const t=document.createElement('canvas');t.width=C;t.height=C;t.getContext('2d').putImageData(d,0,0);
          const g2=c.getContext('2d');g2.imageSmoothingEnabled=false;g2.drawImage(t,0,0,C,C,0,0,c.width,c.height);}}
      ov.addEventListener('click',e=>{const r=ov.getBoundingClientRect();
        cx=Math.round(Math.min(Math.max(0,(e.clientX-r.left)*ov.width/r.width/s-C/2),Math.max(0,W-C)));
        cy=Math.round(Math.min(Math.max(0,(e.clientY-r.top)*ov.height/r.height/s-C/2),Math.max(0,H-C)));draw();});
      diff.addEventListener('change',draw);draw();
      sec.dataset.drawn=crops.filter(c=>c.getContext('2d').getImageData(c.width/2,c.height/2,1,1).data[3]>0).length;}
    window.addEventListener('load',()=>document.querySelectorAll('section.file[data-w]').forEach(setup));
    """
}
