import Foundation
import WallocIO
import WallocNN
import WallocTensor
import WallocTraining

/// The shape of a small convolutional classifier.
public struct ClassifierConfig: Codable, Sendable, Equatable {
    /// 2: inputs `[C, H, W]` (2D convolutions); 1: inputs `[C, L]` (1D convolutions).
    public var spatialRank: Int
    public var inputChannels: Int
    public var classes: Int
    /// Channels of each stage; stages after the first start with max pooling.
    public var widths: [Int]
    /// Convolutions (each followed by GroupNorm and SiLU) per stage.
    public var convsPerStage: Int
    public var kernelSize: Int
    /// Max pooling window (and stride) between stages.
    public var pool: Int
    public var groups: Int
    /// How the last stage's feature maps become one vector: "avg" (global average pooling) or
    /// "max" (global max pooling, for finding small objects anywhere).
    public var head: String

    public init(spatialRank: Int, inputChannels: Int, classes: Int, widths: [Int] = [32, 64, 128], convsPerStage: Int = 2,
                kernelSize: Int = 3, pool: Int = 2, groups: Int = 8, head: String = "avg") {
        self.spatialRank = spatialRank; self.inputChannels = inputChannels; self.classes = classes; self.widths = widths
        self.convsPerStage = convsPerStage; self.kernelSize = kernelSize; self.pool = pool; self.groups = groups; self.head = head
    }

    enum CodingKeys: String, CodingKey {
        case spatialRank = "spatial_rank", inputChannels = "input_channels", classes, widths
        case convsPerStage = "convs_per_stage", kernelSize = "kernel_size", pool, groups, head
    }

    public func validate() throws {
        guard spatialRank == 1 || spatialRank == 2 else { throw WallocError("classifier spatial rank must be 1 or 2") }
        guard inputChannels >= 1, classes >= 2 else { throw WallocError("a classifier needs at least one input channel and two classes") }
        guard !widths.isEmpty, widths.allSatisfy({ $0 >= 1 && $0 % min(groups, $0) == 0 }) else {
            throw WallocError("classifier widths \(widths) must be positive multiples of the group count \(groups)")
        }
        guard convsPerStage >= 1, kernelSize >= 1, kernelSize % 2 == 1, pool >= 1, groups >= 1 else {
            throw WallocError("classifier needs convs_per_stage >= 1, an odd kernel size, pool >= 1 and groups >= 1")
        }
        guard head == "avg" || head == "max" else { throw WallocError("classifier head pooling must be avg or max, got \(head)") }
    }
}

/// A convolution of either rank.
public enum ConvLayer: Sendable {
    case two(Conv2d)
    case one(Conv1d)
}

/// A convolution of either rank's tape.
public enum ConvLayerTape: Sendable {
    case two(Conv2dTape)
    case one(Conv1dTape)
}

/// A small convolutional classifier: stages of (convolution, GroupNorm, SiLU) with max pooling
/// between stages, global average (or max) pooling and a linear head. Parameter keys:
/// `stages.S.J.conv.weight`, `stages.S.J.norm.weight`, ..., `head.weight`, `head.bias`.
public struct Classifier: Module {
    public let config: ClassifierConfig
    public var convs: [[ConvLayer]]
    public var norms: [[GroupNorm]]
    public var head: Linear

    public init(config: ClassifierConfig, seed: UInt64 = 0) throws {
        try config.validate()
        self.config = config
        var initializer = ParameterInitializer(seed: seed)
        var convs = [[ConvLayer]](), norms = [[GroupNorm]]()
        var channels = config.inputChannels
        for width in config.widths {
            var stageConvs = [ConvLayer](), stageNorms = [GroupNorm]()
            for _ in 0..<config.convsPerStage {
                let k = config.kernelSize
                if config.spatialRank == 2 {
                    stageConvs.append(.two(Conv2d(inChannels: channels, outChannels: width, kernelSize: k, padding: k / 2, initializer: &initializer)))
                } else {
                    stageConvs.append(.one(Conv1d(inChannels: channels, outChannels: width, kernelSize: k, padding: k / 2, initializer: &initializer)))
                }
                stageNorms.append(GroupNorm(groups: min(config.groups, width), channels: width, eps: 1e-5))
                channels = width
            }
            convs.append(stageConvs)
            norms.append(stageNorms)
        }
        self.convs = convs
        self.norms = norms
        head = Linear(inFeatures: channels, outFeatures: config.classes, initializer: &initializer)
    }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        for s in convs.indices {
            for j in convs[s].indices {
                let p = key(prefix, "stages.\(s).\(j)")
                switch convs[s][j] {
                case .two(var c): try c.visitParameters(prefix: key(p, "conv"), body); convs[s][j] = .two(c)
                case .one(var c): try c.visitParameters(prefix: key(p, "conv"), body); convs[s][j] = .one(c)
                }
                try norms[s][j].visitParameters(prefix: key(p, "norm"), body)
            }
        }
        try head.visitParameters(prefix: key(prefix, "head"), body)
    }

    public mutating func parametersDidChange() {
        for s in convs.indices {
            for j in convs[s].indices {
                switch convs[s][j] {
                case .two(var c): c.parametersDidChange(); convs[s][j] = .two(c)
                case .one(var c): c.parametersDidChange(); convs[s][j] = .one(c)
                }
            }
        }
    }

    /// Everything `backward` needs.
    public struct Tape: Sendable {
        var convs: [[ConvLayerTape]] = []
        var norms: [[GroupNormTape]] = []
        var pools: [MaxPoolTape?] = []
        var pooledShape: [Int] = []
        var headPool: MaxPoolTape?
        var features: Tensor = Tensor(zeros: [0])
    }

    /// Logits `[N, classes]` for a batch `[N, C, H, W]` / `[N, C, L]`, with the tape.
    public func forward(training x: Tensor) -> (Tensor, Tape) {
        precondition(x.rank == config.spatialRank + 2 && x.shape[1] == config.inputChannels,
                     "classifier expects [N, \(config.inputChannels), \(config.spatialRank == 2 ? "H, W" : "L")], got \(x.shape)")
        var tape = Tape()
        var h = x
        for s in convs.indices {
            if s > 0 && config.pool > 1 {
                let (p, t) = MaxPool.forward(h, window: config.pool)
                h = p
                tape.pools.append(t)
            } else {
                tape.pools.append(nil)
            }
            var stageConvs = [ConvLayerTape](), stageNorms = [GroupNormTape]()
            for j in convs[s].indices {
                switch convs[s][j] {
                case .two(let c): let (y, t) = c.forward(training: h); h = y; stageConvs.append(.two(t))
                case .one(let c): let (y, t) = c.forward(training: h); h = y; stageConvs.append(.one(t))
                }
                let (y, t) = norms[s][j].forward(training: h, silu: true)
                h = y
                stageNorms.append(t)
            }
            tape.convs.append(stageConvs)
            tape.norms.append(stageNorms)
        }
        tape.pooledShape = h.shape
        var features: Tensor
        if config.head == "max" {
            let (f, t) = GlobalMaxPool.forward(h)
            features = f
            tape.headPool = t
        } else {
            features = GlobalAveragePool.forward(h)
        }
        tape.features = features
        return (head.apply(features), tape)
    }

    /// Adds every parameter gradient for the logits' gradient `g`; returns the input gradient
    /// when `inputGradient` is set (an empty tensor otherwise, which saves the first layer's
    /// input-gradient product).
    @discardableResult
    public func backward(_ tape: Tape, _ g: Tensor, into gradients: inout Gradients, inputGradient: Bool = false) -> Tensor {
        var d = head.backward(tape.features, g, prefix: "head", into: &gradients)
        d = tape.headPool.map { GlobalMaxPool.backward($0, d) } ?? GlobalAveragePool.backward(d, inputShape: tape.pooledShape)
        for s in convs.indices.reversed() {
            for j in convs[s].indices.reversed() {
                let p = "stages.\(s).\(j)"
                d = norms[s][j].backward(tape.norms[s][j], d, prefix: key(p, "norm"), into: &gradients)
                let needInput = inputGradient || s > 0 || j > 0
                switch (convs[s][j], tape.convs[s][j]) {
                case (.two(let c), .two(let t)): d = c.backward(t, d, prefix: key(p, "conv"), into: &gradients, inputGradient: needInput)
                case (.one(let c), .one(let t)): d = c.backward(t, d, prefix: key(p, "conv"), into: &gradients, inputGradient: needInput)
                default: preconditionFailure("tape does not match the layer")
                }
            }
            if let pool = tape.pools[s] { d = MaxPool.backward(pool, d) }
        }
        return d
    }

    /// Logits for a batch (inference).
    public func logits(_ x: Tensor) -> Tensor { forward(training: x).0 }
}
