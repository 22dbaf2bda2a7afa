import Foundation
import Testing
import Walloc

@Suite("--shard: I/N, and auto from Slurm job arrays and Kubernetes Indexed Jobs")
struct WorkerShardTests {
    @Test("I/N as given; malformed or out of range values are errors")
    func given() throws {
        #expect(try WorkerShard.parse("2/5", environment: [:]) == WorkerShard(index: 2, count: 5))
        for bad in ["0/3", "4/3", "2", "a/b", "1/0", "", "1/2/3", "auto/x"] {
            #expect(throws: WallocError.self, "\(bad)") { try WorkerShard.parse(bad, environment: [:]) }
        }
    }

    @Test("Slurm arrays: position in the array, whatever its first index and step")
    func slurm() throws {
        func shard(_ id: Int, min: Int, step: Int? = nil, count: Int, spec: String = "auto") throws -> WorkerShard {
            var env = ["SLURM_ARRAY_TASK_ID": "\(id)", "SLURM_ARRAY_TASK_MIN": "\(min)", "SLURM_ARRAY_TASK_COUNT": "\(count)"]
            if let step { env["SLURM_ARRAY_TASK_STEP"] = "\(step)" }
            return try WorkerShard.parse(spec, environment: env)
        }
        // --array=0-3, 1-4 and 0-6:2 all give workers 1...4 of 4.
        #expect(try (0...3).map { try shard($0, min: 0, count: 4).index } == [1, 2, 3, 4])
        #expect(try (1...4).map { try shard($0, min: 1, count: 4).index } == [1, 2, 3, 4])
        #expect(try [0, 2, 4, 6].map { try shard($0, min: 0, step: 2, count: 4).index } == [1, 2, 3, 4])
        #expect(try shard(3, min: 0, count: 4).count == 4)
        #expect(try shard(3, min: 0, count: 4).source.contains("Slurm"))
        #expect(try shard(2, min: 0, count: 4, spec: "auto/4") == shard(2, min: 0, count: 4))
        // A count that contradicts the array, or a task outside it, is refused.
        #expect(throws: WallocError.self) { try shard(2, min: 0, count: 4, spec: "auto/3") }
        #expect(throws: WallocError.self) { try shard(3, min: 0, step: 2, count: 4) }
        #expect(throws: WallocError.self) { try WorkerShard.parse("auto", environment: ["SLURM_ARRAY_TASK_ID": "x"]) }
        // No count: auto/N supplies it.
        #expect(try WorkerShard.parse("auto/2", environment: ["SLURM_ARRAY_TASK_ID": "1"]) == WorkerShard(index: 2, count: 2, source: "Slurm array task 1"))
    }

    @Test("Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX + 1, the count given as auto/N")
    func kubernetes() throws {
        let env = ["JOB_COMPLETION_INDEX": "2"]
        let w = try WorkerShard.parse("auto/3", environment: env)
        #expect(w.index == 3 && w.count == 3 && w.source.contains("Kubernetes"))
        #expect(throws: WallocError.self) { try WorkerShard.parse("auto", environment: env) }
        #expect(throws: WallocError.self) { try WorkerShard.parse("auto/2", environment: env) }
        do { _ = try WorkerShard.parse("auto", environment: [:]) } catch let e as WallocError {
            #expect(e.message.contains("SLURM_ARRAY_TASK_ID") && e.message.contains("JOB_COMPLETION_INDEX"))
        }
    }
}
