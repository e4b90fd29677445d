import Foundation

/// When a `schedule` trigger fires: at the times of a cron expression in a time zone, or at every
/// multiple of a period since the Unix epoch (`every: 10m` fires at :00, :10, :20, ...).
public enum Schedule: Sendable, Equatable {
    case every(Duration)
    case cron(CronSchedule)

    /// The first tick strictly after `time`.
    public func next(after time: Date) -> Date? {
        switch self {
        case let .every(period):
            let seconds = period.timeInterval
            guard seconds > 0 else { return nil }
            return Date(timeIntervalSince1970: (floor(time.timeIntervalSince1970 / seconds) + 1) * seconds)
        case let .cron(cron):
            return cron.next(after: time)
        }
    }

    /// The last tick in `(after, through]`, if any: what a schedule that was not looked at
    /// meanwhile owes (one run, not one per tick).
    public func lastTick(after start: Date, through end: Date) -> Date? {
        guard let first = next(after: start), first <= end else { return nil }
        switch self {
        case let .every(period):
            let seconds = period.timeInterval
            return Date(timeIntervalSince1970: floor(end.timeIntervalSince1970 / seconds) * seconds)
        case .cron:
            // Walk forward; a cron fires at most once a minute, and a gateway is down for days, not decades.
            var last = first
            for _ in 0 ..< 600_000 {
                guard let tick = next(after: last), tick <= end else { return last }
                last = tick
            }
            return last
        }
    }

    /// As the configuration writes it.
    public var description: String {
        switch self {
        case let .every(period): "every \(ConfigDuration.format(period))"
        case let .cron(cron): "cron \(cron.expression) (\(cron.timeZone.identifier))"
        }
    }
}

/// A five-field cron expression (minute, hour, day of month, month, day of week) in a time zone.
/// Fields take `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n` and `a-b/n`, and month and
/// day names (`JAN`, `MON`); Sunday is 0 or 7. When both day fields are restricted, a day that
/// matches either fires (as cron does).
public struct CronSchedule: Sendable, Equatable {
    public let expression: String
    public let timeZone: TimeZone
    let minutes: Set<Int>
    let hours: Set<Int>
    let days: Set<Int>
    let months: Set<Int>
    let weekdays: Set<Int>
    let daysRestricted: Bool
    let weekdaysRestricted: Bool

    /// Why an expression is not a cron expression: the field and what is wrong with it.
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public init(_ expression: String, timeZone: TimeZone) throws(Invalid) {
        let fields = expression.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard fields.count == 5 else {
            throw Invalid(description: "a cron expression has five fields (minute hour day month weekday), got \(fields.count)")
        }
        self.expression = expression
        self.timeZone = timeZone
        minutes = try Self.field(fields[0], name: "minute", range: 0 ... 59)
        hours = try Self.field(fields[1], name: "hour", range: 0 ... 23)
        days = try Self.field(fields[2], name: "day of month", range: 1 ... 31)
        months = try Self.field(fields[3], name: "month", range: 1 ... 12, names: Self.monthNames)
        var weekdays = try Self.field(fields[4], name: "day of week", range: 0 ... 7, names: Self.dayNames)
        if weekdays.remove(7) != nil { weekdays.insert(0) }
        self.weekdays = weekdays
        daysRestricted = fields[2] != "*"
        weekdaysRestricted = fields[4] != "*"
    }

    static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    static let dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    private static func field(_ text: String, name: String, range: ClosedRange<Int>, names: [String] = []) throws(Invalid) -> Set<Int> {
        func value(_ part: Substring) throws(Invalid) -> Int {
            if let number = Int(part), range.contains(number) { return number }
            if let index = names.firstIndex(of: part.uppercased()) { return index + (names.count == 12 ? 1 : 0) }
            throw Invalid(description: "\(name) '\(part)' is not in \(range.lowerBound)-\(range.upperBound)")
        }
        var values = Set<Int>()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = item.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2, !pieces[0].isEmpty else { throw Invalid(description: "\(name) '\(item)' is not a cron field") }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0 else { throw Invalid(description: "\(name) step '\(pieces[1])' must be a positive number") }
                step = parsed
            }
            let bounds: ClosedRange<Int>
            if pieces[0] == "*" {
                bounds = range
            } else if let dash = pieces[0].firstIndex(of: "-") {
                let low = try value(pieces[0][..<dash]), high = try value(pieces[0][pieces[0].index(after: dash)...])
                guard low <= high else { throw Invalid(description: "\(name) range '\(pieces[0])' runs backwards") }
                bounds = low ... high
            } else {
                let single = try value(pieces[0])
                bounds = single ... (pieces.count == 2 ? range.upperBound : single)
            }
            values.formUnion(stride(from: bounds.lowerBound, through: bounds.upperBound, by: step))
        }
        return values
    }

    /// The first time strictly after `time` (to the minute) that the expression matches.
    public func next(after time: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        // The start of the next minute (time zones are whole minutes away from UTC).
        var candidate = Date(timeIntervalSince1970: (floor(time.timeIntervalSince1970 / 60) + 1) * 60)
        // At most a few hundred steps: whole months, days and hours are skipped at once.
        for _ in 0 ..< 5000 {
            let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: candidate)
            guard let month = parts.month, let day = parts.day, let hour = parts.hour, let minute = parts.minute,
                  let weekday = parts.weekday else { return nil }
            if !months.contains(month) {
                guard let start = calendar.date(from: DateComponents(year: parts.year, month: month, day: 1)),
                      let nextMonth = calendar.date(byAdding: .month, value: 1, to: start) else { return nil }
                candidate = nextMonth
                continue
            }
            if !dayMatches(day: day, weekday: weekday - 1) {
                guard let start = calendar.date(from: DateComponents(year: parts.year, month: month, day: day)),
                      let nextDay = calendar.date(byAdding: .day, value: 1, to: start) else { return nil }
                candidate = nextDay
                continue
            }
            if !hours.contains(hour) {
                guard let start = calendar.date(from: DateComponents(year: parts.year, month: month, day: day, hour: hour)),
                      let nextHour = calendar.date(byAdding: .hour, value: 1, to: start) else { return nil }
                candidate = nextHour
                continue
            }
            if !minutes.contains(minute) {
                candidate = candidate.addingTimeInterval(60)
                continue
            }
            return candidate
        }
        return nil
    }

    private func dayMatches(day: Int, weekday: Int) -> Bool {
        switch (daysRestricted, weekdaysRestricted) {
        case (true, true): days.contains(day) || weekdays.contains(weekday)
        case (true, false): days.contains(day)
        case (false, true): weekdays.contains(weekday)
        case (false, false): true
        }
    }
}
