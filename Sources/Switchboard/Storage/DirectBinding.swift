import GRDB
import GRDBSQLite

/// A value for a parameter of a statement run by ``GRDB/Database/execute(cached:_:)``.
struct SQLArgument {
    fileprivate enum Value {
        case text(String)
        case integer(Int64)
        case null
    }

    fileprivate let value: Value

    static func text(_ text: String?) -> SQLArgument { SQLArgument(value: text.map(Value.text) ?? .null) }
    static func integer(_ integer: Int64?) -> SQLArgument { SQLArgument(value: integer.map(Value.integer) ?? .null) }
    static func integer(_ integer: Int?) -> SQLArgument { .integer(integer.map(Int64.init)) }
    static func bool(_ bool: Bool) -> SQLArgument { .integer(bool ? 1 : 0) }
}

/// SQLite copies a value bound with this destructor before the bind call returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

extension Database {
    /// Executes a statement of GRDB's cache, its arguments bound through SQLite's C API: for the
    /// writer's statements on every event's path.
    ///
    /// GRDB's `execute(arguments:)` boxes each argument as a `DatabaseValue`, binds them in
    /// closures nested one per argument, and runs its observation hooks around every statement;
    /// that was about 3 % of the gateway's CPU when forwarding events. The tables written this way
    /// have no GRDB observer, so the hooks had nothing to do. Errors are GRDB's `DatabaseError`,
    /// as `execute(arguments:)` throws them.
    func execute(cached sql: String, _ arguments: [SQLArgument]) throws {
        let statement = try cachedStatement(sql: sql).sqliteStatement
        // Every parameter is bound on every run: one left out would keep the previous run's value.
        guard arguments.count == Int(sqlite3_bind_parameter_count(statement)) else {
            throw DatabaseError(resultCode: .SQLITE_MISUSE,
                                message: "\(arguments.count) arguments for \(sqlite3_bind_parameter_count(statement)) parameters", sql: sql)
        }
        sqlite3_reset(statement)  // returns the previous run's error, already reported
        for (offset, argument) in arguments.enumerated() {
            let index = CInt(offset + 1)
            let code: CInt
            switch argument.value {
            case let .text(text):
                // A native string's storage already ends in NUL: no copy here, and the length given saves SQLite a strlen.
                let length = CInt(text.utf8.count)
                code = text.withCString { sqlite3_bind_text(statement, index, $0, length, transient) }
            case let .integer(integer):
                code = sqlite3_bind_int64(statement, index, integer)
            case .null:
                code = sqlite3_bind_null(statement, index)
            }
            guard code == SQLITE_OK else { throw failure(code, sql) }
        }
        let code = sqlite3_step(statement)
        sqlite3_reset(statement)
        guard code == SQLITE_DONE else { throw failure(code, sql) }
    }

    private func failure(_ code: CInt, _ sql: String) -> DatabaseError {
        let message = sqliteConnection.map { String(cString: sqlite3_errmsg($0)) }
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
    }
}
