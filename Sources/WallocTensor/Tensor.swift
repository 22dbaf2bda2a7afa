/// A dense, contiguous, row-major float32 tensor.
///
/// `Tensor` is a value type with copy-on-write storage (a Swift array). Kernels reach the raw
/// buffer through `withUnsafeBufferPointer` / `withUnsafeMutableBufferPointer`; no operation
/// allocates per element.
public struct Tensor: Sendable, Equatable {
    /// The extent of each dimension, outermost first.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `scalars.count == shape.reduce(1, *)`.
    public var scalars: [Float]

    /// Wraps `scalars` with the given shape. The element count must match the shape.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(Tensor.count(of: shape) == scalars.count,
                     "shape \(shape) needs \(Tensor.count(of: shape)) elements, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of the given shape filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: Tensor.count(of: shape)))
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.init(repeating: 0, shape: shape)
    }

    /// A tensor whose contents are unspecified, for outputs a kernel overwrites entirely.
    public init(uninitialized shape: [Int]) {
        let n = Tensor.count(of: shape)
        self.shape = shape
        self.scalars = n == 0 ? [] : [Float](unsafeUninitializedCapacity: n) { _, initialized in initialized = n }
    }

    /// A tensor whose storage is filled by `body`, which must write every element.
    public init(uninitializedShape shape: [Int], _ body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let n = Tensor.count(of: shape)
        self.shape = shape
        // Never `unsafeUninitializedCapacity: 0`: the standard library then writes the count into
        // the empty-array singleton shared by every thread (a data race ThreadSanitizer reports).
        self.scalars = n == 0 ? [] : try [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            try body(buffer)
            initialized = n
        }
    }

    /// The number of elements a shape holds.
    @inlinable
    public static func count(of shape: [Int]) -> Int { shape.reduce(1, *) }

    /// The number of elements.
    public var count: Int { scalars.count }
    /// The number of dimensions.
    public var rank: Int { shape.count }

    /// The same elements viewed with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, scalars: scalars)
    }

    /// Changes the shape in place; the element count must not change.
    public mutating func reshape(_ newShape: [Int]) {
        precondition(Tensor.count(of: newShape) == scalars.count, "cannot reshape \(shape) to \(newShape)")
        shape = newShape
    }

    /// The `index`-th slice along the first dimension, e.g. one sample of a batch.
    public func slice(_ index: Int) -> Tensor {
        precondition(rank >= 1 && index >= 0 && index < shape[0], "slice \(index) out of range for \(shape)")
        let inner = Array(shape.dropFirst())
        let n = Tensor.count(of: inner)
        return Tensor(shape: inner, scalars: Array(scalars[(index * n)..<((index + 1) * n)]))
    }

    /// Stacks equally shaped tensors along a new first dimension.
    public static func stack(_ tensors: [Tensor]) -> Tensor {
        precondition(!tensors.isEmpty, "cannot stack zero tensors")
        let inner = tensors[0].shape
        precondition(tensors.allSatisfy { $0.shape == inner }, "stack needs equal shapes")
        var all = [Float]()
        all.reserveCapacity(tensors.count * tensors[0].count)
        for t in tensors { all.append(contentsOf: t.scalars) }
        return Tensor(shape: [tensors.count] + inner, scalars: all)
    }

    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer { try body($0) }
    }

    /// The largest absolute value (0 for an empty tensor).
    public var maxMagnitude: Float {
        scalars.reduce(0) { Swift.max($0, abs($1)) }
    }

    /// The largest absolute element-wise difference to another tensor of the same shape.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "shapes differ: \(shape) vs \(other.shape)")
        var m: Float = 0
        for i in 0..<count { m = Swift.max(m, abs(scalars[i] - other.scalars[i])) }
        return m
    }
}

/// The single error type of the library: a message meant for a person.
public struct WallocError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
