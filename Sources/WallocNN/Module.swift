import WallocTensor

/// A layer or a composition of layers whose parameters can be enumerated by their reference
/// (PyTorch `state_dict()`) key names.
///
/// Loading, saving and optimisation all go through `visitParameters`; after parameters change,
/// `parametersDidChange()` recomputes derived state (folded weight normalisation, GEMM-ready
/// weight layouts).
public protocol Module: Sendable {
    /// Calls `body` with the full key and a mutable reference to every parameter, in a fixed order.
    mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows
    /// Recomputes state derived from the parameters.
    mutating func parametersDidChange()
}

extension Module {
    public mutating func parametersDidChange() {}

    /// Every parameter by key.
    public func namedParameters(prefix: String = "") -> [(String, Tensor)] {
        var copy = self
        var out = [(String, Tensor)]()
        copy.visitParameters(prefix: prefix) { name, t in out.append((name, t)) }
        return out
    }

    /// The number of scalar parameters.
    public var parameterCount: Int {
        namedParameters().reduce(0) { $0 + $1.1.count }
    }

    /// Replaces every parameter with the tensor of the same key in `store`, checking shapes;
    /// returns the keys it used. Throws naming the first missing key or mismatched shape.
    @discardableResult
    public mutating func load(from store: [String: Tensor], prefix: String = "") throws -> Set<String> {
        var used = Set<String>()
        try visitParameters(prefix: prefix) { name, t in
            guard let value = store[name] else {
                throw WallocError("missing parameter '\(name)' (shape \(t.shape))")
            }
            guard value.shape == t.shape else {
                throw WallocError("parameter '\(name)' has shape \(value.shape), but the configuration needs \(t.shape)")
            }
            t = value
            used.insert(name)
        }
        parametersDidChange()
        return used
    }
}

/// Joins a module prefix and a name the way PyTorch keys do (`a.b.c`).
@inlinable
public func key(_ prefix: String, _ name: String) -> String {
    prefix.isEmpty ? name : prefix + "." + name
}

/// A deterministic source of initial parameter values (xorshift + Box-Muller), so that
/// freshly built modules are reproducible for a seed.
public struct ParameterInitializer: Sendable {
    private var state: UInt64
    private var placeholders = false

    public init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }

    /// An initializer for modules whose parameters are loaded next (`Module.load(from:)`, which
    /// refuses a missing parameter): tensors of the right shapes whose values are left unset, so
    /// that a model's weights are not allocated and zeroed once more before loading.
    public static var forLoading: ParameterInitializer {
        var i = ParameterInitializer(seed: 0)
        i.placeholders = true
        return i
    }

    /// A uniform value in [0, 1).
    public mutating func uniform() -> Float {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Float(state >> 40) / Float(1 << 24)
    }

    /// A tensor with values uniform in [-bound, bound) (PyTorch's default layer initialisation).
    public mutating func uniform(_ shape: [Int], bound: Float) -> Tensor {
        if placeholders { return Tensor(uninitialized: shape) }
        var t = Tensor(zeros: shape)
        for i in 0..<t.count { t.scalars[i] = (2 * uniform() - 1) * bound }
        return t
    }
}
