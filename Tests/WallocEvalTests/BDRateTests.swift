import Foundation
import Testing
import Walloc

@Suite("Bjøntegaard delta rate")
struct BDRateTests {
    static let anchor = [(0.12, 26.1), (0.25, 28.9), (0.5, 31.8), (0.9, 34.5), (1.6, 37.6), (2.4, 40.2)].map { RDPoint(rate: $0.0, quality: $0.1) }

    @Test("A curve with every rate scaled by k has a BD-rate of 100 (k - 1)", arguments: BDRate.Method.allCases, [0.8, 1.25, 0.5])
    func scaledCurve(method: BDRate.Method, k: Double) throws {
        let test = BDRateTests.anchor.map { RDPoint(rate: $0.rate * k, quality: $0.quality) }
        let r = try BDRate.compute(anchor: BDRateTests.anchor, test: test, method: method)
        #expect(abs(r.percent - 100 * (k - 1)) < 1e-9, "\(r.percent)")
        #expect(r.qualityRange == 26.1...40.2)
        // Swapping anchor and test inverts the ratio.
        let back = try BDRate.compute(anchor: test, test: BDRateTests.anchor, method: method)
        #expect(abs(back.percent - 100 * (1 / k - 1)) < 1e-9)
    }

    @Test("Matches numpy's polyfit and scipy's PCHIP on the fixture curves", arguments: BDRate.Method.allCases)
    func fixture(method: BDRate.Method) throws {
        let bd = try #require(MetricFixtures.json["bd_rate"] as? [String: Any])
        let curves = try #require(bd["curves"] as? [String: [Double]])
        let a = zip(curves["a_rate"]!, curves["a_quality"]!).map { RDPoint(rate: $0, quality: $1) }
        let b = zip(curves["b_rate"]!, curves["b_quality"]!).map { RDPoint(rate: $0, quality: $1) }
        let r = try BDRate.compute(anchor: a, test: b.reversed(), method: method)
        #expect(abs(r.percent - (bd[method.rawValue] as! Double)) < 1e-9, "\(method): \(r.percent)")
    }

    @Test("One test point: the rate difference at its quality")
    func singlePoint() throws {
        let onCurve = try BDRate.compute(anchor: BDRateTests.anchor, test: [RDPoint(rate: 0.5, quality: 31.8)])
        #expect(abs(onCurve.percent) < 1e-12 && onCurve.method == "point")
        let above = try BDRate.compute(anchor: BDRateTests.anchor, test: [RDPoint(rate: 0.55, quality: 31.8)])
        #expect(abs(above.percent - 10) < 1e-9)
        // Between two nodes, on a straight line in (quality, log rate), PCHIP is exact.
        let line = [RDPoint(rate: 0.1, quality: 20), RDPoint(rate: 1, quality: 30), RDPoint(rate: 10, quality: 40)]
        let mid = try BDRate.compute(anchor: line, test: [RDPoint(rate: 0.5, quality: 25)])
        #expect(abs(mid.percent - 100 * (0.5 / pow(10, -0.5) - 1)) < 1e-9)
    }

    @Test("Quality at a rate: PCHIP in log rate, exact on nodes and on straight lines")
    func qualityAtRate() {
        let a = BDRateTests.anchor
        #expect(BDRate.quality(at: 0.5, on: a.reversed()) == 31.8)
        #expect(BDRate.quality(at: 0.05, on: a) == nil && BDRate.quality(at: 3, on: a) == nil)
        #expect(BDRate.quality(at: 1, on: [a[0]]) == nil)
        let line = [RDPoint(rate: 0.1, quality: 20), RDPoint(rate: 1, quality: 30), RDPoint(rate: 10, quality: 40)]
        #expect(abs(BDRate.quality(at: pow(10, -0.5), on: line)! - 25) < 1e-12)
        let q = BDRate.quality(at: 0.7, on: a)!
        #expect(q > 31.8 && q < 34.5)
    }

    @Test("No overlap, too few points, unusable points")
    func errors() {
        let low = [RDPoint(rate: 0.1, quality: 20), RDPoint(rate: 0.2, quality: 22)]
        let high = [RDPoint(rate: 1, quality: 30), RDPoint(rate: 2, quality: 33)]
        #expect(throws: WallocError.self) { try BDRate.compute(anchor: low, test: high) }
        #expect(throws: WallocError.self) { try BDRate.compute(anchor: low, test: low, method: .cubic) }
        #expect(throws: WallocError.self) { try BDRate.compute(anchor: low, test: [RDPoint(rate: 1, quality: 40)]) }
        let junk = [RDPoint(rate: 0, quality: 20), RDPoint(rate: 1, quality: .nan), RDPoint(rate: 0.3, quality: 25)]
        #expect(throws: WallocError.self) { try BDRate.compute(anchor: junk, test: low) }
    }
}
