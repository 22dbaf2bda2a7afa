import Foundation
import WallocCoding
import WallocIO
import WallocModels
import WallocTensor

/// One file of a labelled dataset.
public struct DatasetItem: Sendable, Equatable {
    public var url: URL
    /// The name stored with the item's latents: its path relative to the dataset folder, or the
    /// path as written in the list file.
    public var name: String
    /// Index into `DatasetListing.classes`; -1 for an unlabelled item.
    public var label: Int

    public init(url: URL, name: String, label: Int) {
        self.url = url; self.name = name; self.label = label
    }
}

/// The files of a dataset in a fixed order, with their classes.
///
/// Two layouts are read:
/// - a folder with one sub-folder per class (the class names are the sub-folders' names, sorted;
///   files are searched recursively inside each, hidden entries skipped, sorted by path); a folder
///   without sub-folders is an unlabelled dataset;
/// - a list file, one `path<TAB>label` line per item (paths relative to the list file's folder or
///   absolute; blank lines and lines starting with `#` skipped; the label may be left out for an
///   unlabelled item). When every label is a non-negative integer, labels are those integers and
///   the classes are "0", "1", ... up to the largest; otherwise the classes are the distinct labels,
///   sorted.
///
/// Every item must be an image (png, jpg, jpeg, webp, tif, tiff) or every item audio (wav, flac, ogg);
/// `.wlc` files made by `walloc encode` may stand in for either (their header says which).
public struct DatasetListing: Sendable {
    public var items: [DatasetItem]
    public var classes: [String]
    public var modality: Modality

    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "webp", "tif", "tiff"]
    public static let audioExtensions: Set<String> = ["wav", "flac", "ogg"]
    public static let bitstreamExtension = "wlc"

    public init(items: [DatasetItem], classes: [String], modality: Modality) {
        self.items = items; self.classes = classes; self.modality = modality
    }

    /// Lists a class-folder tree or a list file.
    public static func read(_ path: String) throws -> DatasetListing {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw WallocError("\(path): no such file or directory")
        }
        let listing = isDirectory.boolValue ? try readFolder(URL(fileURLWithPath: path)) : try readList(URL(fileURLWithPath: path))
        return listing
    }

    static func isMedia(_ url: URL) -> Bool {
        let e = url.pathExtension.lowercased()
        return imageExtensions.contains(e) || audioExtensions.contains(e) || e == bitstreamExtension
    }

    /// Whether an item is a `.wlc` file (its latents are read, not computed).
    public static func isBitstream(_ url: URL) -> Bool { url.pathExtension.lowercased() == bitstreamExtension }

    static func readFolder(_ root: URL) throws -> DatasetListing {
        let fm = FileManager.default
        let entries = try fm.contentsOfDirectory(atPath: root.path).filter { !$0.hasPrefix(".") }.sorted()
        var classFolders = [String](), looseFiles = [String]()
        for name in entries {
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: root.appendingPathComponent(name).path, isDirectory: &isDir)
            if isDir.boolValue { classFolders.append(name) } else if isMedia(root.appendingPathComponent(name)) { looseFiles.append(name) }
        }
        var items = [DatasetItem]()
        if classFolders.isEmpty {
            items = looseFiles.map { DatasetItem(url: root.appendingPathComponent($0), name: $0, label: -1) }
        } else {
            if let loose = looseFiles.first {
                throw WallocError("\(root.path): \(loose) lies outside the class folders (give one sub-folder per class)")
            }
            for (label, name) in classFolders.enumerated() {
                let folder = root.appendingPathComponent(name)
                guard let walker = fm.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles]) else {
                    throw WallocError("\(folder.path): cannot list the folder")
                }
                var files = [String]()
                for case let file as URL in walker where isMedia(file) {
                    let relative = String(file.standardizedFileURL.path.dropFirst(folder.standardizedFileURL.path.count + 1))
                    files.append(relative)
                }
                for f in files.sorted() {
                    items.append(DatasetItem(url: folder.appendingPathComponent(f), name: name + "/" + f, label: label))
                }
            }
        }
        guard !items.isEmpty else { throw WallocError("\(root.path): no image, audio or .wlc files") }
        return DatasetListing(items: items, classes: classFolders, modality: try modality(of: items, what: root.path))
    }

    static func readList(_ file: URL) throws -> DatasetListing {
        let text: String
        do {
            text = try String(contentsOf: file, encoding: .utf8)
        } catch {
            throw WallocError("\(file.path): cannot be read as a UTF-8 list of files (\(error.localizedDescription))")
        }
        let base = file.deletingLastPathComponent()
        var entries = [(url: URL, name: String, label: String?)]()
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.hasSuffix("\r") ? String(rawLine.dropLast()) : String(rawLine)
            if line.trimmingCharacters(in: .whitespaces).isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count <= 2, !fields[0].isEmpty else {
                throw WallocError("\(file.path):\(number + 1): expected 'path<TAB>label', got '\(line)'")
            }
            let path = fields[0]
            let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : base.appendingPathComponent(path)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw WallocError("\(file.path):\(number + 1): \(url.path): no such file")
            }
            guard isMedia(url) else {
                throw WallocError("\(file.path):\(number + 1): \(path): not an image, audio or .wlc file (png jpg webp tiff; wav flac ogg; wlc)")
            }
            let label = fields.count == 2 && !fields[1].isEmpty ? fields[1] : nil
            entries.append((url, path, label))
        }
        guard !entries.isEmpty else { throw WallocError("\(file.path): lists no files") }
        let labels = entries.compactMap(\.label)
        let numeric = labels.compactMap { Int($0) }
        var classes: [String]
        var index: (String) -> Int
        if numeric.count == labels.count && numeric.allSatisfy({ $0 >= 0 }) {
            let top = numeric.max() ?? -1
            guard top < 1_000_000 else { throw WallocError("\(file.path): label \(top) is too large for a class index") }
            classes = top >= 0 ? (0...top).map(String.init) : []
            index = { Int($0)! }
        } else {
            classes = Array(Set(labels)).sorted()
            let lookup = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
            index = { lookup[$0]! }
        }
        let items = entries.map { DatasetItem(url: $0.url, name: $0.name, label: $0.label.map(index) ?? -1) }
        return DatasetListing(items: items, classes: classes, modality: try modality(of: items, what: file.path))
    }

    static func modality(of items: [DatasetItem], what: String) throws -> Modality {
        let media = items.filter { !isBitstream($0.url) }
        let images = media.filter { imageExtensions.contains($0.url.pathExtension.lowercased()) }.count
        if media.isEmpty {
            // Only .wlc files: the first one's header says what they hold (the others are checked
            // against the model when converted).
            let url = items[0].url
            do {
                return try WLCFile.decode(try FileIO.read(url)).header.modality == .image ? .image : .audio
            } catch let e as WallocError {
                throw WallocError("\(url.path): \(e.message)")
            }
        }
        if images == media.count { return .image }
        if images == 0 { return .audio }
        throw WallocError("\(what): mixes images and audio; give one kind per dataset")
    }
}
