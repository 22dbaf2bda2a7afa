import Foundation
import WallocTensor

/// Which worker of how many this process is, for `--shard`: given as `I/N` (1-based), or
/// `auto` / `auto/N` read from the job engine's environment.
///
/// - Slurm job arrays (`sbatch --array=…`): the index is the task's position in the array,
///   `(SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP + 1`, the count
///   `SLURM_ARRAY_TASK_COUNT`, so `--array=0-3`, `1-4` and `0-6:2` all give workers 1…4 of 4.
/// - Kubernetes Indexed Jobs: the index is `JOB_COMPLETION_INDEX + 1`; the Job does not tell its
///   pods how many completions it has, so the count comes from `auto/N`.
public struct WorkerShard: Equatable, Sendable {
    /// 1-based worker index and worker count.
    public var index: Int, count: Int
    /// Where they came from ("given", "Slurm array", "Kubernetes indexed job").
    public var source: String

    public init(index: Int, count: Int, source: String = "given") {
        self.index = index; self.count = count; self.source = source
    }

    /// Parses a `--shard` value against an environment (the process's by default).
    public static func parse(_ text: String, environment env: [String: String] = ProcessInfo.processInfo.environment) throws -> WorkerShard {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2, !parts[0].isEmpty else { throw WallocError("--shard must be I/N, auto or auto/N, got '\(text)'") }
        var given: Int?
        if parts.count == 2 {
            guard let n = Int(parts[1]), n >= 1 else { throw WallocError("--shard \(text): the count must be a positive integer") }
            given = n
        }
        let shard: WorkerShard
        if parts[0].lowercased() == "auto" {
            shard = try fromEnvironment(env, count: given)
        } else {
            guard let i = Int(parts[0]), let n = given else { throw WallocError("--shard must be I/N, auto or auto/N, got '\(text)'") }
            shard = WorkerShard(index: i, count: n)
        }
        guard shard.count >= 1, (1...shard.count).contains(shard.index) else {
            throw WallocError("--shard \(text): worker \(shard.index) of \(shard.count) (\(shard.source)); expected 1 <= I <= N")
        }
        return shard
    }

    static func fromEnvironment(_ env: [String: String], count given: Int?) throws -> WorkerShard {
        func integer(_ key: String) throws -> Int? {
            guard let v = env[key], !v.isEmpty else { return nil }
            guard let n = Int(v.trimmingCharacters(in: .whitespaces)) else { throw WallocError("--shard auto: \(key)='\(v)' is not an integer") }
            return n
        }
        if let id = try integer("SLURM_ARRAY_TASK_ID") {
            let first = try integer("SLURM_ARRAY_TASK_MIN") ?? 0
            let step = max(1, try integer("SLURM_ARRAY_TASK_STEP") ?? 1)
            guard id >= first, (id - first) % step == 0 else {
                throw WallocError("--shard auto: SLURM_ARRAY_TASK_ID \(id) is not in an array starting at \(first) with step \(step)")
            }
            let slurmCount = try integer("SLURM_ARRAY_TASK_COUNT")
            if let given, let slurmCount, given != slurmCount {
                throw WallocError("--shard auto/\(given): the Slurm array has \(slurmCount) tasks (SLURM_ARRAY_TASK_COUNT)")
            }
            guard let n = given ?? slurmCount else {
                throw WallocError("--shard auto: SLURM_ARRAY_TASK_COUNT is not set; give the count as --shard auto/N")
            }
            return WorkerShard(index: (id - first) / step + 1, count: n, source: "Slurm array task \(id)")
        }
        if let index = try integer("JOB_COMPLETION_INDEX") {
            guard let n = given else {
                throw WallocError("--shard auto: a Kubernetes Indexed Job does not tell its pods the number of completions; give it as --shard auto/N")
            }
            guard index >= 0 else { throw WallocError("--shard auto: JOB_COMPLETION_INDEX \(index) is negative") }
            return WorkerShard(index: index + 1, count: n, source: "Kubernetes completion index \(index)")
        }
        throw WallocError("--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) is set; give --shard I/N")
    }
}
