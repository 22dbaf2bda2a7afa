import ArgumentParser
import Foundation
import Walloc

/// Output-file rules shared by every command that writes: never replace an input, never replace
/// an existing file without `--force`, always write atomically.
struct OutputPolicy {
    var force: Bool

    /// Fails when `output` is one of `inputs`, or exists and `--force` was not given.
    func check(_ output: URL, inputs: [URL]) throws {
        let out = output.standardizedFileURL.resolvingSymlinksInPath().path
        for input in inputs where input.standardizedFileURL.resolvingSymlinksInPath().path == out {
            throw WallocError("\(output.path): is also an input; refusing to overwrite an input")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output.path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { throw WallocError("\(output.path): is a directory") }
            if !force { throw WallocError("\(output.path): already exists (use --force to overwrite)") }
        }
    }
}

/// Reads a `.npy` signal or latent tensor, with the file named in any error.
func readTensor(_ path: String) throws -> Tensor {
    let url = URL(fileURLWithPath: path)
    guard url.pathExtension.lowercased() == "npy" else {
        throw WallocError("\(path): expected a .npy file (float32)")
    }
    do {
        return try NPY.read(url)
    } catch let e as WallocError where !e.message.hasPrefix(path) {
        throw WallocError("\(path): \(e.message)")
    }
}

/// Drops a leading batch dimension of 1 (`[1, C, ...]` -> `[C, ...]`); rejects larger batches.
func dropBatch(_ t: Tensor, rank: Int, what: String) throws -> Tensor {
    if t.rank == rank + 1 {
        guard t.shape[0] == 1 else {
            throw WallocError("\(what) has a batch of \(t.shape[0]) (shape \(t.shape)); give one item per file")
        }
        return t.reshaped(Array(t.shape.dropFirst()))
    }
    return t
}

/// Loads a model directory, naming the directory in any error.
func loadModel(_ path: String) throws -> Codec {
    try Codec.load(from: URL(fileURLWithPath: path))
}

/// Writes to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Prints a JSON value (dictionaries with sorted keys), pretty-printed.
func printJSON(_ value: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}
