import Foundation
import Testing
@testable import Switchboard

@Suite("Identifiers")
struct IdentifierTests {
    @Test("an id is its prefix, an underscore and 26 Crockford base32 characters; ids sort by their time")
    func shapeAndOrder() {
        let alphabet = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        let early = Date(timeIntervalSince1970: 1_795_000_000.123)
        let ids = (0 ..< 1000).map { n in RunID.generate(at: early.addingTimeInterval(Double(n) / 100)) }
        for id in ids {
            #expect(id.rawValue.hasPrefix("run_"))
            #expect(id.rawValue.count == 30)
            #expect(id.rawValue.dropFirst(4).allSatisfy(alphabet.contains))
        }
        #expect(Set(ids).count == ids.count, "unique")
        // Ids of different milliseconds sort by time (those of one millisecond by their random part).
        let byTime = stride(from: 0, to: ids.count, by: 10).map { ids[$0].rawValue }
        #expect(byTime == byTime.sorted())
        #expect(DeliveryID.generate(at: early).rawValue.hasPrefix("dlv_01M"), "the time comes first, most significant first")
    }
}
