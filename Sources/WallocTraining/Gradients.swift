import WallocTensor
import WallocNN

/// Parameter gradients, keyed exactly like `Module.visitParameters(prefix:)` names the parameters
/// (the reference `state_dict()` keys), so optimisers and checkpoints pair them by name.
///
/// Layer backward passes follow one convention: a layer `L` offers
/// `func forward(training x: Tensor) -> (Tensor, L.Tape)` that also returns what its backward pass
/// needs, and `func backward(_ tape: L.Tape, _ gradOutput: Tensor, prefix: String,
/// into gradients: inout Gradients) -> Tensor` that adds its parameter gradients (under the same
/// keys `visitParameters(prefix:)` uses) and returns the gradient with respect to its input.
public struct Gradients: Sendable {
    public private(set) var values: [String: Tensor] = [:]

    public init() {}

    /// Adds `gradient` to the gradient stored under `name` (or stores it).
    public mutating func accumulate(_ name: String, _ gradient: Tensor) {
        if var existing = values[name] {
            precondition(existing.shape == gradient.shape, "gradient shape mismatch for \(name)")
            gradient.withUnsafeBufferPointer { g in
                existing.withUnsafeMutableBufferPointer { e in
                    VectorMath.add(g.baseAddress!, into: e.baseAddress!, count: e.count)
                }
            }
            values[name] = existing
        } else {
            values[name] = gradient
        }
    }

    public subscript(name: String) -> Tensor? { values[name] }

    /// Drops the gradients of the parameters `shouldRemove` selects (frozen parameters).
    public mutating func remove(where shouldRemove: (String) -> Bool) {
        values = values.filter { !shouldRemove($0.key) }
    }
}
