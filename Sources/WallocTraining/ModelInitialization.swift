import Foundation
import WallocModels
import WallocTensor

extension Codec {
    /// A codec with the recipe's configuration `config` and every parameter of the trained model
    /// in `directory`, for fine-tuning (`"init": {"method": "model", "path": ...}`). The networks
    /// must match parameter for parameter; settings without parameters (the `rate` section: steps,
    /// dead zone, default quality) are the recipe's.
    public static func fineTuning(from directory: URL, config: ModelConfig) throws -> Codec {
        let trained = try Codec.load(from: directory)
        do {
            return try Codec(config: config, parameters: Dictionary(uniqueKeysWithValues: trained.namedParameters()))
        } catch let e as WallocError {
            throw WallocError("init.path \(directory.path): the trained model does not fit the recipe's model (\(e.message))")
        }
    }
}
