import Dispatch
import Foundation
import GRDB
import Synchronization
import Testing
@testable import Switchboard

@Suite("Group commit")
struct GroupCommitTests {
    struct Refused: Error {}

    /// A database with one table `t (n)`, and a group commit on it.
    static func table() async throws -> (DatabasePool, GroupCommit, TemporaryDirectory) {
        let directory = try TemporaryDirectory()
        let pool = try DatabasePool(path: directory.file("db.sqlite"))
        try await pool.write { db in try db.execute(sql: "CREATE TABLE t (n INTEGER PRIMARY KEY)") }
        return (pool, GroupCommit(writer: pool), directory)
    }

    /// A count shared with writes' closures.
    final class Counter: Sendable {
        private let count = Atomic(0)
        func add() { count.add(1, ordering: .relaxed) }
        var value: Int { count.load(ordering: .relaxed) }
    }

    /// Whether the first write was let through.
    final class Flag: Sendable {
        private let flag = Atomic(false)
        func set() { flag.store(true, ordering: .relaxed) }
        var isSet: Bool { flag.load(ordering: .relaxed) }
    }

    @Test("a write that fails in a shared transaction is undone alone; the others commit once")
    func failingWriteFailsAlone() async throws {
        let (pool, commits, directory) = try await Self.table()
        _ = directory  // kept until the end of the test

        // The first write holds the writer (on its own thread, not the concurrency pool) until the
        // others have queued, so that they all join its transaction.
        let gate = DispatchSemaphore(value: 0)
        let opened = Flag()
        let firstRuns = Counter()
        let first = Task {
            try await commits.write { db in
                firstRuns.add()
                if !opened.isSet {
                    _ = gate.wait(timeout: .now() + 5)
                    opened.set()
                }
                try db.execute(sql: "INSERT INTO t (n) VALUES (0)")
            }
        }
        try await Sleep.for(.milliseconds(100))
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for n in 1 ... 20 {
                group.addTask {
                    do {
                        try await commits.write { db in
                            try db.execute(sql: "INSERT INTO t (n) VALUES (?)", arguments: [n])
                            if n == 7 { throw Refused() }  // after its own insert, which must be undone
                        }
                        return (n, true)
                    } catch {
                        return (n, false)
                    }
                }
            }
            try? await Sleep.for(.milliseconds(300))
            gate.signal()
            var results: [Int: Bool] = [:]
            for await (n, ok) in group { results[n] = ok }
            return results
        }
        try await first.value

        #expect(results.filter { !$0.value }.map(\.key) == [7], "only the failing write failed")
        let rows = try await pool.read { db in try Int.fetchAll(db, sql: "SELECT n FROM t ORDER BY n") }
        #expect(rows == [0, 1, 2, 3, 4, 5, 6] + Array(8 ... 20), "the failing write's own insert was undone")
        #expect(firstRuns.value == 2,
                "the shared transaction was rolled back and written again with a savepoint per write")
    }

    @Test("writes without failures run once")
    func writesRunOnce() async throws {
        let (pool, commits, directory) = try await Self.table()
        _ = directory  // kept until the end of the test
        let runs = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 1 ... 50 {
                group.addTask {
                    try await commits.write { db in
                        runs.add()
                        try db.execute(sql: "INSERT INTO t (n) VALUES (?)", arguments: [n])
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(runs.value == 50)
        #expect(try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM t") } == 50)
    }
}
