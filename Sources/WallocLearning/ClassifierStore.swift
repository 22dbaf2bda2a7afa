import Foundation
import WallocIO
import WallocNN
import WallocTensor

/// Everything about a trained classifier but its weights: `classifier.json` in its folder.
public struct ClassifierDescription: Codable, Sendable {
    public var config: ClassifierConfig
    public var transform: InputTransform
    public var classes: [String]
    /// What it was trained on: the dataset's representation, codec fingerprint, dtype and size.
    public var representation: DatasetRepresentation
    public var modelFingerprint: String
    public var dtype: String
    public var trainingItems: Int
    /// Bytes of the training inputs as stored (items x values x bytes per value).
    public var trainingInputBytes: Int
    public var options: ClassifierTrainingOptions
    public var history: [EpochRecord]
    public var parameters: Int

    public init(config: ClassifierConfig, transform: InputTransform, classes: [String], representation: DatasetRepresentation,
                modelFingerprint: String, dtype: String, trainingItems: Int, trainingInputBytes: Int,
                options: ClassifierTrainingOptions, history: [EpochRecord], parameters: Int) {
        self.config = config; self.transform = transform; self.classes = classes; self.representation = representation
        self.modelFingerprint = modelFingerprint; self.dtype = dtype; self.trainingItems = trainingItems
        self.trainingInputBytes = trainingInputBytes; self.options = options; self.history = history; self.parameters = parameters
    }

    enum CodingKeys: String, CodingKey {
        case config, transform, classes, representation, modelFingerprint = "model_fingerprint", dtype
        case trainingItems = "training_items", trainingInputBytes = "training_input_bytes", options, history, parameters
    }
}

/// Saving and loading a classifier folder: `classifier.json` and `model.safetensors`.
public enum ClassifierStore {
    public static let descriptionFile = "classifier.json"
    public static let weightsFile = "model.safetensors"

    /// Writes both files atomically into `folder` (created if needed).
    public static func save(_ model: Classifier, description: ClassifierDescription, to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let tensors = Dictionary(uniqueKeysWithValues: model.namedParameters())
        try Safetensors(tensors: tensors, metadata: ["format": "walloc-classifier/1"]).write(to: folder.appendingPathComponent(weightsFile))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileIO.writeAtomically(try encoder.encode(description) + Data("\n".utf8), to: folder.appendingPathComponent(descriptionFile))
    }

    /// Loads a classifier folder.
    public static func load(_ folder: URL) throws -> (Classifier, ClassifierDescription) {
        let url = folder.appendingPathComponent(descriptionFile)
        let description: ClassifierDescription
        do {
            description = try JSONDecoder().decode(ClassifierDescription.self, from: try FileIO.read(url))
        } catch let e as WallocError {
            throw e
        } catch {
            throw WallocError("\(url.path): not a classifier description (\(error))")
        }
        var model = try Classifier(config: description.config)
        do {
            try model.load(from: try Safetensors.read(folder.appendingPathComponent(weightsFile)).tensors)
        } catch let e as WallocError {
            throw WallocError("\(folder.appendingPathComponent(weightsFile).path): \(e.message)")
        }
        return (model, description)
    }
}
