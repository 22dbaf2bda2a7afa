import Foundation
import Walloc

/// The metric fixtures made by scripts/make_metric_fixtures.py (numpy, scipy, scikit-image).
enum MetricFixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("metrics")

    static func url(_ name: String) -> URL { root.appendingPathComponent(name) }

    static var json: [String: Any] {
        let data = (try? Data(contentsOf: url("metrics.json"))) ?? Data()
        return (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    static func image(_ name: String) throws -> Tensor { try ImageIO.read(url(name)).pixels }
}

/// A smooth deterministic RGB test pattern in [0, 1].
func smoothPattern(height: Int, width: Int) -> Tensor {
    var t = Tensor(zeros: [3, height, width])
    for c in 0..<3 {
        for y in 0..<height {
            for x in 0..<width {
                let v = 0.5 + 0.35 * sin(Double(x) / Double(5 + 3 * c)) * cos(Double(y) / Double(7 + c)) + 0.1 * Double(x + y) / Double(width + height)
                t.scalars[(c * height + y) * width + x] = Float(min(1, max(0, v)))
            }
        }
    }
    return t
}
